"""Shared fixtures: the real knowledge base, the real default embedder, a real index in a temporary folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.embedders import Embedder
from bot.pipeline import Advisor
from bot.settings import PROJECT_ROOT, Settings, load_settings
from tests.pg.cluster import pg_url, postgres_server  # noqa: F401 - fixtures: a throwaway PostgreSQL

# Tests never reach a model hub and never read a developer's careerbot.toml.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["CAREERBOT_CONFIG"] = str(Path(__file__).parent / "data" / "empty.toml")

KNOWLEDGE = PROJECT_ROOT / "knowledge"
PROMPTS = PROJECT_ROOT / "prompts"
#: An article no shipped one covers (a UX designer), for tests that add an article to a running bot.
NEW_ARTICLE = (Path(__file__).parent / "data" / "ux_designer.md").read_text(encoding="utf-8")


def make_settings(data_dir: Path, **overrides) -> Settings:
    """Settings for a test: the shipped knowledge and prompts, data under ``data_dir``."""
    values = {"knowledge_dir": KNOWLEDGE, "prompts_dir": PROMPTS, "data_dir": data_dir, **overrides}
    return load_settings(**values)


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("careerbot-data")


@pytest.fixture(scope="session")
def settings(shared_data_dir: Path) -> Settings:
    return make_settings(shared_data_dir)


@pytest.fixture(scope="session")
def advisor(settings: Settings) -> Advisor:
    """One real Advisor over the shipped knowledge base, shared by the whole session (read-only use)."""
    return Advisor(settings=settings)


@pytest.fixture(scope="session")
def lexicon_advisor(shared_data_dir: Path) -> Advisor:
    """Like ``advisor``, on the same index, with no part learned from question sets: the lexicon alone."""
    return Advisor(settings=make_settings(shared_data_dir, learn_parts=False))


class CountingEmbedder:
    """A real embedder, counting the passages it is asked to embed."""

    def __init__(self, inner: Embedder, *, id_suffix: str = "") -> None:
        self.inner = inner
        self.id = inner.id + id_suffix
        self.dimension = inner.dimension
        self.embedded = 0

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        return self.inner.embed_passages(texts)
