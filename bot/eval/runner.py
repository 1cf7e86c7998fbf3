"""Replays question sets through one `Advisor` and scores every answer.

Each question goes through ``advisor.ask`` — the same call the CLI and Slack
make — with its ``turns`` as the history; latency is the wall time of that
call (after one untimed warm-up question). The answer's own retrieval holds only ``top_k`` passages, too few for
rank metrics at 10, so the runner also asks the same advisor's retriever for a
deeper ranking of the same question (untimed). The retriever cuts one ranking
at ``top_k``, so the answer's passages are the first ``top_k`` of the deeper
one; the runner checks this and reports any mismatch.

The result is a plain dict — the content of ``report.json`` — so that a
report read back from disk (``--compare``) has the same shape as a fresh one.
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from .. import __version__
from ..questions import Question, resolve_sections
from . import metrics as m

if TYPE_CHECKING:
    from ..answer import Answer
    from ..pipeline import Advisor
    from ..settings import Settings

__all__ = [
    "FORMAT",
    "GATEABLE",
    "LOWER_IS_BETTER",
    "METRICS",
    "RANK_DEPTH",
    "breakdown",
    "run_eval",
    "score_question",
    "settings_snapshot",
    "summarize",
]

#: ``report.json`` format version.
FORMAT = 1
#: Sections ranked for MRR@10 / nDCG@10.
RANK_DEPTH = 10
#: Passages fetched for the deeper ranking (enough for RANK_DEPTH distinct sections in practice).
PASSAGE_DEPTH = 50

#: The summary's metrics, in display order, with a one-line meaning.
METRICS: dict[str, str] = {
    "hit@1": "a gold section ranks 1st",
    "hit@3": "a gold section is in the top 3 sections",
    "hit@5": "a gold section is in the top 5 sections",
    "mrr@10": "mean 1/rank of the first gold section (0 past rank 10)",
    "ndcg@10": "nDCG@10, binary relevance over the gold sections",
    "recall@5": "share of the gold sections in the top 5 (questions with ≥2 gold sections)",
    "context_hit": "a gold section is among the top_k passages the answer was composed from",
    "text_hit@1": "an expected_text string is in the 1st passage",
    "text_hit@3": "an expected_text string is in the top 3 passages",
    "text_hit@5": "an expected_text string is in the top 5 passages",
    "text_both@5": "comparisons: an expected_text string of every compared article is in the top 5 passages",
    "answer_hit": "an expected_text string is in the answer text the user reads",
    "answer_both": "comparisons: an expected_text string of every compared article is in the answer text",
    "noise": "mean number of cited sections that are not gold (answers that cite)",
    "in_scope_abstention": "in-scope questions the bot abstained on / in-scope questions",
    "abstention_precision": "abstained answers whose question was out of scope / abstained answers",
    "abstention_recall": "out-of-scope questions abstained on / out-of-scope questions",
    "citation_precision": "mean share of cited sections that are gold (answers that cite)",
    "comparison_coverage": "questions with expected_articles whose citations cover every one",
    "latency_p50_ms": "median advisor.ask time (ms)",
    "latency_p95_ms": "95th percentile advisor.ask time (ms)",
    "latency_max_ms": "slowest advisor.ask time (ms)",
}
LOWER_IS_BETTER = frozenset({"latency_p50_ms", "latency_p95_ms", "latency_max_ms", "noise", "in_scope_abstention"})
#: Metrics ``--fail-under`` accepts (the rates: higher is better); ``--fail-over`` takes the others but latency.
GATEABLE = tuple(k for k in METRICS if k not in LOWER_IS_BETTER)
GATEABLE_OVER = tuple(k for k in METRICS if k in LOWER_IS_BETTER and not k.endswith("_ms"))
#: Metrics shown for each tag and article.
GROUP_METRICS = (
    "hit@1", "hit@5", "mrr@10", "ndcg@10", "text_hit@5", "answer_hit", "citation_precision", "noise", "latency_p50_ms",
)

Row = dict[str, Any]


def settings_snapshot(settings: Settings) -> dict[str, Any]:
    """The settings as JSON, secrets left out."""
    fields = type(settings).model_fields
    secret = {name for name, f in fields.items() if "SecretStr" in repr(f.annotation)}
    secret |= {name for name in fields if isinstance(getattr(settings, name), SecretStr)}
    data = settings.model_dump(mode="json", exclude=secret)
    if "plugins" in data:  # plug-ins' options are free-form: hide any key that looks secret
        data["plugins"] = {name: _public_options(options) for name, options in data["plugins"].items()}
    return data


def _public_options(options: Any) -> Any:
    """Plug-in options with the values of token/secret/key/password-looking keys replaced, at any depth."""
    if not isinstance(options, dict):
        return options
    return {
        k: "[redacted]" if any(w in str(k).upper() for w in ("TOKEN", "SECRET", "KEY", "PASSWORD")) else _public_options(v)
        for k, v in options.items()
    }


#: Text fields of an answer's usage that are counted per value (``fallback.timeout``: 3).
_COUNTED_TEXT = frozenset({"fallback", "reason"})


def _flatten_usage(usage: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """One answer's usage as numbers to sum over a run: numbers as they are, a true flag as 1, a fallback
    reason as ``fallback.<reason>`` 1; at the top, ``served`` 1 for an answer the model wrote."""
    out: dict[str, float] = {}
    if not prefix and "calls" in usage:  # an LLM backend's answer: served by the model, or not
        out["served"] = 1 if usage["calls"] and not usage.get("fallback") else 0
    for key, value in usage.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            if value:
                out[name] = out.get(name, 0) + 1
            continue
        if isinstance(value, str) and key in _COUNTED_TEXT:
            out[f"{name}.{value}"] = out.get(f"{name}.{value}", 0) + 1
            continue
        if isinstance(value, (int, float)):
            out[name] = out.get(name, 0) + value
        elif isinstance(value, dict):
            out.update(_flatten_usage(value, f"{name}."))
    return out


def score_question(
    q: Question,
    answer: Answer,
    deep_hits: Sequence[Any],
    *,
    gold: frozenset[str],
    unknown: Sequence[str],
    unknown_articles: Sequence[str],
    article: str | None,
    latency_ms: float,
    source: str,
    slug_of: Callable[[str], str],
    text_articles: dict[str, list[str]] | None = None,
) -> Row:
    """One question's row of ``report.json``: what was asked, retrieved and answered, and its scores.

    ``text_articles`` maps each article slug to the question's ``expected_text`` strings found in that
    article (see `metrics.articles_of_texts`); comparisons are scored on it.
    """
    hits = answer.retrieval.hits
    passage_ranking = [h.passage.section.id for h in deep_hits]
    sections = m.dedupe(passage_ranking)
    mismatch = [h.passage.id for h in hits] != [h.passage.id for h in deep_hits[: len(hits)]]
    section_eval = not q.out_of_scope and bool(q.expected_sections) and not unknown and bool(gold)
    row: Row = {
        "id": q.id,
        "set": source,
        "question": q.question,
        "turns": list(q.turns),
        "tags": list(q.tags),
        "out_of_scope": q.out_of_scope,
        "expected_sections": list(q.expected_sections),
        "gold_sections": sorted(gold),
        "unknown_sections": list(unknown),
        "expected_text": list(q.expected_text),
        "expected_articles": list(q.expected_articles),
        "unknown_articles": list(unknown_articles),
        "article": article,
        "passages": [
            {
                "rank": i,
                "section_id": h.passage.section.id,
                "title": h.passage.breadcrumb_text,
                "text": h.passage.text,
                "score": round(h.score, 4),
                "dense": round(h.dense, 4),
                "lexical": round(h.lexical, 4),
                "gold": h.passage.section.id in gold,
            }
            for i, h in enumerate(hits, start=1)
        ],
        "ranking": [
            {"rank": i, "section_id": sid, "gold": sid in gold}
            for i, sid in enumerate(sections[:RANK_DEPTH], start=1)
        ],
        "answer": answer.text,
        "analysis": answer.retrieval.analysis.to_json() if getattr(answer.retrieval, "analysis", None) else None,
        "trace": list(getattr(answer, "trace", ())),
        "citations": [
            {"n": c.n, "section_id": c.section_id, "title": c.title, "breadcrumb": c.breadcrumb, "url": c.url}
            for c in answer.citations
        ],
        "abstained": answer.abstained,
        "confident": answer.confident,
        "confidence": round(answer.retrieval.confidence, 4),
        "careers": list(answer.retrieval.careers),
        "backend": answer.backend,
        "latency_ms": round(latency_ms, 3),
        "timings_ms": {k: round(v, 3) for k, v in answer.timings_ms.items()},
        "usage": answer.usage,
        "section_eval": section_eval,
        "excluded": bool(unknown),
        "ranking_mismatch": mismatch,
    }
    # Section metrics: in-scope questions whose expected sections all resolved.
    rank = m.first_rank(sections[:RANK_DEPTH], gold) if section_eval else None
    row["rank"] = rank
    row["passage_rank"] = m.first_rank(passage_ranking, gold) if section_eval else None
    for k in (1, 3, 5):
        row[f"hit@{k}"] = m.hit_at(rank, k) if section_eval else None
    row["rr@10"] = m.reciprocal_rank(rank, RANK_DEPTH) if section_eval else None
    row["ndcg@10"] = m.ndcg_at(sections, gold, RANK_DEPTH) if section_eval else None
    row["recall@5"] = m.recall_at(sections, gold, 5) if section_eval and len(gold) >= 2 else None
    row["context_hit"] = (1.0 if any(h.passage.section.id in gold for h in hits) else 0.0) if section_eval else None
    # Text metrics: in-scope questions with expected_text.
    text_eval = not q.out_of_scope and bool(q.expected_text)
    trank = m.text_rank([h.passage.text for h in deep_hits], q.expected_text) if text_eval else None
    row["text_rank"] = trank
    for k in (1, 3, 5):
        row[f"text_hit@{k}"] = m.hit_at(trank, k) if text_eval else None
    body = answer.body
    row["answer_hit"] = (0.0 if answer.abstained else float(m.contains_text(body, q.expected_text))) if text_eval else None
    cited = [c.section_id for c in answer.citations]
    row["citation_precision"] = m.citation_precision(cited, gold) if section_eval else None
    row["noise"] = float(len(set(cited) - gold)) if section_eval and cited else None
    by_article = {slug: t for slug, t in (text_articles or {}).items() if slug in q.expected_articles}
    both_eval = text_eval and bool(q.expected_articles) and all(a in by_article for a in q.expected_articles)
    top5 = "\n".join(h.passage.text for h in deep_hits[:5])
    row["text_both@5"] = float(all(m.contains_text(top5, t) for t in by_article.values())) if both_eval else None
    row["answer_both"] = (
        float(not answer.abstained and all(m.contains_text(body, t) for t in by_article.values())) if both_eval else None
    )
    if q.expected_articles and not q.out_of_scope:
        row["covers_articles"] = m.covers_articles({slug_of(s) for s in cited}, q.expected_articles)
    else:
        row["covers_articles"] = None

    if section_eval:
        row["hit"] = bool(row["hit@5"])
    elif text_eval:
        row["hit"] = bool(row["text_hit@5"])
    elif q.out_of_scope:
        row["hit"] = answer.abstained
    else:
        row["hit"] = None

    failures: list[str] = []
    if section_eval and not row["hit@5"]:
        where = f"rank {rank}" if rank else f"not in the top {RANK_DEPTH}"
        failures.append(f"no gold section in the top 5 ({where})")
    if text_eval and not row["text_hit@5"]:
        failures.append("expected text not in the top 5 passages")
    if text_eval and not answer.abstained and not row["answer_hit"]:
        failures.append("expected text not in the answer")
    if row["answer_both"] == 0.0 and not answer.abstained:
        missing = sorted(a for a, t in by_article.items() if not m.contains_text(body, t))
        failures.append(f"the answer lacks the expected text of: {', '.join(missing)}")
    if q.out_of_scope and not answer.abstained:
        failures.append(f"out-of-scope question answered (confidence {answer.retrieval.confidence:.2f})")
    if not q.out_of_scope and answer.abstained:
        failures.append(f"in-scope question abstained (confidence {answer.retrieval.confidence:.2f})")
    if row["covers_articles"] is False:
        missing = sorted(set(q.expected_articles) - {slug_of(s) for s in cited})
        failures.append(f"citations miss article(s): {', '.join(missing)}")
    row["failures"] = failures
    return row


def _values(rows: Iterable[Row], key: str) -> list[float]:
    return [r[key] for r in rows if r.get(key) is not None]


def summarize(rows: Sequence[Row]) -> dict[str, float | None]:
    """The summary metrics (see `METRICS`) over ``rows``; ``None`` where nothing could be measured."""
    s: dict[str, float | None] = {}
    for k in (1, 3, 5):
        s[f"hit@{k}"] = m.mean(_values(rows, f"hit@{k}"))
    s["mrr@10"] = m.mean(_values(rows, "rr@10"))
    s["ndcg@10"] = m.mean(_values(rows, "ndcg@10"))
    s["recall@5"] = m.mean(_values(rows, "recall@5"))
    s["context_hit"] = m.mean(_values(rows, "context_hit"))
    for k in (1, 3, 5):
        s[f"text_hit@{k}"] = m.mean(_values(rows, f"text_hit@{k}"))
    abstained = [bool(r["abstained"]) for r in rows]
    oos = [bool(r["out_of_scope"]) for r in rows]
    s["abstention_precision"] = m.abstention_precision(abstained, oos)
    s["abstention_recall"] = m.abstention_recall(abstained, oos)
    s["text_both@5"] = m.mean(_values(rows, "text_both@5"))
    s["answer_hit"] = m.mean(_values(rows, "answer_hit"))
    s["answer_both"] = m.mean(_values(rows, "answer_both"))
    s["noise"] = m.mean(_values(rows, "noise"))
    in_scope = [bool(r["abstained"]) for r in rows if not r["out_of_scope"]]
    s["in_scope_abstention"] = m.rate(in_scope)
    s["citation_precision"] = m.mean(_values(rows, "citation_precision"))
    s["comparison_coverage"] = m.rate(r["covers_articles"] for r in rows if r.get("covers_articles") is not None)
    latencies = _values(rows, "latency_ms")
    s["latency_p50_ms"] = m.percentile(latencies, 50)
    s["latency_p95_ms"] = m.percentile(latencies, 95)
    s["latency_max_ms"] = max(latencies) if latencies else None
    return {k: (round(v, 4) if v is not None else None) for k, v in s.items()}


def counts(rows: Sequence[Row]) -> dict[str, int]:
    """How many questions each metric is over."""
    return {
        "questions": len(rows),
        "in_scope": sum(1 for r in rows if not r["out_of_scope"]),
        "out_of_scope": sum(1 for r in rows if r["out_of_scope"]),
        "section_questions": sum(1 for r in rows if r["section_eval"]),
        "multi_section_questions": sum(1 for r in rows if r.get("recall@5") is not None),
        "text_questions": sum(1 for r in rows if r.get("text_hit@5") is not None),
        "comparison_text_questions": sum(1 for r in rows if r.get("answer_both") is not None),
        "comparison_questions": sum(1 for r in rows if r.get("covers_articles") is not None),
        "citing_answers": sum(1 for r in rows if r.get("citation_precision") is not None),
        "abstained": sum(1 for r in rows if r["abstained"]),
        "excluded": sum(1 for r in rows if r["excluded"]),
        "failed": sum(1 for r in rows if r["failures"]),
        "ranking_mismatches": sum(1 for r in rows if r.get("ranking_mismatch")),
        "fallbacks": sum(1 for r in rows if r.get("requested_backend") and r["backend"] != r["requested_backend"]),
    }


def breakdown(rows: Sequence[Row], key: Callable[[Row], Iterable[str]]) -> dict[str, dict[str, Any]]:
    """`GROUP_METRICS` (plus n and the abstention rate) for each group ``key`` puts a row in."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        for g in key(r):
            groups.setdefault(g, []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for g in sorted(groups):
        members = groups[g]
        s = summarize(members)
        abstained = m.rate(bool(r["abstained"]) for r in members)
        out[g] = {
            "n": len(members),
            "n_scored": sum(1 for r in members if r["section_eval"]),
            **{k: s[k] for k in GROUP_METRICS},
            "abstained": round(abstained, 4) if abstained is not None else None,
            "failed": sum(1 for r in members if r["failures"]),
        }
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def run_eval(
    advisor: Advisor,
    questions: Sequence[tuple[Path | str, Question]],
    *,
    top_k: int | None = None,
    backend: str | None = None,
    on_row: Callable[[Row], None] | None = None,
) -> dict[str, Any]:
    """Ask every question (``(source, question)`` pairs) through ``advisor``; the report as a dict."""
    settings = advisor.settings
    qs = [q for _, q in questions]
    resolution = resolve_sections(qs, advisor.knowledge)
    slugs = {s.id: s.slug for s in advisor.knowledge.sections}

    def slug_of(section_id: str) -> str:
        return slugs.get(section_id) or section_id.split("#", 1)[0]

    article_texts = {a.slug: "\n".join(sec.text for sec in a.sections) for a in advisor.knowledge.articles}
    k = top_k or settings.top_k
    depth = max(k, PASSAGE_DEPTH)
    usage: Counter[str] = Counter()
    rows: list[Row] = []
    started = _now()
    if questions:  # warm-up, untimed: the first ask pays one-time costs (lazy model set-up, caches)
        first = questions[0][1]
        advisor.ask(first.question, history=first.turns, top_k=k, backend=backend)
    t0 = time.perf_counter()
    for source, q in questions:
        start = time.perf_counter()
        answer = advisor.ask(q.question, history=q.turns, top_k=k, backend=backend)
        latency = (time.perf_counter() - start) * 1000
        text = q.question.strip()[: settings.max_question_chars]
        deep = advisor.retriever.search(text, history=list(q.turns), top_k=depth)
        row = score_question(
            q,
            answer,
            deep.hits,
            gold=resolution.sections.get(q.id, frozenset()),
            unknown=resolution.unknown.get(q.id, ()),
            unknown_articles=resolution.unknown_articles.get(q.id, ()),
            article=resolution.articles.get(q.id),
            latency_ms=latency,
            source=Path(source).name,
            slug_of=slug_of,
            text_articles=m.articles_of_texts(q.expected_text, article_texts),
        )
        row["requested_backend"] = backend or settings.backend
        usage.update(_flatten_usage(answer.usage))
        rows.append(row)
        if on_row:
            on_row(row)
    seconds = time.perf_counter() - t0

    unknown = [
        {"id": r["id"], "set": r["set"], "field": "expected_sections", "refs": r["unknown_sections"]}
        for r in rows if r["unknown_sections"]
    ] + [
        {"id": r["id"], "set": r["set"], "field": "expected_articles", "refs": r["unknown_articles"]}
        for r in rows if r["unknown_articles"]
    ]
    return {
        "format": FORMAT,
        "created": started,
        "sets": sorted({str(s) for s, _ in questions}),
        "run": {
            "careerbot": __version__,
            "python": platform.python_version(),
            "backend": backend or settings.backend,
            "top_k": k,
            "rank_depth": RANK_DEPTH,
            "embedder": settings.embedder,
            "calibration": advisor.retriever.calibration.model_dump(mode="json", include={"cosine_low", "cosine_high", "source"}),
            "articles": len(advisor.knowledge.articles),
            "passages": advisor.index.size,
            "seconds": round(seconds, 3),
        },
        "settings": settings_snapshot(settings),
        "summary": summarize(rows),
        "counts": counts(rows),
        "usage": dict(sorted(usage.items())),
        "unknown": unknown,
        "by_tag": breakdown(rows, lambda r: r["tags"] or ["(no tag)"]),
        "by_article": breakdown(rows, lambda r: [r["article"]] if r["article"] else []),
        "compare": None,
        "gates": None,
        "questions": rows,
    }
