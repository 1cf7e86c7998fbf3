"""Metrics for operators: the real app served on 127.0.0.1, questions asked through signed requests, the fake
Slack Web API answering (with injected 429s, 500s and refusals), ``/metrics`` scraped over HTTP and parsed
with prometheus_client's parser; counters must move by exactly what happened."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.metrics import QUESTION_OUTCOMES, SURFACES, Metrics, MetricsServer
from bot.pipeline import Advisor
from bot.reload import KnowledgeWatcher
from bot.settings import load_settings
from bot.slack.app import SlackBot
from tests.conftest import KNOWLEDGE, NEW_ARTICLE, make_settings
from tests.llm.fake_llm import FakeOpenAI, Status

from .conftest import APP_TOKEN, BOT_TOKEN
from .fake_socket_mode import SocketModeServer
from .scrape import Scrape, scrape, wait_scrape
from .slack_events import new_ts

ANSWERABLE = "AI PMの年収は？"
UNKNOWN = "UXデザイナーの年収は？"  # no shipped article is about UX designers: the bot abstains
QUESTIONS = "careerbot_questions_total"
STAGE = "careerbot_answer_stage_seconds"
RETRIES = "careerbot_slack_api_retries_total"
ERRORS = "careerbot_slack_api_errors_total"
REPLIES = "careerbot_slack_replies_total"


def in_thread(ts: str):
    return lambda c: c.body.get("thread_ts") == ts


def questions(s: Scrape) -> dict[tuple[str, str], float]:
    """Every (surface, outcome) count that is not 0."""
    return {
        (labels["surface"], labels["outcome"]): s.value(QUESTIONS, **labels)
        for labels in s.series(QUESTIONS)
        if s.value(QUESTIONS, **labels)
    }


def dm(app, text: str) -> str:
    ts = new_ts()
    reply = app.event({"type": "message", "channel_type": "im", "channel": "D100", "user": "U2", "text": text, "ts": ts})
    assert reply.status == 200
    return ts


def test_questions_are_counted_by_surface_and_outcome_with_each_stage_timed(slack_app):
    app = slack_app()
    before = scrape(app.metrics_url)
    assert before.content_type.startswith("text/plain") and "version=0.0.4" in before.content_type
    assert before.value("careerbot_build_info", version="0.1.0") == 1
    assert before.total(QUESTIONS) == 0 and before.get(f"{STAGE}_count", stage="total") == 0
    # Every surface × outcome is there from the start (at 0), so rate() and alerts work from the first scrape.
    assert {(s["surface"], s["outcome"]) for s in before.series(QUESTIONS)} == {
        (s, o) for s in SURFACES for o in QUESTION_OUTCOMES
    }
    assert before.types["careerbot_questions"] == "counter" and before.types[STAGE] == "histogram"
    assert before.value("careerbot_inbox_unfinished", state="pending") == 0
    assert before.value("careerbot_knowledge_articles") == len(app.bot.advisor.knowledge.articles) > 0

    answered, _ = app.mention(ANSWERABLE)
    unknown, _ = app.mention(UNKNOWN, user="U3")
    direct = dm(app, ANSWERABLE)
    assert app.command(ANSWERABLE, response="r1").status == 200
    for ts in (answered, unknown, direct):
        app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    app.fake.wait_for("response_url")

    after = wait_scrape(app.metrics_url, lambda s: s.get(REPLIES, outcome="answered") == 4, what="4 replies posted")
    assert questions(after) == {
        ("mention", "answered"): 1,
        ("mention", "abstained"): 1,
        ("dm", "answered"): 1,
        ("slash", "answered"): 1,
    }
    for stage in ("embed", "search", "retrieve", "compose", "total"):
        assert after.value(f"{STAGE}_count", stage=stage) == 4, stage
        assert after.value(f"{STAGE}_sum", stage=stage) > 0, stage
        assert after.value(f"{STAGE}_bucket", stage=stage, le="+Inf") == 4
    assert after.get(f"{STAGE}_count", stage="llm") == 0  # extractive: no model was called
    # Buckets are cumulative, and a stage never takes longer than the whole answer.
    buckets = sorted(
        (float(s["le"]), after.value(f"{STAGE}_bucket", **s)) for s in after.series(f"{STAGE}_bucket") if s["stage"] == "total"
    )
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)
    assert after.value(f"{STAGE}_sum", stage="retrieve") <= after.value(f"{STAGE}_sum", stage="total")
    assert after.total("careerbot_backend_fallbacks_total") == 0
    assert after.value(REPLIES, outcome="apologized") == after.value(REPLIES, outcome="undelivered") == 0
    # No user, channel, timestamp or question text ever becomes a label value.
    values = {v for (_, labels) in after.samples for _, v in labels}
    for private in ("U1", "U2", "U3", "C100", "D100", answered, ANSWERABLE, UNKNOWN):
        assert not any(private in v for v in values), private
    # Once every reply is finished, the inbox is empty again.
    idle = wait_scrape(app.metrics_url, lambda s: s.total("careerbot_inbox_unfinished") == 0, what="an empty inbox")
    assert idle.value("careerbot_work_queue_waiting", queue="answers") == 0
    assert idle.value("careerbot_store_durable") == 1


def test_slack_retries_and_failures_are_counted_by_method_and_reason(slack_app):
    app = slack_app(slack_max_retries=2)
    fake = app.fake
    fake.fail_http("chat.postMessage", 429, retry_after="0")  # rate limited once: retried after Retry-After
    fake.drop("reactions.add")  # the connection closes without a response: retried
    ts, _ = app.mention(ANSWERABLE)
    [delivered] = fake.wait_for("chat.postMessage", where=lambda c: in_thread(ts)(c) and c.delivered)
    first = wait_scrape(app.metrics_url, lambda s: s.get(REPLIES, outcome="answered") == 1, what="the answer")
    assert first.value(RETRIES, method="chat.postMessage", reason="rate_limited") == 1
    assert first.value(RETRIES, method="reactions.add", reason="connection") == 1
    assert first.total(RETRIES) == 2
    assert first.total(ERRORS) == 0  # both calls succeeded in the end

    fake.fail_http("chat.postMessage", 500, times=3)  # 1 call + 2 retries, all 500: the answer fails…
    ts, _ = app.mention(ANSWERABLE)
    posts = fake.wait_for("chat.postMessage", count=4, where=in_thread(ts))  # …and the apology gets through
    assert [p.status for p in posts] == [500, 500, 500, 200]
    second = wait_scrape(app.metrics_url, lambda s: s.get(REPLIES, outcome="apologized") == 1, what="the apology")
    assert second.value(RETRIES, method="chat.postMessage", reason="server_error") == 2
    assert second.value(ERRORS, method="chat.postMessage", error="internal_error") == 1
    assert second.value(QUESTIONS, surface="mention", outcome="answered") == 2  # the pipeline did answer

    fake.fail("chat.postMessage", "channel_not_found")  # Slack refuses (HTTP 200, ok: false): not retried
    ts, _ = app.mention(ANSWERABLE)
    fake.wait_for("chat.postMessage", count=2, where=in_thread(ts))
    third = wait_scrape(app.metrics_url, lambda s: s.get(REPLIES, outcome="apologized") == 2, what="the second apology")
    assert third.value(ERRORS, method="chat.postMessage", error="channel_not_found") == 1
    assert third.total(RETRIES) == 4  # nothing more was retried


def test_two_apps_in_one_process_count_separately(slack_app):
    one, two = slack_app(), slack_app()
    ts, _ = one.mention(ANSWERABLE)
    one.fake.wait_for("chat.postMessage", where=in_thread(ts))
    wait_scrape(one.metrics_url, lambda s: s.get(QUESTIONS, surface="mention", outcome="answered") == 1)
    assert scrape(two.metrics_url).total(QUESTIONS) == 0


def test_rate_limited_questions_are_counted_as_refused(slack_app):
    app = slack_app(slack_rate_limit_per_minute=1)
    first, _ = app.mention(ANSWERABLE)
    second, _ = app.mention("PdMの年収は？")  # the same user, in the same minute
    app.fake.wait_for("chat.postMessage", where=in_thread(first))
    app.fake.wait_for("chat.postEphemeral", where=in_thread(second))
    s = scrape(app.metrics_url)
    assert s.value("careerbot_slack_refused_total", reason="rate_limited") == 1
    assert s.value("careerbot_slack_refused_total", reason="busy") == 0
    assert s.total(QUESTIONS) == 1


def test_inbox_and_queue_depth_are_read_at_scrape_time_and_busy_is_counted(slack_app):
    app = slack_app(slack_workers=1, slack_queue_size=1)
    gate = app.fake.hold("reactions.add")  # the first answer stays in flight until the gate opens
    try:
        running, _ = app.mention(ANSWERABLE, user="U1")
        app.fake.wait_for("reactions.add")
        waiting, _ = app.mention(ANSWERABLE, user="U2")  # queued behind it
        turned_away, _ = app.mention(ANSWERABLE, user="U3")  # the queue is full: told to try again
        app.fake.wait_for("chat.postEphemeral", where=in_thread(turned_away))
        busy = scrape(app.metrics_url)
        assert busy.value("careerbot_work_queue_running", queue="answers") == 1
        assert busy.value("careerbot_work_queue_waiting", queue="answers") == 1
        assert busy.value("careerbot_inbox_unfinished", state="running") == 1
        assert busy.value("careerbot_inbox_unfinished", state="pending") == 1
        assert busy.value("careerbot_slack_refused_total", reason="busy") == 1
        assert busy.value("careerbot_http_connections") >= 1  # this scrape's own connection
    finally:
        gate.set()
    for ts in (running, waiting):
        app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    idle = wait_scrape(app.metrics_url, lambda s: s.total("careerbot_inbox_unfinished") == 0, what="an empty inbox")
    assert idle.value("careerbot_work_queue_running", queue="answers") == 0
    assert idle.value("careerbot_work_queue_waiting", queue="answers") == 0
    assert questions(idle) == {("mention", "answered"): 2}


# -- a fallback from the LLM backend -----------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def test_a_fallback_from_the_llm_to_extractive_is_counted_by_reason(slack_app, advisor, shared_data_dir, fake_openai):
    llm = {
        "backend": "openai",
        "llm_model": "test-model",
        "openai_base_url": fake_openai.base_url,
        "openai_api_key": "test-key",
        "llm_timeout": 5.0,
        "llm_max_retries": 0,
    }
    openai_advisor = Advisor(settings=make_settings(shared_data_dir, **llm), embedder=advisor.embedder)
    app = slack_app(advisor=openai_advisor, **llm)
    fake_openai.reset()
    fake_openai.add(Status(503, message="overloaded"))  # the provider fails: the answer is extractive
    ts, _ = app.mention(ANSWERABLE)
    [post] = app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    assert "ai_product_manager#" in post.text
    unknown, _ = app.mention(UNKNOWN, user="U9")  # abstained without asking the model: not a fallback
    app.fake.wait_for("chat.postMessage", where=in_thread(unknown))
    s = wait_scrape(app.metrics_url, lambda s: s.get(REPLIES, outcome="answered") == 2, what="both replies")
    assert len(fake_openai.requests) == 1
    assert s.value("careerbot_backend_fallbacks_total", backend="openai", reason="server_error") == 1
    assert s.total("careerbot_backend_fallbacks_total") == 1
    assert questions(s) == {("mention", "answered"): 1, ("mention", "abstained"): 1}
    assert s.value(f"{STAGE}_count", stage="llm") == 1  # the failed call was timed too


# -- knowledge reloads -----------------------------------------------------------------------------


def test_reloads_are_counted_and_timed_and_a_failed_one_too(slack_app, advisor, tmp_path: Path):
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    own = Advisor(settings=make_settings(tmp_path / "own-data", knowledge_dir=knowledge), embedder=advisor.embedder)
    app = slack_app(advisor=own)
    watcher = KnowledgeWatcher(advisor=own, interval=3600, metrics=app.bot.metrics).start()  # reloads on trigger()
    try:
        articles = len(own.knowledge.articles)
        before = scrape(app.metrics_url)
        assert before.value("careerbot_reloads_total", outcome="ok") == 0
        assert before.value("careerbot_reload_last_success_timestamp_seconds") == 0
        started = time.time()
        (knowledge / "ux_designer.md").write_text(NEW_ARTICLE, encoding="utf-8")
        watcher.trigger()
        ok = wait_scrape(app.metrics_url, lambda s: s.get("careerbot_reloads_total", outcome="ok") == 1, what="a reload")
        assert ok.value("careerbot_reload_duration_seconds_count") == 1
        assert ok.value("careerbot_reload_duration_seconds_sum") > 0
        assert ok.value("careerbot_reload_last_success_timestamp_seconds") >= started
        assert ok.value("careerbot_knowledge_articles") == articles + 1
        assert ok.value("careerbot_index_passages") == own.index.size

        (knowledge / "synonyms.yaml").write_text("[broken: yaml", encoding="utf-8")  # the reload itself fails
        watcher.trigger()
        failed = wait_scrape(
            app.metrics_url, lambda s: s.get("careerbot_reloads_total", outcome="failed") == 1, what="a failed reload"
        )
        assert failed.value("careerbot_reloads_total", outcome="ok") == 1
        assert failed.value("careerbot_reload_duration_seconds_count") == 2
        assert failed.value("careerbot_knowledge_articles") == articles + 1  # the previous index stays served
    finally:
        watcher.stop()


# -- Socket Mode: a metrics port of its own ----------------------------------------------------------


def test_socket_mode_serves_metrics_on_a_port_of_its_own(fake_slack, advisor, tmp_path):
    server = SocketModeServer()
    fake_slack.ws_url = server.url
    settings = make_settings(
        tmp_path / "data",
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=fake_slack.api_url,
        feedback_db=tmp_path / "fb.sqlite3",
    )
    bot = SlackBot(advisor=advisor, settings=settings, http=False)
    port = MetricsServer(metrics=bot.metrics, host="127.0.0.1", port=0)
    handler = bot.socket_mode_handler()
    try:
        assert port.url == f"http://127.0.0.1:{port.port}/metrics" and port.port > 0
        handler.connect()
        deadline = time.monotonic() + 10
        while not server.connections and time.monotonic() < deadline:
            time.sleep(0.02)
        ts, envelope = server.mention(ANSWERABLE)
        assert server.acks.get(timeout=10) == envelope
        fake_slack.wait_for("chat.postMessage", where=in_thread(ts))
        s = wait_scrape(port.url, lambda s: s.get(REPLIES, outcome="answered") == 1, what="the answer")
        assert questions(s) == {("mention", "answered"): 1}
        assert s.value(f"{STAGE}_count", stage="total") == 1
        assert s.total(ERRORS) == 0  # apps.connections.open went through the counted client, and succeeded
        assert "process_resident_memory_bytes" in s.types
    finally:
        handler.close()
        server.close()
        port.shutdown()
        bot.close()


def test_a_taken_metrics_port_is_a_clear_error_naming_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^CAREERBOT_METRICS_PORT: cannot serve metrics on 127.0.0.1:{port} "):
            MetricsServer(metrics=Metrics(process=False), host="127.0.0.1", port=port)


def test_metrics_settings(monkeypatch):
    monkeypatch.delenv("CAREERBOT_METRICS_PORT", raising=False)
    monkeypatch.delenv("CAREERBOT_METRICS_HOST", raising=False)
    assert load_settings().metrics_port is None and load_settings().metrics_host == "127.0.0.1"
    for value, port in (("", None), ("off", None), ("0", 0), ("9464", 9464)):
        monkeypatch.setenv("CAREERBOT_METRICS_PORT", value)
        assert load_settings().metrics_port == port, value
    monkeypatch.setenv("CAREERBOT_METRICS_PORT", "70000")
    with pytest.raises(ConfigError, match=r"^CAREERBOT_METRICS_PORT: .*\(got '70000'\)$"):
        load_settings()


def test_a_question_the_pipeline_cannot_answer_is_counted_as_failed(slack_app, advisor, shared_data_dir, tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(advisor.settings.prompts_dir, prompts)
    for name in ("answer.md.j2", "answer_brief.md.j2"):  # the answer's own templates are broken…
        (prompts / "ja" / name).write_text("{{ no_such_variable }}", encoding="utf-8")
    broken = Advisor(settings=make_settings(shared_data_dir, prompts_dir=prompts), embedder=advisor.embedder)
    app = slack_app(advisor=broken)
    ts, _ = app.mention(ANSWERABLE)
    [apology] = app.fake.wait_for("chat.postMessage", where=in_thread(ts))  # …the apology's are not
    assert "ai_product_manager#" not in apology.text
    s = wait_scrape(app.metrics_url, lambda s: s.get(REPLIES, outcome="apologized") == 1, what="the apology")
    assert questions(s) == {("mention", "failed"): 1}
    assert s.value(f"{STAGE}_count", stage="total") == 0  # no answer, no stage timings


def test_a_value_that_cannot_be_read_leaves_only_itself_out_of_the_scrape(caplog):
    metrics = Metrics(process=False)
    reads: list[int] = []

    def flaky() -> float:
        reads.append(1)
        if len(reads) <= 2:
            raise OSError("database is locked")
        return 7.0

    metrics.sample("careerbot_example_depth", "An example gauge.", flaky)
    server = MetricsServer(metrics=metrics, host="127.0.0.1", port=0)
    try:
        with caplog.at_level("DEBUG", logger="bot.metrics"):
            for _ in range(2):
                s = scrape(server.url)
                assert "careerbot_example_depth" not in s.types and s.value("careerbot_build_info", version="0.1.0") == 1
        warnings = [r for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and "careerbot_example_depth" in warnings[0].getMessage()  # logged once
        assert scrape(server.url).value("careerbot_example_depth") == 7
    finally:
        server.shutdown()
