"""``careerbot eval``: replay question sets through the advisor and write a scored report.

    careerbot eval SET... [--backend NAME] [--top-k N] [--out DIR] [--compare OLD.json]
                          [--fail-under METRIC=VALUE ...] [--fail-over METRIC=VALUE ...] [--set KEY=VALUE ...]

Exit status: 0 done (and every gate passed), 1 a ``--fail-under`` or ``--fail-over`` gate failed,
2 an error (a malformed set, a bad argument, an unreadable report).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..settings import Settings, load_settings
from .compare import EvalError, check_gates, compare_reports, load_report, parse_gates
from .report import fmt, fmt_delta, write_reports
from .runner import GATEABLE, GATEABLE_OVER, METRICS

if TYPE_CHECKING:
    from ..questions import Question

__all__ = ["cmd_eval", "register"]

EXIT_GATE = 1

_EPILOG = f"""\
metrics for --fail-under: {', '.join(GATEABLE)}
metrics for --fail-over: {', '.join(GATEABLE_OVER)}

examples:
  careerbot eval knowledge/questions
  careerbot eval knowledge/questions --out runs/a && \\
    careerbot eval knowledge/questions --set top_k=3 --out runs/b --compare runs/a/report.json
  careerbot eval knowledge/questions/test --fail-under answer_hit=0.8 --fail-over in_scope_abstention=0.03
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score question sets: retrieval, abstention, citations, latency",
        description="Replay question sets through the advisor and write report.json, report.md and report.html.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sets", nargs="+", type=Path, metavar="SET", help="question set files (.jsonl/.yaml/.yml) or folders of them")
    p.add_argument("--backend", default=None, metavar="NAME", help="answer backend (default: CAREERBOT_BACKEND)")
    p.add_argument("--top-k", type=int, default=None, metavar="N", help="passages the answer is composed from")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="report folder (default: <data_dir>/eval/<timestamp>)")
    p.add_argument("--compare", type=Path, default=None, metavar="OLD.json", help="an earlier report.json to compare with")
    p.add_argument("--fail-under", action="append", default=[], metavar="METRIC=VALUE",
                   help="exit 1 if METRIC is below VALUE (repeatable)")
    p.add_argument("--fail-over", action="append", default=[], metavar="METRIC=VALUE",
                   help="exit 1 if a lower-is-better METRIC (noise, in_scope_abstention) is above VALUE (repeatable)")
    p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="override a setting for this run, e.g. top_k=3 or embedder=sentence-transformers (repeatable)")
    p.set_defaults(func=cmd_eval)


def parse_overrides(specs: list[str]) -> dict[str, Any]:
    """``["top_k=3", …]`` → ``{"top_k": "3", …}`` (pydantic converts the strings); JSON for lists and objects."""
    fields = Settings.model_fields
    out: dict[str, Any] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        key = key.strip().lower().replace("-", "_").removeprefix("careerbot_")
        if not sep or not key:
            raise EvalError(f"--set {spec!r}: expected KEY=VALUE, e.g. top_k=3")
        if key not in fields:
            raise EvalError(f"--set {spec!r}: unknown setting {key!r} (known: {', '.join(fields)})")
        if value.strip().startswith(("[", "{")):
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise EvalError(f"--set {spec!r}: invalid JSON ({exc.msg})") from None
        else:
            out[key] = value
    return out


def _default_out(settings: Settings) -> Path:
    base = settings.data_dir / "eval" / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(advisor, labelled, *, top_k: int | None, backend: str | None) -> dict[str, Any]:
    from .runner import run_eval

    if not sys.stderr.isatty():
        return run_eval(advisor, labelled, top_k=top_k, backend=backend)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), TextColumn("{task.fields[last]}"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("eval", total=len(labelled), last="")

        def step(row: dict[str, Any]) -> None:
            mark = "–" if row["hit"] is None else ("✓" if row["hit"] else "✗")
            progress.update(task, advance=1, last=f"{mark} {row['id']}")

        return run_eval(advisor, labelled, top_k=top_k, backend=backend, on_row=step)


def _print_summary(report: dict[str, Any], paths: dict[str, Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    c, run = report["counts"], report["run"]
    console.print(
        f"careerbot eval: {c['questions']} questions ({c['section_questions']} scored on sections, "
        f"{c['text_questions']} on text, {c['out_of_scope']} out of scope, {c['excluded']} excluded; "
        f"{c['failed']} with failures), backend {run['backend']}, top_k {run['top_k']}, {run['seconds']:.1f} s",
        markup=False,
    )
    cmp = report.get("compare")
    old = {m["metric"]: m for m in cmp["metrics"]} if cmp else {}
    table = Table(show_edge=False, pad_edge=False, box=None)
    table.add_column("metric")
    table.add_column("value", justify="right")
    if cmp:
        table.add_column("old", justify="right")
        table.add_column("Δ", justify="right")
    for name in METRICS:
        value = report["summary"].get(name)
        if value is None and not cmp:
            continue
        row = [name, fmt(value, name)]
        if cmp:
            o = old.get(name, {})
            row += [fmt(o.get("old"), name), fmt_delta(o.get("delta"), name)]
        table.add_row(*row)
    console.print(table)
    if report.get("usage"):
        console.print("tokens: " + ", ".join(f"{k} {v:g}" for k, v in report["usage"].items()), markup=False)
    for u in report["unknown"]:
        console.print(f"unknown {u['field']} in {u['set']} {u['id']} (excluded): {', '.join(u['refs'])}", markup=False)
    if c.get("fallbacks"):
        console.print(f"warning: {c['fallbacks']} answer(s) fell back to another backend (see each row's backend)", markup=False)
    if c.get("ranking_mismatches"):
        console.print(f"warning: {c['ranking_mismatches']} answer(s) saw passages other than the ranking's top_k", markup=False)
    if cmp:
        changed = "; ".join(f"{k} {v['old']} → {v['new']}" for k, v in cmp["settings_changed"].items())
        console.print(f"compared with {cmp['old']}" + (f" (changed: {changed})" if changed else ""), markup=False)
        for title, key in (("hit → miss", "hit_to_miss"), ("miss → hit", "miss_to_hit")):
            items = cmp[key]
            console.print(f"{title} ({len(items)}): " + (", ".join(x["id"] for x in items) or "none"), markup=False)
    for g in report.get("gates") or ():
        if not g["passed"]:
            option = "--fail-over" if g.get("over") else "--fail-under"
            console.print(f"FAIL {option} {g['metric']}={g['bar']:g}: {g['reason']}", markup=False)
    console.print(f"report: {paths['html'].parent}/report.{{json,md,html}}", markup=False)


def _in(labelled: Sequence[tuple[Path, Question]], folder: Path) -> int:
    """How many of the ``labelled`` questions come from a file at or under ``folder``."""
    root = folder.resolve()
    return sum(1 for path, _ in labelled if path.resolve().is_relative_to(root))


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from ..pipeline import Advisor
    from ..questions import load_labelled_question_sets

    gates = parse_gates(args.fail_under) + parse_gates(args.fail_over, over=True)
    old = load_report(args.compare) if args.compare else None
    if args.overrides:
        settings = load_settings(**parse_overrides(args.overrides))
    labelled = load_labelled_question_sets(args.sets)
    if not labelled:
        raise EvalError(f"no questions in {', '.join(str(s) for s in args.sets)}")

    if settings.learn_parts and (learned_from := _in(labelled, settings.parts_training_path)):
        _err(f"careerbot: note: {learned_from} of these questions are in {settings.parts_training_path}, which the parts "
             "a question asks are learned from (CAREERBOT_PARTS_TRAINING): on them the figures are in-sample")
    start = time.perf_counter()
    advisor = Advisor(settings=settings, notify=lambda m: _err(f"careerbot: {m}"))
    if args.backend:
        advisor.backend(args.backend)  # an unknown backend fails here, before any question
    if sys.stderr.isatty():
        _err(f"careerbot: ready in {time.perf_counter() - start:.1f} s; {len(labelled)} questions")
    report = _run(advisor, labelled, top_k=args.top_k, backend=args.backend)
    if old is not None:
        report["compare"] = compare_reports(report, old, old_path=str(args.compare))
    if gates:
        report["gates"] = check_gates(report["summary"], gates)
    out = args.out or _default_out(settings)
    paths = write_reports(report, out)
    _print_summary(report, paths)
    return EXIT_GATE if any(not g["passed"] for g in report.get("gates") or ()) else 0
