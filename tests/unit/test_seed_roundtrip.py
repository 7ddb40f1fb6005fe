"""The seed format is a compatibility contract: sessions round-trip exactly, both ways.

The sessions are the seed's own `AgentSession.to_dict()` output, committed under
tests/fixtures/seed/ (`regenerate.py` there rewrites them); `test_seed_module.py` runs the same round
trips against the seed module itself where it is at hand.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support import seed_fixture
from tether import ManualClock, SessionManager, State, from_seed_dict, to_seed_dict

OFFSETS = {s["state"]: s for s in seed_fixture("offsets")}
UTC_SESSIONS = {s["state"]: s for s in seed_fixture("utc")}


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize("state", ["active", "paused", "completed", "failed"])
def test_seed_to_tether_to_seed_is_identical(state: str) -> None:
    original = OFFSETS[state]
    session, checkpoints = from_seed_dict(original)
    again = to_seed_dict(session, checkpoints)
    assert again == original
    assert json.dumps(again, ensure_ascii=False) == json.dumps(original, ensure_ascii=False)


def test_offsets_are_kept_at_the_model_level() -> None:
    session, checkpoints = from_seed_dict(OFFSETS["active"])
    assert session.created_at.isoformat() == "2025-06-01T12:00:00.123456+02:00"
    assert session.last_heartbeat.isoformat() == "2025-06-01T05:00:00.999999-05:30"
    assert checkpoints[1].timestamp.isoformat() == "2025-06-01T04:31:00.000001-05:30"


@pytest.mark.parametrize(("state", "error"), [("completed", None), ("failed", "tool crashed")])
def test_an_ended_seed_session_reads_as_ended_at_its_final_checkpoint(state: str, error: str | None) -> None:
    original = OFFSETS[state]
    session, checkpoints = from_seed_dict(original)
    assert session.state is State(state)
    assert session.ended_at == checkpoints[-1].timestamp
    # The seed's get_duration() of an ended session: its last checkpoint's time minus created_at.
    seed_duration = instant(original["checkpoints"][-1]["timestamp"]) - instant(original["created_at"])
    assert session.duration(datetime.now(UTC)) == seed_duration
    assert (session.failure.error if session.failure else None) == error
    assert session.last_seq == len(checkpoints) == len(original["checkpoints"])
    assert [cp.seq for cp in checkpoints] == list(range(1, len(checkpoints) + 1))


def test_tether_to_seed_to_tether_is_identical() -> None:
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
    assert list(exported) == list(OFFSETS["active"])  # the seed's keys, in its order
    back, checkpoints = from_seed_dict(exported)
    assert to_seed_dict(back, checkpoints) == exported
    assert (back.state, back.created_at, back.ended_at) == (
        session.state,
        session.created_at,
        session.ended_at,
    )


def test_lifecycle_checkpoints_have_the_seed_s_names_and_data() -> None:
    seed_failed, seed_completed = seed_fixture("lifecycle")
    manager = SessionManager("memory://", clock=ManualClock(), worker_id="worker-a")
    sid = manager.create("tutor", "u").session_id
    manager.pause(sid)
    manager.resume(sid)
    manager.fail(sid, "boom", {"why": "test"})
    ours = [(cp.name, cp.data) for cp in manager.checkpoints(sid)]
    assert ours == [(cp["name"], cp["data"]) for cp in seed_failed["checkpoints"]]

    done = manager.create("tutor", "u").session_id
    manager.complete(done)
    assert [(cp.name, cp.data) for cp in manager.checkpoints(done)] == [
        (cp["name"], cp["data"]) for cp in seed_completed["checkpoints"]
    ]


@pytest.mark.parametrize("state", ["active", "paused", "completed", "failed"])
def test_utc_seed_sessions_survive_export_and_import_through_a_store(
    manager: SessionManager, state: str
) -> None:
    original = UTC_SESSIONS[state]
    manager.import_sessions(io.StringIO(json.dumps(original) + "\n"))
    out = io.StringIO()
    manager.export(out)
    exported = json.loads(out.getvalue())
    assert exported == original


@pytest.mark.parametrize("original", seed_fixture("generated"), ids=lambda s: s["session_id"][:12])
def test_generated_seed_sessions_round_trip_both_ways(original: dict[str, Any]) -> None:
    session, checkpoints = from_seed_dict(original)
    again = to_seed_dict(session, checkpoints)
    assert again == original
    assert json.dumps(again) == json.dumps(original)


def test_naive_seed_timestamps_are_read_as_utc() -> None:
    """The documented exception to the exact round trip: the seed always writes aware UTC times,
    but a hand-made seed dict without offsets is read as UTC and written back with +00:00."""
    original = dict(OFFSETS["active"], created_at="2025-06-01T10:00:00", checkpoints=[])
    original["last_heartbeat"] = "2025-06-01T10:05:00"
    session, checkpoints = from_seed_dict(original)
    assert session.created_at == datetime(2025, 6, 1, 10, tzinfo=UTC)
    again = to_seed_dict(session, checkpoints)
    assert (again["created_at"], again["last_heartbeat"]) == (
        "2025-06-01T10:00:00+00:00",
        "2025-06-01T10:05:00+00:00",
    )
