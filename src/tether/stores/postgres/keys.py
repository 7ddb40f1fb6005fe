"""API keys and session counts on PostgreSQL, as calls (see `calls`) both stores drive."""

from __future__ import annotations

from datetime import datetime

from tether.core.errors import ConflictError
from tether.core.keys import ApiKey
from tether.core.model import Liveness, SessionCount, State
from tether.stores.postgres.calls import Operation, Query
from tether.stores.sql_files import load_queries

KEYS = load_queries(__package__ or "tether.stores.postgres", "keys.sql")


def add_api_key(key: ApiKey) -> Operation[None]:
    params = {
        "key_id": key.key_id,
        "user_id": key.user_id,
        "admin": key.admin,
        "secret_hash": key.secret_hash,
        "created_at": key.created_at,
    }
    if not (yield Query(KEYS["insert_api_key"], params)):
        raise ConflictError(key.key_id, f"API key {key.key_id!r} exists")


def get_api_key(key_id: str) -> Operation[ApiKey | None]:
    rows = yield Query(KEYS["get_api_key"], {"key_id": key_id})
    return ApiKey(**rows[0]) if rows else None


def list_api_keys() -> Operation[list[ApiKey]]:
    rows = yield Query(KEYS["list_api_keys"])
    return [ApiKey(**row) for row in rows]


def revoke_api_key(key_id: str, at: datetime) -> Operation[bool]:
    rows = yield Query(KEYS["revoke_api_key"], {"key_id": key_id, "at": at})
    return bool(rows)


def count_sessions(now: datetime, user_id: str | None) -> Operation[list[SessionCount]]:
    rows = yield Query(KEYS["count_sessions"], {"now": now, "user_id": user_id}, prepare=False)
    return [
        SessionCount(State(state), agent_type, None if live is None else Liveness(live), n, oldest)
        for state, agent_type, live, n, oldest in (row.values() for row in rows)
    ]
