"""Recognising what a question asks about by meaning, when it uses none of the lexicon's cue words.

Each aspect in ``aspects.yaml`` may list ``examples``: a few questions that ask about it, in Japanese
and English. A question's vector is compared with theirs; the aspect whose examples are nearest on
average is the one asked about, but only when it leads every other aspect by ``margin`` of the
embedder's cosine range (`Calibration`), so the rule means the same for embedders whose cosines
spread differently. (The average, not the nearest single example: one example that happens to share
a topic word, 「AI」, would otherwise pull in every question that uses it.) A cue word, when there is
one, always decides (see `bot.analysis`); this is asked only of questions about a career.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from .aspects import Aspect
from .calibration import Calibration
from .embedders import Embedder

#: How far, as a share of the embedder's cosine range, the nearest aspect's examples must come closer
#: on average than any other aspect's for the question to count as asking about it (on the dev split:
#: 0.10 answered best; with none, every question without a cue got a part, often the wrong one).
CLEAR_MARGIN = 0.10


class AspectsByMeaning:
    """The aspect a question vector asks about, from the aspects' example questions; thread-safe.

    The examples are embedded once: by `prepare` (the advisor calls it while loading, so that no
    question pays for it), else on first use.
    """

    def __init__(self, *, aspects: Sequence[Aspect], embedder: Embedder, calibration: Calibration,
                 margin: float = CLEAR_MARGIN) -> None:
        self._pairs = [(a, q) for a in aspects for q in a.examples]
        #: The positions in ``_pairs`` of each aspect's examples.
        by_aspect: dict[str, list[int]] = {}
        for i, (aspect, _) in enumerate(self._pairs):
            by_aspect.setdefault(aspect.name, []).append(i)
        self._groups = [np.asarray(ids) for ids in by_aspect.values()]
        self._embedder = embedder
        self.margin = margin * (calibration.cosine_high - calibration.cosine_low)
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Embed the examples now."""
        self._example_vectors()

    def _example_vectors(self) -> np.ndarray:
        if self._vectors is not None:  # set once; no lock once it is
            return self._vectors
        with self._lock:
            if self._vectors is None:
                self._vectors = self._embedder.embed_queries([q for _, q in self._pairs])
            return self._vectors

    def recognise(self, query_vector: np.ndarray) -> tuple[Aspect, str] | None:
        """The aspect clearly nearest in meaning and its nearest example, or None when none stands out."""
        if not self._pairs:
            return None
        cosines = self._example_vectors() @ query_vector
        ranked = sorted(((float(cosines[ids].mean()), ids) for ids in self._groups), key=lambda pair: -pair[0])
        if len(ranked) > 1 and ranked[0][0] - ranked[1][0] < self.margin:
            return None
        ids = ranked[0][1]
        aspect, example = self._pairs[int(ids[np.argmax(cosines[ids])])]
        return aspect, example
