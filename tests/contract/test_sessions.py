"""Creating and reading sessions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tether import ConflictError, ManualClock, NotFound, SessionManager, State


def test_create_starts_an_active_session_owned_by_the_worker_at_epoch_one(
    manager: SessionManager, clock: ManualClock
) -> None:
    now = clock.now()
    session = manager.create("tutor", "user-1", context={"lesson": 3}, metadata={"source": "test"})
    assert session.state is State.ACTIVE
    assert (session.agent_type, session.user_id) == ("tutor", "user-1")
    assert (session.owner, session.epoch, session.version, session.recoveries) == ("worker-a", 1, 1, 0)
    assert (session.context, session.metadata) == ({"lesson": 3}, {"source": "test"})
    assert session.created_at == session.last_heartbeat == now
    assert session.suspect_at == now + timedelta(seconds=30)
    assert session.lease_expires_at == now + timedelta(seconds=60)
    assert session.last_seq == session.checkpoint_count == 0
    assert (session.ended_at, session.failure, session.parent_session_id) == (None, None, None)


def test_get_returns_the_session_as_created(manager: SessionManager) -> None:
    created = manager.create("tutor", "user-1", context={"a": [1, 2]})
    assert manager.get(created.session_id) == created


def test_create_generates_distinct_ids(manager: SessionManager) -> None:
    ids = {manager.create("tutor", "user-1").session_id for _ in range(20)}
    assert len(ids) == 20


def test_create_accepts_an_explicit_id_and_a_parent(manager: SessionManager) -> None:
    parent = manager.create("orchestrator", "user-1", session_id="parent-1")
    child = manager.create("tutor", "user-1", session_id="child-1", parent_session_id=parent.session_id)
    assert parent.session_id == "parent-1"
    assert manager.get("child-1").parent_session_id == "parent-1"
    assert child.parent_session_id == "parent-1"


def test_create_with_an_existing_id_is_a_conflict_and_keeps_the_original(manager: SessionManager) -> None:
    original = manager.create("tutor", "user-1", session_id="same", context={"first": True})
    with pytest.raises(ConflictError) as caught:
        manager.create("grader", "user-2", session_id="same", context={"first": False})
    assert caught.value.session_id == "same"
    assert manager.get("same") == original


def test_unicode_ids_are_kept_exactly(manager: SessionManager) -> None:
    session = manager.create("tütor-ß", "用户-1", session_id="sessión-ünï-🚀")
    assert manager.get("sessión-ünï-🚀") == session
    assert (session.agent_type, session.user_id) == ("tütor-ß", "用户-1")


def test_get_of_an_unknown_session_raises_not_found(manager: SessionManager) -> None:
    with pytest.raises(NotFound) as caught:
        manager.get("no-such-session")
    assert caught.value.session_id == "no-such-session"


OPERATIONS: dict[str, Callable[[SessionManager, str], Any]] = {
    "get": lambda m, sid: m.get(sid),
    "checkpoints": lambda m, sid: m.checkpoints(sid),
    "last_checkpoint": lambda m, sid: m.last_checkpoint(sid),
    "last_checkpoint by name": lambda m, sid: m.last_checkpoint(sid, "step"),
    "checkpoint": lambda m, sid: m.checkpoint(sid, "step", {}),
    "heartbeat": lambda m, sid: m.heartbeat(sid),
    "pause": lambda m, sid: m.pause(sid),
    "resume": lambda m, sid: m.resume(sid),
    "complete": lambda m, sid: m.complete(sid),
    "fail": lambda m, sid: m.fail(sid, "boom"),
    "update": lambda m, sid: m.update(sid, context={}),
    "claim": lambda m, sid: m.claim(sid, "worker-b"),
    "duration": lambda m, sid: m.duration(sid),
    "delete": lambda m, sid: m.delete(sid),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_on_an_unknown_session_raises_not_found(
    manager: SessionManager, operation: str
) -> None:
    manager.create("tutor", "user-1", session_id="known")
    with pytest.raises(NotFound) as caught:
        OPERATIONS[operation](manager, "unknown")
    assert caught.value.session_id == "unknown"
    assert [s.session_id for s in manager.list()] == ["known"]


def test_timestamps_keep_microseconds(manager: SessionManager, clock: ManualClock) -> None:
    clock.set(datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC))
    session = manager.create("tutor", "user-1")
    clock.advance(0.000001)
    cp = manager.checkpoint(session.session_id, "step")
    stored = manager.get(session.session_id)
    assert stored.created_at == datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    assert manager.checkpoints(session.session_id)[0].timestamp == cp.timestamp
    assert cp.timestamp == datetime(2026, 3, 4, 5, 6, 7, 123457, tzinfo=UTC)


def test_timestamps_come_back_timezone_aware_in_utc(manager: SessionManager) -> None:
    session = manager.create("tutor", "user-1")
    manager.checkpoint(session.session_id, "step")
    stored = manager.get(session.session_id)
    for value in (stored.created_at, stored.last_heartbeat, stored.lease_expires_at, stored.suspect_at):
        assert value is not None
        assert value.utcoffset() == timedelta(0)
    assert manager.checkpoints(session.session_id)[0].timestamp.utcoffset() == timedelta(0)
