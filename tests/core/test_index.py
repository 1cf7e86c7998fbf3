"""The on-disk index: manifest, incremental rebuild, corruption and mismatch detection, atomic replacement."""

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
from tests.conftest import KNOWLEDGE


class CountingEmbedder:
    """The real use-m3 embedder, counting the passages it is asked to embed."""

    def __init__(self, inner: UseM3Embedder, *, id_suffix: str = "") -> None:
        self.inner = inner
        self.id = inner.id + id_suffix
        self.dimension = inner.dimension
        self.embedded = 0

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        return self.inner.embed_passages(texts)


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


@pytest.mark.parametrize("damage", ["manifest", "faiss", "vectors", "pointer"])
def test_a_corrupt_index_is_detected_in_one_line_and_rebuilt(tmp_path: Path, use_m3: UseM3Embedder, damage: str) -> None:
    passages = corpus(3)
    index, _ = build_index(tmp_path, passages, use_m3)
    target = {
        "manifest": index.path / "manifest.json",
        "faiss": index.path / "dense.faiss",
        "vectors": index.path / "vectors.npy",
        "pointer": tmp_path / "CURRENT",
    }[damage]
    target.write_bytes(b"\x00garbage")
    with pytest.raises(IndexStoreError) as info:
        read_index(tmp_path, passages, use_m3)
    assert "\n" not in str(info.value)
    notes: list[str] = []
    rebuilt, plan = open_index(tmp_path, passages, use_m3, notify=notes.append)
    assert plan is not None and len(notes) == 1
    assert read_index(tmp_path, passages, use_m3).size == 3 == rebuilt.size


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
