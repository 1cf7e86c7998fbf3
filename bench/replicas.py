"""Benchmark the shared PostgreSQL store: what it adds to each answer, and answers per second with one and with
two ``careerbot slack --http`` replicas on one database.

    python bench/replicas.py                       # ≈ 3 minutes on 2 cores; a throwaway PostgreSQL (fsync on)
    python bench/replicas.py --database-url postgresql://user:pw@host/db   # an existing, empty database
    python bench/replicas.py --store-only          # only the per-answer store latency

1. **Store latency per answer**: the store calls one answer makes, in the app's order — `accept` (with the
   event id), `allow` (the user's rate limit), `claim`, `record_answer`, `holds`, `finish` — timed together, on SQLite
   (the embedded default, a file in a temporary folder) and on PostgreSQL over loopback; sequentially and from
   8 threads at once (the default CAREERBOT_SLACK_WORKERS). Target: PostgreSQL p95 ≤ 5 ms on loopback.
2. **Answers per second**: real ``careerbot slack --http`` processes (the shipped knowledge, the default
   embedder, the extractive backend) answering a burst of signed mentions through the local fake Slack Web
   API, 1 replica on SQLite, 1 on PostgreSQL, 2 on one PostgreSQL database (mentions spread round-robin);
   measured from the first request to the last answer posted.

Writes ``bench/out/replicas.json`` and prints Markdown tables for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.eval.metrics import percentile as metric_percentile  # noqa: E402
from bot.threads import available_cores  # noqa: E402

SECRET = "bench0signing0secret0000000000000"
TOKEN = "xoxb-bench-replicas-1"


def percentile(values: list[float], p: float) -> float:
    return metric_percentile(values, p) or 0.0


# -- 1. the store calls of one answer ------------------------------------------------------------------


def one_answer(store, n: int, worker: int) -> tuple[float, float]:
    """The store calls of one answer: (all of them, the durable `accept` alone), wall ms."""
    item = f"slack:C{worker}:{n}.000100"
    start = time.perf_counter()
    assert store.accept(item, kind="message", payload={"channel": f"C{worker}", "ts": f"{n}.000100",
                                                       "text": "データサイエンティストの年収は？", "mode": "answer"},
                        event_id=f"Ev{worker}-{n}")
    accepted = time.perf_counter()
    store.allow(f"user:U{worker}-{n % 50}", per_minute=10_000)
    assert store.claim(item) == 1
    store.record_answer(channel=f"C{worker}", thread_ts=f"{n}.000100", user=f"U{worker}", question="データサイエンティストの年収は？",
                        turns=[], answer="…" * 400, section_ids=["data_scientist#年収", "data_scientist#概要"],
                        language="ja", confident=True, abstained=False)
    assert store.holds(item)  # just before posting
    store.finish(item, "done")
    return (time.perf_counter() - start) * 1000, (accepted - start) * 1000


def store_latency(make_store, *, answers: int, threads: int) -> dict:
    store = make_store()
    try:
        for n in range(20):  # warm-up: connections open, statements prepared
            one_answer(store, n, worker=999)
        timings: list[tuple[float, float]] = []
        lock = threading.Lock()

        def work(worker: int) -> None:
            mine = [one_answer(store, n, worker) for n in range(answers // threads)]
            with lock:
                timings.extend(mine)

        start = time.perf_counter()
        pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        wall = time.perf_counter() - start
    finally:
        store.close()
    total = [t for t, _ in timings]
    accept = [a for _, a in timings]
    rest = [t - a for t, a in timings]
    return {"threads": threads, "answers": len(timings), "p50_ms": round(percentile(total, 50), 2),
            "p95_ms": round(percentile(total, 95), 2), "max_ms": round(max(total), 2),
            "accept_p50_ms": round(percentile(accept, 50), 2), "accept_p95_ms": round(percentile(accept, 95), 2),
            "rest_p50_ms": round(percentile(rest, 50), 2), "rest_p95_ms": round(percentile(rest, 95), 2),
            "answers_per_s": round(len(timings) / wall, 1)}


def bench_store(server, work: Path, *, answers: int) -> list[dict]:
    from bot.slack.pg_store import PostgresSlackStore
    from bot.slack.store import SQLiteSlackStore

    rows = []
    for threads in (1, 8):
        path = work / f"store-{threads}.sqlite3"
        rows.append({"store": "SQLite", **store_latency(lambda: SQLiteSlackStore(path=path), answers=answers,
                                                         threads=threads)})
        url = server.fresh_database()
        rows.append({"store": "PostgreSQL", **store_latency(lambda: PostgresSlackStore(url=url), answers=answers,
                                                             threads=threads)})
    return rows


# -- 2. answers per second -------------------------------------------------------------------------------


def _env(data_dir: Path, fake, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAREERBOT_", "SLACK_", "OPENAI_", "ANTHROPIC_"))}
    env.update({"CAREERBOT_DATA_DIR": str(data_dir), "CAREERBOT_KNOWLEDGE_DIR": str(ROOT / "knowledge"),
                "CAREERBOT_PROMPTS_DIR": str(ROOT / "prompts"), "CAREERBOT_THREADS": "1",
                "CAREERBOT_SLACK_RATE_LIMIT_PER_MINUTE": "0", "CAREERBOT_SLACK_QUEUE_SIZE": "1000",
                "CAREERBOT_RELOAD_INTERVAL": "0", "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": fake.api_url, "HF_HUB_OFFLINE": "1"})
    if database_url:
        env["CAREERBOT_DATABASE_URL"] = database_url
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def throughput(work: Path, index_dir: Path, *, replicas: int, database_url: str | None, mentions: int) -> dict:
    from tests.slack.fake_slack import FakeSlack
    from tests.slack.slack_events import event_callback, mention_event, new_ts, sign

    careerbot = str(Path(sys.executable).parent / "careerbot")
    fake = FakeSlack().start()
    procs, ports = [], []
    try:
        for r in range(replicas):
            data = work / f"run-{replicas}-{bool(database_url)}-{r}"
            shutil.copytree(index_dir, data)
            port = _free_port()
            log = open(data / "bot.log", "wb")  # noqa: SIM115 - closed with the process
            procs.append((subprocess.Popen([careerbot, "slack", "--http", "--host", "127.0.0.1", "--port", str(port)],
                                           env=_env(data, fake, database_url), stdout=log, stderr=subprocess.STDOUT),
                          log))
            ports.append(port)
        for port in ports:
            deadline = time.monotonic() + 180
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"a replica did not start: see {work}") from None
                    time.sleep(0.2)
        asked = [new_ts() for _ in range(mentions)]
        bodies = [json.dumps(event_callback(mention_event("データサイエンティストの年収は？", ts=ts, user=f"U{i}")),
                             ensure_ascii=False) for i, ts in enumerate(asked)]
        next_one = iter(range(mentions))
        lock = threading.Lock()

        def client() -> None:
            while True:
                with lock:
                    i = next(next_one, None)
                if i is None:
                    return
                port = ports[i % replicas]
                req = urllib.request.Request(f"http://127.0.0.1:{port}/slack/events", data=bodies[i].encode(),
                                             headers={"Content-Type": "application/json", **sign(bodies[i], secret=SECRET)},
                                             method="POST")
                with urllib.request.urlopen(req, timeout=30) as resp:
                    assert resp.status == 200

        start = time.perf_counter()
        clients = [threading.Thread(target=client) for _ in range(8)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        wanted = set(asked)
        deadline = time.monotonic() + 600
        while True:
            posted = {c.body.get("thread_ts") for c in fake.calls_to("chat.postMessage", where=lambda c: c.delivered)}
            if wanted <= posted:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(wanted & posted)} of {mentions} answers arrived")
            time.sleep(0.05)
        wall = time.perf_counter() - start
        counts: dict[str, int] = {}
        for c in fake.calls_to("chat.postMessage", where=lambda c: c.delivered):
            counts[c.body.get("thread_ts")] = counts.get(c.body.get("thread_ts"), 0) + 1
        assert all(counts.get(ts) == 1 for ts in asked), "a question was answered twice"
    finally:
        for proc, log in procs:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        fake.stop()
    return {"replicas": replicas, "store": "PostgreSQL" if database_url else "SQLite", "mentions": mentions,
            "seconds": round(wall, 2), "answers_per_s": round(mentions / wall, 1)}


# -- the run ------------------------------------------------------------------------------------------------


class _Server:
    """Fresh databases on a throwaway cluster (fsync on), or on the server of ``--database-url``."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.cluster = None
        if url is None:
            from tests.pg.cluster import start_cluster

            started = start_cluster(durable=True)
            if isinstance(started, str):
                raise SystemExit(f"cannot start PostgreSQL: {started}")
            self.cluster = started

    def fresh_database(self) -> str:
        if self.cluster is None:
            import psycopg

            assert self.url is not None
            with psycopg.connect(self.url, autocommit=True) as conn:  # an existing database: emptied for each run
                conn.execute("DROP TABLE IF EXISTS schema_migrations, answers, feedback, inbox, seen, rate_hits")
            return self.url
        return self.cluster.url(self.cluster.create_database())

    def close(self) -> None:
        if self.cluster is not None:
            from tests.pg.cluster import stop_cluster

            stop_cluster(self.cluster)


def markdown(results: dict) -> str:
    lines = ["| store | threads | per answer p50 / p95 | of which `accept` (flushed) p50 / p95 | the other 5 calls "
             "p50 / p95 | answers' store calls per s |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results["store"]:
        lines.append(f"| {r['store']} | {r['threads']} | {r['p50_ms']} / {r['p95_ms']} ms | {r['accept_p50_ms']} / "
                     f"{r['accept_p95_ms']} ms | {r['rest_p50_ms']} / {r['rest_p95_ms']} ms | {r['answers_per_s']} |")
    if results.get("throughput"):
        lines += ["", "| replicas | store | mentions | seconds | answers per s |", "| --- | --- | --- | --- | --- |"]
        for r in results["throughput"]:
            lines.append(f"| {r['replicas']} | {r['store']} | {r['mentions']} | {r['seconds']} | {r['answers_per_s']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="an existing, empty PostgreSQL database (default: a throwaway cluster)")
    parser.add_argument("--answers", type=int, default=800, help="answers timed per store run")
    parser.add_argument("--mentions", type=int, default=200, help="mentions per throughput run")
    parser.add_argument("--store-only", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "replicas.json")
    args = parser.parse_args()
    server = _Server(args.database_url)
    work = Path(tempfile.mkdtemp(prefix="careerbot-bench-replicas-"))
    results: dict = {"machine": {"python": platform.python_version(), "cores": available_cores(),
                                 "load_before": round(os.getloadavg()[0], 2)}}
    try:
        results["store"] = bench_store(server, work, answers=args.answers)
        print(markdown(results), flush=True)
        if not args.store_only:
            index_dir = work / "index-data"
            env = _env(index_dir, type("F", (), {"api_url": "http://127.0.0.1:9/api/"})(), None)
            subprocess.run([str(Path(sys.executable).parent / "careerbot"), "index", "--quiet"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            results["throughput"] = [
                throughput(work, index_dir, replicas=1, database_url=None, mentions=args.mentions),
                throughput(work, index_dir, replicas=1, database_url=server.fresh_database(), mentions=args.mentions),
                throughput(work, index_dir, replicas=2, database_url=server.fresh_database(), mentions=args.mentions),
            ]
        results["machine"]["load_after"] = round(os.getloadavg()[0], 2)
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print(markdown(results))
    print(f"load average {results['machine']['load_before']} → {results['machine']['load_after']} "
          f"on {results['machine']['cores']} cores; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
