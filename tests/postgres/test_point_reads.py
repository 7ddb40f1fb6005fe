"""Point reads (get, last checkpoint, last by name) run through libpq directly (prepared.py): the
same answers as a cursor, and the same failures: a connection killed under a read gives
StoreUnavailable or a fresh connection, never a wrong answer or a driver exception."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from tests.postgres.test_connection_loss import (
    admin,
    backends,
    eventually,
    killed_while_waiting,
    pool_url,
    terminate,
)
from tether import Checkpoint, LeaseLost, SessionManager, StoreUnavailable, ValidationError
from tether.core.postgres_url import PoolSettings
from tether.stores.postgres import AsyncPostgresStore, PostgresStore
from tether.stores.postgres.prepared import READ, Prepared, Spin, Step, wait

READS = {b"tether_get_session", b"tether_last_checkpoint", b"tether_last_checkpoint_named"}


@pytest.fixture
def one_connection(pg_url: str) -> Iterator[tuple[SessionManager, str]]:
    """A manager on a pool of exactly one connection (named, so a test can kill it)."""
    url, name = pool_url(pg_url, 1)
    manager = SessionManager(url, worker_id="w")
    yield manager, name
    manager.close()


def written(manager: SessionManager) -> str:
    session_id = manager.create("tutor", "u1", context={"k": [1, 2.5, None]}).session_id
    for n in range(5):
        manager.checkpoint(session_id, "step" if n % 2 else "tool", {"n": n, "s": "é\u2028"})
    return session_id


def prepared_on_the_pool(manager: SessionManager) -> set[bytes]:
    pool = manager.store._pool  # type: ignore[attr-defined]  # white-box: the pooled connection
    conn = pool.getconn()
    try:
        return {row[0].encode() for row in conn.execute("SELECT name FROM pg_prepared_statements")}
    finally:
        pool.putconn(conn)


def test_point_reads_are_prepared_statements_and_answer_like_the_cursor(
    one_connection: tuple[SessionManager, str],
) -> None:
    manager, _ = one_connection
    session_id = written(manager)
    latest, tool = manager.last_checkpoint(session_id), manager.last_checkpoint(session_id, "tool")
    session = manager.get(session_id)
    assert prepared_on_the_pool(manager) >= READS
    cursor_rows = manager.checkpoints(session_id)  # a cursor read (not a point read) of the same rows
    assert latest == cursor_rows[-1] and tool == cursor_rows[-1]  # n=4 is a "tool"
    assert manager.last_checkpoint(session_id, "step") == cursor_rows[-2]
    assert manager.last_checkpoint(session_id, "never") is None
    assert session == manager.list(user_id="u1").items[0]
    assert latest is not None and latest.data == {"n": 4, "s": "é\u2028"}
    assert latest.timestamp.tzinfo is not None and session.context == {"k": [1, 2.5, None]}


@pytest.fixture
def read_back(one_connection: tuple[SessionManager, str]) -> tuple[SessionManager, str, str, Checkpoint]:
    """The one-connection manager, its connections' name, a written session and its last checkpoint."""
    manager, name = one_connection
    session_id = written(manager)
    expected = manager.last_checkpoint(session_id)
    assert expected is not None
    return manager, name, session_id, expected


def test_an_idle_connection_killed_by_the_server_is_replaced_and_the_read_prepared_again(
    read_back: tuple[SessionManager, str, str, Checkpoint], pg_url: str
) -> None:
    manager, name, session_id, expected = read_back
    with admin(pg_url) as observer:
        terminate(observer, name)
        eventually(lambda: backends(observer, name) == 0)
    time.sleep(0.1)  # the goodbye reaches the idle socket
    assert manager.last_checkpoint(session_id) == expected
    assert manager.get(session_id).session_id == session_id


def test_a_read_whose_connection_dies_in_flight_is_store_unavailable_then_reads_resume(
    read_back: tuple[SessionManager, str, str, Checkpoint], pg_url: str
) -> None:
    manager, name, session_id, expected = read_back
    outcome: list[object] = []
    with admin(pg_url) as blocker, admin(pg_url) as observer:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE checkpoints IN ACCESS EXCLUSIVE MODE")  # the read waits on it

        def read() -> None:
            try:
                outcome.append(manager.last_checkpoint(session_id))
            except Exception as exc:
                outcome.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        eventually(lambda: backends(observer, name, waiting=True) == 1)
        terminate(observer, name)
        reader.join()
        blocker.execute("ROLLBACK")
    assert len(outcome) == 1 and isinstance(outcome[0], StoreUnavailable), outcome
    assert isinstance(outcome[0].__cause__, psycopg.OperationalError)
    assert manager.last_checkpoint(session_id) == expected


def test_the_async_store_reports_a_read_killed_in_flight_the_same_way(pg_url: str) -> None:
    url, name = pool_url(pg_url, 1)

    async def scenario() -> None:
        store = await AsyncPostgresStore.from_url(url)
        with SessionManager(url, worker_id="w") as writer:
            session_id = written(writer)
        expected = await store.last_checkpoint(session_id)
        lock = "LOCK TABLE checkpoints IN ACCESS EXCLUSIVE MODE"
        await killed_while_waiting(pg_url, name, lock, store.last_checkpoint(session_id))
        assert await store.last_checkpoint(session_id) == expected
        assert (await store.get(session_id)).session_id == session_id
        await store.close()

    asyncio.run(scenario())


def test_a_statement_the_server_forgot_or_whose_result_changed_is_prepared_again(
    one_connection: tuple[SessionManager, str],
) -> None:
    manager, _ = one_connection
    session_id = written(manager)
    before = manager.get(session_id)
    pool = manager.store._pool  # type: ignore[attr-defined]
    conn = pool.getconn()
    conn.execute("DEALLOCATE ALL")
    pool.putconn(conn)
    assert manager.get(session_id) == before  # 26000: prepared again
    conn = pool.getconn()
    conn.execute("ALTER TABLE sessions ADD COLUMN added_later integer")  # as a later migration may
    pool.putconn(conn)
    assert manager.get(session_id) == before  # 0A000, "cached plan must not change result type"


def test_a_nul_in_a_point_reads_parameter_is_refused_not_cut_short(pg_store: PostgresStore) -> None:
    """libpq's text parameters end at a NUL: 'a\\x00b' must not read the session 'a'."""
    with pytest.raises(ValidationError):
        pg_store.last_checkpoint("a\x00b")
    with pytest.raises(ValidationError):
        pg_store.get("a\x00b")


@pytest.mark.parametrize("spin", ["0", "1000"])
def test_reads_answer_the_same_with_and_without_spinning(pg_url: str, spin: str) -> None:
    with SessionManager(f"{pg_url}&read_spin_us={spin}", worker_id="w") as manager:
        session_id = written(manager)
        assert manager.last_checkpoint(session_id) == manager.checkpoints(session_id)[-1]


def test_the_spin_is_read_from_the_url_in_microseconds() -> None:
    assert PoolSettings.from_url("postgresql://db/app").read_spin == 100e-6
    settings = PoolSettings.from_url("postgresql://db/app?read_spin_us=0&pool_max=3")
    assert settings.read_spin == 0 and "read_spin" not in settings.conninfo


def test_the_spin_rests_after_misses_in_a_row_and_then_tries_again() -> None:
    spin = Spin(100e-6)
    for _ in range(Spin.MISSES - 1):
        assert spin.budget() == 100e-6
        spin.record(False)
    spin.record(True)  # a hit in between: the count starts again
    for _ in range(Spin.MISSES):
        assert spin.budget() == 100e-6
        spin.record(False)
    assert [spin.budget() for _ in range(Spin.REST)] == [0.0] * Spin.REST
    assert spin.budget() == 100e-6


def reply_after(delay: float) -> tuple[socket.socket, Step[bytes]]:
    """A socket whose reply comes `delay` seconds from now, and a step that waits for it."""
    ours, theirs = socket.socketpair()
    threading.Timer(delay, theirs.sendall, (b"reply",)).start()

    def step() -> Step[bytes]:
        yield READ
        theirs.close()
        return ours.recv(16)

    return ours, step()


def test_a_wait_records_whether_the_reply_came_while_it_spun() -> None:
    spin = Spin(0.5)  # a reply 5 ms away comes while it spins: a hit clears the misses
    spin.record(False)
    ours, step = reply_after(0.005)
    assert wait(step, ours.fileno(), spin) == b"reply"
    ours.close()
    for _ in range(Spin.MISSES - 1):
        spin.record(False)
    assert spin.budget() == 0.5  # the earlier miss no longer counts
    spin = Spin(100e-6)  # a reply 20 ms away is a miss; the wait then blocks for it
    for _ in range(Spin.MISSES):
        ours, step = reply_after(0.02)
        assert wait(step, ours.fileno(), spin) == b"reply"
        ours.close()
    assert spin.budget() == 0.0  # resting: the next reads block at once


def test_a_lone_append_runs_as_a_prepared_statement_on_the_appends_own_connection(
    one_connection: tuple[SessionManager, str],
) -> None:
    manager, _ = one_connection
    session_id = written(manager)  # five lone appends
    own = manager.store._own.getconn()  # type: ignore[attr-defined]  # white-box: the appends' connection
    assert b"tether_append_checkpoint" in {
        row[0].encode() for row in own.execute("SELECT name FROM pg_prepared_statements")
    }
    stored = manager.checkpoints(session_id)
    assert [cp.seq for cp in stored] == [1, 2, 3, 4, 5]
    assert stored[-1].data == {"n": 4, "s": "é\u2028"} and stored[-1].timestamp.tzinfo is not None
    with pytest.raises(LeaseLost):  # the fence still holds on this path
        manager.checkpoint(session_id, "late", {}, epoch=7)


def test_a_new_store_opens_its_pool_full_so_a_lone_caller_keeps_one_connection(pg_url: str) -> None:
    """A first call that had to wait for the pool's first connection made psycopg_pool open a
    second one, and a lone caller then alternated between two backends (FIFO), each gone cold."""
    store = PostgresStore.from_url(f"{pg_url}&pool_min=1&pool_max=8")
    try:  # opening it migrated the schema: its first call
        assert store._pool.get_stats()["pool_size"] == 1
    finally:
        store.close()


def test_point_statement_parameters_are_sent_as_text_the_server_parses() -> None:
    statement = Prepared.of("t", "SELECT %(a)s::bigint, %(b)s::timestamptz, %(c)s, %(d)s")
    when = datetime(2026, 11, 25, 13, 0, 0, 123456, tzinfo=UTC)
    assert statement.values({"a": 7, "b": when, "c": "x", "d": None}, "utf-8") == [
        b"7",
        b"2026-11-25T13:00:00.123456+00:00",
        b"x",
        None,
    ]
    for bad in (True, datetime(2026, 11, 25), 1.5):  # bools, naive times, floats: not sent as text
        with pytest.raises(TypeError):
            statement.values({"a": bad, "b": when, "c": "x", "d": None}, "utf-8")


def test_appends_keep_one_connection_of_their_own_which_closes_with_the_store(pg_url: str) -> None:
    url, name = pool_url(pg_url, 1)
    manager = SessionManager(url, worker_id="w")
    session_id = manager.create("tutor", "u1").session_id
    backend = manager.store._own.getconn().info.backend_pid  # type: ignore[attr-defined]
    for n in range(5):
        manager.checkpoint(session_id, "step", {"n": n})
    assert manager.store._own.getconn().info.backend_pid == backend  # type: ignore[attr-defined]
    with admin(pg_url) as observer:
        assert backends(observer, name) == 2  # the pool's one, and the appends' own
        manager.close()
        eventually(lambda: backends(observer, name) == 0)
