"""SQLite under faults: another process holding the write lock, a foreign file, bad busy timeouts.

Promise: opening an up-to-date store and reading it never wait for a writer (WAL readers see the
last commit); only a migration takes the write lock. A file that is not a Tether store is refused
before anything touches it. A busy timeout SQLite cannot hold is a ConfigurationError, not 0.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import run_tether
from tether import ConfigurationError, SessionManager
from tether.stores.sqlite.connections import SQLiteSettings

HOLD_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE sessions SET phase = 'frozen mid-write'")
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@pytest.fixture
def locked_store(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A store with one session and a checkpoint, whose write lock another process holds."""
    path = tmp_path / "tether.db"
    with SessionManager(f"sqlite:///{path}") as manager:
        session = manager.create("tutor", "u")
        manager.checkpoint(session.session_id, "step", {"n": 1})
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    try:
        yield f"sqlite:///{path}?timeout=0.5", session.session_id
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


def test_opening_and_reading_never_wait_for_another_process_writing(locked_store: tuple[str, str]) -> None:
    url, session_id = locked_store
    with SessionManager(url) as manager:
        assert manager.get(session_id).phase is None  # the last commit, not the uncommitted write
        assert [cp.name for cp in manager.checkpoints(session_id)] == ["step"]
        assert [s.session_id for s in manager.list()] == [session_id]


@pytest.mark.parametrize(
    "command", [["ls"], ["show", "ID"], ["checkpoints", "ID"], ["watch", "--once"]], ids=lambda c: c[0]
)
def test_cli_reads_while_another_process_writes(
    locked_store: tuple[str, str], tmp_path: Path, command: list[str]
) -> None:
    url, session_id = locked_store
    argv = [session_id if arg == "ID" else arg for arg in command]
    result = run_tether(*argv, "--store", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert session_id in result.stdout or command[0] == "checkpoints"


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE sessions (cookie TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(ConfigurationError, match="not a Tether store"):
        SessionManager(f"sqlite:///{path}")
    assert path.read_bytes() == before  # still in rollback-journal mode, no tables added
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


@pytest.mark.parametrize("timeout", ["inf", "-inf", "nan", "-1", "1e12"])
def test_a_busy_timeout_sqlite_cannot_hold_is_a_configuration_error(timeout: str) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        SQLiteSettings.from_url(f"sqlite:///x.db?timeout={timeout}")
