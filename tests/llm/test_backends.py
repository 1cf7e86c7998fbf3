"""The openai and anthropic backends against their fake servers: answers, verification, failures, streaming.

Every test runs once per backend (the ``provider`` fixture), through the
official SDK, over loopback HTTP, with requests built by the real retriever.
"""

from __future__ import annotations

import re
import time

import pytest

from bot.answer import StreamingBackend
from bot.answer.llm import build_sources

from .conftest import API_KEY, MODEL, Provider
from .fake_llm import Status, Text, closed_port

SALARY = "AI PMの年収は？"
OFF_TOPIC = "今日の東京の天気は？"


def markers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


def body_of(text: str) -> str:
    """The answer text above the sources list."""
    return re.split(r"\n\n\*\*(?:出典|Sources)\*\*\n", text)[0]


def fenced(text: str, tag: str) -> list[str]:
    """The contents of every ``<tag-boundary>…</tag-boundary>`` block."""
    return [m.group(2) for m in re.finditer(rf"<{tag}-([0-9a-f]+)>\n(.*?)\n</{tag}-\1>", text, re.S)]


def test_a_grounded_answer_is_renumbered_cited_and_metered(provider: Provider) -> None:
    request = provider.request(SALARY)
    sources = build_sources(request)
    assert len(sources) >= 2
    provider.server.add(
        Text.of(
            "AI PMの年収は経験年数で大きく変わります [2]。\n\n"
            "- ジュニア (0-3年): 500〜850万円 [1]\n"
            "- シニア: 1,400〜2,500万円以上 [1][2]"
        )
    )
    answer = provider.backend().answer(request)

    assert answer.backend == provider.name and answer.confident and not answer.abstained
    # Renumbered by first use: the model's [2] is the answer's [1].
    assert [c.section_id for c in answer.citations] == [sources[1].section.id, sources[0].section.id]
    assert [c.n for c in answer.citations] == [1, 2]
    assert body_of(answer.text) == (
        "AI PMの年収は経験年数で大きく変わります [1]。\n\n"
        "- ジュニア (0-3年): 500〜850万円 [2]\n"
        "- シニア: 1,400〜2,500万円以上 [2][1]"
    )
    first = answer.citations[0]
    assert first.url.startswith(provider.advisor.settings.article_base_url + sources[1].section.slug + "#")
    assert first.title == sources[1].section.breadcrumb[0] and first.score == sources[1].score
    assert "**出典**" in answer.text and f"[1] {first.title} › {first.breadcrumb}" in answer.text
    assert answer.usage == {
        "model": MODEL, "calls": 1, "retries": 0, "input_tokens": 321, "output_tokens": 45,
        "llm_ms": answer.usage["llm_ms"], "call_ms": answer.usage["call_ms"],
        "invalid_citations": 0, "uncited_dropped": 0, "fallback": None, "truncated": False, "dropped_sources": 0,
    }
    assert answer.usage["llm_ms"] > 0 and len(answer.usage["call_ms"]) == 1
    assert answer.timings_ms["llm"] == answer.usage["llm_ms"]

    # What was sent: the rules, the numbered and fenced sources, the question as data, the settings.
    (sent,) = provider.server.requests
    system, user = provider.server.system_text(sent), provider.server.user_text(sent)
    assert "出典" in system and f"[1]〜[{len(sources)}]" in system and "データ" in system
    blocks = re.findall(r'<source-([0-9a-f]+) n="(\d+)">\n(.*?)\n</source-\1>', user, re.S)
    assert [int(n) for _, n, _ in blocks] == [s.n for s in sources]
    for s, (_, _, block) in zip(sources, blocks, strict=True):
        assert block.startswith(f"[{s.n}] {s.title} › {s.breadcrumb}\n")
        assert s.text in block
    assert fenced(user, "question") == [SALARY]
    assert sent.body["model"] == MODEL and sent.body["max_tokens"] == 800
    assert API_KEY in (sent.headers.get("authorization", "") + sent.headers.get("x-api-key", ""))
    if provider.name == "openai":
        assert sent.body["messages"][0]["role"] == "system" and sent.body["temperature"] == 0.2
    else:
        assert sent.body["system"] == system and all(m["role"] == "user" for m in sent.body["messages"])


def test_an_english_question_gets_english_prompts_and_labels(provider: Provider) -> None:
    request = provider.request("What is the salary of an AI product manager?")
    assert request.retrieval.language == "en"
    provider.server.add(Text.of("A junior AI PM earns 5 to 8.5 million yen [1]."))
    answer = provider.backend().answer(request)
    assert answer.backend == provider.name and "**Sources**" in answer.text
    system = provider.server.system_text(provider.server.requests[0])
    assert system.startswith("You are careerbot") and "untrusted data" in system


def test_a_made_up_citation_is_stripped_and_counted(provider: Provider) -> None:
    request = provider.request(SALARY, top_k=3)
    assert len(build_sources(request)) <= 3
    provider.server.add(Text.of("ジュニアの年収は500〜850万円です [1]。シニアは1億円です [7]。"))
    answer = provider.backend().answer(request)
    assert answer.backend == provider.name
    assert answer.usage["invalid_citations"] == 1
    assert markers(body_of(answer.text)) == [1] and "[7]" not in answer.text
    assert [c.n for c in answer.citations] == [1]


def test_an_answer_without_citations_falls_back_to_extractive(provider: Provider) -> None:
    request = provider.request(SALARY)
    provider.server.add(Text.of("AI PMの年収は高いです。"))
    backend = provider.backend()
    answer = backend.answer(request)
    assert answer.backend == f"{provider.name}→extractive"
    assert answer.usage["fallback"] == "no_valid_citation" and answer.usage["calls"] == 1
    assert answer.text == backend.extractive.answer(request).text  # no note: the service worked
    assert answer.citations and not answer.abstained


def test_a_figure_without_a_citation_is_dropped(provider: Provider) -> None:
    provider.server.add(Text.of("AI PMの年収は最高で5億円です。\n\n- ジュニアは500〜850万円です [1]"))
    answer = provider.backend().answer(provider.request(SALARY))
    assert answer.backend == provider.name and answer.usage["uncited_dropped"] == 1
    assert "5億円" not in answer.text and body_of(answer.text) == "- ジュニアは500〜850万円です [1]"


def test_a_429_is_retried_after_retry_after(provider: Provider) -> None:
    provider.server.add(Status(429, {"Retry-After": "1"}), Text.of("ジュニアは500〜850万円です [1]。"))
    start = time.monotonic()
    answer = provider.backend().answer(provider.request(SALARY))
    assert answer.backend == provider.name and answer.usage["fallback"] is None
    assert answer.usage["calls"] == 2 and answer.usage["retries"] == 1 and len(answer.usage["call_ms"]) == 2
    first, second = provider.server.requests
    assert second.at - first.at >= 0.95 and time.monotonic() - start < 4
    assert answer.usage["llm_ms"] >= 950


def test_a_retry_after_beyond_the_limit_falls_back_at_once(provider: Provider) -> None:
    provider.server.add(Status(429, {"Retry-After": "120"}), Text.of("never sent [1]"))
    start = time.monotonic()
    answer = provider.backend(llm_max_retry_after=10).answer(provider.request(SALARY))
    assert time.monotonic() - start < 3 and len(provider.server.requests) == 1
    assert answer.backend == f"{provider.name}→extractive" and answer.usage["fallback"] == "rate_limited"
    assert answer.text.startswith("_（AIサービスが混み合っている")


def test_server_errors_are_retried_then_fall_back_with_a_note(provider: Provider) -> None:
    provider.server.add(Status(500), Status(503))
    request = provider.request(SALARY)
    backend = provider.backend(llm_max_retries=1)
    answer = backend.answer(request)
    assert len(provider.server.requests) == 2  # one retry, then no more
    assert answer.backend == f"{provider.name}→extractive" and answer.usage["fallback"] == "server_error"
    note = provider.advisor.prompts.render("llm_fallback_note.md", language="ja", reason="server_error")
    assert answer.text == note + "\n\n" + backend.extractive.answer(request).text
    assert answer.citations and answer.usage["calls"] == 2


def test_a_timeout_falls_back_without_retrying(provider: Provider) -> None:
    provider.server.add(Text.of("遅すぎる回答 [1]", delay=2.0))
    start = time.monotonic()
    answer = provider.backend(llm_timeout=0.5).answer(provider.request(SALARY))
    assert time.monotonic() - start < 1.8 and len(provider.server.requests) == 1
    assert answer.backend == f"{provider.name}→extractive" and answer.usage["fallback"] == "timeout"
    assert answer.text.startswith("_（AIの応答が時間内に届かなかった") and answer.citations


def test_a_refused_connection_falls_back(provider: Provider) -> None:
    url = f"http://127.0.0.1:{closed_port()}" + ("/v1" if provider.name == "openai" else "")
    answer = provider.backend(openai_base_url=url, anthropic_base_url=url).answer(provider.request(SALARY))
    assert answer.backend == f"{provider.name}→extractive" and answer.usage["fallback"] == "connection"
    assert answer.text.startswith("_（AIサービスに接続できなかった") and answer.citations


def test_a_question_below_the_bar_abstains_without_calling_the_model(provider: Provider) -> None:
    request = provider.request(OFF_TOPIC)
    assert request.retrieval.confidence < provider.advisor.settings.min_confidence
    backend = provider.backend()
    deltas: list[str] = []
    for answer in (backend.answer(request), backend.stream(request, deltas.append)):
        assert answer.abstained and not answer.citations
        assert answer.backend == f"{provider.name}→extractive" and answer.usage["fallback"] == "low_confidence"
        assert answer.usage["calls"] == 0
    assert provider.server.requests == [] and deltas == []


def test_streaming_delivers_renumbered_deltas_in_order_then_the_verified_answer(provider: Provider) -> None:
    pieces = ("AI PMの", "年収は", "経験で変わります [", "2", "]。\n\n- ジュニア: 500〜850万円 [", "9][1",
              "]\n- シニア: 1,400万円以上 [1]")
    provider.server.add(Text(pieces, input_tokens=1000, output_tokens=60, gap=0.05))
    backend = provider.backend()
    assert isinstance(backend, StreamingBackend)
    received: list[tuple[str, float]] = []
    answer = backend.stream(provider.request(SALARY), lambda d: received.append((d, time.monotonic())))

    draft = "".join(d for d, _ in received)
    assert draft == "AI PMの年収は経験で変わります [1]。\n\n- ジュニア: 500〜850万円 [2]\n- シニア: 1,400万円以上 [2]"
    # Only verified lines are shown, each once it is complete (the last when the reply ends).
    assert [d for d, _ in received] == [
        "AI PMの年収は経験で変わります [1]。", "\n\n- ジュニア: 500〜850万円 [2]", "\n- シニア: 1,400万円以上 [2]"
    ]
    # Incremental: the first delta arrived before the server had sent the last piece.
    assert received[0][1] < provider.server.sent_pieces[-1][1]
    assert [p for p, _ in provider.server.sent_pieces] == list(pieces)
    # The final answer: verified like `answer`, its body the draft.
    assert answer.backend == provider.name and body_of(answer.text) == draft
    assert answer.usage["invalid_citations"] == 1 and [c.n for c in answer.citations] == [1, 2]
    assert answer.usage["input_tokens"] == 1000 and answer.usage["output_tokens"] == 60
    sent = provider.server.requests[0].body
    assert sent["stream"] is True
    if provider.name == "openai":
        assert sent["stream_options"] == {"include_usage": True}


def test_streaming_a_reply_without_citations_ends_in_the_extractive_answer(provider: Provider) -> None:
    provider.server.add(Text.of("年収は1億円です。出典は不要です。", gap=0.01))
    request = provider.request(SALARY)
    backend = provider.backend()
    deltas: list[str] = []
    answer = backend.stream(request, deltas.append)
    assert deltas == []  # nothing unverified is ever shown: the status stays until the final answer
    assert answer.backend == f"{provider.name}→extractive" and answer.usage["fallback"] == "no_valid_citation"
    assert answer.text == backend.extractive.answer(request).text and "1億円" not in answer.text


def test_streaming_failures_fall_back_with_a_note_and_no_deltas(provider: Provider) -> None:
    provider.server.add(Status(500), Text.of("回答 [1]"))
    deltas: list[str] = []
    answer = provider.backend(llm_max_retries=0).stream(provider.request(SALARY), deltas.append)
    assert deltas == [] and len(provider.server.requests) == 1
    assert answer.backend == f"{provider.name}→extractive" and answer.usage["fallback"] == "server_error"
    assert answer.text.startswith("_（AIサービスでエラーが起きた")


def test_a_stream_that_stalls_mid_way_falls_back_without_a_second_call(provider: Provider) -> None:
    provider.server.add(Text(("ジュニアの年収は", "500〜850万円です [1]。"), stall=(0, 2.0)), Text.of("二度目 [1]"))
    deltas: list[str] = []
    start = time.monotonic()
    answer = provider.backend(llm_timeout=0.5).stream(provider.request(SALARY), deltas.append)
    assert deltas == []  # no complete verified line arrived before the stall
    assert time.monotonic() - start < 1.8 and len(provider.server.requests) == 1  # not retried: text was shown
    assert answer.backend == f"{provider.name}→extractive" and answer.usage["fallback"] == "timeout"
    assert answer.text.startswith("_（AIの応答が時間内に届かなかった")


def test_streaming_survives_a_failing_display(provider: Provider) -> None:
    provider.server.add(Text.of("ジュニアは500〜850万円です [1]。", size=3))
    calls: list[str] = []

    def broken(delta: str) -> None:
        calls.append(delta)
        raise RuntimeError("chat.appendStream failed")

    answer = provider.backend().stream(provider.request(SALARY), broken)
    assert len(calls) == 1 and answer.backend == provider.name and markers(body_of(answer.text)) == [1]


def test_streaming_retries_a_429_before_any_text(provider: Provider) -> None:
    provider.server.add(Status(429, {"Retry-After": "0.2"}), Text.of("ジュニアは500〜850万円です [1]。"))
    deltas: list[str] = []
    answer = provider.backend().stream(provider.request(SALARY), deltas.append)
    assert answer.backend == provider.name and answer.usage["retries"] == 1
    assert "".join(deltas) == "ジュニアは500〜850万円です [1]。"


@pytest.mark.parametrize("history", [("AI PMになるには？",)])
def test_a_follow_up_is_rewritten_into_a_standalone_question(provider: Provider, history: tuple[str, ...]) -> None:
    provider.server.add(Text.of("「AI PMになるために必要なスキルは？」\n"))
    backend = provider.backend()
    assert backend.rewrite_question("そのために必要なスキルは？", history, language="ja") == "AI PMになるために必要なスキルは？"
    (sent,) = provider.server.requests
    user = provider.server.user_text(sent)
    assert fenced(user, "question") == ["そのために必要なスキルは？"] and fenced(user, "history") == ["- AI PMになるには？"]
    assert "独立した1つの質問" in user and sent.body["max_tokens"] <= 200
    assert not provider.server.system_text(sent)

    provider.server.add(Status(500))  # a failure keeps the question as it was
    assert backend.rewrite_question("年収は？", history, language="ja") == "年収は？"
    assert backend.rewrite_question("年収は？", (), language="ja") == "年収は？"  # nothing to rewrite from: no call
    assert len(provider.server.requests) == 2 + provider.advisor.settings.llm_max_retries
