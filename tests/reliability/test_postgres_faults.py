"""PostgreSQL faults a user meets at 3 a.m.: backends terminated under load (a restart, a failover,
an administrator), every idle connection killed at once, and a session's row locked by somebody
else's transaction. Each checks: nothing acknowledged lost or duplicated, typed errors while it
lasts, one stuck session stalls nobody else, and calls succeed again afterwards.

Only backends of this test's own connections are terminated (their application_name is unique)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from tests.postgres.test_connection_loss import (
    admin,
    assert_nothing_acknowledged_lost,
    backends,
    eventually,
    killed_under_load,
    pool_url,
    terminate,
)
from tether import SessionManager, StoreUnavailable


@pytest.fixture
def pg_url() -> str:
    from tests.conftest import fresh_postgres_url

    return fresh_postgres_url()


def test_backends_terminated_at_random_under_load_lose_nothing_acknowledged(pg_url: str) -> None:
    chance = random.Random(14)
    pauses = [chance.uniform(0.02, 0.25) for _ in range(12)]
    manager, acknowledged, failures = killed_under_load(pg_url, 6, pauses, read_back=True)
    assert failures, "no call was in flight when a backend died: the test killed nothing"
    assert_nothing_acknowledged_lost(manager, acknowledged, failures)


def test_after_every_idle_backend_was_terminated_the_next_call_succeeds(pg_url: str) -> None:
    """With a short pool timeout: a call that had to wait it out would fail (issue 14)."""
    url, name = pool_url(pg_url, 8)
    manager = SessionManager(f"{url}&pool_timeout=2", worker_id="w")
    session_id = manager.create("tutor", "u1").session_id
    with admin(pg_url) as observer:
        eventually(lambda: backends(observer, name) == 8)
        terminate(observer, name)
        eventually(lambda: backends(observer, name) == 0)
    time.sleep(0.1)  # the goodbye reaches the idle sockets
    assert manager.get(session_id).session_id == session_id
    assert [manager.checkpoint(session_id, "step", {"n": n}).seq for n in range(3)] == [1, 2, 3]
    manager.close()


def test_a_row_locked_elsewhere_stalls_only_its_session_and_ends_in_a_typed_error(pg_url: str) -> None:
    manager = SessionManager(f"{pg_url}&lock_timeout=1&pool_max=4", worker_id="w")
    locked, free = (manager.create("tutor", "u1").session_id for _ in range(2))
    outcome: list[object] = []
    with admin(pg_url) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM sessions WHERE session_id = %s FOR UPDATE", (locked,))

        def append_to_the_locked_one() -> None:
            try:
                outcome.append(manager.checkpoint(locked, "blocked", {}))
            except Exception as exc:
                outcome.append(exc)

        stuck = threading.Thread(target=append_to_the_locked_one)
        stuck.start()
        # Meanwhile, other sessions go on, on other threads of the same process.
        assert [manager.checkpoint(free, "step", {"n": n}).seq for n in range(20)] == list(range(1, 21))
        stuck.join(timeout=30)
        assert not stuck.is_alive(), "the append waited for as long as the lock was held"
        holder.execute("ROLLBACK")
    assert len(outcome) == 1 and isinstance(outcome[0], StoreUnavailable), outcome
    assert locked in str(outcome[0]) and "lock_timeout" in str(outcome[0])
    assert manager.checkpoint(locked, "after", {}).seq == 1  # the timed-out append wrote nothing
    manager.close()


def test_every_read_and_write_on_a_locked_row_waits_a_bounded_time(pg_url: str) -> None:
    manager = SessionManager(f"{pg_url}&lock_timeout=0.5", worker_id="w")
    session_id = manager.create("tutor", "u1").session_id
    with admin(pg_url) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM sessions WHERE session_id = %s FOR UPDATE", (session_id,))
        for write in (
            lambda: manager.heartbeat(session_id),
            lambda: manager.update(session_id, metadata={"k": 1}),
            lambda: manager.pause(session_id),
            lambda: manager.delete(session_id),
        ):
            with pytest.raises(StoreUnavailable, match=session_id):
                write()
        assert manager.get(session_id).version == 1  # reads never wait for a row lock
        holder.execute("ROLLBACK")
    assert manager.pause(session_id).version == 2
    manager.close()
