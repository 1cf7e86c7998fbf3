"""Confidence calibration per embedder: where its cosines say "nothing" and where "a clear match".

Each embedder has its own cosine scale: use-m3's unrelated texts sit near 0.1 and
its clear matches above 0.45; multilingual-e5-small puts everything between 0.73
and 0.93. The retriever's confidence (`confidence_of`) maps the best cosine onto
[0, 1] with two thresholds, ``cosine_low`` (nothing) and ``cosine_high`` (a clear
match), then mixes in lexical coverage and the analysis. Those two thresholds are
the embedder's `Calibration`: data, not constants, so that ``CAREERBOT_MIN_CONFIDENCE``
(the abstention bar, a policy) means the same for every embedder.

Where the thresholds come from, first found wins (`resolve_calibration`):

0. ``setting`` — ``CAREERBOT_COSINE_LOW`` and ``CAREERBOT_COSINE_HIGH``, when an
   operator (or ``careerbot eval --set``) names them;
1. ``fitted`` — ``careerbot calibrate SET…`` fitted them on a question set with
   in-scope and out-of-scope items (`fit_calibration`) and stored them in the
   index manifest, for that embedder id;
2. ``built-in`` — the embedder ships them (its ``calibration`` attribute): use-m3
   and e5-small do, and so may a plug-in;
3. ``default`` — an uncalibrated plug-in: `DEFAULT_CALIBRATION`, under which
   meaning alone gives full confidence only to near-identical texts, and one
   warning line at start-up saying so.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CAREER_BONUS",
    "DEFAULT_CALIBRATION",
    "UNKNOWN_TOPIC_FACTOR",
    "Calibration",
    "CalibrationFit",
    "Evidence",
    "confidence_of",
    "fit_calibration",
    "resolve_calibration",
]

#: A question about a career the knowledge base covers closes this share of the gap to 1 (see `bot.retrieval`).
CAREER_BONUS = 0.5
#: Confidence is scaled by this when the question's topic is one the articles do not cover (see `bot.retrieval`).
UNKNOWN_TOPIC_FACTOR = 0.5
#: Cost of abstaining on an in-scope question, against 1 for answering an out-of-scope one, in the fit.
IN_SCOPE_WEIGHT = 1.0
#: The fit prefers thresholds that keep correct decisions at least this far from the bar (hinge loss).
MARGIN = 0.05


class Calibration(BaseModel):
    """An embedder's cosine thresholds, and where they came from.

    ``cosine_low`` < ``cosine_high``, both in [-1, 1]. ``embedder`` is the id they
    were fitted for (empty for a built-in or the default). A fitted calibration
    records its question sets and how they scored (``fit``).
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    cosine_low: float = Field(ge=-1.0, le=1.0)
    cosine_high: float = Field(ge=-1.0, le=1.0)
    source: Literal["setting", "fitted", "built-in", "default"] = "built-in"
    embedder: str = ""
    fit: CalibrationFit | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Calibration:
        if not self.cosine_low < self.cosine_high:
            raise ValueError("cosine_low must be below cosine_high")
        return self

    def describe(self) -> str:
        """``0.150–0.450 (built-in)``: one line for logs."""
        return f"{self.cosine_low:.3f}–{self.cosine_high:.3f} ({self.source})"


class CalibrationFit(BaseModel):
    """How a fitted calibration was made: on which questions, at which bar, with which result."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    sets: list[str]
    #: sha256 of each question set file, in ``sets`` order
    sha256: list[str]
    in_scope: int
    out_of_scope: int
    min_confidence: float
    #: on the fitted set: in-scope questions abstained on, out-of-scope ones answered
    in_scope_abstained: int
    out_of_scope_answered: int
    fitted_at: str = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


Calibration.model_rebuild()

#: For an embedder nobody calibrated: meaning alone gives full confidence only to near-identical texts, so
#: the decision leans on the words (coverage) and the analysis, which do not depend on the embedder.
DEFAULT_CALIBRATION = Calibration(cosine_low=0.5, cosine_high=0.95, source="default")


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a question's confidence is made of, independent of the embedder's cosine scale.

    ``dense`` is the best cosine that counts; ``coverage`` the share of the topic's
    term weight in the top passages; ``english`` says the dense signal stands alone;
    ``bonus`` the career bonus applies (the question names a covered career); ``damped`` the
    unknown-topic factor (once per reason); ``uncovered`` the question names a
    career no article covers (confidence 0); ``known_words`` the topic is in the articles'
    own words, which earns the same bonus where its meaning is not unrelated to them (a
    dense part above zero: 「今日のランチ何食べよう？」 shares words with them, not a meaning).
    """

    dense: float
    coverage: float
    english: bool
    bonus: bool
    damped: int
    uncovered: bool
    known_words: bool = False


def _dense_part(dense: np.ndarray | float, low: np.ndarray | float, high: np.ndarray | float) -> np.ndarray:
    return np.clip((np.asarray(dense) - low) / (np.asarray(high) - low), 0.0, 1.0)


def confidence_of(evidence: Evidence, calibration: Calibration) -> float:
    """The confidence in [0, 1] that ``evidence`` gives under ``calibration``."""
    part = float(_dense_part(evidence.dense, calibration.cosine_low, calibration.cosine_high))
    return float(_confidences([evidence], np.asarray([part]))[0])


def _confidences(evidence: Sequence[Evidence], dense_part: np.ndarray) -> np.ndarray:
    """Confidences of each evidence (rows) for dense parts ``dense_part`` of shape (…, len(evidence))."""
    coverage = np.asarray([e.coverage for e in evidence])
    english = np.asarray([e.english for e in evidence])
    known_words = np.asarray([e.known_words for e in evidence])
    bonus = np.asarray([e.bonus for e in evidence]) | (known_words & (np.asarray(dense_part) > 0))
    damp = np.asarray([UNKNOWN_TOPIC_FACTOR ** e.damped for e in evidence])
    uncovered = np.asarray([e.uncovered for e in evidence])
    conf = np.where(english, dense_part, 0.5 * dense_part + 0.5 * coverage)
    conf = np.where(bonus, conf + (1.0 - conf) * CAREER_BONUS, conf)
    conf = conf * damp
    return np.where(uncovered, 0.0, conf)


@dataclass(frozen=True, slots=True)
class FitResult:
    """The best thresholds for a set, and how the set scores with them (counts of errors)."""

    cosine_low: float
    cosine_high: float
    in_scope_abstained: int
    out_of_scope_answered: int
    #: sum over questions of how far each falls short of deciding correctly by `MARGIN` (smaller: more robust)
    hinge: float


def score(evidence: Sequence[Evidence], out_of_scope: Sequence[bool], calibration: Calibration, min_confidence: float) -> tuple[int, int]:
    """(in-scope questions abstained on, out-of-scope questions answered) under ``calibration``."""
    conf = np.asarray([confidence_of(e, calibration) for e in evidence])
    oos = np.asarray(out_of_scope, dtype=bool)
    abstain = conf < min_confidence
    return int((abstain & ~oos).sum()), int((~abstain & oos).sum())


def fit_calibration(
    evidence: Sequence[Evidence],
    out_of_scope: Sequence[bool],
    *,
    min_confidence: float,
    step: float = 0.005,
) -> FitResult:
    """The thresholds that decide the set best at the bar ``min_confidence``.

    Every pair ``low < high`` on a grid of ``step`` over the observed cosines is
    tried; the cost is ``IN_SCOPE_WEIGHT`` × in-scope abstentions + out-of-scope
    answers. Among the cheapest pairs, the one that keeps decisions clearest of the
    bar (least hinge loss at `MARGIN`) wins, then the widest, then the lowest: a
    steep, narrow pair would decide the set as well but turn confidence into a
    step. Needs at least one in-scope and one out-of-scope question.
    """
    oos = np.asarray(out_of_scope, dtype=bool)
    if len(evidence) != len(oos) or oos.all() or not oos.any():
        raise ValueError("calibration needs in-scope and out-of-scope questions")
    dense = np.asarray([e.dense for e in evidence])
    counted = np.asarray([not e.uncovered for e in evidence])  # confidence 0 whatever the thresholds
    seen = dense[counted] if counted.any() else dense
    lo_edge = np.floor((seen.min() - 0.1) / step) * step
    hi_edge = np.ceil((seen.max() + 0.1) / step) * step
    grid = np.round(np.arange(max(-1.0, lo_edge), min(1.0, hi_edge) + step / 2, step), 6)
    low, high = np.meshgrid(grid, grid, indexing="ij")
    keep = low < high - step / 2
    low, high = low[keep], high[keep]
    # (pairs, questions) dense parts, in chunks to bound memory
    best: tuple[float, float, float, float, float] | None = None  # (cost, hinge, -width, low, high)
    for start in range(0, len(low), 4096):
        lo, hi = low[start : start + 4096], high[start : start + 4096]
        conf = _confidences(evidence, _dense_part(dense[None, :], lo[:, None], hi[:, None]))
        abstain = conf < min_confidence
        cost = IN_SCOPE_WEIGHT * (abstain & ~oos).sum(axis=1) + (~abstain & oos).sum(axis=1)
        sure = np.where(oos, min_confidence - conf, conf - min_confidence)  # > 0: decided correctly
        hinge = np.maximum(0.0, MARGIN - sure).sum(axis=1)
        i = int(np.lexsort((lo, -(hi - lo), hinge, cost))[0])
        cand = (float(cost[i]), float(hinge[i]), float(lo[i] - hi[i]), float(lo[i]), float(hi[i]))
        if best is None or cand < best:
            best = cand
    assert best is not None
    cal = Calibration(cosine_low=best[3], cosine_high=best[4], source="fitted")
    missed, answered = score(evidence, oos.tolist(), cal, min_confidence)
    return FitResult(
        cosine_low=best[3], cosine_high=best[4], in_scope_abstained=missed, out_of_scope_answered=answered,
        hinge=best[1],
    )


def resolve_calibration(
    *,
    embedder_id: str,
    stored: Calibration | None,
    shipped: Calibration | None,
    setting: tuple[float, float] | None = None,
) -> Calibration:
    """The calibration to use: ``setting`` (``CAREERBOT_COSINE_LOW/HIGH``), else ``stored`` (fitted, in the
    manifest) if it is for ``embedder_id``, else ``shipped`` (the embedder's own), else `DEFAULT_CALIBRATION`."""
    if setting is not None:
        return Calibration(cosine_low=float(setting[0]), cosine_high=float(setting[1]), source="setting")
    if stored is not None and stored.embedder == embedder_id:
        return stored
    if shipped is not None:
        return shipped.model_copy(update={"source": "built-in"})
    return DEFAULT_CALIBRATION
