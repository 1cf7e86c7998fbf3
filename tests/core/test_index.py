"""The on-disk index: manifest, incremental rebuild, corruption and mismatch detection, atomic replacement,
checksums, malformed manifests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.embedders.use_m3 import UseM3Embedder
from bot.errors import IndexStoreError
from bot.index import FORMAT_VERSION, build_index, open_index, read_index
from bot.knowledge import split_sections
from bot.passages import Passage, passages_of
from tests.conftest import KNOWLEDGE, CountingEmbedder


@pytest.fixture(scope="module")
def use_m3() -> UseM3Embedder:
    return UseM3Embedder()


def corpus(n_sections: int, *, changed: int | None = None) -> list[Passage]:
    body = "\n".join(
        f"## 見出し{i}\n第{i}節の本文です。{'変更後の文。' if i == changed else ''}データと機械学習の話。" for i in range(n_sections)
    )
    return passages_of(split_sections("t", "テスト記事", body))


def test_build_writes_a_manifest_and_reads_back(tmp_path: Path, use_m3: UseM3Embedder) -> None:
    passages = corpus(5)
    index, plan = build_index(tmp_path, passages, use_m3)
    manifest = json.loads((index.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["embedder"] == {"id": "use-m3", "dimension": 512}
    assert [p["hash"] for p in manifest["passages"]] == [p.hash for p in passages]
    assert set(manifest["sections"]) == {p.section.id for p in passages}
    assert plan.to_embed == 5 and plan.reused == 0
    again = read_index(tmp_path, passages, use_m3)
    assert again.size == 5 and np.allclose(again.vectors, index.vectors)


def test_reindex_embeds_only_changed_sections(tmp_path: Path, use_m3: UseM3Embedder) -> None:
    counting = CountingEmbedder(use_m3)
    build_index(tmp_path, corpus(8), counting)
    assert counting.embedded == 8
    counting.embedded = 0
    index, plan = open_index(tmp_path, corpus(8, changed=3), counting)
    assert plan is not None and "changed" in plan.reason
    assert counting.embedded == 1 and plan.reused == 7 and plan.to_embed == 1
    counting.embedded = 0
    _, plan = open_index(tmp_path, corpus(8, changed=3), counting)
    assert plan is None and counting.embedded == 0  # current: nothing rebuilt


def test_another_embedder_forces_a_full_rebuild(tmp_path: Path, use_m3: UseM3Embedder) -> None:
    build_index(tmp_path, corpus(4), use_m3)
    other = CountingEmbedder(use_m3, id_suffix="-other")
    notes: list[str] = []
    _, plan = open_index(tmp_path, corpus(4), other, notify=notes.append)
    assert other.embedded == 4 and plan is not None
    assert len(notes) == 1 and "embedder 'use-m3'" in notes[0] and "use-m3-other" in notes[0]


@pytest.mark.parametrize("damage", ["manifest", "faiss", "vectors", "pointer", "pointer-not-utf8", "pointer-outside"])
def test_a_corrupt_index_is_detected_in_one_line_and_rebuilt(tmp_path: Path, use_m3: UseM3Embedder, damage: str) -> None:
    passages = corpus(3)
    index, _ = build_index(tmp_path, passages, use_m3)
    assert index.path is not None
    target, content = {
        "manifest": (index.path / "manifest.json", b"\x00garbage"),
        "faiss": (index.path / "dense.faiss", b"\x00garbage"),
        "vectors": (index.path / "vectors.npy", b"\x00garbage"),
        "pointer": (tmp_path / "CURRENT", b"\x00garbage"),
        "pointer-not-utf8": (tmp_path / "CURRENT", b"\xff\xfe v-"),
        "pointer-outside": (tmp_path / "CURRENT", b"../../etc"),
    }[damage]
    target.write_bytes(content)
    with pytest.raises(IndexStoreError) as info:
        read_index(tmp_path, passages, use_m3)
    assert "\n" not in str(info.value)
    notes: list[str] = []
    rebuilt, plan = open_index(tmp_path, passages, use_m3, notify=notes.append)
    assert plan is not None and len(notes) == 1
    assert read_index(tmp_path, passages, use_m3).size == 3 == rebuilt.size


def flip_a_byte(path: Path) -> None:
    """Damage ``path`` in place, keeping its size (as a bad disk block or a stray write would)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


SAME_SIZE_DAMAGE = [
    ("vectors.npy", False),  # (file, are its vectors still reusable by the rebuild?)
    ("dense.faiss", True),
    ("lexical/doc_freq.json", True),
    ("lexical/vocab.index.json", True),
    ("lexical/data.csc.index.npy", True),
]


@pytest.mark.parametrize(("name", "reusable"), SAME_SIZE_DAMAGE)
def test_same_size_damage_is_caught_by_the_checksum_never_served_and_never_reused(
    tmp_path: Path, use_m3: UseM3Embedder, name: str, reusable: bool
) -> None:
    passages = corpus(6)
    index, _ = build_index(tmp_path, passages, use_m3)
    assert index.path is not None
    manifest = json.loads((index.path / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["files"]) >= {n for n, _ in SAME_SIZE_DAMAGE}
    assert all(len(digest) == 64 for digest in manifest["files"].values())
    size = (index.path / name).stat().st_size
    flip_a_byte(index.path / name)
    assert (index.path / name).stat().st_size == size

    with pytest.raises(IndexStoreError) as info:
        read_index(tmp_path, passages, use_m3)
    assert str(info.value) == f"index file {name} at {index.path} does not match its checksum (damaged)"

    counting = CountingEmbedder(use_m3)
    notes: list[str] = []
    rebuilt, plan = open_index(tmp_path, passages, counting, notify=notes.append)
    assert plan is not None and notes == [f"{info.value}; building the index…"]
    assert counting.embedded == (0 if reusable else 6)  # damaged vectors are embedded afresh
    assert np.allclose(rebuilt.vectors, use_m3.embed_passages([p.embed_text for p in passages]), atol=1e-5)
    assert read_index(tmp_path, passages, use_m3).size == 6


def test_a_missing_or_unlisted_index_file_is_caught(tmp_path: Path, use_m3: UseM3Embedder) -> None:
    passages = corpus(3)
    index, _ = build_index(tmp_path, passages, use_m3)
    assert index.path is not None
    (index.path / "lexical" / "stray.json").write_text("{}", encoding="utf-8")
    with pytest.raises(IndexStoreError, match="lexical/stray.json .* is not in the manifest"):
        read_index(tmp_path, passages, use_m3)
    (index.path / "lexical" / "stray.json").unlink()
    (index.path / "dense.faiss").unlink()
    with pytest.raises(IndexStoreError, match="dense.faiss .* is missing"):
        read_index(tmp_path, passages, use_m3)


def good_manifest() -> dict:
    return {
        "format_version": FORMAT_VERSION, "embedder": {"id": "use-m3", "dimension": 512}, "dense_index": "flat",
        "terms_version": 2, "created_at": "2026-01-01T00:00:00+0000",
        "passages": [{"id": "t#a~0", "section_id": "t#a", "hash": "h"}], "sections": {"t#a": "h"},
        "articles": {"t": "t.md"}, "files": {"vectors.npy": "0" * 64},
    }


def edited(**changes) -> str:
    manifest = good_manifest()
    for key, value in changes.items():
        if value is None:
            del manifest[key]
        else:
            manifest[key] = value
    return json.dumps(manifest)


MALFORMED = {
    "array": ("[]", "it is an array, not an object"),
    "null": ("null", "it is null, not an object"),
    "string": ('"manifest"', "it is a string, not an object"),
    "number": ("3", "it is a number, not an object"),
    "empty object": ("{}", "has format None, need"),
    "format as a string": (edited(format_version=str(FORMAT_VERSION)), f"has format '{FORMAT_VERSION}', need"),
    "old format": (edited(format_version=1), "has format 1, need"),
    "no embedder": (edited(embedder=None), "embedder: Field required"),
    "dimension as a string": (edited(embedder={"id": "use-m3", "dimension": "512"}), "embedder.dimension: Input should be a valid integer"),
    "passages not a list": (edited(passages="all"), "passages: Input should be a valid list"),
    "passage without a hash": (edited(passages=[{"id": "x", "section_id": "y"}]), "passages.0.hash: Field required"),
    "passage as a number": (edited(passages=[7]), "passages.0: Input should be"),
    "unknown dense index": (edited(dense_index="ivf"), "dense_index: Input should be 'flat' or 'hnsw'"),
    "no checksums": (edited(files=None), "files: Field required"),
    "checksum as a number": (edited(files={"vectors.npy": 5}), "files.vectors.npy: Input should be a valid string"),
    "articles as a list": (edited(articles=["t.md"]), "articles: Input should be a valid dictionary"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_manifest_is_one_line_and_rebuilt_never_a_traceback(
    tmp_path: Path, use_m3: UseM3Embedder, case: str
) -> None:
    passages = corpus(3)
    index, _ = build_index(tmp_path, passages, use_m3)
    assert index.path is not None
    text, reason = MALFORMED[case]
    (index.path / "manifest.json").write_text(text, encoding="utf-8")
    with pytest.raises(IndexStoreError) as info:
        read_index(tmp_path, passages, use_m3)
    message = str(info.value)
    assert reason in message and str(index.path) in message and "\n" not in message
    counting = CountingEmbedder(use_m3)
    notes: list[str] = []
    rebuilt, plan = open_index(tmp_path, passages, counting, notify=notes.append)
    assert plan is not None and len(notes) == 1 and reason in notes[0]
    assert counting.embedded == 3  # nothing is reused from a manifest that cannot be trusted
    assert read_index(tmp_path, passages, use_m3).size == 3 == rebuilt.size


def test_the_manifest_records_which_file_owns_each_slug(tmp_path: Path, use_m3: UseM3Embedder) -> None:
    from bot.index import recorded_owners

    passages = corpus(2)
    build_index(tmp_path, passages, use_m3, articles={"t": "t.md"})
    assert recorded_owners(tmp_path) == {"t": "t.md"}
    assert read_index(tmp_path, passages, use_m3, articles={"t": "t.md"}).size == 2
    with pytest.raises(IndexStoreError, match="articles renamed"):
        read_index(tmp_path, passages, use_m3, articles={"t": "renamed.md"})
    (tmp_path / "CURRENT").write_text("nothing", encoding="utf-8")
    assert recorded_owners(tmp_path) == {}


def test_a_build_that_fails_half_way_leaves_the_old_index_live(tmp_path: Path, use_m3: UseM3Embedder) -> None:
    old = corpus(3)
    build_index(tmp_path, old, use_m3)

    class Exploding(CountingEmbedder):
        def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        build_index(tmp_path, corpus(6), Exploding(use_m3))
    assert read_index(tmp_path, old, use_m3).size == 3


def test_debris_of_a_killed_build_is_ignored_and_cleaned(tmp_path: Path, use_m3: UseM3Embedder) -> None:
    old = corpus(3)
    build_index(tmp_path, old, use_m3)
    (tmp_path / ".tmp-v-20990101000000-1-1").mkdir()
    (tmp_path / ".tmp-v-20990101000000-1-1" / "vectors.npy").write_bytes(b"half")
    (tmp_path / "v-20990101000000-1-2").mkdir()  # renamed but never made CURRENT
    assert read_index(tmp_path, old, use_m3).size == 3
    build_index(tmp_path, corpus(4), use_m3)
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert len(leftovers) == 2 and "CURRENT" in leftovers  # CURRENT and the one live version


def test_a_process_killed_during_a_build_leaves_the_old_index_live(tmp_path: Path, use_m3: UseM3Embedder) -> None:
    old = corpus(3)
    build_index(tmp_path, old, use_m3)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from bot.embedders.use_m3 import UseM3Embedder
        from bot.index import build_index
        from bot.knowledge import split_sections
        from bot.passages import passages_of
        body = "\\n".join(f"## 節{{i}}\\n" + "長い本文の文章です。" * 40 for i in range(3000))
        passages = passages_of(split_sections("big", "大きな記事", body))
        build_index(Path({str(tmp_path)!r}), passages, UseM3Embedder(), progress=lambda m: print(m, flush=True), batch_size=64)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=KNOWLEDGE.parent)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the build is under way
    assert first.startswith("embedded"), first
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert read_index(tmp_path, old, use_m3).size == 3


def test_hnsw_above_the_configured_size(tmp_path: Path, use_m3: UseM3Embedder) -> None:
    passages = corpus(12)
    index, _ = build_index(tmp_path, passages, use_m3, hnsw_min_passages=10)
    manifest = json.loads((index.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["dense_index"] == "hnsw"
    query = use_m3.embed_queries(["第7節の本文"])[0]
    _, ids = index.dense_search(query, 3)
    assert len(ids) == 3


def test_shipped_knowledge_indexes(tmp_path: Path, use_m3: UseM3Embedder) -> None:
    from bot.knowledge import load_knowledge

    kb = load_knowledge(KNOWLEDGE)
    index, _ = build_index(tmp_path, passages_of(kb.sections), use_m3)
    assert index.size >= len(kb.sections) > 90
