"""One write path with group commit: concurrent writers share one transaction and one sync.

Each caller queues its write. A caller that finds no leader becomes the leader: it takes
everything queued, runs it in one `BEGIN IMMEDIATE` transaction (each write inside its own
SAVEPOINT, so one rejected write does not undo the others), commits once — one fsync for the
whole batch — and hands every caller its result or error. Followers sleep on their own lock, so
a commit wakes exactly the callers it served, then hands leadership to the oldest caller that
queued meanwhile. A caller alone pays for two uncontended locks; sixteen callers share one sync.
The write lock of the database file (BEGIN IMMEDIATE, with the busy timeout) serialises this
process's leader with other processes.
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
    __slots__ = ("done", "error", "result", "wake", "work")

    def __init__(self, work: Work[T]) -> None:
        self.work = work
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None
        self.wake: threading.Lock | None = None  # held while a follower sleeps

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set by the leader when error is None


class GroupCommit:
    """Runs `work(connection)` functions durably; many concurrent ones per transaction."""

    def __init__(self, conn: sqlite3.Connection, describe: Callable[[BaseException], StoreUnavailable]):
        self._conn = conn
        self._describe = describe
        self._lock = threading.Lock()  # guards the queue and the leader flag
        self._committing = threading.Lock()  # held by the leader while it uses the connection
        self._queue: list[_Job[Any]] = []
        self._leading = False
        self._closed = False

    def run(self, work: Work[T]) -> T:
        """Run `work` in a write transaction; return once it is committed (or raise its error)."""
        job: _Job[T] = _Job(work)
        with self._lock:
            if self._closed:
                raise self._describe(sqlite3.ProgrammingError("the store is closed"))
            self._queue.append(job)
            follower = self._leading
            if follower:
                job.wake = threading.Lock()
                job.wake.acquire()
            else:
                self._leading = True
        if follower:
            assert job.wake is not None
            try:
                job.wake.acquire()  # released when the job is done, or when it is its turn to lead
            except BaseException:  # interrupted (a signal handler raised): never strand the queue
                self._leave(job, job.wake)
                raise
            if job.done:
                return job.outcome()
        self._lead(job)
        return job.outcome()

    def _lead(self, own: _Job[Any]) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            with self._committing:
                self._commit(batch)
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            for job in batch:
                if job.wake is not None and job is not own:
                    job.wake.release()
            if successor is not None and successor.wake is not None:
                successor.wake.release()

    def _leave(self, job: _Job[Any], wake: threading.Lock) -> None:
        """An interrupted follower: a write not started yet is dropped; if leadership had just
        been handed to it, it passes leadership on, so the callers behind it are not stranded."""
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
            if job.done or wake.locked():
                return  # served already, or never chosen (and now it cannot be)
            successor = self._queue[0] if self._queue else None
            self._leading = successor is not None
        if successor is not None and successor.wake is not None:
            successor.wake.release()

    def close(self) -> None:
        """Close the connection once the current leader is done; later writes raise. Idempotent."""
        with self._lock:
            self._closed = True
        with self._committing:
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
