"""What each quotable unit means: its vector by the retriever's embedder, so an answer can pick the unit a
question is nearest to when no word of the question names one (English questions about Japanese articles).

`UnitMeaning.cosines` embeds a unit the first time its text is seen and keeps the vector, so a knowledge
reload embeds only the units whose text changed. It is safe to share between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from ..embedders import Embedder
from .units import Unit

__all__ = ["UnitMeaning"]


class UnitMeaning:
    """Unit vectors by ``embedder``, computed on first use and kept per unit text."""

    def __init__(self, *, embedder: Embedder) -> None:
        self.embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}
        self._generic: dict[tuple[str, ...], np.ndarray] = {}
        self._lock = threading.Lock()

    def generic(self, examples: Sequence[str]) -> np.ndarray | None:
        """The normalised mean vector of ``examples`` (an aspect's example questions: how it is asked in
        general), kept per tuple of examples; None for none."""
        key = tuple(examples)
        if not key:
            return None
        found = self._generic.get(key)
        if found is None:
            mean = np.asarray(self.embedder.embed_queries(list(key)), np.float32).mean(axis=0)
            found = self._generic.setdefault(key, mean / max(float(np.linalg.norm(mean)), 1e-9))
        return found

    def cosines(self, query: np.ndarray, units: Sequence[Unit]) -> np.ndarray:
        """The cosine of each of ``units`` to the (normalised) ``query`` vector, in order."""
        if not units:
            return np.zeros(0, np.float32)
        missing = [u.text for u in units if u.text not in self._vectors]
        if missing:
            with self._lock:
                todo = list(dict.fromkeys(t for t in missing if t not in self._vectors))
                if todo:
                    for text, vector in zip(todo, self.embedder.embed_passages(todo), strict=True):
                        self._vectors[text] = np.asarray(vector, np.float32)
        return np.stack([self._vectors[u.text] for u in units]) @ np.asarray(query, np.float32)
