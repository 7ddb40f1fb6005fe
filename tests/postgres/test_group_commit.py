"""Group commit on PostgreSQL: appends queued while another commits go out as one statement and one
commit; each caller gets its own outcome, seqs stay gap-free, a bad append fails alone.

Batches are made deterministic by holding the first append on a row lock (another connection has
the session row FOR UPDATE): everything queued meanwhile is the next batch."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import pytest

from tether import InvalidTransition, LeaseLost, NotFound, SessionManager, ValidationError
from tether.core.model import NewCheckpoint
from tether.core.postgres_url import PoolSettings
from tether.stores.postgres import AsyncPostgresStore, PostgresStore


def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


@contextmanager
def row_locked(pg_url: str, session_id: str) -> Iterator[None]:
    """Hold the session's row lock from another connection until the block ends."""
    with psycopg.connect(PoolSettings.from_url(pg_url).conninfo, autocommit=True) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT 1 FROM sessions WHERE session_id = %s FOR UPDATE", (session_id,))
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")


class Batches:
    """Counts the batches the store commits and their sizes (white-box, around the real commit)."""

    def __init__(self, store: PostgresStore) -> None:
        self.sizes: list[int] = []
        commit = store._appends._apply

        def counted(jobs: list[object]) -> None:
            self.sizes.append(len(jobs))
            commit(jobs)  # type: ignore[arg-type]

        store._appends._apply = counted  # type: ignore[method-assign]


def in_threads(calls: list[Callable[[], object]]) -> tuple[list[threading.Thread], dict[int, object]]:
    outcomes: dict[int, object] = {}

    def call(n: int) -> None:
        try:
            outcomes[n] = calls[n]()
        except Exception as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    return threads, outcomes


def test_rejected_appends_in_a_batch_spoil_none_of_the_others(pg_store: PostgresStore, pg_url: str) -> None:
    manager = SessionManager(pg_store, worker_id="w")
    held, good, other, paused = (manager.create("tutor", "u1").session_id for _ in range(4))
    manager.pause(paused)
    batches = Batches(pg_store)
    with row_locked(pg_url, held):
        first, _ = in_threads([lambda: manager.checkpoint(held, "first", {}, epoch=1)])
        eventually(lambda: pg_store._appends._leading)
        calls: list[Callable[[], object]] = [
            lambda: manager.checkpoint(good, "a", {"n": 1}, epoch=1),
            lambda: manager.checkpoint(other, "stale", {}, epoch=7),  # LeaseLost
            lambda: manager.checkpoint(good, "b", {"n": 2}, epoch=1),
            lambda: manager.checkpoint(paused, "paused", {}),  # InvalidTransition
            lambda: manager.checkpoint("no-such-session", "x", {}),  # NotFound
            lambda: manager.checkpoint(other, "c", {}),  # no epoch: accepted
        ]
        threads, outcomes = in_threads(calls)
        eventually(lambda: len(pg_store._appends._queue) == len(calls))
    for t in [*first, *threads]:
        t.join()
    assert batches.sizes == [1, len(calls)]  # the held one alone, then all six in one statement
    assert isinstance(outcomes[1], LeaseLost) and outcomes[1].current_epoch == 1
    assert isinstance(outcomes[3], InvalidTransition)
    assert isinstance(outcomes[4], NotFound)
    stored_good = sorted([outcomes[0], outcomes[2]], key=lambda cp: cp.seq)  # type: ignore[attr-defined]
    assert [(cp.seq, cp.name) for cp in stored_good] == [(1, "a"), (2, "b")]  # queue order
    assert [(cp.seq, cp.name) for cp in manager.checkpoints(good)] == [(1, "a"), (2, "b")]
    assert [(cp.seq, cp.name) for cp in manager.checkpoints(other)] == [(1, "c")]
    assert manager.checkpoints(paused)[-1].name == "session_paused"
    assert manager.get(good).last_seq == 2 and manager.get(other).last_seq == 1


def test_a_batch_whose_statement_fails_retries_each_append_so_a_bad_one_fails_alone(
    pg_store: PostgresStore, pg_url: str
) -> None:
    manager = SessionManager(pg_store, worker_id="w")
    held, target = (manager.create("tutor", "u1").session_id for _ in range(2))
    at = datetime.now(UTC)
    batches = Batches(pg_store)
    with row_locked(pg_url, held):
        first, _ = in_threads([lambda: manager.checkpoint(held, "first", {})])
        eventually(lambda: pg_store._appends._leading)
        calls: list[Callable[[], object]] = [
            lambda: pg_store.append(target, NewCheckpoint("ok-1", at, '{"n":1}', {"n": 1}), None),
            lambda: pg_store.append(target, NewCheckpoint("bad\x00name", at, "{}", {}), None),
            lambda: pg_store.append(target, NewCheckpoint("ok-2", at, '{"n":2}', {"n": 2}), None),
        ]
        threads, outcomes = in_threads(calls)
        eventually(lambda: len(pg_store._appends._queue) == len(calls))
    for t in [*first, *threads]:
        t.join()
    assert batches.sizes == [1, 3]
    assert isinstance(outcomes[1], ValidationError)
    assert [(cp.seq, cp.name, cp.data) for cp in manager.checkpoints(target)] == [
        (1, "ok-1", {"n": 1}),
        (2, "ok-2", {"n": 2}),
    ]


def test_sixteen_threads_on_four_sessions_get_gap_free_seqs_in_shared_commits(pg_url: str) -> None:
    store = PostgresStore.from_url(f"{pg_url}&pool_max=4")
    manager = SessionManager(store, worker_id="w")
    sessions = [manager.create("tutor", "u1").session_id for _ in range(4)]
    batches = Batches(store)
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
    assert sum(batches.sizes) == 640 and max(batches.sizes) > 1  # some appends shared a commit
    store.close()


def test_async_appends_share_a_statement_and_get_their_own_outcomes(pg_url: str) -> None:
    async def scenario() -> None:
        store = await AsyncPostgresStore.from_url(pg_url)
        manager_store = PostgresStore.from_url(pg_url)  # to set up sessions and read them back
        manager = SessionManager(manager_store, worker_id="w")
        held, good = (manager.create("tutor", "u1").session_id for _ in range(2))
        at = datetime.now(UTC)
        sizes: list[int] = []
        commit = store._appends._commit

        async def counted(jobs: list[object]) -> None:
            sizes.append(len(jobs))
            await commit(jobs)  # type: ignore[arg-type]

        store._appends._commit = counted  # type: ignore[method-assign]
        with row_locked(pg_url, held):
            first = asyncio.create_task(store.append(held, NewCheckpoint("first", at, "{}", {}), None))
            await asyncio.sleep(0.2)  # the drain task waits on the row lock with the first batch
            others = [
                asyncio.create_task(store.append(good, NewCheckpoint(f"s{n}", at, "{}", {}), 1))
                for n in range(3)
            ]
            stale = asyncio.create_task(store.append(good, NewCheckpoint("stale", at, "{}", {}), 9))
            await asyncio.sleep(0.05)
        assert (await first).seq == 1
        assert sorted([(await t).seq for t in others]) == [1, 2, 3]
        with pytest.raises(LeaseLost):
            await stale
        assert sizes == [1, 4]
        assert [cp.name for cp in manager.checkpoints(good)] == ["s0", "s1", "s2"]
        await store.close()
        manager_store.close()

    asyncio.run(scenario())
