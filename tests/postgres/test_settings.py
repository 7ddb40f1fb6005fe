"""The URL's pool knobs, and what a server that is not there looks like."""

from __future__ import annotations

import pytest

from tests.conftest import POSTGRES_URL
from tether import ConfigurationError, StoreUnavailable
from tether.core.postgres_url import PoolSettings, redacted
from tether.stores.postgres import PostgresStore


def test_pool_knobs_are_read_from_the_url_and_the_rest_goes_to_libpq() -> None:
    settings = PoolSettings.from_url(
        "postgresql://u:pw@db:6543/app?pool_max=20&pool_min=2&pool_timeout=2.5&sslmode=require"
    )
    assert (settings.min_size, settings.max_size, settings.timeout) == (2, 20, 2.5)
    assert settings.conninfo.startswith("postgresql://u:pw@db:6543/app?")
    assert "sslmode=require" in settings.conninfo and "pool_" not in settings.conninfo


def test_timestamps_are_asked_for_in_utc_alongside_the_callers_options() -> None:
    plain = PoolSettings.from_url("postgres://db/app").conninfo
    assert plain == (
        "postgresql://db/app?options=-c%20lock_timeout%3D5000%20-c%20statement_timeout%3D60000"
        "%20-c%20TimeZone%3DUTC"
    )
    mine = PoolSettings.from_url("postgresql://db/app?options=-csearch_path%3Dx").conninfo
    assert mine.endswith("statement_timeout%3D60000%20-csearch_path%3Dx%20-c%20TimeZone%3DUTC")


def test_lock_and_statement_timeouts_are_read_from_the_url_in_seconds_and_sent_to_the_server() -> None:
    settings = PoolSettings.from_url("postgresql://db/app?lock_timeout=0.25&statement_timeout=0")
    assert settings.lock_timeout == 0.25
    assert "lock_timeout%3D250%20" in settings.conninfo and "statement_timeout%3D0%20" in settings.conninfo
    with pytest.raises(ConfigurationError):
        PoolSettings.from_url("postgresql://db/app?lock_timeout=-1")


@pytest.mark.parametrize("query", ["pool_max=lots", "pool_min=5&pool_max=2", "pool_max=0", "pool_timeout=-1"])
def test_bad_pool_knobs_are_a_configuration_error(query: str) -> None:
    with pytest.raises(ConfigurationError):
        PoolSettings.from_url(f"postgresql://db/app?{query}")


def test_a_server_that_is_not_there_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        PostgresStore.from_url("postgresql://postgres@127.0.0.1:1/test?pool_timeout=1&connect_timeout=1")


def test_the_url_shown_to_people_hides_the_password() -> None:
    assert redacted("postgresql://me:s3cret@db/app?x=1") == "postgresql://me:***@db/app?x=1"
    assert redacted("postgresql://me@db/app") == "postgresql://me@db/app"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (("/test", "/no_such_database_for_tether"), 'database "no_such_database_for_tether" does not exist'),
        (("postgres@", "no_such_role_for_tether@"), 'role "no_such_role_for_tether" does not exist'),
    ],
    ids=["wrong database", "wrong role"],
)
def test_a_wrong_database_or_role_shows_the_servers_own_message(
    pg_url: str, change: tuple[str, str], says: str
) -> None:
    """`pg_url`: skips when no PostgreSQL is running."""
    url = POSTGRES_URL.replace(*change)
    if url == POSTGRES_URL:
        pytest.skip("TETHER_TEST_POSTGRES_URL has another shape than postgresql://postgres@host/test")
    with pytest.raises(StoreUnavailable, match=says):
        PostgresStore.from_url(f"{url}?pool_timeout=1")
