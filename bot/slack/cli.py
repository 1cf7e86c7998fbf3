"""``careerbot slack`` (run the Slack app), ``careerbot feedback export`` (👎 answers as a question set) and
``careerbot db upgrade|copy`` (the PostgreSQL schema; SQLite's answers and feedback into PostgreSQL).

Registered through ``bot.cli.EXTENSION_COMMANDS``; Slack's libraries are imported
only when ``careerbot slack`` runs, so ``careerbot --help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..logs import configure_logging
from ..settings import Settings

__all__ = ["register"]

log = logging.getLogger("bot.slack")

#: How often the main loop looks at signals, the heartbeat and the connection.
TICK_SECONDS = 0.25
#: The watcher's poll interval when CAREERBOT_RELOAD_INTERVAL is 0: it then reloads only on SIGHUP.
NO_POLLING = 365 * 24 * 3600.0


class _Interrupted(BaseException):
    """Raised by the signal handler while starting (or by a second signal while stopping): stop now."""


class _Signals:
    """SIGTERM/SIGINT ask the process to stop, SIGHUP asks for a knowledge reload.

    Once the bot runs, the handlers only record what arrived; the main loop acts on
    it. While starting, and for a second stop signal while stopping, the handler
    raises `_Interrupted` so that a long start or drain can be cut short.
    """

    def __init__(self) -> None:
        self.stop: str | None = None
        self.hups = 0
        self.interruptible = True
        self.ready = False
        self._previous: dict[int, Any] = {}

    def install(self) -> _Signals:
        handlers: dict[int, Any] = {signal.SIGTERM: self._on_stop, signal.SIGINT: self._on_stop}
        if hasattr(signal, "SIGHUP"):  # not on Windows
            handlers[signal.SIGHUP] = self._on_hup
        for sig, handler in handlers.items():
            self._previous[sig] = signal.signal(sig, handler)
        return self

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    def _on_stop(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.stop is None:
            self.stop = name
        if self.interruptible:
            self.interruptible = False  # raise once
            raise _Interrupted(name)

    def _on_hup(self, signum: int, frame: Any) -> None:
        self.hups += 1


def cmd_slack(args: argparse.Namespace, settings: Settings) -> int:
    from ..health import Heartbeat, fallback_heartbeat_path, heartbeat_path
    from .config import check_settings

    http = bool(args.http)
    if not http and (args.port is not None or args.host is not None):
        raise ConfigError("--port/--host: only used with --http (without it the app connects with Socket Mode)")
    check_settings(settings, http=http)  # before the index loads: a missing token fails in a second
    configure_logging(fmt=args.log_format or settings.log_format, verbose=args.verbose)

    heartbeat = _Beats(
        Heartbeat(
            heartbeat_path(settings), mode="http" if http else "socket", fallback=fallback_heartbeat_path(settings)
        )
    )
    signals = _Signals().install()
    try:
        left = _run(args, settings, http=http, heartbeat=heartbeat, signals=signals)
    except _Interrupted as exc:
        if signals.ready:  # a second signal while finishing the answers in flight
            log.warning("%s again: stopped without waiting for the answers in flight (they are resumed at the next "
                        "start)", exc)
            left = 1
        else:
            log.info("%s: stopped while starting", exc)
            left = 0
    finally:
        signals.restore()
    if left:
        # Workers still answering must not race the interpreter's teardown: leave now, within the bound.
        logging.shutdown()
        os._exit(1)
    return 0


class _Beats:
    """The heartbeat, written from the main thread; a failed write is logged once and never stops the bot."""

    def __init__(self, heartbeat: Any) -> None:
        self.heartbeat = heartbeat
        self.failed = False
        self.place: Any = None

    def __call__(
        self, state: str, *, connected: bool = False, advisor: Any = None, bot: Any = None, force: bool = False
    ) -> None:
        articles = len(advisor.knowledge.articles) if advisor is not None else 0
        stats = bot.stats() if bot is not None else {}
        due = self.heartbeat.due(
            state=state, connected=connected, articles=articles, undelivered=stats.get("undelivered", 0)
        )
        if not force and not due:
            return
        passages = advisor.index.size if advisor is not None else 0
        problems = [stats["store_problem"]] if stats.get("store_problem") else []
        try:
            self.heartbeat.beat(
                state=state, connected=connected, articles=articles, passages=passages, stats=stats, problems=problems
            )
            self.failed = False
        except OSError as exc:
            if not self.failed:
                log.warning(
                    "cannot write the heartbeat %s (%s); `careerbot health` will report it", self.heartbeat.path, exc
                )
            self.failed = True
            return
        if self.heartbeat.written_to != self.place:
            self.place = self.heartbeat.written_to
            if self.place != self.heartbeat.path:
                log.warning(
                    "cannot write the heartbeat in the data dir; writing it to %s (`careerbot health` reads it there)",
                    self.place,
                )


def _run(args: argparse.Namespace, settings: Settings, *, http: bool, heartbeat: _Beats, signals: _Signals) -> int:
    """Start, serve until SIGTERM/SIGINT, stop gracefully; returns how many accepted answers were left undone."""
    heartbeat("starting", force=True)
    try:
        return _serve(args, settings, http=http, heartbeat=heartbeat, signals=signals)
    finally:
        heartbeat("stopped", force=True)


def _serve(args: argparse.Namespace, settings: Settings, *, http: bool, heartbeat: _Beats, signals: _Signals) -> int:
    from ..metrics import Metrics, MetricsServer

    metrics = Metrics()
    # A port of its own when CAREERBOT_METRICS_PORT is set (bound first: a taken port fails in a second);
    # else HTTP mode serves /metrics on the Slack port and Socket Mode serves none.
    own_port = None
    if settings.metrics_port is not None:
        own_port = MetricsServer(metrics=metrics, host=settings.metrics_host, port=settings.metrics_port)
        log.info("serving metrics on %s", own_port.url)
    try:
        return _serve_with(args, settings, http=http, heartbeat=heartbeat, signals=signals, metrics=metrics,
                           on_slack_port=own_port is None)
    finally:
        if own_port is not None:
            own_port.shutdown()


def _serve_with(
    args: argparse.Namespace,
    settings: Settings,
    *,
    http: bool,
    heartbeat: _Beats,
    signals: _Signals,
    metrics: Any,
    on_slack_port: bool,
) -> int:
    from ..pipeline import Advisor
    from ..reload import KnowledgeWatcher
    from .app import SlackBot

    start = time.perf_counter()
    advisor = Advisor(settings=settings, notify=lambda m: log.info("%s", m))
    log.info(
        "knowledge base ready in %.1f s: %d articles, %d passages",
        time.perf_counter() - start,
        len(advisor.knowledge.articles),
        advisor.index.size,
    )
    bot = SlackBot(advisor=advisor, settings=settings, http=http, metrics=metrics)
    bot.resume()  # what a previous process accepted and did not answer: queued before any new work
    watcher: Any = None
    server: Any = None
    handler: Any = None
    try:
        watcher = KnowledgeWatcher(
            advisor=advisor, interval=settings.reload_interval or NO_POLLING, metrics=metrics
        ).start()
        if http:
            from .server import SlackHTTPServer

            if settings.slack_app_token is not None:
                log.info("--http given: serving HTTP; SLACK_APP_TOKEN is not used")
            assert settings.slack_signing_secret is not None  # check_settings
            server = SlackHTTPServer(
                app=bot.app,
                signing_secret=settings.slack_signing_secret.get_secret_value(),
                host=args.host or "0.0.0.0",
                port=args.port if args.port is not None else 3000,
                health=lambda: {"articles": len(advisor.knowledge.articles), **bot.healthz()},
                max_connections=settings.slack_http_max_connections,
                read_timeout=settings.slack_http_read_timeout,
                metrics=metrics,
                serve_metrics=on_slack_port,
            ).start()

            def connected() -> bool:
                return bool(server.serving)
        else:
            handler = bot.socket_mode_handler()
            log.info("connecting to Slack with Socket Mode")
            _connect(handler)

            def connected() -> bool:
                return bool(handler.client.is_connected())

        signals.interruptible = False
        signals.ready = True
        every = settings.reload_interval
        polling = f"every {every:g} s and on SIGHUP" if every else "on SIGHUP only"
        mode = "HTTP" if http else "Socket"
        log.info("ready (%s mode); the knowledge folder is reloaded %s; SIGTERM stops", mode, polling)
        hups = 0
        while signals.stop is None:
            if signals.hups != hups:
                hups = signals.hups
                log.info("SIGHUP: reloading the knowledge folder")
                watcher.trigger()
            heartbeat("running", connected=connected(), advisor=advisor, bot=bot)
            bot.maintain()
            time.sleep(TICK_SECONDS)

        # Graceful stop: take no new work, finish the answers in flight within the bound, exit.
        limit = settings.shutdown_timeout
        deadline = time.monotonic() + limit
        log.info(
            "%s: stopping; no new questions, finishing the %d answer(s) in progress and %d waiting (up to %g s)",
            signals.stop,
            bot.answers.running,
            bot.answers.waiting,
            limit,
        )
        heartbeat("stopping", advisor=advisor, bot=bot, force=True)
        if server is not None:
            server.shutdown(timeout=min(5.0, limit))
            server = None
        if handler is not None:
            handler.close()
            handler = None
        signals.interruptible = True  # a second SIGTERM/SIGINT stops waiting
        bot.drain(timeout=max(0.0, deadline - time.monotonic()))
        signals.interruptible = False
        watcher.stop(timeout=1.0)
        watcher = None
        left = bot.answers.account()  # counted now, just before the exit: an answer may finish after the bound
        _log_drained(left, limit=limit, durable=bot.store.durable)
        return left.running + left.unstarted
    finally:
        signals.interruptible = False
        if watcher is not None:
            watcher.stop(timeout=1.0)
        if server is not None:
            server.shutdown(timeout=0)
        if handler is not None:
            handler.close()
        bot.close()


def _log_drained(drained: Any, *, limit: float, durable: bool) -> None:
    """One line: what the stop finished, and exactly what it left (and what happens to it)."""
    if drained.clean:
        log.info("stopped: every accepted answer was posted (%d finished while stopping)", drained.finished)
        return
    later = (
        "they stay in the inbox and are answered at the next start (within CAREERBOT_SLACK_RESUME_WITHIN)"
        if durable
        else "they are lost: the store is not durable"
    )
    log.warning(
        "stopped after %g s: %d answer(s) finished while stopping; %d still running and %d never started were "
        "abandoned: %s",
        limit,
        drained.finished,
        drained.running,
        drained.unstarted,
        later,
    )


def _connect(handler: Any) -> None:
    """Open the Socket Mode connection; a refusal is a `ConfigError` naming SLACK_APP_TOKEN."""
    from slack_sdk.errors import SlackApiError

    try:
        handler.connect()
    except SlackApiError as exc:
        raise ConfigError(
            f"SLACK_APP_TOKEN: Slack refused a Socket Mode connection ({exc.response.get('error', 'error')}); "
            "expected an app-level token with connections:write of an app with Socket Mode enabled"
        ) from None
    except OSError as exc:
        raise ConfigError(f"SLACK_APP_TOKEN: cannot open a Socket Mode connection ({exc})") from None


def cmd_feedback_export(args: argparse.Namespace, settings: Settings) -> int:
    from ..questions import write_jsonl
    from .feedback import negative_questions
    from .store import open_existing_store

    store = open_existing_store(settings)  # PostgreSQL at CAREERBOT_DATABASE_URL, else the SQLite file
    try:
        questions = negative_questions(store)
    finally:
        store.close()
    out: Path = args.out
    if out.suffix != ".jsonl":
        raise ConfigError(f"{out}: the export is JSONL; name the file *.jsonl")
    write_jsonl(out, questions)
    print(
        f"wrote {len(questions)} negatively rated question(s) to {out} (tagged needs-review: correct the "
        "expectations before using them in the eval)",
        file=sys.stderr,
    )
    return 0


def _postgres_url(settings: Settings) -> str:
    url = settings.database_url.get_secret_value().strip() if settings.database_url else ""
    if not url.lower().startswith(("postgresql://", "postgres://")):
        raise ConfigError("CAREERBOT_DATABASE_URL: not set to a postgresql://user:password@host:port/database URL")
    return url


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from ..logs import redact
    from .pg_store import migrate

    url = _postgres_url(settings)
    version, applied = migrate(url, connect_timeout=settings.database_connect_timeout)
    done = f"applied {', '.join(map(str, applied))}" if applied else "nothing to apply"
    print(f"database {redact(url)}: schema version {version} ({done})")
    return 0


def cmd_db_copy(args: argparse.Namespace, settings: Settings) -> int:
    from ..logs import redact
    from .pg_store import copy_from_sqlite

    url = _postgres_url(settings)
    source: Path = args.source or settings.feedback_path
    report = copy_from_sqlite(source, url, connect_timeout=settings.database_connect_timeout)
    print(
        f"copied from {source} to {redact(url)}: {report.answers} of {report.answers_read} answer(s) and "
        f"{report.feedback} of {report.feedback_read} rating(s) were new (the rest were there already)"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``slack``, ``feedback`` and ``db`` to the ``careerbot`` command."""
    p = subparsers.add_parser(
        "slack",
        help="run the Slack app (Socket Mode with SLACK_APP_TOKEN, or --http)",
        description="Answer questions in Slack. Needs SLACK_BOT_TOKEN; Socket Mode needs SLACK_APP_TOKEN, "
        "HTTP mode (--http) needs SLACK_SIGNING_SECRET and serves POST /slack/events, GET /healthz and GET "
        "/metrics (on CAREERBOT_METRICS_PORT instead when set; Socket Mode serves metrics only there).",
    )
    p.add_argument("--http", action="store_true", help="serve Slack's HTTP requests instead of Socket Mode")
    p.add_argument("--port", type=int, default=None, metavar="N", help="HTTP port (default 3000)")
    p.add_argument("--host", default=None, metavar="H", help="HTTP address to listen on (default 0.0.0.0)")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logs (Slack payloads included; tokens redacted)")
    p.add_argument("--log-format", choices=("text", "json"), default=None, help="log lines as text or JSON (default: CAREERBOT_LOG_FORMAT)")
    p.set_defaults(func=cmd_slack)

    p = subparsers.add_parser("feedback", help="the 👍/👎 feedback collected in Slack")
    actions = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    e = actions.add_parser(
        "export",
        help="write the 👎-rated questions as a question set (JSONL) for review",
        description="Write every 👎-rated answer's question as a question set item tagged "
        "feedback/negative/needs-review; a reviewer corrects the expectations before the eval uses them.",
    )
    e.add_argument("out", type=Path, metavar="OUT.jsonl")
    e.set_defaults(func=cmd_feedback_export)

    p = subparsers.add_parser("db", help="the PostgreSQL database of several replicas (CAREERBOT_DATABASE_URL)")
    actions = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    u = actions.add_parser(
        "upgrade",
        help="apply the schema migrations (careerbot slack also does on start)",
        description="Bring the database at CAREERBOT_DATABASE_URL to this careerbot's schema version. Safe to run "
        "while replicas start: migrations are applied once, under an advisory lock.",
    )
    u.set_defaults(func=cmd_db_upgrade)
    c = actions.add_parser(
        "copy",
        help="copy the answers and feedback of the SQLite file into PostgreSQL (idempotent)",
        description="Copy the answers and 👍/👎 ratings kept in SQLite (CAREERBOT_FEEDBACK_DB, or --from) into the "
        "PostgreSQL database at CAREERBOT_DATABASE_URL. Running it again copies only what is new.",
    )
    c.add_argument("--from", dest="source", type=Path, default=None, metavar="FILE.sqlite3",
                   help="the SQLite file (default: CAREERBOT_FEEDBACK_DB, <data_dir>/feedback.sqlite3)")
    c.set_defaults(func=cmd_db_copy)
