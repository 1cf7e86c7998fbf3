"""Confidence calibration: the fit, where thresholds come from, and how the manifest keeps them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.calibration import (
    DEFAULT_CALIBRATION,
    Calibration,
    CalibrationFit,
    Evidence,
    confidence_of,
    fit_calibration,
    resolve_calibration,
    score,
)
from bot.embedders.use_m3 import UseM3Embedder
from bot.errors import ConfigError, IndexStoreError
from bot.index import build_index, open_index, read_index, store_calibration
from bot.pipeline import Advisor
from bot.settings import load_settings
from tests.conftest import KNOWLEDGE, make_settings
from tests.core.test_cli import run
from tests.core.test_index import CountingEmbedder, corpus


def english(dense: float) -> Evidence:
    """An English question: its confidence is the dense part alone."""
    return Evidence(dense=dense, coverage=0.0, english=True, bonus=False, damped=0, uncovered=False)


def test_confidence_maps_the_cosine_between_the_thresholds() -> None:
    cal = Calibration(cosine_low=0.2, cosine_high=0.6)
    assert [round(confidence_of(english(c), cal), 3) for c in (0.1, 0.2, 0.4, 0.6, 0.9)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    ja = Evidence(dense=0.4, coverage=1.0, english=False, bonus=True, damped=1, uncovered=False)
    assert confidence_of(ja, cal) == pytest.approx((0.75 + 0.25 * 0.5) * 0.5)  # mix, bonus, then damping
    assert confidence_of(Evidence(dense=0.9, coverage=1.0, english=False, bonus=True, damped=0, uncovered=True), cal) == 0.0


def test_the_articles_words_earn_the_bonus_only_with_a_meaning_not_unrelated_to_them() -> None:
    cal = Calibration(cosine_low=0.2, cosine_high=0.6)
    words = dict(coverage=1.0, english=False, bonus=False, damped=0, uncovered=False, known_words=True)
    assert confidence_of(Evidence(dense=0.1, **words), cal) == pytest.approx(0.5)  # words alone, no bonus
    assert confidence_of(Evidence(dense=0.3, **words), cal) == pytest.approx(0.625 + 0.375 * 0.5)
    career = dict(words, bonus=True)  # a covered career named: the bonus whatever the cosine
    assert confidence_of(Evidence(dense=0.1, **career), cal) == pytest.approx(0.75)


def test_the_fit_finds_where_an_embedders_cosines_separate_the_questions() -> None:
    """Off-topic questions near 0.78, in-scope ones from 0.84 up (an e5-like range): the fit puts the bar between."""
    in_scope = [english(c) for c in (0.84, 0.86, 0.88, 0.90, 0.93)]
    off_topic = [english(c) for c in (0.76, 0.78, 0.79, 0.80)]
    labels = [False] * len(in_scope) + [True] * len(off_topic)
    result = fit_calibration(in_scope + off_topic, labels, min_confidence=0.5)
    assert (result.in_scope_abstained, result.out_of_scope_answered) == (0, 0)
    fitted = Calibration(cosine_low=result.cosine_low, cosine_high=result.cosine_high)
    assert score(in_scope + off_topic, labels, fitted, 0.5) == (0, 0)
    bar = (result.cosine_low + result.cosine_high) / 2  # the cosine whose confidence is 0.5
    assert 0.80 < bar < 0.84
    # use-m3's thresholds answer every one of them: e5's unrelated texts are above 0.45.
    assert score(in_scope + off_topic, labels, Calibration(cosine_low=0.15, cosine_high=0.45), 0.5) == (0, 4)


def test_the_fit_needs_both_kinds_of_question() -> None:
    with pytest.raises(ValueError, match="in-scope and out-of-scope"):
        fit_calibration([english(0.5), english(0.6)], [False, False], min_confidence=0.5)


def test_where_thresholds_come_from() -> None:
    fitted = Calibration(cosine_low=0.3, cosine_high=0.5, source="fitted", embedder="x")
    shipped = Calibration(cosine_low=0.1, cosine_high=0.4)
    assert resolve_calibration(embedder_id="x", stored=fitted, shipped=shipped, setting=(0.2, 0.3)).source == "setting"
    assert resolve_calibration(embedder_id="x", stored=fitted, shipped=shipped) == fitted
    assert resolve_calibration(embedder_id="y", stored=fitted, shipped=shipped).cosine_low == 0.1  # fitted for another
    assert resolve_calibration(embedder_id="y", stored=None, shipped=None) == DEFAULT_CALIBRATION


def test_cosine_settings_come_in_pairs_and_in_order() -> None:
    with pytest.raises(ConfigError, match="^CAREERBOT_COSINE_LOW and CAREERBOT_COSINE_HIGH are set together"):
        load_settings(cosine_low=0.2)
    with pytest.raises(ConfigError, match="^CAREERBOT_COSINE_LOW must be below CAREERBOT_COSINE_HIGH$"):
        load_settings(cosine_low=0.5, cosine_high=0.2)


def _fitted(embedder_id: str) -> Calibration:
    fit = CalibrationFit(sets=["s.jsonl"], sha256=["0" * 64], in_scope=3, out_of_scope=2, min_confidence=0.5,
                         in_scope_abstained=0, out_of_scope_answered=1, fitted_at="2026-12-01T00:00:00+00:00")
    return Calibration(cosine_low=0.25, cosine_high=0.55, source="fitted", embedder=embedder_id, fit=fit)


def test_the_manifest_keeps_a_calibration_for_its_embedder_only(tmp_path: Path) -> None:
    inner = UseM3Embedder()
    embedder = CountingEmbedder(inner)
    passages = corpus(4)
    index, _ = build_index(tmp_path, passages, embedder)
    assert index.calibration is None
    path = store_calibration(index, _fitted(embedder.id))
    assert json.loads(path.read_text("utf-8"))["calibration"]["cosine_low"] == 0.25
    assert read_index(tmp_path, passages, embedder).calibration == _fitted(embedder.id)
    # A rebuild for changed passages by the same embedder carries it over; another embedder's index does not.
    changed = corpus(4, changed=1)
    rebuilt, plan = open_index(tmp_path, changed, embedder)
    assert plan is not None and rebuilt.calibration == _fitted(embedder.id)
    other = CountingEmbedder(inner, id_suffix="-other")
    assert open_index(tmp_path, changed, other)[0].calibration is None
    with pytest.raises(ValueError, match="cannot go into an index"):
        store_calibration(rebuilt, _fitted("someone-else"))


def test_a_malformed_calibration_block_is_one_line_and_the_index_rebuilt(tmp_path: Path) -> None:
    embedder = CountingEmbedder(UseM3Embedder())
    passages = corpus(3)
    index, _ = build_index(tmp_path, passages, embedder)
    manifest = index.path / "manifest.json"
    data = json.loads(manifest.read_text("utf-8"))
    data["calibration"] = {"cosine_low": 0.6, "cosine_high": 0.2, "source": "fitted", "embedder": embedder.id}
    manifest.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IndexStoreError, match=r"malformed \(calibration: Value error, cosine_low must be below cosine_high\)"):
        read_index(tmp_path, passages, embedder)
    notes: list[str] = []
    rebuilt, plan = open_index(tmp_path, passages, embedder, notify=notes.append)
    assert plan is not None and rebuilt.calibration is None and "malformed" in notes[0]


def test_an_in_memory_index_cannot_store_a_calibration(tmp_path: Path) -> None:
    embedder = CountingEmbedder(UseM3Embedder())
    index, _ = build_index(tmp_path, corpus(2), embedder)
    index.path = None
    with pytest.raises(IndexStoreError, match="in memory only"):
        store_calibration(index, _fitted(embedder.id))


def test_use_m3_ships_the_thresholds_the_eval_gates_were_set_with(advisor: Advisor) -> None:
    calibration = advisor.retriever.calibration
    assert (calibration.cosine_low, calibration.cosine_high, calibration.source) == (0.15, 0.45, "built-in")


def test_settings_override_every_calibration(tmp_path: Path) -> None:
    advisor = Advisor(settings=make_settings(tmp_path, cosine_low=0.3, cosine_high=0.35))
    assert advisor.retriever.calibration.describe() == "0.300–0.350 (setting)"


@pytest.mark.slow
def test_calibrate_without_out_of_scope_questions_is_one_line(tmp_path: Path) -> None:
    env = {"CAREERBOT_KNOWLEDGE_DIR": str(KNOWLEDGE), "CAREERBOT_DATA_DIR": str(tmp_path), "CAREERBOT_THREADS": "1"}
    only_in_scope = KNOWLEDGE / "questions" / "dev" / "data_scientist.jsonl"
    result = run(["calibrate", str(only_in_scope)], env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"careerbot: error: {only_in_scope}: no out-of-scope questions; calibration needs both "
        "(out_of_scope: true marks the ones the bot must abstain on)"
    )

