"""`WorkQueue`: a fixed set of worker threads taking jobs from a bounded queue, with an exact account at shutdown.

The Slack listeners only accept work (in the thread that received the request) and hand it here, so that
acknowledging Slack never waits behind composing an answer. A full queue refuses new jobs at once (the
caller tells the asker to try again) instead of letting the backlog grow without limit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Drained", "WorkQueue"]

log = logging.getLogger(__name__)

Job = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Drained:
    """What `WorkQueue.drain` left behind: jobs finished while it waited, still running, never started."""

    finished: int
    running: int
    unstarted: int

    @property
    def clean(self) -> bool:
        return self.running == 0 and self.unstarted == 0


class WorkQueue:
    """Runs submitted jobs on ``workers`` daemon threads; at most ``capacity`` jobs wait for a free worker.

    A job that raises is logged and counted as finished; it never stops its worker.
    """

    def __init__(self, *, name: str, workers: int, capacity: int) -> None:
        if workers < 1 or capacity < 0:
            raise ValueError("workers must be at least 1 and capacity at least 0")
        self.name = name
        self.capacity = capacity
        self._jobs: deque[Job] = deque()
        self._running = 0
        self._finished = 0
        self._closed = False
        self._stopped = False
        self._baseline = 0  # jobs finished when `drain` began
        self._dropped = 0  # jobs `drain` dropped unstarted
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, name=f"careerbot-{name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def waiting(self) -> int:
        """Jobs submitted and not yet started."""
        with self._cond:
            return len(self._jobs)

    @property
    def running(self) -> int:
        with self._cond:
            return self._running

    def submit(self, job: Job, *, force: bool = False) -> bool:
        """Queue ``job``; False when the queue is full (``force``: queue it anyway) or no longer takes work."""
        with self._cond:
            if self._closed or (not force and len(self._jobs) >= self.capacity):
                return False
            self._jobs.append(job)
            self._cond.notify()
            return True

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                job = self._jobs.popleft()
                self._running += 1
            try:
                job()
            except Exception:
                log.exception("a %s job failed", self.name)
            finally:
                with self._cond:
                    self._running -= 1
                    self._finished += 1
                    self._cond.notify_all()

    def drain(self, timeout: float) -> Drained:
        """Take no new job; let the queued and running ones finish, waiting at most ``timeout`` seconds.

        Then the jobs never started are dropped and the workers told to stop; a job still running is left
        to its (daemon) thread. The counts are exact: each submitted job is in exactly one of them.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            if not self._closed:
                self._closed = True
                self._baseline = self._finished
            while self._jobs or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._dropped += len(self._jobs)
            self._jobs.clear()
            self._stopped = True
            self._cond.notify_all()
        return self.account()

    def account(self) -> Drained:
        """Since `drain` began: jobs finished, still running (a job left running may finish later), dropped."""
        with self._cond:
            return Drained(finished=self._finished - self._baseline, running=self._running, unstarted=self._dropped)
