"""The heartbeat of a running ``careerbot slack`` and ``careerbot health``, which reads it.

``careerbot slack`` writes ``<data_dir>/heartbeat.json`` when it starts, every
`BEAT_SECONDS` while it runs, whenever its state changes (connected, articles
served, a reply that could not be posted) and when it stops. Each write is atomic
(a temporary file, then a rename), so a reader never sees half a file::

    {"state": "running", "mode": "socket", "connected": true, "articles": 4, "passages": 122,
     "pid": 7, "host": "3f2a…", "time": 1795000000.1, "started": 1794999990.5, "version": "0.1.0",
     "stats": {"answered": 12, "undelivered": 0, "busy": 0, …}, "problems": []}

When the data dir cannot be written, the heartbeat goes to `fallback_heartbeat_path` (a
folder of the temporary directory named after the data dir) and says so in ``problems``.

``careerbot health`` reads whichever of the two is newer and exits 0 when it is fresh
(younger than ``--max-age``, default `MAX_AGE_SECONDS`), the state is ``running``, Slack
is connected and at least one article is served; otherwise it exits 1 with one line
saying why. Replies that could not be posted and the problems are added to that line.
It needs no Slack library and no index: it is the container's HEALTHCHECK, and works
the same in Socket Mode and HTTP mode.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from . import __version__
from .files import write_atomically
from .settings import Settings

__all__ = [
    "BEAT_SECONDS",
    "HEARTBEAT_FILE",
    "MAX_AGE_SECONDS",
    "Heartbeat",
    "check_heartbeat",
    "fallback_heartbeat_path",
    "heartbeat_path",
    "heartbeat_paths",
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


def fallback_heartbeat_path(settings: Settings) -> Path:
    """Where the heartbeat goes when the data dir cannot be written: a temporary folder named after the data dir."""
    digest = hashlib.sha256(str(settings.data_dir.resolve()).encode("utf-8")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"careerbot-{os.getuid() if hasattr(os, 'getuid') else 0}-{digest}" / HEARTBEAT_FILE


def heartbeat_paths(settings: Settings) -> list[Path]:
    """Both places a heartbeat may be, the usual one first."""
    return [heartbeat_path(settings), fallback_heartbeat_path(settings)]


class Heartbeat:
    """Writes the heartbeat file of one ``careerbot slack`` process (``mode``: socket or http).

    When ``path`` cannot be written and a ``fallback`` is given, the heartbeat is written there,
    with the reason among its ``problems``; `OSError` only when neither can be written.
    """

    def __init__(self, path: Path, *, mode: Literal["socket", "http"], fallback: Path | None = None) -> None:
        self.path = path
        self.fallback = fallback
        self.mode = mode
        self.started = time.time()
        self.last: dict[str, Any] = {}
        self.written_at = 0.0
        #: Where the last heartbeat was written.
        self.written_to: Path | None = None

    def beat(
        self,
        *,
        state: State,
        connected: bool,
        articles: int,
        passages: int = 0,
        stats: Mapping[str, Any] | None = None,
        problems: Sequence[str] = (),
    ) -> None:
        """Write the heartbeat now (atomically), to ``path`` or else to ``fallback``."""
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
            "stats": dict(stats or {}),
            "problems": list(problems),
        }
        try:
            write_atomically(self.path, (json.dumps(data, ensure_ascii=False) + "\n").encode())
            self.written_to = self.path
        except OSError as exc:
            if self.fallback is None:
                raise
            reason = exc.strerror or exc.__class__.__name__
            data["problems"].append(f"cannot write {self.path} ({reason}): the data dir is not writable")
            write_atomically(self.fallback, (json.dumps(data, ensure_ascii=False) + "\n").encode())
            self.written_to = self.fallback
        self.last = data
        self.written_at = time.monotonic()

    def due(
        self, *, state: State, connected: bool, articles: int, undelivered: int = 0, interval: float = BEAT_SECONDS
    ) -> bool:
        """Whether `beat` should run: something changed since the last write, or ``interval`` passed."""
        if not self.last:
            return True
        last = (self.last["state"], self.last["connected"], self.last["articles"], self.last["stats"].get("undelivered", 0))
        changed = last != (state, connected, articles, undelivered)
        return changed or time.monotonic() - self.written_at >= interval


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_heartbeat(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else {"_invalid": type(data).__name__}


def check_heartbeat(
    paths: Path | Sequence[Path], *, max_age: float = MAX_AGE_SECONDS, now: float | None = None
) -> tuple[bool, str]:
    """(healthy, one line saying why) from the newest of the heartbeats at ``paths`` (the usual one first)."""
    now = time.time() if now is None else now
    candidates = [paths] if isinstance(paths, Path) else list(paths)
    found: list[tuple[float, Path, dict[str, Any]]] = []
    for path in candidates:
        try:
            data = _read_heartbeat(path)
            if data is None:
                continue
            at = float(data["time"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return False, f"unreadable heartbeat {path}: {exc.__class__.__name__}: {exc}"
        found.append((at, path, data))
    if not found:
        return False, (
            f"no heartbeat at {candidates[0]}: careerbot slack is not running with this CAREERBOT_DATA_DIR (or not yet)"
        )
    at, path, data = max(found, key=lambda f: f[0])
    try:
        state, mode = str(data["state"]), str(data["mode"])
        connected, articles, pid = bool(data["connected"]), int(data["articles"]), int(data["pid"])
        stats = dict(data.get("stats") or {})
        problems = [str(p) for p in data.get("problems") or []]
        undelivered = int(stats.get("undelivered", 0))
    except (ValueError, KeyError, TypeError) as exc:
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
    if (stats.get("database") or {}).get("up") is False:  # it can accept nothing: take it out of rotation
        why = str(stats.get("store_problem") or "CAREERBOT_DATABASE_URL: the database does not answer")
        return False, f"{who} cannot use its database: {why}"
    link = "connected" if mode == "socket" else "serving HTTP"
    notes = [f"{undelivered} replies could not be posted"] if undelivered else []
    notes += problems
    tail = "".join(f"; {note}" for note in notes)
    return True, f"healthy: {who}, {link}, {articles} articles, heartbeat {age:.0f} s ago{tail}"


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    ok, line = check_heartbeat(heartbeat_paths(settings), max_age=args.max_age)
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
