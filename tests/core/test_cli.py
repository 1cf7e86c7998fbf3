"""End to end through the installed `careerbot` command."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import KNOWLEDGE, PROMPTS

pytestmark = pytest.mark.slow


def command(args: list[str]) -> list[str]:
    exe = shutil.which("careerbot") or ""
    return [exe, *args] if exe else [sys.executable, "-m", "bot", *args]


def environment(env_extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAREERBOT_", "SLACK_"))}
    env.update({"CAREERBOT_PROMPTS_DIR": str(PROMPTS), "CAREERBOT_CONFIG": os.environ["CAREERBOT_CONFIG"], **env_extra})
    return env


def run(
    args: list[str],
    env_extra: dict[str, str],
    *,
    stdin: str | None = None,
    cwd: Path | None = None,
    wrap: list[str] | None = None,
) -> subprocess.CompletedProcess:
    cmd = [*(wrap or []), *command(args)]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=environment(env_extra), cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data = tmp_path_factory.mktemp("cli-data")
    return {"CAREERBOT_KNOWLEDGE_DIR": str(KNOWLEDGE), "CAREERBOT_DATA_DIR": str(data)}


def test_ask_builds_the_index_first_and_says_so(env: dict[str, str]) -> None:
    result = run(["ask", "AI PMの年収は？"], env)
    assert result.returncode == 0, result.stderr
    assert "building the index" in result.stderr
    assert "500〜850" in result.stdout and "[1]" in result.stdout
    again = run(["ask", "AI PMの年収は？"], env)
    assert "building the index" not in again.stderr


def test_ask_json_is_one_object_with_the_documented_fields(env: dict[str, str]) -> None:
    result = run(["ask", "データサイエンティストの年収は？", "--json", "--top-k", "3"], env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"answer", "confident", "citations", "passages", "timings_ms"}
    assert data["confident"] is True and len(data["passages"]) == 3
    assert data["citations"][0]["section_id"] == "data_scientist#日本での推定年収dodaopenwork参照"
    assert data["citations"][0]["url"].startswith("https://")
    assert "450〜700" in data["passages"][0]["text"]


def test_ask_reads_questions_from_stdin_one_json_per_line(env: dict[str, str]) -> None:
    result = run(["ask", "--json"], env, stdin="AI PMの年収は？\n\n東京の天気は？\n")
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["confident"] is True and second["confident"] is False and second["citations"] == []


def test_chat_keeps_context(env: dict[str, str]) -> None:
    result = run(["chat"], env, stdin="データサイエンティストの仕事内容は？\nそのために必要なスキルは？\n")
    assert result.returncode == 0, result.stderr
    answers = result.stdout.split("**データサイエンティスト**について")
    assert len(answers) == 3  # the follow-up, which names no career, is answered about data scientists too
    assert "スキル" in answers[2] and "data_scientist#" in answers[2]


def test_articles_lists_every_article_with_section_counts(env: dict[str, str]) -> None:
    result = run(["articles"], env)
    assert result.returncode == 0
    for slug in ("ai_product_manager", "data_scientist", "product_manager", "machine_learning_engineer"):
        assert slug in result.stdout
    assert "sections" in result.stdout


def test_index_strict_fails_on_a_broken_article_but_serves_the_rest(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    (knowledge / "broken.md").write_text("---json\n{oops}\n---\n本文\n", encoding="utf-8")
    env = {"CAREERBOT_KNOWLEDGE_DIR": str(knowledge), "CAREERBOT_DATA_DIR": str(tmp_path / "data")}
    lenient = run(["index"], env)
    assert lenient.returncode == 0 and "broken.md: invalid JSON front matter" in lenient.stderr
    strict = run(["index", "--strict"], env)
    assert strict.returncode == 1 and "broken.md" in strict.stderr
    answer = run(["ask", "AI PMの年収は？"], env)
    assert answer.returncode == 0 and "500〜850" in answer.stdout


def test_index_strict_fails_on_a_related_job_that_leads_nowhere(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    (knowledge / "extra.md").write_text("---\nslug: extra\ntitle: 追加\nrelated_jobs: [nowhere]\n---\n## 本文\nテキスト\n", encoding="utf-8")
    env = {"CAREERBOT_KNOWLEDGE_DIR": str(knowledge), "CAREERBOT_DATA_DIR": str(tmp_path / "data")}
    result = run(["index", "--strict"], env)
    assert result.returncode == 1 and "related_jobs names 'nowhere'" in result.stderr
    assert run(["articles"], env).returncode == 0


def test_bad_settings_are_one_line_naming_the_variable(env: dict[str, str]) -> None:
    result = run(["ask", "質問"], {**env, "CAREERBOT_TOP_K": "many"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "careerbot: error: CAREERBOT_TOP_K: Input should be a valid integer, unable to parse string as an integer (got 'many')"
    ]
    missing = run(["articles"], {**env, "CAREERBOT_KNOWLEDGE_DIR": "/nonexistent"})
    assert missing.returncode == 2 and "CAREERBOT_KNOWLEDGE_DIR" in missing.stderr and "Traceback" not in missing.stderr


def test_settings_from_a_toml_file(env: dict[str, str], tmp_path: Path) -> None:
    toml = tmp_path / "careerbot.toml"
    toml.write_text('top_k = 2\narticle_base_url = "https://intra.example.jp/careers"\n', encoding="utf-8")
    result = run(["ask", "AI PMの年収は？", "--json"], {**env, "CAREERBOT_CONFIG": str(toml)})
    data = json.loads(result.stdout)
    assert len(data["passages"]) == 2
    assert data["citations"][0]["url"].startswith("https://intra.example.jp/careers/ai_product_manager#")


def test_demo_answers_samples_without_a_terminal(env: dict[str, str]) -> None:
    result = run(["demo"], env, stdin="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("? ") >= 3 and "記事にはありません" in result.stdout


# -- knowledge you can trust ------------------------------------------------------------------------

FAKE_ARTICLE = """---
slug: ai_product_manager
title: AIプロダクトマネージャーの年収（偽物）
---
## 日本での推定年収
AIプロダクトマネージャーの年収は9,999万円〜12,345万円です。
"""


def test_a_second_file_with_a_taken_slug_is_skipped_and_named_never_served(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    env = {"CAREERBOT_KNOWLEDGE_DIR": str(knowledge), "CAREERBOT_DATA_DIR": str(tmp_path / "data")}
    assert run(["index", "-q"], env).returncode == 0
    # "aa_dup.md" sorts before the real article: name order used to make it the winner.
    (knowledge / "aa_dup.md").write_text(FAKE_ARTICLE, encoding="utf-8")
    expected = (
        f"careerbot: skipped {knowledge / 'aa_dup.md'}: duplicate slug 'ai_product_manager', "
        f"which {knowledge / 'ai_product_manager.md'} has (the file the index was built with)"
    )
    answer = run(["ask", "AI PMの年収は？"], env)
    assert answer.returncode == 0 and "500〜850" in answer.stdout and "9,999" not in answer.stdout
    assert answer.stderr.strip().splitlines() == [expected]
    strict = run(["index", "--strict", "-q"], env)
    assert strict.returncode == 1 and expected in strict.stderr.splitlines()
    articles = run(["articles", "--json"], env)
    assert json.loads(articles.stdout)["problems"] == [expected.removeprefix("careerbot: skipped ")]

    # Even with the real article edited (newer) the index's record keeps it the owner…
    real = knowledge / "ai_product_manager.md"
    real.write_text(real.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    again = run(["ask", "AI PMの年収は？"], env)
    assert "500〜850" in again.stdout and "9,999" not in again.stdout
    # …and without an index the older file keeps it: the copied-in newcomer is newer.
    shutil.rmtree(tmp_path / "data")
    os.utime(real, (time.time() - 3600, time.time() - 3600))
    fresh = run(["ask", "AI PMの年収は？"], env)
    assert "500〜850" in fresh.stdout and "9,999" not in fresh.stdout
    assert "duplicate slug 'ai_product_manager'" in fresh.stderr and "(the older file)" in fresh.stderr


def test_an_article_over_the_size_limit_is_one_line_and_the_rest_are_served(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    big = knowledge / "huge.md"
    big.write_text("---\nslug: huge\ntitle: 巨大な記事\n---\n## 本文\n" + "長い本文。\n" * 200_000, encoding="utf-8")
    size = big.stat().st_size
    assert size > 1_000_000  # the default limit
    env = {"CAREERBOT_KNOWLEDGE_DIR": str(knowledge), "CAREERBOT_DATA_DIR": str(tmp_path / "data")}
    line = (f"careerbot: skipped {big}: {size:,} bytes is over the limit of 1,000,000 bytes per article "
            "(CAREERBOT_MAX_ARTICLE_BYTES)")
    result = run(["index", "-q"], env)
    assert result.returncode == 0 and [x for x in result.stderr.splitlines() if "huge.md" in x] == [line]
    assert "4 articles" in result.stdout
    assert run(["index", "--strict", "-q"], env).returncode == 1
    answer = run(["ask", "AI PMの年収は？"], env)
    assert answer.returncode == 0 and "500〜850" in answer.stdout
    raised = run(["articles"], {**env, "CAREERBOT_MAX_ARTICLE_BYTES": str(size)})  # the limit is a setting
    assert raised.returncode == 0 and "huge" in raised.stdout and raised.stderr == ""


# -- the index on disk ------------------------------------------------------------------------------


def live_manifest(data: Path) -> Path:
    return data / "index" / (data / "index" / "CURRENT").read_text(encoding="utf-8").strip() / "manifest.json"


def test_a_wrong_shape_manifest_is_one_line_and_rebuilt_by_ask(tmp_path: Path) -> None:
    env = {"CAREERBOT_KNOWLEDGE_DIR": str(KNOWLEDGE), "CAREERBOT_DATA_DIR": str(tmp_path / "data")}
    assert run(["index", "-q"], env).returncode == 0
    manifest = live_manifest(tmp_path / "data")
    manifest.write_text("[]\n", encoding="utf-8")
    result = run(["ask", "AI PMの年収は？"], env)
    assert result.returncode == 0 and "500〜850" in result.stdout
    assert result.stderr.splitlines() == [
        f"careerbot: index manifest at {manifest.parent} is malformed (it is an array, not an object); building the index…"
    ]
    assert "building" not in run(["ask", "AI PMの年収は？"], env).stderr  # the rebuilt index is current


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_wrong_shape_manifest_does_not_stop_careerbot_slack(tmp_path: Path) -> None:
    """Start-up used to exit 1 with a traceback here, so a container restarted in a loop."""
    from tests.slack.fake_slack import FakeSlack

    env = {"CAREERBOT_KNOWLEDGE_DIR": str(KNOWLEDGE), "CAREERBOT_DATA_DIR": str(tmp_path / "data")}
    assert run(["index", "-q"], env).returncode == 0
    live_manifest(tmp_path / "data").write_text("[]\n", encoding="utf-8")
    fake = FakeSlack().start()
    port = free_port()
    log = (tmp_path / "slack.log").open("w+", encoding="utf-8")
    slack_env = {**env, "SLACK_BOT_TOKEN": "xoxb-1-2-coretest", "SLACK_SIGNING_SECRET": "c0re5ecret", "SLACK_API_URL": fake.api_url,
                 "CAREERBOT_RELOAD_INTERVAL": "0"}
    proc = subprocess.Popen(command(["slack", "--http", "--host", "127.0.0.1", "--port", str(port)]),
                            env=environment(slack_env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp_path / "slack.log").read_text(encoding="utf-8")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "careerbot slack did not become healthy"
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        fake.stop()
        log.close()
    output = (tmp_path / "slack.log").read_text(encoding="utf-8")
    assert "is malformed (it is an array, not an object); building the index" in output
    assert "Traceback" not in output


def read_only_runner() -> list[str]:
    """A prefix that makes file permissions bind the command: as root, it drops the capabilities that bypass them."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: chmod a-w does not stop root from writing")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner,-linux_immutable"]


def set_writable(folder: Path, writable: bool) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_a_read_only_data_dir_is_one_clear_line_and_a_current_index_still_answers(tmp_path: Path) -> None:
    wrap = read_only_runner()
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    data = tmp_path / "data"
    env = {"CAREERBOT_KNOWLEDGE_DIR": str(knowledge), "CAREERBOT_DATA_DIR": str(data)}
    assert run(["index", "-q"], env).returncode == 0
    set_writable(data, False)  # chmod -R a-w
    try:
        forced = run(["index", "--force"], env, wrap=wrap)
        assert forced.returncode == 2
        assert forced.stderr.splitlines() == [
            f"careerbot: error: cannot write the index in {data / 'index'} (Permission denied): "
            "make that folder writable, or set CAREERBOT_DATA_DIR to a writable one"
        ]
        answer = run(["ask", "AI PMの年収は？"], env, wrap=wrap)
        assert answer.returncode == 0 and "500〜850" in answer.stdout and answer.stderr == ""

        article = knowledge / "data_scientist.md"
        article.write_text(article.read_text(encoding="utf-8") + "\n## 追記\n新しい節です。\n", encoding="utf-8")
        stale = run(["ask", "AI PMの年収は？"], env, wrap=wrap)  # the index is stale and cannot be rewritten
        assert stale.returncode == 0 and "500〜850" in stale.stdout and "Traceback" not in stale.stderr
        assert "cannot write the index" in stale.stderr and "built in memory only" in stale.stderr
        update = run(["index", "-q"], env, wrap=wrap)
        assert update.returncode == 2 and "CAREERBOT_DATA_DIR" in update.stderr and "Traceback" not in update.stderr
    finally:
        set_writable(data, True)


# -- no secret in any output ------------------------------------------------------------------------

SECRETS = {
    "slack token": ("CAREERBOT_TOP_K", "xoxb-123456789012-abcdefghijklmnop", "abcdefghijklmnop"),
    "openai key": ("CAREERBOT_TOP_K", "sk-proj-AbCdEfGhIjKlMnOpQrStUv", "AbCdEfGhIjKlMnOpQrStUv"),
    "anthropic key": ("CAREERBOT_CANDIDATES", "sk-ant-api03-AbCdEfGh12345", "AbCdEfGh12345"),
    "app token": ("CAREERBOT_RANK_PART", "xapp-1-A111-222-abcdef", "abcdef"),
    "hex signing secret": ("CAREERBOT_HNSW_MIN_PASSAGES", "8f14e45fceea167a5a36dedd4cea2543", "8f14e45fceea167a5a36dedd4cea2543"),
    "password in SLACK_API_URL": ("SLACK_API_URL", "ftp://bot:hunter2pass@proxy.example.com/api/", "hunter2pass"),
    "password in the article URL": ("CAREERBOT_ARTICLE_BASE_URL", "ftp://editor:Pa55word@intra.example.jp/", "Pa55word"),
}


@pytest.mark.parametrize("case", sorted(SECRETS))
def test_a_settings_error_never_prints_a_secret(env: dict[str, str], case: str) -> None:
    variable, value, secret = SECRETS[case]
    result = run(["ask", "x"], {**env, variable: value})
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"careerbot: error: {variable}: ") and "[redacted]" in line
    assert secret not in result.stdout + result.stderr


def test_a_secret_setting_is_never_echoed_and_slack_start_up_shows_none_either(env: dict[str, str], tmp_path: Path) -> None:
    toml = tmp_path / "careerbot.toml"
    toml.write_text("slack_bot_token = 98765432123456789\n", encoding="utf-8")  # a SecretStr field with a wrong type
    result = run(["slack"], {**env, "CAREERBOT_CONFIG": str(toml)})
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("careerbot: error: SLACK_BOT_TOKEN: ") and "98765432123456789" not in line
    slack = run(["slack", "--log-format", "json"], {**env, "SLACK_BOT_TOKEN": "xoxb-1-2-s3cr3tvalue",
                                                    "CAREERBOT_TOP_K": "xoxb-1-2-s3cr3tvalue"})
    assert slack.returncode == 2 and "s3cr3tvalue" not in slack.stdout + slack.stderr


# -- broken pipes -----------------------------------------------------------------------------------


def test_a_reader_that_leaves_early_gets_no_traceback(env: dict[str, str]) -> None:
    """`careerbot ask --json < questions | head -1`: far more output than a pipe holds, so writing must fail."""
    assert run(["index", "-q"], env).returncode == 0
    questions = "AI PMの年収は？\n" * 150  # ≈ 150 × 4 KB of JSON, well over a 64 KB pipe buffer
    proc = subprocess.Popen(command(["ask", "--json"]), env=environment(env), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(questions.encode("utf-8"))
    proc.stdin.close()
    first = proc.stdout.readline()
    assert json.loads(first)["confident"] is True
    proc.stdout.close()  # like `head -1` exiting
    stderr = proc.stderr.read().decode("utf-8")
    assert proc.wait(timeout=120) == 0
    assert stderr == "", stderr  # no BrokenPipeError, no "Exception ignored"
