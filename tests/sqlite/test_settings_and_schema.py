"""The SQLite store's durability settings, schema versioning and error wrapping."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tether import ConfigurationError, SchemaMismatch, SessionManager, StoreUnavailable
from tether.stores import open_store
from tether.stores.sqlite import SQLiteStore
from tether.stores.sqlite.store import SCHEMA_VERSION

FULL, NORMAL = 2, 1  # PRAGMA synchronous values


def open_sqlite(url: str) -> SQLiteStore:
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    return store


def test_default_is_wal_with_a_sync_on_every_commit(tmp_path: Path) -> None:
    store = open_sqlite(f"sqlite:///{tmp_path}/t.db")
    assert store.pragmas()["journal_mode"] == "wal"
    assert store.pragmas()["synchronous"] == FULL
    assert store.pragmas()["fullfsync"] == 1  # flushes the drive cache on macOS; a no-op elsewhere
    store.close()


def test_url_option_selects_normal_durability(tmp_path: Path) -> None:
    store = open_sqlite(f"sqlite:///{tmp_path}/t.db?synchronous=normal&timeout=2.5")
    expected = {"journal_mode": "wal", "synchronous": NORMAL, "fullfsync": 0, "busy_timeout": 2500}
    assert store.pragmas() == expected
    store.close()


def test_environment_selects_durability_and_url_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_SQLITE_SYNCHRONOUS", "normal")
    store = open_sqlite(f"sqlite:///{tmp_path}/t.db")
    assert store.pragmas()["synchronous"] == NORMAL
    store.close()
    store = open_sqlite(f"sqlite:///{tmp_path}/t.db?synchronous=full")
    assert store.pragmas()["synchronous"] == FULL
    store.close()


@pytest.mark.parametrize(
    "url",
    ["sqlite:///:memory:", "sqlite://host/t.db", "sqlite:///t.db?synchronous=off", "sqlite:///t.db?cache=1"],
)
def test_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_relative_and_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///relative.db").close()
    open_store(f"sqlite:///{tmp_path}/absolute.db").close()
    assert (tmp_path / "relative.db").exists()
    assert (tmp_path / "absolute.db").exists()


def test_schema_version_is_recorded_once_and_reopening_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    with SessionManager(url) as manager:
        session = manager.create("tutor", "u1")
        assert manager.store.migrate() == SCHEMA_VERSION
    with SessionManager(url) as manager:
        assert manager.get(session.session_id).user_id == "u1"
    versions = sqlite3.connect(tmp_path / "t.db").execute("SELECT version FROM tether_schema").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_a_database_from_a_newer_tether_is_refused(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path}/t.db").close()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        conn.execute("INSERT INTO tether_schema (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaMismatch) as caught:
        open_store(f"sqlite:///{tmp_path}/t.db")
    assert (caught.value.found, caught.value.supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)


def test_a_write_locked_out_past_the_busy_timeout_is_store_unavailable(tmp_path: Path) -> None:
    manager = SessionManager(f"sqlite:///{tmp_path}/t.db?timeout=0.1")
    session = manager.create("tutor", "u1")
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreUnavailable, match="locked"):
        manager.checkpoint(session.session_id, "step", {})
    other.execute("ROLLBACK")
    assert manager.checkpoint(session.session_id, "step", {}).seq == 1
    manager.close()


def test_a_closed_store_raises_store_unavailable(tmp_path: Path) -> None:
    manager = SessionManager(f"sqlite:///{tmp_path}/t.db")
    session = manager.create("tutor", "u1")
    manager.close()
    manager.close()
    with pytest.raises(StoreUnavailable):
        manager.checkpoint(session.session_id, "step", {})
    with pytest.raises(StoreUnavailable):
        manager.get(session.session_id)


def test_a_missing_directory_is_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        open_store(f"sqlite:///{tmp_path}/missing/t.db")
