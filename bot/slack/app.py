"""`SlackBot`: careerbot's bolt `App`, answering mentions, DMs, thread follow-ups and ``/career`` from an `Advisor`.

Contract, whatever the transport (HTTP or Socket Mode):

- Every request is acknowledged at once (``process_before_response=False``: bolt
  acks, then runs the listener in its thread pool), so Slack's 3-second limit holds
  however long an answer takes.
- Each question is answered exactly once, in the thread of the question: repeats
  of an ``event_id`` (Slack's retries) and second deliveries of one message (an
  ``app_mention`` and a ``message`` event) are dropped; so are the bot's own
  messages, other bots', edits, deletions and other subtypes.
- In a thread the bot has answered, follow-ups need no mention (unless
  ``CAREERBOT_SLACK_REQUIRE_MENTION``); the thread's earlier human messages are the
  conversation history given to `Advisor.ask`.
- Progress is shown (assistant thread status, else an :hourglass_flowing_sand:
  reaction) and always cleared; a failure posts a short apology and is logged.
- With a backend that streams (``openai``, ``anthropic``), the answer is shown
  while the model writes it (`bot.slack.stream`: Slack's streaming API, else a
  placeholder updated at most once a second), then replaced by the final answer,
  rendered exactly as a non-streamed one (sources, confidence, feedback buttons).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.context.ack import Ack
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from ..answer import Answer, StreamingBackend
from ..careers import career_title
from ..errors import ConfigError
from ..pipeline import Advisor
from ..settings import Settings
from ..text import detect_language
from .config import check_settings
from .dedupe import SeenKeys
from .feedback import FeedbackStore
from .mrkdwn import escape, mentions_other_user, question_text
from .ratelimit import RateLimiter
from .render import FEEDBACK_ACTION, Renderer, SlackMessage, parse_feedback_value
from .stream import DraftReply, StreamSupport

__all__ = ["SLASH_COMMAND", "SlackBot"]

log = logging.getLogger(__name__)

SLASH_COMMAND = "/career"
PROGRESS_REACTION = "hourglass_flowing_sand"
HISTORY_TURNS = 10
REPLIES_PAGE = 200
REPLIES_PAGES = 5
LISTENER_THREADS = 16
DEFAULT_API_URL = "https://slack.com/api/"
#: Message subtypes that are still a person asking something.
_USER_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})


@dataclass(frozen=True, slots=True)
class Incoming:
    """A user's message to answer."""

    channel: str
    user: str
    ts: str
    thread_ts: str | None
    text: str
    channel_type: str | None
    team: str | None = None

    @property
    def reply_ts(self) -> str:
        """Where the answer goes: the message's thread, else a new thread under the message."""
        return self.thread_ts or self.ts

    @property
    def in_thread(self) -> bool:
        return bool(self.thread_ts) and self.thread_ts != self.ts


def _ts_key(ts: str) -> tuple[int, int]:
    whole, _, frac = (ts or "0").partition(".")
    try:
        return int(whole), int(frac.ljust(6, "0")[:6] or 0)
    except ValueError:
        return 0, 0


class SlackBot:
    """The Slack surface of an `Advisor`; ``bot.app`` is the bolt `App` to serve (HTTP) or connect (Socket Mode).

    ``http`` selects which credentials are required (see `check_settings`). The
    Web API client goes through ``settings.slack_api_url`` when set. Raises
    `ConfigError` for missing or rejected settings (the token is never shown).
    """

    def __init__(
        self,
        *,
        advisor: Advisor,
        settings: Settings,
        http: bool,
        feedback: FeedbackStore | None = None,
        listener_threads: int = LISTENER_THREADS,
    ) -> None:
        check_settings(settings, http=http)
        if os.environ.get("SLACK_CLIENT_ID") and os.environ.get("SLACK_CLIENT_SECRET"):
            # bolt would switch to its multi-workspace OAuth flow and ignore SLACK_BOT_TOKEN.
            raise ConfigError("SLACK_CLIENT_ID: set, but careerbot is a single-workspace app; unset it and "
                              "SLACK_CLIENT_SECRET")
        self.advisor = advisor
        self.settings = settings
        self.api_url = settings.slack_api_url or DEFAULT_API_URL
        assert settings.slack_bot_token is not None  # check_settings
        client = WebClient(
            token=settings.slack_bot_token.get_secret_value().strip(),
            base_url=self.api_url,
            logger=logging.getLogger("bot.slack.web"),
        )
        self.identity = self._auth_test(client)
        self.renderer = Renderer(prompts=advisor.prompts, max_question_chars=settings.max_question_chars)
        self.feedback = feedback or FeedbackStore(path=settings.feedback_path)
        self.seen = SeenKeys()
        self.limiter = RateLimiter(per_minute=settings.slack_rate_limit_per_minute)
        secret = settings.slack_signing_secret.get_secret_value().strip() if settings.slack_signing_secret else ""
        bolt_log = logging.getLogger("bot.slack.bolt")
        if not any(isinstance(f, _SameTokenNotice) for f in bolt_log.filters):
            bolt_log.addFilter(_SameTokenNotice())
        self.app = App(
            client=client,
            signing_secret=secret,
            request_verification_enabled=http,
            process_before_response=False,
            listener_executor=ThreadPoolExecutor(max_workers=listener_threads, thread_name_prefix="careerbot-slack"),
            logger=logging.getLogger("bot.slack.bolt"),
        )
        self._home: tuple[Any, dict[str, Any]] | None = None  # (the knowledge it shows, the view)
        self._welcomed: set[str] = set()
        self.stream_support = StreamSupport()
        self._register()

    # -- set-up -------------------------------------------------------------------------------

    def _auth_test(self, client: WebClient) -> dict[str, Any]:
        where = (
            f"SLACK_API_URL ({self.api_url})" if self.settings.slack_api_url else f"Slack's Web API ({self.api_url})"
        )
        try:
            resp = client.auth_test()
        except SlackApiError as exc:
            raise ConfigError(
                f"SLACK_BOT_TOKEN: Slack rejected the bot token ({exc.response.get('error', 'error')}); "
                "expected a valid xoxb- token of an installed app"
            ) from None
        except Exception as exc:
            raise ConfigError(f"SLACK_API_URL: cannot reach {where}: {exc.__class__.__name__}: {exc}") from None
        log.info("connected as %s (bot user %s) in team %s", resp.get("user"), resp.get("user_id"), resp.get("team"))
        return dict(resp.data) if isinstance(resp.data, dict) else {}

    def _register(self) -> None:
        app = self.app
        app.use(self._skip_repeats)
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("assistant_thread_started")(self._on_assistant_thread_started)
        app.event("assistant_thread_context_changed")(lambda: None)
        app.command(SLASH_COMMAND)(self._on_command)
        app.action(FEEDBACK_ACTION)(self._on_feedback)
        app.error(self._on_error)

    def socket_mode_handler(self) -> Any:
        """bolt's built-in Socket Mode handler for this app (``apps.connections.open`` goes through SLACK_API_URL)."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        if self.settings.slack_app_token is None:
            raise ConfigError("SLACK_APP_TOKEN: not set; Socket Mode needs an app-level token starting with xapp-")
        return SocketModeHandler(
            self.app,
            app_token=self.settings.slack_app_token.get_secret_value().strip(),
            logger=logging.getLogger("bot.slack.socket"),
        )

    def drain(self, timeout: float) -> int:
        """Let the answers in flight (and those already queued) finish, waiting at most ``timeout`` seconds.

        Call it after the transport stopped taking requests: no new listener runs from here on.
        Returns how many listeners are still running (0: all finished).
        """
        import time

        executor = self.app.listener_runner.listener_executor
        executor.shutdown(wait=False)  # idle workers exit; busy ones finish their work (and the queue) first
        workers = list(getattr(executor, "_threads", ()))  # a ThreadPoolExecutor's worker threads
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        return sum(worker.is_alive() for worker in workers)

    def close(self) -> None:
        """Run no new listener (`drain` first lets answers in flight finish) and release the feedback store."""
        self.app.listener_runner.listener_executor.shutdown(wait=False, cancel_futures=True)
        self.feedback.close()

    # -- middleware ------------------------------------------------------------------------------

    def _skip_repeats(self, body: dict[str, Any], request: Any, next: Callable[[], None]) -> BoltResponse | None:
        """Acknowledge and drop an Events API delivery whose ``event_id`` was already seen (a retry)."""
        if isinstance(body, dict) and body.get("type") == "event_callback":
            event_id = body.get("event_id")
            if event_id and not self.seen.claim(f"event:{event_id}"):
                retry = (request.headers.get("x-slack-retry-num") or ["?"])[0]
                reason = (request.headers.get("x-slack-retry-reason") or ["?"])[0]
                log.info("skipped repeated event %s (retry %s, %s)", event_id, retry, reason)
                return BoltResponse(status=200, body="")
        next()
        return None

    # -- events ------------------------------------------------------------------------------------

    def _incoming(self, event: dict[str, Any], context: Any) -> Incoming | None:
        """The event as a user's message, or None when it is not one to answer (bots, edits, ourselves)."""
        if event.get("subtype") not in _USER_SUBTYPES or event.get("bot_id") or event.get("bot_profile"):
            return None
        user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
        if not user or not channel or not ts or user == context.bot_user_id:
            return None
        return Incoming(
            channel=channel,
            user=user,
            ts=ts,
            thread_ts=event.get("thread_ts"),
            text=event.get("text") or "",
            channel_type=event.get("channel_type") or ("im" if channel.startswith("D") else None),
            team=event.get("user_team") or event.get("team") or context.team_id or context.enterprise_id,
        )

    def _on_mention(self, event: dict[str, Any], context: Any, client: WebClient) -> None:
        msg = self._incoming(event, context)
        if msg is not None:
            self._answer(msg, client=client, context=context)

    def _on_message(self, event: dict[str, Any], context: Any, client: WebClient) -> None:
        msg = self._incoming(event, context)
        if msg is None:
            return
        if msg.channel_type == "im":
            self._answer(msg, client=client, context=context)
            return
        # Channels, private channels, group DMs: only follow-ups in threads the bot has answered.
        bot = context.bot_user_id
        if not msg.in_thread or self.settings.slack_require_mention:
            return
        if bot and f"<@{bot}" in msg.text:
            return  # the app_mention event answers it
        if mentions_other_user(msg.text, bot_user_id=bot) or not self._allowed(msg.channel):
            return
        replies = self._replies(client, msg.channel, msg.reply_ts)
        if any(self._is_own(m, context) for m in replies):
            self._answer(msg, client=client, context=context, replies=replies)

    def _on_home_opened(self, event: dict[str, Any], client: WebClient) -> None:
        """Home tab: what the bot knows. Messages tab: a welcome with examples in a DM that has no messages yet."""
        user = event.get("user")
        if not user:
            return
        if event.get("tab") == "messages":
            self._welcome(client, user=user, channel=event.get("channel"))
            return
        if event.get("tab") != "home":
            return
        knowledge = self.advisor.knowledge  # re-rendered after a live reload
        if self._home is None or self._home[0] is not knowledge:
            self._home = (knowledge, self.renderer.home(knowledge.articles, base_url=self.settings.article_base_url))
        client.views_publish(user_id=user, view=self._home[1])

    def _welcome(self, client: WebClient, *, user: str, channel: str | None) -> None:
        if not channel or user in self._welcomed:
            return
        self._welcomed.add(user)
        history = client.conversations_history(channel=channel, limit=1)
        if history.get("messages"):
            return  # an ongoing conversation: no welcome
        message = self._help("ja")
        client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)

    def _on_assistant_thread_started(self, event: dict[str, Any], client: WebClient) -> None:
        thread = event.get("assistant_thread") or {}
        if not thread.get("channel_id") or not thread.get("thread_ts"):
            return
        title, prompts = self.renderer.suggested_prompts(self.advisor.knowledge.articles)
        client.assistant_threads_setSuggestedPrompts(
            channel_id=thread["channel_id"], thread_ts=thread["thread_ts"], title=title, prompts=prompts
        )

    def _on_command(self, ack: Ack, command: dict[str, Any], respond: Respond, context: Any) -> None:
        ack()
        channel, user = command.get("channel_id", ""), command.get("user_id", "")
        question = question_text(command.get("text") or "", bot_user_id=context.bot_user_id)
        language = detect_language(question) if question else "ja"
        reply_type = "in_channel" if self.settings.slack_public_slash else "ephemeral"
        try:
            if not self._allowed(channel):
                respond(
                    response_type="ephemeral",
                    **self.renderer.text("slack_not_allowed.mrkdwn", language=language).kwargs(),
                )
            elif not question:
                respond(response_type="ephemeral", **self._help(language).kwargs())
            elif not self.limiter.allow(user):
                respond(response_type="ephemeral", **self._rate_limited(language).kwargs())
            else:
                answer, cut = self._ask(question, (), question_id=f"slash:{channel}:{command.get('trigger_id', '')}")
                message = self._render(answer, channel=channel, thread_ts=None, user=user, history=(), cut=cut)
                respond(response_type=reply_type, replace_original=False, **message.kwargs())
        except Exception:
            log.exception("could not answer %s in %s", SLASH_COMMAND, channel)
            try:
                respond(
                    response_type="ephemeral", **self.renderer.text("slack_error.mrkdwn", language=language).kwargs()
                )
            except Exception:
                log.exception("could not send the error message for %s", SLASH_COMMAND)

    def _on_feedback(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        parsed = parse_feedback_value(action.get("value") or "")
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        message_ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
        user = (body.get("user") or {}).get("id")
        if parsed is None or not channel or not message_ts or not user:
            log.warning("ignored a feedback click without a value, channel, message or user")
            return
        value, answer_id = parsed
        row = self.feedback.record_feedback(
            answer_id=answer_id, channel=channel, message_ts=message_ts, user=user, value=value
        )
        log.info("feedback %s on %s/%s", value, channel, message_ts)
        language = detect_language(row.question) if row.question else "ja"
        thanks = self.renderer.text("slack_feedback_thanks.mrkdwn", language=language, value=value)
        if container.get("is_ephemeral") and body.get("response_url"):
            respond(response_type="ephemeral", replace_original=False, **thanks.kwargs())
        else:
            client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=container.get("thread_ts"), **thanks.kwargs()
            )

    def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        kind = (body.get("event") or {}).get("type") if isinstance(body, dict) else None
        log.error("unhandled error in a %s listener: %s: %s", kind or "Slack", error.__class__.__name__, error)

    # -- answering ----------------------------------------------------------------------------------

    def _answer(
        self,
        msg: Incoming,
        *,
        client: WebClient,
        context: Any,
        replies: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Answer ``msg`` in its thread, once; never raises."""
        if not self.seen.claim(f"message:{msg.channel}:{msg.ts}"):
            return
        if not self._allowed(msg.channel):
            log.info("ignored a message in %s (not in CAREERBOT_SLACK_ALLOWED_CHANNELS)", msg.channel)
            return
        question = question_text(msg.text, bot_user_id=context.bot_user_id)
        language = detect_language(question) if question else "ja"
        try:
            if not question:
                self._post(client, msg, self._help(language))
                return
            if not self.limiter.allow(msg.user):
                client.chat_postEphemeral(
                    channel=msg.channel, user=msg.user, thread_ts=msg.reply_ts, **self._rate_limited(language).kwargs()
                )
                return
        except Exception:
            log.exception("could not reply to message %s in %s", msg.ts, msg.channel)
            return
        clear = self._show_progress(client, msg, language)
        draft: DraftReply | None = None
        try:
            if replies is None and msg.in_thread:
                replies = self._replies(client, msg.channel, msg.reply_ts)
            history = self._history(replies or (), msg, context)
            draft = self._draft(client, msg, language)
            answer, cut = self._ask(
                question,
                history,
                on_delta=draft.on_delta if draft is not None else None,
                question_id=f"slack:{msg.channel}:{msg.ts}",
            )
            message = self._render(
                answer, channel=msg.channel, thread_ts=msg.reply_ts, user=msg.user, history=history, cut=cut
            )
            if draft is None:
                self._post(client, msg, message)
            else:
                draft.finish(message)  # replaces the draft shown while the model wrote, or posts
            log.info(
                "answered %s/%s (%s, %d citations, %.0f ms%s)",
                msg.channel,
                msg.ts,
                "abstained" if answer.abstained else "confident" if answer.confident else "unsure",
                len(answer.citations),
                answer.timings_ms.get("total", 0.0),
                f", {answer.backend}, draft: {draft.delivered}" if draft is not None else "",
            )
        except Exception:
            log.exception("could not answer message %s in %s", msg.ts, msg.channel)
            try:
                apology = self.renderer.text("slack_error.mrkdwn", language=language)
                if draft is not None and draft.mode != "done":
                    draft.finish(apology)  # in place of a draft already on screen
                else:
                    self._post(client, msg, apology)
            except Exception:
                log.exception("could not post the error message in %s", msg.channel)
        finally:
            clear()

    def _ask(
        self,
        question: str,
        history: Sequence[str],
        *,
        question_id: str,
        on_delta: Callable[[str], None] | None = None,
    ) -> tuple[Answer, bool]:
        """The answer (its log record named ``question_id``, e.g. ``slack:<channel>:<ts>``) and whether the question was cut."""
        limit = self.settings.max_question_chars
        cut = len(question) > limit
        answer = self.advisor.ask(
            question[:limit],
            history=[h[:limit] for h in history],
            backend=self.settings.backend,
            on_delta=on_delta,
            question_id=question_id,
        )
        return answer, cut

    def _draft(self, client: WebClient, msg: Incoming, language: str) -> DraftReply | None:
        """Where the answer's draft goes while the model writes it; None when the backend does not stream."""
        if not isinstance(self.advisor.backend(self.settings.backend), StreamingBackend):
            return None
        return DraftReply(
            client,
            channel=msg.channel,
            thread_ts=msg.reply_ts,
            team_id=msg.team,
            user_id=msg.user,
            render_draft=lambda markdown: self.renderer.draft(markdown, language=language),
            support=self.stream_support,
        )

    def _render(
        self, answer: Answer, *, channel: str, thread_ts: str | None, user: str, history: Sequence[str], cut: bool
    ) -> SlackMessage:
        try:
            answer_id: str | None = self.feedback.record_answer(
                channel=channel,
                thread_ts=thread_ts,
                user=user,
                question=answer.question,
                turns=history,
                answer=answer.text,
                section_ids=[c.section_id for c in answer.citations],
                language=answer.language,
                confident=answer.confident,
                abstained=answer.abstained,
            )
        except sqlite3.Error as exc:  # the answer matters more than its feedback buttons
            log.error("could not store the answer for feedback (%s); posting it without buttons", exc)
            answer_id = None
        return self.renderer.answer(answer, answer_id=answer_id, cut=cut)

    def _help(self, language: str) -> SlackMessage:
        articles = self.advisor.knowledge.articles
        return self.renderer.text(
            "slack_help.mrkdwn",
            language=language,
            careers=[escape(career_title(a.title)) for a in articles],
            examples=[escape(q) for q in self.renderer.examples(articles, language=language)[:5]],
            max_chars=self.settings.max_question_chars,
        )

    def _rate_limited(self, language: str) -> SlackMessage:
        return self.renderer.text(
            "slack_rate_limited.mrkdwn", language=language, per_minute=self.settings.slack_rate_limit_per_minute
        )

    # -- Slack helpers --------------------------------------------------------------------------------

    def _allowed(self, channel: str) -> bool:
        """DMs always; channels when there is no allow-list or they are on it."""
        allowed = self.settings.slack_allowed_channels
        return not allowed or channel in allowed or channel.startswith("D")

    @staticmethod
    def _is_own(message: dict[str, Any], context: Any) -> bool:
        return bool(
            (context.bot_user_id and message.get("user") == context.bot_user_id)
            or (context.bot_id and message.get("bot_id") == context.bot_id)
        )

    def _history(self, replies: Sequence[dict[str, Any]], msg: Incoming, context: Any) -> list[str]:
        """Earlier human messages of the thread, oldest first, without bot mentions (at most HISTORY_TURNS)."""
        turns: list[str] = []
        before = _ts_key(msg.ts)
        for m in sorted(replies, key=lambda m: _ts_key(m.get("ts", ""))):
            if _ts_key(m.get("ts", "")) >= before:
                break
            if self._is_own(m, context) or m.get("bot_id") or m.get("subtype") not in _USER_SUBTYPES:
                continue
            text = question_text(m.get("text") or "", bot_user_id=context.bot_user_id)
            if text:
                turns.append(text)
        return turns[-HISTORY_TURNS:]

    def _replies(self, client: WebClient, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The thread's messages (conversations.replies, oldest first); empty when Slack refuses."""
        messages: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            for _ in range(REPLIES_PAGES):
                kwargs: dict[str, Any] = {"channel": channel, "ts": thread_ts, "limit": REPLIES_PAGE}
                if cursor:
                    kwargs["cursor"] = cursor
                resp = client.conversations_replies(**kwargs)
                messages.extend(resp.get("messages") or [])
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not resp.get("has_more") or not cursor:
                    break
        except SlackApiError as exc:
            log.warning(
                "conversations.replies failed in %s (%s); answering without the thread",
                channel,
                exc.response.get("error"),
            )
        return messages

    @staticmethod
    def _post(client: WebClient, msg: Incoming, message: SlackMessage) -> None:
        client.chat_postMessage(
            channel=msg.channel, thread_ts=msg.reply_ts, unfurl_links=False, unfurl_media=False, **message.kwargs()
        )

    def _show_progress(self, client: WebClient, msg: Incoming, language: str) -> Callable[[], None]:
        """Show that the bot is working; returns the function that clears it (never raises)."""
        labels = self.renderer.labels(language)
        if msg.channel_type == "im" and msg.in_thread:
            try:
                client.assistant_threads_setStatus(
                    channel_id=msg.channel,
                    thread_ts=msg.reply_ts,
                    status=labels["status"],
                    loading_messages=list(labels["loading"]),
                )

                def clear_status() -> None:
                    _quietly(
                        client.assistant_threads_setStatus, channel_id=msg.channel, thread_ts=msg.reply_ts, status=""
                    )

                return clear_status
            except Exception as exc:  # not an assistant thread: fall back to a reaction
                log.debug("assistant.threads.setStatus refused (%s); using a reaction", exc)
        if not _quietly(client.reactions_add, channel=msg.channel, timestamp=msg.ts, name=PROGRESS_REACTION):
            return lambda: None

        def clear_reaction() -> None:
            _quietly(client.reactions_remove, channel=msg.channel, timestamp=msg.ts, name=PROGRESS_REACTION)

        return clear_reaction


class _SameTokenNotice(logging.Filter):
    """Drops bolt's start-up warning that ``client``'s token wins over SLACK_BOT_TOKEN (it read the same variable)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in str(record.msg)


def _quietly(method: Callable[..., Any], **kwargs: Any) -> bool:
    """Call a Web API method whose failure must not stop an answer; False (logged) when it failed."""
    try:
        method(**kwargs)
        return True
    except Exception as exc:
        log.debug("%s failed: %s", getattr(method, "__name__", "Slack call"), exc)
        return False
