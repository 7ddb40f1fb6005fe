"""The seed format (`AgentSession.to_dict()` of the original session_models.py), read and written.

It is a compatibility contract: `to_seed_dict(from_seed_dict(d)) == d` for every dict the seed
writes, timestamps and their offsets included. Export writes JSONL, one session per line with its
checkpoints inline; import reads it back.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from tether.core.errors import ValidationError
from tether.core.model import ENDED_STATES, Checkpoint, Failure, NewCheckpoint, Session, State, as_aware
from tether.core.validation import MAX_SECONDS, check_text, encode_json, encode_payload

# Stores hold instants in UTC; a lease (at most MAX_SECONDS) measured from the latest must still fit.
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(seconds=MAX_SECONDS)


def to_seed_dict(session: Session, checkpoints: Iterable[Checkpoint]) -> dict[str, Any]:
    """The session as the seed's `to_dict()` writes it (same keys, same order)."""
    return {
        "session_id": session.session_id,
        "agent_type": session.agent_type,
        "user_id": session.user_id,
        "state": session.state.value,
        "created_at": session.created_at.isoformat(),
        "last_heartbeat": session.last_heartbeat.isoformat(),
        "context": session.context,
        "checkpoints": [
            {"name": cp.name, "timestamp": cp.timestamp.isoformat(), "data": cp.data} for cp in checkpoints
        ],
        "metadata": session.metadata,
    }


def from_seed_dict(data: Mapping[str, Any]) -> tuple[Session, list[Checkpoint]]:
    """Read one seed dict, validating every field; the session comes back owner-less."""
    if not isinstance(data, Mapping):
        raise ValidationError("session", "must be a JSON object")
    session_id = check_text("session_id", _field(data, "session_id"))
    state = _state(_field(data, "state"))
    checkpoints = [
        _checkpoint(session_id, seq, raw) for seq, raw in enumerate(_list(data, "checkpoints"), start=1)
    ]
    created_at = _timestamp("created_at", _field(data, "created_at"))
    last_heartbeat = _timestamp("last_heartbeat", _field(data, "last_heartbeat"))
    ended_at = None
    if state in ENDED_STATES:
        ended_at = checkpoints[-1].timestamp if checkpoints else last_heartbeat
    session = Session(
        session_id=session_id,
        agent_type=check_text("agent_type", _field(data, "agent_type")),
        user_id=check_text("user_id", _field(data, "user_id")),
        state=state,
        created_at=created_at,
        last_heartbeat=last_heartbeat,
        state_since=ended_at or last_heartbeat,
        context=_object(data, "context"),
        metadata=_object(data, "metadata"),
        owner=None,
        ended_at=ended_at,
        failure=_failure(state, checkpoints),
        last_seq=len(checkpoints),
    )
    return session, checkpoints


def new_checkpoints(checkpoints: Sequence[Checkpoint]) -> list[NewCheckpoint]:
    """Checkpoints read from a seed dict, in the form a store writes."""
    written = []
    for cp in checkpoints:
        encoded = encode_payload("data", cp.data)
        written.append(NewCheckpoint(cp.name, cp.timestamp, encoded.text, encoded.copy))
    return written


def read_jsonl(lines: Iterable[str | bytes]) -> Iterator[tuple[int, Session, list[Checkpoint]]]:
    """Parse a JSONL export lazily, as (line number, session, checkpoints); errors name the line.
    Lines may be bytes (a file read in binary), so invalid UTF-8 is pinned to its line."""
    number = 0
    read = iter(lines)
    while True:
        try:
            line = next(read, None)
        except UnicodeDecodeError:  # a text stream decodes ahead of the line it hands out
            raise ValidationError(f"line {number + 1}", "is not valid UTF-8 (or a line near it)") from None
        if line is None:
            return
        number += 1
        if isinstance(line, bytes):
            try:
                line = line.decode()
            except UnicodeDecodeError as exc:
                raise ValidationError(f"line {number}", f"is not valid UTF-8 (byte {exc.start})") from None
        if not line.strip():
            continue
        try:
            yield number, *from_seed_dict(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValidationError(f"line {number}", f"is not JSON: {exc.msg}") from None
        except RecursionError:
            raise ValidationError(f"line {number}", "is nested too deeply to read") from None
        except ValidationError as exc:
            raise ValidationError(f"line {number}: {exc.field}", exc.problem) from None
        except ValueError:  # the only other refusal: an integer longer than Python converts
            limit = sys.get_int_max_str_digits()
            raise ValidationError(f"line {number}", f"has an integer of over {limit} digits") from None


def write_jsonl(stream: IO[str], session: Session, checkpoints: Iterable[Checkpoint]) -> None:
    stream.write(json.dumps(to_seed_dict(session, checkpoints), ensure_ascii=False))
    stream.write("\n")


def _field(data: Mapping[str, Any], name: str, where: str = "") -> Any:
    try:
        return data[name]
    except KeyError:
        raise ValidationError(f"{where}{name}", "is missing") from None


def _list(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise ValidationError(name, "must be a list")
    return value


def _object(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    encode_json(name, value)
    return dict(value)


def _state(value: Any) -> State:
    try:
        return State(value)
    except ValueError:
        allowed = ", ".join(s.value for s in State)
        raise ValidationError("state", f"{value!r} is not one of {allowed}") from None


def _timestamp(name: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValidationError(name, "must be an ISO-8601 string")
    try:
        parsed = as_aware(datetime.fromisoformat(value))
    except ValueError:
        raise ValidationError(name, f"{value!r} is not an ISO-8601 timestamp") from None
    try:
        in_range = parsed.astimezone(UTC) <= LATEST
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is in year 0 in UTC
        in_range = False
    if not in_range:
        raise ValidationError(name, f"{value!r} is outside the years 1 to {LATEST.year} in UTC")
    return parsed


def _checkpoint(session_id: str, seq: int, raw: Any) -> Checkpoint:
    where = f"checkpoints[{seq - 1}]"
    if not isinstance(raw, Mapping):
        raise ValidationError(where, "must be a JSON object")
    data = _field(raw, "data", f"{where}.")
    encode_json(f"{where}.data", data)
    return Checkpoint(
        session_id=session_id,
        seq=seq,
        name=check_text(f"{where}.name", _field(raw, "name", f"{where}.")),
        timestamp=_timestamp(f"{where}.timestamp", _field(raw, "timestamp", f"{where}.")),
        data=data,
    )


def _failure(state: State, checkpoints: list[Checkpoint]) -> Failure | None:
    """An imported failure is history: final, with the error its last session_failed names."""
    if state is not State.FAILED:
        return None
    for cp in reversed(checkpoints):
        if cp.name == "session_failed":
            return Failure(str(cp.data.get("error", "failed")), cp.data.get("details") or {}, True)
    return Failure("failed", {}, True)
