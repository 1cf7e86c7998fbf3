"""Usage everywhere (``careerbot ask --json``, the eval's per-run sums) and fitting the prompt to the model's context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.answer import USAGE_DEFAULTS
from bot.answer.llm import MIN_ANSWER_TOKENS, TEMPLATE_TOKENS, build_prompt
from bot.eval.runner import _flatten_usage
from tests.core.test_cli import run

from .conftest import Provider
from .fake_llm import FakeOpenAI, Text

SALARY = "AI PMの年収は？"
REPLY = "AI PMの年収は経験で変わります [1]。\n\n- ジュニア: 500〜850万円 [1]"


@pytest.mark.slow
def test_ask_json_shows_the_backend_and_its_usage(fake_openai: FakeOpenAI, shared_data_dir: Path) -> None:
    """The installed command against a fake OpenAI server: a served answer, then one cut at max_tokens."""
    fake_openai.reset()
    fake_openai.add(
        Text.of(REPLY, input_tokens=1200, output_tokens=30),
        Text.of("AI PMの年収は経験で変わります [1]。ジュニアは500〜850万円 [", output_tokens=200, finish="length"),
    )
    env = {"CAREERBOT_KNOWLEDGE_DIR": str(Path(__file__).parents[2] / "knowledge"), "CAREERBOT_DATA_DIR": str(shared_data_dir),
           "CAREERBOT_LLM_MODEL": "fake-model-1", "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "k"}
    result = run(["ask", "--json", "--backend", "openai"], env, stdin=f"{SALARY}\n{SALARY} 教えて\n")
    assert result.returncode == 0, result.stderr
    served, cut = (json.loads(line) for line in result.stdout.splitlines())
    assert served["backend"] == "openai" and set(USAGE_DEFAULTS) <= set(served["usage"])
    usage = served["usage"]
    assert (usage["calls"], usage["input_tokens"], usage["output_tokens"]) == (1, 1200, 30)
    assert usage["fallback"] is None and usage["truncated"] is False and usage["llm_ms"] > 0
    # Cut at max_tokens: trimmed to the last complete sentence, the half marker gone, recorded.
    assert cut["backend"] == "openai" and cut["usage"]["truncated"] is True
    assert cut["answer"].startswith("AI PMの年収は経験で変わります [1]。\n") and "ジュニアは500" not in cut["answer"]
    fake_openai.reset()


def test_an_extractive_answer_reports_zero_usage(provider: Provider) -> None:
    data = provider.advisor.ask(SALARY, backend="extractive").to_json()
    assert data["backend"] == "extractive" and data["usage"] == USAGE_DEFAULTS


def test_the_eval_sums_usage_per_run() -> None:
    rows = [
        {"calls": 2, "input_tokens": 900, "output_tokens": 40, "fallback": None, "truncated": True,
         "invalid_citations": 1, "uncited_dropped": 0, "rewrite": {"used": False, "reason": "bare_word", "calls": 1}},
        {"calls": 1, "input_tokens": 800, "output_tokens": 0, "fallback": "timeout", "truncated": False,
         "invalid_citations": 0, "uncited_dropped": 2},
        {"calls": 0, "fallback": "low_confidence"},
    ]
    total: dict[str, float] = {}
    for usage in rows:
        for k, v in _flatten_usage(usage).items():
            total[k] = total.get(k, 0) + v
    assert total["calls"] == 3 and total["input_tokens"] == 1700 and total["served"] == 1
    assert total["fallback.timeout"] == 1 and total["fallback.low_confidence"] == 1 and total["truncated"] == 1
    assert total["invalid_citations"] == 1 and total["uncited_dropped"] == 2
    assert total["rewrite.calls"] == 1 and total["rewrite.reason.bare_word"] == 1


def fitting_provider(provider: Provider) -> Provider:
    if provider.name != "openai":
        pytest.skip("context fitting is tested through the openai backend, the one that reaches llama.cpp's "
                    "/props and /tokenize; the anthropic backend shares its CAREERBOT_LLM_CONTEXT_TOKENS path")
    return provider


def test_the_prompt_is_fitted_to_the_context_the_server_reports(provider: Provider) -> None:
    """llama.cpp's /props says n_ctx; /tokenize counts: the lowest-ranked sources go until max_tokens fits."""
    fitting_provider(provider)
    request = provider.request(SALARY, top_k=5)
    full = build_prompt(provider.advisor.prompts, request)
    assert len(full.sources) >= 3
    two = build_prompt(provider.advisor.prompts, request, limit=2)
    tokens = len(two.system + "\n" + two.user) + TEMPLATE_TOKENS  # the fake tokenizer: a token per character
    provider.server.n_ctx = tokens + 200 + 10  # room for two sources and max_tokens 200, not for a third
    provider.server.add(Text.of(REPLY))
    answer = provider.backend(llm_max_tokens=200).answer(request)
    sent = provider.server.requests[0].body
    assert sent["max_tokens"] == 200
    assert "\n[2] " in provider.server.user_text(provider.server.requests[0])
    assert "\n[3] " not in provider.server.user_text(provider.server.requests[0])
    assert answer.usage["dropped_sources"] == len(full.sources) - 2 and answer.backend == "openai"
    assert "/props" in provider.server.side_requests and "/tokenize" in provider.server.side_requests


def test_the_context_setting_wins_and_a_prompt_too_big_for_it_falls_back(provider: Provider) -> None:
    fitting_provider(provider)
    request = provider.request(SALARY, top_k=5)
    one = build_prompt(provider.advisor.prompts, request, limit=1)
    need = len(one.system + "\n" + one.user) + TEMPLATE_TOKENS
    provider.server.n_ctx = 10**6  # the server's word is not asked for: the setting is
    # One source fits, with less room than max_tokens: the reply gets what is left.
    provider.server.add(Text.of(REPLY))
    answer = provider.backend(llm_context_tokens=need + 100, llm_max_tokens=800).answer(request)
    assert provider.server.requests[0].body["max_tokens"] == 100 and answer.usage["dropped_sources"] >= 1
    assert "/props" not in provider.server.side_requests
    # Not even one source leaves MIN_ANSWER_TOKENS: no call, the extractive answer, the reason recorded.
    provider.server.reset()
    provider.server.n_ctx = 1
    answer = provider.backend(llm_context_tokens=need + MIN_ANSWER_TOKENS - 1).answer(request)
    assert provider.server.requests == [] and answer.usage["fallback"] == "context_overflow"
    assert answer.backend == "openai→extractive" and answer.citations


def test_without_a_context_size_nothing_is_dropped(provider: Provider) -> None:
    provider.server.add(Text.of(REPLY))
    answer = provider.backend().answer(provider.request(SALARY, top_k=5))
    assert answer.usage["dropped_sources"] == 0 and answer.backend == provider.name
