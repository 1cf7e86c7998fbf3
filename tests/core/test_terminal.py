"""`careerbot chat` on a real pseudo-terminal with real keys; the demo without a terminal.

The chat's refusal repeats the job title the bot received (「Webデザイナー」についての記事は…),
so what the bot was asked can be read from its answer.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.pipeline import Advisor
from bot.terminal import HISTORY_FILE
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


# -- the chat's own lines and the demo -----------------------------------------------------------------


def test_every_chat_line_renders_in_both_languages(advisor: Advisor) -> None:
    for language in ("ja", "en"):
        lines = {m: advisor.prompts.render("chat.md", language=language, message=m) for m in ("welcome", "reset")}
        assert all(lines.values()) and len(set(lines.values())) == 2, lines
        assert "/reset" in lines["welcome"] and "Ctrl-D" in lines["welcome"]


def env_for(data_dir: Path) -> dict[str, str]:
    return {"CAREERBOT_KNOWLEDGE_DIR": str(KNOWLEDGE), "CAREERBOT_DATA_DIR": str(data_dir)}


def test_the_demo_says_in_one_line_that_it_skips_the_chat_without_a_terminal(data_dir: Path) -> None:
    result = run(["demo"], env_for(data_dir), stdin="")
    assert result.returncode == 0, result.stderr
    notice = "careerbot: no terminal: skipping the chat; run `careerbot chat`"
    assert result.stderr.splitlines().count(notice) == 1 and notice not in result.stdout
    assert result.stdout.count("? ") >= 3  # the sample questions were still answered
    quiet = run(["demo", "--no-chat"], env_for(data_dir), stdin="")
    assert quiet.returncode == 0 and "no terminal" not in quiet.stderr
