"""The versioned migration runner: `tether_schema` records each version applied, in order."""

from __future__ import annotations

import sqlite3

from tether.core.errors import ConfigurationError, SchemaMismatch
from tether.stores.sql_files import Migration


def statements(script: str) -> list[str]:
    """Split a migration into complete statements (sqlite3 runs one statement per call)."""
    found: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        found.append(pending.strip())
    return found


def schema_version(conn: sqlite3.Connection, queries: dict[str, str], path: str) -> int:
    """The version this file's schema is at, read without taking any lock a writer holds (a WAL
    reader sees the last commit). 0 for an empty file. A database holding tables but no
    `tether_schema` is somebody else's: refused before anything (journal mode included) touches it."""
    tables = [row[0] for row in conn.execute(queries["user_tables"])]
    if not tables:
        return 0
    if "tether_schema" not in tables:
        raise ConfigurationError(
            f"SQLite file {path} is not a Tether store (it has tables {sorted(tables)[:5]} and no "
            "tether_schema); point the URL at a new file"
        )
    version: int = conn.execute(queries["schema_version"]).fetchone()[0]
    return version


def migrate(conn: sqlite3.Connection, queries: dict[str, str], migrations: list[Migration]) -> int:
    """Apply every pending migration; run inside a write transaction (BEGIN IMMEDIATE holds the
    file's write lock), so concurrent openers — threads or processes — apply each exactly once.
    Returns the schema version; SchemaMismatch if the database was written by a newer Tether."""
    latest = migrations[-1].version if migrations else 0
    conn.execute(queries["create_schema_table"])
    current: int = conn.execute(queries["schema_version"]).fetchone()[0]
    if current > latest:
        raise SchemaMismatch(current, latest)
    for migration in migrations[current:]:
        for statement in statements(migration.sql):
            conn.execute(statement)
        conn.execute(queries["record_schema_version"], (migration.version,))
    return max(current, latest)
