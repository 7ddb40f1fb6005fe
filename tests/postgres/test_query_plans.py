"""Every listing the API offers, and the checkpoint look-ups, are index scans on a table big enough
for the planner to care: no sequential scan, whatever filter is set."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from tether import State
from tether.core.model import SessionFilter
from tether.core.postgres_url import PoolSettings
from tether.stores.postgres import PostgresStore
from tether.stores.postgres.calls import QUERIES
from tether.stores.postgres.mapping import filter_params

SESSIONS = 20_000
LATER = datetime(2100, 1, 1, tzinfo=UTC)

GENERATE = """
INSERT INTO sessions (session_id, agent_type, user_id, state, created_at, last_heartbeat, state_since,
    context, metadata, parent_session_id, version, owner, epoch, heartbeat_timeout, suspect_after,
    lease_expires_at, suspect_at, recoveries, ended_at, failure_error, failure_final, last_seq)
SELECT 's' || g, 'type-' || (g % 50), 'user-' || (g % 2000), st,
    now() - g * interval '1 second', now() - g * interval '1 second', now(), '{}', '{}',
    CASE WHEN g % 10 = 0 THEN 's' || (g / 10) END, 1, 'w', 1, 60, 30,
    now() + (g % 1000) * interval '1 second', now() + (g % 1000) * interval '1 second', 0,
    CASE WHEN st IN ('completed', 'failed') THEN now() END, CASE WHEN st = 'failed' THEN 'boom' END,
    CASE WHEN st = 'failed' THEN g % 2 = 0 END, 0
FROM (SELECT g, CASE WHEN g % 100 = 0 THEN 'paused'
                     ELSE (ARRAY['active', 'completed', 'failed'])[1 + g % 3] END AS st
      FROM generate_series(1, %(n)s) g) AS generated;
INSERT INTO checkpoints (session_id, seq, name, created_at, data)
SELECT 's1', g, 'step-' || (g % 7), now(), '{}' FROM generate_series(1, 20000) g;
UPDATE sessions SET last_seq = 20000 WHERE session_id = 's1';
ANALYZE sessions;
ANALYZE checkpoints;
"""


@pytest.fixture(scope="module")
def conninfo() -> str:
    from tests.conftest import fresh_postgres_url

    url = fresh_postgres_url()
    PostgresStore.from_url(url).close()
    info = PoolSettings.from_url(url).conninfo
    with psycopg.connect(info, autocommit=True) as conn:
        for statement in GENERATE.split(";\n"):
            if statement.strip():
                conn.execute(statement.replace("%(n)s", str(SESSIONS)))  # type: ignore[arg-type]
    return info


def plan(conninfo: str, name: str, params: dict[str, Any]) -> str:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(f"EXPLAIN {QUERIES[name]}", params, prepare=False).fetchall()  # type: ignore[arg-type]
    return "\n".join(row[0] for row in rows)


# Each listing and the index made for it (migrations/0001_initial.sql).
LISTINGS = {
    "by user": (SessionFilter(user_id="user-7"), "sessions_by_user"),
    "by agent type": (SessionFilter(agent_type="type-7"), "sessions_by_agent_type"),
    "by state": (SessionFilter(state=State.PAUSED), "sessions_by_state"),
    "by parent": (SessionFilter(parent_session_id="s42"), "sessions_by_parent"),
    "lease expired": (SessionFilter(lease_expired_at=datetime.now(UTC)), "sessions_lease_expiry"),
    "suspect": (SessionFilter(suspect_at_or_before=datetime.now(UTC)), "sessions_suspect"),
    "silent": (SessionFilter(heartbeat_before=datetime(2000, 1, 1, tzinfo=UTC)), "sessions_last_heartbeat"),
    "everything, newest first": (SessionFilter(), "sessions_newest"),
}


@pytest.mark.parametrize(("where", "index"), LISTINGS.values(), ids=LISTINGS.keys())
def test_each_listing_uses_its_index(conninfo: str, where: SessionFilter, index: str) -> None:
    shown = plan(conninfo, "query_sessions", filter_params(where, 50, None))
    assert "Seq Scan" not in shown and index in shown, shown


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("last_checkpoint", {"session_id": "s1", "name": None}),
        ("last_checkpoint_named", {"session_id": "s1", "name": "step-3"}),
        ("checkpoints_named", {"session_id": "s1", "name": "step-3", "after_seq": 100, "limit": 50}),
        ("claimable", {"now": LATER, "agent_types": None, "limit": 16}),
    ],
)
def test_checkpoint_and_claim_lookups_use_an_index(conninfo: str, name: str, params: dict[str, Any]) -> None:
    shown = plan(conninfo, name, params)
    assert "Seq Scan" not in shown, shown


# The statements every append, read and heartbeat runs, and the index each must go through.
HOT = {
    "get_session": "sessions_pkey",
    "last_checkpoint": "checkpoints_pkey",
    "last_checkpoint_named": "checkpoints_by_name",
    "checkpoints": "checkpoints_pkey",
    "append_checkpoint": "sessions_pkey",
    "apply_write": "sessions_pkey",
    "lock_session": "sessions_pkey",
}
# Indexes made for listings and the sweep: a point statement that goes through one reads every
# active session (issue 14: the append's plan, cached on a new database, did until an ANALYZE).
LISTING_INDEXES = (
    "sessions_suspect",
    "sessions_lease_expiry",
    "sessions_last_heartbeat",
    "sessions_by_state",
)


def generic_plan(conninfo: str, name: str) -> str:
    """The plan a prepared statement keeps once PostgreSQL settles on a generic one: forced here,
    on a freshly migrated schema with no rows and no statistics."""
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    sql = re.sub(r"%\((\w+)\)[sb]", placeholder, QUERIES[name])
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE hot AS {sql}")  # type: ignore[arg-type]
        rows = conn.execute(f"EXPLAIN EXECUTE hot({', '.join('NULL' for _ in names)})").fetchall()  # type: ignore[arg-type]
    return "\n".join(row[0] for row in rows)


@pytest.fixture(scope="module")
def empty_schema() -> str:
    from tests.conftest import fresh_postgres_url

    url = fresh_postgres_url()
    PostgresStore.from_url(url).close()
    return PoolSettings.from_url(url).conninfo


@pytest.mark.parametrize(("name", "index"), HOT.items(), ids=HOT.keys())
def test_hot_statements_plan_through_their_key_on_an_empty_schema(
    empty_schema: str, name: str, index: str
) -> None:
    shown = generic_plan(empty_schema, name)
    assert index in shown and "Seq Scan" not in shown, shown
    assert not any(other in shown for other in LISTING_INDEXES), shown


def test_the_heartbeat_batch_uses_no_listing_index_on_an_empty_schema(empty_schema: str) -> None:
    shown = generic_plan(empty_schema, "heartbeat")
    assert not any(other in shown for other in LISTING_INDEXES), shown
