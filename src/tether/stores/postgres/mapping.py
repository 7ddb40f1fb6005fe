"""Rows to models and models to query parameters: pure functions shared by the sync and async stores."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.core.codec import encode
from tether.core.model import Checkpoint, Failure, NewCheckpoint, Session, SessionFilter, State
from tether.lifecycle import Write
from tether.stores.base import Beat, decode_cursor, from_micros
from tether.stores.postgres import jsonb

Row = tuple[Any, ...]
Params = dict[str, Any]

# The columns of `sessions` in table order (migrations/0001_initial.sql; later migrations only
# add columns at the end), which is how every `SELECT *` / `RETURNING *` hands them back.
SESSION_COLUMNS = (
    "session_id", "agent_type", "user_id", "state", "created_at", "last_heartbeat", "state_since",
    "context", "metadata", "parent_session_id", "version", "owner", "epoch", "heartbeat_timeout",
    "suspect_after", "lease_expires_at", "suspect_at", "phase", "recoveries", "ended_at",
    "failure_error", "failure_details", "failure_final", "json_exact", "last_seq", "json_order",
)  # fmt: skip
_STATES = {state.value: state for state in State}


def _exact(row: Sequence[Any], field: str, at: int) -> Any:
    """A JSON column's value as written: the exact text kept beside it (json_exact) when jsonb could
    not hold it, else the jsonb value with its keys put back in written order (json_order)."""
    exact, order = row[23], row[25]
    if exact is not None and field in exact:
        return exact[field]
    return row[at] if order is None else jsonb.restore(row[at], order.get(field))


def _session_values(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row of `sessions` as the values of Session's fields in order (psycopg has already decoded
    timestamps and JSON): the columns up to ended_at are fields as they come."""
    failure = (
        None if row[20] is None else Failure(row[20], _exact(row, "failure_details", 21) or {}, bool(row[22]))
    )
    return (
        *row[:3],
        _STATES[row[3]],
        *row[4:7],
        _exact(row, "context", 7),
        _exact(row, "metadata", 8),
        *row[9:20],
        failure,
        row[24],  # last_seq
    )


def session_from_row(row: Sequence[Any]) -> Session:
    """A row of `sessions` as a Session decoded when a field is first read (listings hand out many
    sessions of which callers may read none)."""
    return Session.from_row(_session_values, row)


def checkpoint_from_row(session_id: str, row: Sequence[Any]) -> Checkpoint:
    """A row of (seq, name, created_at, data, data_exact, data_order)."""
    data = row[4] if row[4] is not None else jsonb.restore(row[3], row[5])
    return Checkpoint(session_id, row[0], row[1], row[2], data)


def session_params(session: Session) -> Params:
    """Every column of the session (JSON columns as text the statements cast)."""
    failure = session.failure
    return {
        "session_id": session.session_id,
        "agent_type": session.agent_type,
        "user_id": session.user_id,
        "state": session.state.value,
        "created_at": session.created_at,
        "last_heartbeat": session.last_heartbeat,
        "state_since": session.state_since,
        "parent_session_id": session.parent_session_id,
        "version": session.version,
        "owner": session.owner,
        "epoch": session.epoch,
        "heartbeat_timeout": session.heartbeat_timeout,
        "suspect_after": session.suspect_after,
        "lease_expires_at": session.lease_expires_at,
        "suspect_at": session.suspect_at,
        "phase": session.phase,
        "recoveries": session.recoveries,
        "ended_at": session.ended_at,
        "failure_error": None if failure is None else failure.error,
        "failure_final": None if failure is None else failure.final,
        **_json_columns(session),
    }


def _json_columns(session: Session) -> dict[str, str | None]:
    """context, metadata and failure_details for jsonb; `json_exact` for those it cannot hold, and
    `json_order` for those whose keys it would reorder (by field name)."""
    failure = session.failure
    values = {
        "context": session.context,
        "metadata": session.metadata,
        "failure_details": None if failure is None else failure.details,
    }
    columns: dict[str, str | None] = {}
    exact: dict[str, str] = {}
    order: dict[str, str] = {}
    for field, value in values.items():
        if value is None:
            columns[field] = None
            continue
        encoded = encode(value)  # the text and its decoded copy, which `stored` visits
        columns[field], exact_text, order_text = jsonb.stored(encoded.text, encoded.copy)
        if exact_text is not None:
            exact[field] = exact_text
        if order_text is not None:
            order[field] = order_text
    columns["json_exact"] = _json_object(exact) if exact else None
    columns["json_order"] = _json_object(order) if order else None
    return columns


def create_params(session: Session, checkpoints: Sequence[NewCheckpoint]) -> Params:
    return {
        **session_params(session),
        "cp_names": [cp.name for cp in checkpoints],
        "cp_times": [cp.timestamp for cp in checkpoints],
        **_columns(
            ("cp_data", "cp_data_exact", "cp_data_order"),
            [jsonb.stored(cp.data_json, cp.data) for cp in checkpoints],
        ),
    }


def write_params(write: Write) -> Params:
    cp = write.checkpoint
    data, exact, order = (None, None, None) if cp is None else jsonb.stored(cp.data_json, cp.data)
    return {
        **session_params(write.after),
        "expected_version": write.before.version,
        "expected_last_seq": write.expected_last_seq,
        "renews_lease": write.renews_lease,
        "cp_name": None if cp is None else cp.name,
        "cp_time": None if cp is None else cp.timestamp,
        "cp_data": data,
        "cp_data_exact": exact,
        "cp_data_order": order,
    }


def append_params(session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Params:
    data, exact, order = jsonb.stored(checkpoint.data_json, checkpoint.data)
    return {
        "session_id": session_id,
        "epoch": epoch,
        "name": checkpoint.name,
        "created_at": checkpoint.timestamp,
        "data": data,
        "data_exact": exact,
        "data_order": order,
    }


@dataclass(frozen=True, slots=True)
class Append:
    """One caller's checkpoint append, as the group commit queues it."""

    session_id: str
    checkpoint: NewCheckpoint
    epoch: int | None


def batch_params(appends: Sequence[Append]) -> Params:
    """The columns of a batch of appends, as arrays `append_checkpoints` unnests in this order."""
    return {
        "session_ids": [a.session_id for a in appends],
        "epochs": [a.epoch for a in appends],
        "names": [a.checkpoint.name for a in appends],
        "times": [a.checkpoint.timestamp for a in appends],
        **_columns(
            ("data", "data_exact", "data_order"),
            [jsonb.stored(a.checkpoint.data_json, a.checkpoint.data) for a in appends],
        ),
    }


def _columns(names: tuple[str, str, str], documents: Sequence[jsonb.Stored]) -> Params:
    """Stored documents as three arrays (jsonb text, exact text, key order) under these names."""
    return {name: [document[at] for document in documents] for at, name in enumerate(names)}


def beat_params(beats: Sequence[Beat], now: Any) -> Params:
    return {
        "now": now,
        "session_ids": [b.session_id for b in beats],
        "epochs": [b.epoch for b in beats],
        "phases": [b.phase for b in beats],
        "silences": [b.expect_silence for b in beats],
    }


def filter_params(where: SessionFilter, limit: int, cursor: str | None) -> Params:
    """The listing's parameters; asks for one row more than `limit` to learn if a next page exists."""
    after_at, after_id = None, None
    if cursor is not None:
        micros, after_id = decode_cursor(cursor)
        after_at = from_micros(micros)
    return {
        "user_id": where.user_id,
        "agent_type": where.agent_type,
        "agent_types": None if where.agent_types is None else sorted(where.agent_types),
        "state": None if where.state is None else where.state.value,
        "parent_session_id": where.parent_session_id,
        "heartbeat_before": where.heartbeat_before,
        "paused_before": where.paused_before,
        "suspect_at_or_before": where.suspect_at_or_before,
        "lease_expired_at": where.lease_expired_at,
        "after_created_at": after_at,
        "after_session_id": after_id,
        "limit": limit + 1,
    }


def _json_object(texts: Mapping[str, str]) -> str:
    """A JSON object from members that are JSON text already (no second encoding)."""
    return "{" + ",".join(f"{_json(name)}:{text}" for name, text in texts.items()) + "}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
