"""`careerbot chat` on a real pseudo-terminal with real keys; brief answers; the demo without a terminal.

The chat's refusal repeats the job title the bot received (「Webデザイナー」についての記事は…),
so what the bot was asked can be read from its answer.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answer import Link
from bot.pipeline import Advisor
from bot.terminal import HISTORY_FILE, brief_text
from tests.conftest import KNOWLEDGE, PROMPTS
from tests.core.terminal import BACKSPACE, CTRL_A, CTRL_E, CTRL_L, LEFT, UP, Terminal, width
from tests.core.test_cli import run

pytestmark = pytest.mark.slow

WEB = "Webデザイナーの年収は？"
SRE = "SREエンジニアの年収は？"


def said_about(job: str, text: str) -> bool:
    """Whether ``text`` holds the refusal that names ``job`` as typed."""
    return f"「{job}」についての記事は" in text


@pytest.fixture
def data_dir(advisor: Advisor, tmp_path: Path) -> Path:
    """A data dir of its own, holding a copy of the session's current index (no rebuild, no history)."""
    data = tmp_path / "data"
    shutil.copytree(advisor.settings.index_dir, data / "index")
    return data


def chat_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: a UTF-8 locale unless ``extra`` says otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAREERBOT_", "SLACK_", "LC_", "LANG"))}
    env.update(
        TERM="xterm", LANG="C.UTF-8", CAREERBOT_CONFIG=os.environ["CAREERBOT_CONFIG"],
        CAREERBOT_KNOWLEDGE_DIR=str(KNOWLEDGE), CAREERBOT_PROMPTS_DIR=str(PROMPTS), CAREERBOT_DATA_DIR=str(data_dir),
    )
    env.update(extra)
    return env


@pytest.fixture
def chat(data_dir: Path) -> Iterator[Terminal]:
    terminal = Terminal(["chat"], chat_env(data_dir))
    yield terminal
    terminal.close()


def test_arrows_ctrl_a_e_and_ctrl_l_edit_the_line_and_ctrl_d_quits(chat: Terminal, data_dir: Path) -> None:
    # Left arrow, then typing, inserts in the middle: the bot receives the corrected question.
    chat.wait(chat.at_prompt, "the prompt")
    chat.type("Webデザナーの年収は？" + LEFT * 7 + "イ")
    chat.wait(lambda: chat.line == f"? {WEB}" and chat.screen.cursor.x == width("? Webデザイ"), "the inserted イ")
    answer = chat.enter(what="the edited question")
    assert said_about("Webデザイナー", answer) and "^[" not in answer
    # Ctrl-A goes to the start of the line, Ctrl-E back to its end.
    answer = chat.ask("エンジニアの年収" + CTRL_A + "SRE" + CTRL_E + "は？", what="Ctrl-A/E")
    assert said_about("SREエンジニア", answer)
    # Ctrl-L clears the screen and redraws the line being edited; no ^L goes into it.
    chat.type("Webデザイナー" + CTRL_L)
    chat.wait(lambda: chat.screen.cursor.y == 0 and chat.at_prompt("Webデザイナー"), "the line redrawn on a clear screen")
    assert "careerbot chat" not in "\n".join(chat.screen.display)
    answer = chat.enter(what="the question after Ctrl-L")
    assert said_about("Webデザイナー", answer) and "^L" not in answer
    # Ctrl-D on an empty line quits, with status 0 and no traceback.
    assert chat.quit() == 0
    assert "Traceback" not in chat.text
    history = data_dir / HISTORY_FILE
    assert history.read_text(encoding="utf-8").splitlines() == [WEB, SRE, "Webデザイナー"]
    assert stat.S_IMODE(history.stat().st_mode) == 0o600  # the questions are the user's own
    assert not [p.name for p in data_dir.iterdir() if p.name.endswith(".tmp")]


def test_up_arrow_recalls_questions_within_a_session_and_in_the_next(data_dir: Path) -> None:
    first = Terminal(["chat"], chat_env(data_dir))
    try:
        assert said_about("Webデザイナー", first.ask(WEB, what="the first question"))
        assert said_about("SREエンジニア", first.ask(SRE, what="the second question"))
        answer = first.ask(UP + UP, what="the first question, recalled")
        assert said_about("Webデザイナー", answer)
        assert first.quit() == 0
    finally:
        first.close()
    second = Terminal(["chat"], chat_env(data_dir))
    try:
        second.wait(second.at_prompt, "the prompt")
        second.type(UP)
        second.wait(lambda: second.at_prompt(WEB), "the last question of the first session")
        second.type(UP)
        second.wait(lambda: second.at_prompt(SRE), "the one before it")
        assert said_about("SREエンジニア", second.enter(what="the recalled question"))
        assert second.quit() == 0
    finally:
        second.close()
    assert (data_dir / HISTORY_FILE).read_text(encoding="utf-8").splitlines() == [WEB, SRE, WEB, SRE]


@pytest.mark.parametrize(
    "locale_env",
    [{}, {"LC_ALL": "C"}, {"LC_ALL": "ja_JP.UTF-8"}],
    ids=["utf-8 locale", "C locale", "a locale that may not be installed"],
)
def test_backspace_removes_a_whole_wide_character(data_dir: Path, locale_env: dict[str, str]) -> None:
    # In the C locale readline would count 「年」 as three one-column characters:
    # the chat switches readline to a UTF-8 locale whenever Python reads the terminal as UTF-8.
    chat = Terminal(["chat"], chat_env(data_dir, **locale_env))
    try:
        chat.wait(chat.at_prompt, "the prompt")
        chat.type("Webデザイナア")
        chat.wait(lambda: chat.at_prompt("Webデザイナア"), "the typed text")
        chat.type(BACKSPACE)
        chat.wait(lambda: chat.at_prompt("Webデザイナ"), "ア removed, the cursor two columns back, no gap")
        chat.type("ーの年収")
        chat.wait(lambda: chat.at_prompt("Webデザイナーの年収"), "the typed text")
        chat.type(BACKSPACE + BACKSPACE)
        chat.wait(lambda: chat.at_prompt("Webデザイナーの"), "年収 removed")
        chat.type("年収は？")
        chat.wait(lambda: chat.at_prompt(WEB), "the question")
        assert said_about("Webデザイナー", chat.enter(what="the question"))
        assert chat.quit() == 0
    finally:
        chat.close()


def _read_only(data_dir: Path) -> list[str]:
    """A command prefix that runs careerbot with ``data_dir`` read-only, or skip when none works here."""
    if os.geteuid() != 0:
        data_dir.chmod(0o555)
        return []
    # root writes through permission bits: mount the folder read-only in a mount namespace of its own.
    wrapper = ["unshare", "--mount", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(data_dir)]
    if not shutil.which("unshare"):
        pytest.skip("running as root without unshare: no way to make a folder read-only for root")
    probe = subprocess.run([*wrapper, "sh", "-c", f'! touch "{data_dir}/probe" 2>/dev/null'], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"running as root and cannot mount a read-only folder here: {probe.stderr.decode(errors='replace').strip()}")
    return wrapper


def test_a_read_only_data_dir_keeps_the_history_it_has_and_the_chat_going(data_dir: Path) -> None:
    (data_dir / HISTORY_FILE).write_text(f"{SRE}\n", encoding="utf-8")
    wrapper = _read_only(data_dir)
    try:
        chat = Terminal(["chat"], chat_env(data_dir), wrapper=wrapper)
        try:
            chat.wait(chat.at_prompt, "the prompt")
            chat.type(UP)
            chat.wait(lambda: chat.at_prompt(SRE), "the kept history, read")
            assert said_about("SREエンジニア", chat.enter(what="the recalled question"))
            answer = chat.ask(WEB, what="a new question, which cannot be saved")
            assert said_about("Webデザイナー", answer)
            assert chat.ask("AI PMの年収は？", what="the next question").count("500〜850") >= 1
            assert chat.quit() == 0
        finally:
            chat.close()
        warnings = [line for line in chat.text.splitlines() if line.startswith("careerbot: ")]
        assert len(warnings) == 1, warnings  # once, not once per question
        reason = "Read-only file system" if wrapper else "Permission denied"
        assert warnings[0] == f"careerbot: warning: chat history not saved ({reason}): {data_dir / HISTORY_FILE}"
        assert "Traceback" not in chat.text
    finally:
        data_dir.chmod(0o755)
    assert (data_dir / HISTORY_FILE).read_text(encoding="utf-8") == f"{SRE}\n"


# -- brief answers ---------------------------------------------------------------------------------------


def env_for(data_dir: Path) -> dict[str, str]:
    return {"CAREERBOT_KNOWLEDGE_DIR": str(KNOWLEDGE), "CAREERBOT_DATA_DIR": str(data_dir)}


def test_ask_brief_numbers_the_sources_by_title_without_links_or_related_careers(data_dir: Path) -> None:
    full = run(["ask", "データサイエンティストの年収は？"], env_for(data_dir))
    brief = run(["ask", "--brief", "データサイエンティストの年収は？"], env_for(data_dir))
    assert full.returncode == brief.returncode == 0, brief.stderr
    assert "https://" in full.stdout and "**関連する職種:**" in full.stdout
    assert "https://" not in brief.stdout and "関連する職種" not in brief.stdout
    assert "450〜700" in brief.stdout and "[1]" in brief.stdout  # the answer itself is all there
    assert "\n**出典**\n[1] データサイエンティスト › 日本での推定年収（doda・OpenWork参照）\n" in brief.stdout
    assert brief.stdout.count("**出典**") == 1
    assert len(brief.stdout) < len(full.stdout)
    english = run(["ask", "--brief", "How much does a data scientist earn?"], env_for(data_dir))
    assert "**Sources**\n[1] データサイエンティスト › " in english.stdout and "https://" not in english.stdout


def test_a_brief_refusal_keeps_the_apology_and_the_careers_it_knows(data_dir: Path) -> None:
    result = run(["ask", "--brief", WEB], env_for(data_dir))
    assert result.returncode == 0, result.stderr
    assert said_about("Webデザイナー", result.stdout)
    assert "**現在扱っている職種:**" in result.stdout and "データサイエンティスト" in result.stdout
    assert "https://" not in result.stdout and "近いトピック" not in result.stdout


def test_an_llm_answer_in_brief_keeps_its_body_and_numbers_its_sources(advisor: Advisor) -> None:
    # The openai / anthropic backends render llm_reply.md.j2: the model's body, then sources and related careers.
    asked = advisor.ask("AI PMの年収は？")
    cited = asked.citations[0]
    related = [Link(title="データサイエンティスト", url=f"{advisor.settings.article_base_url}data_scientist")]
    body = "ジュニアは500〜850万円です [1]。"
    text = advisor.prompts.render("llm_reply.md", language="ja", body=body, citations=[cited], related=related)
    answer = dataclasses.replace(asked, text=text, backend="openai", related=tuple(related))
    brief = brief_text(answer, advisor.prompts)
    assert "%E6" in cited.url and "https://" in text  # a percent-encoded link, shown readably in the full text
    assert brief == f"{body}\n\n**出典**\n[1] AIプロダクトマネージャー › {cited.breadcrumb}"


def test_brief_and_json_cannot_be_combined(data_dir: Path) -> None:
    result = run(["ask", "--brief", "--json", "質問"], env_for(data_dir))
    assert result.returncode == 2 and "not allowed with argument" in result.stderr


def test_chat_brief_and_the_brief_toggle(data_dir: Path) -> None:
    question = "AI PMの年収は？\n"
    toggled = run(["chat"], env_for(data_dir), stdin=question + "/brief\n" + question + "/brief\n" + question)
    assert toggled.returncode == 0, toggled.stderr
    answers = toggled.stdout.split("**AIプロダクトマネージャー**について")[1:]
    assert len(answers) == 3
    assert ["https://" in a for a in answers] == [True, False, True]
    assert ["関連する職種" in a for a in answers] == [True, False, True]
    assert "500〜850" in answers[1] and "[1] AIプロダクトマネージャー › " in answers[1]
    assert "簡潔表示にしました" in toggled.stderr and "通常の表示に戻しました" in toggled.stderr
    started = run(["chat", "--brief"], env_for(data_dir), stdin=question + "/brief\n" + question)
    answers = started.stdout.split("**AIプロダクトマネージャー**について")[1:]
    assert ["https://" in a for a in answers] == [False, True]
    assert not (data_dir / HISTORY_FILE).exists()  # piped input is not a terminal: no history written


def test_every_chat_line_renders_in_both_languages(advisor: Advisor) -> None:
    for language in ("ja", "en"):
        lines = {m: advisor.prompts.render("chat.md", language=language, message=m) for m in ("welcome", "reset", "brief_on", "brief_off")}
        assert all(lines.values()) and len(set(lines.values())) == 4, lines
        assert "/brief" in lines["welcome"] and "Ctrl-D" in lines["welcome"]


# -- the demo ---------------------------------------------------------------------------------------------


def test_the_demo_says_in_one_line_that_it_skips_the_chat_without_a_terminal(data_dir: Path) -> None:
    result = run(["demo"], env_for(data_dir), stdin="")
    assert result.returncode == 0, result.stderr
    notice = "careerbot: no terminal: skipping the chat; run `careerbot chat`"
    assert result.stderr.splitlines().count(notice) == 1 and notice not in result.stdout
    assert result.stdout.count("? ") >= 3  # the sample questions were still answered
    quiet = run(["demo", "--no-chat"], env_for(data_dir), stdin="")
    assert quiet.returncode == 0 and "no terminal" not in quiet.stderr
