"""Races between writers: each one resolves to exactly one winner and a history without holes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tether import ConflictError, InvalidTransition, ManualClock, Policies, SessionManager, State, TetherError
from tether.core.model import Session
from tether.flows.runner import run
from tether.lifecycle import Write
from tether.stores import Store

from .conftest import ALL_CHECKPOINTS, MakeSession


def _race(calls: list[Callable[[], Any]]) -> tuple[list[Any], list[BaseException]]:
    """Start every call at once; return (results of those that returned, exceptions of the rest)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            value = call()
        except BaseException as exc:  # collected and asserted on by the test
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(value)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_writers_with_the_same_expected_version_have_one_winner(
    manager: SessionManager, in_state: MakeSession
) -> None:
    session = in_state()
    results, errors = _race(
        [
            (
                lambda n=n: manager.update(
                    session.session_id, context={"writer": n}, expected_version=session.version
                )
            )
            for n in range(6)
        ]
    )
    assert len(results) == 1 and len(errors) == 5
    assert all(type(e) is ConflictError for e in errors)
    stored = manager.get(session.session_id)
    assert (stored.version, stored.context) == (session.version + 1, results[0].context)


def test_a_session_ends_exactly_once(manager: SessionManager, in_state: MakeSession) -> None:
    sid = in_state().session_id
    enders: list[Callable[[], Any]] = [lambda: manager.complete(sid, {"by": "complete"})] * 3
    enders += [lambda: manager.fail(sid, "crash")] * 3
    results, errors = _race(enders)
    assert len(results) == 1
    assert len(errors) == 5 and all(isinstance(e, InvalidTransition) for e in errors)
    names = [cp.name for cp in manager.checkpoints(sid, limit=ALL_CHECKPOINTS)]
    final = "session_completed" if results[0].state is State.COMPLETED else "session_failed"
    assert names == ["task_received", "step", final]
    assert manager.get(sid) == results[0]


def test_no_checkpoint_is_accepted_after_the_session_left_active(
    manager: SessionManager, in_state: MakeSession
) -> None:
    sid = in_state().session_id
    stop = threading.Event()
    refused: list[TetherError] = []

    def append_until_refused() -> None:
        n = 0
        while not stop.is_set():
            try:
                manager.checkpoint(sid, "work", {"n": n})
            except InvalidTransition as exc:
                refused.append(exc)
                return
            n += 1

    appenders = [threading.Thread(target=append_until_refused) for _ in range(3)]
    for t in appenders:
        t.start()
    manager.pause(sid)
    stop.set()
    for t in appenders:
        t.join()
    history = manager.checkpoints(sid, limit=ALL_CHECKPOINTS)
    assert [cp.seq for cp in history] == list(range(1, len(history) + 1))
    assert history[-1].name == "session_paused"
    assert [cp.name for cp in history].count("session_paused") == 1


def test_concurrent_claim_next_hands_each_session_to_one_worker(
    manager: SessionManager, clock: ManualClock
) -> None:
    expected = {manager.create("tutor", "user-1").session_id for _ in range(5)}
    clock.advance(61)
    results, errors = _race([(lambda n=n: manager.claim_next(["tutor"], f"worker-{n}")) for n in range(8)])
    assert errors == []
    claimed = [s for s in results if s is not None]
    assert sorted(s.session_id for s in claimed) == sorted(expected)
    assert len({s.owner for s in claimed}) == 5
    for session in claimed:
        stored = manager.get(session.session_id)
        assert (stored.owner, stored.epoch, stored.state) == (session.owner, 2, State.ACTIVE)


def test_heartbeats_racing_transitions_lose_neither(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    session = in_state()
    clock.advance(5)
    beats = [lambda: manager.heartbeat(session.session_id, phase="busy")] * 4
    updates = [(lambda n=n: manager.update(session.session_id, metadata={"n": n})) for n in range(4)]
    _, errors = _race(beats + updates)
    assert errors == []
    stored = manager.get(session.session_id)
    assert stored.version == session.version + 4  # every update applied, none lost to a retry limit
    assert (stored.last_heartbeat, stored.phase) == (clock.now(), "busy")  # no update rolled a beat back


def test_workers_draining_claim_next_take_every_session_exactly_once(
    manager: SessionManager, clock: ManualClock
) -> None:
    expected = {manager.create("tutor", f"user-{n % 3}").session_id for n in range(40)}
    clock.advance(61)

    def drain(worker: str) -> list[str]:
        taken = []
        while (session := manager.claim_next(["tutor"], worker)) is not None:
            taken.append(session.session_id)
        return taken

    results, errors = _race([(lambda n=n: drain(f"worker-{n}")) for n in range(8)])
    assert errors == []
    taken = [sid for batch in results for sid in batch]
    assert sorted(taken) == sorted(expected)  # each exactly once
    assert manager.claim_next(["tutor"], "late-worker") is None


class _AppendBeforeApply:
    """The store, with the old owner's append landing between a claim's read and its write."""

    def __init__(self, store: Store, append: Callable[[], object]) -> None:
        self._store, self._append = store, append

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def apply(self, write: Write) -> Session:
        if self._append is not None:
            self._append()
            self._append = None
        return self._store.apply(write)


def test_claim_audit_names_a_checkpoint_appended_just_before_it(
    store: Store, policies: Policies, clock: ManualClock
) -> None:
    """Appends do not change the version a claim compares; its record must not miss one anyway."""
    old = SessionManager(store, policies=policies, worker_id="old-owner")
    session = old.create("tutor", "u")
    old.checkpoint(session.session_id, "step", {"n": 1})
    clock.advance(61)
    late = _AppendBeforeApply(store, lambda: old.checkpoint(session.session_id, "step", {"n": 2}, epoch=1))
    claimed = run(old.ops.claim(session.session_id, "new-owner"), late)
    recovered = store.last_checkpoint(session.session_id)
    assert recovered is not None and recovered.name == "session_recovered"
    assert recovered.data["resumed_from_seq"] == recovered.seq - 1 == 2
    assert claimed.epoch == 2
