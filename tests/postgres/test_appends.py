"""Concurrent appends on PostgreSQL: each caller gets its own outcome, seqs stay gap-free per
session, and a rejected or bad append spoils none of the others."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from tether import InvalidTransition, LeaseLost, NotFound, SessionManager, ValidationError
from tether.core.model import NewCheckpoint
from tether.stores.postgres import PostgresStore


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
