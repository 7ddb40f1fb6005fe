"""Numbered migrations: applied on first use and by `tether migrate`, upgrading a database of an
older schema version with data in it loses nothing, and a newer database is refused."""

from __future__ import annotations

import threading
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.conftest import fresh_postgres_url
from tests.support import run_tether, subprocess_env
from tether import ManualClock, SchemaMismatch, SessionManager, State
from tether.model import NewCheckpoint
from tether.stores.postgres import PostgresStore
from tether.stores.postgres import operations as ops
from tether.stores.postgres.connection import PoolSettings
from tether.stores.postgres.store import drive

LATEST = len(ops.MIGRATIONS)


def raw_connection(url: str) -> psycopg.Connection[dict[str, object]]:
    return psycopg.connect(PoolSettings.from_url(url).conninfo, autocommit=True, row_factory=dict_row)


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


def test_upgrading_a_version_1_database_keeps_every_session_and_checkpoint(pg_url: str) -> None:
    assert LATEST >= 2, "the upgrade path needs a migration after 0001"
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    to_version_1 = ops.migrate(ops.MIGRATIONS[:1])
    with psycopg.connect(PoolSettings.from_url(pg_url).conninfo, autocommit=True) as conn, conn.transaction():
        assert drive(conn, to_version_1, next(to_version_1)) == 1
    old = PostgresStore.from_url(pg_url, clock, migrate=False)  # the code of version 1 writing data
    manager = SessionManager(old, worker_id="w1")
    sessions = [
        manager.create("tutor", f"user-{i % 3}", context={"i": i, "nul": "a\u0000b"}) for i in range(12)
    ]
    for s in sessions:
        for n in range(5):
            manager.checkpoint(s.session_id, "step", {"n": n})
    manager.complete(sessions[0].session_id, {"ok": True})
    manager.fail(sessions[1].session_id, "boom", {"why": "test"})
    manager.pause(sessions[2].session_id)
    before = {
        s.session_id: (old.get(s.session_id), old.checkpoints(s.session_id, limit=100)) for s in sessions
    }
    old.close()

    with closing(PostgresStore.from_url(pg_url, clock)) as upgraded:
        after = {sid: (upgraded.get(sid), upgraded.checkpoints(sid, limit=100)) for sid in before}
        assert after == before
        assert (
            upgraded.last_checkpoint(sessions[3].session_id, "step") == before[sessions[3].session_id][1][-1]
        )
        assert (
            upgraded.append(sessions[3].session_id, NewCheckpoint("upgraded", clock.now(), "{}", {}), 1).seq
            == 6
        )
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
