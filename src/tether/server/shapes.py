"""Library values as the JSON the API answers: `tether.core.wire`'s forms, plus what only the server
knows (liveness at its clock, lists, counts)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from fastapi import Response

from tether.core import wire
from tether.core.model import Page, Session, SessionCount


def session_json(session: Session, now: datetime, include_context: bool = True) -> dict[str, Any]:
    """The wire form (`tether.core.wire`) plus `liveness` at the server's clock."""
    out = wire.session_to_json(session, bulky=include_context)
    liveness = session.liveness(now)
    out["liveness"] = None if liveness is None else liveness.value
    return out


checkpoint_json = wire.checkpoint_to_json


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
    """orjson: datetimes in ISO 8601 with their UTC offset; anything else JSON cannot hold as text.
    Integers past 64 bits, which orjson refuses, go through the standard library, exactly."""
    try:
        return orjson.dumps(value, default=str)
    except orjson.JSONEncodeError:
        return json.dumps(value, default=_text, ensure_ascii=False, separators=(",", ":")).encode()


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(value), status, headers=headers, media_type="application/json")


def etag(session: Session) -> dict[str, str]:
    return {"ETag": f'"{session.version}"'}
