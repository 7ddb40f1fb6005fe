"""Deleting, purging and erasing: exactly the chosen sessions go, with their checkpoints."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tether import ManualClock, NotFound, SessionManager, State

from .conftest import MakeSession


def _ids(manager: SessionManager) -> set[str]:
    return {s.session_id for s in manager.list(limit=1000)}


def test_delete_removes_the_session_and_its_checkpoints(
    manager: SessionManager, in_state: MakeSession
) -> None:
    doomed = in_state().session_id
    kept = in_state().session_id
    kept_history = manager.checkpoints(kept)
    manager.delete(doomed)
    with pytest.raises(NotFound):
        manager.get(doomed)
    with pytest.raises(NotFound):
        manager.checkpoints(doomed)
    with pytest.raises(NotFound):
        manager.last_checkpoint(doomed)
    assert _ids(manager) == {kept}
    assert manager.checkpoints(kept) == kept_history


def test_a_deleted_id_can_be_used_again_from_seq_one(manager: SessionManager, in_state: MakeSession) -> None:
    manager.delete(in_state(session_id="reused").session_id)
    manager.create("tutor", "user-1", session_id="reused")
    assert manager.checkpoint("reused", "fresh").seq == 1
    assert [cp.name for cp in manager.checkpoints("reused")] == ["fresh"]
    assert manager.last_checkpoint("reused", "step") is None


def test_delete_of_an_unknown_session_raises_not_found(manager: SessionManager) -> None:
    with pytest.raises(NotFound):
        manager.delete("missing")


def test_purge_removes_only_ended_sessions_older_than_the_cutoff(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    old_completed = in_state(State.COMPLETED).session_id
    old_failed = in_state(State.FAILED).session_id
    old_active = in_state(State.ACTIVE).session_id
    old_paused = in_state(State.PAUSED).session_id
    clock.advance(3600)
    recent_completed = in_state(State.COMPLETED).session_id
    clock.advance(60)
    assert manager.purge(timedelta(minutes=30)) == 2
    assert _ids(manager) == {old_active, old_paused, recent_completed}
    for gone in (old_completed, old_failed):
        with pytest.raises(NotFound):
            manager.checkpoints(gone)


def test_purge_measures_age_from_the_end_not_the_start(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    long_running = in_state().session_id
    clock.advance(7200)
    manager.complete(long_running)
    clock.advance(60)
    assert manager.purge(timedelta(minutes=30)) == 0
    assert _ids(manager) == {long_running}


def test_purge_can_be_limited_to_some_states(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    completed = in_state(State.COMPLETED).session_id
    in_state(State.FAILED)
    clock.advance(3600)
    assert manager.purge(timedelta(minutes=1), states=["failed"]) == 1
    assert _ids(manager) == {completed}


def test_purge_of_live_states_uses_the_last_heartbeat(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    silent = in_state(State.PAUSED).session_id
    beating = in_state(State.PAUSED).session_id
    clock.advance(3600)
    manager.heartbeat(beating)
    assert manager.purge(timedelta(minutes=30), states=[State.PAUSED]) == 1
    assert _ids(manager) == {beating}
    assert silent not in _ids(manager)


def test_purge_accepts_an_absolute_cutoff(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    first = in_state(State.COMPLETED)
    clock.advance(10)
    second = in_state(State.COMPLETED).session_id
    assert first.ended_at is not None
    assert manager.purge(first.ended_at) == 0  # strictly before the cutoff
    assert manager.purge(first.ended_at + timedelta(microseconds=1)) == 1
    assert _ids(manager) == {second}


def test_erase_user_removes_every_session_of_that_user_and_nothing_else(
    manager: SessionManager, in_state: MakeSession
) -> None:
    for state in State:
        in_state(state, user_id="alice")
    bob = {in_state(state, user_id="bob").session_id for state in State}
    bob_history = {sid: manager.checkpoints(sid) for sid in bob}
    alice = {s.session_id for s in manager.list(user_id="alice")}
    assert manager.erase_user("alice") == 4
    assert _ids(manager) == bob
    assert len(manager.list(user_id="alice")) == 0
    for sid in alice:
        with pytest.raises(NotFound):
            manager.checkpoints(sid)
    assert {sid: manager.checkpoints(sid) for sid in bob} == bob_history


def test_erase_of_an_unknown_user_removes_nothing(manager: SessionManager, in_state: MakeSession) -> None:
    in_state()
    assert manager.erase_user("nobody") == 0
    assert len(_ids(manager)) == 1


def test_purge_with_no_states_removes_nothing(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    in_state(State.COMPLETED)
    clock.advance(3600)
    assert manager.purge(timedelta(0), states=[]) == 0
    assert len(_ids(manager)) == 1
