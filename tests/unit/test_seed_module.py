"""The seed module itself, where it is at hand: the committed fixtures are exactly what it writes,
and Tether round-trips what it writes and writes what it reads.

The module (`shared/seed/session_models.py`) sits beside the repository on the team's machines and in
CI (`.ci/run` sets TETHER_REQUIRE_SEED=1, so these tests fail there without it); a user's clone has
none and skips them: `test_seed_roundtrip.py` runs on the fixtures instead.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.seed import regenerate
from tests.support import SEED_FIXTURES, load_seed_module, seed_fixture
from tether import ManualClock, SessionManager, from_seed_dict, to_seed_dict


@pytest.fixture(scope="module")
def seed() -> ModuleType:
    return load_seed_module()


def test_the_fixtures_are_what_the_seed_writes(seed: ModuleType) -> None:
    for name, text in regenerate.render(seed).items():
        assert (SEED_FIXTURES / name).read_text(encoding="utf-8") == text, f"regenerate {name}"


@pytest.mark.parametrize("name", ["offsets", "utc", "methods", "lifecycle", "generated"])
def test_the_seed_reads_every_fixture_back_unchanged(seed: ModuleType, name: str) -> None:
    for original in seed_fixture(name):
        assert seed.AgentSession.from_dict(original).to_dict() == original


@pytest.mark.parametrize("state", ["completed", "failed"])
def test_an_ended_session_lasts_as_long_as_the_seed_says(seed: ModuleType, state: str) -> None:
    agent_session = regenerate.history(seed, state)
    session, _ = from_seed_dict(agent_session.to_dict())
    assert session.duration(datetime.now(UTC)) == agent_session.get_duration()


def test_the_seed_reads_what_tether_writes(seed: ModuleType) -> None:
    clock = ManualClock(datetime(2026, 2, 3, 4, 5, 6, 789012, tzinfo=UTC))
    manager = SessionManager("memory://", clock=clock, worker_id="worker-a")
    sid = manager.create("tutor", "user-1", context={"ü": [1, {"x": None}]}, metadata={"m": 1}).session_id
    manager.checkpoint(sid, "task_received", {"task": "🚀"})
    clock.advance(1.5)
    manager.pause(sid)
    manager.resume(sid)
    manager.checkpoint(sid, "answer", {"a": 42})
    clock.advance(60)
    manager.complete(sid, {"score": 1})
    exported = to_seed_dict(manager.get(sid), manager.checkpoints(sid, limit=1000))
    agent_session = seed.AgentSession.from_dict(exported)
    assert agent_session.to_dict() == exported
    assert agent_session.get_duration() == manager.duration(sid)
    assert agent_session.get_last_checkpoint("answer").data == {"a": 42}


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
