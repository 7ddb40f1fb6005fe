"""Rows to models and models to query parameters: pure functions shared by the sync and async stores."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tether.lifecycle import Write
from tether.model import Checkpoint, Failure, NewCheckpoint, Session, SessionFilter, State
from tether.stores.base import Beat, decode_cursor, from_micros

Row = dict[str, Any]

# JSON encoders always write the NUL character as this escape; jsonb refuses it (text cannot
# hold NUL), so such values keep their exact text in a `json` column (see 0001_initial.sql).
NUL_ESCAPE = "\\u0000"
EXACT_FIELDS = ("context", "metadata", "failure_details")


def jsonb_text(text: str) -> tuple[str, str | None]:
    """(text for the jsonb column, the exact text if jsonb cannot hold it). The jsonb copy of a
    value with NUL gets U+FFFD instead, so it stays valid and queryable; reads use the exact one."""
    if NUL_ESCAPE not in text:
        return text, None
    return text.replace(NUL_ESCAPE, "\\ufffd"), text


def session_from_row(row: Mapping[str, Any]) -> Session:
    exact = row["json_exact"] or {}
    failure = None
    if row["failure_error"] is not None:
        details = exact.get("failure_details", row["failure_details"])
        failure = Failure(row["failure_error"], details or {}, bool(row["failure_final"]))
    return Session(
        session_id=row["session_id"],
        agent_type=row["agent_type"],
        user_id=row["user_id"],
        state=State(row["state"]),
        created_at=row["created_at"],
        last_heartbeat=row["last_heartbeat"],
        state_since=row["state_since"],
        context=exact.get("context", row["context"]),
        metadata=exact.get("metadata", row["metadata"]),
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


def checkpoint_from_row(session_id: str, row: Mapping[str, Any]) -> Checkpoint:
    data = row["data"] if row["data_exact"] is None else row["data_exact"]
    return Checkpoint(session_id, row["seq"], row["name"], row["created_at"], data)


def session_params(session: Session) -> Row:
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
    """context, metadata and failure_details for jsonb, and `json_exact` for those it cannot hold."""
    failure = session.failure
    values = {
        "context": session.context,
        "metadata": session.metadata,
        "failure_details": None if failure is None else failure.details,
    }
    columns: dict[str, str | None] = {}
    exact: dict[str, str] = {}
    for field, value in values.items():
        if value is None:
            columns[field] = None
            continue
        columns[field], original = jsonb_text(_json(value))
        if original is not None:
            exact[field] = original
    columns["json_exact"] = _json_object(exact) if exact else None
    return columns


def create_params(session: Session, checkpoints: Sequence[NewCheckpoint]) -> Row:
    return {
        **session_params(session),
        "cp_names": [cp.name for cp in checkpoints],
        "cp_times": [cp.timestamp for cp in checkpoints],
        "cp_data": [jsonb_text(cp.data_json)[0] for cp in checkpoints],
        "cp_data_exact": [jsonb_text(cp.data_json)[1] for cp in checkpoints],
    }


def write_params(write: Write) -> Row:
    cp = write.checkpoint
    data, exact = (None, None) if cp is None else jsonb_text(cp.data_json)
    return {
        **session_params(write.after),
        "expected_version": write.before.version,
        "renews_lease": write.renews_lease,
        "cp_name": None if cp is None else cp.name,
        "cp_time": None if cp is None else cp.timestamp,
        "cp_data": data,
        "cp_data_exact": exact,
    }


def append_params(session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Row:
    data, exact = jsonb_text(checkpoint.data_json)
    return {
        "session_id": session_id,
        "epoch": epoch,
        "name": checkpoint.name,
        "created_at": checkpoint.timestamp,
        "data": data,
        "data_exact": exact,
    }


def beat_params(beats: Sequence[Beat], now: Any) -> Row:
    return {
        "now": now,
        "session_ids": [b.session_id for b in beats],
        "epochs": [b.epoch for b in beats],
        "phases": [b.phase for b in beats],
        "silences": [b.expect_silence for b in beats],
    }


def filter_params(where: SessionFilter, limit: int, cursor: str | None) -> Row:
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
