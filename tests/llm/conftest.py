"""Fixtures for the LLM backends: fake OpenAI and Anthropic servers on 127.0.0.1, driven through the real SDKs.

``provider`` runs a test once per backend. It hands out the fake server (its
script emptied and its log cleared) and builds the real backend, from real
settings, pointed at that server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.answer import AnswerRequest, make_backend
from bot.answer.llm import GroundedLLMBackend
from bot.pipeline import Advisor
from bot.settings import Settings
from tests.conftest import make_settings

from .fake_llm import FakeAnthropic, FakeLLMServer, FakeOpenAI

MODEL = "fake-model-1"
API_KEY = "test-key-123"


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def llm_overrides(openai_server: FakeOpenAI, anthropic_server: FakeAnthropic) -> dict[str, Any]:
    """Settings pointing both backends at the fakes; short timeouts so failure tests stay quick."""
    return {
        "llm_model": MODEL,
        "llm_timeout": 5.0,
        "openai_base_url": openai_server.base_url,
        "openai_api_key": API_KEY,
        "anthropic_base_url": anthropic_server.base_url,
        "anthropic_api_key": API_KEY,
    }


@dataclass
class Provider:
    """One backend under test and its fake server."""

    name: str
    server: FakeLLMServer
    data_dir: Path
    advisor: Advisor
    base: dict[str, Any]

    def settings(self, **overrides: Any) -> Settings:
        return make_settings(self.data_dir, **{**self.base, **overrides})

    def backend(self, **overrides: Any) -> GroundedLLMBackend:
        backend = make_backend(self.name, self.settings(**overrides), self.advisor.prompts)
        assert isinstance(backend, GroundedLLMBackend)
        return backend

    def request(self, question: str, *, history: tuple[str, ...] = (), top_k: int = 5) -> AnswerRequest:
        retrieval = self.advisor.retriever.search(question, history=list(history), top_k=top_k)
        return AnswerRequest(question=question, retrieval=retrieval, knowledge=self.advisor.knowledge, history=history,
                             aspects=self.advisor.retriever.aspects, careers=self.advisor.careers)


@pytest.fixture(params=["openai", "anthropic"])
def provider(
    request: pytest.FixtureRequest, advisor: Advisor, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> Iterator[Provider]:
    server: FakeLLMServer = fake_openai if request.param == "openai" else fake_anthropic
    server.reset()
    yield Provider(request.param, server, tmp_path, advisor, llm_overrides(fake_openai, fake_anthropic))
    server.reset()
