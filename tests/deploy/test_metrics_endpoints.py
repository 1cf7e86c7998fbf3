"""``/metrics`` of a running ``careerbot slack`` (the image's entry command): on the Slack port with ``--http``,
on CAREERBOT_METRICS_PORT otherwise; scraped over HTTP and parsed with prometheus_client's parser."""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import NEW_ARTICLE
from tests.slack.fake_socket_mode import SocketModeServer
from tests.slack.scrape import scrape, wait_scrape

from .support import Image, answer_in_thread, assert_no_secrets, free_port, reroot

QUESTIONS = "careerbot_questions_total"
REPLIES = "careerbot_slack_replies_total"


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_http_mode_serves_metrics_on_the_slack_port(image: Image, image_root: Path, fake_slack, start_bot) -> None:
    bot = start_bot(image_root, fake_slack, http=True, env={"CAREERBOT_RELOAD_INTERVAL": "0"})
    bot.wait_healthy()
    url = f"{bot.url}/metrics"
    assert scrape(url).value(QUESTIONS, surface="mention", outcome="answered") == 0
    ts, status = bot.mention("AI PMの年収は？")
    assert status == 200 and "ai_product_manager#" in answer_in_thread(fake_slack, ts)
    s = wait_scrape(url, lambda s: s.get(REPLIES, outcome="answered") == 1, what="the answer")
    assert s.value(QUESTIONS, surface="mention", outcome="answered") == 1
    assert s.value("careerbot_answer_stage_seconds_count", stage="total") == 1
    assert s.value("careerbot_knowledge_articles") == 4

    (reroot(image_root, image.env["CAREERBOT_KNOWLEDGE_DIR"]) / "ux_designer.md").write_text(NEW_ARTICLE, encoding="utf-8")
    bot.send(signal.SIGHUP)  # the command's own watcher counts the reload
    reloaded = wait_scrape(url, lambda s: s.get("careerbot_reloads_total", outcome="ok") == 1, what="the reload")
    assert reloaded.value("careerbot_knowledge_articles") == 5
    assert reloaded.value("careerbot_reload_duration_seconds_count") == 1
    code, _ = bot.stop(signal.SIGTERM)
    assert code == 0
    assert_no_secrets(bot.log())


def test_http_mode_with_a_metrics_port_keeps_metrics_off_the_slack_port(image_root: Path, fake_slack, start_bot) -> None:
    port = free_port()
    bot = start_bot(image_root, fake_slack, http=True, env={"CAREERBOT_METRICS_PORT": str(port)})
    bot.wait_healthy()
    assert status_of(f"{bot.url}/metrics") == 404
    own = f"http://127.0.0.1:{port}/metrics"
    ts, _ = bot.mention("AI PMの年収は？")
    answer_in_thread(fake_slack, ts)
    s = wait_scrape(own, lambda s: s.get(REPLIES, outcome="answered") == 1, what="the answer")
    assert s.value(QUESTIONS, surface="mention", outcome="answered") == 1
    assert f"serving metrics on {own}" in bot.log()
    assert "careerbot_http_connections" in s.types  # the Slack port's own gauges, served on the metrics port
    code, _ = bot.stop(signal.SIGTERM)
    assert code == 0


def test_socket_mode_serves_metrics_on_the_metrics_port_until_it_stops(image_root: Path, fake_slack, start_bot) -> None:
    ws = SocketModeServer()
    fake_slack.ws_url = ws.url
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        bot = start_bot(image_root, fake_slack, env={"CAREERBOT_METRICS_PORT": str(port)})
        bot.wait_healthy()
        ts, envelope = ws.mention("AI PMの年収は？")
        assert ws.acks.get(timeout=15) == envelope
        assert "ai_product_manager#" in answer_in_thread(fake_slack, ts)
        s = wait_scrape(url, lambda s: s.get(REPLIES, outcome="answered") == 1, what="the answer")
        assert s.value(QUESTIONS, surface="mention", outcome="answered") == 1
        assert s.total("careerbot_slack_api_errors_total") == 0
        assert s.value("process_resident_memory_bytes") > 0
        code, _ = bot.stop(signal.SIGTERM)
        assert code == 0
        with pytest.raises(urllib.error.URLError):  # the port is closed with the process
            urllib.request.urlopen(url, timeout=5)
    finally:
        ws.close()


def test_a_taken_metrics_port_stops_the_start_with_one_line(image_root: Path, fake_slack, start_bot) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bot = start_bot(image_root, fake_slack, env={"CAREERBOT_METRICS_PORT": str(port)})
        code = bot.proc.wait(60)
    assert code == 2, bot.log()
    assert f"careerbot: error: CAREERBOT_METRICS_PORT: cannot serve metrics on 127.0.0.1:{port}" in bot.log()
    assert "Traceback" not in bot.log()
