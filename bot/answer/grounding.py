"""Checks a real model's reply must pass before it is served (on top of `bot.answer.llm.verify`'s citation rules).

Small local models (llama.cpp serving Gemma 3 270M or SmolLM2-135M) echo their
prompt, loop, stop mid-sentence at ``max_tokens`` and copy the sources' header
lines as if they were citations. Each function here spots one of those, so the
backend can serve only what holds up and fall back, with a recorded reason,
otherwise:

- `echo_reason`: the reply contains a fence tag or the per-request boundary
  (``prompt_echo``), or reproduces `ECHO_SPAN` characters of the instructions —
  the system prompt and the fixed text of the answer prompt, not the sources
  (quoting a source is what an answer does) — (``prompt_echo``).
- `is_header_line`: a reply line that is a source's header (``[n] title › section``)
  copied from the prompt; its markers are not citations.
- `repetition`: the reply repeats itself (a sentence three times, or a long span
  looping) — ``degenerate``.
- `trim_truncated`: a reply cut at ``max_tokens`` (``finish_reason: length``)
  trimmed to its last complete sentence or line, a half-written ``[`` marker removed.
- `rewrite_problem`: why a follow-up rewrite is not a usable standalone question
  (an echo, an answer, a bare word, off the conversation), or None.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from ..text import strip_decorations, terms

if TYPE_CHECKING:
    from .llm import Prompt

__all__ = [
    "ECHO_SPAN",
    "echo_reason",
    "instruction_text",
    "is_header_line",
    "repetition",
    "rewrite_problem",
    "trim_truncated",
]

#: Characters (whitespace and markers aside) of the instructions a reply may not reproduce verbatim.
ECHO_SPAN = 30
#: Any opening or closing fence tag, with or without a boundary suffix.
_FENCE_TAG = re.compile(r"</?\s*(?:sources?|question|history)(?:-[^\s>]*)?(?:\s+n=|\s*>)", re.IGNORECASE)
_MARKERS = re.compile(r"[\[［【]\s*\d{1,3}(?:\s*[,，、]\s*\d{1,3})*\s*[\]］】]")
_SPACE = re.compile(r"\s+")
#: A sentence's end: 。！？ (with closing brackets), or . ! ? before whitespace (not the dot of 「1.」 or 「3.5」).
_SENTENCE_END = re.compile(r"(?:[。！？][」』）)]*|(?<![0-9A-Za-z][.])(?<!\d)[.!?](?=\s|$))")
_TRAILING_MARKERS = re.compile(r"^(?:\s*[\[［【]\s*\d{1,3}(?:\s*[,，、]\s*\d{1,3})*\s*[\]］】])*")
_HALF_MARKER = re.compile(r"\s*[\[［【][\d\s,，、]*$")
#: The same sentence this many times is a loop, not an answer.
REPEATED_SENTENCE = 3
#: A span of this many characters recurring `REPEATED_SPAN_TIMES` times (non-overlapping) is a loop.
REPEATED_SPAN = 24
REPEATED_SPAN_TIMES = 4
_QUESTION_END = re.compile(r"(?:[?？]|か|かな|でしょうか|ですか|ますか)[。.]?\s*$")
_QUESTION_WORD = re.compile(
    r"(?:何|なに|なん|どう|どの|どんな|どこ|どれ|いつ|誰|なぜ|いくら|いくつ|教えて|知りたい|"
    r"\b(?:what|how|which|why|when|where|who|is|are|does|do|can|should)\b)",
    re.IGNORECASE,
)
_DECLARATIVE_END = re.compile(r"(?:です|ます|でした|ました|である|だ)[。.]\s*$")
#: A rewrite shorter than this (decoration aside) is a bare word, not a question.
MIN_REWRITE_CHARS = 6


def _normal(text: str) -> str:
    """Text compared for echoes: NFKC, markers and whitespace out, lower-case."""
    text = unicodedata.normalize("NFKC", text)
    return _SPACE.sub("", _MARKERS.sub("", text)).lower()


def instruction_text(prompt: Prompt) -> str:
    """The prompt's own wording: the system prompt and the answer prompt without its sources, question and history."""
    user = prompt.user
    for source in prompt.sources:
        user = user.replace(source.text, "\n")
    return prompt.system + "\n" + user


@lru_cache(maxsize=64)
def _spans(text: str, width: int) -> frozenset[str]:
    """Every ``width``-character span of ``text`` (cached: a streamed reply is checked once per line)."""
    return frozenset(text[i : i + width] for i in range(0, max(len(text) - width + 1, 0)))


def echo_reason(reply: str, *, boundary: str, instructions: str, exclude: Iterable[str] = ()) -> str | None:
    """``prompt_echo`` if ``reply`` shows a fence tag, the boundary or `ECHO_SPAN` characters of ``instructions``.

    ``exclude`` are texts whose words may legitimately recur in a reply (the question, the source headers):
    spans that lie inside one of them are not echoes.
    """
    if boundary and boundary.lower() in reply.lower():
        return "prompt_echo"
    if _FENCE_TAG.search(reply):
        return "prompt_echo"
    said = _normal(reply)
    if len(said) < ECHO_SPAN:
        return None
    allowed = [_normal(t) for t in exclude]
    own = _spans(_normal(instructions), ECHO_SPAN)
    for i in range(len(said) - ECHO_SPAN + 1):
        span = said[i : i + ECHO_SPAN]
        if span in own and not any(span in a for a in allowed):
            return "prompt_echo"
    return None


def is_header_line(line: str, headers: Sequence[str]) -> bool:
    """Whether ``line`` is one of the sources' header lines (``title › breadcrumb``), markers and decoration aside."""
    plain = _normal(strip_decorations(_MARKERS.sub("", line))).strip("-*・:：")
    if len(plain) < 4:
        return False
    for header in headers:
        h = _normal(strip_decorations(header))
        if plain == h or (h.startswith(plain) and len(plain) >= max(8, len(h) // 2)) or (
            len(h) >= 8 and plain.startswith(h) and len(plain) <= len(h) + 4
        ):
            return True
    return False


def _sentences(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        start = 0
        for m in _SENTENCE_END.finditer(line):
            out.append(line[start : m.end()])
            start = m.end()
        out.append(line[start:])
    return [s for s in (_normal(strip_decorations(s)) for s in out) if len(s) >= 8]


def repetition(text: str) -> bool:
    """Whether ``text`` loops: a sentence (or line) `REPEATED_SENTENCE` times, or a long span recurring."""
    counts = Counter(_sentences(text))
    if counts and counts.most_common(1)[0][1] >= REPEATED_SENTENCE:
        return True
    flat = _normal(text)
    if len(flat) < REPEATED_SPAN * REPEATED_SPAN_TIMES:
        return False
    seen: dict[str, int] = {}
    last: dict[str, int] = {}
    for i in range(len(flat) - REPEATED_SPAN + 1):
        span = flat[i : i + REPEATED_SPAN]
        if i >= last.get(span, -REPEATED_SPAN):
            seen[span] = seen.get(span, 0) + 1
            last[span] = i + REPEATED_SPAN
            if seen[span] >= REPEATED_SPAN_TIMES:
                return True
    return False


def trim_truncated(text: str) -> str:
    """``text`` (cut off at the token limit) up to its last complete sentence or line; "" if none is complete.

    The cut-off line is dropped, unless it holds a complete sentence: then it ends after that sentence (and
    the citations right after it). A trailing half marker (``[``, ``[1``) goes in any case.
    """
    text = _HALF_MARKER.sub("", text.rstrip())
    head, newline, tail = text.rpartition("\n")
    ends = list(_SENTENCE_END.finditer(tail))
    if ends:
        cut = ends[-1].end()
        cut += _TRAILING_MARKERS.match(tail[cut:]).end()  # type: ignore[union-attr]
        return (head + newline + tail[:cut]).rstrip()
    return head.rstrip() if newline else ""


_HIRAGANA = re.compile(r"^[\u3040-\u309f]+$")


def _content_terms(text: str) -> set[str]:
    """Index terms without the all-hiragana ones (「ですか」「の年」 aside, 「年収」 stays): what a text is about."""
    return {t for t in terms(text) if not _HIRAGANA.match(t)}


def rewrite_problem(rewritten: str, *, question: str, history: Sequence[str], prompt: str, boundary: str) -> str | None:
    """Why ``rewritten`` (a model's standalone version of the follow-up ``question``) must not be searched for.

    It must be a question (a question mark, ending or word), not an answer (a declarative sentence), longer than
    a bare word, not the prompt's own wording, and about the conversation: sharing a term with it.
    """
    text = rewritten.strip()
    if not text:
        return "empty"
    instructions = prompt
    for part in [question, *history]:
        instructions = instructions.replace(part, "\n")
    if echo_reason(text, boundary=boundary, instructions=instructions, exclude=[question, *history]):
        return "prompt_echo"
    if len(_normal(strip_decorations(text))) < MIN_REWRITE_CHARS:
        return "bare_word"
    if _normal(text) == _normal(question):
        return "unchanged"
    if _DECLARATIVE_END.search(text) or not (_QUESTION_END.search(text) or _QUESTION_WORD.search(text)):
        return "not_a_question"
    said = _content_terms(text)
    context = _content_terms(question).union(*(_content_terms(h) for h in history))
    if not said & context:
        return "off_topic"
    return None
