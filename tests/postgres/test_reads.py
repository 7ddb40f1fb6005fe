"""Point reads (get, last checkpoint, last by name) as psycopg prepared statements: the same answers
as a listing, and a connection killed under a read gives StoreUnavailable or a fresh connection,
never a wrong answer or a driver exception."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

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
from tether import Checkpoint, SessionManager, StoreUnavailable, ValidationError
from tether.stores.postgres import AsyncPostgresStore, PostgresStore

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


def prepared_on_the_pool(manager: SessionManager) -> list[str]:
    pool = manager.store._pool  # type: ignore[attr-defined]  # white-box: the pooled connection
    with pool.connection() as conn:
        return [row["statement"] for row in conn.execute("SELECT statement FROM pg_prepared_statements")]


def test_point_reads_are_prepared_statements_and_answer_like_a_listing(
    one_connection: tuple[SessionManager, str],
) -> None:
    manager, _ = one_connection
    session_id = written(manager)
    latest, tool = manager.last_checkpoint(session_id), manager.last_checkpoint(session_id, "tool")
    for _ in range(6):  # psycopg prepares a statement once it has run 5 times on a connection
        session = manager.get(session_id)
        manager.last_checkpoint(session_id)
    prepared = prepared_on_the_pool(manager)
    assert any("FROM sessions WHERE session_id" in sql for sql in prepared), prepared
    assert any("ORDER BY seq DESC LIMIT 1" in sql for sql in prepared), prepared
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
