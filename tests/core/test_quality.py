"""The shipped question sets on the real knowledge base and default embedder: the bars the issues set."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.knowledge import load_knowledge
from bot.pipeline import Advisor
from bot.questions import Question, load_question_sets, resolve_sections
from tests.conftest import KNOWLEDGE

QUESTIONS = load_question_sets([KNOWLEDGE / "questions"])
IN_SCOPE = [q for q in QUESTIONS if not q.out_of_scope]
OUT_OF_SCOPE = [q for q in QUESTIONS if q.out_of_scope]


def test_the_question_sets_are_big_and_varied_enough() -> None:
    tags = Counter(t for q in QUESTIONS for t in q.tags)
    assert len(QUESTIONS) >= 120
    assert len(OUT_OF_SCOPE) >= 10
    assert tags["english"] >= 10 and tags["followup"] >= 10 and tags["comparison"] >= 10
    assert tags["salary"] >= 10 and tags["paraphrase"] >= 10
    per_article = Counter(q.expected_sections[0].split("#")[0] for q in IN_SCOPE if q.expected_sections)
    assert per_article["ai_product_manager"] >= 40
    for slug in ("data_scientist", "product_manager", "machine_learning_engineer"):
        assert per_article[slug] >= 20, slug
    assert {"看護師の年収は？", "弁護士になるにはどうすればいい？"} <= {q.question for q in OUT_OF_SCOPE}


def test_every_expected_section_exists() -> None:
    resolution = resolve_sections(QUESTIONS, load_knowledge(KNOWLEDGE))
    assert resolution.unknown == {}


@pytest.fixture(scope="module")
def answers(advisor: Advisor) -> dict[str, object]:
    return {q.id: advisor.ask(q.question, history=q.turns) for q in QUESTIONS}


def test_hit_at_5_is_at_least_0_90(advisor: Advisor, answers: dict) -> None:
    gold = resolve_sections(IN_SCOPE, advisor.knowledge).sections
    misses = [
        q.id for q in IN_SCOPE if not {h.passage.section.id for h in answers[q.id].retrieval.hits[:5]} & gold[q.id]
    ]
    hit_rate = 1 - len(misses) / len(IN_SCOPE)
    assert hit_rate >= 0.90, f"hit@5 {hit_rate:.3f}; misses: {misses}"


def test_every_out_of_scope_question_abstains(answers: dict) -> None:
    answered = [q.question for q in OUT_OF_SCOPE if not answers[q.id].abstained]
    assert answered == []


def test_at_most_one_in_twenty_in_scope_questions_abstains(answers: dict) -> None:
    abstained = [q.question for q in IN_SCOPE if answers[q.id].abstained]
    assert len(abstained) <= len(IN_SCOPE) / 20, abstained


def comparison(q: Question) -> bool:
    return bool(q.expected_articles)


def test_every_comparison_cites_both_careers(answers: dict) -> None:
    comparisons = [q for q in IN_SCOPE if comparison(q)]
    assert len(comparisons) >= 10
    for q in comparisons:
        cited = {c.section_id.split("#")[0] for c in answers[q.id].citations}
        assert set(q.expected_articles) <= cited, (q.question, cited)


def test_other_careers_abstain_and_name_the_covered_ones(advisor: Advisor) -> None:
    for question in ("看護師の年収は？", "弁護士になるには？", "公認会計士の仕事内容は？"):
        answer = advisor.ask(question)
        assert answer.abstained and answer.citations == ()
        for name in ("AIプロダクトマネージャー", "データサイエンティスト", "プロダクトマネージャー", "機械学習エンジニア"):
            assert name in answer.text
