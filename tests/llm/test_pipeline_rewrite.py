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


#: Rewrites of 「シニアだと？」 (after 「データサイエンティストについて教えて」) that a real small model wrote:
#: a bare word, a noun phrase, the rewrite prompt's own first line, an invented answer, the fence echoed.
BAD_REWRITES = {
    "bare_word": "シニア",
    "not_a_question": "シニアモデル",
    "prompt_echo": "キャリア相談ボットとの会話で、ユーザーが次の質問をしてきました。最後の質問（フォローアップ）を書き換えてください。",
    "answer": "シニアのデータサイエンティストの年収は1,100〜1,800万円以上です。",
    "fence": "<question-0a1b2c3d4e5f>シニアだと？</question-0a1b2c3d4e5f>",
}


def test_a_rewrite_that_is_not_a_question_about_the_conversation_is_not_searched(provider: Provider) -> None:
    advisor = Advisor(settings=provider.settings(backend=provider.name), embedder=provider.advisor.embedder)
    history = ["データサイエンティストについて教えて"]
    heuristic = advisor.retriever.search("シニアだと？", history=history).query  # what the search uses without a rewrite
    for kind, bad in BAD_REWRITES.items():
        provider.server.reset()
        provider.server.add(Text.of(bad, input_tokens=50, output_tokens=7), Text.of("シニアは1,100〜1,800万円以上です [1]。"))
        answer = advisor.ask("シニアだと？", history=history)
        assert answer.retrieval.query == heuristic, kind  # searched as asked, the history as context
        rewrite = answer.usage["rewrite"]
        assert rewrite["used"] is False and rewrite["reason"], kind
        assert rewrite["reason"] == {"answer": "not_a_question", "fence": "prompt_echo"}.get(kind, kind), kind
        assert rewrite["proposed"] == bad.strip("「」『』\"'“” ")
        # Metered: both HTTP calls and their tokens are in the answer's usage.
        assert len(provider.server.requests) == 2 and answer.usage["calls"] == 2, kind
        assert answer.usage["input_tokens"] == 50 + 321 and answer.usage["output_tokens"] == 7 + 45, kind
        assert rewrite["calls"] == 1 and rewrite["input_tokens"] == 50


def test_a_good_rewrite_is_metered_in_the_answers_usage(provider: Provider) -> None:
    advisor = Advisor(settings=provider.settings(backend=provider.name), embedder=provider.advisor.embedder)
    provider.server.add(
        Text.of("データサイエンティストのシニアの年収は？", input_tokens=60, output_tokens=9),
        Text.of("シニアは1,100〜1,800万円以上です [1]。", input_tokens=900, output_tokens=20),
    )
    answer = advisor.ask("シニアだと？", history=["データサイエンティストについて教えて"])
    assert answer.retrieval.query == "データサイエンティストのシニアの年収は？"
    assert answer.usage["rewrite"] == {
        "used": True, "reason": None, "proposed": "データサイエンティストのシニアの年収は？", "calls": 1,
        "input_tokens": 60, "output_tokens": 9, "llm_ms": answer.usage["rewrite"]["llm_ms"],
    }
    assert answer.usage["calls"] == 2 and answer.usage["input_tokens"] == 960 and answer.usage["output_tokens"] == 29
    assert len(answer.usage["call_ms"]) == 2 and answer.usage["fallback"] is None
