"""The shipped question sets on the real knowledge base and default embedder: the bars the issues set.

``dev`` is tuned on; ``test`` was written blind from the articles and is never tuned on. Both are held
to the same bars (a little below what they measure, so a regression fails); the README reports both.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bot.eval.runner import run_eval
from bot.knowledge import load_knowledge
from bot.pipeline import Advisor
from bot.questions import load_labelled_question_sets, load_question_sets, resolve_sections
from tests.conftest import KNOWLEDGE

SPLITS = ("dev", "test")
QUESTIONS = {split: load_question_sets([KNOWLEDGE / "questions" / split]) for split in SPLITS}


def test_the_question_sets_are_big_and_varied_enough() -> None:
    for split, questions in QUESTIONS.items():
        in_scope = [q for q in questions if not q.out_of_scope]
        tags = Counter(t for q in questions for t in q.tags)
        assert len(in_scope) >= 150 and sum(q.out_of_scope for q in questions) >= 20, split
        assert sum(1 for q in in_scope if q.expected_text) >= 100, split  # answer-level metrics need text
        for tag in ("english", "followup", "comparison", "salary", "books", "companies", "career-path", "suited"):
            assert tags[tag] >= 3, (split, tag)
        per_article = Counter(q.expected_sections[0].split("#")[0] for q in in_scope if q.expected_sections)
        for slug in ("ai_product_manager", "data_scientist", "product_manager", "machine_learning_engineer"):
            assert per_article[slug] >= 25, (split, slug)
    assert not {q.id for q in QUESTIONS["dev"]} & {q.id for q in QUESTIONS["test"]}
    assert not {q.question for q in QUESTIONS["dev"]} & {q.question for q in QUESTIONS["test"]}


def test_every_expected_section_exists() -> None:
    kb = load_knowledge(KNOWLEDGE)
    for questions in QUESTIONS.values():
        assert resolve_sections(questions, kb).unknown == {}


@pytest.fixture(scope="module")
def reports(advisor: Advisor) -> dict[str, dict]:
    return {split: run_eval(advisor, load_labelled_question_sets([KNOWLEDGE / "questions" / split])) for split in SPLITS}


#: (metric, bar, higher is better) per split — issue 11's bars, each a little below what the split measures.
BARS = [
    ("hit@1", 0.78, True),
    ("hit@5", 0.95, True),
    ("answer_hit", 0.78, True),
    ("text_both@5", 0.80, True),
    ("answer_both", 0.75, True),
    ("abstention_recall", 0.80, True),
    ("in_scope_abstention", 0.03, False),
]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("metric", "bar", "higher"), BARS, ids=[b[0] for b in BARS])
def test_split_meets_the_bar(reports: dict[str, dict], split: str, metric: str, bar: float, higher: bool) -> None:
    value = reports[split]["summary"][metric]
    failing = [r["id"] for r in reports[split]["questions"] if r["failures"]]
    assert value is not None
    assert (value >= bar) if higher else (value <= bar), f"{split} {metric} {value:.3f} vs {bar}; failing: {failing}"


def test_comparisons_cite_both_careers(reports: dict[str, dict]) -> None:
    for split, report in reports.items():
        assert report["counts"]["comparison_questions"] >= 10, split
        assert report["summary"]["comparison_coverage"] >= 0.95, split


def test_no_answer_cites_a_tag_list(reports: dict[str, dict]) -> None:
    cited = {c["section_id"] for report in reports.values() for r in report["questions"] for c in r["citations"]}
    assert cited and not {sid for sid in cited if sid.endswith("#推奨タグ")}


def test_other_careers_abstain_and_name_the_covered_ones(advisor: Advisor) -> None:
    for question in ("看護師の年収は？", "弁護士になるには？", "公認会計士の仕事内容は？"):
        answer = advisor.ask(question)
        assert answer.abstained and answer.citations == ()
        for name in ("AIプロダクトマネージャー", "データサイエンティスト", "プロダクトマネージャー", "機械学習エンジニア"):
            assert name in answer.text
