"""Embedders side by side: index build time, query embedding time and peak memory, each in a fresh process.

    python bench/embedders.py use-m3 e5-small      # prints a Markdown table, writes bench/out/embedders.json

Per embedder, in a child process on one thread (``CAREERBOT_THREADS=1``): the
knowledge base is indexed from scratch into a temporary data folder (seconds,
model load included), then every dev question is embedded once as a query
(median and p95 ms), and the process's peak RSS is read. Quality figures come
from ``careerbot eval`` (see the README, "Calibration").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(embedder: str) -> dict[str, float | str]:
    """Run in the child: index, then time query embeddings."""
    sys.path.insert(0, str(ROOT))
    from bot.embedders import make_embedder
    from bot.eval.metrics import percentile
    from bot.pipeline import refresh_index
    from bot.questions import load_question_sets
    from bot.settings import load_settings

    with tempfile.TemporaryDirectory() as data:
        settings = load_settings(embedder=embedder, data_dir=Path(data), threads=1)
        start = time.perf_counter()
        model = make_embedder(settings)
        loaded = time.perf_counter()
        report = refresh_index(settings, model, force=True)
        built = time.perf_counter()
        questions = [q.question for q in load_question_sets([ROOT / "knowledge" / "questions" / "dev"])]
        times = []
        for q in questions:
            t0 = time.perf_counter()
            model.embed_queries([q])
            times.append((time.perf_counter() - t0) * 1000)
    return {
        "embedder": model.id,
        "passages": report.index.size,
        "load_s": round(loaded - start, 2),
        "index_s": round(built - loaded, 2),
        "query_p50_ms": round(statistics.median(times), 2),
        "query_p95_ms": round(float(percentile(times, 95)), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("embedders", nargs="+")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "embedders.json")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.embedders[0])))
        return
    env = {**os.environ, "CAREERBOT_THREADS": "1"}
    rows = []
    for name in args.embedders:
        out = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True, text=True, env=env, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print("| embedder | passages | model load s | index build s | query p50 ms | query p95 ms | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| `{r['embedder']}` | {r['passages']} | {r['load_s']} | {r['index_s']} | {r['query_p50_ms']} | "
              f"{r['query_p95_ms']} | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
