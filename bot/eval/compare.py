"""Comparing two eval reports, and the ``--fail-under`` gates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import CareerbotError
from .runner import GATEABLE, GATEABLE_OVER, LOWER_IS_BETTER, METRICS

__all__ = ["EvalError", "Gate", "check_gates", "compare_reports", "load_report", "parse_gates"]


class EvalError(CareerbotError):
    """A bad eval argument or an unreadable report (exit status 2)."""


#: (metric, bar, over): ``over`` False fails below the bar (``--fail-under``), True above it (``--fail-over``).
Gate = tuple[str, float, bool]


def parse_gates(specs: list[str] | None, *, over: bool = False) -> list[Gate]:
    """``["hit@5=0.9", …]`` → ``[("hit@5", 0.9, False), …]``; an unknown metric or a bad number is an `EvalError`.

    ``--fail-under`` takes the higher-is-better rates, ``--fail-over`` (``over=True``) the lower-is-better
    ones (``noise``, ``in_scope_abstention``); latencies are never gated.
    """
    option = "--fail-over" if over else "--fail-under"
    allowed = GATEABLE_OVER if over else GATEABLE
    gates: list[Gate] = []
    for spec in specs or ():
        name, sep, value = spec.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise EvalError(f"{option} {spec!r}: expected METRIC=VALUE, e.g. {allowed[0]}=0.9")
        if name in METRICS and name not in allowed:
            direction = "lower" if name in LOWER_IS_BETTER else "higher"
            raise EvalError(f"{option} {spec!r}: {name} is {direction}-is-better and not gated by {option} "
                            f"({', '.join(allowed)})")
        if name not in METRICS:
            raise EvalError(f"{option} {spec!r}: unknown metric {name!r} (known: {', '.join(allowed)})")
        try:
            bar = float(value)
        except ValueError:
            raise EvalError(f"{option} {spec!r}: {value!r} is not a number") from None
        if not 0.0 <= bar <= (10.0 if name == "noise" else 1.0):
            raise EvalError(f"{option} {spec!r}: the bar is out of range for {name}")
        gates.append((name, bar, over))
    return gates


def check_gates(summary: dict[str, Any], gates: list[Gate]) -> list[dict[str, Any]]:
    """One result per gate; ``passed`` is False when the metric is past its bar or could not be measured."""
    results = []
    for name, bar, over in gates:
        value = summary.get(name)
        if value is None:
            results.append({"metric": name, "bar": bar, "over": over, "value": None, "passed": False,
                            "reason": "not measured (no questions of that kind)"})
        else:
            ok = value <= bar if over else value >= bar
            results.append({"metric": name, "bar": bar, "over": over, "value": value, "passed": ok,
                            "reason": "" if ok else f"{value:.4f} {'>' if over else '<'} {bar:g}"})
    return results


def load_report(path: Path) -> dict[str, Any]:
    """A ``report.json`` written by ``careerbot eval``; anything else is an `EvalError` naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvalError(f"--compare {path}: cannot read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalError(f"--compare {path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("summary"), dict) or not isinstance(data.get("questions"), list):
        raise EvalError(f"--compare {path}: not a careerbot eval report (no summary/questions)")
    return data


def _delta(new: Any, old: Any) -> float | None:
    if isinstance(new, (int, float)) and isinstance(old, (int, float)):
        return round(new - old, 4)
    return None


def _answered(row: dict[str, Any]) -> str:
    return "abstained" if row.get("abstained") else "answered"


def compare_reports(new: dict[str, Any], old: dict[str, Any], *, old_path: str = "") -> dict[str, Any]:
    """Per-metric deltas (new − old) and the questions, matched by id, whose ``hit`` changed."""
    metrics = []
    for name in METRICS:
        if name in new["summary"] or name in old["summary"]:
            a, b = old["summary"].get(name), new["summary"].get(name)
            metrics.append({"metric": name, "old": a, "new": b, "delta": _delta(b, a),
                            "lower_is_better": name in LOWER_IS_BETTER})
    old_rows = {r["id"]: r for r in old["questions"] if isinstance(r, dict) and "id" in r}
    new_rows = {r["id"]: r for r in new["questions"]}

    def change(r_new: dict[str, Any], r_old: dict[str, Any]) -> dict[str, Any]:
        if r_new.get("out_of_scope"):
            how = f"{_answered(r_old)} → {_answered(r_new)}"
        else:
            how = f"rank {r_old.get('rank') or 'n/a'} → {r_new.get('rank') or 'n/a'}"
        return {"id": r_new["id"], "question": r_new["question"], "old_rank": r_old.get("rank"),
                "new_rank": r_new.get("rank"), "change": how, "failures": r_new.get("failures", [])}

    hit_to_miss, miss_to_hit = [], []
    for qid, r in new_rows.items():
        o = old_rows.get(qid)
        if o is None or r.get("hit") is None or o.get("hit") is None:
            continue
        if o["hit"] and not r["hit"]:
            hit_to_miss.append(change(r, o))
        elif not o["hit"] and r["hit"]:
            miss_to_hit.append(change(r, o))
    old_settings = old.get("settings") if isinstance(old.get("settings"), dict) else {}
    new_settings = new.get("settings") or {}
    changed = {
        k: {"old": old_settings.get(k), "new": new_settings.get(k)}
        for k in sorted(set(old_settings) & set(new_settings))  # a field one version lacks did not "change"
        if old_settings[k] != new_settings[k]
    }
    for k in ("backend", "top_k"):
        a, b = (old.get("run") or {}).get(k), (new.get("run") or {}).get(k)
        if a != b:
            changed[f"run.{k}"] = {"old": a, "new": b}
    return {
        "old": old_path,
        "settings_changed": changed,
        "old_created": old.get("created"),
        "old_run": old.get("run"),
        "metrics": metrics,
        "hit_to_miss": hit_to_miss,
        "miss_to_hit": miss_to_hit,
        "only_new": sorted(set(new_rows) - set(old_rows)),
        "only_old": sorted(set(old_rows) - set(new_rows)),
    }
