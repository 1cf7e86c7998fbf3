"""Writes an eval report as ``report.json``, ``report.md`` and ``report.html``.

The HTML page is one self-contained file: inline CSS, charts as inline SVG, no
scripts, fonts or images from elsewhere; every piece of text is escaped.
"""

from __future__ import annotations

import json
import math
import os
from html import escape
from pathlib import Path
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from .runner import METRICS

__all__ = ["fmt", "render_html", "render_markdown", "write_reports"]

Report = dict[str, Any]


def fmt(value: Any, metric: str = "") -> str:
    """A metric value for people: rates with 3 decimals, milliseconds with 1, None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}" if metric.endswith("_ms") else f"{value:.3f}"
    return str(value)


def fmt_delta(delta: float | None, metric: str) -> str:
    if delta is None:
        return "n/a"
    return f"{delta:+.1f}" if metric.endswith("_ms") else f"{delta:+.3f}"


# ---------------------------------------------------------------- JSON


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------- Markdown


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else fmt(value)
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _group_table(groups: dict[str, dict[str, Any]], what: str) -> list[str]:
    header = [what, "n", "scored", "hit@1", "hit@5", "mrr@10", "ndcg@10", "answer_hit", "noise", "abstained", "failed",
              "p50 ms"]
    rows = [
        [g, v["n"], v["n_scored"], fmt(v["hit@1"]), fmt(v["hit@5"]), fmt(v["mrr@10"]), fmt(v["ndcg@10"]),
         fmt(v["answer_hit"]), fmt(v["noise"]), fmt(v["abstained"]), v["failed"], fmt(v["latency_p50_ms"], "_ms")]
        for g, v in groups.items()
    ]
    return _table(header, rows)


def render_markdown(report: Report) -> str:
    """``report.md``: summary, gates, comparison, breakdowns, and every failure with what was retrieved instead."""
    run, counts, summary = report["run"], report["counts"], report["summary"]
    cmp = report.get("compare")
    lines = [
        f"# careerbot eval — {report['created']}",
        "",
        f"- sets: {', '.join(f'`{s}`' for s in report['sets'])}",
        f"- backend `{run['backend']}`, top_k {run['top_k']}, embedder `{run['embedder']}`, "
        f"{run['articles']} articles / {run['passages']} passages, careerbot {run['careerbot']}",
        f"- {counts['questions']} questions: {counts['in_scope']} in scope ({counts['section_questions']} scored on "
        f"sections, {counts['text_questions']} on text), {counts['out_of_scope']} out of scope, "
        f"{counts['excluded']} excluded (unknown sections), {counts['failed']} with failures; {run['seconds']:.1f} s",
        "",
        "## Summary",
        "",
    ]
    old = {m["metric"]: m for m in cmp["metrics"]} if cmp else {}
    header = ["metric", "value"] + (["old", "Δ"] if cmp else []) + ["meaning"]
    rows = []
    for name, meaning in METRICS.items():
        row: list[Any] = [name, fmt(summary.get(name), name)]
        if cmp:
            o = old.get(name, {})
            row += [fmt(o.get("old"), name), fmt_delta(o.get("delta"), name)]
        rows.append(row + [meaning])
    lines += _table(header, rows)
    if report.get("usage"):
        lines += ["", "Token usage: " + ", ".join(f"{k} {v:g}" for k, v in report["usage"].items())]
    if report.get("gates"):
        lines += ["", "## Gates", ""]
        lines += _table(
            ["metric", "bar", "value", "result"],
            [[g["metric"], f"{'≤' if g.get('over') else '≥'} {g['bar']:g}", fmt(g["value"]),
              "pass" if g["passed"] else f"FAIL — {g['reason']}"]
             for g in report["gates"]],
        )
    if cmp:
        lines += ["", f"## Comparison with `{cmp['old']}` ({cmp.get('old_created') or '?'})", ""]
        if cmp["settings_changed"]:
            lines += ["Changed: " + "; ".join(f"`{k}` {v['old']!r} → {v['new']!r}" for k, v in cmp["settings_changed"].items()), ""]
        for title, key in (("Hit → miss", "hit_to_miss"), ("Miss → hit", "miss_to_hit")):
            lines += [f"### {title} ({len(cmp[key])})", ""]
            lines += [f"- `{c['id']}` {_cell(c['question'])} — {c['change']}" for c in cmp[key]] or ["(none)"]
            lines.append("")
        if cmp["only_new"] or cmp["only_old"]:
            lines += [f"Only in this run: {', '.join(cmp['only_new']) or '-'}; "
                      f"only in the old one: {', '.join(cmp['only_old']) or '-'}", ""]
    if report["unknown"]:
        lines += ["", "## Unknown expectations (questions excluded from section metrics)", ""]
        lines += [f"- `{u['id']}` ({u['set']}): {u['field']} {', '.join(repr(x) for x in u['refs'])}" for u in report["unknown"]]
    lines += ["", "## By tag", ""] + _group_table(report["by_tag"], "tag")
    lines += ["", "## By article (first expected section)", ""] + _group_table(report["by_article"], "article")
    failing = [r for r in report["questions"] if r["failures"]]
    lines += ["", f"## Failures ({len(failing)})", ""]
    if not failing:
        lines.append("None.")
    for r in failing:
        lines += [f"### `{r['id']}` {_cell(r['question'])}", ""]
        if r["turns"]:
            lines.append(f"- earlier turns: {' / '.join(_cell(t) for t in r['turns'])}")
        lines += [f"- **{_cell(f)}**" for f in r["failures"]]
        if r["gold_sections"]:
            lines.append(f"- expected: {', '.join(f'`{s}`' for s in r['gold_sections'])}")
        if r["expected_text"]:
            lines.append(f"- expected text: {', '.join(repr(t) for t in r['expected_text'])}")
        if r["expected_articles"]:
            lines.append(f"- expected articles: {', '.join(r['expected_articles'])}")
        lines.append(f"- confidence {r['confidence']:.3f}, {'abstained' if r['abstained'] else 'answered'}; cited: "
                     + (", ".join(f"`{c['section_id']}`" for c in r["citations"]) or "nothing"))
        if r.get("analysis"):
            lines.append("- analysis: " + _cell(_analysis_line(r["analysis"])))
        lines.append("- retrieved instead:")
        for p in r["ranking"][:5]:
            mark = " ✓" if p["gold"] else ""
            lines.append(f"  {p['rank']}. `{p['section_id']}`{mark}")
        if r.get("trace"):
            lines.append("- composed:")
            lines += [f"  - {_cell(t)}" for t in r["trace"]]
        if r.get("answer_hit") == 0.0 or r.get("answer_both") == 0.0:
            lines += ["- answer:", "", *("    " + line for line in r["answer"].splitlines()), ""]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _analysis_line(analysis: dict[str, Any]) -> str:
    """A question analysis on one line: careers (and how found), aspect, answer type, top terms."""
    careers = ", ".join(f"{c['slug']} ({c['via']})" for c in analysis.get("careers", [])) or "none"
    terms = ", ".join(f"{t}:{w:.1f}" for t, w in list(analysis.get("terms", {}).items())[:8])
    parts = [f"careers {careers}", f"aspect {analysis.get('aspect') or 'none'}"]
    if analysis.get("aspect_learned") is not None:
        overruled = f", over the cue 「{analysis['aspect_cue']}」" if analysis.get("aspect_cue") else ""
        parts[-1] += f" (learned, p {analysis['aspect_learned']:.2f}{overruled})"
    elif analysis.get("aspect_cue"):
        parts[-1] += f" (cue 「{analysis['aspect_cue']}」)"
    elif analysis.get("aspect_example"):
        parts[-1] += f" (by meaning, like 「{analysis['aspect_example']}」)"
    elif analysis.get("aspect_turn"):
        parts[-1] += f" (asked in the earlier turn 「{analysis['aspect_turn']}」)"
    parts.append(f"answer type {analysis.get('answer_type') or 'prose'}")
    if analysis.get("comparison"):
        parts.append("comparison")
    if analysis.get("with_role"):
        parts.append(f"with {analysis['with_role']}")
    parts.append(f"terms {terms or '-'}")
    return "; ".join(parts)


# ---------------------------------------------------------------- HTML and SVG


def _svg_hbars(items: list[tuple[str, float | None, str]], *, label_width: int = 190) -> Markup:
    """Horizontal bars for values in [0, 1]: (label, value, note)."""
    bar_w, row_h = 320, 22
    width = label_width + bar_w + 130
    height = row_h * len(items) + 24
    parts = [f'<svg class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        x = label_width + bar_w * frac
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 18}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 4}" class="tick" text-anchor="middle">{frac:g}</text>')
    for i, (label, value, note) in enumerate(items):
        y = i * row_h
        parts.append(f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end" class="label">{escape(label)}</text>')
        if value is not None:
            w = max(0.0, min(1.0, value)) * bar_w
            cls = "bar good" if value >= 0.9 else "bar ok" if value >= 0.7 else "bar bad"
            parts.append(f'<rect x="{label_width}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" class="{cls}">'
                         f'<title>{escape(label)}: {value:.3f}</title></rect>')
        text = fmt(value) + (f"  {note}" if note else "")
        parts.append(f'<text x="{label_width + bar_w + 6}" y="{y + 15}" class="value">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _svg_histogram(values: list[float], *, bins: int = 12) -> Markup:
    """A latency histogram: counts per equal-width bin between the fastest and slowest answer."""
    if not values:
        return Markup("<p>No latencies.</p>")
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / span * bins))] += 1
    width, height, left, bottom, top = 580, 230, 44, 36, 20
    plot_w, plot_h = width - left - 30, height - bottom - top
    peak = max(counts)
    bw = plot_w / bins
    parts = [f'<svg class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
             f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" class="tick">{peak}</text>',
             f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" class="tick">0</text>']
    for i, c in enumerate(counts):
        h = plot_h * c / peak if peak else 0
        x = left + i * bw
        a, b = lo + span * i / bins, lo + span * (i + 1) / bins
        parts.append(f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                     f'class="bar ok"><title>{a:.1f}–{b:.1f} ms: {c}</title></rect>')
        if c:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{top + plot_h - h - 3:.1f}" text-anchor="middle" class="tick">{c}</text>')
    for i in range(0, bins + 1, max(1, bins // 4)):
        x = left + i * bw
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle" class="tick">{lo + span * i / bins:.0f}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" class="label">ms per question (advisor.ask)</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


_HTML = """<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>careerbot eval — {{ r.created }}</title>
<style>
body { font-family: system-ui, -apple-system, "Hiragino Sans", "Noto Sans JP", sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; } .fail { color: #cf222e; font-weight: bold; } .muted { color: #777; }
.up { color: #1a7f37; } .down { color: #cf222e; }
code { background: #f4f4f4; padding: 0 .2rem; }
pre { white-space: pre-wrap; background: #f8f8f8; padding: .5rem; border: 1px solid #eee; font-size: .85rem; }
details { margin: .2rem 0; } summary { cursor: pointer; }
svg.chart { display: block; margin: .5rem 0; font-size: 12px; }
svg .label { fill: #333; } svg .tick, svg .value { fill: #666; font-size: 11px; }
svg .grid { stroke: #eee; } svg .axis { stroke: #999; }
svg .bar.good { fill: #2da44e; } svg .bar.ok { fill: #4a90d9; } svg .bar.bad { fill: #e5534b; }
.cols { display: flex; flex-wrap: wrap; gap: 2rem; }
</style>
</head>
<body>
<h1>careerbot eval</h1>
<p>{{ r.created }} — sets {% for s in r.sets %}<code>{{ s }}</code> {% endfor %}<br>
backend <code>{{ r.run.backend }}</code>, top_k {{ r.run.top_k }}, embedder <code>{{ r.run.embedder }}</code>,
{{ r.run.articles }} articles / {{ r.run.passages }} passages, careerbot {{ r.run.careerbot }}, {{ "%.1f"|format(r.run.seconds) }} s<br>
{{ c.questions }} questions: {{ c.in_scope }} in scope ({{ c.section_questions }} scored on sections, {{ c.text_questions }} on text),
{{ c.out_of_scope }} out of scope, {{ c.excluded }} excluded, <b>{{ c.failed }}</b> with failures.</p>

<h2>Summary</h2>
<div class="cols">
{{ summary_chart }}
<table>
<tr><th>metric</th><th>value</th>{% if cmp %}<th>old</th><th>Δ</th>{% endif %}<th>meaning</th></tr>
{% for name, meaning in metrics.items() %}
<tr><td><code>{{ name }}</code></td><td class="num">{{ fmt(r.summary.get(name), name) }}</td>
{% if cmp %}{% set o = old.get(name, {}) %}<td class="num">{{ fmt(o.get("old"), name) }}</td>
<td class="num {{ delta_class(o, name) }}">{{ fmt_delta(o.get("delta"), name) }}</td>{% endif %}
<td class="muted">{{ meaning }}</td></tr>
{% endfor %}
</table>
</div>
{% if r.usage %}<p>Token usage: {% for k, v in r.usage.items() %}{{ k }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}</p>{% endif %}

{% if r.gates %}
<h2>Gates</h2>
<table><tr><th>metric</th><th>bar</th><th>value</th><th>result</th></tr>
{% for g in r.gates %}<tr><td><code>{{ g.metric }}</code></td><td class="num">{{ '≤' if g.over else '≥' }} {{ g.bar }}</td><td class="num">{{ fmt(g.value) }}</td>
<td class="{{ 'pass' if g.passed else 'fail' }}">{{ 'pass' if g.passed else 'FAIL — ' ~ g.reason }}</td></tr>{% endfor %}
</table>
{% endif %}

{% if cmp %}
<h2>Comparison with <code>{{ cmp.old }}</code></h2>
<p class="muted">old run {{ cmp.old_created or "?" }}</p>
{% if cmp.settings_changed %}<p>Changed: {% for k, v in cmp.settings_changed.items() %}<code>{{ k }}</code> {{ v.old }} → {{ v.new }}{% if not loop.last %}; {% endif %}{% endfor %}</p>{% endif %}
{% for title, key in [("Hit → miss", "hit_to_miss"), ("Miss → hit", "miss_to_hit")] %}
<h3>{{ title }} ({{ cmp[key]|length }})</h3>
{% if cmp[key] %}<ul>{% for x in cmp[key] %}<li><code>{{ x.id }}</code> {{ x.question }} — {{ x.change }}</li>{% endfor %}</ul>
{% else %}<p class="muted">none</p>{% endif %}
{% endfor %}
{% endif %}

{% if r.unknown %}
<h2>Unknown expectations</h2>
<p>These questions are excluded from the section metrics until their set is fixed.</p>
<ul>{% for u in r.unknown %}<li><code>{{ u.id }}</code> ({{ u.set }}): {{ u.field }} {{ u.refs|join(", ") }}</li>{% endfor %}</ul>
{% endif %}

<h2>By tag</h2>
{{ tag_chart }}
{{ group_table(r.by_tag, "tag") }}
<h2>By article</h2>
{{ article_chart }}
{{ group_table(r.by_article, "article") }}

<h2>Latency</h2>
<p>p50 {{ fmt(r.summary.latency_p50_ms, "_ms") }} ms, p95 {{ fmt(r.summary.latency_p95_ms, "_ms") }} ms, max {{ fmt(r.summary.latency_max_ms, "_ms") }} ms.</p>
{{ histogram }}

<h2>Questions ({{ r.questions|length }})</h2>
<p class="muted">✓ met its expectation, ✗ did not, – not scored. Rank: of the first gold section among distinct retrieved sections.</p>
{% for q in r.questions %}
<details{% if q.failures %} open{% endif %}>
<summary><span class="{{ 'pass' if not q.failures else 'fail' }}">{{ '–' if q.hit is none else ('✓' if q.hit else '✗') }}</span>
<code>{{ q.id }}</code> {{ q.question }} <span class="muted">— rank {{ fmt(q.rank) }}, confidence {{ "%.2f"|format(q.confidence) }}, {{ "%.0f"|format(q.latency_ms) }} ms{% if q.abstained %}, abstained{% endif %}</span></summary>
{% if q.turns %}<p>Earlier turns: {{ q.turns|join(" / ") }}</p>{% endif %}
{% if q.failures %}<ul>{% for f in q.failures %}<li class="fail">{{ f }}</li>{% endfor %}</ul>{% endif %}
<p>Tags: {{ q.tags|join(", ") or "–" }}. Expected: {% for s in q.gold_sections %}<code>{{ s }}</code> {% endfor %}
{% if q.expected_text %}text {{ q.expected_text|join(" | ") }}{% endif %}{% if q.expected_articles %} articles {{ q.expected_articles|join(", ") }}{% endif %}
{% if q.out_of_scope %}(out of scope){% endif %}</p>
<table><tr><th>#</th><th>section</th><th>score</th><th>passage</th></tr>
{% for p in q.passages %}<tr><td class="num">{{ p.rank }}</td><td><code>{{ p.section_id }}</code>{% if p.gold %} <span class="pass">✓</span>{% endif %}</td>
<td class="num">{{ "%.3f"|format(p.score) }}</td><td><details><summary>{{ p.title }}</summary><pre>{{ p.text }}</pre></details></td></tr>{% endfor %}
</table>
<p>Cited: {% for c in q.citations %}[{{ c.n }}] <code>{{ c.section_id }}</code> {% else %}nothing{% endfor %}</p>
{% if q.analysis %}<p class="muted">Analysis: {{ analysis_line(q.analysis) }}</p>{% endif %}
{% if q.trace %}<p class="muted">Composed: {{ q.trace|join(" · ") }}</p>{% endif %}
<details><summary>Answer</summary><pre>{{ q.answer }}</pre></details>
</details>
{% endfor %}
</body>
</html>
"""


def _group_table_html(groups: dict[str, dict[str, Any]], what: str) -> Markup:
    head = ["n", "scored", "hit@1", "hit@5", "mrr@10", "ndcg@10", "answer_hit", "noise", "abstained", "failed", "p50 ms"]
    out = [f"<table><tr><th>{escape(what)}</th>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for g, v in groups.items():
        cells = [v["n"], v["n_scored"], fmt(v["hit@1"]), fmt(v["hit@5"]), fmt(v["mrr@10"]), fmt(v["ndcg@10"]),
                 fmt(v["answer_hit"]), fmt(v["noise"]), fmt(v["abstained"]), v["failed"], fmt(v["latency_p50_ms"], "_ms")]
        out.append(f"<tr><td>{escape(g)}</td>" + "".join(f'<td class="num">{escape(str(c))}</td>' for c in cells) + "</tr>")
    out.append("</table>")
    return Markup("".join(out))


def _group_chart(groups: dict[str, dict[str, Any]]) -> Markup:
    """hit@5 per group that has section-scored questions; groups of out-of-scope questions show their abstention rate."""
    items: list[tuple[str, float | None, str]] = []
    for g, v in groups.items():
        if v["n_scored"]:
            items.append((g, v["hit@5"], f"hit@5, n={v['n_scored']}"))
        elif v["abstained"] is not None and v["hit@5"] is None:
            items.append((g, v["abstained"], f"abstained, n={v['n']}"))
    return _svg_hbars(items) if items else Markup("")


def render_html(report: Report) -> str:
    """``report.html``: one self-contained page (inline CSS and SVG, no scripts or external assets)."""
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    cmp = report.get("compare")
    old = {m["metric"]: m for m in cmp["metrics"]} if cmp else {}

    def delta_class(o: dict[str, Any], name: str) -> str:
        d = o.get("delta")
        if not d:
            return ""
        better = (d < 0) if o.get("lower_is_better") else (d > 0)
        return "up" if better else "down"

    summary_items = [(name, report["summary"][name], "") for name in METRICS
                     if not name.endswith("_ms") and report["summary"].get(name) is not None]
    latencies = [q["latency_ms"] for q in report["questions"] if isinstance(q.get("latency_ms"), (int, float))
                 and math.isfinite(q["latency_ms"])]
    return env.from_string(_HTML).render(
        r=report,
        c=report["counts"],
        cmp=cmp,
        old=old,
        metrics=METRICS,
        fmt=fmt,
        fmt_delta=fmt_delta,
        delta_class=delta_class,
        analysis_line=_analysis_line,
        group_table=_group_table_html,
        summary_chart=_svg_hbars(summary_items, label_width=150),
        tag_chart=_group_chart(report["by_tag"]),
        article_chart=_group_chart(report["by_article"]),
        histogram=_svg_histogram(latencies),
    )


def write_reports(report: Report, out: Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out`` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    _write_atomic(paths["json"], json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    _write_atomic(paths["md"], render_markdown(report))
    _write_atomic(paths["html"], render_html(report))
    return paths
