"""The heartbeat of a running ``careerbot slack`` and ``careerbot health``, which reads it.

``careerbot slack`` writes ``<data_dir>/heartbeat.json`` when it starts, every
`BEAT_SECONDS` while it runs, whenever its state changes (connected, articles
served) and when it stops. Each write is atomic (a temporary file, then a rename),
so a reader never sees half a file::

    {"state": "running", "mode": "socket", "connected": true, "articles": 4, "passages": 122,
     "pid": 7, "host": "3f2a…", "time": 1795000000.1, "started": 1794999990.5, "version": "0.1.0"}

``careerbot health`` exits 0 when the heartbeat is fresh (younger than
``--max-age``, default `MAX_AGE_SECONDS`), the state is ``running``, Slack is
connected and at least one article is served; otherwise it exits 1 with one line
saying why. It needs no Slack library and no index: it is the container's
HEALTHCHECK, and works the same in Socket Mode and HTTP mode.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from . import __version__
from .settings import Settings

__all__ = [
    "BEAT_SECONDS",
    "HEARTBEAT_FILE",
    "MAX_AGE_SECONDS",
    "Heartbeat",
    "check_heartbeat",
    "heartbeat_path",
    "register",
]

HEARTBEAT_FILE = "heartbeat.json"
#: How often a running bot rewrites its heartbeat (it also writes on every change).
BEAT_SECONDS = 15.0
#: An older heartbeat means the bot is stuck or gone.
MAX_AGE_SECONDS = 60.0

State = Literal["starting", "running", "stopping", "stopped"]
EXIT_UNHEALTHY = 1


def heartbeat_path(settings: Settings) -> Path:
    """Where ``careerbot slack`` writes its heartbeat: ``<data_dir>/heartbeat.json``."""
    return settings.data_dir / HEARTBEAT_FILE


class Heartbeat:
    """Writes the heartbeat file of one ``careerbot slack`` process (``mode``: socket or http)."""

    def __init__(self, path: Path, *, mode: Literal["socket", "http"]) -> None:
        self.path = path
        self.mode = mode
        self.started = time.time()
        self.last: dict[str, Any] = {}
        self.written_at = 0.0

    def beat(self, *, state: State, connected: bool, articles: int, passages: int = 0) -> None:
        """Write the heartbeat now (atomically); an unwritable folder is reported once by the caller's log."""
        data = {
            "state": state,
            "mode": self.mode,
            "connected": connected,
            "articles": articles,
            "passages": passages,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "time": time.time(),
            "started": self.started,
            "version": __version__,
        }
        _write_atomically(self.path, json.dumps(data, ensure_ascii=False) + "\n")
        self.last = data
        self.written_at = time.monotonic()

    def due(self, *, state: State, connected: bool, articles: int, interval: float = BEAT_SECONDS) -> bool:
        """Whether `beat` should run: something changed since the last write, or ``interval`` passed."""
        if not self.last:
            return True
        changed = (self.last["state"], self.last["connected"], self.last["articles"]) != (state, connected, articles)
        return changed or time.monotonic() - self.written_at >= interval


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def check_heartbeat(path: Path, *, max_age: float = MAX_AGE_SECONDS, now: float | None = None) -> tuple[bool, str]:
    """(healthy, one line saying why) for the heartbeat at ``path``."""
    now = time.time() if now is None else now
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        state, mode, at = str(data["state"]), str(data["mode"]), float(data["time"])
        connected, articles, pid = bool(data["connected"]), int(data["articles"]), int(data["pid"])
    except FileNotFoundError:
        return False, f"no heartbeat at {path}: careerbot slack is not running with this CAREERBOT_DATA_DIR (or not yet)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, f"unreadable heartbeat {path}: {exc.__class__.__name__}: {exc}"
    age = now - at
    who = f"careerbot slack (pid {pid}, {mode} mode)"
    if age > max_age:
        return False, f"heartbeat is {age:.0f} s old (limit {max_age:.0f} s): {who} is stuck or gone"
    if data.get("host") == socket.gethostname() and state != "stopped" and not _alive(pid):
        return False, f"{who} is gone (its last heartbeat was {age:.0f} s ago)"
    if state != "running":
        return False, f"{who} is {state}"
    if not connected:
        what = "not connected to Slack (Socket Mode)" if mode == "socket" else "not serving HTTP"
        return False, f"{who} is {what}"
    if articles < 1:
        return False, f"{who} serves no articles (is CAREERBOT_KNOWLEDGE_DIR empty?)"
    link = "connected" if mode == "socket" else "serving HTTP"
    return True, f"healthy: {who}, {link}, {articles} articles, heartbeat {age:.0f} s ago"


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    ok, line = check_heartbeat(heartbeat_path(settings), max_age=args.max_age)
    if ok:
        print(line, flush=True)
        return 0
    print(f"careerbot: unhealthy: {line}", file=sys.stderr, flush=True)
    return EXIT_UNHEALTHY


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``health`` to the ``careerbot`` command."""
    p = subparsers.add_parser(
        "health",
        help="exit 0 if the running `careerbot slack` is healthy (its heartbeat), else 1 with the reason",
        description="Read the heartbeat that `careerbot slack` writes to <CAREERBOT_DATA_DIR>/heartbeat.json. "
        "Exit 0 when it is fresh, running, connected to Slack and serving articles; else print why and exit 1. "
        "Meant for container health checks (Socket Mode and HTTP mode alike).",
    )
    p.add_argument(
        "--max-age",
        type=float,
        default=MAX_AGE_SECONDS,
        metavar="SECONDS",
        help=f"oldest heartbeat that counts as alive (default {MAX_AGE_SECONDS:.0f})",
    )
    p.set_defaults(func=cmd_health)
