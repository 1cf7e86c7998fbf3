"""``careerbot slack`` (run the Slack app) and ``careerbot feedback export`` (👎 answers as a question set).

Registered through ``bot.cli.EXTENSION_COMMANDS``; Slack's libraries are imported
only when ``careerbot slack`` runs, so ``careerbot --help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..logs import configure_logging
from ..settings import Settings

__all__ = ["register"]

log = logging.getLogger("bot.slack")

def cmd_slack(args: argparse.Namespace, settings: Settings) -> int:
    from .config import check_settings

    http = bool(args.http)
    if not http and (args.port is not None or args.host is not None):
        raise ConfigError("--port/--host: only used with --http (without it the app connects with Socket Mode)")
    check_settings(settings, http=http)  # before the index loads: a missing token fails in a second
    configure_logging(fmt=args.log_format or settings.log_format, verbose=args.verbose)

    from ..pipeline import Advisor
    from .app import SlackBot

    start = time.perf_counter()
    advisor = Advisor(settings=settings, notify=lambda m: log.info("%s", m))
    log.info(
        "knowledge base ready in %.1f s: %d articles, %d passages",
        time.perf_counter() - start,
        len(advisor.knowledge.articles),
        advisor.index.size,
    )
    bot = SlackBot(advisor=advisor, settings=settings, http=http)
    try:
        if http:
            from .server import SlackHTTPServer

            if settings.slack_app_token is not None:
                log.info("--http given: serving HTTP; SLACK_APP_TOKEN is not used")
            server = SlackHTTPServer(
                app=bot.app,
                host=args.host or "0.0.0.0",
                port=args.port if args.port is not None else 3000,
                health=lambda: {"articles": len(advisor.knowledge.articles)},
            )
            try:
                server.serve_forever()
            finally:
                server.shutdown()
        else:
            handler = bot.socket_mode_handler()
            log.info("connecting to Slack with Socket Mode")
            try:
                _connect(handler)
                threading.Event().wait()  # the handler's threads do the work, until Ctrl-C
            finally:
                handler.close()
    finally:
        bot.close()
    return 0


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
    from .feedback import FeedbackStore, negative_questions

    path = settings.feedback_path
    if not path.is_file():
        raise ConfigError(f"CAREERBOT_FEEDBACK_DB: no feedback database at {path}")
    store = FeedbackStore(path=path)
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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``slack`` and ``feedback`` to the ``careerbot`` command."""
    p = subparsers.add_parser(
        "slack",
        help="run the Slack app (Socket Mode with SLACK_APP_TOKEN, or --http)",
        description="Answer questions in Slack. Needs SLACK_BOT_TOKEN; Socket Mode needs SLACK_APP_TOKEN, "
        "HTTP mode (--http) needs SLACK_SIGNING_SECRET and serves POST /slack/events and GET /healthz.",
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
