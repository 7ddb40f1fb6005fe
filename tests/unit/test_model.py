"""The model's derived values: liveness, duration, counts, pages."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tether import Liveness, Page, Session, State
from tether.core.model import as_aware

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _session(state: State = State.ACTIVE, **changes: object) -> Session:
    fields: dict[str, object] = {
        "session_id": "s",
        "agent_type": "tutor",
        "user_id": "u",
        "state": state,
        "created_at": T0,
        "last_heartbeat": T0,
        "suspect_at": T0 + timedelta(seconds=30),
        "lease_expires_at": T0 + timedelta(seconds=60),
    }
    fields.update(changes)
    return Session(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, Liveness.HEALTHY),
        (29.999999, Liveness.HEALTHY),
        (30, Liveness.SUSPECT),
        (59.999999, Liveness.SUSPECT),
        (60, Liveness.DEAD),
        (10_000, Liveness.DEAD),
    ],
)
@pytest.mark.parametrize("state", [State.ACTIVE, State.PAUSED])
def test_liveness_of_a_live_session_follows_its_deadlines(
    state: State, seconds: float, expected: Liveness
) -> None:
    assert _session(state).liveness(T0 + timedelta(seconds=seconds)) is expected


@pytest.mark.parametrize("state", [State.COMPLETED, State.FAILED])
def test_ended_sessions_have_no_liveness(state: State) -> None:
    assert _session(state).liveness(T0 + timedelta(days=1)) is None


def test_a_session_without_deadlines_is_healthy() -> None:
    assert (
        _session(suspect_at=None, lease_expires_at=None).liveness(T0 + timedelta(days=1)) is Liveness.HEALTHY
    )


def test_live_duration_is_measured_to_now() -> None:
    assert _session().duration(T0 + timedelta(minutes=5)) == timedelta(minutes=5)
    assert _session(State.PAUSED).duration(T0 + timedelta(seconds=1)) == timedelta(seconds=1)


@pytest.mark.parametrize("state", [State.COMPLETED, State.FAILED])
def test_ended_duration_stops_at_the_end(state: State) -> None:
    session = _session(state, ended_at=T0 + timedelta(seconds=42))
    assert session.duration(T0 + timedelta(days=3)) == timedelta(seconds=42)


def test_duration_across_offsets_compares_instants() -> None:
    plus_two = timezone(timedelta(hours=2))
    session = _session(
        State.COMPLETED, created_at=T0.astimezone(plus_two), ended_at=T0 + timedelta(seconds=5)
    )
    assert session.duration(T0) == timedelta(seconds=5)


def test_checkpoint_count_is_the_last_seq_and_is_ended_follows_state() -> None:
    assert _session(last_seq=7).checkpoint_count == 7
    assert [_session(s).is_ended for s in State] == [False, False, True, True]


def test_sessions_are_immutable() -> None:
    with pytest.raises(AttributeError):
        _session().state = State.FAILED  # type: ignore[misc]


def test_a_page_iterates_and_counts_its_items() -> None:
    page = Page(["a", "b"], "cursor")
    assert (list(page), len(page), page.next_cursor) == (["a", "b"], 2, "cursor")
    assert Page([]).next_cursor is None


def test_naive_timestamps_are_read_as_utc() -> None:
    assert as_aware(datetime(2026, 1, 1)) == T0
    aware = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5)))
    assert as_aware(aware) is aware


def test_state_values_are_the_seed_s_strings() -> None:
    assert [s.value for s in State] == ["active", "paused", "completed", "failed"]


def test_a_session_is_immutable_and_has_no_other_attributes() -> None:
    session = _session()
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.version = 2  # type: ignore[misc]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        session.nope  # type: ignore[attr-defined]  # noqa: B018
    assert pickle.loads(pickle.dumps(session)) == session == copy.deepcopy(session)
