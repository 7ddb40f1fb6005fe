"""What the sync and async pools share: pool arguments, the idle-connection check, and the
translation of driver errors into Tether errors."""

from __future__ import annotations

import select
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import AdaptersMap
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from tether.core import codec
from tether.core.errors import StoreUnavailable, TetherError, ValidationError
from tether.core.postgres_url import PoolSettings
from tether.stores.postgres.calls import Query

C = TypeVar("C", psycopg.Cursor[Any], psycopg.AsyncCursor[Any])

TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK
# json values (checkpoint data, context, metadata) decode with orjson (tether.core.codec).
ADAPTERS = AdaptersMap(psycopg.adapters)
set_json_loads(codec.decode, ADAPTERS)


def pool_arguments(settings: PoolSettings) -> dict[str, Any]:
    """What the sync and the async pool are built with (besides the connection class and check)."""
    return {
        "conninfo": settings.conninfo,
        "min_size": settings.min_size,
        "max_size": settings.max_size,
        "timeout": settings.timeout,
        # Every write is one atomic statement, so connections run in autocommit and a write is
        # one round trip; the few multi-statement operations open a transaction explicitly.
        # psycopg prepares a statement on a connection once it has run a few times there.
        "kwargs": {"autocommit": True, "context": ADAPTERS, "row_factory": dict_row},
    }


class Connection(psycopg.Connection[Any]):
    """The pool's connections. Each keeps a cursor per point statement it has run (`Query.point`):
    running the statement again on it reuses the cursor's adapters instead of building them anew."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.points: dict[str, psycopg.Cursor[Any]] = {}


class AsyncConnection(psycopg.AsyncConnection[Any]):
    """`Connection` for the async pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.points: dict[str, psycopg.AsyncCursor[Any]] = {}


class Pool(ConnectionPool[Connection]):
    """psycopg_pool's pool, handing out the connection returned last (LIFO) instead of the one idle
    longest (FIFO). After a burst has grown the pool, sequential calls keep running on one warm
    connection and backend instead of cycling through all of them, and the connections the burst
    added sit idle, so `max_idle` can close them (docs/design.md, PostgreSQL)."""

    def _get_ready_connection(self, timeout: float | None) -> Connection | None:
        conn = super()._get_ready_connection(timeout)
        if conn is not None and self._pool:  # the pool took the oldest: keep it, give the newest
            self._pool.appendleft(conn)
            conn = self._pool.pop()
        return conn


class AsyncPool(AsyncConnectionPool[AsyncConnection]):
    """`Pool` for the async store."""

    async def _get_ready_connection(self, timeout: float | None) -> AsyncConnection | None:
        conn = await super()._get_ready_connection(timeout)
        if conn is not None and self._pool:
            self._pool.appendleft(conn)
            conn = self._pool.pop()
        return conn


def cursor_for(query: Query, points: dict[str, C], new: Callable[..., C]) -> C:
    """A fresh cursor (dict rows), or for a point statement the kept one (tuple rows)."""
    if not query.point:
        return new()
    cursor = points.get(query.sql)
    if cursor is None:
        cursor = points[query.sql] = new(row_factory=tuple_row)
    return cursor


def returned_rows(cursor: psycopg.Cursor[Any] | psycopg.AsyncCursor[Any]) -> bool:
    """Whether the statement returned a result set (`cursor.description` would build one object
    per column to say so)."""
    result = cursor.pgresult
    return result is not None and result.status == TUPLES_OK


def closed_while_idle(conn: psycopg.BaseConnection[Any]) -> bool:
    """Whether the server closed this pooled connection while it sat idle (a restart,
    pg_terminate_backend), so the store hands it back for a replacement instead of failing the call.

    An idle connection has nothing to read unless the server sent its goodbye, so a zero-timeout
    poll of its socket finds out without a round trip. psycopg_pool's own `check` hook is not used:
    after each connection it refuses, the pool sleeps a backoff of a second or more, so a pool whose
    every connection died made the next call wait out its whole timeout.
    """
    if conn.closed:
        return True
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    if not poller.poll(0):
        return False
    conn.pgconn.finish()  # the pool discards a closed connection and opens a replacement
    return True


def translate(
    exc: psycopg.Error, session_id: str | None = None, settings: PoolSettings | None = None
) -> TetherError:
    """The Tether error for a driver error (no driver exception leaves the store), naming the
    session the call was about when a lock or statement timeout ended it."""
    about = "" if session_id is None else f"session {session_id!r}: "
    if isinstance(exc, pg_errors.LockNotAvailable):
        bound = "" if settings is None else f" (lock_timeout={settings.lock_timeout:g}s in the URL)"
        return StoreUnavailable(
            f"{about}another transaction holds its row lock; gave up waiting{bound}; nothing was written"
        )
    if isinstance(exc, pg_errors.QueryCanceled):
        return StoreUnavailable(f"{about}PostgreSQL cancelled the statement ({exc}); nothing was written")
    if isinstance(exc, psycopg.DataError):
        return ValidationError("data", f"PostgreSQL cannot store this value: {exc}".strip())
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(
            f"{about}PostgreSQL is unavailable; the call was not acknowledged: {exc}".strip()
        )
    return StoreUnavailable(f"{about}PostgreSQL refused the call; nothing was written: {exc}".strip())
