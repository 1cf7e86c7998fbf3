"""Live knowledge reload: notice added, changed or removed articles and swap in a new index.

`KnowledgeWatcher` polls the knowledge folder (names, sizes and modification
times of its ``*.md``, ``synonyms.yaml`` and ``aspects.yaml``) and calls `Advisor.reload` when
they change, or at once when `trigger` is called (the Slack server wires it to
SIGHUP). Questions asked during a reload are answered from the old or the new
index, never fail. With ``metrics``, every reload is counted (ok or failed) and timed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .metrics import Metrics
from .pipeline import Advisor, ReloadReport

__all__ = ["KnowledgeWatcher", "folder_fingerprint"]

log = logging.getLogger(__name__)


def folder_fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, size, mtime in ns) of every article and the synonyms and aspects files, sorted; cheap to compute."""
    entries = []
    for path in sorted(folder.glob("*.md")) + sorted(folder.glob("synonyms.yaml")) + sorted(folder.glob("aspects.yaml")):
        try:
            stat = path.stat()
        except OSError:  # removed between glob and stat
            continue
        entries.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


class KnowledgeWatcher:
    """Reloads ``advisor`` whenever its knowledge folder changes; one background thread."""

    def __init__(
        self,
        *,
        advisor: Advisor,
        interval: float = 5.0,
        on_reload: Callable[[ReloadReport], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.advisor = advisor
        self.interval = interval
        self.on_reload = on_reload
        self.metrics = metrics
        self._folder = advisor.settings.knowledge_dir
        self._seen = folder_fingerprint(self._folder)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> KnowledgeWatcher:
        self._thread = threading.Thread(target=self._run, name="knowledge-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def trigger(self) -> None:
        """Reload now, changed or not (safe to call from a signal handler)."""
        self._seen = ()
        self._wake.set()

    def check(self) -> ReloadReport | None:
        """Reload if the folder changed since the last check; the report, or None if nothing changed."""
        current = folder_fingerprint(self._folder)
        if current == self._seen:
            return None
        start = time.perf_counter()
        try:
            report = self.advisor.reload(notify=lambda m: log.info("reload: %s", m))
        except Exception:
            if self.metrics is not None:
                self.metrics.reloaded(seconds=time.perf_counter() - start, ok=False)
            raise
        if self.metrics is not None:
            self.metrics.reloaded(seconds=report.seconds, ok=True)
        self._seen = current
        for problem in report.problems:
            log.warning("reload: skipped %s", problem)
        log.info("reload: %d articles served (%.2f s)", report.articles, report.seconds)
        if self.on_reload:
            self.on_reload(report)
        return report

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # keep serving the old index; try again at the next tick
                log.exception("reload failed; the previous index stays in service")
            self._wake.wait(self.interval)
            self._wake.clear()
