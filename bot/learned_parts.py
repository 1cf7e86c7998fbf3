"""The part of an article a question asks about, learned from question sets whose answers are known.

Every in-scope question of the training sets (`Settings.parts_training`; by default the dev split,
``knowledge/questions/dev``) names the sections that answer it, and their role (salary, interview, the
main work…: `AspectLexicon.role_of`) is the part it asks about. A multinomial logistic regression
(scikit-learn) on the questions' vectors learns to tell the parts apart by meaning, in both languages,
from far more wordings than the lexicon's cue words and examples hold ("what tooling do they rely on",
"is that domain background a plus"). The retriever asks it where the lexicon is silent, and lets it
overrule a cue only when it is sure (`FILL_PROBABILITY`, `OVERRULE_PROBABILITY`; see `bot.retrieval`).
A second regression, on the questions with one expected section, learns the section itself: the
ranking lifts each passage by its section's probability (`RankingWeights.section`).

The questions it is fitted on are in-sample for it: only a split it never saw (``test``) measures it.
The fit depends on the embedder and on the questions, their parts and sections only; it is kept in
``<data_dir>/parts/<key>.npz`` (written atomically) and made again when any of them changes.
Predicting is one matrix product per regression.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .aspects import AspectLexicon
from .embedders import Embedder
from .files import write_atomically
from .knowledge import KnowledgeBase
from .questions import load_question_sets, question_files, resolve_sections

__all__ = [
    "FILL_PROBABILITY",
    "IN_SCOPE_PROBABILITY",
    "OUT_OF_SCOPE",
    "OUT_OF_SCOPE_PROBABILITY",
    "OVERRULE_PROBABILITY",
    "LearnedParts",
    "TrainingSet",
    "fit_learned_parts",
    "load_learned_parts",
    "training_pairs",
]

log = logging.getLogger(__name__)

#: A question about a career that names no part takes the learned one when at least this probable.
FILL_PROBABILITY = 0.3
#: A cue's part gives way to the learned one when that is none of the cue's roles and at least this
#: probable ("software" in "how good does my plain software engineering have to be" is not the tools).
#: Both were chosen on the dev split, five-fold out of fold (the parts right: +42, −2 at these values).
OVERRULE_PROBABILITY = 0.7
#: The inverse strength of the fit's L2 regularisation (scikit-learn's ``C``).
INVERSE_REGULARISATION = 4.0
#: Fewer examples than this, or a single part, teach nothing: no model.
MIN_EXAMPLES = 20
#: The "part" of the questions the articles do not answer: learned beside the parts, so that a question
#: like them is steered to none ("When is the next MLOps conference?" is no salary question).
OUT_OF_SCOPE = "out_of_scope"
#: A question the model takes for one like the out-of-scope ones at least this surely is not covered:
#: confidence 0, as for a career no article covers. Chosen on dev, five-fold out of fold: the lowest of
#: 0.5, 0.6 … 0.9 at which dev's in-scope abstention stays within 0.02 (there: out of scope +17, in-scope
#: abstention +3).
OUT_OF_SCOPE_PROBABILITY = 0.8
#: A question the model takes for one like the in-scope ones this surely (out of scope below this) keeps its
#: confidence whole: the words the articles never use, the figure their passage lacks, which otherwise halve it
#: (see `bot.retrieval`), are then how it is put, not what it asks about (「サクッとAIデモ作るときのツール」,
#: 「全体をカバーしてる本」). Chosen on dev, five-fold out of fold: 0.05 and 0.1 alike (in-scope abstention
#: 19 -> 15, out of scope answered +1); 0.2 answers 4 more out-of-scope questions for 2 fewer abstentions.
IN_SCOPE_PROBABILITY = 0.1
#: Bumped when the stored file's layout or the fit changes, so older files are not read.
FORMAT = 3


@dataclass(frozen=True, slots=True)
class LearnedParts:
    """A fitted model: for a question vector, the part most probably asked and its probability."""

    parts: tuple[str, ...]
    #: One row per part, one column per vector dimension.
    weights: np.ndarray
    bias: np.ndarray
    #: How many questions it was fitted on.
    examples: int
    #: The careers (slugs) its in-scope questions are about: of a question about another one (an article
    #: added since, 「UXデザイナーの年収は？」 where dev's questions about UX designers are out of scope) it
    #: knows nothing.
    careers: frozenset[str] = frozenset()
    #: The sections (ids, and `OUT_OF_SCOPE`) of the second regression, its weights and bias; () when
    #: the questions with one expected section were too few.
    sections: tuple[str, ...] = ()
    section_weights: np.ndarray | None = None
    section_bias: np.ndarray | None = None

    def probabilities(self, vector: np.ndarray) -> dict[str, float]:
        """Each part's probability for a query vector (any length; it is scaled to unit length first)."""
        return _softmax(self.parts, self.weights, self.bias, vector)

    def section_probabilities(self, vector: np.ndarray) -> dict[str, float]:
        """Each learned section's probability for a query vector; empty when no section was learned."""
        if not self.sections or self.section_weights is None or self.section_bias is None:
            return {}
        return _softmax(self.sections, self.section_weights, self.section_bias, vector)

    def predict(self, vector: np.ndarray) -> tuple[str, float]:
        """(part, probability) of the most probable part for a query vector."""
        return max(self.probabilities(vector).items(), key=lambda kv: kv[1])


def _softmax(classes: Sequence[str], weights: np.ndarray, bias: np.ndarray, vector: np.ndarray) -> dict[str, float]:
    v = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    logits = weights @ (v / norm if norm else v) + bias
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return {c: float(x) for c, x in zip(classes, p, strict=True)}


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """What the parts are learned from: (question, part) pairs, the careers the in-scope ones are about, and
    (question, section id) pairs of the questions with one expected section (and the out-of-scope ones)."""

    pairs: tuple[tuple[str, str], ...]
    careers: frozenset[str]
    sections: tuple[tuple[str, str], ...] = ()


def training_pairs(paths: Iterable[Path], *, knowledge: KnowledgeBase, aspects: AspectLexicon) -> TrainingSet:
    """(question, part) for every in-scope question of the sets at ``paths`` whose expected sections all
    have one role that is also an aspect (a comparison of two salaries is the salary; one expecting the
    main work and a learning step teaches nothing), and (question, `OUT_OF_SCOPE`) for every out-of-scope
    one; with the careers of those in-scope questions' sections, and (question, section id) for every
    in-scope question with one expected section and every out-of-scope one (as `OUT_OF_SCOPE`).
    `QuestionSetError` names a malformed file."""
    questions = load_question_sets(paths)
    resolved = resolve_sections(questions, knowledge).sections
    by_id = {s.id: s for s in knowledge.sections}
    pairs, careers, sections = [], set(), []
    for q in questions:
        if q.out_of_scope:
            pairs.append((q.question, OUT_OF_SCOPE))
            sections.append((q.question, OUT_OF_SCOPE))
            continue
        if len(expected := resolved.get(q.id, ())) == 1:
            sections.append((q.question, next(iter(expected))))
        roles = {aspects.role_of(by_id[i]) for i in resolved.get(q.id, ())}
        if len(roles) == 1 and (role := roles.pop()) is not None and aspects.aspect(role) is not None:
            pairs.append((q.question, role))
            careers |= {by_id[i].slug for i in resolved[q.id]}
    return TrainingSet(pairs=tuple(pairs), careers=frozenset(careers), sections=tuple(sections))


def fit_learned_parts(pairs: Sequence[tuple[str, str]], *, embedder: Embedder,
                      careers: frozenset[str] = frozenset(),
                      sections: Sequence[tuple[str, str]] = ()) -> LearnedParts | None:
    """The model of ``pairs`` (question, part) by ``embedder``'s query vectors, about ``careers``, with the
    sections of ``sections`` (question, section id) when those are enough; None when ``pairs`` are too few."""
    parts = sorted({part for _, part in pairs})
    if len(pairs) < MIN_EXAMPLES or len(parts) < 2:
        return None
    texts = list(dict.fromkeys([q for q, _ in pairs] + [q for q, _ in sections]))
    x = np.asarray(embedder.embed_queries(texts), dtype=np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    row = {t: i for i, t in enumerate(texts)}
    weights, bias = _fit(x[[row[q] for q, _ in pairs]], [p for _, p in pairs], parts)
    ids = sorted({s for _, s in sections})
    section_weights = section_bias = None
    if len(sections) >= MIN_EXAMPLES and len(ids) >= 2:
        section_weights, section_bias = _fit(x[[row[q] for q, _ in sections]], [s for _, s in sections], ids)
    return LearnedParts(parts=tuple(parts), weights=weights, bias=bias, examples=len(pairs), careers=careers,
                        sections=tuple(ids) if section_weights is not None else (),
                        section_weights=section_weights, section_bias=section_bias)


def _fit(x: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Weights (one row per class, in the order of ``classes``) and bias of a logistic regression of ``x``."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=INVERSE_REGULARISATION, max_iter=5000).fit(x, list(labels))
    weights, bias = model.coef_, model.intercept_
    if len(classes) == 2:  # scikit-learn keeps one row for two classes: the second's logit against the first's 0
        return np.vstack([np.zeros_like(weights), weights]), np.concatenate([[0.0], bias])
    order = [list(model.classes_).index(c) for c in classes]
    return weights[order], bias[order]


def _key(training: TrainingSet, embedder_id: str) -> str:
    blob = json.dumps([FORMAT, embedder_id, INVERSE_REGULARISATION, sorted(training.pairs), sorted(training.careers),
                       sorted(training.sections)], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _read(path: Path) -> LearnedParts | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            parts = tuple(str(p) for p in f["parts"])
            weights, bias, examples = f["weights"], f["bias"], int(f["examples"])
            careers = frozenset(str(c) for c in f["careers"])
            sections = tuple(str(s) for s in f["sections"])
            section_weights, section_bias = f["section_weights"], f["section_bias"]
    except (OSError, KeyError, ValueError) as exc:
        log.warning("learned parts at %s are unreadable (%s); fitting them again", path, exc.__class__.__name__)
        return None
    if weights.ndim != 2 or weights.shape[0] != len(parts) or bias.shape != (len(parts),):
        log.warning("learned parts at %s are malformed; fitting them again", path)
        return None
    if sections and (section_weights.ndim != 2 or section_weights.shape[0] != len(sections)
                     or section_bias.shape != (len(sections),)):
        log.warning("learned parts at %s are malformed; fitting them again", path)
        return None
    return LearnedParts(parts=parts, weights=weights, bias=bias, examples=examples, careers=careers,
                        sections=sections, section_weights=section_weights if sections else None,
                        section_bias=section_bias if sections else None)


def _write(path: Path, model: LearnedParts) -> None:
    """Store ``model`` at ``path`` atomically, flushed to disk."""
    buffer = io.BytesIO()
    np.savez(buffer, parts=np.asarray(model.parts), weights=model.weights, bias=model.bias,
             examples=np.asarray(model.examples), careers=np.asarray(sorted(model.careers), dtype=str),
             sections=np.asarray(model.sections, dtype=str),
             section_weights=model.section_weights if model.section_weights is not None else np.zeros((0, 0)),
             section_bias=model.section_bias if model.section_bias is not None else np.zeros(0))
    write_atomically(path, buffer.getvalue(), sync=True)


def load_learned_parts(
    paths: Sequence[Path], *, knowledge: KnowledgeBase, aspects: AspectLexicon, embedder: Embedder, store: Path
) -> LearnedParts | None:
    """The model of the question sets at ``paths``: read from folder ``store`` when it holds the fit of these
    questions by this embedder, else fitted and stored there. None when the sets hold too few questions
    (or none exist); a store that cannot be written is warned about and the model used unstored."""
    existing = [p for p in paths if p.exists()]
    if not question_files(existing):
        return None
    training = training_pairs(existing, knowledge=knowledge, aspects=aspects)
    path = store / f"{_key(training, embedder.id)}.npz"
    if path.exists() and (model := _read(path)) is not None:
        return model
    model = fit_learned_parts(training.pairs, embedder=embedder, careers=training.careers, sections=training.sections)
    if model is None:
        log.info("learned parts: %d usable questions in %s, too few to learn from", len(training.pairs),
                 ", ".join(str(p) for p in paths))
        return None
    try:
        _write(path, model)
    except OSError as exc:
        log.warning("learned parts could not be stored in %s (%s); they are fitted again on the next start",
                    store, exc.__class__.__name__)
    return model
