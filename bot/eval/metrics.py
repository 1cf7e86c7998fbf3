"""The eval's metrics as pure functions (no careerbot objects): easy to check by hand.

Ranking metrics follow BEIR/MTEB (binary relevance). The knowledge base is
retrieved by *passage* but judged by *section*, so a passage ranking is first
turned into a section ranking with `dedupe`: each section id is kept at the
rank of its best passage and later repeats are dropped (the "MaxP" reading of
passage retrieval that BEIR uses for document judgements). Ranks are counted in
that deduplicated list, from 1.

Every rate is in [0, 1]; a rate with nothing to measure is ``None`` (shown as
"n/a"), never a silent 0 or 1.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Collection, Hashable, Iterable, Sequence
from typing import TypeVar

from ..text import normalize, strip_decorations

__all__ = [
    "abstention_precision",
    "abstention_recall",
    "articles_of_texts",
    "contains_text",
    "citation_precision",
    "covers_articles",
    "dedupe",
    "first_rank",
    "hit_at",
    "mean",
    "normalize_for_match",
    "ndcg_at",
    "percentile",
    "rate",
    "recall_at",
    "reciprocal_rank",
    "text_rank",
]

T = TypeVar("T", bound=Hashable)


def dedupe(ranking: Iterable[T]) -> list[T]:
    """``ranking`` with later repeats removed, order kept: ``[a, a, b, a, c] → [a, b, c]``."""
    return list(dict.fromkeys(ranking))


def first_rank(ranking: Sequence[Hashable], gold: Collection[Hashable]) -> int | None:
    """1-based rank of the first item of ``ranking`` in ``gold``; ``None`` if there is none."""
    for rank, item in enumerate(ranking, start=1):
        if item in gold:
            return rank
    return None


def hit_at(rank: int | None, k: int) -> float:
    """1.0 if the first relevant item is within the top ``k``, else 0.0."""
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None, k: int = 10) -> float:
    """``1/rank`` of the first relevant item if it is within the top ``k`` (MRR@k per question), else 0."""
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def ndcg_at(ranking: Sequence[Hashable], gold: Collection[Hashable], k: int = 10) -> float:
    """nDCG@k with binary relevance (``ranking`` must already be deduplicated).

    DCG = Σ_{i ≤ k, ranking[i] ∈ gold} 1 / log2(i + 1); IDCG is the DCG of a
    ranking with all ``min(|gold|, k)`` relevant items on top. 0.0 without gold.
    """
    if not gold:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, item in enumerate(ranking[:k], start=1) if item in gold)
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
    return dcg / idcg


def recall_at(ranking: Sequence[Hashable], gold: Collection[Hashable], k: int = 5) -> float:
    """Share of ``gold`` found in the top ``k`` of ``ranking`` (deduplicated). 0.0 without gold."""
    if not gold:
        return 0.0
    return len(set(ranking[:k]) & set(gold)) / len(set(gold))


def normalize_for_match(text: str) -> str:
    """The form in which expected text is looked for: Markdown emphasis and emoji removed, NFKC,
    lower case, runs of white space as one space."""
    return " ".join(normalize(unicodedata.normalize("NFKC", strip_decorations(text))).split())


def text_rank(passages: Sequence[str], expected: Sequence[str]) -> int | None:
    """1-based rank of the first passage that contains any ``expected`` string (both normalised)."""
    wanted = [w for w in (normalize_for_match(e) for e in expected) if w]
    if not wanted:
        return None
    for rank, text in enumerate(passages, start=1):
        norm = normalize_for_match(text)
        if any(w in norm for w in wanted):
            return rank
    return None


def contains_text(text: str, expected: Sequence[str]) -> bool:
    """Whether any ``expected`` string occurs in ``text`` (both normalised as in `normalize_for_match`)."""
    norm = normalize_for_match(text)
    return any(w and w in norm for w in (normalize_for_match(e) for e in expected))


def articles_of_texts(expected: Sequence[str], articles: dict[str, str]) -> dict[str, list[str]]:
    """For each article (slug → its full text) the ``expected`` strings that occur in it (normalised)."""
    out: dict[str, list[str]] = {}
    normalized = {slug: normalize_for_match(text) for slug, text in articles.items()}
    for e in expected:
        w = normalize_for_match(e)
        for slug, text in normalized.items():
            if w and w in text:
                out.setdefault(slug, []).append(e)
    return out


def abstention_precision(abstained: Sequence[bool], out_of_scope: Sequence[bool]) -> float | None:
    """Of the answers that abstained, the share whose question was out of scope (``None`` if none abstained)."""
    pairs = list(zip(abstained, out_of_scope, strict=True))
    predicted = sum(1 for a, _ in pairs if a)
    if predicted == 0:
        return None
    return sum(1 for a, o in pairs if a and o) / predicted


def abstention_recall(abstained: Sequence[bool], out_of_scope: Sequence[bool]) -> float | None:
    """Of the out-of-scope questions, the share the bot abstained on (``None`` if there are none)."""
    pairs = list(zip(abstained, out_of_scope, strict=True))
    actual = sum(1 for _, o in pairs if o)
    if actual == 0:
        return None
    return sum(1 for a, o in pairs if a and o) / actual


def citation_precision(cited: Collection[Hashable], gold: Collection[Hashable]) -> float | None:
    """Share of the distinct cited ids that are in ``gold``; ``None`` when nothing is cited."""
    distinct = set(cited)
    if not distinct:
        return None
    return len(distinct & set(gold)) / len(distinct)


def covers_articles(cited_articles: Collection[str], expected: Collection[str]) -> bool:
    """True if every expected article is among the cited ones."""
    return set(expected) <= set(cited_articles)


def mean(values: Iterable[float | None]) -> float | None:
    """Arithmetic mean of the values that are not ``None``; ``None`` if there are none."""
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def rate(flags: Iterable[bool]) -> float | None:
    """Share of true flags; ``None`` for no flags."""
    xs = list(flags)
    return sum(1 for x in xs if x) / len(xs) if xs else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) with linear interpolation between closest ranks.

    Same as ``numpy.percentile(values, q)`` (method "linear", Hyndman–Fan type 7):
    position ``(n - 1) * q / 100`` in the sorted values. ``None`` for no values.
    """
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
