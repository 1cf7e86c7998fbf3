"""Logging for long-running careerbot processes: text or one JSON object a line, secrets redacted.

``configure_logging(fmt="json")`` makes every record one JSON line with
``time``, ``level``, ``logger``, ``message`` and the record's structured fields
(``bot.answers`` records carry ``question_id``, ``latency_ms``, ``backend``,
``confidence``, ``citations``…). Anything shaped like a token or API key is
replaced by ``[redacted]`` in both formats.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, Literal

__all__ = ["LogFormat", "RedactSecrets", "JsonFormatter", "configure_logging", "redact"]

LogFormat = Literal["text", "json"]

_SECRET = re.compile(
    r"\b(?:(xox[abeposr]-|xapp-)[A-Za-z0-9-]+"  # Slack tokens
    r"|(sk-ant-)[A-Za-z0-9_-]{8,}"  # Anthropic keys
    r"|(sk-)[A-Za-z0-9_-]{16,})"  # OpenAI-style keys
    r"|(Bearer )[A-Za-z0-9._~+/-]{8,}=*"
)
#: The ``user:password@`` of a URL (a proxy's credentials in SLACK_API_URL, a base URL…).
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s@]+@")
#: Attributes every LogRecord has; anything else on a record is a structured field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    """``text`` with tokens and keys replaced: ``xoxb-[redacted]``, ``sk-[redacted]``, ``Bearer [redacted]``,
    and a URL's credentials: ``https://[redacted]@host/``."""
    text = _SECRET.sub(lambda m: f"{next(g for g in m.groups() if g)}[redacted]", text)
    return _URL_CREDENTIALS.sub("[redacted]@", text)


class RedactSecrets(logging.Filter):
    """Redacts secrets from a record's message (after %-formatting) before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: the standard fields plus the record's structured extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(*, fmt: LogFormat = "text", verbose: bool = False) -> None:
    """Route every log record to standard error in ``fmt``, redacted; quiet the libraries unless ``verbose``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("bot").setLevel(logging.DEBUG if verbose else logging.INFO)
    # Slack's libraries at DEBUG print whole payloads (user messages): only with --verbose.
    for name in ("slack_sdk", "slack_bolt", "openai", "anthropic", "httpx"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in ("faiss", "bm25s", "urllib3", "websocket"):  # libraries' chatter at start-up
        logging.getLogger(name).setLevel(logging.WARNING)
