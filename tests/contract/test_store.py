"""Guarantees of the Store itself, below the manager: compare-and-set, fencing, batches, claims."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tether import (
    Beat,
    ConflictError,
    InvalidTransition,
    LeaseLost,
    ManualClock,
    NotFound,
    SessionManager,
    State,
    lifecycle,
)
from tether.core.model import NewCheckpoint
from tether.stores import Store

from .conftest import ALL_CHECKPOINTS, MakeSession


def _new(name: str, clock: ManualClock) -> NewCheckpoint:
    return NewCheckpoint(name, clock.now(), '{"k":"v"}', {"k": "v"})


def test_apply_with_a_stale_version_is_a_conflict_and_writes_nothing(
    store: Store, manager: SessionManager, clock: ManualClock
) -> None:
    read = manager.create("tutor", "user-1")
    manager.update(read.session_id, context={"moved": True})
    current = store.get(read.session_id)
    with pytest.raises(ConflictError) as caught:
        store.apply(lifecycle.pause(read, clock.now()))
    assert (caught.value.expected_version, caught.value.actual_version) == (1, 2)
    assert store.get(read.session_id) == current
    assert store.checkpoints(read.session_id) == []


def test_apply_of_an_unknown_session_is_not_found(
    store: Store, manager: SessionManager, clock: ManualClock
) -> None:
    session = manager.create("tutor", "user-1")
    manager.delete(session.session_id)
    with pytest.raises(NotFound):
        store.apply(lifecycle.pause(session, clock.now()))


def test_apply_keeps_a_heartbeat_that_arrived_after_the_read(
    store: Store, manager: SessionManager, clock: ManualClock
) -> None:
    read = manager.create("tutor", "user-1")
    clock.advance(20)
    store.heartbeat([Beat(read.session_id, 1, "late phase")])
    clock.advance(1)
    paused = store.apply(lifecycle.pause(read, clock.now()))
    beat_at = clock.now() - timedelta(seconds=1)
    assert (paused.last_heartbeat, paused.phase) == (beat_at, "late phase")
    assert paused.lease_expires_at == beat_at + timedelta(seconds=60)
    assert store.get(read.session_id) == paused


def test_apply_of_a_lease_renewing_write_sets_the_liveness_columns(
    store: Store, manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    read = in_state(State.PAUSED)
    clock.advance(100)
    resumed = store.apply(lifecycle.resume(read, manager.policies.for_type("tutor"), clock.now()))
    assert (resumed.last_heartbeat, resumed.lease_expires_at) == (
        clock.now(),
        clock.now() + timedelta(seconds=60),
    )


def test_apply_appends_the_write_s_checkpoint_with_the_next_seq(
    store: Store, in_state: MakeSession, clock: ManualClock
) -> None:
    read = in_state()
    after = store.apply(lifecycle.complete(read, clock.now(), {"r": 1}))
    assert (after.state, after.version, after.last_seq) == (State.COMPLETED, read.version + 1, 3)
    last = store.last_checkpoint(read.session_id)
    assert last is not None and (last.seq, last.name) == (3, "session_completed")


def test_fenced_append_checks_epoch_and_state(
    store: Store, in_state: MakeSession, clock: ManualClock
) -> None:
    active = in_state().session_id
    assert store.append(active, _new("ok", clock), 1).seq == 3
    assert store.append(active, _new("unfenced", clock), None).seq == 4
    with pytest.raises(LeaseLost):
        store.append(active, _new("zombie", clock), 2)
    paused = in_state(State.PAUSED).session_id
    with pytest.raises(InvalidTransition):
        store.append(paused, _new("late", clock), 1)
    with pytest.raises(NotFound):
        store.append("missing", _new("x", clock), None)
    assert [cp.name for cp in store.checkpoints(active, limit=ALL_CHECKPOINTS)][-2:] == ["ok", "unfenced"]
    assert store.get(active).last_seq == 4


def test_heartbeat_batch_applies_each_beat_on_its_own(
    store: Store, manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    expired = manager.create("tutor", "user-1").session_id
    clock.advance(61)
    live = manager.create("tutor", "user-1").session_id
    paused = in_state(State.PAUSED).session_id
    clock.advance(5)
    results = store.heartbeat([Beat(live), Beat(expired, 1), Beat(paused, 1, "idle"), Beat(live, 9)])
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], LeaseLost) and isinstance(results[3], LeaseLost)
    assert store.get(live).last_heartbeat == clock.now()
    assert store.get(paused).phase == "idle"
    assert store.get(expired).last_heartbeat == clock.now() - timedelta(seconds=66)


def test_an_empty_heartbeat_batch_is_fine(store: Store) -> None:
    assert store.heartbeat([]) == []


def test_claimable_lists_expired_and_recoverable_sessions_only(
    store: Store, manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    expired = manager.create("tutor", "user-1").session_id
    grader = manager.create("grader", "user-1").session_id
    recoverable = in_state(State.FAILED).session_id
    manager.fail(in_state().session_id, "x", final=True)
    clock.advance(61)
    in_state(State.ACTIVE)
    in_state(State.PAUSED)
    in_state(State.COMPLETED)
    assert {s.session_id for s in store.claimable(None, 100)} == {expired, grader, recoverable}
    assert {s.session_id for s in store.claimable(frozenset({"grader"}), 100)} == {grader}
    assert len(store.claimable(None, 2)) == 2


def test_create_rejects_an_existing_id(store: Store, manager: SessionManager) -> None:
    session = manager.create("tutor", "user-1")
    with pytest.raises(ConflictError):
        store.create(replace(session, user_id="intruder"))
    assert store.get(session.session_id) == session


def test_get_reports_the_current_last_seq(store: Store, manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    for _ in range(3):
        manager.checkpoint(sid, "step")
    assert store.get(sid).last_seq == 3


def test_migrate_is_idempotent_and_reports_a_version(store: Store) -> None:
    first = store.migrate()
    assert first >= 1
    assert store.migrate() == first


def test_close_is_idempotent(store: Store) -> None:
    store.close()
    store.close()
