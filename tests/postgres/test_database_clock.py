"""On the system clock, lease and heartbeat times come from the database, not from the client:
a client whose clock is an hour off still writes leases measured by the server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tether import Beat, LeaseLost, SessionManager, SystemClock
from tether.core.postgres_url import PoolSettings
from tether.stores.postgres import PostgresStore, calls

SKEW = timedelta(hours=1)


def database_now(pg_url: str) -> datetime:
    with psycopg.connect(PoolSettings.from_url(pg_url).conninfo) as conn:
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        value: datetime = row[0]
        return value


@pytest.fixture
def skewed_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The client's wall clock runs an hour behind the database server's."""
    monkeypatch.setattr(SystemClock, "now", lambda self: datetime.now(UTC) - SKEW)
    yield


def close_to(value: datetime | None, expected: datetime, tolerance: float = 5.0) -> bool:
    return value is not None and abs((value - expected).total_seconds()) < tolerance


@pytest.mark.usefixtures("skewed_client")
def test_store_now_is_the_database_clock(pg_store: PostgresStore, pg_url: str) -> None:
    assert close_to(pg_store.now(), database_now(pg_url))
    assert not close_to(SystemClock().now(), database_now(pg_url))  # the skew is real


@pytest.mark.usefixtures("skewed_client")
def test_leases_and_heartbeats_are_measured_by_the_database(pg_store: PostgresStore, pg_url: str) -> None:
    manager = SessionManager(pg_store, worker_id="w")
    session = manager.create("tutor", "u1")
    lease = timedelta(seconds=session.heartbeat_timeout)
    assert close_to(session.lease_expires_at, database_now(pg_url) + lease)
    manager.heartbeat(session.session_id, epoch=1, expect_silence=600)
    beaten = manager.get(session.session_id)
    db_now = database_now(pg_url)
    assert close_to(beaten.last_heartbeat, db_now)
    assert close_to(beaten.suspect_at, db_now + timedelta(seconds=600))
    grace = session.heartbeat_timeout - session.suspect_after
    assert close_to(beaten.lease_expires_at, db_now + timedelta(seconds=600 + grace))


@pytest.mark.usefixtures("skewed_client")
def test_a_lease_expired_by_the_database_clock_is_refused_and_claimable(pg_store: PostgresStore) -> None:
    manager = SessionManager(pg_store, worker_id="w")
    created = manager.create("tutor", "u1")
    # Expired 30 minutes ago by the server's clock: still in the future for the skewed client.
    lapsed = replace(created, session_id="lapsed", lease_expires_at=pg_store.now() - timedelta(minutes=30))
    pg_store.create(lapsed)
    (refused,) = pg_store.heartbeat([Beat("lapsed", 1)])
    assert isinstance(refused, LeaseLost)
    assert [s.session_id for s in pg_store.claimable(None, 10)] == ["lapsed"]


def test_the_database_time_is_carried_forward_between_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([99.0, 100.0, 100.5, 102.5, 106.0])  # monotonic seconds, one per reading
    monkeypatch.setattr(calls, "monotonic", lambda: next(ticks))
    clock = calls.DatabaseClock(resync=5.0)
    server = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert clock.carried() is None  # never read yet
    sent, received = calls.monotonic(), calls.monotonic()
    assert clock.anchor(server, sent, received) == server + timedelta(seconds=0.25)
    assert clock.carried() == server + timedelta(seconds=2.25)  # 2.25 s after the round trip's middle
    assert clock.carried() is None  # past the resync interval: read the server again
