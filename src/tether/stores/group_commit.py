"""Group commit, the queueing half every store shares: concurrent writes share one commit.

Each caller queues its write as a `Job`. A caller that finds no leader becomes the leader: it takes
everything queued and hands the batch to the store's `commit(jobs)`, which writes it in one
transaction (one disk sync) and gives each job its own result or error, then wakes exactly the
callers it served and hands leadership to the oldest caller that queued meanwhile. Followers sleep
on their own lock. A caller alone pays for two uncontended locks; sixteen callers share one sync.

Gathering: callers served together tend to write again together (agents in lockstep, a
benchmark). A leader that finds fewer queued than the last batch held waits, at most about one
commit's time, until that many have queued, instead of syncing a batch of one and making everyone
else wait for the next sync.

Coroutines of a sync store queue too (`run_async`) but never lead: the event loop must not wait on
the disk. Leadership for them goes to one writer thread per queue, started on first use, which
settles each coroutine's future through its loop (`call_soon_threadsafe`).

An async store (PostgreSQL's) has `AsyncGroupCommit`: the same queue for the coroutines of one event
loop, committed by a task of its own. `InFlight` lets a store run a write that no other caller
contends with straight away, outside the queue (PostgreSQL's appends).

What a batch is (savepoints and executemany in one SQLite transaction, one statement on PostgreSQL)
is the store's `commit`; a commit that raises gives its error to every job in the batch without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from tether.core.errors import StoreUnavailable

W = TypeVar("W")
# How long a new leader waits, at most, for the callers of the previous batch to queue again.
GATHER_LIMIT = (0.0002, 0.002)  # seconds: at least, at most (between them, one commit's time)


class Job(Generic[W]):
    """One queued write: `work` is what the store's commit needs to perform it."""

    __slots__ = ("done", "error", "result", "settle", "wake", "work")

    def __init__(self, work: W) -> None:
        self.work = work
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.wake: threading.Lock | None = None  # held while a follower thread sleeps
        self.settle: Callable[[], object] | None = None  # a coroutine's: hands it the outcome

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


def assign(jobs: Sequence[Job[Any]], outcomes: Sequence[Any]) -> None:
    """Give each job its outcome from a commit that reports one per job: an exception refusing it
    (it wrote nothing), or its result."""
    for job, outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, Exception):
            job.error = outcome
        else:
            job.result = outcome


def _fail_all(batch: list[Job[Any]], exc: BaseException) -> None:
    """A commit that raised wrote nothing it acknowledged: each job without an error gets this one."""
    error = exc if isinstance(exc, Exception) else StoreUnavailable(f"interrupted, not acknowledged: {exc!r}")
    for job in batch:
        if job.error is None:
            job.error = error


class GroupCommit(Generic[W]):
    """Threads' (and coroutines') writes, many per commit, one commit at a time."""

    def __init__(self, commit: Callable[[list[Job[W]]], None], closed: Callable[[], BaseException]) -> None:
        self._apply = commit
        self._closed_error = closed
        self._lock = threading.Lock()  # guards the queue and the leader flag
        self._committing = threading.Lock()  # held by the leader while it commits
        self._queue: list[Job[W]] = []
        self._leading = False
        self._closed = False
        self._last_batch = 0
        self._last_commit_seconds = 0.0
        self._wanted = 0
        self._gathered = threading.Event()
        self._writer: threading.Thread | None = None  # leads for coroutines
        self._writer_turn = threading.Lock()  # released when the writer thread is to lead
        self._writer_turn.acquire()

    def run(self, work: W) -> Any:
        """Queue `work`; return its result once its batch is committed (or raise its error)."""
        return self._run(Job(work))

    async def run_async(self, job: Job[W]) -> Any:
        """`run` for a coroutine: the writer thread leads its batch. Cancelling the caller drops
        the write if it has not been taken into a batch yet; otherwise the write finishes before
        the cancellation reaches the caller (all or nothing, never half)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
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

    def _enqueue(self, job: Job[W]) -> None:
        """Under the lock: queue the job, and wake a leader gathering callers once enough came."""
        if self._closed:
            raise self._closed_error()
        self._queue.append(job)
        if self._wanted and len(self._queue) >= self._wanted:
            self._gathered.set()

    def _hand_over(self, successor: Job[W]) -> None:
        """Let the successor's thread lead: a waiting caller's own, or for a coroutine's job the
        writer thread (started here on first use)."""
        if successor.wake is not None:
            successor.wake.release()
            return
        if self._writer is None:
            self._writer = threading.Thread(target=self._lead_for_coroutines, name="tether-writer")
            self._writer.daemon = True
            self._writer.start()
        self._writer_turn.release()

    def _lead_for_coroutines(self) -> None:
        while True:
            if self._writer_turn.acquire(timeout=0.5):
                self._lead(None)
            elif self._closed:  # idle, and no more writes can come
                return

    def _run(self, job: Job[W]) -> Any:
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

    def _lead(self, own: Job[W] | None) -> None:
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

    def _commit(self, batch: list[Job[W]]) -> None:
        try:
            self._apply(batch)
        except BaseException as exc:
            _fail_all(batch, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            for job in batch:
                job.done = True

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

    def _leave(self, job: Job[W], wake: threading.Lock) -> None:
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

    def close(self, then: Callable[[], object] = lambda: None) -> None:
        """Refuse new writes, wait for the batch being committed, then call `then`. Idempotent."""
        with self._lock:
            self._closed = True
        with self._committing:
            then()


class AsyncGroupCommit(Generic[W]):
    """`GroupCommit` for the coroutines of one event loop: while a batch commits, the writes that
    come queue, and the next batch takes them all. A task of its own commits, so a caller cancelled
    while its write is in a batch cancels no one else's (its write finishes, all or nothing); one
    cancelled while queued is dropped, having written nothing."""

    def __init__(
        self, commit: Callable[[list[Job[W]]], Awaitable[None]], closed: Callable[[], BaseException]
    ) -> None:
        self._apply = commit
        self._closed_error = closed
        self._queue: list[tuple[Job[W], asyncio.Future[Any]]] = []
        self._leader: asyncio.Task[None] | None = None
        self._closed = False

    async def run(self, work: W) -> Any:
        """Queue `work`; return its result once its batch is committed (or raise its error)."""
        if self._closed:
            raise self._closed_error()
        entry = (Job(work), asyncio.get_running_loop().create_future())
        self._queue.append(entry)
        if self._leader is None:
            self._leader = asyncio.create_task(self._lead())
        try:
            return await entry[1]
        except asyncio.CancelledError:
            if entry in self._queue:
                self._queue.remove(entry)
            raise

    async def _lead(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                jobs = [job for job, _ in batch]
                try:
                    await self._apply(jobs)
                except BaseException as exc:
                    _fail_all(jobs, exc)
                    if not isinstance(exc, Exception):
                        raise
                finally:
                    for job, future in batch:
                        _settle(future, job)
        finally:
            self._leader = None

    async def close(self) -> None:
        """Refuse new writes and wait for the queued ones to be committed. Idempotent."""
        self._closed = True
        if self._leader is not None:
            await asyncio.shield(self._leader)


class InFlight:
    """Counts a store's writes in flight, sync and async alike, so one that no other caller contends
    with can skip the queue (`with in_flight.alone() as alone:`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @contextlib.contextmanager
    def alone(self) -> Iterator[bool]:
        with self._lock:
            self._count += 1
            alone = self._count == 1
        try:
            yield alone
        finally:
            with self._lock:
                self._count -= 1


def _settle(future: asyncio.Future[Any], job: Job[Any]) -> None:
    """On the caller's event loop: hand the coroutine its write's outcome."""
    if future.cancelled():
        return
    if job.error is not None:
        future.set_exception(job.error)
    else:
        future.set_result(job.result)
