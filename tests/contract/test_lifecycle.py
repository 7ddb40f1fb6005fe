"""The state machine as seen through the manager: every (state, action) pair, lifecycle
checkpoints, duration, and optimistic concurrency."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tether import ConflictError, InvalidTransition, ManualClock, SessionManager, State

from .conftest import ALL_CHECKPOINTS, MakeSession, Unchanged

ACTIONS: dict[str, Callable[[SessionManager, str], Any]] = {
    "pause": lambda m, sid: m.pause(sid),
    "resume": lambda m, sid: m.resume(sid),
    "complete": lambda m, sid: m.complete(sid, {"ok": True}),
    "fail": lambda m, sid: m.fail(sid, "boom"),
    "checkpoint": lambda m, sid: m.checkpoint(sid, "step", {"x": 1}),
    "heartbeat": lambda m, sid: m.heartbeat(sid),
    "update": lambda m, sid: m.update(sid, context={"updated": True}),
}

# ARCHITECTURE.md's table: the state each allowed action leads to; every other pair is refused.
ALLOWED: dict[State, dict[str, State]] = {
    State.ACTIVE: {
        "pause": State.PAUSED,
        "complete": State.COMPLETED,
        "fail": State.FAILED,
        "checkpoint": State.ACTIVE,
        "heartbeat": State.ACTIVE,
        "update": State.ACTIVE,
    },
    State.PAUSED: {
        "resume": State.ACTIVE,
        "fail": State.FAILED,
        "heartbeat": State.PAUSED,
        "update": State.PAUSED,
    },
    State.COMPLETED: {},
    State.FAILED: {},
}

PAIRS = [(state, action) for state in State for action in ACTIONS]
ALLOWED_PAIRS = [(s, a) for s, a in PAIRS if a in ALLOWED[s]]
REFUSED_PAIRS = [(s, a) for s, a in PAIRS if a not in ALLOWED[s]]


@pytest.mark.parametrize(("state", "action"), ALLOWED_PAIRS, ids=[f"{s.value}-{a}" for s, a in ALLOWED_PAIRS])
def test_allowed_action_leads_to_the_table_s_state(
    manager: SessionManager, in_state: MakeSession, state: State, action: str
) -> None:
    session = in_state(state)
    ACTIONS[action](manager, session.session_id)
    assert manager.get(session.session_id).state is ALLOWED[state][action]


@pytest.mark.parametrize(("state", "action"), REFUSED_PAIRS, ids=[f"{s.value}-{a}" for s, a in REFUSED_PAIRS])
def test_refused_action_raises_invalid_transition_and_writes_nothing(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged, state: State, action: str
) -> None:
    session = in_state(state)
    with unchanged(session.session_id), pytest.raises(InvalidTransition) as caught:
        ACTIONS[action](manager, session.session_id)
    error = caught.value
    assert (error.session_id, error.state, error.action) == (session.session_id, state.value, action)
    assert session.session_id in str(error) and state.value in str(error)


@pytest.mark.parametrize("action", ["pause", "resume", "complete", "fail", "update"])
def test_each_transition_bumps_the_version_by_one(
    manager: SessionManager, in_state: MakeSession, action: str
) -> None:
    session = in_state(State.PAUSED if action == "resume" else State.ACTIVE)
    after = ACTIONS[action](manager, session.session_id)
    assert after.version == session.version + 1
    assert manager.get(session.session_id) == after


def test_pause_appends_session_paused(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    sid = in_state().session_id
    clock.advance(3)
    paused = manager.pause(sid)
    last = manager.last_checkpoint(sid)
    assert last is not None
    assert (last.seq, last.name, last.data, last.timestamp) == (
        3,
        "session_paused",
        {"previous_state": "active"},
        clock.now(),
    )
    assert (paused.state, paused.state_since, paused.last_seq) == (State.PAUSED, clock.now(), 3)


def test_resume_appends_session_resumed_and_renews_the_lease(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    sid = in_state(State.PAUSED).session_id
    clock.advance(500)
    resumed = manager.resume(sid)
    last = manager.last_checkpoint(sid)
    assert last is not None and (last.name, last.data) == ("session_resumed", {})
    assert resumed.last_heartbeat == clock.now()
    assert resumed.lease_expires_at == clock.now() + timedelta(seconds=60)
    assert resumed.suspect_at == clock.now() + timedelta(seconds=30)


@pytest.mark.parametrize(("result", "stored"), [({"answer": 42}, {"answer": 42}), (None, {})])
def test_complete_appends_session_completed_with_the_result(
    manager: SessionManager,
    in_state: MakeSession,
    clock: ManualClock,
    result: dict[str, Any] | None,
    stored: dict[str, Any],
) -> None:
    sid = in_state().session_id
    clock.advance(7)
    completed = manager.complete(sid, result)
    last = manager.last_checkpoint(sid)
    assert last is not None and (last.name, last.data) == ("session_completed", {"result": stored})
    assert completed.state is State.COMPLETED
    assert completed.ended_at == last.timestamp == clock.now()
    assert completed.failure is None


@pytest.mark.parametrize(("details", "stored"), [({"trace": ["a", "b"]}, {"trace": ["a", "b"]}), (None, {})])
@pytest.mark.parametrize("state", [State.ACTIVE, State.PAUSED])
def test_fail_appends_session_failed_with_error_and_details(
    manager: SessionManager,
    in_state: MakeSession,
    clock: ManualClock,
    state: State,
    details: dict[str, Any] | None,
    stored: dict[str, Any],
) -> None:
    sid = in_state(state).session_id
    clock.advance(7)
    failed = manager.fail(sid, "tool crashed", details)
    last = manager.last_checkpoint(sid)
    assert last is not None
    assert (last.name, last.data) == ("session_failed", {"error": "tool crashed", "details": stored})
    assert failed.state is State.FAILED
    assert failed.ended_at == last.timestamp == clock.now()
    assert failed.failure is not None
    assert (failed.failure.error, failed.failure.details, failed.failure.final) == (
        "tool crashed",
        stored,
        False,
    )


def test_fail_with_final_cannot_be_recovered(manager: SessionManager, in_state: MakeSession) -> None:
    failed = manager.fail(in_state().session_id, "fatal", final=True)
    assert failed.failure is not None and failed.failure.final


def test_lifecycle_checkpoints_form_the_audit_log(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    manager.checkpoint(sid, "task_received", {"task": 1})
    manager.pause(sid)
    manager.resume(sid)
    manager.checkpoint(sid, "answer", {"a": 2})
    manager.complete(sid)
    names = [cp.name for cp in manager.checkpoints(sid, limit=ALL_CHECKPOINTS)]
    assert names == ["task_received", "session_paused", "session_resumed", "answer", "session_completed"]


def test_update_replaces_context_and_metadata_without_a_checkpoint(
    manager: SessionManager, in_state: MakeSession
) -> None:
    session = in_state()
    updated = manager.update(session.session_id, context={"new": 1})
    assert (updated.context, updated.metadata) == ({"new": 1}, session.metadata)
    updated = manager.update(session.session_id, metadata={"tag": "x"})
    assert (updated.context, updated.metadata) == ({"new": 1}, {"tag": "x"})
    assert manager.get(session.session_id).last_seq == session.last_seq


def test_active_duration_runs_with_the_clock(manager: SessionManager, clock: ManualClock) -> None:
    sid = manager.create("tutor", "user-1").session_id
    assert manager.duration(sid) == timedelta(0)
    clock.advance(90.5)
    assert manager.duration(sid) == timedelta(seconds=90.5)


def test_paused_duration_keeps_running(manager: SessionManager, clock: ManualClock) -> None:
    sid = manager.create("tutor", "user-1").session_id
    clock.advance(10)
    manager.pause(sid)
    clock.advance(20)
    assert manager.duration(sid) == timedelta(seconds=30)


@pytest.mark.parametrize("end", ["complete", "fail"])
def test_ended_session_ends_at_its_final_checkpoint(
    manager: SessionManager, clock: ManualClock, end: str
) -> None:
    session = manager.create("tutor", "user-1")
    clock.advance(42)
    ACTIONS[end](manager, session.session_id)
    final = manager.last_checkpoint(session.session_id)
    clock.advance(3600)
    assert final is not None
    assert (
        manager.duration(session.session_id) == final.timestamp - session.created_at == timedelta(seconds=42)
    )


@pytest.mark.parametrize("action", ["pause", "complete", "fail", "update"])
def test_stale_expected_version_is_a_conflict_and_writes_nothing(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged, action: str
) -> None:
    session = in_state()
    manager.update(session.session_id, metadata={"someone": "else"})
    calls: dict[str, Callable[[], Any]] = {
        "pause": lambda: manager.pause(session.session_id, expected_version=session.version),
        "complete": lambda: manager.complete(session.session_id, expected_version=session.version),
        "fail": lambda: manager.fail(session.session_id, "x", expected_version=session.version),
        "update": lambda: manager.update(session.session_id, context={}, expected_version=session.version),
    }
    with unchanged(session.session_id), pytest.raises(ConflictError) as caught:
        calls[action]()
    assert (caught.value.expected_version, caught.value.actual_version) == (
        session.version,
        session.version + 1,
    )


def test_stale_expected_version_on_resume_is_a_conflict(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged
) -> None:
    session = in_state(State.PAUSED)
    manager.update(session.session_id, metadata={"moved": True})
    with unchanged(session.session_id), pytest.raises(ConflictError):
        manager.resume(session.session_id, expected_version=session.version)


def test_current_expected_version_is_accepted(manager: SessionManager, in_state: MakeSession) -> None:
    session = in_state()
    updated = manager.update(session.session_id, context={"v": 2}, expected_version=session.version)
    paused = manager.pause(session.session_id, expected_version=updated.version)
    assert paused.version == session.version + 2


def test_conflict_is_checked_before_the_state_machine(manager: SessionManager, in_state: MakeSession) -> None:
    session = in_state(State.COMPLETED)
    with pytest.raises(ConflictError):
        manager.pause(session.session_id, expected_version=session.version - 1)
