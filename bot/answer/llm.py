"""Grounded LLM answers, shared by the ``openai`` and ``anthropic`` backends.

A provider backend subclasses `GroundedLLMBackend` and supplies three things:
one non-streaming call (`_complete`), one streaming call (`_stream`) and the
mapping of its SDK's exceptions to a `Failure` (`_failure`). Everything else —
the prompt, retries, verification and fallback — lives here, so both providers
behave identically.

What ``answer`` / ``stream`` do:

1. **Abstention.** Below the confidence bar (or with no hits) the extractive
   backend abstains; no LLM call is made.
2. **Sources.** The retrieved passages, grouped by section in rank order, become
   sources ``[1]..[k]`` (``title › breadcrumb`` then the text), fenced by tags
   carrying a random per-request boundary and labelled as untrusted data.
   Tag-like strings and ``[n]`` markers inside articles, the question and the
   history are neutralised, so no text can close a fence or pose as a citation.
3. **The call.** 429 and 5xx are retried up to ``max_retries`` times, honouring
   ``Retry-After`` up to ``max_retry_after`` seconds (a longer wait is not
   worth it: the extractive answer is immediate). Timeouts, refused connections
   and other API errors are not retried. Any failure → the extractive answer
   with a short note (``prompts/<lang>/llm_fallback_note.md.j2``).
4. **Verification.** Every ``[n]`` naming no source is removed and counted
   (``usage["invalid_citations"]``); a paragraph or list item that carries a
   figure but no valid citation is dropped (``usage["uncited_dropped"]``); a
   sources list the model wrote itself is removed. If no valid citation is left,
   the answer is extractive instead — never an ungrounded answer. Citations are
   renumbered 1..m in order of first use. What real small models do is caught too
   (`bot.answer.grounding`): a prompt echo, a loop or more invalid markers than
   valid ones (copied ``[n] title › section`` lines count as invalid) reject the
   reply; one cut at ``max_tokens`` is trimmed to its last complete sentence or line.
   The prompt is first fitted to the model's context (lowest-ranked sources dropped).
   Streaming passes on only verified lines (`_VerifiedStream`).

``Answer.backend`` names what actually answered (``openai`` or
``openai→extractive``) and ``Answer.usage`` holds, for every answer:
``model``, ``calls``, ``retries``, ``input_tokens``, ``output_tokens`` (0 when
the server reports none), ``llm_ms`` (wall time of the LLM phase, waits
included), ``call_ms`` (one latency per call), ``invalid_citations``,
``uncited_dropped``, ``truncated``, ``dropped_sources`` and ``fallback`` (None, or
why the answer is extractive: ``low_confidence``, ``no_valid_citation``,
``prompt_echo``, ``degenerate``, ``repetitive``, ``truncated``, ``context_overflow``,
``timeout``, ``rate_limited``, ``server_error``, ``connection``, ``http_<status>``,
``error``).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from ..careers import career_title
from ..errors import ConfigError
from ..text import strip_decorations
from . import Answer, AnswerRequest, Citation, Link, section_url
from .extractive import ExtractiveBackend
from .grounding import echo_reason, instruction_text, is_header_line, repetition, rewrite_problem, trim_truncated

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..knowledge import KnowledgeBase, Section
    from ..prompts import PromptLibrary
    from ..settings import Settings

__all__ = [
    "Completion",
    "Failure",
    "GroundedLLMBackend",
    "LLMOptions",
    "Message",
    "OnDelta",
    "Prompt",
    "Rewrite",
    "Source",
    "Verified",
    "build_prompt",
    "build_sources",
    "neutralise",
    "parse_retry_after",
    "rewrite_prompt",
    "status_failure",
    "verify",
]

log = logging.getLogger(__name__)

OnDelta = Callable[[str], None]
Message = dict[str, str]

#: ``[1]``, ``[1, 2]``, full-width ``［1］`` and ``【1】``; not a Markdown link ``[1](…)``.
_MARKER = re.compile(r"[\[［【]\s*(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\s*[\]］】](?!\()")
_NUMBER = re.compile(r"\d+")
#: Anything that could open or close one of our fences, or pose as a chat role.
_TAG_LIKE = re.compile(r"<(?=\s*/?\s*(?:sources?|question|history|system|user|assistant|instructions?)\b)", re.IGNORECASE)
_SOURCES_HEADING = re.compile(r"^\W*(?:出典|参考文献|参考|参照|ソース|sources?|references?)\W*$", re.IGNORECASE)
_SOURCE_LINE = re.compile(r"^\s*(?:[-*・]\s*)?[\[［【]\s*\d{1,3}\s*[\]］】][\s:：]+\S")
_FIGURE = re.compile(r"[0-9０-９]")
#: A list ordinal (「1. 統計学を学ぶ」, 「2) …」): numbering, not a figure.
_ORDINAL = re.compile(r"^\s*(?:[-*+・]\s*)?[0-9０-９]{1,2}[.)．）]\s+")
_TABLE_LINE = re.compile(r"^\s*\|")
_LIST_LINE = re.compile(r"^\s*(?:[-*+・]|\d+[.)])\s+|^\s*\|")
_HEADING_LINE = re.compile(r"^\s*#{1,6}\s")
#: A rewritten question longer than this is not a question.
MAX_REWRITE_CHARS = 500
REWRITE_MAX_TOKENS = 200
#: Tokens a chat template adds around the messages (role markers), counted on top of their text.
TEMPLATE_TOKENS = 64
#: Fewer tokens than this left for the reply is no answer worth waiting for: fall back (``context_overflow``).
MIN_ANSWER_TOKENS = 64


@dataclass(frozen=True, slots=True)
class LLMOptions:
    """How to call the model: the ``CAREERBOT_LLM_*`` settings."""

    model: str
    temperature: float = 0.2
    max_tokens: int = 800
    timeout: float = 30.0
    max_retries: int = 2
    max_retry_after: float = 10.0
    #: The model's context window in tokens; 0 = ask the server (llama.cpp's ``/props``), else do not fit.
    context_tokens: int = 0

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise ConfigError("CAREERBOT_LLM_MODEL: the LLM backends need a model name, e.g. CAREERBOT_LLM_MODEL=gpt-4o-mini")

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMOptions:
        return cls(
            model=settings.llm_model,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            max_retry_after=settings.llm_max_retry_after,
            context_tokens=settings.llm_context_tokens,
        )


@dataclass(frozen=True, slots=True)
class Source:
    """Source ``[n]``: one section, with its retrieved passages' text (neutralised)."""

    n: int
    section: Section
    title: str
    breadcrumb: str
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class Prompt:
    """What is sent: the system prompt, the user message, and the sources it numbers."""

    system: str
    user: str
    sources: tuple[Source, ...]
    boundary: str


@dataclass(frozen=True, slots=True)
class Completion:
    """One model reply and its token counts (0 when the server reports none)."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    #: The reply stopped at ``max_tokens`` (``finish_reason: length``, ``stop_reason: max_tokens``).
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a call failed: ``reason`` (a short code), whether a retry may help, and the server's ``Retry-After``."""

    reason: str
    retryable: bool = False
    retry_after: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Verified:
    """A reply checked against its sources: renumbered text, the citations it uses, what was removed.

    ``rejected`` is why the reply must not be served at all (``prompt_echo``, ``degenerate``, ``repetitive``,
    ``truncated``: nothing complete was left), or None; ``truncated`` says it was trimmed after a cut-off.
    """

    text: str
    citations: tuple[Citation, ...]
    invalid: int
    dropped: int
    rejected: str | None = None
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A follow-up's standalone version: ``question`` is what to search for (the original when not ``used``).

    ``reason`` says why the model's rewrite was not used (``prompt_echo``, ``not_a_question``, ``bare_word``,
    ``off_topic``, ``unchanged``, ``empty``, ``too_long``, or the call's failure), ``usage`` meters its call.
    """

    question: str
    used: bool
    reason: str | None
    proposed: str
    usage: dict[str, Any]


class _CallFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


@dataclass
class _Meter:
    """Usage of one answer's LLM phase."""

    model: str
    calls: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    call_ms: list[float] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None

    def usage(
        self, *, invalid: int = 0, dropped: int = 0, fallback: str | None = None, truncated: bool = False,
        dropped_sources: int = 0,
    ) -> dict[str, Any]:
        llm_ms = (self.ended - self.started) * 1000 if self.started is not None and self.ended is not None else 0.0
        return {
            "model": self.model,
            "calls": self.calls,
            "retries": self.retries,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "llm_ms": round(llm_ms, 2),
            "call_ms": [round(ms, 2) for ms in self.call_ms],
            "invalid_citations": invalid,
            "uncited_dropped": dropped,
            "fallback": fallback,
            "truncated": truncated,
            "dropped_sources": dropped_sources,
        }


# Sources and prompts -------------------------------------------------------------------------------


def neutralise(text: str) -> str:
    """Untrusted text made inert: tag-like ``<source``/``</question``… lose their ``<``, ``[n]`` becomes ``(n)``."""
    text = _TAG_LIKE.sub("‹", text)
    return _MARKER.sub(lambda m: "(" + m.group(1) + ")", text)


def build_sources(request: AnswerRequest) -> list[Source]:
    """The retrieved passages grouped by section, in rank order, numbered from 1."""
    by_section: dict[str, list[Any]] = {}
    for hit in request.retrieval.hits:
        by_section.setdefault(hit.passage.section.id, []).append(hit)
    sources = []
    for n, hits in enumerate(by_section.values(), start=1):
        section = hits[0].passage.section
        text = "\n\n".join(h.passage.text.strip() for h in sorted(hits, key=lambda h: h.passage.index))
        sources.append(
            Source(
                n=n,
                section=section,
                title=neutralise(section.breadcrumb[0]),
                breadcrumb=neutralise(" › ".join(strip_decorations(b) for b in section.breadcrumb[1:])),
                text=neutralise(text),
                score=max(h.score for h in hits),
            )
        )
    return sources


def build_prompt(
    prompts: PromptLibrary, request: AnswerRequest, *, boundary: str | None = None, limit: int | None = None
) -> Prompt:
    """The system prompt and the user message for ``request`` (``llm_system.j2``, ``llm_answer.j2``).

    ``limit`` keeps only the best-ranked that many sources (to fit the model's context).
    """
    boundary = boundary or secrets.token_hex(6)
    sources = build_sources(request)[:limit]
    language = request.retrieval.language
    system = prompts.render("llm_system", language=language, boundary=boundary, count=len(sources))
    user = prompts.render(
        "llm_answer",
        language=language,
        boundary=boundary,
        sources=sources,
        question=neutralise(request.question),
        history=[neutralise(h) for h in request.history],
    )
    return Prompt(system=system, user=user, sources=tuple(sources), boundary=boundary)


def rewrite_prompt(
    prompts: PromptLibrary, question: str, history: Sequence[str], *, language: str, boundary: str | None = None
) -> str:
    """The message asking a model to turn a thread follow-up into a standalone question (``llm_rewrite.j2``)."""
    return prompts.render(
        "llm_rewrite",
        language=language,
        boundary=boundary or secrets.token_hex(6),
        question=neutralise(question),
        history=[neutralise(h) for h in history],
    )


# Verification ---------------------------------------------------------------------------------------


class _Renumberer:
    """Rewrites ``[n]`` markers: valid ones renumbered by first use, others removed and counted."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.order: dict[int, int] = {}  # source n -> new number
        self.invalid = 0

    def __call__(self, text: str) -> str:
        return _MARKER.sub(self._marker, text)

    def _marker(self, m: re.Match[str]) -> str:
        out: list[int] = []
        for raw in _NUMBER.findall(m.group(1)):
            n = int(raw)
            if not 1 <= n <= self.count:
                self.invalid += 1
                continue
            new = self.order.setdefault(n, len(self.order) + 1)
            if new not in out:
                out.append(new)
        return "".join(f"[{k}]" for k in out)


def _strip_sources_list(text: str) -> str:
    """Remove a trailing sources list the model wrote despite the instructions (ours is appended).

    The list is trailing ``[n] …`` lines under a 出典/Sources heading, or such lines that carry a link or ``›``.
    """
    lines = text.rstrip().splitlines()
    end = len(lines)
    while end and (not lines[end - 1].strip() or _SOURCE_LINE.match(lines[end - 1])):
        end -= 1
    entries = [line for line in lines[end:] if line.strip()]
    if end and _SOURCES_HEADING.match(strip_decorations(lines[end - 1])):
        end -= 1
    elif not entries or not all("http" in line or "›" in line for line in entries):
        end = len(lines)
    return "\n".join(lines[:end])


def _units(text: str) -> list[list[str]]:
    """Lines grouped into units: each list item, table row and heading alone, paragraph lines together."""
    units: list[list[str]] = []
    paragraph: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            if paragraph:
                units.append(paragraph)
                paragraph = []
            units.append([line])
        elif _TABLE_LINE.match(line):
            if paragraph and not _TABLE_LINE.match(paragraph[0]):
                units.append(paragraph)
                paragraph = []
            paragraph.append(line)  # a table is one unit: one citation anywhere in it covers its rows
        elif _LIST_LINE.match(line) or _HEADING_LINE.match(line):
            if paragraph:
                units.append(paragraph)
                paragraph = []
            units.append([line])
        else:
            if paragraph and _TABLE_LINE.match(paragraph[0]):
                units.append(paragraph)
                paragraph = []
            paragraph.append(line)
    if paragraph:
        units.append(paragraph)
    return units


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+([。、．，.,!?！？)）])", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _headers(sources: Sequence[Source]) -> list[str]:
    """The header line of each source as the answer prompt shows it (``title › breadcrumb``)."""
    return [f"{s.title} › {s.breadcrumb}" if s.breadcrumb else s.title for s in sources]


def _valid_markers(text: str, count: int) -> int:
    return sum(1 for m in _MARKER.finditer(text) for n in _NUMBER.findall(m.group(1)) if 1 <= int(n) <= count)


def verify(
    text: str,
    sources: Sequence[Source],
    *,
    base_url: str,
    prompt: Prompt | None = None,
    truncated: bool = False,
) -> Verified:
    """Check a reply against the sources it was given (see the module docstring and `bot.answer.grounding`).

    With ``prompt``, a reply echoing it is rejected; with ``truncated`` (the reply hit ``max_tokens``), it is
    first trimmed to its last complete sentence or line. A reply whose invalid markers (made-up numbers, the
    markers of copied source-header lines) outnumber its valid ones, or that loops, is rejected as degenerate.
    """
    rejected: str | None = None
    if truncated:
        text = trim_truncated(text)
        if not text.strip():
            rejected = "truncated"  # not one complete sentence or line before the cut
    if prompt is not None and rejected is None:
        rejected = echo_reason(
            text,
            boundary=prompt.boundary,
            instructions=instruction_text(prompt),
            exclude=[*_headers(prompt.sources), neutralise_question(prompt)],
        )
    headers = _headers(sources)
    lines, header_markers = [], 0
    for line in _strip_sources_list(text).splitlines():
        if is_header_line(line, headers):
            header_markers += sum(len(_NUMBER.findall(m.group(1))) for m in _MARKER.finditer(line))
            continue  # a source's header copied from the prompt: not content, and its markers are not citations
        lines.append(line)
    body = "\n".join(lines)
    renumber = _Renumberer(len(sources))
    kept: list[str] = []
    dropped = valid = 0
    previous_cited = False  # the unit right above (no blank line between) cites a source
    for unit in _units(body):
        joined = "\n".join(unit)
        if not joined.strip() or _HEADING_LINE.match(joined):
            kept.append(joined)
            previous_cited = False
            continue
        n_valid = _valid_markers(joined, len(sources))
        introduced = previous_cited and bool(_TABLE_LINE.match(unit[0]))  # 「…は次の通りです [1]。」 then the table
        if not n_valid and not introduced and _FIGURE.search(
            _MARKER.sub("", "\n".join(_ORDINAL.sub("", line) for line in unit))
        ):
            renumber(joined)  # count its made-up markers, keep none of it
            dropped += 1
            previous_cited = False
            continue
        valid += n_valid
        previous_cited = n_valid > 0
        kept.append(renumber(joined))
    invalid = renumber.invalid + header_markers
    if rejected is None and invalid > valid > 0:  # none valid at all: "no_valid_citation"
        rejected = "degenerate"
    if rejected is None and repetition(body):
        rejected = "repetitive"
    by_n = {s.n: s for s in sources}
    citations = tuple(
        Citation(
            n=new,
            section_id=by_n[old].section.id,
            title=by_n[old].section.breadcrumb[0],
            breadcrumb=" › ".join(strip_decorations(b) for b in by_n[old].section.breadcrumb[1:]),
            url=section_url(base_url, by_n[old].section),
            score=by_n[old].score,
        )
        for old, new in sorted(renumber.order.items(), key=lambda kv: kv[1])
    )
    out = _tidy("\n".join(kept))
    return Verified(text=out, citations=citations, invalid=invalid, dropped=dropped, rejected=rejected,
                    truncated=truncated)


def neutralise_question(prompt: Prompt) -> str:
    """The question as the answer prompt carries it (between its fence tags), for echo checks to ignore."""
    m = re.search(rf"<question-{prompt.boundary}>\n?(.*?)\n?</question-{prompt.boundary}>", prompt.user, re.S)
    return m.group(1) if m else ""


class _VerifiedStream:
    """Streams only what verification keeps: at each completed line, the reply so far is verified, and what
    it adds to the verified text already shown is passed on (citations renumbered, made-up ones gone).

    Nothing is shown until the verified text cites a source; once the reply so far is rejected (an echo, a
    loop, more invalid markers than valid ones) or its verified text stops growing as a prefix, nothing more
    is shown — the final `Answer` replaces the draft either way, so a fallback never flashes unverified text.
    """

    def __init__(self, prompt: Prompt, base_url: str, on_delta: OnDelta) -> None:
        self._prompt = prompt
        self._base_url = base_url
        self._raw = ""
        self._checked = 0  # length of the raw prefix last verified
        self._sent = ""
        self._halted = False
        self._on_delta: OnDelta | None = on_delta
        self.emitted = False  # any model text arrived (a retry would show a second reply)

    def feed(self, piece: str) -> None:
        self.emitted = True
        self._raw += piece
        cut = self._raw.rfind("\n")
        if cut > self._checked and not self._halted:
            self._checked = cut
            self._show(self._raw[:cut])

    def close(self) -> None:
        """The reply is complete: its last line is shown if it passes (the final answer follows at once)."""
        if not self._halted and len(self._raw) > self._checked:
            self._checked = len(self._raw)
            self._show(self._raw)

    def _show(self, text: str) -> None:
        checked = verify(text, self._prompt.sources, base_url=self._base_url, prompt=self._prompt)
        if checked.rejected:
            self._halted = True
            return
        if not checked.citations:
            return  # nothing grounded yet: the status stays
        if not checked.text.startswith(self._sent):
            self._halted = True  # what is shown would change: leave it to the final answer
            return
        self._send(checked.text[len(self._sent) :])
        self._sent = checked.text

    def _send(self, text: str) -> None:
        if not text or self._on_delta is None:
            return
        try:
            self._on_delta(text)
        except Exception:  # the caller's display failed: stop showing the draft, still finish the answer
            log.warning("on_delta failed; no further deltas are delivered", exc_info=True)
            self._on_delta = None


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date); None if absent."""
    if not headers:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


# The backend ---------------------------------------------------------------------------------------


class GroundedLLMBackend(ABC):
    """Base of the LLM backends: answers only from the retrieved sources, verified, with extractive fallback.

    Contract (on top of `AnswerBackend`'s): ``answer`` and ``stream`` never raise
    for a provider failure — a timeout, 429, 5xx, refused connection or bad reply
    gives the extractive answer (with a note when the provider failed), named
    ``<name>→extractive`` in ``Answer.backend``. Subclasses implement `_complete`,
    `_stream` and `_failure`; they are called from many threads at once.
    """

    name: str = "llm"

    def __init__(
        self, *, prompts: PromptLibrary, options: LLMOptions, article_base_url: str, min_confidence: float
    ) -> None:
        self.prompts = prompts
        self.options = options
        self.article_base_url = article_base_url
        self.min_confidence = min_confidence
        self.extractive = ExtractiveBackend(prompts=prompts, base_url=article_base_url, min_confidence=min_confidence)

    # What a provider supplies.
    @abstractmethod
    def _complete(self, *, system: str | None, messages: list[Message], max_tokens: int) -> Completion:
        """One non-streaming call."""

    @abstractmethod
    def _stream(self, *, system: str | None, messages: list[Message], max_tokens: int, on_text: OnDelta) -> Completion:
        """One streaming call: ``on_text`` for every text delta, in order; the whole reply returned."""

    @abstractmethod
    def _failure(self, exc: Exception) -> Failure | None:
        """The SDK exception as a `Failure`, or None if it is not the SDK's.

        An HTTP transport error the SDK let through (``httpx2.ReadTimeout`` mid-stream) is then mapped here;
        anything else is a bug: logged with its traceback, then the extractive answer.
        """

    # The public surface.
    def answer(self, request: AnswerRequest) -> Answer:
        """A verified answer from the model, or the extractive one (see the module docstring)."""
        return self._answer(request, on_delta=None)

    def stream(self, request: AnswerRequest, on_delta: OnDelta) -> Answer:
        """Like `answer`, calling ``on_delta`` with the draft text as the model writes it (see `StreamingBackend`)."""
        return self._answer(request, on_delta=on_delta)

    def rewrite_question(self, question: str, history: Sequence[str], *, language: str) -> str:
        """``question`` (a thread follow-up) rewritten as a standalone question using ``history``.

        Returns ``question`` unchanged when there is no history, the model fails, or its rewrite is not a
        usable question (see `rewrite`).
        """
        return self.rewrite(question, history, language=language).question

    def rewrite(self, question: str, history: Sequence[str], *, language: str) -> Rewrite:
        """The follow-up ``question`` as a standalone question, used only when it earns its place.

        The model's rewrite is used when it is a question about the same conversation: not an echo of the
        prompt, not an answer, not a bare word (`bot.answer.grounding.rewrite_problem`). Otherwise the
        question stays as asked (the search then uses the history heuristically). The call is metered.
        """
        meter = _Meter(model=self.options.model)
        if not history:
            return Rewrite(question=question, used=False, reason="no_history", proposed="", usage=meter.usage())
        boundary = secrets.token_hex(6)
        message = rewrite_prompt(self.prompts, question, history, language=language, boundary=boundary)
        try:
            reply = self._call(meter, system=None, messages=[{"role": "user", "content": message}],
                               max_tokens=min(self.options.max_tokens, REWRITE_MAX_TOKENS), on_text=None)
        except _CallFailed as exc:
            log.warning("question rewrite failed (%s); keeping the question", exc.failure.reason)
            return Rewrite(question=question, used=False, reason=exc.failure.reason, proposed="",
                           usage=meter.usage(fallback=exc.failure.reason))
        lines = [line.strip() for line in reply.text.strip().splitlines() if line.strip()]
        proposed = lines[0].strip("「」『』\"'“” ") if lines else ""
        reason = "too_long" if len(proposed) > MAX_REWRITE_CHARS else rewrite_problem(
            proposed, question=question, history=history, prompt=message, boundary=boundary
        )
        if reason:
            log.info("question rewrite not used (%s)", reason)
        usage = meter.usage(fallback=reason, truncated=reply.truncated)
        return Rewrite(question=question if reason else proposed, used=reason is None, reason=reason,
                       proposed=proposed, usage=usage)

    # Fitting the context.
    def _context_window(self) -> int | None:
        """The model's context in tokens: ``CAREERBOT_LLM_CONTEXT_TOKENS``, else what the server reports, else None."""
        return self.options.context_tokens or None

    def _count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes: an over-estimate (UTF-8 bytes / 2) unless the provider can count exactly."""
        return len(text.encode("utf-8")) // 2 + 1

    def _fit(self, request: AnswerRequest) -> tuple[Prompt, int, int]:
        """The prompt and ``max_tokens`` that fit the model's context, and how many sources were dropped for it.

        The lowest-ranked sources go first until the prompt plus `TEMPLATE_TOKENS` plus ``max_tokens`` fit; with
        one source left, ``max_tokens`` shrinks to what remains. Raises `_CallFailed` (``context_overflow``) when
        fewer than `MIN_ANSWER_TOKENS` remain.
        """
        prompt = build_prompt(self.prompts, request)
        max_tokens = self.options.max_tokens
        window = self._context_window()
        if not window:
            return prompt, max_tokens, 0
        total = len(prompt.sources)
        while True:
            used = self._count_tokens(prompt.system + "\n" + prompt.user) + TEMPLATE_TOKENS
            if used + max_tokens <= window:
                return prompt, max_tokens, total - len(prompt.sources)
            if len(prompt.sources) <= 1:
                room = window - used
                if room < MIN_ANSWER_TOKENS:
                    raise _CallFailed(Failure("context_overflow", detail=f"{used} prompt tokens, context {window}"))
                return prompt, room, total - len(prompt.sources)
            prompt = build_prompt(self.prompts, request, boundary=prompt.boundary, limit=len(prompt.sources) - 1)

    # The flow.
    def _answer(self, request: AnswerRequest, *, on_delta: OnDelta | None) -> Answer:
        retrieval = request.retrieval
        meter = _Meter(model=self.options.model)
        if retrieval.confidence < self.min_confidence or not retrieval.hits:
            return self._fallback(request, meter, reason="low_confidence", note=False)
        try:
            prompt, max_tokens, dropped_sources = self._fit(request)
        except _CallFailed as exc:
            log.warning("%s: the prompt does not fit the model's context (%s)", self.name, exc.failure.detail)
            return self._fallback(request, meter, reason=exc.failure.reason, note=False)
        messages = [{"role": "user", "content": prompt.user}]
        deltas = _VerifiedStream(prompt, self.article_base_url, on_delta) if on_delta is not None else None
        try:
            reply = self._call(meter, system=prompt.system, messages=messages, max_tokens=max_tokens, on_text=deltas)
        except _CallFailed as exc:
            log.warning("%s call failed (%s: %s); answering extractively", self.name, exc.failure.reason, exc.failure.detail)
            return self._fallback(request, meter, reason=exc.failure.reason, note=True, dropped_sources=dropped_sources)
        if deltas is not None and not reply.truncated:
            deltas.close()
        checked = verify(reply.text, prompt.sources, base_url=self.article_base_url, prompt=prompt,
                         truncated=reply.truncated)
        reason = checked.rejected or (None if checked.citations and checked.text else "no_valid_citation")
        if reason:
            log.warning("%s reply not served (%s, %d invalid citations); answering extractively", self.name, reason,
                        checked.invalid)
            return self._fallback(request, meter, reason=reason, note=False, invalid=checked.invalid,
                                  dropped=checked.dropped, truncated=checked.truncated, dropped_sources=dropped_sources)
        related = _related(request.knowledge, [c.section_id for c in checked.citations], self.article_base_url)
        text = self.prompts.render(
            "llm_reply.md", language=retrieval.language, body=checked.text, citations=checked.citations, related=related
        )
        usage = meter.usage(invalid=checked.invalid, dropped=checked.dropped, truncated=checked.truncated,
                            dropped_sources=dropped_sources)
        return Answer(
            question=request.question,
            text=text,
            citations=checked.citations,
            retrieval=retrieval,
            confident=True,
            abstained=False,
            language=retrieval.language,
            backend=self.name,
            related=tuple(related),
            timings_ms={"llm": usage["llm_ms"]},
            usage=usage,
        )

    def _fallback(
        self,
        request: AnswerRequest,
        meter: _Meter,
        *,
        reason: str,
        note: bool,
        invalid: int = 0,
        dropped: int = 0,
        truncated: bool = False,
        dropped_sources: int = 0,
    ) -> Answer:
        answer = self.extractive.answer(request)
        text = answer.text
        if note:
            lead = self.prompts.render("llm_fallback_note.md", language=request.retrieval.language, reason=reason)
            text = f"{lead}\n\n{text}"
        usage = meter.usage(invalid=invalid, dropped=dropped, fallback=reason, truncated=truncated,
                            dropped_sources=dropped_sources)
        timings = {"llm": usage["llm_ms"]} if meter.calls else {}
        return replace(answer, text=text, backend=f"{self.name}→{answer.backend}", usage=usage, timings_ms=timings)

    def _call(
        self, meter: _Meter, *, system: str | None, messages: list[Message], max_tokens: int, on_text: _VerifiedStream | None
    ) -> Completion:
        """One model reply, with bounded retries on 429/5xx; raises `_CallFailed` when there is none."""
        meter.started = meter.started or time.perf_counter()
        try:
            for attempt in range(self.options.max_retries + 1):
                t0 = time.perf_counter()
                meter.calls += 1
                try:
                    if on_text is None:
                        reply = self._complete(system=system, messages=messages, max_tokens=max_tokens)
                    else:
                        reply = self._stream(system=system, messages=messages, max_tokens=max_tokens, on_text=on_text.feed)
                except Exception as exc:  # noqa: BLE001 - every failure becomes an extractive answer
                    failure = self._failure(exc) or _transport_failure(exc)
                    if failure is None:
                        log.exception("%s: unexpected error from the provider call", self.name)
                        failure = Failure("error", detail=repr(exc))
                    if on_text is not None and on_text.emitted:
                        failure = replace(failure, retryable=False)  # the draft is already on screen: no second reply
                    wait = self._retry_wait(failure, attempt)
                    if wait is None:
                        raise _CallFailed(failure) from exc
                    meter.retries += 1
                    log.info("%s: %s, retrying in %.2f s", self.name, failure.reason, wait)
                    time.sleep(wait)
                    continue
                finally:
                    meter.call_ms.append((time.perf_counter() - t0) * 1000)
                meter.input_tokens += reply.input_tokens
                meter.output_tokens += reply.output_tokens
                return reply
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            meter.ended = time.perf_counter()

    def _retry_wait(self, failure: Failure, attempt: int) -> float | None:
        """Seconds to wait before retry ``attempt + 1``, or None to give up."""
        if not failure.retryable or attempt >= self.options.max_retries:
            return None
        if failure.retry_after is not None:
            return failure.retry_after if failure.retry_after <= self.options.max_retry_after else None
        return min(0.25 * 2**attempt, self.options.max_retry_after)


def _related(kb: KnowledgeBase, section_ids: Sequence[str], base_url: str) -> list[Link]:
    """Careers related to the cited articles (their ``related_jobs``), not themselves cited."""
    slugs = list(dict.fromkeys(sid.split("#", 1)[0] for sid in section_ids))
    links: dict[str, Link] = {}
    for slug in slugs:
        article = kb.article(slug)
        for other in article.related_jobs if article else ():
            target = kb.article(other)
            if target and other not in slugs and other not in links:
                links[other] = Link(title=career_title(target.title), url=f"{base_url}{other}")
    return list(links.values())


def _transport_failure(exc: Exception) -> Failure | None:
    """An HTTP transport error the SDK let through unwrapped (a read timeout mid-stream, a dropped connection)."""
    try:
        import httpx2
    except ImportError:  # pragma: no cover - both SDKs depend on it
        return None
    if isinstance(exc, httpx2.TimeoutException):
        return Failure("timeout", detail=repr(exc))
    if isinstance(exc, httpx2.TransportError):
        return Failure("connection", detail=repr(exc))
    return None


def status_failure(status: int, headers: Mapping[str, str] | None, detail: str) -> Failure:
    """A `Failure` for an HTTP error status: 408/409/429 and 5xx may be retried."""
    retry_after = parse_retry_after(headers)
    if status == 429:
        return Failure("rate_limited", retryable=True, retry_after=retry_after, detail=detail)
    if status >= 500:
        return Failure("server_error", retryable=True, retry_after=retry_after, detail=detail)
    if status in (408, 409):
        return Failure(f"http_{status}", retryable=True, retry_after=retry_after, detail=detail)
    return Failure(f"http_{status}", detail=detail)
