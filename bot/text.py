"""Japanese-aware text handling shared by indexing and querying.

The same functions run at index time and at query time, so a term found in an
article is spelled exactly as the same term typed in a question. Normalisation
(NFKC, lower case, emoji and keycaps removed) is for matching only: what users
see is always the original text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = [
    "normalize",
    "normalize_with_spans",
    "as_typed",
    "strip_decorations",
    "anchor",
    "terms",
    "detect_language",
]

_KEYCAP = re.compile(r"[0-9#*]\ufe0f?\u20e3")
_ASCII_WORD = re.compile(r"[a-z0-9]+(?:[.][a-z0-9]+)*(?:\+\+|#)?")
_MARKUP = re.compile(r"\*\*|__|`")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_SEPARATOR_CHARS = set(" \t\r\n")
_JA_CHARS = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]")


def _is_decoration(ch: str) -> bool:
    return unicodedata.category(ch) in ("So", "Sk", "Cf", "Mn") or ch in "\ufe0f\u20e3"


def strip_decorations(text: str) -> str:
    """Remove Markdown emphasis, links' targets, keycaps and emoji; keep the words."""
    text = _LINK.sub(r"\1", text)
    text = _MARKUP.sub("", text)
    text = _KEYCAP.sub("", text)
    return "".join(ch for ch in text if not _is_decoration(ch)).strip()


def normalize(text: str) -> str:
    """NFKC, lower case, keycaps and emoji removed: the form used for matching."""
    text = unicodedata.normalize("NFKC", text)
    text = _KEYCAP.sub(" ", text)
    return "".join(" " if _is_decoration(ch) else ch for ch in text).lower()


#: Half-width voiced sound marks: NFKC composes them with the kana before them (ｶﾞ → ガ).
_HALFWIDTH_VOICED_MARKS = "\uff9e\uff9f"


def normalize_with_spans(text: str) -> tuple[str, list[tuple[int, int]]]:
    """`normalize` done piece by piece, with the span of ``text`` each character of the result came from.

    A piece is a character and the marks that NFKC may join to it (combining marks,
    ｶﾞ's ﾞ, a keycap's ``\u20e3``), so the result is ``normalize(text)``, while NFKC's and
    lower-casing's changes of length (``①`` → ``1``, ``ｶﾞ`` → ``ガ``) stay traceable: a match
    ``[i, j)`` in the result was typed as ``text[spans[i][0]:spans[j - 1][1]]``.
    """
    starts = [
        i for i, ch in enumerate(text) if i == 0 or not (unicodedata.category(ch).startswith("M") or ch in _HALFWIDTH_VOICED_MARKS)
    ]
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    for start, end in zip(starts, [*starts[1:], len(text)][: len(starts)], strict=True):
        piece = normalize(text[start:end])
        out.append(piece)
        spans.extend([(start, end)] * len(piece))
    return "".join(out), spans



def as_typed(text: str, spans: Sequence[tuple[int, int]], start: int, end: int) -> str:
    """The part of ``text`` that ``[start, end)`` of its normalised form came from (``spans`` from
    `normalize_with_spans`): a match shown as the user typed it (「ＳＲＥ」, 「Google」)."""
    return text[spans[start][0] : spans[end - 1][1]]

def anchor(heading: str) -> str:
    """The URL anchor of a heading: cleaned, lower case, punctuation dropped, spaces as '-'.

    ``1️⃣ **AI Product Managerとは？**`` → ``ai-product-managerとは``.
    """
    s = re.sub(r"^#+\s*", "", heading.strip())
    s = _MARKUP.sub("", s)
    s = unicodedata.normalize("NFKC", s)
    s = _KEYCAP.sub("", s)
    s = "".join(ch for ch in s if not _is_decoration(ch)).lower()
    s = re.sub(r"[^\w\s-]", "", s)
    return re.sub(r"\s+", "-", s.strip())


def _is_cjk_word_char(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat.startswith("L") or cat == "Nd" or ch == "ー"


def terms(text: str) -> list[str]:
    """Index terms: ASCII words whole, other letter runs as character bigrams.

    A run of one character (e.g. 「年」 alone) is kept as a unigram. Punctuation,
    spaces and emoji separate runs. ``"AI PMの年収"`` → ``["ai", "pm", "の年", "年収"]``.
    """
    norm = normalize(text)
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) == 1:
            out.append(run[0])
        else:
            out.extend(run[i] + run[i + 1] for i in range(len(run) - 1))
        run.clear()

    i = 0
    n = len(norm)
    while i < n:
        ch = norm[i]
        if ch.isascii():
            match = _ASCII_WORD.match(norm, i) if ch.isalnum() else None
            if match:
                flush()
                out.append(match.group())
                i = match.end()
                continue
            flush()
        elif _is_cjk_word_char(ch):
            run.append(ch)
        else:
            flush()
        i += 1
    flush()
    return out


def detect_language(text: str) -> str:
    """``"ja"`` when the text contains any kana or kanji, else ``"en"``."""
    return "ja" if _JA_CHARS.search(unicodedata.normalize("NFKC", text)) else "en"
