"""The on-disk hybrid index: FAISS for dense vectors, bm25s for Japanese-aware terms.

Layout under ``<data_dir>/index/``::

    CURRENT              name of the live version folder (replaced atomically)
    v-<time>-<pid>/      one complete build
        manifest.json    format version, embedder id and dimension, passage ids and hashes,
                         the file that owns each slug, the sha256 of every other file, and the
                         embedder's fitted confidence calibration, if any (`bot.calibration`)
        vectors.npy      passage vectors (float32, unit length), in manifest order
        dense.faiss      FAISS index over those vectors (flat IP, or HNSW when large)
        lexical/         bm25s index over `passage_terms`, plus document frequencies

A build writes a new version folder completely (files synced to disk), then
replaces ``CURRENT``: a build killed half-way leaves the previous index live and
its debris is removed by the next build. Re-indexing embeds only passages whose
hash is new.

Loading checks the manifest's shape and types (`Manifest`) and every file's
checksum before a byte of it is parsed: a damaged file — also one damaged in
place at the same size — is reported in one line (`IndexStoreError`) and the
index rebuilt, and its vectors are never reused. When the data folder cannot be
written (read-only), `open_index` serves an index built in memory instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import bm25s
import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from .calibration import Calibration
from .embedders import Embedder
from .errors import IndexStoreError
from .passages import Passage
from .text import terms
from .threads import batch_threads, thread_budget

__all__ = [
    "FORMAT_VERSION",
    "HybridIndex",
    "IndexPlan",
    "Manifest",
    "passage_terms",
    "open_index",
    "build_index",
    "read_index",
    "recorded_owners",
    "store_calibration",
]

#: 2: the manifest records checksums of the index files and the owner of each slug.
FORMAT_VERSION = 2
#: Bump when `passage_terms` or `terms` change: the lexical index is then rebuilt.
TERMS_VERSION = 2
HEADING_WEIGHT = 3
_CURRENT = "CURRENT"
_MANIFEST = "manifest.json"
_BATCH_SIZE = 256  # passages per embedder call

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
    """A loaded index: passages aligned with dense vectors, FAISS and BM25 views of them.

    ``path`` is its version folder, or None for an index built in memory because the
    data folder could not be written.
    """

    path: Path | None
    embedder_id: str
    dimension: int
    passages: list[Passage]
    vectors: np.ndarray
    dense: faiss.Index
    lexical: bm25s.BM25
    doc_freq: dict[str, int]
    #: The fitted calibration the manifest holds for this embedder (`careerbot calibrate`), if any.
    calibration: Calibration | None = None
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


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class _EmbedderRecord(_Strict):
    id: str
    dimension: int


class _PassageRecord(_Strict):
    id: str
    section_id: str
    hash: str


class Manifest(_Strict):
    """``manifest.json`` of one index version; anything of another shape or type is not a manifest."""

    format_version: int
    embedder: _EmbedderRecord
    dense_index: Literal["flat", "hnsw"]
    terms_version: int
    created_at: str
    passages: list[_PassageRecord]
    sections: dict[str, str]
    #: slug → file name of the article that owns it (see `bot.knowledge.load_knowledge`)
    articles: dict[str, str]
    #: path inside the version folder (``lexical/…`` with ``/``) → sha256 hex digest
    files: dict[str, str]
    #: the confidence calibration ``careerbot calibrate`` fitted for ``embedder.id`` (kept across rebuilds
    #: by the same embedder); absent in manifests written before it existed
    calibration: Calibration | None = None


def _manifest_of(
    passages: Sequence[Passage],
    embedder: Embedder,
    kind: str,
    articles: Mapping[str, str],
    files: dict[str, str],
    calibration: Calibration | None,
) -> Manifest:
    return Manifest(
        format_version=FORMAT_VERSION,
        embedder=_EmbedderRecord(id=embedder.id, dimension=embedder.dimension),
        dense_index=kind,
        terms_version=TERMS_VERSION,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        passages=[_PassageRecord(id=p.id, section_id=p.section.id, hash=p.hash) for p in passages],
        sections={p.section.id: p.section.hash for p in passages},
        articles=dict(articles),
        files=files,
        calibration=calibration if calibration is not None and calibration.embedder == embedder.id else None,
    )


def _current_dir(root: Path) -> Path | None:
    """The live version folder that ``CURRENT`` names, or None (no pointer, or it names no version folder)."""
    try:
        name = (root / _CURRENT).read_text(encoding="utf-8").strip()
    except (OSError, ValueError):  # missing, unreadable, not UTF-8
        return None
    if not name.startswith("v-") or "/" in name or "\x00" in name:
        return None
    path = root / name
    return path if path.is_dir() else None


def _read_manifest(folder: Path) -> Manifest:
    """The validated manifest of ``folder``; `IndexStoreError` (one line) if unreadable or malformed."""
    try:
        raw = (folder / _MANIFEST).read_bytes()
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise IndexStoreError(f"index manifest at {folder} is unreadable ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(data), "a number")
        raise IndexStoreError(f"index manifest at {folder} is malformed (it is {kind}, not an object)")
    if data.get("format_version") != FORMAT_VERSION:
        raise IndexStoreError(f"index at {folder} has format {data.get('format_version')!r}, need {FORMAT_VERSION}")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        raise IndexStoreError(f"index manifest at {folder} is malformed ({where}: {err['msg']})") from None


def _sha256(path: Path, *, sync: bool = False) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        if sync:
            os.fsync(fh.fileno())
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _digests(folder: Path, *, sync: bool = False) -> dict[str, str]:
    """sha256 of every file in ``folder`` but the manifest, by path relative to it (``/``-separated)."""
    return {
        path.relative_to(folder).as_posix(): _sha256(path, sync=sync)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() != _MANIFEST
    }


def _verify_files(folder: Path, manifest: Manifest, names: Sequence[str] | None = None) -> None:
    """Raise `IndexStoreError` unless the files (all, or ``names``) match the manifest's checksums."""
    try:
        found = _digests(folder) if names is None else {n: _sha256(folder / n) for n in names}
    except OSError as exc:
        raise IndexStoreError(f"index files at {folder} are unreadable ({exc.__class__.__name__})") from exc
    expected = manifest.files if names is None else {n: manifest.files.get(n) for n in names}
    for name in sorted(set(found) | set(expected)):
        if name not in found or expected.get(name) is None:
            state = "missing" if name not in found else "not in the manifest"
            raise IndexStoreError(f"index file {name} at {folder} is {state}")
        if found[name] != expected[name]:
            raise IndexStoreError(f"index file {name} at {folder} does not match its checksum (damaged)")


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


def recorded_owners(root: Path) -> dict[str, str]:
    """Slug → owning file name, as the live index under ``root`` recorded it; empty if there is none or it is malformed."""
    folder = _current_dir(root)
    if folder is None:
        return {}
    try:
        return dict(_read_manifest(folder).articles)
    except IndexStoreError:
        return {}


def read_index(
    root: Path, passages: Sequence[Passage], embedder: Embedder, *, articles: Mapping[str, str] | None = None
) -> HybridIndex:
    """Load the live index under ``root`` for exactly these passages (and, if given, slug owners ``articles``).

    Raises `IndexStoreError` (one line) when there is none, its manifest is
    malformed, it was built by another embedder or format, for other passages, or
    a file does not match its checksum.
    """
    folder = _current_dir(root)
    if folder is None:
        raise IndexStoreError(f"no index at {root}")
    manifest = _read_manifest(folder)
    if manifest.terms_version != TERMS_VERSION:
        raise IndexStoreError(f"index at {folder} was built with older index terms")
    emb = manifest.embedder
    if emb.id != embedder.id or emb.dimension != embedder.dimension:
        raise IndexStoreError(f"index at {folder} was built with embedder {emb.id!r}, now {embedder.id!r}")
    recorded = [(p.id, p.hash) for p in manifest.passages]
    if recorded != [(p.id, p.hash) for p in passages]:
        raise IndexStoreError("the knowledge base changed since the index was built")
    if articles is not None and manifest.articles != dict(articles):
        raise IndexStoreError("the knowledge base changed since the index was built (articles renamed)")
    _verify_files(folder, manifest)
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
        calibration=manifest.calibration if manifest.calibration and manifest.calibration.embedder == emb.id else None,
    )


def _live_calibration(root: Path, embedder: Embedder) -> Calibration | None:
    """The calibration the live index's manifest holds for ``embedder``, or None (none, another embedder, malformed)."""
    folder = _current_dir(root)
    if folder is None:
        return None
    try:
        found = _read_manifest(folder).calibration
    except IndexStoreError:
        return None
    return found if found is not None and found.embedder == embedder.id else None


def store_calibration(index: HybridIndex, calibration: Calibration) -> Path:
    """Record ``calibration`` in the manifest of ``index``'s version folder (atomically); the manifest's path.

    The calibration must be for the index's embedder; later rebuilds by the same
    embedder carry it over. Raises `IndexStoreError` when the index is in memory only
    or its manifest cannot be rewritten.
    """
    if calibration.embedder != index.embedder_id:
        raise ValueError(f"calibration for {calibration.embedder!r} cannot go into an index of {index.embedder_id!r}")
    if index.path is None:
        raise IndexStoreError("the index is in memory only (read-only data folder): set CAREERBOT_DATA_DIR to a writable one")
    folder = index.path
    manifest = _read_manifest(folder)
    updated = manifest.model_copy(update={"calibration": calibration})
    tmp = folder / f".tmp-{_MANIFEST}"
    try:
        tmp.write_text(updated.model_dump_json(indent=1), encoding="utf-8")
        _sha256(tmp, sync=True)
        os.replace(tmp, folder / _MANIFEST)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise _unwritable(folder, exc) from None
    index.calibration = calibration
    return folder / _MANIFEST


def _reusable_vectors(root: Path, embedder: Embedder) -> dict[str, np.ndarray]:
    """Vectors of the live index by passage hash, when its embedder matches and its vectors are intact; else empty."""
    folder = _current_dir(root)
    if folder is None:
        return {}
    try:
        manifest = _read_manifest(folder)
        if manifest.embedder.id != embedder.id or manifest.embedder.dimension != embedder.dimension:
            return {}
        _verify_files(folder, manifest, ["vectors.npy"])
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        hashes = [p.hash for p in manifest.passages]
        if vectors.shape != (len(hashes), embedder.dimension):
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


@dataclass(slots=True)
class _Built:
    """A complete index in memory, ready to be saved."""

    index: HybridIndex
    kind: str
    plan: IndexPlan


def _build_in_memory(
    root: Path,
    passages: Sequence[Passage],
    embedder: Embedder,
    *,
    hnsw_min_passages: int,
    progress: Progress | None,
    batch_size: int,
    threads: int,
) -> _Built:
    reuse = _reusable_vectors(root, embedder)
    calibration = _live_calibration(root, embedder)
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
    index = HybridIndex(
        path=None,
        embedder_id=embedder.id,
        dimension=embedder.dimension,
        passages=list(passages),
        vectors=vectors,
        dense=dense,
        lexical=lexical,
        doc_freq=doc_freq,
        calibration=calibration,
    )
    return _Built(index=index, kind=kind, plan=IndexPlan(reason="", reused=len(passages) - len(todo), to_embed=len(todo)))


def _unwritable(root: Path, exc: OSError) -> IndexStoreError:
    reason = exc.strerror or exc.__class__.__name__
    return IndexStoreError(
        f"cannot write the index in {root} ({reason}): make that folder writable, "
        "or set CAREERBOT_DATA_DIR to a writable one"
    )


def _check_writable(root: Path) -> None:
    """Raise `IndexStoreError` now, before the embedding, if nothing can be written under ``root``."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".tmp-probe-"):
            pass
    except OSError as exc:
        raise _unwritable(root, exc) from None


def _save(root: Path, built: _Built, embedder: Embedder, articles: Mapping[str, str]) -> Path:
    """Write ``built`` as a new version folder and make it live atomically; the folder's path.

    Raises `IndexStoreError` naming the folder and ``CAREERBOT_DATA_DIR`` when it cannot be written.
    """
    index = built.index
    name = f"v-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    work = root / f".tmp-{name}"
    pointer_tmp = root / f".tmp-{name}.current"
    try:
        root.mkdir(parents=True, exist_ok=True)
        work.mkdir()
        np.save(work / "vectors.npy", index.vectors, allow_pickle=False)
        faiss.write_index(index.dense, str(work / "dense.faiss"))
        (work / "lexical").mkdir()
        if index.passages:
            index.lexical.save(str(work / "lexical"), show_progress=False)
        (work / "lexical" / "doc_freq.json").write_text(json.dumps(index.doc_freq, ensure_ascii=False), encoding="utf-8")
        manifest = _manifest_of(
            index.passages, embedder, built.kind, articles, _digests(work, sync=True), index.calibration
        )
        manifest_tmp = work / f".tmp-{_MANIFEST}"
        manifest_tmp.write_text(manifest.model_dump_json(indent=1), encoding="utf-8")
        _sha256(manifest_tmp, sync=True)  # on disk before it is named
        os.replace(manifest_tmp, work / _MANIFEST)
        final = root / name
        os.replace(work, final)
        pointer_tmp.write_text(name, encoding="utf-8")
        with open(pointer_tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(pointer_tmp, root / _CURRENT)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            pointer_tmp.unlink(missing_ok=True)
        raise _unwritable(root, exc) from None
    with contextlib.suppress(OSError):
        _clean_debris(root, keep={name})
    return final


def build_index(
    root: Path,
    passages: Sequence[Passage],
    embedder: Embedder,
    *,
    articles: Mapping[str, str] | None = None,
    hnsw_min_passages: int = 20000,
    progress: Progress | None = None,
    batch_size: int = _BATCH_SIZE,
    threads: int = 0,
) -> tuple[HybridIndex, IndexPlan]:
    """Build a complete index for ``passages`` and make it live atomically.

    Vectors of passages whose hash is unchanged are copied from the live index
    (if its vectors match their checksum). New ones are embedded with
    `batch_threads` (``threads`` is ``CAREERBOT_THREADS``). ``articles`` (slug →
    owning file) is recorded in the manifest. Raises `IndexStoreError` when the
    data folder cannot be written (before embedding anything, when it can tell).
    """
    _check_writable(root)
    built = _build_in_memory(
        root, passages, embedder, hnsw_min_passages=hnsw_min_passages, progress=progress,
        batch_size=batch_size, threads=threads,
    )
    built.index.path = _save(root, built, embedder, articles or {})
    return built.index, built.plan


def open_index(
    root: Path,
    passages: Sequence[Passage],
    embedder: Embedder,
    *,
    articles: Mapping[str, str] | None = None,
    hnsw_min_passages: int = 20000,
    notify: Progress | None = None,
    progress: Progress | None = None,
    threads: int = 0,
    in_memory_if_read_only: bool = True,
) -> tuple[HybridIndex, IndexPlan | None]:
    """The live index if it is current; otherwise rebuild it, telling ``notify`` why (one line).

    When the rebuilt index cannot be saved, it is served from memory (``path``
    None) after one more line to ``notify`` — or, with ``in_memory_if_read_only``
    False, the `IndexStoreError` is raised.
    """
    try:
        return read_index(root, passages, embedder, articles=articles), None
    except IndexStoreError as exc:
        reason = str(exc)
    if notify:
        notify(f"{reason}; building the index…")
    try:
        _check_writable(root)
        writable = True
    except IndexStoreError as exc:
        if not in_memory_if_read_only:
            raise
        writable = False
        if notify:
            notify(f"{exc}; the index is built in memory only")
    built = _build_in_memory(
        root, passages, embedder, hnsw_min_passages=hnsw_min_passages, progress=progress,
        batch_size=_BATCH_SIZE, threads=threads,
    )
    if writable:
        try:
            built.index.path = _save(root, built, embedder, articles or {})
        except IndexStoreError as exc:
            if not in_memory_if_read_only:
                raise
            if notify:
                notify(f"{exc}; serving the index from memory")
    plan = built.plan
    return built.index, IndexPlan(reason=reason, reused=plan.reused, to_embed=plan.to_embed)
