"""Fork: a new active session whose history is a copy of another's up to a checkpoint; the source
is left as it is, and the two histories go their own ways afterwards."""

from __future__ import annotations

import pytest

from tether import ConflictError, ManualClock, NotFound, SessionManager, State, ValidationError
from tether.stores import Store

from .conftest import ALL_CHECKPOINTS, MakeSession, Unchanged


def _history(manager: SessionManager, session_id: str) -> list[tuple[int, str, object, object]]:
    return [
        (c.seq, c.name, c.timestamp, c.data) for c in manager.checkpoints(session_id, limit=ALL_CHECKPOINTS)
    ]


def _source(manager: SessionManager, clock: ManualClock, checkpoints: int = 5) -> str:
    sid = manager.create("tutor", "user-1", context={"course": "algebra"}, metadata={"k": "v"}).session_id
    for n in range(1, checkpoints + 1):
        clock.advance(1)
        manager.checkpoint(sid, f"step-{n % 2}", {"n": n, "nested": {"b": 1, "a": [n]}})
    return sid


def test_fork_copies_the_history_up_to_the_seq_and_leaves_the_source_unchanged(
    manager: SessionManager, clock: ManualClock, unchanged: Unchanged
) -> None:
    source = _source(manager, clock)
    with unchanged(source):
        forked = manager.fork(source, 3)
    assert forked.session_id != source
    assert forked.state is State.ACTIVE and forked.epoch == 1 and forked.owner == "worker-a"
    assert forked.last_seq == 3
    assert _history(manager, forked.session_id) == _history(manager, source)[:3]
    assert forked.context == {"course": "algebra"}
    assert forked.metadata == {"k": "v", "forked_from": {"session_id": source, "seq": 3}, "lineage": [source]}
    assert manager.get(forked.session_id) == forked


def test_fork_defaults_to_the_last_checkpoint(manager: SessionManager, clock: ManualClock) -> None:
    source = _source(manager, clock)
    forked = manager.fork(source)
    assert forked.last_seq == 5
    assert _history(manager, forked.session_id) == _history(manager, source)


def test_last_checkpoint_lookups_see_the_copied_history(manager: SessionManager, clock: ManualClock) -> None:
    source = _source(manager, clock)
    forked = manager.fork(source, 4).session_id
    assert manager.last_checkpoint(forked).seq == 4  # type: ignore[union-attr]
    assert manager.last_checkpoint(forked, name="step-1").seq == 3  # type: ignore[union-attr]
    assert [c.seq for c in manager.checkpoints(forked, name="step-0")] == [2, 4]


def test_fork_and_source_append_independently(manager: SessionManager, clock: ManualClock) -> None:
    source = _source(manager, clock)
    forked = manager.fork(source, 2).session_id
    assert manager.checkpoint(forked, "fork-only", {"x": 1}).seq == 3
    assert manager.checkpoint(source, "source-only", {"y": 1}).seq == 6
    assert [c.name for c in manager.checkpoints(forked)][-1] == "fork-only"
    assert "fork-only" not in [c.name for c in manager.checkpoints(source)]
    assert "source-only" not in [c.name for c in manager.checkpoints(forked)]


def test_fork_at_zero_starts_with_an_empty_history(manager: SessionManager, clock: ManualClock) -> None:
    forked = manager.fork(_source(manager, clock), 0).session_id
    assert manager.checkpoints(forked) == []
    assert manager.last_checkpoint(forked) is None
    assert manager.checkpoint(forked, "first").seq == 1


def test_an_ended_session_can_be_forked_from_a_past_point(
    manager: SessionManager, in_state: MakeSession
) -> None:
    for state in (State.COMPLETED, State.FAILED):
        source = in_state(state)
        forked = manager.fork(source.session_id, 1)
        assert forked.state is State.ACTIVE
        assert [c.name for c in manager.checkpoints(forked.session_id)] == ["task_received"]
        assert manager.get(source.session_id).state is state


def test_fork_may_change_agent_type_and_user(manager: SessionManager, clock: ManualClock) -> None:
    forked = manager.fork(_source(manager, clock), agent_type="tutor-v2", user_id="user-2")
    assert (forked.agent_type, forked.user_id) == ("tutor-v2", "user-2")
    assert [s.session_id for s in manager.list(user_id="user-2")] == [forked.session_id]


def test_a_fork_of_a_fork_records_its_whole_lineage(manager: SessionManager, clock: ManualClock) -> None:
    root = _source(manager, clock)
    first = manager.fork(root, 4).session_id
    second = manager.fork(first, 2)
    assert second.metadata["forked_from"] == {"session_id": first, "seq": 2}
    assert second.metadata["lineage"] == [root, first]


def test_fork_past_the_last_checkpoint_is_refused_and_creates_nothing(
    manager: SessionManager, clock: ManualClock
) -> None:
    source = _source(manager, clock)
    for bad in (6, -1, "2", True):
        with pytest.raises(ValidationError) as caught:
            manager.fork(source, bad)  # type: ignore[arg-type]
        assert caught.value.field == "at_seq"
    assert [s.session_id for s in manager.list()] == [source]


def test_fork_of_an_unknown_session_raises_not_found(manager: SessionManager) -> None:
    with pytest.raises(NotFound):
        manager.fork("missing")
    assert list(manager.list()) == []


def test_the_store_refuses_a_fork_onto_an_existing_id_or_from_a_missing_source(
    store: Store, manager: SessionManager, clock: ManualClock
) -> None:
    source = manager.get(_source(manager, clock))
    with pytest.raises(ConflictError):
        store.fork(source, source.session_id, 2)
    assert manager.get(source.session_id).last_seq == 5
    with pytest.raises(NotFound):
        store.fork(source, "missing", 0)
