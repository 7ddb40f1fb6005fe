"""What the sync and async pools share: pool arguments, the idle-connection check, and the
translation of driver errors into Tether errors."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import AdaptersMap
from psycopg.pq import ExecStatus
from psycopg.types.json import set_json_loads

from tether.core import codec
from tether.core.errors import StoreUnavailable, TetherError, ValidationError
from tether.core.postgres_url import PoolSettings
from tether.stores.postgres.prepared import Statements

# json/jsonb values (checkpoint data, context, metadata) decode with orjson (tether.core.codec).
ADAPTERS = AdaptersMap(psycopg.adapters)
set_json_loads(codec.decode, ADAPTERS)


class _KeepsPointStatements:
    """What both connection classes keep: their hot statements run through libpq (`prepared.py`)."""

    _point_statements: Statements | None = None

    def point_statements(self) -> Statements:
        if self._point_statements is None:
            assert isinstance(self, psycopg.BaseConnection)
            self._point_statements = Statements(self)
        return self._point_statements


class Connection(_KeepsPointStatements, psycopg.Connection[tuple[Any, ...]]):
    """A pooled connection that runs every statement on one cursor it keeps (creating a cursor per
    statement costs more Python time than the rest of a short read), and the hot one-row statements
    through libpq directly (`prepared.py`)."""

    _statements: psycopg.Cursor[tuple[Any, ...]] | None = None

    def statements(self) -> psycopg.Cursor[tuple[Any, ...]]:
        if self._statements is None:
            self._statements = self.cursor()
        return self._statements


class AsyncConnection(_KeepsPointStatements, psycopg.AsyncConnection[tuple[Any, ...]]):
    """`Connection` for asyncio."""

    _statements: psycopg.AsyncCursor[tuple[Any, ...]] | None = None

    def statements(self) -> psycopg.AsyncCursor[tuple[Any, ...]]:
        if self._statements is None:
            self._statements = self.cursor()
        return self._statements


def returned_rows(cursor: psycopg.Cursor[Any] | psycopg.AsyncCursor[Any]) -> bool:
    """Whether the last statement returned rows (cheaper than building `cursor.description`)."""
    result = cursor.pgresult
    return result is not None and result.status == ExecStatus.TUPLES_OK


def pool_arguments(settings: PoolSettings) -> dict[str, Any]:
    """What the sync and the async pool are built with (besides the idle check)."""
    return {
        "conninfo": settings.conninfo,
        "min_size": settings.min_size,
        "max_size": settings.max_size,
        "timeout": settings.timeout,
        # Every write is one atomic statement, so connections run in autocommit and a write is
        # one round trip; the few multi-statement operations open a transaction explicitly.
        # Rows are tuples (mapping.py reads them by position).
        "kwargs": {"autocommit": True, "context": ADAPTERS},
    }


def check_idle(conn: psycopg.BaseConnection[Any]) -> None:
    """Refuse a pooled connection the server has closed while it sat idle.

    An idle connection has nothing to read unless the server sent its goodbye (restart,
    pg_terminate_backend). Catching that here, with a zero-timeout poll instead of a round trip,
    lets the pool hand out a fresh connection rather than fail a call that was never in flight.
    """
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    if _has_input(conn.fileno()):
        conn.pgconn.finish()  # so the pool discards it and opens a replacement
        raise psycopg.OperationalError("the server closed the connection while it was idle")


def _has_input(fd: int) -> bool:
    """A zero-timeout readiness check; poll() where there is one, as select() fails on fds >= 1024."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


def may_have_committed(exc: psycopg.Error) -> bool:
    """Whether a statement that raised this may still have been committed: only when the connection
    was lost (the answer with it). Any other error rolled the statement back: nothing was written."""
    if isinstance(exc, pg_errors.TransactionRollback):  # deadlock, serialization: rolled back
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def translate(exc: psycopg.Error) -> TetherError:
    """The Tether error for a driver error: no driver exception leaves the store."""
    if isinstance(exc, psycopg.DataError):
        return ValidationError("data", f"PostgreSQL cannot store this value: {exc}".strip())
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(f"PostgreSQL is unavailable; the call was not acknowledged: {exc}".strip())
    return StoreUnavailable(f"PostgreSQL refused the call; nothing was written: {exc}".strip())
