"""``openai``: grounded answers from any OpenAI-compatible Chat Completions endpoint.

OpenAI itself, Azure OpenAI (its ``/openai/v1`` endpoint), vLLM, Ollama, the
llama.cpp server and LM Studio all speak this API; point ``OPENAI_BASE_URL`` at
one. Local servers need no key: with a base URL set, an empty ``OPENAI_API_KEY``
is allowed and a placeholder is sent. The SDK's own retries are off
(``max_retries=0``): `GroundedLLMBackend` retries, so it can bound
``Retry-After``. The reply length is sent as ``max_tokens``, which every
compatible server understands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .llm import Completion, Failure, GroundedLLMBackend, LLMOptions, Message, OnDelta, status_failure

if TYPE_CHECKING:
    from ..prompts import PromptLibrary
    from ..settings import Settings

try:
    import openai
except ImportError:  # pragma: no cover - the optional extra is missing
    openai = None  # type: ignore[assignment]

__all__ = ["OpenAIBackend", "NO_KEY"]

#: Sent as the key to servers that need none (llama.cpp, Ollama, vLLM without --api-key).
NO_KEY = "sk-no-key-required"


class OpenAIBackend(GroundedLLMBackend):
    """``openai``: Chat Completions (JSON, or SSE when streaming), verified and with extractive fallback."""

    name = "openai"

    def __init__(
        self,
        *,
        prompts: PromptLibrary,
        options: LLMOptions,
        api_key: str | None,
        base_url: str | None,
        article_base_url: str,
        min_confidence: float,
    ) -> None:
        if openai is None:
            raise ConfigError("CAREERBOT_BACKEND: the openai backend needs the openai package: pip install 'careerbot[llm]'")
        if not api_key and not base_url:
            raise ConfigError(
                "OPENAI_API_KEY: the openai backend needs an API key "
                "(or OPENAI_BASE_URL pointing at a local server that needs none)"
            )
        super().__init__(prompts=prompts, options=options, article_base_url=article_base_url, min_confidence=min_confidence)
        self.base_url = base_url
        self.client = openai.OpenAI(
            api_key=api_key or NO_KEY, base_url=base_url, timeout=options.timeout, max_retries=0
        )

    @classmethod
    def from_settings(cls, settings: Settings, prompts: PromptLibrary) -> OpenAIBackend:
        """The backend as ``CAREERBOT_BACKEND=openai`` configures it."""
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return cls(
            prompts=prompts,
            options=LLMOptions.from_settings(settings),
            api_key=key,
            base_url=settings.openai_base_url,
            article_base_url=settings.article_base_url,
            min_confidence=settings.min_confidence,
        )

    @staticmethod
    def _messages(system: str | None, messages: list[Message]) -> list[Message]:
        return ([{"role": "system", "content": system}] if system else []) + messages

    def _complete(self, *, system: str | None, messages: list[Message], max_tokens: int) -> Completion:
        response = self.client.chat.completions.create(
            model=self.options.model,
            messages=self._messages(system, messages),  # type: ignore[arg-type]
            temperature=self.options.temperature,
            max_tokens=max_tokens,
        )
        text = (response.choices[0].message.content or "") if response.choices else ""
        usage = response.usage
        return Completion(
            text=text,
            input_tokens=(usage.prompt_tokens or 0) if usage else 0,
            output_tokens=(usage.completion_tokens or 0) if usage else 0,
        )

    def _stream(self, *, system: str | None, messages: list[Message], max_tokens: int, on_text: OnDelta) -> Completion:
        parts: list[str] = []
        input_tokens = output_tokens = 0
        with self.client.chat.completions.create(
            model=self.options.model,
            messages=self._messages(system, messages),  # type: ignore[arg-type]
            temperature=self.options.temperature,
            max_tokens=max_tokens,
            stream=True,
            stream_options={"include_usage": True},
        ) as chunks:
            for chunk in chunks:
                if chunk.usage:
                    input_tokens = chunk.usage.prompt_tokens or 0
                    output_tokens = chunk.usage.completion_tokens or 0
                for choice in chunk.choices:
                    if choice.index == 0 and choice.delta and choice.delta.content:
                        parts.append(choice.delta.content)
                        on_text(choice.delta.content)
        return Completion(text="".join(parts), input_tokens=input_tokens, output_tokens=output_tokens)

    def _failure(self, exc: Exception) -> Failure | None:
        if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError, its base class
            return Failure("timeout", detail=str(exc))
        if isinstance(exc, openai.APIConnectionError):
            return Failure("connection", detail=str(exc))
        if isinstance(exc, openai.APIStatusError):
            return status_failure(exc.status_code, exc.response.headers, str(exc))
        if isinstance(exc, openai.OpenAIError):
            return Failure("error", detail=str(exc))
        return None
