"""One write path with group commit: concurrent writers share one transaction and one sync.

Each caller queues its write. A caller that finds no leader becomes the leader: it takes
everything queued, runs it in one `BEGIN IMMEDIATE` transaction (each write inside its own
SAVEPOINT, so one rejected write does not undo the others), commits once — one fsync for the
whole batch — and hands every caller its result or error. Writes of one kind that can be applied
together (checkpoint appends) queue as items of a `Many` function instead: consecutive ones run
as one call, which checks them all with one query and writes them with one executemany, and
reports each item's own result or refusal without writing the refused ones.

Followers sleep on their own lock, so a commit wakes exactly the callers it served, then hands
leadership to the oldest caller that queued meanwhile. A caller alone pays for two uncontended
locks; sixteen callers share one sync. The write lock of the database file (BEGIN IMMEDIATE, with
the busy timeout) serialises this process's leader with other processes.

Coroutines queue writes too (`run_many_async`) but never lead: the event loop must not wait on the
disk. Leadership for them goes to one writer thread per GroupCommit, started on first use, which
settles each coroutine's future through the loop (`call_soon_threadsafe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from tether.errors import StoreUnavailable

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]
# Applies many items at once; returns, per item, its result or the exception refusing it (a
# refused item writes nothing). A raised exception fails the whole transaction.
Many = Callable[[sqlite3.Connection, list[Any]], list[Any]]
# How long a new leader waits, at most, for the callers of the previous batch to queue again.
GATHER_LIMIT = (0.0002, 0.002)  # seconds: at least, at most (between them, one commit's time)


class _Job(Generic[T]):
    __slots__ = ("done", "error", "item", "many", "result", "settle", "wake", "work")

    def __init__(self, work: Work[T] | None, many: Many | None = None, item: Any = None) -> None:
        self.work = work
        self.many = many
        self.item = item
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None
        self.wake: threading.Lock | None = None  # held while a follower sleeps
        self.settle: Callable[[], object] | None = None  # a coroutine's: hands it the outcome

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
        # Gathering: callers served together tend to write again together (agents in lockstep,
        # a benchmark). A leader that finds fewer queued than the last batch held waits, at most
        # about one commit's time, until that many have queued, instead of syncing a batch of one
        # and making everyone else wait for the next sync.
        self._last_batch = 0
        self._last_commit_seconds = 0.0
        self._wanted = 0
        self._gathered = threading.Event()
        self._writer: threading.Thread | None = None  # leads for coroutines
        self._writer_turn = threading.Lock()  # released when the writer thread is to lead
        self._writer_turn.acquire()

    def run(self, work: Work[T]) -> T:
        """Run `work` in a write transaction; return once it is committed (or raise its error)."""
        return self._run(_Job(work))

    def run_many(self, many: Many, item: Any) -> Any:
        """Apply `item` through `many`, together with the items other callers queued meanwhile."""
        return self._run(_Job(None, many, item))

    async def run_many_async(self, many: Many, item: Any) -> Any:
        """`run_many` for a coroutine: the writer thread leads its batch. Cancelling the caller
        drops the item if it has not been taken into a batch yet; otherwise the write finishes
        before the cancellation reaches the caller (all or nothing, never half)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        job: _Job[Any] = _Job(None, many, item)
        job.settle = lambda: loop.call_soon_threadsafe(_settle, future, job)
        with self._lock:
            self._enqueue(job)
            lead = not self._leading
            self._leading = True
            if lead:
                self._hand_over(job)
        try:
            return await future
        except asyncio.CancelledError:
            with self._lock:
                queued = job in self._queue
                if queued:
                    self._queue.remove(job)
            while not queued and not job.done:  # in a batch already: it finishes first
                await asyncio.sleep(0.001)
            raise

    def _enqueue(self, job: _Job[Any]) -> None:
        """Under the lock: queue the job, and wake a leader gathering callers once enough came."""
        if self._closed:
            raise self._describe(sqlite3.ProgrammingError("the store is closed"))
        self._queue.append(job)
        if self._wanted and len(self._queue) >= self._wanted:
            self._gathered.set()

    def _hand_over(self, successor: _Job[Any]) -> None:
        """Let the successor's thread lead: a waiting caller's own, or for a coroutine's job the
        writer thread (started here on first use)."""
        if successor.wake is not None:
            successor.wake.release()
            return
        if self._writer is None:
            self._writer = threading.Thread(target=self._lead_for_coroutines, name="tether-sqlite-writer")
            self._writer.daemon = True
            self._writer.start()
        self._writer_turn.release()

    def _lead_for_coroutines(self) -> None:
        while True:
            if self._writer_turn.acquire(timeout=0.5):
                self._lead(None)
            elif self._closed:  # idle, and no more writes can come
                return

    def _run(self, job: _Job[T]) -> T:
        with self._lock:
            self._enqueue(job)
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

    def _lead(self, own: _Job[Any] | None) -> None:
        try:
            self._gather()
        except BaseException:  # a signal handler raised while waiting: serve the queue, then raise
            self._lead(own)
            raise
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            if batch:  # empty when a coroutine withdrew the only queued job
                with self._committing:
                    started = time.perf_counter()
                    self._commit(batch)
                    self._last_commit_seconds = time.perf_counter() - started
                    self._last_batch = len(batch)
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            for job in batch:
                if job.settle is not None:
                    with contextlib.suppress(RuntimeError):  # its event loop is closed: nobody waits
                        job.settle()
                elif job.wake is not None and job is not own:
                    job.wake.release()
            if successor is not None:
                self._hand_over(successor)

    def _gather(self) -> None:
        with self._lock:
            wanted = self._last_batch
            if wanted < 2 or len(self._queue) >= wanted:
                return
            self._wanted = wanted
            self._gathered.clear()
        low, high = GATHER_LIMIT
        try:
            self._gathered.wait(min(max(self._last_commit_seconds, low), high))
        finally:
            with self._lock:
                self._wanted = 0
                self._last_batch = 0  # so the retried _lead of an interrupted wait does not wait

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
        if successor is not None:
            self._hand_over(successor)

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
        finally:
            for job in batch:
                job.done = True

    def _run_next(self, batch: list[_Job[Any]], start: int) -> int:
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
        for job, outcome in zip(group, many(self._conn, [job.item for job in group]), strict=True):
            if isinstance(outcome, Exception):
                job.error = outcome
            else:
                job.result = outcome
        return end

    def _run_alone(self, job: _Job[Any]) -> bool:
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

    def _run_in_savepoint(self, job: _Job[Any]) -> None:
        conn = self._conn
        assert job.work is not None
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


def _settle(future: asyncio.Future[Any], job: _Job[Any]) -> None:
    """On the caller's event loop: hand the coroutine its write's outcome."""
    if future.cancelled():
        return
    if job.error is not None:
        future.set_exception(job.error)
    else:
        future.set_result(job.result)
