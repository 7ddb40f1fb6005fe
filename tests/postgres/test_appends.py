"""Concurrent appends on PostgreSQL: each caller gets its own outcome, seqs stay gap-free per
session, and a rejected or bad append spoils none of the others."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from psycopg.rows import dict_row

from tether import (
    AsyncSessionManager,
    Checkpoint,
    InvalidTransition,
    LeaseLost,
    NotFound,
    SessionManager,
    ValidationError,
)
from tether.core.model import NewCheckpoint
from tether.core.postgres_url import PoolSettings
from tether.stores.postgres import PostgresStore, calls
from tether.stores.postgres.connection import Connection
from tether.stores.postgres.mapping import Append
from tether.stores.postgres.store import drive


def in_threads(calls: list[Callable[[], object]]) -> dict[int, object]:
    """Run the calls at once; each one's result or exception, by position."""
    outcomes: dict[int, object] = {}
    start = threading.Barrier(len(calls))

    def call(n: int) -> None:
        start.wait()
        try:
            outcomes[n] = calls[n]()
        except Exception as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_rejected_appends_spoil_none_of_the_others(pg_store: PostgresStore) -> None:
    manager = SessionManager(pg_store, worker_id="w")
    good, other, paused = (manager.create("tutor", "u1").session_id for _ in range(3))
    manager.pause(paused)
    at = datetime.now(UTC)
    outcomes = in_threads(
        [
            lambda: manager.checkpoint(good, "a", {"n": 1}, epoch=1),
            lambda: manager.checkpoint(other, "stale", {}, epoch=7),  # LeaseLost
            lambda: manager.checkpoint(good, "b", {"n": 2}, epoch=1),
            lambda: manager.checkpoint(paused, "paused", {}),  # InvalidTransition
            lambda: manager.checkpoint("no-such-session", "x", {}),  # NotFound
            lambda: manager.checkpoint(other, "c", {}),  # no epoch: accepted
            lambda: pg_store.append(other, NewCheckpoint("bad\x00name", at, "{}", {}), None),
        ]
    )
    assert isinstance(outcomes[1], LeaseLost) and outcomes[1].current_epoch == 1
    assert isinstance(outcomes[3], InvalidTransition)
    assert isinstance(outcomes[4], NotFound)
    assert isinstance(outcomes[6], ValidationError)
    stored_good = sorted([outcomes[0], outcomes[2]], key=lambda cp: cp.seq)  # type: ignore[attr-defined]
    assert [cp.seq for cp in stored_good] == [1, 2]
    assert sorted((cp.seq, cp.name) for cp in manager.checkpoints(good)) in (
        [(1, "a"), (2, "b")],
        [(1, "b"), (2, "a")],
    )
    assert [(cp.seq, cp.name) for cp in manager.checkpoints(other)] == [(1, "c")]
    assert manager.checkpoints(paused)[-1].name == "session_paused"
    assert manager.get(good).last_seq == 2 and manager.get(other).last_seq == 1


def test_sixteen_threads_on_four_sessions_get_gap_free_seqs(pg_url: str) -> None:
    store = PostgresStore.from_url(f"{pg_url}&pool_max=4")
    manager = SessionManager(store, worker_id="w")
    sessions = [manager.create("tutor", "u1").session_id for _ in range(4)]
    acknowledged: dict[str, dict[int, tuple[int, int]]] = {sid: {} for sid in sessions}
    lock = threading.Lock()

    def writer(w: int) -> None:
        sid = sessions[w % 4]
        for n in range(40):
            cp = manager.checkpoint(sid, "step", {"w": w, "n": n}, epoch=1)
            with lock:
                assert cp.seq not in acknowledged[sid]
                acknowledged[sid][cp.seq] = (w, n)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sid in sessions:
        history = manager.checkpoints(sid, limit=1000)
        assert [cp.seq for cp in history] == list(range(1, 161))
        assert {cp.seq: (cp.data["w"], cp.data["n"]) for cp in history} == acknowledged[sid]
        assert manager.get(sid).last_seq == 160
    store.close()


def test_a_batch_settles_what_it_can_and_leaves_the_rest_to_its_callers(pg_url: str) -> None:
    """The group commit's statement, driven on a connection: stored appends get gap-free seqs in
    batch order, a fenced one gets None, and appends to a session whose row another transaction
    holds, or to no session, are left to their callers (it never waits on a lock). A value
    PostgreSQL refuses fails the statement, which then leaves every append to its caller."""
    manager = SessionManager(pg_url, worker_id="w")
    a, b, locked = (manager.create("tutor", "u1").session_id for _ in range(3))
    conninfo = PoolSettings.from_url(pg_url).conninfo

    def new(name: str = "step") -> NewCheckpoint:
        return NewCheckpoint(name, datetime.now(UTC), "{}", {})

    def batch(appends: list[Append]) -> list[calls.Outcome]:
        operation = calls.append_batch(appends)
        with Connection.connect(conninfo, autocommit=True, row_factory=dict_row) as conn:
            return drive(conn, operation, next(operation))

    with psycopg.connect(conninfo, autocommit=True) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT 1 FROM sessions WHERE session_id = %s FOR UPDATE", (locked,))
        appends = [Append(a, new(), 1), Append(b, new(), 7), Append(locked, new(), None)]
        outcomes = batch([*appends, Append(a, new(), None), Append("no-such-session", new(), None)])
        refused = batch([Append(b, new(), None), Append(b, new("bad\x00name"), None)])
        blocker.execute("ROLLBACK")
    first, fenced, left, second, missing = outcomes
    assert isinstance(first, Checkpoint) and isinstance(second, Checkpoint)
    assert (first.seq, second.seq) == (1, 2)
    assert fenced is None
    assert left is missing is calls.Unsettled.ALONE
    assert refused == [calls.Unsettled.ALONE, calls.Unsettled.ALONE]
    assert [cp.seq for cp in manager.checkpoints(a)] == [1, 2] and manager.get(a).last_seq == 2
    assert manager.checkpoints(b) == [] and manager.checkpoints(locked) == []
    manager.close()


def test_appends_of_other_sessions_never_wait_behind_a_locked_one(pg_url: str) -> None:
    """While an append waits on a session row another transaction holds, appends to other sessions
    from other threads of the same process are stored (the group commit does not wait on it); once
    the row is free, the waiting appends are stored too."""
    manager = SessionManager(f"{pg_url}&lock_timeout=60", worker_id="w")
    locked, *others = (manager.create("tutor", "u1").session_id for _ in range(5))
    outcomes: dict[str, object] = {}

    def append(sid: str, key: str) -> threading.Thread:
        def run() -> None:
            try:
                outcomes[key] = manager.checkpoint(sid, "step", {"key": key})
            except Exception as exc:
                outcomes[key] = exc

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    with psycopg.connect(PoolSettings.from_url(pg_url).conninfo, autocommit=True) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT 1 FROM sessions WHERE session_id = %s FOR UPDATE", (locked,))
        waiting = [append(locked, "first")]
        time.sleep(0.3)  # the first append is on the lock; the others come while it is in flight
        waiting.append(append(locked, "second"))
        free = [append(sid, sid) for sid in others]
        for thread in free:
            thread.join(timeout=30)  # far below lock_timeout: they must not be waiting on the lock
        assert not any(thread.is_alive() for thread in free)
        assert [outcomes[sid].seq for sid in others] == [1, 1, 1, 1]  # type: ignore[attr-defined]
        assert all(thread.is_alive() for thread in waiting)
        blocker.execute("ROLLBACK")
    for thread in waiting:
        thread.join()
    assert sorted(outcomes[key].seq for key in ("first", "second")) == [1, 2]  # type: ignore[attr-defined]
    manager.close()


def test_coroutines_appending_at_once_get_gap_free_seqs_and_skip_a_locked_session(pg_url: str) -> None:
    """The async store's group commit: 16 coroutines on 4 sessions get every seq once, in the
    order acknowledged, while a fifth session's row is held by another transaction, whose appends
    wait alone and land once it is free."""

    async def scenario() -> None:
        manager = AsyncSessionManager(f"{pg_url}&lock_timeout=60", worker_id="w")
        sessions = [(await manager.create("tutor", "u1")).session_id for _ in range(5)]
        locked, free = sessions[0], sessions[1:]
        acknowledged: dict[str, dict[int, tuple[int, int]]] = {sid: {} for sid in free}

        async def writer(w: int) -> None:
            sid = free[w % 4]
            for n in range(25):
                cp = await manager.checkpoint(sid, "step", {"w": w, "n": n}, epoch=1)
                assert cp.seq not in acknowledged[sid]
                acknowledged[sid][cp.seq] = (w, n)

        with psycopg.connect(PoolSettings.from_url(pg_url).conninfo, autocommit=True) as blocker:
            blocker.execute("BEGIN")
            blocker.execute("SELECT 1 FROM sessions WHERE session_id = %s FOR UPDATE", (locked,))
            waiting = asyncio.ensure_future(manager.checkpoint(locked, "step", {}))
            await asyncio.wait_for(asyncio.gather(*(writer(w) for w in range(16))), timeout=30)
            assert not waiting.done()
            blocker.execute("ROLLBACK")
        assert (await waiting).seq == 1
        for sid in free:
            history = await manager.checkpoints(sid, limit=1000)
            assert [cp.seq for cp in history] == list(range(1, 101))
            assert {cp.seq: (cp.data["w"], cp.data["n"]) for cp in history} == acknowledged[sid]
        await manager.close()

    asyncio.run(scenario())
