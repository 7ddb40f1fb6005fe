"""Library values as the JSON the API answers: the dataclasses field for field, datetimes in ISO 8601."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import Response

from tether.core.model import Checkpoint, Page, Session, SessionCount

_OMIT_IN_LISTS = ("context", "metadata")


def session_json(session: Session, now: datetime, include_context: bool = True) -> dict[str, Any]:
    failure = session.failure
    out: dict[str, Any] = {
        "session_id": session.session_id,
        "agent_type": session.agent_type,
        "user_id": session.user_id,
        "state": session.state.value,
        "created_at": session.created_at,
        "last_heartbeat": session.last_heartbeat,
        "state_since": session.state_since,
        "context": session.context,
        "metadata": session.metadata,
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
        "failure": None
        if failure is None
        else {"error": failure.error, "details": failure.details, "final": failure.final},
        "last_seq": session.last_seq,
    }
    liveness = session.liveness(now)
    out["liveness"] = None if liveness is None else liveness.value
    if not include_context:
        for name in _OMIT_IN_LISTS:
            del out[name]
    return out


def checkpoint_json(cp: Checkpoint) -> dict[str, Any]:
    return {
        "session_id": cp.session_id,
        "seq": cp.seq,
        "name": cp.name,
        "timestamp": cp.timestamp,
        "data": cp.data,
    }


def page_json(page: Page[Session], now: datetime, include_context: bool) -> dict[str, Any]:
    return {
        "items": [session_json(s, now, include_context) for s in page.items],
        "next_cursor": page.next_cursor,
    }


def count_json(count: SessionCount) -> dict[str, Any]:
    return {
        "state": count.state.value,
        "agent_type": count.agent_type,
        "liveness": None if count.liveness is None else count.liveness.value,
        "count": count.count,
        "oldest_heartbeat": count.oldest_heartbeat,
    }


def dumps(value: Any) -> bytes:
    """orjson: datetimes in ISO 8601 with their UTC offset; anything else JSON cannot hold as text."""
    return orjson.dumps(value, default=str)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(value), status, headers=headers, media_type="application/json")


def etag(session: Session) -> dict[str, str]:
    return {"ETag": f'"{session.version}"'}
