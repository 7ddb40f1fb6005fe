"""One write path with group commit: concurrent writers share one transaction and one sync.

Each caller queues its write and waits. Whoever finds no leader becomes the leader: it takes
everything queued, runs it in one `BEGIN IMMEDIATE` transaction (each write inside its own
SAVEPOINT, so one rejected write does not undo the others), commits once — one fsync for the
whole batch — and hands every caller its result or error. A caller alone pays for an uncontended
lock; sixteen callers share one sync. The write lock of the database file (BEGIN IMMEDIATE, with
the busy timeout) serialises this process's leader with other processes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from tether.errors import StoreUnavailable

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]


class _Job(Generic[T]):
    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Work[T]) -> None:
        self.work = work
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set by the leader when error is None


class GroupCommit:
    """Runs `work(connection)` functions durably; many concurrent ones per transaction."""

    def __init__(self, conn: sqlite3.Connection, describe: Callable[[BaseException], StoreUnavailable]):
        self._conn = conn
        self._describe = describe
        self._cv = threading.Condition(threading.Lock())
        self._queue: list[_Job[Any]] = []
        self._leading = False
        self._waiting = 0  # followers asleep on the condition: wake them only if there are any
        self._closed = False

    def run(self, work: Work[T]) -> T:
        """Run `work` in a write transaction; return once it is committed (or raise its error)."""
        job: _Job[T] = _Job(work)
        with self._cv:
            if self._closed:
                raise self._describe(sqlite3.ProgrammingError("the store is closed"))
            self._queue.append(job)
            while self._leading and not job.done:
                self._waiting += 1
                self._cv.wait()
                self._waiting -= 1
            if job.done:
                return job.outcome()
            self._leading = True
            batch, self._queue = self._queue, []
        try:
            self._commit(batch)
        finally:
            with self._cv:
                self._leading = False
                if self._waiting:
                    self._cv.notify_all()
        return job.outcome()

    def close(self) -> None:
        """Close the connection once the current leader is done; later writes raise. Idempotent."""
        with self._cv:
            while self._leading:
                self._cv.wait()
            if not self._closed:
                self._closed = True
                self._conn.close()

    def _commit(self, batch: list[_Job[Any]]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if len(batch) > 1:
                for job in batch:
                    self._run_in_savepoint(job)
            elif not self._run_alone(batch[0]):
                return
            conn.execute("COMMIT")
        except BaseException as exc:
            error = self._describe(exc) if isinstance(exc, sqlite3.Error) else StoreUnavailable(str(exc))
            self._abort(batch, error)
            if not isinstance(exc, Exception):
                raise
        finally:
            for job in batch:
                job.done = True

    def _run_alone(self, job: _Job[Any]) -> bool:
        """The single-writer case needs no savepoint: a rejected write rolls back the transaction.
        Returns whether there is something to commit."""
        try:
            job.result = job.work(self._conn)
            return True
        except sqlite3.Error:
            raise
        except Exception as exc:
            job.error = exc
            self._conn.execute("ROLLBACK")
            return False

    def _run_in_savepoint(self, job: _Job[Any]) -> None:
        conn = self._conn
        conn.execute("SAVEPOINT tether_write")
        try:
            job.result = job.work(conn)
        except Exception as exc:
            job.error = self._describe(exc) if isinstance(exc, sqlite3.Error) else exc
            conn.execute("ROLLBACK TO tether_write")
        conn.execute("RELEASE tether_write")

    def _abort(self, batch: list[_Job[Any]], error: StoreUnavailable) -> None:
        """The transaction failed as a whole: nothing in it was written, every caller hears so."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # unusable connection: the next write says so
                self._conn.execute("ROLLBACK")
        for job in batch:
            if job.error is None:
                job.error = error
