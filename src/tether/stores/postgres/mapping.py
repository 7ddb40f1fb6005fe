"""Rows to models and models to query parameters: pure functions shared by the sync and async stores.

Rows are dicts by column name. JSON columns are PostgreSQL's `json` type, which keeps the text it
was given, so a document reads back exactly as written (key order, number spelling, NUL escapes);
they are written as the JSON text the caller's value was encoded to once, and read with orjson.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tether.core.codec import encode
from tether.core.model import Checkpoint, Failure, NewCheckpoint, Session, SessionFilter, State
from tether.lifecycle import Write
from tether.stores.base import Beat, build_checkpoint, build_session, decode_cursor, from_micros

Row = dict[str, Any]
Params = dict[str, Any]

_STATES = {state.value: state for state in State}


def session_from_row(row: Row) -> Session:
    """A row of `sessions` (psycopg has already decoded timestamps and JSON)."""
    failure = None
    if row["failure_error"] is not None:
        failure = Failure(row["failure_error"], row["failure_details"] or {}, bool(row["failure_final"]))
    return build_session(
        session_id=row["session_id"],
        agent_type=row["agent_type"],
        user_id=row["user_id"],
        state=_STATES[row["state"]],
        created_at=row["created_at"],
        last_heartbeat=row["last_heartbeat"],
        state_since=row["state_since"],
        context=row["context"],
        metadata=row["metadata"],
        parent_session_id=row["parent_session_id"],
        version=row["version"],
        owner=row["owner"],
        epoch=row["epoch"],
        heartbeat_timeout=row["heartbeat_timeout"],
        suspect_after=row["suspect_after"],
        lease_expires_at=row["lease_expires_at"],
        suspect_at=row["suspect_at"],
        phase=row["phase"],
        recoveries=row["recoveries"],
        ended_at=row["ended_at"],
        failure=failure,
        last_seq=row["last_seq"],
    )


def checkpoint_from_row(session_id: str, row: Row) -> Checkpoint:
    """A row of (seq, name, created_at, data)."""
    return build_checkpoint(session_id, row["seq"], row["name"], row["created_at"], row["data"])


def _text(value: Any) -> str | None:
    return None if value is None else encode(value).text


def session_params(session: Session) -> Params:
    """Every column of the session (JSON columns as text the statements cast to json)."""
    failure = session.failure
    return {
        "session_id": session.session_id,
        "agent_type": session.agent_type,
        "user_id": session.user_id,
        "state": session.state.value,
        "created_at": session.created_at,
        "last_heartbeat": session.last_heartbeat,
        "state_since": session.state_since,
        "context": _text(session.context),
        "metadata": _text(session.metadata),
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
        "failure_details": None if failure is None else _text(failure.details),
        "failure_final": None if failure is None else failure.final,
    }


def create_params(session: Session, checkpoints: Sequence[NewCheckpoint]) -> Params:
    return {
        **session_params(session),
        "cp_names": [cp.name for cp in checkpoints],
        "cp_times": [cp.timestamp for cp in checkpoints],
        "cp_data": [cp.data_json for cp in checkpoints],
    }


def write_params(write: Write) -> Params:
    cp = write.checkpoint
    return {
        **session_params(write.after),
        "expected_version": write.before.version,
        "expected_last_seq": write.expected_last_seq,
        "renews_lease": write.renews_lease,
        "cp_name": None if cp is None else cp.name,
        "cp_time": None if cp is None else cp.timestamp,
        "cp_data": None if cp is None else cp.data_json,
    }


@dataclass(frozen=True, slots=True)
class Append:
    """One caller's checkpoint append."""

    session_id: str
    checkpoint: NewCheckpoint
    epoch: int | None

    def params(self) -> Params:
        return {
            "session_id": self.session_id,
            "epoch": self.epoch,
            "name": self.checkpoint.name,
            "created_at": self.checkpoint.timestamp,
            "data": self.checkpoint.data_json,
        }


def batch_params(appends: Sequence[Append]) -> Params:
    """Appends as the arrays `append_checkpoints` unnests, in this order."""
    return {
        "session_ids": [a.session_id for a in appends],
        "epochs": [a.epoch for a in appends],
        "names": [a.checkpoint.name for a in appends],
        "times": [a.checkpoint.timestamp for a in appends],
        "data": [a.checkpoint.data_json for a in appends],
    }


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
