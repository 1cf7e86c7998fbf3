"""Hybrid retrieval on the real knowledge base: fusion, career routing, comparisons, follow-ups."""

from __future__ import annotations

import pytest

from bot.pipeline import Advisor


def slugs_of(advisor: Advisor, question: str, history: tuple[str, ...] = (), k: int = 5) -> list[str]:
    return [h.passage.section.slug for h in advisor.retriever.search(question, history=list(history), top_k=k).hits]


def top_section(advisor: Advisor, question: str, history: tuple[str, ...] = ()) -> str:
    return advisor.retriever.search(question, history=list(history), top_k=5).hits[0].passage.section.id


SALARY = "日本での推定年収dodaopenwork参照"


@pytest.mark.parametrize(
    ("question", "slug"),
    [
        ("データサイエンティストの年収は？", "data_scientist"),
        ("PMの年収", "product_manager"),
        ("PdMの給料はどれくらい？", "product_manager"),
        ("AI PMの年収は？", "ai_product_manager"),
        ("MLEの年収", "machine_learning_engineer"),
        ("How much does a data scientist earn?", "data_scientist"),
    ],
)
def test_a_named_career_is_answered_from_its_own_salary_table(advisor: Advisor, question: str, slug: str) -> None:
    assert top_section(advisor, question) == f"{slug}#{SALARY}"


def test_pm_is_not_read_as_ai_pm_and_ai_pm_not_as_pm(advisor: Advisor) -> None:
    assert advisor.careers.mentions("PMの年収") == ["product_manager"]
    assert advisor.careers.mentions("AI PMの年収") == ["ai_product_manager"]
    assert advisor.careers.mentions("AIプロダクトマネージャーとプロダクトマネージャー") == ["ai_product_manager", "product_manager"]
    assert advisor.careers.mentions("npmとwordsの話") == []  # no PM or DS inside other words


def test_the_seed_defines_ai_pm_in_its_text_not_its_front_matter(advisor: Advisor) -> None:
    career = advisor.careers.get("ai_product_manager")
    assert career is not None and "ai pm" in career.names and "aipm" in career.names


def test_a_comparison_retrieves_from_both_articles(advisor: Advisor) -> None:
    top = slugs_of(advisor, "データサイエンティストとMLエンジニアの違いは？", k=4)
    assert {"data_scientist", "machine_learning_engineer"} <= set(top[:2])


def test_a_follow_up_stays_with_the_career_of_the_conversation(advisor: Advisor) -> None:
    retrieval = advisor.retriever.search("そのために必要なスキルは？", history=["データサイエンティストの仕事内容は？"])
    assert retrieval.careers == ("data_scientist",) and retrieval.careers_from_context
    assert all(h.passage.section.slug == "data_scientist" for h in retrieval.hits[:3])
    assert "スキル" in retrieval.hits[0].passage.section.heading


def test_the_latest_career_in_the_conversation_wins(advisor: Advisor) -> None:
    history = ["AI PMの年収は？", "じゃあ機械学習エンジニアは？"]
    assert top_section(advisor, "シニアになるとどのくらい？", tuple(history)) == f"machine_learning_engineer#{SALARY}"


def test_confidence_separates_on_and_off_topic(advisor: Advisor) -> None:
    on = advisor.retriever.search("AI PMの年収は？").confidence
    off = advisor.retriever.search("渋谷でおすすめのラーメン屋は？").confidence
    assert 0 <= off < advisor.settings.min_confidence <= on <= 1


def test_synonyms_bring_the_articles_word(advisor: Advisor) -> None:
    assert advisor.synonyms.expansions("給料はいくら？") == ["年収"]
    assert advisor.synonyms.expansions("What is the salary?") == ["年収"]
    assert advisor.synonyms.expansions("年収は？") == []


def test_a_follow_up_without_a_topic_keeps_the_conversations_topic(advisor: Advisor) -> None:
    history = ["データサイエンティストの年収は？"]
    assert top_section(advisor, "シニアだと？", tuple(history)) == f"data_scientist#{SALARY}"
    answer = advisor.ask("シニアだと？", history=history)
    assert "1,100〜1,800+" in answer.text and "450〜700" not in answer.text  # the senior row, not the table
    history.append("シニアだと？")
    assert top_section(advisor, "じゃあ機械学習エンジニアは？", tuple(history)) == f"machine_learning_engineer#{SALARY}"


def test_a_follow_up_with_its_own_topic_is_searched_for_that_topic(advisor: Advisor) -> None:
    top = top_section(advisor, "将来性はある？", ("AI PMのキャリアパスを知りたい",))
    assert top == "ai_product_manager#ai-product-managerの将来展望と重要性の高まり"


@pytest.mark.parametrize(
    ("question", "aspect", "section"),
    [
        ("PdMを2行で説明して", "summary", "product_manager#まとめ"),
        ("Will PdMs still have jobs a decade on?", "outlook",
         "product_manager#プロダクトマネージャーの将来展望と重要性の高まり"),
    ],
)
def test_a_question_that_names_no_part_is_steered_by_its_meaning(
    lexicon_advisor: Advisor, question: str, aspect: str, section: str
) -> None:
    advisor = lexicon_advisor  # the aspects' example questions, not the part learned from question sets
    assert advisor.retriever.analyze(question).aspect is None  # no cue word: the lexicon alone cannot tell
    retrieval = advisor.retriever.search(question)
    assert retrieval.analysis is not None and retrieval.analysis.aspect is not None
    assert retrieval.analysis.aspect.name == aspect and retrieval.analysis.aspect_cue is None
    assert retrieval.analysis.aspect_example in retrieval.analysis.aspect.examples
    assert retrieval.hits[0].passage.section.id == section


def test_meaning_steers_neither_a_question_with_a_cue_nor_one_about_no_career(advisor: Advisor) -> None:
    cued = advisor.retriever.search("PdMの年収を2行で")
    assert cued.analysis is not None and cued.analysis.aspect is not None
    assert cued.analysis.aspect.name == "salary" and cued.analysis.aspect_example is None
    no_career = advisor.retriever.search("2行で説明して")
    assert no_career.analysis is not None and no_career.analysis.aspect is None
