"""Sessions and checkpoints to and from SQLite rows: times as UTC microseconds, JSON as text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from operator import itemgetter
from typing import Any

from tether.codec import decode
from tether.lifecycle import Write
from tether.model import Checkpoint, Failure, RowLayout, Session, State
from tether.stores.base import from_micros, to_micros
from tether.validation import encode_json

_STATES = {state.value: state for state in State}


def micros_or_none(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def _document(text: str) -> dict[str, Any]:
    """Most contexts and metadata are empty: skip the parser for them."""
    if text == "{}":
        return {}
    value: dict[str, Any] = decode(text)
    return value


def _failure(row: tuple[Any, ...]) -> Failure | None:
    return None if row[20] is None else Failure(row[20], _document(row[21]), bool(row[22]))


def _time_at(index: int) -> Callable[[tuple[Any, ...]], datetime | None]:
    return lambda row: None if row[index] is None else from_micros(row[index])


def _document_at(index: int) -> Callable[[tuple[Any, ...]], dict[str, Any]]:
    return lambda row: _document(row[index])


# Columns of every session `SELECT` in queries.sql, in order; last_seq (the newest checkpoint's
# seq, from the primary key index) last.
SESSION_LAYOUT: RowLayout = {
    "session_id": itemgetter(0),
    "agent_type": itemgetter(1),
    "user_id": itemgetter(2),
    "state": lambda row: _STATES[row[3]],
    "created_at": lambda row: from_micros(row[4]),
    "last_heartbeat": lambda row: from_micros(row[5]),
    "state_since": _time_at(6),
    "context": _document_at(7),
    "metadata": _document_at(8),
    "parent_session_id": itemgetter(9),
    "version": itemgetter(10),
    "owner": itemgetter(11),
    "epoch": itemgetter(12),
    "heartbeat_timeout": itemgetter(13),
    "suspect_after": itemgetter(14),
    "lease_expires_at": _time_at(15),
    "suspect_at": _time_at(16),
    "phase": itemgetter(17),
    "recoveries": itemgetter(18),
    "ended_at": _time_at(19),
    "failure": _failure,
    "last_seq": lambda row: row[23] or 0,
}


def session_from_row(row: tuple[Any, ...]) -> Session:
    """A row of any `SELECT` in queries.sql that starts with the session columns; its fields are
    decoded when first read (listings build one per row, so this is a hot path)."""
    return Session.from_row(SESSION_LAYOUT, row)


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
    params["renews_lease"] = int(write.renews_lease)
    return params


def checkpoint_from_row(session_id: str, row: tuple[Any, ...]) -> Checkpoint:
    """A row of (seq, name, ts_us, data)."""
    return Checkpoint(session_id, row[0], row[1], from_micros(row[2]), decode(row[3]))
