"""The runner on the real advisor and knowledge base."""

from __future__ import annotations

import pytest

from bot.eval.report import render_markdown
from bot.eval.runner import METRICS, run_eval, summarize
from bot.pipeline import Advisor
from bot.questions import Question

SALARY = "data_scientist#日本での推定年収dodaopenwork参照"


def _q(**fields) -> tuple[str, Question]:
    return ("small.jsonl", Question.model_validate(fields))


@pytest.fixture(scope="module")
def report(advisor: Advisor) -> dict:
    questions = [
        _q(id="salary", question="データサイエンティストの年収は？", expected_sections=[SALARY], tags=["salary"]),
        # A follow-up: the career comes only from the earlier turn.
        _q(id="followup", question="年収はどれくらい？", turns=["データサイエンティストについて教えて"],
           expected_sections=[SALARY], tags=["followup"]),
        # A heading instead of an id resolves too.
        _q(id="heading", question="データサイエンティストは誰と協業する？", expected_sections=["4️⃣ データサイエンティストの協業スタイル"]),
        _q(id="text", question="新卒データサイエンティストの仕事は？", expected_text=["ＳＱＬによるデータ抽出"]),
        _q(id="text-miss", question="データサイエンティストの年収は？", expected_text=["this string is in no article"]),
        _q(id="unknown", question="データサイエンティストの年収は？", expected_sections=["data_scientist#no-such-section"]),
        _q(id="compare", question="データサイエンティストと機械学習エンジニアの年収の違いは？",
           expected_sections=[SALARY, "machine_learning_engineer#日本での推定年収dodaopenwork参照"],
           expected_text=["1,100〜1,800+", "1,300〜2,200+"],
           expected_articles=["data_scientist", "machine_learning_engineer"], tags=["comparison"]),
        _q(id="weather", question="東京の明日の天気は？", out_of_scope=True, tags=["not-career"]),
    ]
    return run_eval(advisor, questions)


def _row(report: dict, qid: str) -> dict:
    return next(r for r in report["questions"] if r["id"] == qid)


def test_rows_hold_what_was_asked_retrieved_and_answered(report: dict, advisor: Advisor) -> None:
    row = _row(report, "salary")
    assert row["rank"] == 1 and row["hit@1"] == 1.0 and row["rr@10"] == 1.0
    assert row["passages"] and len(row["passages"]) == advisor.settings.top_k
    first = row["passages"][0]
    assert first["section_id"] == SALARY and first["gold"] and first["text"] and first["title"]
    assert len(row["ranking"]) == 10  # distinct sections for the @10 metrics
    assert not row["ranking_mismatch"]  # the answer saw the first top_k passages of the deeper ranking
    assert row["answer"] and row["citations"][0]["section_id"] == SALARY
    assert row["latency_ms"] > 0 and not row["failures"]


def test_turns_are_passed_as_history(report: dict) -> None:
    row = _row(report, "followup")
    assert row["turns"] == ["データサイエンティストについて教えて"]
    assert row["careers"] == ["data_scientist"]  # only the earlier turn names the career
    assert row["hit@5"] == 1.0


def test_headings_expected_text_and_comparisons(report: dict) -> None:
    heading = _row(report, "heading")
    assert heading["gold_sections"] == ["data_scientist#データサイエンティストの協業スタイル"]
    assert heading["article"] == "data_scientist"
    text = _row(report, "text")
    assert text["text_rank"] is not None and text["section_eval"] is False and text["hit@1"] is None
    cmp = _row(report, "compare")
    assert cmp["covers_articles"] is True and cmp["recall@5"] is not None
    assert report["summary"]["comparison_coverage"] == 1.0


def test_answer_level_metrics(report: dict) -> None:
    cmp = _row(report, "compare")
    body_has = {t: t in cmp["answer"].split("**出典**")[0] for t in ("1,100〜1,800+", "1,300〜2,200+")}
    assert cmp["answer_both"] == float(all(body_has.values()))  # each article's figure in what the user reads
    assert cmp["answer_hit"] == float(any(body_has.values()))
    assert cmp["text_both@5"] is not None and cmp["noise"] == len({c["section_id"] for c in cmp["citations"]} - set(cmp["gold_sections"]))
    miss = _row(report, "text-miss")
    assert miss["answer_hit"] == 0.0 and "expected text not in the answer" in miss["failures"]
    assert miss["answer_both"] is None and miss["noise"] is None  # no comparison; not scored on sections
    assert _row(report, "weather")["answer_hit"] is None
    md = render_markdown(report)
    failure = md.split("### `text-miss`", 1)[1].split("\n### ", 1)[0]
    assert "**expected text not in the answer**" in failure
    assert "- answer:" in failure and "    " + miss["answer"].splitlines()[0] in failure  # the answer, shown as read
    s = report["summary"]
    in_scope = [r for r in report["questions"] if not r["out_of_scope"]]
    assert s["in_scope_abstention"] == pytest.approx(sum(r["abstained"] for r in in_scope) / len(in_scope), abs=1e-4)
    assert s["answer_hit"] == pytest.approx(
        sum(r["answer_hit"] for r in in_scope if r["answer_hit"] is not None)
        / sum(1 for r in in_scope if r["answer_hit"] is not None), abs=1e-4)


def test_unknown_sections_are_reported_and_excluded(report: dict) -> None:
    row = _row(report, "unknown")
    assert row["excluded"] and not row["section_eval"]
    assert row["hit@5"] is None and row["rank"] is None and row["failures"] == []
    assert report["unknown"] == [
        {"id": "unknown", "set": "small.jsonl", "field": "expected_sections", "refs": ["data_scientist#no-such-section"]}
    ]
    assert report["counts"]["excluded"] == 1
    assert report["counts"]["section_questions"] == 4  # salary, followup, heading, compare


def test_out_of_scope_and_summary(report: dict) -> None:
    weather = _row(report, "weather")
    assert weather["abstained"] and weather["hit"] is True and weather["rank"] is None
    s = report["summary"]
    assert set(s) == set(METRICS)
    assert s["abstention_recall"] == 1.0
    scored = [r for r in report["questions"] if r["section_eval"]]
    assert s["hit@5"] == pytest.approx(sum(r["hit@5"] for r in scored) / len(scored), abs=1e-4)
    assert s["latency_p50_ms"] <= s["latency_p95_ms"] <= s["latency_max_ms"]
    assert summarize(report["questions"]) == s  # the summary is a function of the rows alone
    assert report["by_tag"]["not-career"]["abstained"] == 1.0
    assert report["by_article"]["data_scientist"]["n"] >= 3
