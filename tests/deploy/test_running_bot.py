"""A running ``careerbot slack --http`` (the image's entry command, in a copy of the image's file system):
live reload of the knowledge folder (polling and SIGHUP), JSON logs without secrets, graceful shutdown.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
from pathlib import Path

import pytest

from tests.conftest import NEW_ARTICLE
from tests.slack.fake_slack import FakeSlack

from .support import SECRETS, Image, answer_in_thread, reroot, wait_until


def knowledge_of(image: Image, root: Path) -> Path:
    return reroot(root, image.env["CAREERBOT_KNOWLEDGE_DIR"])


@pytest.fixture
def slow_slack():
    """reactions.add (the first thing an answer does) is answered after 3 s: the answer stays in flight."""
    fake = FakeSlack(delays={"reactions.add": 3.0}).start()
    yield fake
    fake.stop()


def test_json_logs_one_line_per_answer_no_secrets_and_a_dropped_in_article_becomes_answerable(
    image: Image, image_root: Path, fake_slack, start_bot
) -> None:
    bot = start_bot(
        image_root,
        fake_slack,
        http=True,
        command=["slack", "--log-format", "json", "--verbose"],  # verbose: Slack payloads are logged too
        env={"CAREERBOT_RELOAD_INTERVAL": "0.2"},
    )
    bot.wait_healthy()
    assert bot.heartbeat()["articles"] == 4 and bot.heartbeat()["mode"] == "http"

    ts, status = bot.mention("AI PMの年収は？")
    assert status == 200
    assert "ai_product_manager#" in answer_in_thread(fake_slack, ts)

    # A new article dropped into the (mounted) knowledge folder is picked up by polling…
    (knowledge_of(image, image_root) / "ux_designer.md").write_text(NEW_ARTICLE, encoding="utf-8")
    bot.wait_articles(5)
    # …and answered from at once.
    ts, status = bot.mention("UXデザイナーの年収は？")
    assert status == 200
    answer = answer_in_thread(fake_slack, ts)
    assert "ux_designer#" in answer and "900〜1,400" in answer

    code, _ = bot.stop(signal.SIGTERM)
    assert code == 0
    log = bot.log()
    records = []
    for line in log.splitlines():
        records.append(json.loads(line))  # every line is one JSON object: nothing else is written
    answers = [r for r in records if r["logger"] == "bot.answers"]
    assert len(answers) == 2, [r["message"] for r in records]
    for record in answers:
        assert record["event"] == "answer" and record["backend"] == "extractive"
        assert record["question_id"].startswith("slack:") and 0 < record["confidence"] <= 1  # slack:<channel>:<ts>
        assert {"retrieve", "compose", "total"} <= set(record["latency_ms"])
        assert record["citations"] and record["abstained"] is False
    assert answers[0]["question_id"] != answers[1]["question_id"]
    assert answers[1]["citations"][0].startswith("ux_designer#")
    assert any("reload: 5 articles served" in r["message"] for r in records)
    assert any(r["logger"].startswith(("slack_", "bot.slack.web")) for r in records)  # --verbose did log payloads
    for secret in SECRETS:
        assert secret not in log
    assert "年収は" not in "".join(r["message"] for r in answers)  # the question's text is not logged


def test_sighup_reloads_the_knowledge_folder_when_polling_is_off_and_sigint_stops(
    image: Image, image_root: Path, fake_slack, start_bot
) -> None:
    bot = start_bot(image_root, fake_slack, http=True, env={"CAREERBOT_RELOAD_INTERVAL": "0"})
    bot.wait_healthy()
    (knowledge_of(image, image_root) / "ux_designer.md").write_text(NEW_ARTICLE, encoding="utf-8")
    time.sleep(1.0)
    assert bot.heartbeat()["articles"] == 4  # no polling
    bot.send(signal.SIGHUP)
    bot.wait_articles(5)
    assert bot.proc.poll() is None and bot.health().returncode == 0  # SIGHUP reloads, it does not stop the bot
    ts, _ = bot.mention("UXデザイナーの年収は？")
    assert "ux_designer#" in answer_in_thread(fake_slack, ts)
    code, _ = bot.stop(signal.SIGINT)  # Ctrl-C stops as gracefully as SIGTERM
    assert code == 0
    log = bot.log()
    assert "SIGHUP: reloading the knowledge folder" in log and "SIGINT: stopping" in log


def test_sigterm_finishes_the_answer_in_flight_refuses_new_work_and_exits_0(
    image: Image, image_root: Path, slow_slack: FakeSlack, start_bot
) -> None:
    bot = start_bot(image_root, slow_slack, http=True, env={"CAREERBOT_SHUTDOWN_TIMEOUT": "20"})
    bot.wait_healthy()
    ts, status = bot.mention("AI PMの年収は？")
    assert status == 200
    slow_slack.wait_for("reactions.add", timeout=10)  # the answer has started; Slack's reply is 3 s away
    start = time.monotonic()
    bot.send(signal.SIGTERM)

    accepted: list[str] = []

    def refused() -> bool:
        try:
            later, _ = bot.mention("データサイエンティストの年収は？")
        except (urllib.error.URLError, ConnectionError):
            return True
        accepted.append(later)  # acknowledged before the server stopped (within one 0.25 s tick): answered too
        return False

    wait_until(refused, timeout=2.0, what="the HTTP server to stop accepting requests")
    assert bot.proc.poll() is None  # still finishing the answer in flight
    code = bot.proc.wait(25)
    took = time.monotonic() - start
    assert code == 0, bot.log()
    assert 2.0 < took < 15, took  # it did wait for the answer, and not for long
    assert "ai_product_manager#" in answer_in_thread(slow_slack, ts, timeout=0.1)  # posted before the exit
    for later in accepted:
        assert "data_scientist#" in answer_in_thread(slow_slack, later, timeout=0.1)
    assert len(slow_slack.calls_to("chat.postMessage")) == 1 + len(accepted)  # nothing after the refusal
    assert len(slow_slack.calls_to("reactions.remove")) == 1 + len(accepted)  # progress reactions cleared
    assert bot.heartbeat()["state"] == "stopped"


def test_answers_still_running_after_the_shutdown_timeout_are_abandoned(
    image: Image, image_root: Path, slow_slack: FakeSlack, start_bot
) -> None:
    slow_slack.delays["reactions.add"] = 8.0
    bot = start_bot(image_root, slow_slack, http=True, env={"CAREERBOT_SHUTDOWN_TIMEOUT": "1"})
    bot.wait_healthy()
    bot.mention("AI PMの年収は？")
    slow_slack.wait_for("reactions.add", timeout=10)
    code, took = bot.stop(signal.SIGTERM, timeout=15)
    assert code == 1 and took < 5, (code, took)  # the 1 s bound, not the 8 s answer
    assert "stopped after 1 s: 0 answer(s) finished while stopping; 1 still running and 0 never started" in bot.log()
    assert not slow_slack.calls_to("chat.postMessage")
