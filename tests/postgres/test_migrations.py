"""Numbered migrations: applied on first use and by `tether migrate`, upgrading a database of an
older schema version with data in it loses nothing, and a newer database is refused."""

from __future__ import annotations

import json
import threading
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Json, Jsonb

from tests.conftest import fresh_postgres_url
from tests.support import run_tether, subprocess_env
from tether import ManualClock, SchemaMismatch, State
from tether.core.model import NewCheckpoint
from tether.core.postgres_url import PoolSettings
from tether.stores.postgres import PostgresStore
from tether.stores.postgres import calls as ops
from tether.stores.postgres.connection import Connection
from tether.stores.postgres.store import drive

LATEST = len(ops.MIGRATIONS)


def raw_connection(url: str) -> Connection:
    """A connection of the class the store's pool makes (what `drive` runs on), outside any pool."""
    return Connection.connect(PoolSettings.from_url(url).conninfo, autocommit=True, row_factory=dict_row)


def applied_versions(url: str) -> list[int]:
    with raw_connection(url) as conn:
        return [row["version"] for row in conn.execute("SELECT version FROM tether_schema ORDER BY 1")]


def index_names(url: str) -> set[str]:
    with raw_connection(url) as conn:
        rows = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        return {str(row["indexname"]) for row in rows}


def test_a_fresh_schema_is_migrated_on_first_use_and_migrating_again_changes_nothing(pg_url: str) -> None:
    with closing(PostgresStore.from_url(pg_url)) as store:
        assert store.migrate() == LATEST
        assert store.migrate() == LATEST
    assert applied_versions(pg_url) == list(range(1, LATEST + 1))


def write_as_old_code(url: str, created: datetime) -> list[str]:
    """Twelve sessions with five checkpoints each, as the code of schema versions 1 to 3 wrote them
    (that code is gone; these are its rows, in the columns those versions share): users 0-2,
    session 0 completed, 1 failed, 2 paused, the rest active; each context has a NUL, which only
    the json_exact column holds exactly."""
    ids = [f"s{i:02}" for i in range(12)]
    with raw_connection(url) as conn, conn.transaction():
        for i, sid in enumerate(ids):
            state = {0: "completed", 1: "failed", 2: "paused"}.get(i, "active")
            context = Jsonb({"i": i, "nul": "a\ufffdb"})
            exact = Json({"context": {"i": i, "nul": "a\u0000b"}})
            conn.execute(
                """INSERT INTO sessions (session_id, agent_type, user_id, state, created_at,
                       last_heartbeat, state_since, context, metadata, version, epoch,
                       heartbeat_timeout, suspect_after, recoveries, ended_at, failure_error,
                       failure_details, failure_final, json_exact, last_seq)
                   VALUES (%s, 'tutor', %s, %s, %s, %s, %s, %s, '{}', 3, 1, 30, 10, 0, %s, %s, %s, %s,
                           %s, 5)""",
                (
                    sid, f"user-{i % 3}", state, created, created, created if i < 3 else None,
                    context, created if i < 2 else None, "boom" if i == 1 else None,
                    Jsonb({"why": "test"}) if i == 1 else None, False if i == 1 else None, exact,
                ),
            )  # fmt: skip
            for n in range(1, 6):
                conn.execute(
                    "INSERT INTO checkpoints (session_id, seq, name, created_at, data)"
                    " VALUES (%s, %s, 'step', %s, %s)",
                    (sid, n, created, Jsonb({"n": n})),
                )
    return ids


def write_as_version_4_code(url: str, created: datetime) -> None:
    """A session and a checkpoint as the code of schema version 4 wrote them: jsonb values, and
    beside them the key order written (per object visited depth first: the positions of its keys
    in jsonb's sorted order), which version 6 turns back into the exact text."""
    order = Json({"context": [[0, [1, 0]], [1, [2, 0, 1]], [2, [1, 0]]]})
    with raw_connection(url) as conn, conn.transaction():
        conn.execute(
            """INSERT INTO sessions (session_id, agent_type, user_id, state, created_at,
                   last_heartbeat, context, metadata, version, epoch, heartbeat_timeout,
                   suspect_after, recoveries, last_seq, json_order)
               VALUES ('v4', 'tutor', 'u', 'active', %s, %s, %s, '{"b": 1, "a": 2}', 1, 1, 30, 10, 0,
                       1, %s)""",
            (created, created, Jsonb({"zz": {"c": 1, "a": [{"y": 1, "x": 2}], "b": None}, "a": 1}), order),
        )
        conn.execute(
            "INSERT INTO checkpoints (session_id, seq, name, created_at, data, data_order)"
            " VALUES ('v4', 1, 'step', %s, %s, %s)",
            (created, Jsonb({"b": {"d": 1, "c": 2}, "a": 1.5}), Json([[0, [1, 0]], [1, [1, 0]]])),
        )


@pytest.mark.parametrize("version", [1, LATEST - 1], ids=["from-version-1", "from-the-previous-version"])
def test_upgrading_an_older_database_keeps_every_session_and_checkpoint(pg_url: str, version: int) -> None:
    # 0005 (api_keys) only adds a table; 0006 turns the jsonb columns and their side columns into json.
    assert LATEST == 6, "write_as_old_code writes what versions 1-5 hold: check it for the new version"
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    to_old = ops.migrate(ops.MIGRATIONS[:version])
    with raw_connection(pg_url) as conn, conn.transaction():
        assert drive(conn, to_old, next(to_old)) == version
    ids = write_as_old_code(pg_url, clock.now())
    if version >= 4:
        write_as_version_4_code(pg_url, clock.now())

    with closing(PostgresStore.from_url(pg_url, clock)) as upgraded:
        sessions = [upgraded.get(sid) for sid in ids]
        assert [s.context for s in sessions] == [{"i": i, "nul": "a\u0000b"} for i in range(12)]
        assert [s.state for s in sessions[:4]] == [State.COMPLETED, State.FAILED, State.PAUSED, State.ACTIVE]
        assert sessions[1].failure is not None and sessions[1].failure.details == {"why": "test"}
        assert [s.user_id for s in sessions] == [f"user-{i % 3}" for i in range(12)]
        assert all(s.version == 3 and s.epoch == 1 and s.metadata == {} for s in sessions)
        for sid in ids:
            stored = upgraded.checkpoints(sid, limit=100)
            assert [(cp.seq, cp.name, cp.data) for cp in stored] == [
                (n, "step", {"n": n}) for n in range(1, 6)
            ]
            assert upgraded.last_checkpoint(sid, "step") == stored[-1]
        appended = upgraded.append(
            ids[3], NewCheckpoint("upgraded", clock.now(), '{"b":1,"a":2}', {"b": 1, "a": 2}), 1
        )
        assert appended.seq == 6
        assert list(upgraded.checkpoints(ids[3], after_seq=5)[0].data) == ["b", "a"]
        if version >= 4:  # the key order kept beside jsonb is the order of the text now
            kept = upgraded.get("v4")
            assert json.dumps(kept.context) == '{"zz": {"c": 1, "a": [{"y": 1, "x": 2}], "b": null}, "a": 1}'
            assert list(kept.metadata) == ["a", "b"]  # written before 0004 kept orders: jsonb's
            assert json.dumps(upgraded.checkpoints("v4")[0].data) == '{"b": {"d": 1, "c": 2}, "a": 1.5}'
        ended = upgraded.purge(datetime(2027, 1, 1, tzinfo=UTC), frozenset({State.COMPLETED}))
        assert ended == 1
    assert applied_versions(pg_url) == list(range(1, LATEST + 1))
    assert {"sessions_ended", "sessions_recoverable"} <= index_names(pg_url)


def test_a_database_newer_than_the_code_is_refused(pg_url: str) -> None:
    PostgresStore.from_url(pg_url).close()
    with raw_connection(pg_url) as conn:
        conn.execute(
            "INSERT INTO tether_schema (version, name) VALUES (%s, 'from the future')", (LATEST + 1,)
        )
    with pytest.raises(SchemaMismatch) as caught:
        PostgresStore.from_url(pg_url)
    assert (caught.value.found, caught.value.supported) == (LATEST + 1, LATEST)


def test_processes_opening_a_new_database_at_once_migrate_it_once() -> None:
    url = fresh_postgres_url()
    errors: list[BaseException] = []

    def open_and_close() -> None:
        try:
            PostgresStore.from_url(url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert applied_versions(url) == list(range(1, LATEST + 1))


def test_tether_migrate_brings_a_postgres_store_up_to_date(tmp_path: Path) -> None:
    url = fresh_postgres_url()
    done = run_tether("migrate", "--store", url, cwd=tmp_path, env=subprocess_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"schema version {LATEST}")
    assert applied_versions(url) == list(range(1, LATEST + 1))
