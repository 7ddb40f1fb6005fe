"""Export and import in the seed format (JSONL, checkpoints inline)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tether import ConflictError, ManualClock, NotClaimable, SessionManager, State, ValidationError

from .conftest import ALL_CHECKPOINTS, MakeSession

SEED_KEYS = [
    "session_id",
    "agent_type",
    "user_id",
    "state",
    "created_at",
    "last_heartbeat",
    "context",
    "checkpoints",
    "metadata",
]


def _seed(session_id: str, state: str, checkpoints: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "agent_type": extra.get("agent_type", "tutor"),
        "user_id": extra.get("user_id", "user-1"),
        "state": state,
        "created_at": "2025-06-01T10:00:00.123456+00:00",
        "last_heartbeat": "2025-06-01T10:05:00+00:00",
        "context": {"lesson": "Brüche", "nested": {"list": [1, 2.5, None, True]}},
        "checkpoints": checkpoints,
        "metadata": {"source": "seed", "🔑": "✓"},
    }


def _cp(name: str, minute: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "timestamp": f"2025-06-01T10:{minute:02d}:00.000001+00:00", "data": data}


SEED_SESSIONS = [
    _seed("s-active", "active", [_cp("task_received", 1, {"task": "x"})]),
    _seed("s-empty", "active", []),
    _seed(
        "s-paused",
        "paused",
        [_cp("step", 1, {}), _cp("session_paused", 2, {"previous_state": "active"})],
        user_id="user-2",
    ),
    _seed(
        "s-completed",
        "completed",
        [
            _cp("session_paused", 1, {"previous_state": "active"}),
            _cp("session_resumed", 2, {}),
            _cp("session_completed", 3, {"result": {"score": 0.75}}),
        ],
    ),
    _seed(
        "s-failed",
        "failed",
        [_cp("session_failed", 4, {"error": "timeout", "details": {"tool": "search"}})],
        agent_type="grader",
    ),
]


def _jsonl(sessions: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in sessions)


def _export(manager: SessionManager, **kwargs: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    count = manager.export(out, **kwargs)
    text = out.getvalue()
    assert text == "" or text.endswith("\n")
    lines = [json.loads(line) for line in text.split("\n")[:-1]]  # not splitlines(): U+2028 is data
    assert count == len(lines)
    return lines


def _by_id(dicts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["session_id"]: d for d in dicts}


def test_export_writes_one_seed_dict_per_line_with_checkpoints_inline(
    manager: SessionManager, in_state: MakeSession
) -> None:
    session = in_state(State.COMPLETED)
    [line] = _export(manager)
    assert list(line) == SEED_KEYS
    assert line["session_id"] == session.session_id
    assert (line["state"], line["created_at"]) == ("completed", session.created_at.isoformat())
    assert [cp["name"] for cp in line["checkpoints"]] == ["task_received", "step", "session_completed"]
    assert line["checkpoints"][-1]["data"] == {"result": {"answer": 42}}
    assert all(list(cp) == ["name", "timestamp", "data"] for cp in line["checkpoints"])


def test_export_can_be_limited_to_one_user(manager: SessionManager, in_state: MakeSession) -> None:
    mine = {in_state(user_id="alice").session_id, in_state(State.FAILED, user_id="alice").session_id}
    in_state(user_id="bob")
    assert {d["session_id"] for d in _export(manager, user_id="alice")} == mine


def test_export_to_a_path(manager: SessionManager, in_state: MakeSession, tmp_path: Path) -> None:
    in_state()
    target = tmp_path / "export.jsonl"
    assert manager.export(target) == 1
    assert target.read_text(encoding="utf-8").count("\n") == 1


def test_export_then_import_into_an_empty_store_round_trips(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    for state in State:
        clock.advance(1.000001)
        in_state(state, user_id=f"user-{state.value}", context={"ünï": [state.value]})
    long = _seed("s-long", "active", [_cp("step", n % 60, {"n": n}) for n in range(1001)])
    manager.import_sessions(io.StringIO(_jsonl([long])))  # more than one export page of checkpoints
    exported = _export(manager)
    sessions_before = {s.session_id: s for s in manager.list()}
    for sid in sessions_before:
        manager.delete(sid)
    assert manager.import_sessions(io.StringIO(_jsonl(exported))) == 5
    assert _export(manager) == exported
    for sid, before in sessions_before.items():
        after = manager.get(sid)
        assert (after.state, after.created_at, after.last_heartbeat, after.last_seq) == (
            before.state,
            before.created_at,
            before.last_heartbeat,
            before.last_seq,
        )
        assert after.ended_at == before.ended_at
    history = manager.checkpoints("s-long", limit=ALL_CHECKPOINTS)
    assert [cp.data["n"] for cp in history] == list(range(1001))


def test_seed_dicts_import_and_export_identically(manager: SessionManager) -> None:
    assert manager.import_sessions(io.StringIO(_jsonl(SEED_SESSIONS))) == len(SEED_SESSIONS)
    assert _by_id(_export(manager)) == _by_id(SEED_SESSIONS)


def test_imported_sessions_read_like_the_seed_said(manager: SessionManager) -> None:
    manager.import_sessions(io.StringIO(_jsonl(SEED_SESSIONS)))
    completed = manager.get("s-completed")
    assert completed.state is State.COMPLETED
    assert completed.ended_at == datetime.fromisoformat("2025-06-01T10:03:00.000001+00:00")
    assert completed.last_seq == 3
    assert manager.last_checkpoint("s-completed", "session_paused") is not None
    failed = manager.get("s-failed")
    assert failed.failure is not None and failed.failure.error == "timeout"
    assert failed.failure.details == {"tool": "search"}
    assert manager.get("s-paused").state is State.PAUSED
    assert manager.checkpoints("s-active")[0].data == {"task": "x"}


def test_imported_history_is_final_and_not_claimable(manager: SessionManager) -> None:
    manager.import_sessions(io.StringIO(_jsonl(SEED_SESSIONS)))
    failed = manager.get("s-failed")
    assert failed.failure is not None and failed.failure.final
    with pytest.raises(NotClaimable):
        manager.claim("s-failed", "worker-b")


def test_an_imported_active_session_with_an_old_heartbeat_can_be_taken_over(
    manager: SessionManager, clock: ManualClock
) -> None:
    manager.import_sessions(io.StringIO(_jsonl(SEED_SESSIONS)))
    imported = manager.get("s-active")
    assert imported.lease_expires_at == imported.last_heartbeat + timedelta(seconds=60)
    claimed = manager.claim("s-active", "worker-b")
    assert (claimed.owner, claimed.state) == ("worker-b", State.ACTIVE)
    last = manager.last_checkpoint("s-active")
    assert last is not None and last.data["resumed_from_seq"] == 1


def test_imported_timestamps_with_offsets_keep_their_instant_in_utc(manager: SessionManager) -> None:
    session = _seed("s-offset", "completed", [])
    session["created_at"] = "2025-06-01T12:00:00.5+02:00"
    session["last_heartbeat"] = "2025-06-01T05:00:00-05:30"
    session["checkpoints"] = [{"name": "x", "timestamp": "2025-06-01T12:30:00+02:00", "data": {}}]
    manager.import_sessions(io.StringIO(_jsonl([session])))
    stored = manager.get("s-offset")
    assert stored.created_at == datetime.fromisoformat("2025-06-01T10:00:00.5+00:00")
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.last_heartbeat.isoformat() == "2025-06-01T10:30:00+00:00"
    [line] = _export(manager)
    assert line["checkpoints"][0]["timestamp"] == "2025-06-01T10:30:00+00:00"


def test_import_of_an_existing_id_is_a_conflict_by_default(manager: SessionManager) -> None:
    manager.create("tutor", "someone-else", session_id="s-paused")
    with pytest.raises(ConflictError):
        manager.import_sessions(io.StringIO(_jsonl(SEED_SESSIONS[2:3])))
    assert manager.get("s-paused").user_id == "someone-else"


def test_import_can_skip_existing_ids(manager: SessionManager) -> None:
    original = manager.create("tutor", "someone-else", session_id="s-paused")
    ticks: list[int] = []
    imported = manager.import_sessions(
        io.StringIO(_jsonl(SEED_SESSIONS)), on_conflict="skip", progress=ticks.append
    )
    assert imported == len(SEED_SESSIONS) - 1
    assert sum(ticks) == len(SEED_SESSIONS)
    assert manager.get("s-paused") == original
    assert manager.checkpoints("s-paused") == []


def test_import_of_an_invalid_line_names_the_line_and_field(manager: SessionManager) -> None:
    broken = dict(SEED_SESSIONS[0], session_id="s-broken", state="sleeping")
    text = _jsonl([SEED_SESSIONS[1], broken])
    with pytest.raises(ValidationError) as caught:
        manager.import_sessions(io.StringIO(text))
    assert caught.value.field == "line 2: state"


def test_import_of_non_json_names_the_line(manager: SessionManager) -> None:
    with pytest.raises(ValidationError) as caught:
        manager.import_sessions(io.StringIO(_jsonl(SEED_SESSIONS[:1]) + "\n{not json\n"))
    assert caught.value.field == "line 3"


def test_import_from_a_path(manager: SessionManager, tmp_path: Path) -> None:
    source = tmp_path / "seed.jsonl"
    source.write_text(_jsonl(SEED_SESSIONS), encoding="utf-8")
    assert manager.import_sessions(source) == len(SEED_SESSIONS)


def test_a_file_repeating_an_id_imports_it_once_when_skipping(manager: SessionManager) -> None:
    first, repeat = SEED_SESSIONS[0], dict(SEED_SESSIONS[0], user_id="someone-else")
    assert manager.import_sessions(io.StringIO(_jsonl([first, repeat])), on_conflict="skip") == 1
    assert manager.get(first["session_id"]).user_id == "user-1"
    with pytest.raises(ConflictError):
        manager.import_sessions(io.StringIO(_jsonl([repeat])))


def test_line_separator_characters_in_data_survive_export_and_import(manager: SessionManager) -> None:
    data = {"nel": "a\x85b", "ls": "c\u2028d", "ps": "e\u2029f", "cr": "g\rh", "ff": "\x0c"}
    sid = manager.create("tutor", "user-1", context=data).session_id
    manager.checkpoint(sid, "step", data)
    exported = _export(manager)
    manager.delete(sid)
    out = io.StringIO()
    for line in exported:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    assert manager.import_sessions(io.StringIO(out.getvalue())) == 1
    assert manager.get(sid).context == data
    assert manager.checkpoints(sid)[0].data == data


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("created_at", "0001-01-01T00:00:00+05:00"),  # year 0 in UTC
        ("created_at", "9999-12-31T23:59:59-05:00"),  # year 10000 in UTC
        ("last_heartbeat", "9999-12-31T23:59:59+00:00"),  # its lease would end after year 9999
        ("checkpoints[0].timestamp", "0001-01-01T00:00:00+01:00"),
    ],
)
def test_import_rejects_instants_no_store_can_hold(manager: SessionManager, field: str, value: str) -> None:
    session = _seed("s-edge", "active", [_cp("step", 1, {})])
    if field.startswith("checkpoints"):
        session["checkpoints"][0]["timestamp"] = value
    else:
        session[field] = value
    with pytest.raises(ValidationError) as caught:
        manager.import_sessions(io.StringIO(_jsonl([session])))
    assert caught.value.field == f"line 1: {field}"
    assert len(manager.list()) == 0


@pytest.mark.parametrize("missing", ["name", "timestamp", "data"])
def test_import_names_the_checkpoint_field_that_is_missing(manager: SessionManager, missing: str) -> None:
    session = _seed("s-missing", "active", [_cp("step", 1, {}), _cp("step", 2, {})])
    del session["checkpoints"][1][missing]
    with pytest.raises(ValidationError) as caught:
        manager.import_sessions(io.StringIO(_jsonl([session])))
    assert caught.value.field == f"line 1: checkpoints[1].{missing}"


def test_import_of_a_line_nested_beyond_recursion_names_the_line(manager: SessionManager) -> None:
    deep = '{"session_id":"s","context":' + '{"a":' * 100_000 + "{}" + "}" * 100_000 + "}"
    with pytest.raises(ValidationError) as caught:
        manager.import_sessions(io.StringIO(_jsonl(SEED_SESSIONS[:1]) + deep + "\n"))
    assert caught.value.field == "line 2"
