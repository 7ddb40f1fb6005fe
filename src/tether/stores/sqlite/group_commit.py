"""SQLite's write path with group commit: concurrent writers share one transaction and one sync.

The queue, leadership, gathering and the writer thread for coroutines are `tether.stores.
group_commit`'s `GroupCommit`; this module (`SQLiteWrites`) is what a batch means here. The
leader runs it in one `BEGIN IMMEDIATE` transaction (each write inside its own SAVEPOINT, so one
rejected write does not undo the others) and commits once — one fsync for the whole batch. Writes
of one kind that can be applied together (checkpoint appends) queue as items of a `Many` function
instead: consecutive ones run as one call, which checks them all with one query and writes them
with one executemany, and reports each item's own result or refusal without writing the refused
ones. The write lock of the database file (BEGIN IMMEDIATE, with the busy timeout) serialises this
process's leader with other processes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar, cast

from tether.core.errors import StoreUnavailable
from tether.stores import group_commit

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]
# Applies many items at once; returns, per item, its result or the exception refusing it (a
# refused item writes nothing). A raised exception fails the whole transaction.
Many = Callable[[sqlite3.Connection, list[Any]], list[Any]]


class _Job(group_commit.Job[Any]):
    """A write: a `work(connection)` function, or an item for a `Many` function."""

    __slots__ = ("item", "many")

    def __init__(self, work: Work[Any] | None, many: Many | None = None, item: Any = None) -> None:
        super().__init__(work)
        self.many = many
        self.item = item


class SQLiteWrites(group_commit.GroupCommit[Any]):
    """Runs `work(connection)` functions durably; many concurrent ones per transaction."""

    def __init__(self, conn: sqlite3.Connection, describe: Callable[[BaseException], StoreUnavailable]):
        super().__init__(self._transaction, lambda: describe(sqlite3.ProgrammingError("the store is closed")))
        self._conn = conn
        self._describe = describe

    def run(self, work: Work[T]) -> T:
        """Run `work` in a write transaction; return once it is committed (or raise its error)."""
        return cast(T, self._run(_Job(work)))

    def run_many(self, many: Many, item: Any) -> Any:
        """Apply `item` through `many`, together with the items other callers queued meanwhile."""
        return self._run(_Job(None, many, item))

    async def run_many_async(self, many: Many, item: Any) -> Any:
        """`run_many` for a coroutine (see `group_commit.GroupCommit.run_async`)."""
        return await self.run_async(_Job(None, many, item))

    def close(self, then: Callable[[], object] | None = None) -> None:
        """Close the connection once the current leader is done; later writes raise. Idempotent."""
        super().close(then=self._conn.close)

    def _transaction(self, batch: list[Any]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if len(batch) == 1 and batch[0].work is not None:
                if not self._run_alone(batch[0]):
                    return
            else:
                start = 0
                while start < len(batch):
                    start = self._run_next(batch, start)
            conn.execute("COMMIT")
        except BaseException as exc:
            error = self._describe(exc) if isinstance(exc, sqlite3.Error) else StoreUnavailable(str(exc))
            self._abort(batch, error)
            if not isinstance(exc, Exception):
                raise

    def _run_next(self, batch: list[_Job], start: int) -> int:
        """Run the job at `start`, or the run of jobs for the same `Many` starting there; returns
        where the next one starts."""
        many = batch[start].many
        if many is None:
            self._run_in_savepoint(batch[start])
            return start + 1
        end = start + 1
        while end < len(batch) and batch[end].many is many:
            end += 1
        group = batch[start:end]
        group_commit.assign(group, many(self._conn, [job.item for job in group]))
        return end

    def _run_alone(self, job: _Job) -> bool:
        """The single-writer case needs no savepoint: a rejected write rolls back the transaction.
        Returns whether there is something to commit."""
        assert job.work is not None
        try:
            job.result = job.work(self._conn)
            return True
        except sqlite3.Error:
            raise
        except Exception as exc:
            job.error = exc
            self._conn.execute("ROLLBACK")
            return False

    def _run_in_savepoint(self, job: _Job) -> None:
        conn = self._conn
        assert job.work is not None
        conn.execute("SAVEPOINT tether_write")
        try:
            job.result = job.work(conn)
        except Exception as exc:
            job.error = self._describe(exc) if isinstance(exc, sqlite3.Error) else exc
            conn.execute("ROLLBACK TO tether_write")
        conn.execute("RELEASE tether_write")

    def _abort(self, batch: list[_Job], error: StoreUnavailable) -> None:
        """The transaction failed as a whole: nothing in it was written, every caller hears so."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # unusable connection: the next write says so
                self._conn.execute("ROLLBACK")
        for job in batch:
            if job.error is None:
                job.error = error
