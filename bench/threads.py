"""Which thread count embeds fastest, on a quiet machine and under load.

    python bench/threads.py                   # CAREERBOT_THREADS 1, 2 and 0 (the default), quiet and loaded
    python bench/threads.py --threads 1 4     # other counts

For every count, a fresh process (thread limits are process-wide) loads the
default embedder and embeds the shipped questions one at a time (query
latency: median and p95), then builds the index of the shipped articles from
scratch (a batch). "Loaded" runs the same with ``--load`` busy-looping
processes beside it (default: one per core), started once and given time to
show in the load average, as sustained load does (the default batch threads
follow the load average). Every configuration runs ``--repeats`` times,
interleaved with the others so that outside load hits them alike; the table
shows the median over the repeats. Writes ``bench/out/threads.json`` and
prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.eval.metrics import percentile  # noqa: E402
from bot.threads import available_cores  # noqa: E402

_BURN = "while True: pass"


def child(threads: int, rounds: int) -> dict:
    """Runs in the measured process: query latencies and one full index build."""
    from bot.embedders import make_embedder
    from bot.pipeline import refresh_index
    from bot.questions import load_question_sets
    from bot.settings import load_settings
    from bot.threads import batch_threads, current_threads

    questions = [q.question for q in load_question_sets([ROOT / "knowledge" / "questions"])]
    with tempfile.TemporaryDirectory(prefix="careerbot-threads-") as tmp:
        settings = load_settings(data_dir=Path(tmp), knowledge_dir=ROOT / "knowledge", threads=threads)
        embedder = make_embedder(settings)
        for q in questions[:20]:  # warm up: weights load lazily
            embedder.embed_queries([q])
        times = []
        for _ in range(rounds):
            for q in questions:
                t = time.perf_counter()
                embedder.embed_queries([q])
                times.append((time.perf_counter() - t) * 1000)
        query_limit = current_threads()
        batch_limit = batch_threads(threads)
        build = refresh_index(settings, embedder, force=True)
    return {
        "threads_setting": threads,
        "query_threads": query_limit,
        "batch_threads": batch_limit,
        "queries": len(times),
        "query_p50_ms": statistics.median(times),
        "query_p95_ms": percentile(times, 95) or 0.0,
        "index_build_s": build.seconds,
        "passages": build.index.size,
    }


def measure(threads: int, rounds: int, *, burners: int) -> dict:
    before = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(threads), "--rounds", str(rounds)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    return {**json.loads(out.strip().splitlines()[-1]), "burners": burners, "load_average_before": before}


def loaded_runs(settings: list[int], rounds: int, repeats: int, burners: int) -> list[dict]:
    """The runs with ``burners`` busy processes beside them, once the load average shows them (≤ 2 minutes)."""
    procs = [subprocess.Popen([sys.executable, "-c", _BURN]) for _ in range(burners)]
    try:
        deadline = time.monotonic() + 120
        while os.getloadavg()[0] < 0.8 * burners and time.monotonic() < deadline:
            time.sleep(2)
        return [measure(t, rounds, burners=burners) for _ in range(repeats) for t in settings]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def summarise(runs: list[dict]) -> list[dict]:
    """Median over the repeats of each (setting, burners) configuration."""
    keys = sorted({(r["burners"], r["threads_setting"]) for r in runs}, key=lambda k: (k[0], k[1] == 0, k[1]))
    rows = []
    for burners, setting in keys:
        mine = [r for r in runs if (r["burners"], r["threads_setting"]) == (burners, setting)]
        row = {"burners": burners, "threads_setting": setting, "query_threads": mine[0]["query_threads"],
               "batch_threads": sorted({r["batch_threads"] for r in mine}), "repeats": len(mine)}
        for field in ("query_p50_ms", "query_p95_ms", "index_build_s", "load_average_before"):
            row[field] = statistics.median(r[field] for r in mine)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| `CAREERBOT_THREADS` | busy processes beside it | load before | query threads | query p50 / p95 "
             "| batch threads | full index build |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        batch = "/".join(str(n) for n in r["batch_threads"])
        lines.append(
            f"| {r['threads_setting']} | {r['burners']} | {r['load_average_before']:.1f} | {r['query_threads']} "
            f"| {r['query_p50_ms']:.1f} / {r['query_p95_ms']:.1f} ms | {batch} | {r['index_build_s']:.1f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 0], help="CAREERBOT_THREADS values to try")
    parser.add_argument("--rounds", type=int, default=2, help="times each shipped question is embedded")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration (the median is shown)")
    parser.add_argument("--load", type=int, default=available_cores(), help="busy processes in the loaded runs")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "threads.json")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.rounds)))
        return
    runs = [measure(t, args.rounds, burners=0) for _ in range(args.repeats) for t in args.threads]
    runs += loaded_runs(args.threads, args.rounds, args.repeats, args.load)
    rows = summarise(runs)
    results = {"machine": {"cores": available_cores(), "python": platform.python_version(),
                           "platform": platform.platform()}, "summary": rows, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(markdown(rows))


if __name__ == "__main__":
    main()
