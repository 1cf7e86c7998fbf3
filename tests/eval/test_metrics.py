"""The metric functions against examples computed by hand."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from bot.answer import strip_link_lines
from bot.eval import metrics as m


def test_dedupe_keeps_the_best_rank_of_each_section() -> None:
    assert m.dedupe(["a", "a", "b", "a", "c", "b"]) == ["a", "b", "c"]
    assert m.dedupe([]) == []


def test_first_rank_and_hit_at_k() -> None:
    ranking = ["x", "y", "g", "z"]
    assert m.first_rank(ranking, {"g"}) == 3
    assert m.first_rank(ranking, {"nope"}) is None
    assert [m.hit_at(3, k) for k in (1, 3, 5)] == [0.0, 1.0, 1.0]
    assert [m.hit_at(1, k) for k in (1, 3, 5)] == [1.0, 1.0, 1.0]
    assert [m.hit_at(None, k) for k in (1, 3, 5)] == [0.0, 0.0, 0.0]


def test_dedupe_changes_ranks_as_documented() -> None:
    # Passages of sections a, a, g: g is the 2nd distinct section, not the 3rd passage.
    sections = m.dedupe(["a", "a", "g"])
    assert m.first_rank(sections, {"g"}) == 2
    assert m.reciprocal_rank(m.first_rank(sections, {"g"})) == 0.5
    assert m.hit_at(m.first_rank(sections, {"g"}), 1) == 0.0


def test_reciprocal_rank_is_cut_at_k() -> None:
    assert m.reciprocal_rank(1) == 1.0
    assert m.reciprocal_rank(4) == 0.25
    assert m.reciprocal_rank(10) == 0.1
    assert m.reciprocal_rank(11) == 0.0  # beyond MRR@10
    assert m.reciprocal_rank(None) == 0.0
    # MRR over three questions ranked 1, 2 and not found: (1 + 1/2 + 0) / 3
    assert m.mean(m.reciprocal_rank(r) for r in (1, 2, None)) == pytest.approx(0.5)


def test_ndcg_at_10_by_hand() -> None:
    # Gold {g1, g2, g3}; the ranking has g1 at 2 and g2 at 4.
    # DCG  = 1/log2(3) + 1/log2(5)          = 0.630930 + 0.430677 = 1.061606
    # IDCG = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.630930 + 0.5  = 2.130930
    # nDCG = 1.061606 / 2.130930 = 0.498189
    ranking = ["x", "g1", "y", "g2", "z"]
    assert m.ndcg_at(ranking, {"g1", "g2", "g3"}, 10) == pytest.approx(0.498189, abs=1e-5)
    # One gold section at rank 3: 1/log2(4) / 1 = 0.5
    assert m.ndcg_at(["x", "y", "g"], {"g"}) == pytest.approx(0.5)
    assert m.ndcg_at(["g1", "g2"], {"g1", "g2"}) == pytest.approx(1.0)
    assert m.ndcg_at(["x", "y"], {"g"}) == 0.0
    assert m.ndcg_at(["x"], set()) == 0.0
    # Past k nothing counts: gold at rank 11 of a 10-cut.
    assert m.ndcg_at([f"x{i}" for i in range(10)] + ["g"], {"g"}, 10) == 0.0
    # More gold than k: IDCG has only k terms, so a perfect top 2 scores 1.
    assert m.ndcg_at(["g1", "g2"], {"g1", "g2", "g3"}, 2) == pytest.approx(1.0)


def test_recall_at_5() -> None:
    ranking = ["g1", "x", "y", "z", "w", "g2"]
    assert m.recall_at(ranking, {"g1", "g2"}, 5) == 0.5
    assert m.recall_at(ranking, {"g1", "g2"}, 6) == 1.0
    assert m.recall_at(ranking, {"g3", "g4", "g5", "g1"}, 5) == 0.25
    assert m.recall_at(ranking, set(), 5) == 0.0


def test_text_rank_normalises_nfkc_case_and_markup() -> None:
    passages = ["何も関係ない文章。", "| ジュニア | **SQLによる**データ抽出 |", "AI  Product Manager とは"]
    assert m.text_rank(passages, ["ＳＱＬによるデータ抽出"]) == 2  # full-width → NFKC, markup dropped
    assert m.text_rank(passages, ["ai product manager"]) == 3  # case and runs of spaces
    assert m.text_rank(passages, ["存在しない", "関係ない"]) == 1  # any expected string counts
    assert m.text_rank(passages, ["存在しない"]) is None
    assert m.text_rank(passages, []) is None


def test_abstention_precision_and_recall() -> None:
    abstained = [True, True, False, False, True]
    out_of_scope = [True, False, True, False, True]
    # TP = 2 (items 0 and 4), FP = 1 (item 1), FN = 1 (item 2)
    assert m.abstention_precision(abstained, out_of_scope) == pytest.approx(2 / 3)
    assert m.abstention_recall(abstained, out_of_scope) == pytest.approx(2 / 3)


def test_abstention_zero_division_is_none() -> None:
    # Nothing abstained: precision is undefined; recall is 0 of 1.
    assert m.abstention_precision([False, False], [True, False]) is None
    assert m.abstention_recall([False, False], [True, False]) == 0.0
    # No out-of-scope question: recall is undefined; every abstention is a false one.
    assert m.abstention_recall([True, False], [False, False]) is None
    assert m.abstention_precision([True, False], [False, False]) == 0.0
    assert m.abstention_precision([], []) is None and m.abstention_recall([], []) is None
    with pytest.raises(ValueError):
        m.abstention_recall([True], [True, False])


def test_citation_precision_and_coverage() -> None:
    assert m.citation_precision(["a", "a", "b"], {"a", "c"}) == 0.5  # distinct cited ids: a (gold), b
    assert m.citation_precision(["a"], {"a"}) == 1.0
    assert m.citation_precision([], {"a"}) is None
    assert m.covers_articles({"ds", "mle", "pm"}, ["ds", "mle"]) is True
    assert m.covers_articles({"ds"}, ["ds", "mle"]) is False


def test_answer_text_matching() -> None:
    assert m.contains_text("- 経験年数: **シニア** / 年収: 1,100〜1,800+ [1]", ["１，１００〜１，８００+"])
    assert not m.contains_text("年収の表", ["1,100〜1,800+"])
    text = "- 『統計学入門』 [1]\n\n**出典**\n[1] 記事 › 学習方法 — https://x.example/ds#%E5%AD%A6%E7%BF%92\n"
    body = strip_link_lines(text, ["https://x.example/ds#%E5%AD%A6%E7%BF%92"])
    assert "統計学入門" in body and "学習方法" not in body  # the source line is gone, and its empty label
    body = strip_link_lines("[1] 記事 › 学習方法 — https://x.example/ds#学習", ["https://x.example/ds#%E5%AD%A6%E7%BF%92"])
    assert body == ""  # the readable (decoded) form of a link counts too
    found = m.articles_of_texts(["450〜700", "PyTorch", "nowhere"], {"ds": "年収 450〜700", "mle": "pytorch, 450〜700"})
    assert found == {"ds": ["450〜700"], "mle": ["450〜700", "PyTorch"]}


def test_percentiles_by_hand() -> None:
    xs = [4.0, 1.0, 3.0, 2.0]
    # sorted 1 2 3 4; p50 at position 1.5 → 2.5; p95 at 2.85 → 3 + 0.85 = 3.85
    assert m.percentile(xs, 50) == pytest.approx(2.5)
    assert m.percentile(xs, 95) == pytest.approx(3.85)
    assert m.percentile(xs, 0) == 1.0 and m.percentile(xs, 100) == 4.0
    assert m.percentile([7.0], 95) == 7.0
    assert m.percentile([], 50) is None
    with pytest.raises(ValueError):
        m.percentile(xs, 101)


def test_percentile_matches_numpy() -> None:
    rng = random.Random(6)
    for n in (2, 3, 10, 101):
        xs = [rng.uniform(0, 500) for _ in range(n)]
        for q in (5, 50, 95, 99):
            assert m.percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))


def test_mean_and_rate_skip_nothing_to_measure() -> None:
    assert m.mean([1.0, None, 0.0]) == 0.5
    assert m.mean([None]) is None
    assert m.rate([True, False, True, True]) == 0.75
    assert m.rate([]) is None
    assert math.isclose(m.mean([1 / 3, 2 / 3]), 0.5)
