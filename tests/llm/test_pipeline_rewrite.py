"""The Advisor rewrites an LLM conversation's follow-up into a standalone question before it searches."""

from __future__ import annotations

from bot.pipeline import Advisor

from .conftest import Provider
from .fake_llm import Text


def test_a_follow_up_is_searched_as_the_standalone_question_the_model_wrote(provider: Provider) -> None:
    advisor = Advisor(settings=provider.settings(backend=provider.name), embedder=provider.advisor.embedder)
    provider.server.add(
        Text.of("データサイエンティストの年収は？"),  # the rewrite of 「シニアだと？」
        Text.of("シニアは1,100〜1,800万円以上です [1]。"),  # the answer
    )
    answer = advisor.ask("シニアだと？", history=["データサイエンティストについて教えて"])
    rewrite, answered = provider.server.requests
    assert "シニアだと？" in provider.server.user_text(rewrite) and "データサイエンティストについて教えて" in provider.server.user_text(rewrite)
    assert answer.retrieval.query == "データサイエンティストの年収は？"
    assert answer.citations[0].section_id == "data_scientist#日本での推定年収dodaopenwork参照"
    assert "1,100〜1,800" in answer.text and answer.timings_ms["rewrite"] > 0
    assert "シニアだと？" in provider.server.user_text(answered)  # the model still answers what was asked


def test_questions_that_name_their_career_or_have_no_history_are_not_rewritten(provider: Provider) -> None:
    advisor = Advisor(settings=provider.settings(backend=provider.name), embedder=provider.advisor.embedder)
    provider.server.add(Text.of("ジュニアは450〜700万円です [1]。"), Text.of("ジュニアは450〜700万円です [1]。"))
    advisor.ask("データサイエンティストの年収は？", history=["AI PMについて教えて"])
    advisor.ask("データサイエンティストの年収は？")
    assert len(provider.server.requests) == 2  # two answers, no rewrite call
