"""How many threads numeric libraries may use: one for a query, the idle cores for a batch.

Measured with ``bench/threads.py`` on 2 cores (README, "Threads"): while other
work kept the machine busy, one query embedded in 9 ms on one BLAS thread and
in 51 ms on two (p95 15 against 446 ms); on a near-idle machine two threads
saved about 1 ms. A single query is too small to share out, and every extra
thread waits for a core that other work holds. An index build gains from a
second thread only when a core is idle (2.1 against 2.8 s) and took three
times as long with it on a busy machine, so a batch gets the cores that are
idle when it starts (`idle_cores`).

`available_cores` counts what this process may really use: its CPU affinity
(``os.sched_getaffinity``) and its cgroup's CPU quota (v2 ``cpu.max``, v1
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) — ``os.cpu_count()`` sees
neither, so a container limited to 1 CPU on a 16-core host would get 16.

`cap_threads` limits every loaded thread pool through threadpoolctl (BLAS and
OpenMP, whichever library loaded them), torch if imported, and FAISS to one
thread; `make_embedder` calls it before and after creating any embedder,
built-in or plug-in. `thread_budget` raises the limit for a block (an index
build) and puts it back afterwards. ``CAREERBOT_THREADS`` > 0 overrides both.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "DEFAULT_QUERY_THREADS",
    "available_cores",
    "batch_threads",
    "cap_threads",
    "cgroup_cpu_limit",
    "current_threads",
    "idle_cores",
    "parse_cfs",
    "parse_cpu_max",
    "query_threads",
    "thread_budget",
]

#: Threads for embedding one query when ``CAREERBOT_THREADS`` is 0 (measured fastest under load).
DEFAULT_QUERY_THREADS = 1
_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_PROC_CGROUP = Path("/proc/self/cgroup")
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_capped: int | None = None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def parse_cpu_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` line (``"200000 100000"`` → 2.0); None for ``max`` or nonsense."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota = int(parts[0])
        period = int(parts[1]) if len(parts) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs(quota: str, period: str) -> float | None:
    """CPUs allowed by cgroup v1 ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (quota ``-1``: no limit → None)."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _candidates(root: Path, relative: str) -> Iterator[Path]:
    """The cgroup's folder and each ancestor up to ``root`` (a limit on any of them applies)."""
    parts = [p for p in relative.strip("/").split("/") if p and p != ".."]
    for depth in range(len(parts), -1, -1):
        yield root.joinpath(*parts[:depth])


def cgroup_cpu_limit(*, proc_cgroup: Path = _PROC_CGROUP, root: Path = _CGROUP_ROOT) -> float | None:
    """CPUs this process's cgroup quota allows (e.g. 1.5), or None when there is no quota or no cgroup.

    Reads ``proc_cgroup`` (``/proc/self/cgroup``) to find the process's cgroup, then,
    for it and every ancestor, v2 ``<root>/<path>/cpu.max`` or v1
    ``<root>/cpu[,cpuacct]/<path>/cpu.cfs_quota_us``; the smallest limit wins. In a
    container the host's path is often not mounted, so the mount's own top folder
    is read too.
    """
    limits: list[float] = []
    for line in (_read(proc_cgroup) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, relative = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # cgroup v2: "0::/path"
            for folder in _candidates(root, relative):
                text = _read(folder / "cpu.max")
                if text is not None and (cpus := parse_cpu_max(text)) is not None:
                    limits.append(cpus)
        elif "cpu" in controllers.split(","):  # cgroup v1: "4:cpu,cpuacct:/path"
            for mount in dict.fromkeys((root / controllers, root / "cpu,cpuacct", root / "cpu")):
                for folder in _candidates(mount, relative):
                    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
                    if quota is not None and period is not None and (cpus := parse_cfs(quota, period)) is not None:
                        limits.append(cpus)
    return min(limits) if limits else None


def available_cores(*, proc_cgroup: Path = _PROC_CGROUP, root: Path = _CGROUP_ROOT) -> int:
    """Cores this process may use: its CPU affinity, capped by its cgroup CPU quota (rounded up); at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit(proc_cgroup=proc_cgroup, root=root)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def query_threads(setting: int = 0) -> int:
    """Threads for embedding a query: ``CAREERBOT_THREADS`` when set (> 0), else `DEFAULT_QUERY_THREADS`."""
    return setting if setting > 0 else DEFAULT_QUERY_THREADS


def idle_cores(cores: int, load: float) -> int:
    """Of ``cores``, those not taken by other work (the 1-minute load average ``load``), rounded; at least 1.

    The load average is the whole machine's (in a container too), so on a busy host
    this errs towards fewer threads, the cheaper mistake (see the module docstring).
    """
    return max(1, min(cores, int(cores - load + 0.5)))


def batch_threads(setting: int = 0) -> int:
    """Threads for embedding a batch (an index build): ``CAREERBOT_THREADS`` when set, else the idle cores."""
    if setting > 0:
        return setting
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        load = 0.0
    return idle_cores(available_cores(), load)


def cap_threads(limit: int) -> int:
    """Limit every loaded BLAS/OpenMP pool (threadpoolctl) and torch to ``limit`` threads, FAISS to one.

    Libraries loaded later start with at most `available_cores` threads (the
    ``OMP_NUM_THREADS``-style variables, unless the user set them), so that a
    batch can still raise the limit. Returns ``limit``.
    """
    global _capped
    limit = max(1, limit)
    ceiling = str(max(limit, available_cores()))
    for var in _ENV_VARS:
        os.environ.setdefault(var, ceiling)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=limit)  # applied at once; kept (not a `with` block)
    import faiss

    # One FAISS thread: careerbot searches one query at a time, and OpenMP's fan-out
    # only costs there (10k×512 flat search: 0.6 ms on 1 thread, 1.5 ms on 2, measured).
    faiss.omp_set_num_threads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(limit)
    _capped = limit
    return limit


def current_threads() -> int:
    """The limit `cap_threads` last set (`DEFAULT_QUERY_THREADS` before any)."""
    return _capped or DEFAULT_QUERY_THREADS


@contextmanager
def thread_budget(limit: int) -> Iterator[int]:
    """Run a block with ``limit`` threads (e.g. an index build), then restore the previous limit.

    The limits are process-wide: a query embedded meanwhile from another thread
    runs with this budget too.
    """
    previous = current_threads()
    cap_threads(limit)
    try:
        yield limit
    finally:
        cap_threads(previous)
