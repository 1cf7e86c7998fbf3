"""`SlackBot`: careerbot's bolt `App`, answering mentions, DMs, thread follow-ups and ``/career`` from an `Advisor`.

Contract, whatever the transport (HTTP or Socket Mode):

- **Acknowledging never waits for an answer.** Listeners run in the thread that received the request
  (``process_before_response=True``) and only *accept* work: they record it durably in the store's inbox
  (`bot.slack.store`), hand it to a bounded `WorkQueue` and return, which acknowledges. Answers are
  composed on the queue's own workers; Web API calls that are not answers (the Home tab, a thanks) on a
  second, small queue. So ``/career`` and 👍/👎 are acknowledged at once however many answers are in flight.
- **Accepted work is not lost.** An item is committed before the acknowledgement and marked finished once
  answered; at start-up `resume` answers what a previous process left unfinished (accepted at most
  CAREERBOT_SLACK_RESUME_WITHIN seconds ago). A feedback click is committed before it is acknowledged.
- **Replicas share the work** (a PostgreSQL store): an accepted item is leased to the replica that accepted
  it, which renews its leases every third of CAREERBOT_SLACK_LEASE_SECONDS; a worker answers an item only if
  it can `claim` it; every half lease each replica sweeps for items whose holder stopped renewing (it died)
  and answers them. A stopping replica releases what it did not start.
- **Each question is answered exactly once**, in the thread of the question: the ``event_id`` (Slack's
  retries) and ``channel:ts`` (one message delivered as ``app_mention`` and ``message``) are dedup keys kept
  by the store, across restarts. The bot's own messages, other bots', edits, deletions and other subtypes are
  ignored.
- **Busy is said, not hidden.** When the queue is full the asker is told to try again
  (``slack_busy.mrkdwn.j2``), at once.
- **Slack's errors are retried** (429 after ``Retry-After``, 5xx and connection errors with backoff:
  `bot.slack.retries`). A reply that still cannot be posted is logged with its question id and counted
  (`stats`, shown by ``careerbot health`` and ``/healthz``).
- In a thread the bot has answered, follow-ups need no mention (unless CAREERBOT_SLACK_REQUIRE_MENTION); the
  thread's earlier human messages are the conversation history given to `Advisor.ask`.
- Progress is shown (assistant thread status, else an :hourglass_flowing_sand: reaction) and always
  cleared; a failure posts a short apology and is logged.
- With a backend that streams (``openai``, ``anthropic``), the answer is shown while the model writes it
  (`bot.slack.stream`), then replaced by the final answer, rendered exactly as a non-streamed one.
- **Operators can see it** (`bot.metrics`): questions by surface and outcome, stage timings, fallbacks, Web
  API retries and failures, replies, refusals; inbox and queue depth read at each scrape.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt import App
from slack_bolt.context.ack import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from ..answer import Answer, StreamingBackend
from ..careers import career_title
from ..errors import ConfigError
from ..logs import redact
from ..metrics import Metrics
from ..pipeline import Advisor
from ..settings import Settings
from ..text import detect_language
from .config import check_settings
from .mrkdwn import escape, mentions_other_user, question_text
from .observed import RESPONSE_URL, ObservedWebClient, error_label, method_of
from .render import FEEDBACK_ACTION, PICK_ACTION, Renderer, SlackMessage, parse_feedback_value, parse_pick_value
from .retries import retry_handlers
from .store import FinalState, SlackStore, WorkItem, open_store
from .stream import DraftReply, StreamSupport
from .work import Drained, WorkQueue

__all__ = ["SLASH_COMMAND", "Incoming", "SlackBot"]

log = logging.getLogger(__name__)

SLASH_COMMAND = "/career"
PROGRESS_REACTION = "hourglass_flowing_sand"
HISTORY_TURNS = 10
REPLIES_PAGE = 200
REPLIES_PAGES = 5
#: Workers and queue of the small jobs that are not answers (Home tab, welcome, thanks, notices).
CHORE_WORKERS = 2
CHORE_CAPACITY = 500
#: How often finished inbox items, old dedup keys and rate-limit hits are pruned.
PRUNE_SECONDS = 3600.0
DEFAULT_API_URL = "https://slack.com/api/"
#: Message subtypes that are still a person asking something.
_USER_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
#: Inbox item kinds and the modes of a message item.
MESSAGE, COMMAND = "message", "command"
ANSWER, FOLLOW_UP = "answer", "follow_up"
#: The payload key naming the surface a question came from (`bot.metrics.SURFACES`).
SURFACE = "surface"


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

    @property
    def question_id(self) -> str:
        """``slack:<channel>:<ts>``: the inbox item, the dedup key and the ``bot.answers`` log record's id."""
        return f"slack:{self.channel}:{self.ts}"

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Incoming:
        return cls(**{f.name: payload.get(f.name) for f in dataclasses.fields(cls)})


def _ts_key(ts: str) -> tuple[int, int]:
    whole, _, frac = (ts or "0").partition(".")
    try:
        return int(whole), int(frac.ljust(6, "0")[:6] or 0)
    except ValueError:
        return 0, 0


def _describe(exc: BaseException) -> str:
    """One line about a failed Web API call, without the request (which may carry a token)."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", None)
        error = str(exc.response.get("error", "error"))
        return f"{error}, HTTP {status}" if status and status != 200 else error
    return f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


def _surface(item: WorkItem) -> str:
    """Where an inbox item's question came from (items accepted before surfaces were recorded: inferred)."""
    payload = item.payload
    if payload.get(SURFACE):
        return str(payload[SURFACE])
    if item.kind == COMMAND:
        return "button" if item.id.startswith("pick:") else "slash"
    if payload.get("mode") == FOLLOW_UP:
        return "follow_up"
    return "dm" if payload.get("channel_type") == "im" else "mention"


class Counters:
    """Thread-safe counts of what happened since start (shown in the heartbeat and ``/healthz``), each also
    counted in ``metrics`` (``careerbot_slack_replies_total``, ``…_refused_total``, ``careerbot_inbox_…``)."""

    NAMES = ("answered", "apologized", "undelivered", "busy", "rate_limited", "resumed", "expired", "taken_over")

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.NAMES, 0)
        self._metrics = metrics

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n
        m = self._metrics
        if m is None:
            return
        if name in ("answered", "apologized", "undelivered"):
            m.replies.labels(outcome=name).inc(n)
        elif name in ("busy", "rate_limited"):
            m.refused.labels(reason=name).inc(n)
        elif name == "resumed":
            m.resumed.inc(n)
        elif name == "expired":
            m.expired.inc(n)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class SlackBot:
    """The Slack surface of an `Advisor`; ``bot.app`` is the bolt `App` to serve (HTTP) or connect (Socket Mode).

    ``http`` selects which credentials are required (see `check_settings`). The Web API client goes through
    ``settings.slack_api_url`` when set and retries as `bot.slack.retries` says. ``store`` defaults to
    `open_store` (PostgreSQL at CAREERBOT_DATABASE_URL, else SQLite at CAREERBOT_FEEDBACK_DB). ``metrics``
    (default: a new `Metrics`) counts what the app does; serve ``bot.metrics.registry``. Call `resume`
    before serving (it also starts the thread that renews this replica's leases and sweeps for orphaned
    questions), `drain` and `close` to stop.
    Raises `ConfigError` for missing or rejected settings (the token is never shown).
    """

    def __init__(
        self,
        *,
        advisor: Advisor,
        settings: Settings,
        http: bool,
        store: SlackStore | None = None,
        metrics: Metrics | None = None,
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
        self.metrics = metrics or Metrics()
        self.retry_handlers = retry_handlers(max_retries=settings.slack_max_retries, on_retry=self._count_retry)
        client = ObservedWebClient(
            metrics=self.metrics,
            token=settings.slack_bot_token.get_secret_value().strip(),
            base_url=self.api_url,
            retry_handlers=self.retry_handlers,  # (it logs as slack_sdk: quiet unless --verbose)
        )
        self.identity = self._auth_test(client)
        self.bot_user_id: str | None = self.identity.get("user_id")
        self.bot_id: str | None = self.identity.get("bot_id")
        self.renderer = Renderer(prompts=advisor.prompts, max_question_chars=settings.max_question_chars)
        self.store = store or open_store(settings)
        self.counters = Counters(self.metrics)
        self.answers = WorkQueue(name="answers", workers=settings.slack_workers, capacity=settings.slack_queue_size)
        self.chores = WorkQueue(name="chores", workers=CHORE_WORKERS, capacity=CHORE_CAPACITY)
        self._sample_state()
        secret = settings.slack_signing_secret.get_secret_value().strip() if settings.slack_signing_secret else ""
        bolt_log = logging.getLogger("bot.slack.bolt")
        if not any(isinstance(f, _SameTokenNotice) for f in bolt_log.filters):
            bolt_log.addFilter(_SameTokenNotice())
        self.app = App(
            client=client,
            signing_secret=secret,
            request_verification_enabled=http,
            process_before_response=True,  # listeners only accept work: they ack in the request's own thread
            logger=bolt_log,
        )
        self._home: tuple[Any, dict[str, Any]] | None = None  # (the knowledge it shows, the view)
        self._welcomed: set[str] = set()
        self._welcomed_lock = threading.Lock()
        self._pruned = time.monotonic()
        self._leases_stop = threading.Event()
        self._adopting = True  # False once stopping: what others left is for the replicas that stay
        self._leases: threading.Thread | None = None
        self.stream_support = StreamSupport()
        self._register()

    # -- set-up -------------------------------------------------------------------------------

    def _auth_test(self, client: WebClient) -> dict[str, Any]:
        shown = redact(self.api_url)
        where = f"SLACK_API_URL ({shown})" if self.settings.slack_api_url else f"Slack's Web API ({shown})"
        try:
            resp = client.auth_test()
        except SlackApiError as exc:
            raise ConfigError(
                f"SLACK_BOT_TOKEN: Slack rejected the bot token ({exc.response.get('error', 'error')}); "
                "expected a valid xoxb- token of an installed app"
            ) from None
        except Exception as exc:
            raise ConfigError(f"SLACK_API_URL: cannot reach {where}: {_describe(exc)}") from None
        log.info("connected as %s (bot user %s) in team %s", resp.get("user"), resp.get("user_id"), resp.get("team"))
        return dict(resp.data) if isinstance(resp.data, dict) else {}

    def _count_retry(self, url: str, reason: str) -> None:
        self.metrics.slack_retry(method=method_of(url, self.api_url), reason=reason)

    def _sample_state(self) -> None:
        """The gauges read at each scrape: inbox depth, the work queues, what the advisor serves."""
        m = self.metrics

        def inbox() -> dict[tuple[str, ...], float]:
            counts = {("pending",): 0.0, ("running",): 0.0}
            for item in self.store.unfinished():
                key = (item.state if item.state in ("pending", "running") else "pending",)
                counts[key] += 1
            return counts

        queues = {"answers": self.answers, "chores": self.chores}
        m.sample("careerbot_inbox_unfinished", "Accepted questions not yet finished (in the store's inbox), by "
                 "state: pending or running.", inbox, labels=("state",))
        m.sample("careerbot_work_queue_waiting", "Jobs waiting for a worker in this process, by queue.",
                 lambda: {(name, ): float(q.waiting) for name, q in queues.items()}, labels=("queue",))
        m.sample("careerbot_work_queue_running", "Jobs being done by this process's workers, by queue.",
                 lambda: {(name, ): float(q.running) for name, q in queues.items()}, labels=("queue",))
        m.sample("careerbot_knowledge_articles", "Articles served (after the last reload).",
                 lambda: float(len(self.advisor.knowledge.articles)))
        m.sample("careerbot_index_passages", "Passages in the index served.", lambda: float(self.advisor.index.size))
        m.sample("careerbot_store_durable", "1 when the store keeps the inbox and feedback durably, else 0.",
                 lambda: 1.0 if self.store.durable else 0.0)

    def _register(self) -> None:
        app = self.app
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("assistant_thread_started")(self._on_assistant_thread_started)
        app.event("assistant_thread_context_changed")(lambda: None)
        app.command(SLASH_COMMAND)(self._on_command)
        app.action(FEEDBACK_ACTION)(self._on_feedback)
        app.action(re.compile(rf"^{re.escape(PICK_ACTION)}:"))(self._on_pick)
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

    def resume(self) -> int:
        """Queue the work a previous process accepted and did not finish (and no live replica holds); returns how
        many items.

        Items accepted more than CAREERBOT_SLACK_RESUME_WITHIN seconds ago are given up (logged, counted).
        An item that was being answered when the process died is first checked against its thread, so an
        answer that was posted is not posted again.
        """
        within = self.settings.slack_resume_within
        expired = self.store.expire(before=time.time() - within)
        if expired:
            self.counters.add("expired", expired)
            log.warning(
                "%d unfinished question(s) accepted more than %g s ago are not answered (CAREERBOT_SLACK_RESUME_WITHIN)",
                expired,
                within,
            )
        items = self.store.adopt()  # unfinished, and held by no live replica
        for item in items:
            self.answers.submit(self._job(item), force=True)  # accepted already: the bound is for new work
        if items:
            self.counters.add("resumed", len(items))
            log.info("resuming %d question(s) accepted before the restart and not yet answered", len(items))
        self.store.prune()
        if self._leases is None:
            self._leases = threading.Thread(target=self._keep_leases, name="careerbot-leases", daemon=True)
            self._leases.start()
        return len(items)

    def _keep_leases(self) -> None:
        """Renew this replica's leases every third of the lease; every half lease, `sweep` for orphaned items."""
        lease = self.settings.slack_lease_seconds
        renew_every, sweep_every = lease / 3, lease / 2
        swept = time.monotonic()
        failing = False
        while not self._leases_stop.wait(renew_every):
            try:
                self.store.renew()
                if time.monotonic() - swept >= sweep_every:
                    swept = time.monotonic()
                    self.sweep()
                if failing:
                    log.info("the Slack store answers again; leases renewed")
                failing = False
            except Exception as exc:  # noqa: BLE001 - the database may come back; the bot must not stop
                if not failing:
                    log.error("could not renew this replica's leases (%s); retrying", redact(str(exc).splitlines()[0]
                                                                                           if str(exc) else repr(exc)))
                failing = True

    def sweep(self) -> int:
        """Take over the unfinished items no live replica holds (their replica died), as many as the queue has
        room for; returns how many were queued. Items older than CAREERBOT_SLACK_RESUME_WITHIN are given up."""
        expired = self.store.expire(before=time.time() - self.settings.slack_resume_within)
        if expired:
            self.counters.add("expired", expired)
            log.warning("%d orphaned question(s) accepted more than %g s ago are not answered "
                        "(CAREERBOT_SLACK_RESUME_WITHIN)", expired, self.settings.slack_resume_within)
        room = self.answers.capacity - self.answers.waiting
        if room <= 0 or not self._adopting:
            return 0
        items = self.store.adopt(limit=room)
        for item in items:
            if not self.answers.submit(self._job(item), force=True):  # stopping meanwhile
                self.store.release()
                return 0
        if items:
            self.counters.add("resumed", len(items))
            log.info("took over %d question(s) whose replica stopped renewing its claim", len(items))
        return len(items)

    def maintain(self) -> None:
        """Periodic housekeeping (from the main loop): prune the store once every `PRUNE_SECONDS`."""
        if time.monotonic() - self._pruned >= PRUNE_SECONDS:
            self._pruned = time.monotonic()
            try:
                self.store.prune()
            except Exception as exc:  # noqa: BLE001 - housekeeping must not stop the bot
                log.warning("could not prune the Slack store: %s", exc)

    def stats(self) -> dict[str, Any]:
        """Counts since start, the queue, and the store's state: for the heartbeat and ``/healthz`` (no secrets).

        ``database``: the store's backend, whether it answers and its schema version; when it does not answer,
        ``store_problem`` says so (`careerbot health` then fails)."""
        database = self.store.health()
        problem = self.store.problem or (database.get("error") if not database.get("up", True) else None)
        return {
            **self.counters.snapshot(),
            "waiting": self.answers.waiting,
            "in_progress": self.answers.running,
            "store_durable": self.store.durable,
            "database": {k: v for k, v in database.items() if k != "error"},
            **({"store_problem": problem} if problem else {}),
        }

    def healthz(self) -> dict[str, Any]:
        """`stats` for ``GET /healthz``, with ``ok`` False (a 503) while the database does not answer."""
        stats = self.stats()
        return {"ok": stats["database"].get("up", True) is not False, **stats}

    def drain(self, timeout: float) -> Drained:
        """Finish the accepted answers (running and queued), waiting at most ``timeout`` seconds; what was left.

        Call it after the transport stopped taking requests. What is left stays unfinished in the inbox: a
        durable store has it answered by the next start (`resume`).
        """
        deadline = time.monotonic() + timeout
        self._adopting = False  # (its leases are still renewed: the answers running now are its own)
        drained = self.answers.drain(timeout)
        self.chores.drain(max(0.0, min(1.0, deadline - time.monotonic())))
        if drained.unstarted:
            try:
                released = self.store.release()  # another replica may answer them now, not after the lease
            except Exception as exc:  # noqa: BLE001
                log.warning("could not release the questions not started (%s); they are taken over when the "
                            "lease lapses", exc)
            else:
                if released:
                    log.info("released %d question(s) not started, for another replica or the next start", released)
        return drained

    def close(self) -> None:
        """Take no new work (`drain` first lets the accepted answers finish) and release the store.

        An answer still running keeps the store open: the process is about to exit, and its item stays
        unfinished in the inbox either way.
        """
        self._leases_stop.set()
        left = self.answers.drain(0)
        self.chores.drain(0)
        if left.running == 0:
            if self._leases is not None:
                self._leases.join(5)
            self.store.close()

    # -- listeners: accept work, never call the Web API ----------------------------------------------

    def _incoming(self, event: dict[str, Any], context: Any) -> Incoming | None:
        """The event as a user's message, or None when it is not one to answer (bots, edits, ourselves)."""
        if event.get("subtype") not in _USER_SUBTYPES or event.get("bot_id") or event.get("bot_profile"):
            return None
        user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
        if not user or not channel or not ts or user == self.bot_user_id:
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

    def _on_mention(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        msg = self._incoming(event, context)
        if msg is not None:
            self._accept(msg, mode=ANSWER, event_id=body.get("event_id"), surface="mention")

    def _on_message(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        msg = self._incoming(event, context)
        if msg is None:
            return
        if msg.channel_type == "im":
            self._accept(msg, mode=ANSWER, event_id=body.get("event_id"), surface="dm")
            return
        # Channels, private channels, group DMs: only follow-ups in threads the bot has answered (checked by
        # the worker: it needs the thread).
        bot = self.bot_user_id
        if not msg.in_thread or self.settings.slack_require_mention:
            return
        if bot and f"<@{bot}" in msg.text:
            return  # the app_mention event answers it
        if mentions_other_user(msg.text, bot_user_id=bot) or not self._allowed(msg.channel):
            return
        self._accept(msg, mode=FOLLOW_UP, event_id=body.get("event_id"), surface="follow_up")

    def _accept(self, msg: Incoming, *, mode: str, event_id: str | None, surface: str) -> None:
        """Record ``msg`` in the inbox (committed) and queue it; the caller's return acknowledges Slack."""
        qid = msg.question_id
        if not self._allowed(msg.channel):
            log.info("ignored a message in %s (not in CAREERBOT_SLACK_ALLOWED_CHANNELS)", msg.channel)
            return
        payload = {**dataclasses.asdict(msg), "mode": mode, SURFACE: surface}
        if not self.store.accept(qid, kind=MESSAGE, payload=payload, event_id=event_id):
            log.info("skipped %s: already accepted (a Slack retry or a second delivery)", qid)
            return
        question = question_text(msg.text, bot_user_id=self.bot_user_id)
        language = detect_language(question) if question else "ja"
        if mode == ANSWER and question and not self._allow(msg.user):
            self.store.finish(qid, "dropped")
            self._notify(msg, self._rate_limited(language), what=f"the rate-limit note for {qid}")
            return
        busy = self._enqueue(WorkItem(id=qid, kind=MESSAGE, payload=payload, created=time.time()), language=language)
        if busy is not None and mode == ANSWER:  # a follow-up may not be for us: no note
            self._notify(msg, busy, what=f"the busy note for {qid}")

    def _enqueue(self, item: WorkItem, *, language: str) -> SlackMessage | None:
        """Queue an accepted item; when the queue is full, drop it and return the busy note for the asker."""
        if self.answers.submit(self._job(item)):
            return None
        self.store.finish(item.id, "dropped")
        self.counters.add("busy")
        waiting = self.answers.waiting
        log.warning("busy: %d questions waiting; %s not taken (CAREERBOT_SLACK_QUEUE_SIZE)", waiting, item.id)
        return self.renderer.text("slack_busy.mrkdwn", language=language, waiting=waiting)

    def _on_command(self, ack: Ack, command: dict[str, Any]) -> None:
        channel, user = command.get("channel_id", ""), command.get("user_id", "")
        question = question_text(command.get("text") or "", bot_user_id=self.bot_user_id)
        language = detect_language(question) if question else "ja"
        if not self._allowed(channel):
            ack(response_type="ephemeral", **self.renderer.text("slack_not_allowed.mrkdwn", language=language).kwargs())
            return
        if not question:
            ack(response_type="ephemeral", **self._help(language).kwargs())
            return
        if not self._allow(user):
            ack(response_type="ephemeral", **self._rate_limited(language).kwargs())
            return
        qid = f"slash:{channel}:{command.get('trigger_id', '')}"
        payload = {"channel": channel, "user": user, "text": question, "response_url": command.get("response_url"),
                   SURFACE: "slash"}
        if not self.store.accept(qid, kind=COMMAND, payload=payload):
            ack()  # a repeat of an accepted command
            return
        busy = self._enqueue(WorkItem(id=qid, kind=COMMAND, payload=payload, created=time.time()), language=language)
        if busy is not None:
            ack(response_type="ephemeral", **busy.kwargs())
        else:
            ack()

    def _on_feedback(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        parsed = parse_feedback_value(action.get("value") or "")
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        message_ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
        user = (body.get("user") or {}).get("id")
        if parsed is None or not channel or not message_ts or not user:
            ack()
            log.warning("ignored a feedback click without a value, channel, message or user")
            return
        value, answer_id = parsed
        row = self.store.record_feedback(  # committed before the ack: a click Slack showed as taken is kept
            answer_id=answer_id, channel=channel, message_ts=message_ts, user=user, value=value
        )
        ack()
        log.info("feedback %s on %s/%s", value, channel, message_ts)
        language = detect_language(row.question) if row.question else "ja"
        thanks = self.renderer.text("slack_feedback_thanks.mrkdwn", language=language, value=value)
        response_url = body.get("response_url")
        what = f"the thanks for feedback on {channel}/{message_ts}"
        if container.get("is_ephemeral") and response_url:
            self._chore(what, lambda: self._send_response(response_url, thanks, response_type="ephemeral"))
        else:
            self._chore(
                what,
                lambda: self.app.client.chat_postEphemeral(
                    channel=channel, user=user, thread_ts=container.get("thread_ts"), **thanks.kwargs()
                ),
            )

    def _on_pick(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A career button under an answer several careers answered: the question again, for that career.

        Accepted and queued like a question (durably, then acknowledged); answered in the same thread, or
        privately through the ``response_url`` under a private ``/career`` answer.
        """
        parsed = parse_pick_value(action.get("value") or "")
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        user = (body.get("user") or {}).get("id")
        career = self.advisor.careers.get(parsed[0]) if parsed else None
        clicked = str(action.get("action_ts") or body.get("trigger_id") or time.time())
        if parsed is None or career is None or not channel or not user:
            ack()
            log.warning("ignored a career button without a known career, a question, a channel or a user")
            return
        question = f"{career.name}: {parsed[1]}"  # named now, so the analysis reads it as about that career
        language = detect_language(parsed[1])
        response_url = body.get("response_url")
        if container.get("is_ephemeral") and response_url:
            qid = f"pick:{channel}:{clicked}"
            payload = {"channel": channel, "user": user, "text": question, "response_url": response_url,
                       SURFACE: "button"}
            if self.store.accept(qid, kind=COMMAND, payload=payload):
                busy = self._enqueue(WorkItem(id=qid, kind=COMMAND, payload=payload, created=time.time()),
                                     language=language)
                if busy is not None:
                    ack(response_type="ephemeral", replace_original=False, **busy.kwargs())
                    return
            ack()
            return
        message = body.get("message") or {}
        msg = Incoming(
            channel=channel,
            user=user,
            ts=clicked,
            thread_ts=container.get("thread_ts") or message.get("thread_ts") or container.get("message_ts"),
            text=question,
            channel_type="im" if channel.startswith("D") else None,
            team=(body.get("team") or {}).get("id"),
        )
        self._accept(msg, mode=ANSWER, event_id=None, surface="button")
        ack()

    def _on_home_opened(self, event: dict[str, Any]) -> None:
        """Home tab: what the bot knows. Messages tab: a welcome with examples in a DM that has no messages yet."""
        user = event.get("user")
        if not user:
            return
        if event.get("tab") == "messages":
            channel = event.get("channel")
            self._chore(f"the welcome of {user}", lambda: self._welcome(user=user, channel=channel))
        elif event.get("tab") == "home":
            self._chore(f"the Home tab of {user}", lambda: self._publish_home(user))

    def _on_assistant_thread_started(self, event: dict[str, Any]) -> None:
        thread = event.get("assistant_thread") or {}
        if not thread.get("channel_id") or not thread.get("thread_ts"):
            return
        title, prompts = self.renderer.suggested_prompts(self.advisor.knowledge.articles)
        self._chore(
            "suggested prompts",
            lambda: self.app.client.assistant_threads_setSuggestedPrompts(
                channel_id=thread["channel_id"], thread_ts=thread["thread_ts"], title=title, prompts=prompts
            ),
        )

    def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        kind = (body.get("event") or {}).get("type") if isinstance(body, dict) else None
        log.error("unhandled error in a %s listener: %s", kind or body.get("type", "Slack"), _describe(error))

    # -- chores: small Web API jobs off the request thread --------------------------------------------

    def _chore(self, what: str, job: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - a nicety that failed; logged in one line
                log.warning("could not send %s: %s", what, _describe(exc))

        if not self.chores.submit(run):
            log.warning("busy: dropped %s", what)

    def _notify(self, msg: Incoming, message: SlackMessage, *, what: str) -> None:
        """A note only the asker sees, in the question's thread (rate limit, busy)."""
        self._chore(
            what,
            lambda: self.app.client.chat_postEphemeral(
                channel=msg.channel, user=msg.user, thread_ts=msg.reply_ts, **message.kwargs()
            ),
        )

    def _publish_home(self, user: str) -> None:
        knowledge = self.advisor.knowledge  # re-rendered after a live reload
        if self._home is None or self._home[0] is not knowledge:
            self._home = (knowledge, self.renderer.home(knowledge.articles, base_url=self.settings.article_base_url))
        self.app.client.views_publish(user_id=user, view=self._home[1])

    def _welcome(self, *, user: str, channel: str | None) -> None:
        with self._welcomed_lock:
            if not channel or user in self._welcomed:
                return
            self._welcomed.add(user)
        client = self.app.client
        history = client.conversations_history(channel=channel, limit=1)
        if history.get("messages"):
            return  # an ongoing conversation: no welcome
        message = self._help("ja")
        client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)

    def _send_response(self, response_url: str, message: SlackMessage, *, response_type: str) -> None:
        """Post to a ``response_url`` (slash commands, ephemeral messages), with the Web API's retries."""
        try:
            resp = WebhookClient(response_url, retry_handlers=self.retry_handlers).send(
                response_type=response_type, replace_original=False, **message.kwargs()
            )
        except Exception as exc:
            self.metrics.slack_error(method=RESPONSE_URL, error=error_label(exc))
            raise
        if resp.status_code != 200:
            self.metrics.slack_error(method=RESPONSE_URL, error=f"http_{resp.status_code}")
            raise RuntimeError(f"response_url answered HTTP {resp.status_code} ({resp.body[:100]})")

    # -- answering (on the answer workers) -----------------------------------------------------------

    def _job(self, item: WorkItem) -> Callable[[], None]:
        return lambda: self._run(item)

    def _run(self, item: WorkItem) -> None:
        """Do one inbox item and record how it ended; never raises (a failure is logged and counted)."""
        attempt = self.store.claim(item.id)
        if attempt is None:
            log.info("skipped %s: finished already, or another replica is answering it", item.id)
            return
        state: FinalState = "failed"
        try:
            if item.kind == MESSAGE:
                state = self._answer_message(
                    Incoming.from_payload(item.payload), item.payload.get("mode"), attempt, surface=_surface(item)
                )
            elif item.kind == COMMAND:
                state = self._answer_command(item.id, item.payload, surface=_surface(item))
            else:
                log.error("inbox item %s has an unknown kind %r; dropped", item.id, item.kind)
                state = "dropped"
        except _TakenOver:
            self.counters.add("taken_over")
            log.warning("%s was taken over by another replica while this one answered it (it stalled for more "
                        "than CAREERBOT_SLACK_LEASE_SECONDS); not posting", item.id)
            return  # the item is the other replica's to finish
        except Exception:
            log.exception("could not handle %s", item.id)
        self.store.finish(item.id, state)

    def _answer_message(self, msg: Incoming, mode: str | None, attempt: int, *, surface: str) -> FinalState:
        """Answer ``msg`` in its thread (``mode`` ``follow_up``: only if the bot answered there before)."""
        client = self.app.client
        qid = msg.question_id
        question = question_text(msg.text, bot_user_id=self.bot_user_id)
        language = detect_language(question) if question else "ja"
        replies: list[dict[str, Any]] | None = None
        if mode == FOLLOW_UP:
            replies = self._replies(client, msg.channel, msg.reply_ts)
            if not any(self._is_own(m) for m in replies):
                return "dropped"  # a thread the bot is not part of
            if question and not self._allow(msg.user):
                self._notify(msg, self._rate_limited(language), what=f"the rate-limit note for {qid}")
                return "dropped"
        if attempt > 1:  # resumed: it was being answered when the last process stopped
            replies = replies if replies is not None else self._replies(client, msg.channel, msg.reply_ts)
            if any(self._is_own(m) and _ts_key(m.get("ts", "")) > _ts_key(msg.ts) for m in replies):
                log.info("%s was answered before the restart; not answering again", qid)
                return "done"
        if not question:
            return self._reply(qid, language, self._help(language), post=lambda m: self._post(client, msg, m))
        draft: DraftReply | None = None

        def post(message: SlackMessage) -> None:
            if draft is not None and draft.mode != "done":
                draft.finish(message)  # replaces the draft shown while the model wrote, or posts
            else:
                self._post(client, msg, message)

        clear = self._show_progress(client, msg, language)
        try:
            try:
                if replies is None and msg.in_thread:
                    replies = self._replies(client, msg.channel, msg.reply_ts)
                history = self._history(replies or (), msg)
                draft = self._draft(client, msg, language)
                answer, cut = self._ask(
                    question,
                    history,
                    on_delta=draft.on_delta if draft is not None else None,
                    question_id=qid,
                    surface=surface,
                )
                message = self._render(
                    answer, channel=msg.channel, thread_ts=msg.reply_ts, user=msg.user, history=history, cut=cut
                )
            except Exception:
                log.exception("could not answer %s", qid)
                return self._reply(qid, language, None, post=post)
            state = self._reply(qid, language, message, post=post)
            if state == "done":
                log.info(
                    "answered %s (%s, %d citations, %.0f ms%s)",
                    qid,
                    "abstained" if answer.abstained else "confident" if answer.confident else "unsure",
                    len(answer.citations),
                    answer.timings_ms.get("total", 0.0),
                    f", {answer.backend}, draft: {draft.delivered}" if draft is not None else "",
                )
            return state
        finally:
            clear()

    def _answer_command(self, qid: str, payload: dict[str, Any], *, surface: str) -> FinalState:
        """Answer a ``/career`` question through its ``response_url`` (privately, unless PUBLIC_SLASH)."""
        url, question = str(payload.get("response_url") or ""), str(payload.get("text") or "")
        language = detect_language(question) if question else "ja"
        reply_type = "in_channel" if self.settings.slack_public_slash else "ephemeral"

        def private(message: SlackMessage) -> None:
            self._send_response(url, message, response_type="ephemeral")

        try:
            answer, cut = self._ask(question, (), question_id=qid, surface=surface)
            message = self._render(
                answer, channel=payload.get("channel") or "", thread_ts=None, user=payload.get("user"), history=(), cut=cut
            )
        except Exception:
            log.exception("could not answer %s", qid)
            return self._reply(qid, language, None, post=private)
        return self._reply(
            qid, language, message, post=lambda m: self._send_response(url, m, response_type=reply_type), apologize=private
        )

    def _reply(
        self,
        qid: str,
        language: str,
        message: SlackMessage | None,
        *,
        post: Callable[[SlackMessage], Any],
        apologize: Callable[[SlackMessage], Any] | None = None,
    ) -> FinalState:
        """Post ``message``; if that fails (after the retries) or there is none, post the apology.

        Every outcome is counted: answered, apologized, or undelivered (logged with the question id).
        Nothing is posted (`_TakenOver`) when another replica took the question over meanwhile.
        """
        try:
            ours = self.store.holds(qid)
        except Exception as exc:  # noqa: BLE001 - the database may be away: answering beats staying silent
            log.warning("could not check that %s is still this replica's (%s); posting", qid, _describe(exc))
            ours = True
        if not ours:
            raise _TakenOver(qid)
        if message is not None:
            try:
                post(message)
            except Exception as exc:  # noqa: BLE001
                log.error("could not post the answer to %s (%s); posting an apology instead", qid, _describe(exc))
            else:
                self.counters.add("answered")
                return "done"
        try:
            (apologize or post)(self.renderer.text("slack_error.mrkdwn", language=language))
        except Exception as exc:  # noqa: BLE001
            self.counters.add("undelivered")
            log.error(
                "could not post any reply to %s (%s): counted as undelivered",
                qid,
                _describe(exc),
                extra={"event": "reply_failed", "question_id": qid},
            )
        else:
            self.counters.add("apologized")
        return "failed"

    def _ask(
        self,
        question: str,
        history: Sequence[str],
        *,
        question_id: str,
        surface: str,
        on_delta: Callable[[str], None] | None = None,
    ) -> tuple[Answer, bool]:
        """The answer (its log record named ``question_id``, e.g. ``slack:<channel>:<ts>``) and whether the question was cut.

        Counted in `metrics` by ``surface`` (`bot.metrics.SURFACES`): answered, abstained, or failed when it raises.
        """
        limit = self.settings.max_question_chars
        cut = len(question) > limit
        try:
            answer = self.advisor.ask(
                question[:limit],
                history=[h[:limit] for h in history],
                backend=self.settings.backend,
                on_delta=on_delta,
                question_id=question_id,
            )
        except Exception:
            self.metrics.question_failed(surface=surface)
            raise
        self.metrics.answered(answer, surface=surface, backend=self.settings.backend)
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
        self, answer: Answer, *, channel: str, thread_ts: str | None, user: str | None, history: Sequence[str], cut: bool
    ) -> SlackMessage:
        """The answer as a message; with feedback buttons when the store keeps the answer durably."""
        answer_id: str | None = None
        if self.store.durable:
            try:
                answer_id = self.store.record_answer(
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
            except Exception as exc:  # noqa: BLE001 - the answer matters more than its feedback buttons
                log.error("could not store the answer for feedback (%s); posting it without buttons", exc)
        names = {slug: c.name for slug in answer.choices if (c := self.advisor.careers.get(slug))}
        return self.renderer.answer(answer, answer_id=answer_id, cut=cut, career_names=names)

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
        """The note for a user past CAREERBOT_SLACK_RATE_LIMIT_PER_MINUTE (each call counts one refusal)."""
        self.counters.add("rate_limited")
        return self.renderer.text(
            "slack_rate_limited.mrkdwn", language=language, per_minute=self.settings.slack_rate_limit_per_minute
        )

    # -- Slack helpers --------------------------------------------------------------------------------

    def _allowed(self, channel: str) -> bool:
        """DMs always; channels when there is no allow-list or they are on it."""
        allowed = self.settings.slack_allowed_channels
        return not allowed or channel in allowed or channel.startswith("D")

    def _allow(self, user: str) -> bool:
        """Whether ``user`` is within CAREERBOT_SLACK_RATE_LIMIT_PER_MINUTE (and count the question)."""
        return self.store.allow(f"user:{user}", per_minute=self.settings.slack_rate_limit_per_minute)

    def _is_own(self, message: dict[str, Any]) -> bool:
        return bool(
            (self.bot_user_id and message.get("user") == self.bot_user_id)
            or (self.bot_id and message.get("bot_id") == self.bot_id)
        )

    def _history(self, replies: Sequence[dict[str, Any]], msg: Incoming) -> list[str]:
        """Earlier human messages of the thread, oldest first, without bot mentions (at most HISTORY_TURNS)."""
        turns: list[str] = []
        before = _ts_key(msg.ts)
        for m in sorted(replies, key=lambda m: _ts_key(m.get("ts", ""))):
            if _ts_key(m.get("ts", "")) >= before:
                break
            if self._is_own(m) or m.get("bot_id") or m.get("subtype") not in _USER_SUBTYPES:
                continue
            text = question_text(m.get("text") or "", bot_user_id=self.bot_user_id)
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
        except Exception as exc:  # noqa: BLE001 - refused, or unreachable after the retries
            log.warning("conversations.replies failed in %s (%s); answering without the thread", channel, _describe(exc))
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
        try:
            client.reactions_add(channel=msg.channel, timestamp=msg.ts, name=PROGRESS_REACTION)
        except SlackApiError as exc:
            if exc.response.get("error") != "already_reacted":  # (left by a process that died mid-answer)
                log.debug("reactions.add failed: %s", _describe(exc))
                return lambda: None
        except Exception as exc:  # noqa: BLE001 - progress is a nicety
            log.debug("reactions.add failed: %s", _describe(exc))
            return lambda: None

        def clear_reaction() -> None:
            _quietly(client.reactions_remove, channel=msg.channel, timestamp=msg.ts, name=PROGRESS_REACTION)

        return clear_reaction


class _TakenOver(Exception):
    """Another replica took the question over while this one answered it (see `SlackStore.holds`)."""


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
