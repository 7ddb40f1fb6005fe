"""SQLite under faults: another process holding the write lock, a full disk, a read-only file, a
foreign file, bad busy timeouts.

Promises: opening an up-to-date store and reading it never wait for a writer (WAL readers see the
last commit); only a migration takes the write lock. A full disk or a read-only file fails writes
with StoreUnavailable and loses no acknowledged write; writes succeed again once there is space
(or, for a file made writable again, from a store opened then). A file that is not a Tether store
is refused before anything touches it. A busy timeout SQLite cannot hold is a ConfigurationError.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.support import run_tether, subprocess_env
from tether import ConfigurationError, SessionManager
from tether.stores.sqlite.connections import SQLiteSettings

ROOT = Path(__file__).resolve().parents[2]
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


# -- the disk: full, or the file read-only -----------------------------------------------------
def disk_child(*args: str, prefix: Sequence[str] = ()) -> list[str]:
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "tests.reliability.disk_child", *args],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("headroom", [60_000, 300_000])
def test_a_full_disk_fails_writes_with_a_typed_error_and_loses_no_acknowledged_one(
    tmp_path: Path, headroom: int
) -> None:
    url = f"sqlite:///{tmp_path}/tether.db"
    with SessionManager(url, worker_id="writer") as manager:
        manager.create("tutor", "u", session_id="s1")
    lines = disk_child("full", url, "s1", str(headroom))
    errors = lines.index("recovered")
    acks = [tuple(map(int, line.split()[1:])) for line in lines if line.startswith("ack ")]
    assert lines[errors - 3 : errors] == ["error StoreUnavailable"] * 3  # typed, while full
    assert len(acks) >= 5 and [seq for seq, _ in acks] == list(range(1, len(acks) + 1))  # recovered after
    with SessionManager(url) as manager:
        stored = manager.checkpoints("s1", limit=1000)
        assert [(cp.seq, cp.data["i"]) for cp in stored] == acks  # nothing acknowledged lost, none twice
        assert manager.get("s1").owner == "writer"
    conn = sqlite3.connect(f"{tmp_path}/tether.db")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_a_read_only_file_is_read_and_refuses_writes_with_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "tether.db"
    url = f"sqlite:///{path}"
    with SessionManager(url, worker_id="writer") as manager:
        manager.create("tutor", "u", session_id="s1")
        manager.checkpoint("s1", "step", {"n": 1})
    before = path.read_bytes()
    path.chmod(0o444)
    lines = disk_child("read-only", url, "s1", prefix=_without_root_override())
    assert lines == ["read 1", *["error StoreUnavailable"] * 3]
    assert path.read_bytes() == before
    path.chmod(0o644)  # writable again: a store opened now writes
    with SessionManager(url, worker_id="writer") as manager:
        assert manager.checkpoint("s1", "step", {"n": 2}, epoch=1).seq == 2


def _without_root_override() -> list[str]:
    """Root ignores file modes; as root the child runs without the capabilities that let it."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
