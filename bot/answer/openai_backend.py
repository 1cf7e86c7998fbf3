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

import logging
import threading
from typing import TYPE_CHECKING, Any

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

log = logging.getLogger(__name__)

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
        self._props_lock = threading.Lock()
        self._n_ctx: int | None = None  # 0: the server did not say
        self._can_tokenize: bool | None = None
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
            truncated=bool(response.choices) and response.choices[0].finish_reason == "length",
        )

    def _stream(self, *, system: str | None, messages: list[Message], max_tokens: int, on_text: OnDelta) -> Completion:
        parts: list[str] = []
        input_tokens = output_tokens = 0
        finish: str | None = None
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
                    if choice.index == 0 and choice.finish_reason:
                        finish = choice.finish_reason
                    if choice.index == 0 and choice.delta and choice.delta.content:
                        parts.append(choice.delta.content)
                        on_text(choice.delta.content)
        return Completion(text="".join(parts), input_tokens=input_tokens, output_tokens=output_tokens,
                          truncated=finish == "length")

    # llama.cpp's own endpoints, beside its /v1: the context window (/props) and exact token counts (/tokenize).
    def _server_origin(self) -> str | None:
        if not self.base_url:
            return None
        origin = self.base_url.rstrip("/")
        return origin[: -len("/v1")] if origin.endswith("/v1") else origin

    def _server_json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """``path`` on the server's origin as JSON, or None when it is not there (not llama.cpp, an error)."""
        origin = self._server_origin()
        if origin is None:
            return None
        try:
            response = self.client._client.request(  # the SDK's own HTTP client: same proxy, TLS and key
                method, origin + path, json=body, timeout=min(self.options.timeout, 10.0),
                headers={"Authorization": f"Bearer {self.client.api_key}"},
            )
            if response.status_code != 200:
                return None
            data = response.json()
            return data if isinstance(data, dict) else None
        except Exception:  # noqa: BLE001 - an optional extra: no answer means "unknown"
            return None

    def _context_window(self) -> int | None:
        """``CAREERBOT_LLM_CONTEXT_TOKENS``, else llama.cpp's ``n_ctx`` (its ``/props``, asked once), else None."""
        if self.options.context_tokens:
            return self.options.context_tokens
        with self._props_lock:
            if self._n_ctx is None:
                props = self._server_json("GET", "/props") or {}
                settings = props.get("default_generation_settings") or {}
                n_ctx = settings.get("n_ctx") or props.get("n_ctx") or 0
                self._n_ctx = int(n_ctx) if isinstance(n_ctx, (int, float)) else 0
                if self._n_ctx:
                    log.info("the server reports a context of %d tokens", self._n_ctx)
            return self._n_ctx or None

    def _count_tokens(self, text: str) -> int:
        """llama.cpp's exact count (``/tokenize``) when the server has one, else the base class's over-estimate."""
        if self._can_tokenize is not False:
            data = self._server_json("POST", "/tokenize", {"content": text})
            tokens = data.get("tokens") if data else None
            if isinstance(tokens, list):
                self._can_tokenize = True
                return len(tokens)
            self._can_tokenize = False
        return super()._count_tokens(text)

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
