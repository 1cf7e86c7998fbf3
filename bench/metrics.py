"""Benchmark what metrics cost: recording one answer's metrics, and scraping ``/metrics`` of the real app.

    python bench/metrics.py            # ≈ 1 minute on 2 cores

The app is the real Slack app over HTTP against the local fake Web API (tests/slack/fake_slack.py); it
first answers the shipped questions (single-turn, up to 100) as mentions, so that every histogram and
counter has values, then is scraped ``--scrapes`` times. Writes ``bench/out/metrics.json`` and prints
a Markdown table for the README ("Metrics").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.eval.metrics import percentile  # noqa: E402
from bot.metrics import Metrics  # noqa: E402
from bot.pipeline import Advisor  # noqa: E402
from bot.questions import load_question_sets  # noqa: E402
from bot.settings import load_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--records", type=int, default=20000, help="answers recorded for the per-answer cost")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "metrics.json")
    args = parser.parse_args()

    from bot.slack.app import SlackBot
    from bot.slack.server import SlackHTTPServer
    from tests.slack.fake_slack import FakeSlack
    from tests.slack.slack_events import event_callback, mention_event, new_ts, sign

    questions = [q.question for q in load_question_sets([ROOT / "knowledge" / "questions"]) if not q.turns][:100]
    secret = "benchsigningsecret0000"
    with tempfile.TemporaryDirectory() as tmp:
        fake = FakeSlack().start()
        settings = load_settings(
            data_dir=Path(tmp) / "data", slack_bot_token="xoxb-bench-1", slack_signing_secret=secret,
            slack_api_url=fake.api_url, slack_rate_limit_per_minute=0, threads=1,
        )
        advisor = Advisor(settings=settings)
        bot = SlackBot(advisor=advisor, settings=settings, http=True)
        server = SlackHTTPServer(app=bot.app, signing_secret=secret, host="127.0.0.1", port=0, metrics=bot.metrics)
        server.start()
        try:
            sent = []
            for i, question in enumerate(questions):
                ts = new_ts()
                body = json.dumps(event_callback(mention_event(question, ts=ts, channel=f"C{i % 5}", user=f"U{i}")))
                req = urllib.request.Request(
                    f"{server.url}/slack/events", data=body.encode(), method="POST",
                    headers={"Content-Type": "application/json", **sign(body, secret=secret)},
                )
                urllib.request.urlopen(req, timeout=30).close()
                sent.append(ts)
            fake.wait_for("chat.postMessage", count=len(sent), timeout=600,
                          where=lambda c: c.body.get("thread_ts") in set(sent))
            scrape_ms, size = [], 0
            for _ in range(args.scrapes):
                start = time.perf_counter()
                with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as resp:
                    text = resp.read()
                scrape_ms.append((time.perf_counter() - start) * 1000)
                size = len(text)
            series = sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))
            answer = advisor.ask(questions[0])
        finally:
            server.shutdown(timeout=1)
            bot.drain(timeout=30)
            bot.close()
            fake.stop()

    metrics = Metrics(process=False)
    start = time.perf_counter()
    for _ in range(args.records):
        metrics.answered(answer, surface="mention", backend="extractive")
    record_us = (time.perf_counter() - start) / args.records * 1e6

    results = {
        "questions_answered": len(sent),
        "scrapes": args.scrapes,
        "scrape_p50_ms": percentile(scrape_ms, 50),
        "scrape_p95_ms": percentile(scrape_ms, 95),
        "scrape_mean_ms": statistics.fmean(scrape_ms),
        "exposition_bytes": size,
        "exposition_samples": series,
        "record_one_answer_us": record_us,
        "stages_per_answer": len(answer.timings_ms),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("| measure | value |\n| --- | --- |")
    print(f"| recording one answer's metrics (questions, {results['stages_per_answer']} stage timings, fallback) "
          f"| {record_us:.1f} µs |")
    print(f"| a scrape of `/metrics` after {len(sent)} answers, p50 / p95 | "
          f"{results['scrape_p50_ms']:.1f} / {results['scrape_p95_ms']:.1f} ms |")
    print(f"| its size | {size / 1024:.1f} KiB, {series} samples |")


if __name__ == "__main__":
    main()
