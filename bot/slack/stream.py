"""Showing an LLM answer in Slack while the model writes it, then replacing the draft with the final answer.

The pieces come from the backend already verified (`bot.answer.llm`: complete lines that pass the
grounding checks and cite a source), so what the draft shows stays; a reply that falls back sends
none, and the progress status is all the user sees until the final answer is posted.

`DraftReply` is the ``on_delta`` of one `Advisor.ask` call and, afterwards, the
way its final message is delivered:

- **Slack's streaming API** first: the first draft piece starts a stream in the
  question's thread (``chat.startStream``, with the asker as recipient, as
  streaming in channels requires); later pieces are appended in batches
  (``chat.appendStream``, at most one call per `STREAM_INTERVAL` seconds, each at
  most `APPEND_LIMIT` characters). The pieces are Markdown, which is what the
  streaming API renders; Slack's ``<!channel>`` / ``<@U…>`` / ``<#C…>`` syntax in
  them is broken up, so a draft pings no one.
- **A placeholder** when the workspace cannot stream (``chat.startStream`` fails:
  ``not_allowed``, ``unknown_method`` behind a proxy that lacks it, …): the draft
  is posted as an ordinary message (converted to mrkdwn) and ``chat.update``-d
  with the longer draft at most once per `UPDATE_INTERVAL` seconds. Errors that
  mean "this workspace cannot stream" are remembered for `UNSUPPORTED_FOR`
  seconds, so later answers go to the placeholder at once.
- **The end** (`finish`): the stream is stopped (``chat.stopStream``) and the
  draft message is replaced (``chat.update``) by the final message, rendered
  exactly like a non-streamed answer: the final `Answer` is authoritative and may
  differ from the draft. If no draft was shown, the final message is simply
  posted. If the draft cannot be replaced, the final message is posted anew and
  the draft deleted: one answer message per question, whatever fails.

`on_delta` runs on the thread that reads the model's stream, so it only makes a
Web API call when one is due (batching), and it never raises: a failed append or
update stops the draft from growing, never the answer. A ``ratelimited`` reply
postpones the next call by its ``Retry-After``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from .render import SlackMessage

__all__ = [
    "APPEND_LIMIT",
    "STREAM_INTERVAL",
    "UNSUPPORTED_FOR",
    "UPDATE_INTERVAL",
    "DraftReply",
    "StreamSupport",
]

log = logging.getLogger(__name__)

#: Seconds between two ``chat.appendStream`` calls of one answer (the method is Tier 4: 100+ a minute).
STREAM_INTERVAL = 0.5
#: Seconds between two ``chat.update`` calls of one placeholder (Tier 3: 50+ a minute).
UPDATE_INTERVAL = 1.0
#: Most characters of ``markdown_text`` in one streaming call.
APPEND_LIMIT = 12_000
#: Seconds a workspace that refused to stream is not asked again.
UNSUPPORTED_FOR = 600.0
#: ``chat.startStream`` errors that mean streaming is not available here (rather than a passing failure).
UNSUPPORTED_ERRORS = frozenset(
    {
        "unknown_method",
        "not_allowed",
        "not_allowed_token_type",
        "method_not_supported_for_channel_type",
        "missing_scope",
        "feature_not_enabled",
        "not_implemented",
    }
)

Clock = Callable[[], float]

_PIECE = APPEND_LIMIT - 1000  # room for what `_inert` adds
_SPECIAL = re.compile(r"<(?=[!@#])")


class StreamSupport:
    """Whether to try Slack's streaming API: yes, unless it was refused as unsupported in the last `UNSUPPORTED_FOR` s."""

    def __init__(self, *, retry_after: float = UNSUPPORTED_FOR, clock: Clock = time.monotonic) -> None:
        self.retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._refused_at: float | None = None
        self._error: str | None = None

    def available(self) -> bool:
        with self._lock:
            return self._refused_at is None or self._clock() - self._refused_at >= self.retry_after

    def refused(self, error: str | None) -> None:
        """Note a failed ``chat.startStream``; only unsupported-kind errors switch streaming off for a while."""
        if error not in UNSUPPORTED_ERRORS:
            return
        with self._lock:
            first = self._refused_at is None or self._error != error
            self._refused_at, self._error = self._clock(), error
        if first:
            log.warning(
                "chat.startStream refused (%s): answers are drafted in a message updated at most every %.0f s "
                "instead; streaming is tried again in %.0f s",
                error,
                UPDATE_INTERVAL,
                self.retry_after,
            )


class DraftReply:
    """One answer's draft in Slack (see the module docstring). Used from the answering thread only.

    ``render_draft`` turns the whole Markdown draft into the placeholder message (mrkdwn).
    """

    def __init__(
        self,
        client: WebClient,
        *,
        channel: str,
        thread_ts: str,
        team_id: str | None,
        user_id: str | None,
        render_draft: Callable[[str], SlackMessage],
        support: StreamSupport,
        stream_interval: float = STREAM_INTERVAL,
        update_interval: float = UPDATE_INTERVAL,
        clock: Clock = time.monotonic,
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.team_id = team_id
        self.user_id = user_id
        self.render_draft = render_draft
        self.support = support
        self.stream_interval = stream_interval
        self.update_interval = update_interval
        self._clock = clock
        #: None (nothing shown yet), "stream", "placeholder", "off" (the draft could not be shown), "done".
        self.mode: str | None = None
        #: The draft message's ts, while there is one.
        self.ts: str | None = None
        self.draft = ""  # every piece so far (Markdown)
        self._pending = ""  # stream mode: pieces not yet appended
        self._due = 0.0  # no Web API call before this time
        self._frozen = False  # a call failed: the draft stays as it is until `finish`
        self._stopped = False
        #: How `finish` delivered the final message: "stream", "placeholder" (the draft replaced) or "post".
        self.delivered: str | None = None

    @property
    def shown(self) -> bool:
        """Whether a draft message is on screen (and must be replaced, not followed, by the final one)."""
        return self.mode in ("stream", "placeholder") and self.ts is not None

    # -- while the model writes -------------------------------------------------------------------

    def on_delta(self, text: str) -> None:
        """A piece of the draft (Markdown); shows it when a call is due. Never raises."""
        if not text or self.mode in ("off", "done"):
            return
        self.draft += text
        self._pending += text
        if self._frozen or not self.draft.strip():
            return  # nothing worth a message yet (only whitespace so far)
        try:
            if self.mode is None:
                self._start()
            elif self._clock() >= self._due:
                self._flush()
        except Exception:  # noqa: BLE001 - the draft is a nicety; the final answer still comes
            log.warning("could not show the draft in %s; the final answer replaces it", self.channel, exc_info=True)
            self._frozen = True

    def _start(self) -> None:
        if self.support.available():
            head = _ready(self._pending)[:_PIECE]
            if not head.strip():
                return  # e.g. only a "<" so far: start with the next piece
            try:
                resp = self.client.chat_startStream(
                    channel=self.channel,
                    thread_ts=self.thread_ts,
                    markdown_text=_inert(head),
                    recipient_team_id=self.team_id,
                    recipient_user_id=self.user_id,
                )
                ts = resp.get("ts")
                if ts:
                    self.mode, self.ts = "stream", str(ts)
                    self._pending = self._pending[len(head) :]
                    self._due = self._clock() + self.stream_interval
                    return
                log.info("chat.startStream returned no ts in %s; drafting in a placeholder", self.channel)
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                log.info("chat.startStream failed in %s (%s); drafting in a placeholder", self.channel, error)
                self.support.refused(error)
            except Exception as exc:  # noqa: BLE001 - e.g. a proxy answering with HTML
                log.info("chat.startStream failed in %s (%s); drafting in a placeholder", self.channel, exc)
        try:
            resp = self.client.chat_postMessage(
                channel=self.channel,
                thread_ts=self.thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                **self.render_draft(self.draft).kwargs(),
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("could not post the draft in %s (%s); the answer is posted when complete", self.channel, exc)
            self.mode = "off"
            return
        self.mode, self.ts = "placeholder", str(resp.get("ts") or "") or None
        self._pending = ""
        self._due = self._clock() + self.update_interval
        if self.ts is None:
            self.mode = "off"

    def _flush(self) -> None:
        """Send what is due: the pending pieces (stream) or the whole draft (placeholder)."""
        assert self.ts is not None
        try:
            if self.mode == "stream":
                while (piece := _ready(self._pending)[:_PIECE]).strip():  # whitespace waits for the text after it
                    self.client.chat_appendStream(channel=self.channel, ts=self.ts, markdown_text=_inert(piece))
                    self._pending = self._pending[len(piece) :]
                self._due = self._clock() + self.stream_interval
            elif self.mode == "placeholder":
                self.client.chat_update(channel=self.channel, ts=self.ts, **self.render_draft(self.draft).kwargs())
                self._pending = ""
                self._due = self._clock() + self.update_interval
        except SlackApiError as exc:
            if exc.response is not None and exc.response.get("error") == "ratelimited":
                wait = _retry_after(exc.response.headers)
                log.info("draft update in %s rate limited; next in %.1f s", self.channel, wait)
                self._due = self._clock() + wait
                return
            raise

    # -- the final answer -------------------------------------------------------------------------

    def finish(self, message: SlackMessage) -> str | None:
        """Deliver the final ``message``: replace the draft with it, or post it; returns its ts.

        Raises (SlackApiError…) only when the message could be neither placed in the
        draft nor posted; the draft, if any, is then still there for another `finish`.
        """
        if self.mode == "stream" and self.ts and not self._stopped:
            self._stopped = True
            try:
                self.client.chat_stopStream(channel=self.channel, ts=self.ts)
            except Exception as exc:  # noqa: BLE001 - the update below replaces the message anyway
                log.info("chat.stopStream failed in %s (%s)", self.channel, exc)
        if self.shown:
            assert self.ts is not None
            try:
                self.client.chat_update(channel=self.channel, ts=self.ts, **message.kwargs())
                self.mode, self.delivered = "done", self.mode
                return self.ts
            except Exception as exc:  # noqa: BLE001
                log.warning("could not replace the draft in %s (%s); posting the answer anew", self.channel, exc)
        resp = self.client.chat_postMessage(
            channel=self.channel, thread_ts=self.thread_ts, unfurl_links=False, unfurl_media=False, **message.kwargs()
        )
        if self.shown:
            assert self.ts is not None
            try:
                self.client.chat_delete(channel=self.channel, ts=self.ts)
            except Exception as exc:  # noqa: BLE001
                log.warning("could not delete the draft %s in %s (%s)", self.ts, self.channel, exc)
        self.mode, self.delivered = "done", "post"
        ts = resp.get("ts")
        return str(ts) if ts else None


def _ready(pending: str) -> str:
    """What of ``pending`` can be sent: all but a trailing ``<`` (it may begin ``<!channel>`` in the next piece)."""
    return pending[:-1] if pending.endswith("<") else pending


def _inert(markdown: str) -> str:
    """``markdown`` with Slack's special ``<!…>``, ``<@…>`` and ``<#…>`` sequences broken by a zero-width space."""
    return _SPECIAL.sub("<\u200b", markdown)


def _retry_after(headers: Any) -> float:
    """Seconds from a ``Retry-After`` header (1 s when missing or unreadable, at most 30 s)."""
    raw = (headers.get("Retry-After") or headers.get("retry-after")) if headers else None
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        value = float(raw) if raw is not None else 1.0
    except (TypeError, ValueError):
        value = 1.0
    return max(0.0, min(value, 30.0))
