"""Connections killed under the store (pg_terminate_backend, as a restart does): calls in flight
get StoreUnavailable and write nothing they acknowledge, the pool reconnects, later calls succeed."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.rows import dict_row

from tether import Policy, Session, SessionManager, StoreUnavailable
from tether.core.model import NewCheckpoint
from tether.core.postgres_url import PoolSettings
from tether.lifecycle import new_session
from tether.stores.postgres import AsyncPostgresStore


def pool_url(pg_url: str, size: int) -> tuple[str, str]:
    """A URL whose connections carry their own application_name, so a test can kill exactly them."""
    name = f"tether-test-{uuid.uuid4().hex[:8]}"
    return f"{pg_url}&pool_min={size}&pool_max={size}&application_name={name}", name


def admin(pg_url: str) -> psycopg.Connection[dict[str, object]]:
    return psycopg.connect(PoolSettings.from_url(pg_url).conninfo, autocommit=True, row_factory=dict_row)


def backends(conn: psycopg.Connection[dict[str, object]], name: str, waiting: bool = False) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = %s"
        " AND (NOT %s OR wait_event_type = 'Lock')",
        (name, waiting),
    ).fetchone()
    assert row is not None
    return int(str(row["n"]))


def terminate(conn: psycopg.Connection[dict[str, object]], name: str) -> None:
    sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"
    conn.execute(sql, (name,))


def eventually(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


async def killed_while_waiting(pg_url: str, name: str, lock: str, call: Awaitable[object]) -> None:
    """Start `call` while another transaction holds `lock`; once it waits on that lock, kill its
    connection: it must raise StoreUnavailable."""
    with admin(pg_url) as blocker, admin(pg_url) as observer:
        blocker.execute("BEGIN")
        blocker.execute(lock)
        in_flight = asyncio.ensure_future(call)
        while backends(observer, name, waiting=True) < 1:
            await asyncio.sleep(0.02)
        terminate(observer, name)
        with pytest.raises(StoreUnavailable):
            await in_flight
        blocker.execute("ROLLBACK")


def test_calls_in_flight_when_their_connection_dies_raise_store_unavailable(pg_url: str) -> None:
    """Three appends to a locked session, waiting on the row lock (in one batch of the group commit,
    or one after another): killing their connections gives every caller StoreUnavailable, and none
    of them wrote anything."""
    url, name = pool_url(pg_url, 3)
    manager = SessionManager(url, worker_id="w")
    session = manager.create("tutor", "u1")
    manager.checkpoint(session.session_id, "before", {})
    outcomes: list[object] = []
    with admin(pg_url) as blocker, admin(pg_url) as observer:
        blocker.execute("BEGIN")
        blocker.execute("SELECT 1 FROM sessions WHERE session_id = %s FOR UPDATE", (session.session_id,))

        def append() -> None:
            try:
                outcomes.append(manager.checkpoint(session.session_id, "in_flight", {}, epoch=1))
            except Exception as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=append) for _ in range(3)]
        for t in threads:
            t.start()
        eventually(lambda: backends(observer, name, waiting=True) >= 1)
        while any(t.is_alive() for t in threads):  # appends queued behind a killed batch wait next
            if backends(observer, name, waiting=True):
                terminate(observer, name)
            time.sleep(0.02)
        for t in threads:
            t.join()
        blocker.execute("ROLLBACK")
    assert len(outcomes) == 3 and all(isinstance(o, StoreUnavailable) for o in outcomes)
    assert all(
        isinstance(o, StoreUnavailable) and isinstance(o.__cause__, psycopg.OperationalError)
        for o in outcomes
    )
    after = manager.checkpoint(session.session_id, "after", {}, epoch=1)
    assert after.seq == 2  # the killed appends wrote nothing and used up no seq
    assert [cp.name for cp in manager.checkpoints(session.session_id)] == ["before", "after"]
    manager.close()


def test_idle_pooled_connections_killed_by_the_server_are_replaced_without_an_error(pg_url: str) -> None:
    url, name = pool_url(pg_url, 3)
    manager = SessionManager(url, worker_id="w")
    session = manager.create("tutor", "u1")
    with admin(pg_url) as observer:
        eventually(lambda: backends(observer, name) == 3)
        terminate(observer, name)
        eventually(lambda: backends(observer, name) == 0)
    time.sleep(0.1)  # the goodbye message reaches the idle sockets
    for n in range(10):
        assert manager.checkpoint(session.session_id, "step", {"n": n}).seq == n + 1
    manager.close()


def killed_under_load(
    pg_url: str, sessions: int, kill_times: list[float], read_back: bool = False
) -> tuple[SessionManager, dict[str, dict[int, int]], list[Exception]]:
    """Appenders on `sessions` sessions (each also reading its session back if asked) while this test's
    backends are terminated after each pause of `kill_times`. Returns the manager, each session's
    acknowledged seq -> n, and every error the appenders met."""
    url, name = pool_url(pg_url, 4)
    manager = SessionManager(url, worker_id="w")
    session_ids = [manager.create("tutor", "u1").session_id for _ in range(sessions)]
    acknowledged: dict[str, dict[int, int]] = {sid: {} for sid in session_ids}
    failures: list[Exception] = []
    stop = threading.Event()

    def load(session_id: str) -> None:
        n = 0
        while not stop.is_set():
            try:
                stored = manager.checkpoint(session_id, "step", {"n": n})
                assert stored.seq not in acknowledged[session_id], "a seq was handed out twice"
                acknowledged[session_id][stored.seq] = n
                if read_back:
                    manager.get(session_id)
            except Exception as exc:
                failures.append(exc)
            n += 1

    threads = [threading.Thread(target=load, args=(sid,)) for sid in session_ids]
    for t in threads:
        t.start()
    with admin(pg_url) as killer:
        for pause in kill_times:
            time.sleep(pause)
            terminate(killer, name)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert all(isinstance(exc, StoreUnavailable) for exc in failures), failures[:3]
    return manager, acknowledged, failures


def assert_nothing_acknowledged_lost(
    manager: SessionManager, acknowledged: dict[str, dict[int, int]], failures: list[Exception]
) -> None:
    """Each session's log is gap-free, keeps every acknowledged checkpoint, holds at most one
    unacknowledged extra per failed call, and takes the next append."""
    for session_id, acked in acknowledged.items():
        stored = {cp.seq: cp.data["n"] for cp in manager.checkpoints(session_id, limit=10_000)}
        assert sorted(stored) == list(range(1, len(stored) + 1))  # gap-free, no duplicates
        assert all(stored[seq] == n for seq, n in acked.items())  # none lost
        assert len(stored) - len(acked) <= len(failures)  # unacknowledged, maybe written
        assert manager.checkpoint(session_id, "after", {}).seq == len(stored) + 1  # recovered
    manager.close()


def test_connections_killed_under_load_lose_no_acknowledged_checkpoint(pg_url: str) -> None:
    manager, acknowledged, failures = killed_under_load(pg_url, 4, [0.15] * 5)
    assert_nothing_acknowledged_lost(manager, acknowledged, failures)


def test_the_async_store_reports_a_dead_connection_the_same_way(pg_url: str) -> None:
    url, name = pool_url(pg_url, 2)

    async def scenario() -> None:
        store = await AsyncPostgresStore.from_url(url)
        session = await store.create(a_session("async-s"))
        new = NewCheckpoint("in_flight", session.created_at, "{}", {})
        lock = "SELECT 1 FROM sessions WHERE session_id = 'async-s' FOR UPDATE"
        await killed_while_waiting(pg_url, name, lock, store.append("async-s", new, 1))
        assert (
            await store.append("async-s", NewCheckpoint("after", session.created_at, "{}", {}), 1)
        ).seq == 1
        await store.close()

    asyncio.run(scenario())


def a_session(session_id: str) -> Session:
    return new_session(
        session_id=session_id,
        agent_type="tutor",
        user_id="u1",
        owner="w",
        policy=Policy(),
        now=datetime.now(UTC),
        context={},
        metadata={},
        parent_session_id=None,
    )
