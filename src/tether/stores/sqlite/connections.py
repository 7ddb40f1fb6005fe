"""SQLite connections with Tether's settings; sqlite3 errors turned into Tether errors.

Durability (`synchronous`, from the URL's `?synchronous=` or TETHER_SQLITE_SYNCHRONOUS):
- `full` (default): every acknowledged write has been synced to the WAL file before the call
  returns (with F_FULLFSYNC on macOS), so it survives a process crash, an OS crash and a power loss.
- `normal`: the WAL is synced only at checkpoints; an acknowledged write survives the process
  being killed, but the last writes may be lost if the machine loses power or the OS crashes.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tether.core.config import setting
from tether.core.errors import ConfigurationError, StoreUnavailable

SYNCHRONOUS_MODES = ("full", "normal")
DEFAULT_BUSY_TIMEOUT = 10.0  # seconds a writer waits for another process's write lock
MAX_BUSY_TIMEOUT = (2**31 - 1) // 1000  # SQLite holds the busy timeout in a C int of milliseconds


@dataclass(frozen=True, slots=True)
class SQLiteSettings:
    path: str
    synchronous: str = "full"
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT

    @classmethod
    def from_url(cls, url: str) -> SQLiteSettings:
        """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db`, with optional
        `?synchronous=full|normal` and `&timeout=SECONDS` (the busy timeout)."""
        parts = urlsplit(url)
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if parts.netloc or not path or path == ":memory:":
            raise ConfigurationError(
                f"bad SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////absolute/path.db "
                "(memory:// for a throwaway store)"
            )
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(options) - {"synchronous", "timeout"}
        if unknown:
            raise ConfigurationError(f"unknown SQLite URL option(s) {sorted(unknown)} in {url!r}")
        synchronous = (options.get("synchronous") or setting("TETHER_SQLITE_SYNCHRONOUS")).lower()
        if synchronous not in SYNCHRONOUS_MODES:
            raise ConfigurationError(f"synchronous must be one of {SYNCHRONOUS_MODES}, got {synchronous!r}")
        return cls(path, synchronous, _busy_timeout(options.get("timeout"), url))


def _busy_timeout(text: str | None, url: str) -> float:
    """Seconds, 0 to MAX_BUSY_TIMEOUT: SQLite keeps the busy timeout as a 32-bit count of
    milliseconds and silently treats anything it cannot hold (inf, nan, negative, huge) as 0."""
    if text is None:
        return DEFAULT_BUSY_TIMEOUT
    try:
        timeout = float(text)
    except ValueError:
        timeout = math.nan
    if not 0 <= timeout <= MAX_BUSY_TIMEOUT:  # also false for nan
        raise ConfigurationError(
            f"timeout must be a number of seconds from 0 to {MAX_BUSY_TIMEOUT}, got {text!r} in {url!r}"
        )
    return timeout


def unavailable(path: str, exc: BaseException) -> StoreUnavailable:
    """The Tether error for a driver failure: locked past the busy timeout, I/O error, closed…"""
    error = StoreUnavailable(f"SQLite store {path}: {exc}")
    error.__cause__ = exc
    return error


def connect(settings: SQLiteSettings, queries: dict[str, str], *, reader: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), shareable across threads."""
    try:
        conn = sqlite3.connect(
            settings.path,
            timeout=settings.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )
        conn.execute(queries[f"synchronous_{settings.synchronous}"])
        if settings.synchronous == "full":
            conn.execute(queries["fullfsync"])
        if reader:
            conn.execute(queries["query_only"])
        else:
            mode = conn.execute(queries["journal_mode_wal"]).fetchone()[0]
            if mode != "wal":
                raise StoreUnavailable(f"SQLite store {settings.path}: cannot use WAL mode (got {mode})")
        return conn
    except sqlite3.Error as exc:
        raise unavailable(settings.path, exc) from exc


class Readers:
    """One read connection per thread: WAL readers never block each other or the writer."""

    def __init__(self, settings: SQLiteSettings, queries: dict[str, str]) -> None:
        self._settings = settings
        self._queries = queries
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._closed = False

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open_for_this_thread()
        return conn

    def _open_for_this_thread(self) -> sqlite3.Connection:
        conn = connect(self._settings, self._queries, reader=True)
        with self._lock:
            if self._closed:
                conn.close()
                raise StoreUnavailable(f"SQLite store {self._settings.path} is closed")
            # Connections of threads that have ended are closed here, so short-lived threads
            # do not leak file handles.
            for thread, old in [entry for entry in self._open if not entry[0].is_alive()]:
                old.close()
                self._open.remove((thread, old))
            self._open.append((threading.current_thread(), conn))
        self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _, conn in self._open:
                conn.close()
            self._open.clear()
