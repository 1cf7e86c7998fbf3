"""The on-disk hybrid index: FAISS for dense vectors, bm25s for Japanese-aware terms.

Layout under ``<data_dir>/index/``::

    CURRENT              name of the live version folder (replaced atomically)
    v-<time>-<pid>/      one complete build
        manifest.json    format version, embedder id and dimension, passage ids and hashes
        vectors.npy      passage vectors (float32, unit length), in manifest order
        dense.faiss      FAISS index over those vectors (flat IP, or HNSW when large)
        lexical/         bm25s index over `passage_terms`, plus document frequencies

A build writes a new version folder completely, then replaces ``CURRENT``: a
build killed half-way leaves the previous index live and its debris is removed
by the next build. Re-indexing embeds only passages whose hash is new.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import faiss
import numpy as np

from .embedders import Embedder
from .errors import IndexStoreError
from .passages import Passage
from .text import terms
from .threads import batch_threads, thread_budget

__all__ = ["FORMAT_VERSION", "HybridIndex", "IndexPlan", "passage_terms", "open_index", "build_index", "read_index"]

FORMAT_VERSION = 1
#: Bump when `passage_terms` or `terms` change: the lexical index is then rebuilt.
TERMS_VERSION = 2
HEADING_WEIGHT = 3
_CURRENT = "CURRENT"

Progress = Callable[[str], None]


def passage_terms(passage: Passage) -> list[str]:
    """BM25 terms of a passage: its headings (below the article title) count ×3, then its text.

    The article title is left out: every article's title says 年収 and 将来性, so
    it would only blur which passage is about salary. Careers are matched by
    `CareerLexicon` instead.
    """
    heading_terms = terms(" ".join(passage.section.breadcrumb[1:]))
    return heading_terms * HEADING_WEIGHT + terms(passage.text)


@dataclass(slots=True)
class HybridIndex:
    """A loaded index: passages aligned with dense vectors, FAISS and BM25 views of them."""

    path: Path
    embedder_id: str
    dimension: int
    passages: list[Passage]
    vectors: np.ndarray
    dense: faiss.Index
    lexical: bm25s.BM25
    doc_freq: dict[str, int]
    _terms: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return len(self.passages)

    def terms_of(self, passage: Passage) -> frozenset[str]:
        """The set of a passage's index terms (computed once, then cached)."""
        found = self._terms.get(passage.id)
        if found is None:
            found = self._terms[passage.id] = frozenset(passage_terms(passage))
        return found

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency; unseen terms get the highest value."""
        n = max(1, self.size)
        return math.log(1 + (n + 0.5) / (self.doc_freq.get(term, 0) + 0.5))

    def dense_search(self, query_vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosines, passage positions) of the ``k`` nearest passages, best first."""
        k = min(k, self.size)
        if k == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores, ids = self.dense.search(query_vector.reshape(1, -1).astype(np.float32), k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def lexical_scores(self, query_terms: Sequence[str]) -> np.ndarray:
        """BM25 score of every passage for the (deduplicated) query terms."""
        vocab = self.lexical.vocab_dict
        known = list(dict.fromkeys(t for t in query_terms if t in vocab))
        if not known or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.lexical.get_scores(known), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class IndexPlan:
    """Why an index is (re)built and how much of it can be reused."""

    reason: str
    reused: int
    to_embed: int


def _manifest_of(passages: Sequence[Passage], embedder: Embedder, kind: str) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "embedder": {"id": embedder.id, "dimension": embedder.dimension},
        "dense_index": kind,
        "terms_version": TERMS_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "passages": [{"id": p.id, "section_id": p.section.id, "hash": p.hash} for p in passages],
        "sections": {p.section.id: p.section.hash for p in passages},
    }


def _current_dir(root: Path) -> Path | None:
    pointer = root / _CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    path = root / name
    return path if name and path.is_dir() else None


def _make_dense(vectors: np.ndarray, dimension: int, hnsw_min: int) -> tuple[faiss.Index, str]:
    if len(vectors) >= hnsw_min:
        index = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
        kind = "hnsw"
    else:
        index = faiss.IndexFlatIP(dimension)
        kind = "flat"
    if len(vectors):
        index.add(vectors)
    return index, kind


def _make_lexical(passages: Sequence[Passage]) -> tuple[bm25s.BM25, dict[str, int]]:
    corpus = [passage_terms(p) or ["\x00"] for p in passages]
    df: Counter[str] = Counter()
    for doc in corpus:
        df.update(set(doc))
    retriever = bm25s.BM25()
    if corpus:
        retriever.index(corpus, show_progress=False)
    return retriever, dict(df)


def read_index(root: Path, passages: Sequence[Passage], embedder: Embedder) -> HybridIndex:
    """Load the live index under ``root`` for exactly these passages.

    Raises `IndexStoreError` (one line) when there is none, or it was built by
    another embedder or format, for other passages, or its files are damaged.
    """
    folder = _current_dir(root)
    if folder is None:
        raise IndexStoreError(f"no index at {root}")
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexStoreError(f"index manifest at {folder} is unreadable ({exc.__class__.__name__})") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexStoreError(f"index at {folder} has format {manifest.get('format_version')}, need {FORMAT_VERSION}")
    if manifest.get("terms_version") != TERMS_VERSION:
        raise IndexStoreError(f"index at {folder} was built with older index terms")
    emb = manifest.get("embedder") or {}
    if emb.get("id") != embedder.id or emb.get("dimension") != embedder.dimension:
        raise IndexStoreError(f"index at {folder} was built with embedder {emb.get('id')!r}, now {embedder.id!r}")
    recorded = [(p.get("id"), p.get("hash")) for p in manifest.get("passages", [])]
    if recorded != [(p.id, p.hash) for p in passages]:
        raise IndexStoreError("the knowledge base changed since the index was built")
    try:
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        dense = faiss.read_index(str(folder / "dense.faiss"))
        lexical = bm25s.BM25.load(str(folder / "lexical"), show_progress=False, verbosity=0) if passages else bm25s.BM25()
        doc_freq = json.loads((folder / "lexical" / "doc_freq.json").read_text(encoding="utf-8"))
    except Exception as exc:  # numpy, faiss and bm25s raise many kinds on damaged files
        raise IndexStoreError(f"index files at {folder} are damaged ({exc.__class__.__name__})") from exc
    if vectors.shape != (len(passages), embedder.dimension) or dense.ntotal != len(passages):
        raise IndexStoreError(f"index at {folder} holds {dense.ntotal} vectors for {len(passages)} passages")
    return HybridIndex(
        path=folder,
        embedder_id=embedder.id,
        dimension=embedder.dimension,
        passages=list(passages),
        vectors=vectors,
        dense=dense,
        lexical=lexical,
        doc_freq=doc_freq,
    )


def _reusable_vectors(root: Path, embedder: Embedder) -> dict[str, np.ndarray]:
    """Vectors of the live index by passage hash, when its embedder matches; else empty."""
    folder = _current_dir(root)
    if folder is None:
        return {}
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        emb = manifest["embedder"]
        if emb["id"] != embedder.id or emb["dimension"] != embedder.dimension:
            return {}
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        hashes = [p["hash"] for p in manifest["passages"]]
        if vectors.shape[0] != len(hashes):
            return {}
        return {h: vectors[i] for i, h in enumerate(hashes)}
    except Exception:  # a damaged old index only means nothing can be reused
        return {}


def _clean_debris(root: Path, keep: set[str]) -> None:
    for child in root.iterdir():
        if child.name in keep or child.name == _CURRENT:
            continue
        if child.is_dir() and child.name.startswith(("v-", ".tmp-")):
            shutil.rmtree(child, ignore_errors=True)
        elif child.name.startswith(".tmp-"):
            child.unlink(missing_ok=True)


def build_index(
    root: Path,
    passages: Sequence[Passage],
    embedder: Embedder,
    *,
    hnsw_min_passages: int = 20000,
    progress: Progress | None = None,
    batch_size: int = 256,
    threads: int = 0,
) -> tuple[HybridIndex, IndexPlan]:
    """Build a complete index for ``passages`` and make it live atomically.

    Vectors of passages whose hash is unchanged are copied from the live index.
    New ones are embedded with `batch_threads` (``threads`` is ``CAREERBOT_THREADS``).
    """
    root.mkdir(parents=True, exist_ok=True)
    reuse = _reusable_vectors(root, embedder)
    todo = [i for i, p in enumerate(passages) if p.hash not in reuse]
    vectors = np.zeros((len(passages), embedder.dimension), dtype=np.float32)
    for i, p in enumerate(passages):
        if p.hash in reuse:
            vectors[i] = reuse[p.hash]
    if todo:
        with thread_budget(batch_threads(threads)):
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                vectors[chunk] = embedder.embed_passages([passages[i].embed_text for i in chunk])
                if progress:
                    progress(f"embedded {min(start + batch_size, len(todo))}/{len(todo)} passages")
    dense, kind = _make_dense(vectors, embedder.dimension, hnsw_min_passages)
    lexical, doc_freq = _make_lexical(passages)

    name = f"v-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    work = root / f".tmp-{name}"
    work.mkdir()
    np.save(work / "vectors.npy", vectors, allow_pickle=False)
    faiss.write_index(dense, str(work / "dense.faiss"))
    (work / "lexical").mkdir()
    if passages:
        lexical.save(str(work / "lexical"), show_progress=False)
    (work / "lexical" / "doc_freq.json").write_text(json.dumps(doc_freq, ensure_ascii=False), encoding="utf-8")
    (work / "manifest.json").write_text(
        json.dumps(_manifest_of(passages, embedder, kind), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    final = root / name
    os.replace(work, final)
    pointer_tmp = root / f".tmp-{name}.current"
    pointer_tmp.write_text(name, encoding="utf-8")
    with open(pointer_tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(pointer_tmp, root / _CURRENT)
    _clean_debris(root, keep={name})
    index = HybridIndex(
        path=final,
        embedder_id=embedder.id,
        dimension=embedder.dimension,
        passages=list(passages),
        vectors=vectors,
        dense=dense,
        lexical=lexical,
        doc_freq=doc_freq,
    )
    return index, IndexPlan(reason="", reused=len(passages) - len(todo), to_embed=len(todo))


def open_index(
    root: Path,
    passages: Sequence[Passage],
    embedder: Embedder,
    *,
    hnsw_min_passages: int = 20000,
    notify: Progress | None = None,
    progress: Progress | None = None,
    threads: int = 0,
) -> tuple[HybridIndex, IndexPlan | None]:
    """The live index if it is current; otherwise rebuild it, telling ``notify`` why (one line)."""
    try:
        return read_index(root, passages, embedder), None
    except IndexStoreError as exc:
        reason = str(exc)
    if notify:
        notify(f"{reason}; building the index…")
    index, plan = build_index(
        root, passages, embedder, hnsw_min_passages=hnsw_min_passages, progress=progress, threads=threads
    )
    return index, IndexPlan(reason=reason, reused=plan.reused, to_embed=plan.to_embed)
