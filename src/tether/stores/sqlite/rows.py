"""Sessions and checkpoints to and from SQLite rows: times as UTC microseconds, JSON as text."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from tether.core.codec import decode
from tether.core.model import Checkpoint, Failure, Session, State
from tether.core.validation import encode_json
from tether.lifecycle import Write
from tether.stores.base import build_checkpoint, build_session, from_micros, to_micros

_STATES = {state.value: state for state in State}


def micros_or_none(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def _document(text: str) -> dict[str, Any]:
    """Most contexts and metadata are empty: skip the parser for them."""
    if text == "{}":
        return {}
    value: dict[str, Any] = decode(text)
    return value


def _time_or_none(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


@lru_cache(maxsize=256)
def _later(micros: int) -> timedelta:
    """A deadline's distance from the last heartbeat: one of a few per policy (and announced silence)."""
    return timedelta(microseconds=micros)


def _deadline(beat: datetime, beat_us: int, value: int | None) -> datetime | None:
    return None if value is None else beat + _later(value - beat_us)


def session_from_row(row: tuple[Any, ...]) -> Session:
    """A row of any `SELECT` in queries.sql that starts with the session columns, then last_seq
    (the newest checkpoint's seq), as a Session: its fields in order.

    Building datetimes is much of the work, so each is derived from one already built where it
    can: the last heartbeat and the state's start are often the creation time itself (a session
    listed before it beats or changes state), and the lease's deadlines lie a known distance after
    the last heartbeat (adding a cached timedelta costs less than building one)."""
    (sid, agent_type, user_id, state, created_us, beat_us, since_us, context, metadata, parent, version,
     owner, epoch, timeout, suspect_after, lease_us, suspect_us, phase, recoveries, ended_us,
     error, details, final, last_seq, *_) = row  # fmt: skip
    created = from_micros(created_us)
    beat = created if beat_us == created_us else from_micros(beat_us)
    return build_session(
        sid,
        agent_type,
        user_id,
        _STATES[state],
        created,
        beat,
        created if since_us == created_us else _time_or_none(since_us),
        _document(context),
        _document(metadata),
        parent,
        version,
        owner,
        epoch,
        timeout,
        suspect_after,
        _deadline(beat, beat_us, lease_us),
        _deadline(beat, beat_us, suspect_us),
        phase,
        recoveries,
        _time_or_none(ended_us),
        None if error is None else Failure(error, _document(details), bool(final)),
        last_seq or 0,
    )


def session_to_row(s: Session) -> tuple[Any, ...]:
    """Values for `insert_session`, in its column order."""
    failure = s.failure
    return (
        s.session_id,
        s.agent_type,
        s.user_id,
        s.state.value,
        to_micros(s.created_at),
        to_micros(s.last_heartbeat),
        micros_or_none(s.state_since),
        encode_json("context", s.context),
        encode_json("metadata", s.metadata),
        s.parent_session_id,
        s.version,
        s.owner,
        s.epoch,
        s.heartbeat_timeout,
        s.suspect_after,
        micros_or_none(s.lease_expires_at),
        micros_or_none(s.suspect_at),
        s.phase,
        s.recoveries,
        micros_or_none(s.ended_at),
        None if failure is None else failure.error,
        None if failure is None else encode_json("failure details", failure.details),
        None if failure is None else int(failure.final),
    )


_COLUMNS = (  # of `insert_session` and `apply_write`, in session_to_row's order
    "session_id",
    "agent_type",
    "user_id",
    "state",
    "created_us",
    "last_heartbeat_us",
    "state_since_us",
    "context",
    "metadata",
    "parent_session_id",
    "version",
    "owner",
    "epoch",
    "heartbeat_timeout",
    "suspect_after",
    "lease_us",
    "suspect_us",
    "phase",
    "recoveries",
    "ended_us",
    "failure_error",
    "failure_details",
    "failure_final",
)


def write_params(write: Write) -> dict[str, Any]:
    """Named values for `apply_write`."""
    params = dict(zip(_COLUMNS, session_to_row(write.after), strict=True))
    params["expected_version"] = write.before.version
    params["expected_last_seq"] = write.expected_last_seq
    params["renews_lease"] = int(write.renews_lease)
    return params


def checkpoint_from_row(session_id: str, row: tuple[Any, ...]) -> Checkpoint:
    """A row of (seq, name, ts_us, data)."""
    return build_checkpoint(session_id, row[0], row[1], from_micros(row[2]), decode(row[3]))
