"""The PostgreSQL `SlackStore` on a real server: the conformance suite, and what only a shared store does
(several processes on one database, migrations, errors naming CAREERBOT_DATABASE_URL, copying from SQLite)."""

from __future__ import annotations

import pytest

from bot.slack.pg_store import PostgresSlackStore

from ..slack.store_conformance import StoreConformance


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def open_store(self, pg_url: str):
        return lambda clock: PostgresSlackStore(url=pg_url, clock=clock, pool_size=4)
