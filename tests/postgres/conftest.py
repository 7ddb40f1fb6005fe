"""PostgreSQL-only tests: each gets a fresh schema of the test database (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import fresh_postgres_url
from tether.stores.postgres import PostgresStore


@pytest.fixture
def pg_url() -> str:
    return fresh_postgres_url()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[PostgresStore]:
    """A store on the system clock, so lease times come from the database."""
    store = PostgresStore.from_url(pg_url)
    yield store
    store.close()
