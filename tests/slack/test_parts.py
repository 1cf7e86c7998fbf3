"""The small parts: settings checks, the `careerbot slack` start-up errors, token redaction, the manifest."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from bot.cli import main
from bot.errors import ConfigError
from bot.logs import RedactSecrets
from bot.slack.config import check_settings
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("values", "http", "names"),
    [
        ({}, False, "SLACK_BOT_TOKEN"),
        ({"slack_bot_token": "xoxp-user-token-secret"}, False, "SLACK_BOT_TOKEN"),
        ({"slack_bot_token": "xoxb-1-ok"}, False, "SLACK_APP_TOKEN"),
        ({"slack_bot_token": "xoxb-1-ok", "slack_app_token": "xoxb-wrong-kind"}, False, "SLACK_APP_TOKEN"),
        ({"slack_bot_token": "xoxb-1-ok"}, True, "SLACK_SIGNING_SECRET"),
        ({"slack_bot_token": "xoxb-1-ok", "slack_signing_secret": "has space"}, True, "SLACK_SIGNING_SECRET"),
    ],
)
def test_missing_or_malformed_settings_name_the_variable(tmp_path, values, http, names):
    settings = make_settings(tmp_path, **values)
    with pytest.raises(ConfigError) as exc:
        check_settings(settings, http=http)
    message = str(exc.value)
    assert message.startswith(names + ":") and "\n" not in message
    assert not any(value in message for value in values.values())  # the value is never shown


def test_careerbot_slack_stops_with_one_line(monkeypatch, capsys):
    assert main(["slack"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("careerbot: error: SLACK_BOT_TOKEN:") and "\n" not in err
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-fine")
    assert main(["slack", "--http", "--port", "0"]) == 2
    assert "SLACK_SIGNING_SECRET" in capsys.readouterr().err
    assert main(["slack", "--port", "3000"]) == 2
    assert "--port/--host" in capsys.readouterr().err
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "abc123def456")
    monkeypatch.setenv("SLACK_API_URL", "ftp://nowhere")
    assert main(["slack", "--http"]) == 2
    assert capsys.readouterr().err.startswith("careerbot: error: SLACK_API_URL:")


def test_tokens_are_redacted_from_log_records():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "token %s and %s, key %s", ("xoxb-123-abc", "xapp-1-A-2-z", "sk-ant-api03-secretsecret"), None
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "token xoxb-[redacted] and xapp-[redacted], key sk-ant-[redacted]"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "POST %s", ("https://ops:hunter2@proxy.example/api/x",), None)
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "POST https://ops:[redacted]@proxy.example/api/x"


@pytest.fixture
def _restore_logging():
    """`careerbot slack` configures logging for the process: put back what pytest had."""
    names = ("", "bot", "slack_sdk", "slack_bolt", "urllib3")
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level) for name in names}
    yield
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("_restore_logging")
def test_a_password_in_slack_api_url_is_never_printed(monkeypatch, capsys):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-fine-token")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "abc123def456")
    monkeypatch.setenv("SLACK_API_URL", "http://ops:hunter2@127.0.0.1:9/api/")
    monkeypatch.setenv("CAREERBOT_SLACK_MAX_RETRIES", "1")
    assert main(["slack", "--http", "--port", "0", "--verbose"]) == 2  # verbose: Slack's own debug lines too
    err = capsys.readouterr().err
    assert "careerbot: error: SLACK_API_URL: cannot reach SLACK_API_URL (http://ops:[redacted]@127.0.0.1:9/api/)" in err
    assert "hunter2" not in err and "xoxb-1-fine-token" not in err and "abc123def456" not in err
    assert "Traceback" not in err


def test_the_manifest_declares_what_the_app_handles():
    import yaml

    from bot.settings import PROJECT_ROOT

    manifest = yaml.safe_load((PROJECT_ROOT / "bot" / "slack" / "manifest.yaml").read_text(encoding="utf-8"))
    settings = manifest["settings"]
    events = set(settings["event_subscriptions"]["bot_events"])
    assert {
        "app_mention",
        "message.im",
        "message.channels",
        "message.groups",
        "app_home_opened",
        "assistant_thread_started",
    } <= events
    assert settings["socket_mode_enabled"] and settings["interactivity"]["is_enabled"]
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/career"]
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] and home["messages_tab_enabled"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {
        "app_mentions:read",
        "chat:write",
        "commands",
        "channels:history",
        "im:history",
        "reactions:write",
        "assistant:write",
    } <= scopes


def test_a_rejected_token_or_an_unreachable_api_stops_the_start(fake_slack, advisor, tmp_path):
    from bot.slack.app import SlackBot

    values = {"slack_bot_token": "xoxb-1-revoked", "slack_app_token": "xapp-1-x", "feedback_db": tmp_path / "f.db"}
    fake_slack.fail("auth.test", "invalid_auth")
    with pytest.raises(ConfigError, match=r"^SLACK_BOT_TOKEN: Slack rejected the bot token \(invalid_auth\)"):
        SlackBot(advisor=advisor, settings=make_settings(tmp_path, slack_api_url=fake_slack.api_url, **values),
                 http=False)
    with pytest.raises(ConfigError, match=r"^SLACK_API_URL: cannot reach"):
        SlackBot(advisor=advisor, settings=make_settings(tmp_path, slack_api_url="http://127.0.0.1:9/api/", **values),
                 http=False)


def test_the_work_queue_is_bounded_and_its_drain_counts_each_job_once():
    from bot.slack.work import WorkQueue

    queue = WorkQueue(name="test", workers=2, capacity=3)
    gates = [threading.Event() for _ in range(5)]
    started = threading.Semaphore(0)

    def job(i: int):
        def run() -> None:
            started.release()
            gates[i].wait(30)
            if i == 1:
                raise RuntimeError("a failing job is logged and still counted as finished")

        return run

    assert all(queue.submit(job(i)) for i in range(2))
    assert started.acquire(timeout=30) and started.acquire(timeout=30)  # both workers busy
    assert all(queue.submit(job(i)) for i in range(2, 5))
    assert not queue.submit(job(0))  # 3 waiting: full
    assert queue.submit(lambda: None, force=True)  # resumed work may exceed the bound
    assert (queue.running, queue.waiting) == (2, 4)
    gates[0].set()
    gates[1].set()
    # Jobs 2 and 3 start on the freed workers and block; the forced job and job 4 stay queued.
    assert started.acquire(timeout=30) and started.acquire(timeout=30)
    drained = queue.drain(timeout=0.2)  # counts from here: jobs 0 and 1 finished before
    assert (drained.finished, drained.running, drained.unstarted) == (0, 2, 2)
    assert not drained.clean and not queue.submit(lambda: None)  # closed
    gates[2].set()
    deadline = time.monotonic() + 30
    while queue.account().running != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert queue.account() == type(drained)(finished=1, running=1, unstarted=2)  # with the 2 done before: all 6 jobs, each once
    gates[3].set()
