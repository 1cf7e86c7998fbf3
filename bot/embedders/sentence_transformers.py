"""The ``sentence-transformers`` embedder: any model id or local path.

Installed with the ``st`` extra (``pip install -e '.[st]'``, torch pinned to
the CPU build). Hub downloads are off unless ``CAREERBOT_ALLOW_DOWNLOADS=1``:
a model named by hub id must then already be in the local cache.
Models that expect prefixes (e5, ruri-v3) get them by default.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import EmbedderError
from ..threads import cap_threads, query_threads
from . import normalized

__all__ = ["SentenceTransformersEmbedder", "KNOWN_PREFIXES"]

#: (query prefix, passage prefix) for model families that were trained with them.
KNOWN_PREFIXES: dict[str, tuple[str, str]] = {
    "multilingual-e5": ("query: ", "passage: "),
    "e5-": ("query: ", "passage: "),
    "ruri-v3": ("検索クエリ: ", "検索文書: "),
}


def default_prefixes(model: str) -> tuple[str, str]:
    """The known (query, passage) prefixes for a model id or path, else empty strings."""
    name = model.lower()
    for key, prefixes in KNOWN_PREFIXES.items():
        if key in name:
            return prefixes
    return "", ""


class SentenceTransformersEmbedder:
    """Wraps ``sentence_transformers.SentenceTransformer`` on the CPU."""

    def __init__(
        self,
        *,
        model: str,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        allow_downloads: bool = False,
        threads: int = 0,
        batch_size: int = 32,
    ) -> None:
        if not model:
            raise EmbedderError(
                "CAREERBOT_EMBEDDER_MODEL is empty: name a sentence-transformers model id or a local model folder"
            )
        if not allow_downloads:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            from sentence_transformers import SentenceTransformer  # imports torch
        except ImportError as exc:
            raise EmbedderError(
                "CAREERBOT_EMBEDDER=sentence-transformers needs the st extra: "
                "pip install torch==2.13.0 && pip install -e '.[st]'"
            ) from exc
        cap_threads(query_threads(threads))  # torch is imported now: its threads are capped too
        local = Path(model).expanduser()
        try:
            self._model = SentenceTransformer(
                str(local) if local.exists() else model,
                device="cpu",
                local_files_only=not allow_downloads,
            )
        except Exception as exc:  # OSError, HF errors: all mean "cannot load this model"
            hint = (
                "download it once with CAREERBOT_ALLOW_DOWNLOADS=1, or point CAREERBOT_EMBEDDER_MODEL at a local folder"
                if not allow_downloads
                else "check the model id and your network"
            )
            raise EmbedderError(f"CAREERBOT_EMBEDDER_MODEL={model}: cannot load the model ({hint})") from exc
        q_default, p_default = default_prefixes(model)
        self.query_prefix = q_default if query_prefix is None else query_prefix
        self.passage_prefix = p_default if passage_prefix is None else passage_prefix
        get_dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dimension = int(get_dimension() or 0)
        self._batch = batch_size
        name = local.name if local.exists() else model
        self.id = f"sentence-transformers:{name}|q={self.query_prefix}|p={self.passage_prefix}"

    def _embed(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            [prefix + t for t in texts],
            batch_size=self._batch,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return normalized(vectors)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.passage_prefix)
