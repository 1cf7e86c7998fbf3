"""The README stays true to the code: its two commands, every setting, the CI script."""

from __future__ import annotations

import re

from bot.settings import Settings
from tests.conftest import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_opens_with_exactly_two_commands() -> None:
    block = re.search(r"\A# careerbot\n\n```sh\n(.*?)\n```", README, re.DOTALL)
    assert block, "the README must open with one sh block"
    commands = block.group(1).splitlines()
    assert len(commands) == 2
    assert commands[0].endswith("careerbot demo") and "pytest" in commands[1]
    assert "'.[test]'" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "README.md" in ci and "sed -n 3p" in ci


def test_every_setting_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias.choices[0] if field.validation_alias is not None else None
        variable = alias or f"CAREERBOT_{name.upper()}"
        assert f"`{variable}`" in README, variable
