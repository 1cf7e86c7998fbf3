"""``careerbot calibrate``: fit the current embedder's confidence thresholds on question sets and store them.

    careerbot calibrate SET... [--dry-run] [--json]

Each question of the sets is searched as ``careerbot ask`` would (with its
``turns`` as history); what its confidence is made of (`bot.calibration.Evidence`)
is kept, and `fit_calibration` picks the cosine thresholds that abstain on the
out-of-scope questions and answer the in-scope ones at ``CAREERBOT_MIN_CONFIDENCE``.
The result goes into the live index's manifest for this embedder id
(`bot.index.store_calibration`) unless ``--dry-run``; a running ``careerbot
slack`` picks it up on its next reload or restart.

Calibrate on a split you tune on (``knowledge/questions/dev``), never on the held-out
``test`` split, whose figures would then no longer say anything.

Exit status: 0 stored (or, with ``--dry-run``, fitted), 2 an error (a malformed
set, a set without in-scope or out-of-scope questions, an unwritable index).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from .calibration import Calibration, CalibrationFit, Evidence, fit_calibration, score
from .errors import CareerbotError
from .settings import Settings

__all__ = ["cmd_calibrate", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="fit the embedder's confidence thresholds on question sets with out-of-scope items",
        description="Fit where the current embedder's cosines say nothing and where a clear match, on question sets "
        "with in-scope and out-of-scope items, and store them in the index manifest for this embedder.",
    )
    p.add_argument("sets", nargs="+", type=Path, metavar="SET", help="question set files or folders (e.g. knowledge/questions/dev)")
    p.add_argument("--dry-run", action="store_true", help="fit and report, but store nothing")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=cmd_calibrate)


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from .index import store_calibration
    from .pipeline import Advisor
    from .questions import load_labelled_question_sets, question_files

    labelled = load_labelled_question_sets(args.sets)
    files = question_files(args.sets)
    if any(part == "test" for f in files for part in f.parts[:-1]):
        _err("careerbot: warning: calibrating on a `test` folder: its figures no longer measure anything held out")
    advisor = Advisor(settings=settings, notify=lambda m: _err(f"careerbot: {m}"))
    retriever = advisor.retriever
    evidence: list[Evidence] = []
    out_of_scope: list[bool] = []
    no_hits = 0
    for _, q in labelled:
        found = retriever.search(q.question, history=list(q.turns), top_k=settings.top_k).evidence
        if found is None:  # nothing retrieved: abstains whatever the thresholds
            no_hits += 1
            found = Evidence(dense=-1.0, coverage=0.0, english=True, bonus=False, damped=0, uncovered=True)
        evidence.append(found)
        out_of_scope.append(q.out_of_scope)
    n_out = sum(out_of_scope)
    n_in = len(out_of_scope) - n_out
    if not n_out or not n_in:
        missing = "out-of-scope" if not n_out else "in-scope"
        raise CareerbotError(
            f"{', '.join(str(s) for s in args.sets)}: no {missing} questions; calibration needs both "
            "(out_of_scope: true marks the ones the bot must abstain on)"
        )
    bar = settings.min_confidence
    before = retriever.calibration
    missed_before, answered_before = score(evidence, out_of_scope, before, bar)
    result = fit_calibration(evidence, out_of_scope, min_confidence=bar)
    fitted = Calibration(
        cosine_low=result.cosine_low,
        cosine_high=result.cosine_high,
        source="fitted",
        embedder=advisor.embedder.id,
        fit=CalibrationFit(
            sets=[str(f) for f in files],
            sha256=[_sha256(f) for f in files],
            in_scope=n_in,
            out_of_scope=n_out,
            min_confidence=bar,
            in_scope_abstained=result.in_scope_abstained,
            out_of_scope_answered=result.out_of_scope_answered,
        ),
    )
    stored = None if args.dry_run else store_calibration(advisor.index, fitted)
    report: dict[str, Any] = {
        "embedder": advisor.embedder.id,
        "questions": {"in_scope": n_in, "out_of_scope": n_out, "no_hits": no_hits},
        "min_confidence": bar,
        "before": {
            "cosine_low": before.cosine_low, "cosine_high": before.cosine_high, "source": before.source,
            "in_scope_abstained": missed_before, "out_of_scope_answered": answered_before,
        },
        "after": {
            "cosine_low": fitted.cosine_low, "cosine_high": fitted.cosine_high,
            "in_scope_abstained": result.in_scope_abstained, "out_of_scope_answered": result.out_of_scope_answered,
            "hinge": round(result.hinge, 4),
        },
        "stored": str(stored) if stored else None,
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"careerbot calibrate: embedder {advisor.embedder.id}, {n_in} in-scope and {n_out} out-of-scope questions, "
          f"bar {bar:g}")
    print(f"  before ({before.source}): cosine {before.cosine_low:.3f}–{before.cosine_high:.3f}: "
          f"{missed_before}/{n_in} in-scope abstained, {answered_before}/{n_out} out-of-scope answered")
    print(f"  fitted: cosine {fitted.cosine_low:.3f}–{fitted.cosine_high:.3f}: "
          f"{result.in_scope_abstained}/{n_in} in-scope abstained, {result.out_of_scope_answered}/{n_out} out-of-scope answered")
    print(f"stored in {stored}" if stored else "not stored (--dry-run)")
    return 0
