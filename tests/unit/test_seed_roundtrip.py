"""The seed format is a compatibility contract: sessions round-trip exactly, both ways.

The seed module is imported by path from `shared/seed/session_models.py`, which sits beside the
repository (locally ../shared; in CI a copy of shared/ next to the clone).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import load_seed_module
from tether import ManualClock, SessionManager, State, from_seed_dict, to_seed_dict


@pytest.fixture(scope="module")
def seed() -> ModuleType:
    return load_seed_module()


CEST = timezone(timedelta(hours=2))
IST_WEST = timezone(timedelta(hours=-5, minutes=-30))


def _seed_session(seed: ModuleType, state: str, **overrides: Any) -> Any:
    """A seed AgentSession with explicit timestamps (offsets, microseconds) and lifecycle history."""
    created = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=CEST)
    cps = [
        seed.SessionCheckpoint("task_received", created + timedelta(seconds=1), {"task": "Brüche kürzen"}),
        seed.SessionCheckpoint(
            "step", datetime(2025, 6, 1, 4, 31, 0, 1, tzinfo=IST_WEST), {"nested": {"l": [1, 2.5, None]}}
        ),
    ]
    final = datetime(2025, 6, 1, 10, 5, tzinfo=UTC)
    lifecycle = {
        "active": [],
        "paused": [("session_paused", {"previous_state": "active"})],
        "completed": [
            ("session_paused", {"previous_state": "active"}),
            ("session_resumed", {}),
            ("session_completed", {"result": {"score": 0.5, "text": "✓ 日本"}}),
        ],
        "failed": [("session_failed", {"error": "tool crashed", "details": {"tool": "search", "code": 7}})],
    }[state]
    for n, (name, data) in enumerate(lifecycle):
        cps.append(seed.SessionCheckpoint(name, final + timedelta(minutes=n), data))
    fields: dict[str, Any] = {
        "session_id": f"seed-{state}",
        "agent_type": "tutor",
        "user_id": "user-ü",
        "state": seed.SessionState(state),
        "created_at": created,
        "last_heartbeat": datetime(2025, 6, 1, 5, 0, 0, 999999, tzinfo=IST_WEST),
        "context": {"lesson": 3, "emoji": "🚀", "ключ": ["значение", {"deep": True}]},
        "checkpoints": cps,
        "metadata": {"source": "seed", "empty": {}},
    }
    fields.update(overrides)
    return seed.AgentSession(**fields)


@pytest.mark.parametrize("state", ["active", "paused", "completed", "failed"])
def test_seed_to_tether_to_seed_is_identical(seed: ModuleType, state: str) -> None:
    original = _seed_session(seed, state).to_dict()
    session, checkpoints = from_seed_dict(original)
    again = to_seed_dict(session, checkpoints)
    assert again == original
    assert json.dumps(again, ensure_ascii=False) == json.dumps(original, ensure_ascii=False)


def test_offsets_are_kept_at_the_model_level(seed: ModuleType) -> None:
    session, checkpoints = from_seed_dict(_seed_session(seed, "active").to_dict())
    assert session.created_at.isoformat() == "2025-06-01T12:00:00.123456+02:00"
    assert session.last_heartbeat.isoformat() == "2025-06-01T05:00:00.999999-05:30"
    assert checkpoints[1].timestamp.isoformat() == "2025-06-01T04:31:00.000001-05:30"


@pytest.mark.parametrize(("state", "error"), [("completed", None), ("failed", "tool crashed")])
def test_an_ended_seed_session_reads_as_ended_at_its_final_checkpoint(
    seed: ModuleType, state: str, error: str | None
) -> None:
    agent_session = _seed_session(seed, state)
    session, checkpoints = from_seed_dict(agent_session.to_dict())
    assert session.state is State(state)
    assert session.ended_at == checkpoints[-1].timestamp
    assert session.duration(datetime.now(UTC)) == agent_session.get_duration()
    assert (session.failure.error if session.failure else None) == error
    assert session.last_seq == len(checkpoints) == len(agent_session.checkpoints)
    assert [cp.seq for cp in checkpoints] == list(range(1, len(checkpoints) + 1))


def test_tether_to_seed_to_tether_is_identical(seed: ModuleType) -> None:
    clock = ManualClock(datetime(2026, 2, 3, 4, 5, 6, 789012, tzinfo=UTC))
    manager = SessionManager("memory://", clock=clock, worker_id="worker-a")
    sid = manager.create("tutor", "user-1", context={"ü": [1, {"x": None}]}, metadata={"m": 1}).session_id
    manager.checkpoint(sid, "task_received", {"task": "🚀"})
    clock.advance(1.5)
    manager.pause(sid)
    clock.advance(0.000001)
    manager.resume(sid)
    manager.checkpoint(sid, "answer", {"a": 42})
    clock.advance(60)
    manager.complete(sid, {"score": 1})
    session = manager.get(sid)
    exported = to_seed_dict(session, manager.checkpoints(sid, limit=1000))
    assert seed.AgentSession.from_dict(exported).to_dict() == exported
    agent_session = seed.AgentSession.from_dict(exported)
    assert agent_session.get_duration() == manager.duration(sid)
    assert agent_session.get_last_checkpoint("answer").data == {"a": 42}
    back, checkpoints = from_seed_dict(exported)
    assert to_seed_dict(back, checkpoints) == exported
    assert (back.state, back.created_at, back.ended_at) == (
        session.state,
        session.created_at,
        session.ended_at,
    )


def test_lifecycle_checkpoints_have_the_seed_s_names_and_data(seed: ModuleType) -> None:
    agent_session = seed.AgentSession(agent_type="tutor", user_id="u")
    agent_session.pause()
    agent_session.resume()
    agent_session.fail("boom", {"why": "test"})
    manager = SessionManager("memory://", clock=ManualClock(), worker_id="worker-a")
    sid = manager.create("tutor", "u").session_id
    manager.pause(sid)
    manager.resume(sid)
    manager.fail(sid, "boom", {"why": "test"})
    ours = [(cp.name, cp.data) for cp in manager.checkpoints(sid)]
    assert ours == [(cp.name, cp.data) for cp in agent_session.checkpoints]

    completed_seed = seed.AgentSession(agent_type="tutor", user_id="u")
    completed_seed.complete()
    done = manager.create("tutor", "u").session_id
    manager.complete(done)
    assert [(cp.name, cp.data) for cp in manager.checkpoints(done)] == [
        (cp.name, cp.data) for cp in completed_seed.checkpoints
    ]


@pytest.mark.parametrize("state", ["active", "paused", "completed", "failed"])
def test_utc_seed_sessions_survive_export_and_import_through_a_store(
    seed: ModuleType, manager: SessionManager, state: str
) -> None:
    utc = datetime(2025, 6, 1, 10, 0, 0, 654321, tzinfo=UTC)
    agent_session = _seed_session(seed, state, created_at=utc, last_heartbeat=utc + timedelta(minutes=1))
    for cp in agent_session.checkpoints:
        cp.timestamp = cp.timestamp.astimezone(UTC)
    original = agent_session.to_dict()
    manager.import_sessions(io.StringIO(json.dumps(original) + "\n"))
    out = io.StringIO()
    manager.export(out)
    exported = json.loads(out.getvalue())
    assert exported == original
    assert seed.AgentSession.from_dict(exported).to_dict() == original


# -- generated sessions ----------------------------------------------------------------------
IDS = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs", "Cf", "Co", "Cn")),
    min_size=1,
    max_size=40,
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5)
OFFSETS = st.one_of(  # whole minutes as usual, and the odd whole seconds Python allows
    st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m))),
    st.integers(-86_399, 86_399).map(lambda s: timezone(timedelta(seconds=s))),
)
TIMESTAMPS = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=OFFSETS)


@st.composite
def seed_sessions(draw: st.DrawFn, seed: ModuleType) -> Any:
    checkpoints = draw(st.lists(st.builds(seed.SessionCheckpoint, IDS, TIMESTAMPS, JSON_OBJECTS), max_size=5))
    return seed.AgentSession(
        session_id=draw(IDS),
        agent_type=draw(IDS),
        user_id=draw(IDS),
        state=draw(st.sampled_from(list(seed.SessionState))),
        created_at=draw(TIMESTAMPS),
        last_heartbeat=draw(TIMESTAMPS),
        context=draw(JSON_OBJECTS),
        checkpoints=checkpoints,
        metadata=draw(JSON_OBJECTS),
    )


def test_generated_seed_sessions_round_trip_both_ways() -> None:
    seed = load_seed_module()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(seed_sessions(seed))
    def round_trip(agent_session: Any) -> None:
        original = agent_session.to_dict()
        session, checkpoints = from_seed_dict(original)
        again = to_seed_dict(session, checkpoints)
        assert again == original
        assert json.dumps(again) == json.dumps(original)
        assert seed.AgentSession.from_dict(again).to_dict() == original

    round_trip()


def test_naive_seed_timestamps_are_read_as_utc(seed: ModuleType) -> None:
    """The documented exception to the exact round trip: the seed always writes aware UTC times,
    but a hand-made seed dict without offsets is read as UTC and written back with +00:00."""
    original = _seed_session(seed, "active", created_at=datetime(2025, 6, 1, 10), checkpoints=[]).to_dict()
    original["last_heartbeat"] = "2025-06-01T10:05:00"
    session, checkpoints = from_seed_dict(original)
    assert session.created_at == datetime(2025, 6, 1, 10, tzinfo=UTC)
    again = to_seed_dict(session, checkpoints)
    assert (again["created_at"], again["last_heartbeat"]) == (
        "2025-06-01T10:00:00+00:00",
        "2025-06-01T10:05:00+00:00",
    )
