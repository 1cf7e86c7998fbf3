"""Years of experience in questions and in the salary tables' row titles."""

from __future__ import annotations

import pytest

from bot.answer.experience import rows_for_years, stated_years, years_of_row
from bot.answer.units import Unit


@pytest.mark.parametrize(
    ("question", "years"),
    [
        ("未経験から入って1〜2年目くらいだと年収どれくらい？", (0.0, 2.0)),
        ("経験3年のDSはいくらもらえる？", (3.0, 3.0)),
        ("PMを5年やってます。年収は上がる？", (5.0, 5.0)),
        ("3年目のMLEの給料は？", (2.0, 3.0)),
        ("I have 4 years of experience as a data scientist. What can I earn?", (4.0, 4.0)),
        ("AI PMの3年後の将来性は？", None),  # a plan, not experience
        ("2025年のAI PMの年収は？", None),
    ],
)
def test_the_years_of_experience_a_question_states(question: str, years: tuple[float, float] | None) -> None:
    assert stated_years(question) == years


def row(title: str) -> Unit:
    return Unit(section_id="x#y", order=0, kind="row", text=title, title=title)


def test_rows_cover_the_years_their_titles_give_ends_included() -> None:
    rows = [row("ジュニア (0-3年)"), row("ミドル (3-7年)"), row("シニア (7年以上/リード)")]
    assert [years_of_row(r.title) for r in rows] == [(0.0, 3.0), (3.0, 7.0), (7.0, float("inf"))]
    assert [r.title for r in rows_for_years("1〜2年目だと年収は？", rows)] == ["ジュニア (0-3年)"]
    assert [r.title for r in rows_for_years("経験5年だと？", rows)] == ["ミドル (3-7年)"]
    assert [r.title for r in rows_for_years("経験3年だと？", rows)] == ["ジュニア (0-3年)", "ミドル (3-7年)"]  # both say 3
    assert [r.title for r in rows_for_years("経験12年です", rows)] == ["シニア (7年以上/リード)"]
    assert rows_for_years("シニアの年収は？", rows) == []  # no years stated: the caller's focus decides
    assert rows_for_years("経験5年だと？", [row("ツールカテゴリ: 分析")]) == []
