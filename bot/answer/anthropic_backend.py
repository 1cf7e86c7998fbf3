"""``anthropic``: grounded answers from the Anthropic Messages API.

The key and base URL come from ``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL``
(a base URL without a key is allowed, for a gateway that adds its own). The
SDK's own retries are off (``max_retries=0``): `GroundedLLMBackend` retries, so
it can bound ``Retry-After``. The Messages API of this SDK generation takes no
temperature, so ``CAREERBOT_LLM_TEMPERATURE`` applies to ``openai`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .llm import Completion, Failure, GroundedLLMBackend, LLMOptions, Message, OnDelta, status_failure

if TYPE_CHECKING:
    from ..prompts import PromptLibrary
    from ..settings import Settings

try:
    import anthropic
except ImportError:  # pragma: no cover - the optional extra is missing
    anthropic = None  # type: ignore[assignment]

__all__ = ["AnthropicBackend"]

_NO_KEY = "no-key-required"


class AnthropicBackend(GroundedLLMBackend):
    """``anthropic``: Messages API (JSON, or ``messages.stream`` events), verified and with extractive fallback."""

    name = "anthropic"

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
        if anthropic is None:
            raise ConfigError(
                "CAREERBOT_BACKEND: the anthropic backend needs the anthropic package: pip install 'careerbot[llm]'"
            )
        if not api_key and not base_url:
            raise ConfigError(
                "ANTHROPIC_API_KEY: the anthropic backend needs an API key (or ANTHROPIC_BASE_URL for a gateway that needs none)"
            )
        super().__init__(prompts=prompts, options=options, article_base_url=article_base_url, min_confidence=min_confidence)
        self.base_url = base_url
        self.client = anthropic.Anthropic(
            api_key=api_key or _NO_KEY, base_url=base_url, timeout=options.timeout, max_retries=0
        )

    @classmethod
    def from_settings(cls, settings: Settings, prompts: PromptLibrary) -> AnthropicBackend:
        """The backend as ``CAREERBOT_BACKEND=anthropic`` configures it."""
        key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
        return cls(
            prompts=prompts,
            options=LLMOptions.from_settings(settings),
            api_key=key,
            base_url=settings.anthropic_base_url,
            article_base_url=settings.article_base_url,
            min_confidence=settings.min_confidence,
        )

    def _complete(self, *, system: str | None, messages: list[Message], max_tokens: int) -> Completion:
        kwargs = {"system": system} if system else {}
        message = self.client.messages.create(
            model=self.options.model,
            max_tokens=max_tokens,
            messages=messages,  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        )
        text = "".join(block.text for block in message.content if block.type == "text")
        return Completion(text=text, input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens,
                          truncated=message.stop_reason == "max_tokens")

    def _stream(self, *, system: str | None, messages: list[Message], max_tokens: int, on_text: OnDelta) -> Completion:
        kwargs = {"system": system} if system else {}
        parts: list[str] = []
        with self.client.messages.stream(
            model=self.options.model,
            max_tokens=max_tokens,
            messages=messages,  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        ) as events:
            for text in events.text_stream:
                parts.append(text)
                on_text(text)
            message = events.get_final_message()
        return Completion(
            text="".join(parts), input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens,
            truncated=message.stop_reason == "max_tokens",
        )

    def _failure(self, exc: Exception) -> Failure | None:
        if isinstance(exc, anthropic.APITimeoutError):  # before APIConnectionError, its base class
            return Failure("timeout", detail=str(exc))
        if isinstance(exc, anthropic.APIConnectionError):
            return Failure("connection", detail=str(exc))
        if isinstance(exc, anthropic.APIStatusError):
            return status_failure(exc.status_code, exc.response.headers, str(exc))
        if isinstance(exc, anthropic.AnthropicError):
            return Failure("error", detail=str(exc))
        return None
