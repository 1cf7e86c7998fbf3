"""The image's entry command works when run directly: installed as the image installs it, in a copy of its file
system, with its environment; healthy by its own HEALTHCHECK; answering in Socket Mode; stopping cleanly on SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.slack.fake_slack import FakeSlack
from tests.slack.fake_socket_mode import SocketModeServer

from .conftest import image_environment
from .support import Image, answer_in_thread, reroot, wait_until


def test_careerbot_runs_from_a_non_editable_install_with_the_image_folders(
    image: Image, installed: Path, image_root: Path
) -> None:
    env = image_environment(image, image_root, installed)
    probe = subprocess.run(
        ["python", "-c", "import bot.settings as s; print(s.__file__); print(s.PROJECT_ROOT); "
         "c = s.load_settings(); print(c.knowledge_dir); print(c.prompts_dir); print(c.data_dir)"],
        env=env, cwd=reroot(image_root, image.workdir), capture_output=True, text=True, timeout=60, check=True,
    )
    module, project_root, knowledge, prompts, data = probe.stdout.split("\n")[:5]
    assert Path(module).is_relative_to(installed)  # not the working tree's editable install
    assert not (Path(project_root) / "knowledge").exists() and not (Path(project_root) / "prompts").exists()
    assert not (installed / "bot" / "slack" / "manifest.yaml").exists()  # so the bot below runs without it
    # …so knowledge and prompts are found only through the image's CAREERBOT_*_DIR:
    assert Path(knowledge) == reroot(image_root, image.env["CAREERBOT_KNOWLEDGE_DIR"])
    assert Path(prompts) == reroot(image_root, image.env["CAREERBOT_PROMPTS_DIR"])
    assert Path(data) == reroot(image_root, image.env["CAREERBOT_DATA_DIR"])
    articles = subprocess.run(["careerbot", "articles", "--strict"], env=env, capture_output=True, text=True,
                              timeout=60, cwd="/")
    assert articles.returncode == 0 and "ai_product_manager" in articles.stdout, articles.stderr


def test_the_entry_command_runs_passes_its_healthcheck_answers_and_stops_on_sigterm(
    image: Image, image_root: Path, fake_slack: FakeSlack, start_bot
) -> None:
    ws = SocketModeServer()
    fake_slack.ws_url = ws.url
    try:
        bot = start_bot(image_root, fake_slack)  # ENTRYPOINT + CMD: `careerbot slack`, Socket Mode
        _, healthcheck = image.healthcheck
        healthy = bot.wait_healthy(healthcheck)  # the HEALTHCHECK command itself, as Docker runs it
        assert healthy.stdout.startswith("healthy:") and "socket mode" in healthy.stdout, healthy.stdout
        assert "4 articles" in healthy.stdout
        assert bot.heartbeat()["connected"] is True and bot.heartbeat()["pid"] == bot.proc.pid

        ts, envelope = ws.mention("AI PMの年収は？")
        assert ws.acks.get(timeout=15) == envelope
        assert "ai_product_manager#" in answer_in_thread(fake_slack, ts)

        ws.close()  # Slack's end of the WebSocket goes away: the health check says so (Docker would restart it)
        lost = wait_until(lambda: (r := bot.health(healthcheck)).returncode == 1 and r, timeout=30,
                          what="the health check to notice the lost connection", interval=0.5)
        assert "not connected to Slack (Socket Mode)" in lost.stderr, lost.stderr

        code, seconds = bot.stop(signal.SIGTERM, timeout=30)
        assert code == 0, bot.log()
        assert seconds < 10
        after = bot.health(healthcheck)
        assert after.returncode == 1 and "is stopped" in after.stderr, after.stderr
        log = bot.log()
        assert "building the index" not in log  # built at image build time (the Dockerfile's RUN step)
        assert "Traceback" not in log, log
        assert "stopped: every accepted answer was posted" in log
    finally:
        ws.close()


def test_health_explains_why_it_fails(image: Image, installed: Path, image_root: Path) -> None:
    env = image_environment(image, image_root, installed)
    _, healthcheck = image.healthcheck
    missing = subprocess.run(healthcheck, env=env, capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and missing.stdout == ""
    [line] = missing.stderr.splitlines()
    assert line.startswith("careerbot: unhealthy: no heartbeat at ")

    from bot.health import Heartbeat

    path = reroot(image_root, image.env["CAREERBOT_DATA_DIR"]) / "heartbeat.json"
    beat = Heartbeat(path, mode="http")
    beat.beat(state="running", connected=False, articles=4)
    result = subprocess.run(healthcheck, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "not serving HTTP" in result.stderr
    beat.beat(state="running", connected=True, articles=0)
    result = subprocess.run(healthcheck, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "serves no articles" in result.stderr
    beat.beat(state="running", connected=True, articles=4)
    result = subprocess.run(healthcheck, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "serving HTTP, 4 articles" in result.stdout
    stale = subprocess.run([*healthcheck, "--max-age", "0"], env=env, capture_output=True, text=True, timeout=30)
    assert stale.returncode == 1 and "is stuck or gone" in stale.stderr


def test_health_reads_the_newer_heartbeat_and_adds_what_went_wrong(tmp_path: Path) -> None:
    from bot.health import Heartbeat, check_heartbeat

    usual, fallback = tmp_path / "data" / "heartbeat.json", tmp_path / "tmp" / "heartbeat.json"
    Heartbeat(usual, mode="socket").beat(state="stopped", connected=False, articles=4)  # an earlier run's
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder", encoding="utf-8")
    beat = Heartbeat(blocked / "heartbeat.json", mode="socket", fallback=fallback)
    beat.beat(state="running", connected=True, articles=4, stats={"undelivered": 2, "answered": 9},
              problems=["CAREERBOT_FEEDBACK_DB: cannot write …"])
    assert beat.written_to == fallback
    ok, line = check_heartbeat([usual, fallback])
    assert ok and line.startswith("healthy: careerbot slack") and "\n" not in line
    assert "; 2 replies could not be posted; CAREERBOT_FEEDBACK_DB: cannot write …" in line
    assert f"cannot write {blocked / 'heartbeat.json'}" in line and "the data dir is not writable" in line
    ok, line = check_heartbeat([usual, tmp_path / "nothing.json"])
    assert not ok and "is stopped" in line
