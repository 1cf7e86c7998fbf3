"""End to end through the installed `careerbot` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KNOWLEDGE, PROMPTS

pytestmark = pytest.mark.slow


def run(args: list[str], env_extra: dict[str, str], *, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAREERBOT_", "SLACK_"))}
    env.update({"CAREERBOT_PROMPTS_DIR": str(PROMPTS), "CAREERBOT_CONFIG": os.environ["CAREERBOT_CONFIG"], **env_extra})
    exe = shutil.which("careerbot") or ""
    cmd = [exe, *args] if exe else [sys.executable, "-m", "bot", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


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
