"""``careerbot eval`` end to end: the real command, advisor and knowledge base, in a temporary data folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import KNOWLEDGE, PROMPTS

SALARY = "data_scientist#日本での推定年収dodaopenwork参照"
SET = [
    {"id": "ds-salary", "question": "データサイエンティストの年収は？ <script>alert(1)</script>",
     "expected_sections": [SALARY], "tags": ["salary"]},
    {"id": "pm-learn", "question": "プロダクトマネージャーになるには何を勉強すればいい？",
     "expected_sections": ["product_manager#1-プロダクトマネジメントの全体像をつかむ"], "tags": ["learning"]},
    # Deliberately wrong gold: a salary question expecting the interview section always misses.
    {"id": "wrong-gold", "question": "機械学習エンジニアの年収は？",
     "expected_sections": ["machine_learning_engineer#まとめ"], "tags": ["salary"]},
    {"id": "typo", "question": "AI PMの年収は？", "expected_sections": ["ai_product_manager#no-such-anchor"]},
    {"id": "followup", "question": "年収はどれくらい？", "turns": ["AIプロダクトマネージャーについて教えて"],
     "expected_sections": ["ai_product_manager#日本での推定年収dodaopenwork参照"], "tags": ["followup"]},
    {"id": "weather", "question": "東京の明日の天気は？", "out_of_scope": True, "tags": ["not-career"]},
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data = tmp_path_factory.mktemp("eval-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAREERBOT_DATA_DIR", str(data))
        mp.setenv("CAREERBOT_KNOWLEDGE_DIR", str(KNOWLEDGE))
        mp.setenv("CAREERBOT_PROMPTS_DIR", str(PROMPTS))
        yield data


@pytest.fixture(scope="module")
def qset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sets") / "small.jsonl"
    path.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in SET), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def first_run(env: Path, qset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The command in a process of its own, so that its standard error is its own.

    (In-process, redirecting ``sys.stderr`` also captured whatever another thread of the
    test session wrote meanwhile: on a loaded machine, a fake Slack server of an earlier
    test printing a BrokenPipeError traceback for a client that had gone.)
    """
    out = tmp_path_factory.mktemp("run") / "a"
    result = subprocess.run([sys.executable, "-m", "bot", "eval", str(qset), "--out", str(out)],
                            capture_output=True, text=True, env=dict(os.environ), timeout=600)
    assert result.returncode == 0, result.stderr
    return out, result.stdout, result.stderr


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action") and value and re.match(r"\s*(https?:)?//", value):
                self.external.append(f"{tag} {name}={value}")


def test_reports_are_written_and_readable(first_run: tuple[Path, str, str]) -> None:
    out, stdout, stderr = first_run
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["questions"] == len(SET)
    assert {r["id"] for r in report["questions"]} == {q["id"] for q in SET}
    row = next(r for r in report["questions"] if r["id"] == "ds-salary")
    assert row["passages"][0]["text"] and row["passages"][0]["section_id"] and "score" in row["passages"][0]
    assert row["answer"] and row["citations"] and row["rank"] == 1 and row["latency_ms"] > 0
    assert report["settings"]["top_k"] == 5 and "slack_bot_token" not in report["settings"]

    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Summary" in md and "| hit@5 |" in md and "## By tag" in md
    failures = md.split("## Failures", 1)[1]
    assert "wrong-gold" in failures and "retrieved instead" in failures  # with what came back instead
    assert "machine_learning_engineer#日本での推定年収dodaopenwork参照" in failures

    html = (out / "report.html").read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(html)
    assert "svg" in checker.tags and html.count("<svg") >= 3  # summary, tags, articles, latency charts
    assert checker.external == []
    assert "<script" not in html.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # escaped
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?://""", html)

    # The console: the summary table and where the reports are; no progress bar when not a terminal.
    assert re.search(r"hit@5\s+0\.\d{3}", stdout)
    assert f"report: {out}/report.{{json,md,html}}" in stdout
    assert "━" not in stderr and "\r" not in stderr
    assert all(line.startswith("careerbot: ") and "index" in line for line in stderr.splitlines())  # notices only


def test_replaying_the_questions_the_parts_are_learned_from_says_its_figures_are_in_sample(
    env: Path, qset: Path, tmp_path: Path, first_run: tuple[Path, str, str]
) -> None:
    assert "in-sample" not in first_run[2]  # the default training set is the shipped dev split, not this one
    result = subprocess.run([sys.executable, "-m", "bot", "eval", str(qset), "--out", str(tmp_path / "b")],
                            capture_output=True, text=True, env={**os.environ, "CAREERBOT_PARTS_TRAINING": str(qset.parent)},
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert (f"careerbot: note: {len(SET)} of these questions are in {qset.parent}, which the parts a question asks are "
            "learned from (CAREERBOT_PARTS_TRAINING): on them the figures are in-sample") in result.stderr.splitlines()


def test_unknown_section_is_reported_not_counted(first_run: tuple[Path, str, str]) -> None:
    out, stdout, _ = first_run
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["unknown"] == [
        {"id": "typo", "set": "small.jsonl", "field": "expected_sections", "refs": ["ai_product_manager#no-such-anchor"]}
    ]
    assert report["counts"]["section_questions"] == 4 and report["counts"]["excluded"] == 1
    typo = next(r for r in report["questions"] if r["id"] == "typo")
    assert typo["hit@1"] is None and typo["failures"] == []
    assert "unknown expected_sections in small.jsonl typo (excluded): ai_product_manager#no-such-anchor" in stdout
    assert "ai_product_manager#no-such-anchor" in (out / "report.md").read_text(encoding="utf-8")


def test_fail_under(first_run: tuple[Path, str, str], qset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, _, _ = first_run
    summary = json.loads((out / "report.json").read_text(encoding="utf-8"))["summary"]
    assert summary["hit@5"] == 0.75  # 3 of the 4 scored questions; wrong-gold misses
    assert summary["abstention_recall"] == 1.0

    code = main(["eval", str(qset), "--out", str(tmp_path / "fail"), "--fail-under", "hit@5=0.9",
                 "--fail-under", "abstention_recall=1.0"])
    stdout = capsys.readouterr().out
    assert code == 1
    assert "FAIL --fail-under hit@5=0.9: 0.7500 < 0.9" in stdout
    assert "abstention_recall" not in [line.split()[2] for line in stdout.splitlines() if line.startswith("FAIL")]
    gates = json.loads((tmp_path / "fail" / "report.json").read_text(encoding="utf-8"))["gates"]
    assert [(g["metric"], g["passed"]) for g in gates] == [("hit@5", False), ("abstention_recall", True)]

    code = main(["eval", str(qset), "--out", str(tmp_path / "pass"), "--fail-under", "hit@5=0.75",
                 "--fail-under", "abstention_recall=1.0", "--fail-under", "mrr@10=0.5"])
    assert code == 0 and "FAIL" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-under", "hit@7=0.9"], "unknown metric 'hit@7'"),
        (["--fail-under", "hit@5"], "expected METRIC=VALUE"),
        (["--fail-under", "hit@5=high"], "is not a number"),
        (["--fail-under", "latency_p95_ms=300"], "lower-is-better"),
        (["--set", "colour=blue"], "unknown setting 'colour'"),
        (["--set", "top_k=99"], "top_k: "),
        (["--compare", "/nonexistent/report.json"], "cannot read"),
        (["--backend", "no-such-backend"], "no-such-backend"),
    ],
)
def test_bad_arguments_are_errors(env: Path, qset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  args: list[str], message: str) -> None:
    assert main(["eval", str(qset), "--out", str(tmp_path / "x"), *args]) == 2
    [err] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("careerbot: error: ")]
    assert message in err
    assert not (tmp_path / "x").exists()


def test_compare_lists_questions_that_changed(first_run: tuple[Path, str, str], qset: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out, _, _ = first_run
    old = json.loads((out / "report.json").read_text(encoding="utf-8"))
    # An "old" run in which ds-salary missed and wrong-gold hit, with another top_k.
    for row in old["questions"]:
        if row["id"] == "ds-salary":
            row.update(hit=False, rank=None)
        if row["id"] == "wrong-gold":
            row.update(hit=True, rank=2)
    old["summary"]["hit@5"] = 0.5
    old["run"]["top_k"] = 4
    old_path = tmp_path / "old.json"
    old_path.write_text(json.dumps(old, ensure_ascii=False), encoding="utf-8")

    new_out = tmp_path / "b"
    assert main(["eval", str(qset), "--out", str(new_out), "--compare", str(old_path), "--set", "top_k=3"]) == 0
    stdout = capsys.readouterr().out
    assert "hit → miss (1): wrong-gold" in stdout
    assert "miss → hit (1): ds-salary" in stdout
    assert re.search(r"hit@5\s+0\.750\s+0\.500\s+\+0\.250", stdout)

    report = json.loads((new_out / "report.json").read_text(encoding="utf-8"))
    cmp = report["compare"]
    assert [c["id"] for c in cmp["miss_to_hit"]] == ["ds-salary"]
    assert [c["id"] for c in cmp["hit_to_miss"]] == ["wrong-gold"]
    assert next(m for m in cmp["metrics"] if m["metric"] == "hit@5")["delta"] == 0.25
    assert cmp["settings_changed"]["top_k"] == {"old": 5, "new": 3}
    assert report["run"]["top_k"] == 3 and report["settings"]["top_k"] == 3
    md = (new_out / "report.md").read_text(encoding="utf-8")
    assert "### Miss → hit (1)" in md and "`ds-salary`" in md.split("### Miss → hit", 1)[1]
    assert "### Hit → miss (1)" in md
    assert "ds-salary" in (new_out / "report.html").read_text(encoding="utf-8").split("Miss → hit", 1)[1]


def test_compare_rejects_a_file_that_is_not_a_report(env: Path, qset: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"hello": 1}', encoding="utf-8")
    assert main(["eval", str(qset), "--compare", str(bogus)]) == 2
    assert "not a careerbot eval report" in capsys.readouterr().err


def test_default_out_is_under_the_data_dir(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("- id: y-1\n  question: データサイエンティストの年収は？\n"
                   f"  expected_sections: ['{SALARY}']\n", encoding="utf-8")
    assert main(["eval", str(one)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("report: "))
    folder = Path(line.removeprefix("report: ").removesuffix("/report.{json,md,html}"))
    assert folder.parent == env / "eval" and re.fullmatch(r"\d{8}-\d{6}(-\d+)?", folder.name)
    assert json.loads((folder / "report.json").read_text(encoding="utf-8"))["summary"]["hit@1"] == 1.0
