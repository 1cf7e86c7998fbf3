"""The grounding rules against what real small models wrote on a real llama.cpp server.

``fixtures/real_replies.json`` holds replies captured by ``tests/llm/capture_replies.py``
from llama-server serving Gemma 3 270M (base) and SmolLM2-135M-Instruct: the raw
reply, its ``finish_reason`` and the exact prompt it answered (system, user,
boundary, sources). Each test rebuilds that prompt around the real sections and
checks what `verify` decides; ``expect`` in the fixture is the decision.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.answer.grounding import repetition, rewrite_problem, trim_truncated
from bot.answer.llm import Prompt, Source, verify
from bot.pipeline import Advisor

FIXTURES = Path(__file__).parent / "fixtures"
BASE = "https://kb.example/"


def replies() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "real_replies.json").read_text(encoding="utf-8"))


def prompt_of(record: dict[str, Any], advisor: Advisor) -> Prompt:
    sections = {s.id: s for s in advisor.knowledge.sections}
    p = record["prompt"]
    sources = tuple(
        Source(n=s["n"], section=sections[s["section_id"]], title=s["title"], breadcrumb=s["breadcrumb"],
               text=s["text"], score=s["score"])
        for s in p["sources"]
    )
    return Prompt(system=p["system"], user=p["user"], sources=sources, boundary=p["boundary"])


def check(record: dict[str, Any], advisor: Advisor):
    prompt = prompt_of(record, advisor)
    return verify(record["reply"], prompt.sources, base_url=BASE, prompt=prompt,
                  truncated=record["finish_reason"] == "length")


ANSWERS = [r for r in replies() if r["kind"] == "answer"]
REWRITES = [r for r in replies() if r["kind"] == "rewrite"]


@pytest.mark.parametrize("record", ANSWERS, ids=[r["id"] for r in ANSWERS])
def test_a_real_reply_gets_the_recorded_decision(record: dict[str, Any], advisor: Advisor) -> None:
    checked = check(record, advisor)
    assert (checked.rejected or ("served" if checked.citations and checked.text else "no_valid_citation")) == record["expect"]
    assert checked.truncated == (record["finish_reason"] == "length")
    if record["expect"] == "served":
        # What is served: no fence, no half marker, only given sources, complete lines.
        assert "<" not in checked.text and not checked.text.rstrip().endswith("[")
        assert {c.section_id for c in checked.citations} <= {s["section_id"] for s in record["prompt"]["sources"]}


@pytest.mark.parametrize("record", REWRITES, ids=[r["id"] for r in REWRITES])
def test_a_real_rewrite_is_judged_as_recorded(record: dict[str, Any]) -> None:
    lines = [line.strip() for line in record["reply"].strip().splitlines() if line.strip()]
    proposed = lines[0].strip("「」『』\"'“” ") if lines else ""
    problem = rewrite_problem(proposed, question=record["question"], history=record["history"],
                              prompt=record["prompt"], boundary=record["boundary"])
    assert (problem or "used") == record["expect"], proposed


def real(record_id: str) -> dict[str, Any]:
    return next(r for r in replies() if r["id"] == record_id)


def test_an_echo_of_the_system_prompt_is_caught_by_its_words_alone(advisor: Advisor) -> None:
    """Gemma's copy of the system rules, with every fence tag and boundary taken out: still an echo."""
    record = dict(real("gemma-answer-5"))
    record["reply"] = re.sub(r"</?\s*(?:sources?|source)-[0-9a-f]+>?", "", record["reply"])
    assert record["prompt"]["boundary"] not in record["reply"]
    assert check(record, advisor).rejected == "prompt_echo"


def test_a_marker_on_a_copied_source_header_is_not_a_citation(advisor: Advisor) -> None:
    """The header line Gemma copied (``[1] title › section``) with the source text after it: cites nothing."""
    record = real("gemma-answer-3")
    prompt = prompt_of(record, advisor)
    header = next(line for line in record["reply"].splitlines() if line.startswith("[1] "))
    body = "\n".join(line for line in record["reply"].splitlines() if line.strip() and not line.startswith("<"))
    assert header in body
    checked = verify(body, prompt.sources, base_url=BASE)  # without the prompt: the echo rule aside
    assert header not in checked.text and checked.invalid >= 1 and not checked.citations
    # The same line as a real citation at the end of a sentence counts.
    checked = verify("書籍で学べます [1]。", prompt.sources, base_url=BASE)
    assert [c.n for c in checked.citations] == [1] and checked.invalid == 0


def test_more_invalid_markers_than_valid_ones_is_degenerate(advisor: Advisor) -> None:
    """A reply listing [1]…[20] over real source lines: only the first few markers name a given source."""
    record = real("gemma-answer-1")
    prompt = prompt_of(record, advisor)
    rows = [line for line in record["reply"].splitlines() if line.startswith("| ") and "年" in line][:2]
    reply = "\n".join(f"{row} [{n}]" for n, row in enumerate(rows, start=1))
    reply += "\n" + "\n".join(f"- 年収 [{n}]" for n in range(3, 21))
    checked = verify(reply, prompt.sources, base_url=BASE, prompt=prompt)
    assert checked.rejected == "degenerate" and checked.invalid > 2


def test_a_reply_cut_at_max_tokens_is_trimmed_and_recorded(advisor: Advisor) -> None:
    """Gemma's table, cut mid-row at 200 tokens: the cut row and the copied header line go."""
    record = real("gemma-answer-1")
    assert record["finish_reason"] == "length" and not record["reply"].endswith("\n")
    prompt = prompt_of(record, advisor)
    last = record["reply"].splitlines()[-1]
    checked = verify(record["reply"], prompt.sources, base_url=BASE, prompt=prompt, truncated=True)
    assert checked.truncated and last not in checked.text
    assert not any("›" in line for line in checked.text.splitlines())


def test_the_fixtures_cover_every_rule() -> None:
    decisions = {r["expect"] for r in ANSWERS}
    assert {"prompt_echo", "repetitive", "no_valid_citation", "truncated"} <= decisions, decisions
    assert any(r["finish_reason"] == "length" for r in ANSWERS)
    assert {r["model"] for r in replies()} >= {"gemma-3-270m", "smollm2-135m"}


# Rules on shapes a model writes, beyond the captured replies ------------------------------------------------


def sources_of(advisor: Advisor, question: str, k: int = 3) -> tuple[Source, ...]:
    from bot.answer import AnswerRequest
    from bot.answer.llm import build_prompt

    retrieval = advisor.retriever.search(question, top_k=k)
    request = AnswerRequest(question=question, retrieval=retrieval, knowledge=advisor.knowledge,
                            aspects=advisor.retriever.aspects, careers=advisor.careers)
    return build_prompt(advisor.prompts, request).sources


def test_list_ordinals_are_not_figures(advisor: Advisor) -> None:
    sources = sources_of(advisor, "データサイエンティストになるには？")
    reply = "次の順に学びます [1]。\n1. 統計学を学ぶ\n2. Pythonを学ぶ\n3) 実務で使う"
    checked = verify(reply, sources, base_url=BASE)
    assert checked.dropped == 0 and "1. 統計学を学ぶ" in checked.text and "3) 実務で使う" in checked.text
    # A real figure in an uncited item still goes.
    checked = verify(reply + "\n4. 年収は800万円になる", sources, base_url=BASE)
    assert checked.dropped == 1 and "800万円" not in checked.text


def test_a_table_cited_once_keeps_its_rows(advisor: Advisor) -> None:
    sources = sources_of(advisor, "データサイエンティストの年収は？")
    reply = ("年収の目安です。\n\n| 経験 | 年収 [1] |\n| --- | --- |\n| ジュニア | 450〜700万円 |\n| シニア | 1,100万円〜 |\n\n"
             "以上です [1]。")
    checked = verify(reply, sources, base_url=BASE)
    assert "| ジュニア | 450〜700万円 |" in checked.text and "| シニア | 1,100万円〜 |" in checked.text
    assert checked.dropped == 0
    # A table right under the sentence that cites it is cited by it.
    checked = verify("年収は次の通りです [1]。\n| 経験 | 年収 |\n| --- | --- |\n| ジュニア | 450〜700万円 |", sources, base_url=BASE)
    assert "| ジュニア | 450〜700万円 |" in checked.text and checked.dropped == 0
    # An uncited table with figures goes whole.
    checked = verify(reply.replace("年収 [1]", "年収"), sources, base_url=BASE)
    assert "450〜700" not in checked.text and checked.dropped == 1


@pytest.mark.parametrize(
    ("cut", "kept"),
    [
        ("年収は経験で変わります [1]。ジュニアは500〜850万円 [", "年収は経験で変わります [1]。"),
        ("年収は経験で変わります [1]。\n- ジュニア: 500〜850万円 [1]\n- シニア: 1,4", "年収は経験で変わります [1]。\n- ジュニア: 500〜850万円 [1]"),
        ("It varies with experience [1]. Juniors earn 5", "It varies with experience [1]."),
        ("ジュニアは500", ""),
        ("年収は経験で変わります。[1][2] 次に", "年収は経験で変わります。[1][2]"),
    ],
)
def test_a_reply_cut_at_max_tokens_ends_at_its_last_complete_sentence_or_line(cut: str, kept: str) -> None:
    assert trim_truncated(cut) == kept


def test_no_article_section_counts_as_repetitive(advisor: Advisor) -> None:
    """The loop detector on real well-formed text (every section of every article): it never fires."""
    flagged = [s.id for s in advisor.knowledge.sections if repetition(s.text)]
    assert flagged == []
    assert repetition("シニアの年収は高いです。\n" * 3) and repetition("データサイエンティスト、" * 12)


@pytest.mark.parametrize(
    "question",
    ["データサイエンティストの年収は？", "AI PMのキャリアパスは？", "データサイエンティストになるには何を勉強すればいい？",
     "プロダクトマネージャーの面接ではどんな質問が出る？", "What does a data scientist do?"],
)
def test_a_grounded_answer_quoting_its_sources_passes_every_rule(advisor: Advisor, question: str) -> None:
    """No false alarms: the extractive answer's body (sentences, rows and items quoted from the sources, cited)
    as if a model had written it, checked against the very prompt it would have answered. top_k 8: a how-to-start
    answer quotes every step of the article's learning path, and each step is a section of its own."""
    from bot.answer import AnswerRequest
    from bot.answer.llm import build_prompt

    retrieval = advisor.retriever.search(question, top_k=8)
    request = AnswerRequest(question=question, retrieval=retrieval, knowledge=advisor.knowledge,
                            aspects=advisor.retriever.aspects, careers=advisor.careers)
    prompt = build_prompt(advisor.prompts, request)
    body = advisor.backend("extractive").answer(request).body
    checked = verify(body, prompt.sources, base_url=BASE, prompt=prompt)
    assert checked.rejected is None, (checked.rejected, body)
    assert checked.citations and checked.invalid == 0
