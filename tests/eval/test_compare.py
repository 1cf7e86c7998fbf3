"""Gates and comparisons on hand-made summaries and rows."""

from __future__ import annotations

import pytest

from bot.eval.cli import parse_overrides
from bot.eval.compare import EvalError, check_gates, compare_reports, parse_gates


def test_parse_gates() -> None:
    assert parse_gates(["hit@5=0.9", " abstention_recall = 1 "]) == [
        ("hit@5", 0.9, False), ("abstention_recall", 1.0, False)]
    assert parse_gates(None) == []
    assert parse_gates(["in_scope_abstention=0.03", "noise=1.5"], over=True) == [
        ("in_scope_abstention", 0.03, True), ("noise", 1.5, True)]
    for bad, message in [("hit@7=0.9", "unknown metric"), ("hit@5", "METRIC=VALUE"), ("hit@5=x", "not a number"),
                         ("hit@5=1.5", "out of range"), ("latency_p50_ms=10", "lower-is-better"),
                         ("noise=0.5", "lower-is-better")]:
        with pytest.raises(EvalError, match=message):
            parse_gates([bad])
    for bad, message in [("hit@5=0.9", "higher-is-better"), ("latency_p95_ms=50", "not gated")]:
        with pytest.raises(EvalError, match=message):
            parse_gates([bad], over=True)


def test_check_gates_below_at_and_unmeasured() -> None:
    summary = {"hit@5": 0.89, "mrr@10": 0.8, "text_hit@5": None}
    results = check_gates(summary, [("hit@5", 0.9, False), ("mrr@10", 0.8, False), ("text_hit@5", 0.5, False)])
    assert [r["passed"] for r in results] == [False, True, False]  # equal to the bar passes
    assert results[0]["reason"] == "0.8900 < 0.9"
    assert results[2]["reason"].startswith("not measured")
    over = check_gates({"noise": 1.2, "in_scope_abstention": 0.03}, [("noise", 1.0, True), ("in_scope_abstention", 0.03, True)])
    assert [r["passed"] for r in over] == [False, True]
    assert over[0]["reason"] == "1.2000 > 1"


def _report(hits: dict[str, bool | None], hit5: float, top_k: int) -> dict:
    return {
        "summary": {"hit@5": hit5, "latency_p50_ms": 10.0},
        "settings": {"top_k": top_k},
        "run": {"backend": "extractive", "top_k": top_k},
        "questions": [{"id": k, "question": f"q {k}", "hit": v, "rank": 1 if v else None} for k, v in hits.items()],
    }


def test_compare_reports() -> None:
    old = _report({"a": True, "b": False, "c": True, "gone": True, "x": None}, 0.6, 5)
    new = _report({"a": True, "b": True, "c": False, "added": False, "x": True}, 0.7, 3)
    cmp = compare_reports(new, old, old_path="old.json")
    assert [c["id"] for c in cmp["miss_to_hit"]] == ["b"]
    assert [c["id"] for c in cmp["hit_to_miss"]] == ["c"]
    assert cmp["only_new"] == ["added"] and cmp["only_old"] == ["gone"]
    by = {m["metric"]: m for m in cmp["metrics"]}
    assert by["hit@5"]["delta"] == pytest.approx(0.1) and by["latency_p50_ms"]["delta"] == 0.0
    assert by["latency_p50_ms"]["lower_is_better"] is True
    assert cmp["settings_changed"] == {"top_k": {"old": 5, "new": 3}, "run.top_k": {"old": 5, "new": 3}}


def test_parse_overrides() -> None:
    assert parse_overrides(["top_k=3", "embedder=sentence-transformers", "CAREERBOT_MIN_CONFIDENCE=0.4"]) == {
        "top_k": "3", "embedder": "sentence-transformers", "min_confidence": "0.4"}
    assert parse_overrides(['slack_allowed_channels=["C1", "C2"]']) == {"slack_allowed_channels": ["C1", "C2"]}
    with pytest.raises(EvalError, match="unknown setting 'colour'"):
        parse_overrides(["colour=blue"])
    with pytest.raises(EvalError, match="KEY=VALUE"):
        parse_overrides(["top_k"])
