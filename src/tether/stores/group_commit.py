"""Group commit, the queueing half: concurrent writes share one commit, whatever the store.

Each caller queues its write as a `Job`. `GroupCommit` (threads) lets the first caller that finds
no leader lead: it takes everything queued, hands the batch to the store's `commit(jobs)`, which
writes the batch in one transaction (one disk sync) and gives every job its result or error, and
then wakes exactly the callers it served. Followers sleep on their own lock; when the commit is
done, leadership passes to the oldest caller that queued meanwhile. A caller alone pays for two
uncontended locks. `AsyncGroupCommit` is the same for coroutines of one event loop: one drain task
commits batch after batch while callers await their job's future.

What a batch is — savepoints in one SQLite transaction, one multi-row PostgreSQL statement — is the
store's `commit`; a commit that raises gives its error to every job it left without an outcome.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from tether.errors import StoreUnavailable

W = TypeVar("W")


class Job(Generic[W]):
    """One queued write: `work` is what the store's commit needs to perform it."""

    __slots__ = ("done", "error", "future", "leads", "result", "wake", "work")

    def __init__(self, work: W) -> None:
        self.work = work
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.wake: threading.Lock | None = None  # held while a follower thread sleeps
        self.leads = False  # chosen to lead a batch (a thread's job)
        self.future: asyncio.Future[Any] | None = None  # what an async caller awaits

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


def _fail_all(batch: list[Job[Any]], exc: BaseException) -> None:
    """A commit that raised wrote nothing it acknowledged: each job without an error gets this one."""
    error = exc if isinstance(exc, Exception) else StoreUnavailable(f"interrupted, not acknowledged: {exc!r}")
    for job in batch:
        if job.error is None:
            job.error = error


class GroupCommit(Generic[W]):
    """Threads' writes, many per commit, one commit at a time. `commit(jobs)` sets each job's
    result or error. (Two batches in flight on two PostgreSQL connections measured slower on two
    cores: smaller batches, more commits.)"""

    def __init__(self, commit: Callable[[list[Job[W]]], None], closed: Callable[[], BaseException]) -> None:
        self._commit = commit
        self._closed_error = closed
        self._lock = threading.Lock()  # guards the queue and the leader flag
        self._idle = threading.Condition(self._lock)  # notified when the leader is done
        self._queue: list[Job[W]] = []
        self._leading = False
        self._closed = False

    def run(self, work: W) -> Any:
        """Queue `work`; return its result once its batch is committed (or raise its error)."""
        job = Job(work)
        with self._lock:
            if self._closed:
                raise self._closed_error()
            follower = self._leading
            if follower:
                self._queue.append(job)
                job.wake = threading.Lock()
                job.wake.acquire()
            else:
                self._leading = True
                job.leads = True
        if follower:
            assert job.wake is not None
            try:
                job.wake.acquire()  # released when the job is done, or when it is its turn to lead
            except BaseException:  # interrupted (a signal handler raised): never strand the queue
                self._leave(job)
                raise
            if job.done:
                return job.outcome()
        self._lead(job)
        return job.outcome()

    def _lead(self, own: Job[W]) -> None:
        """Commit the leader's own job and every job queued behind it (oldest first)."""
        with self._lock:
            batch, self._queue = [own, *self._queue], []
        try:
            self._commit(batch)
        except BaseException as exc:
            _fail_all(batch, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            for job in batch:
                job.done = True
            with self._lock:
                successor = self._hand_over()
            for job in batch:
                if job is not own and job.wake is not None:
                    job.wake.release()
            if successor is not None:
                successor.release()

    def _hand_over(self) -> threading.Lock | None:
        """The leader is done (the lock is held): leadership goes to the oldest queued caller, taken
        out of the queue; returns that caller's lock to release. Without one, nobody leads (callers
        queue only while somebody does)."""
        if not self._queue:
            self._leading = False
            self._idle.notify_all()
            return None
        successor = self._queue.pop(0)
        successor.leads = True
        return successor.wake

    def _leave(self, job: Job[W]) -> None:
        """An interrupted follower: a write not started yet is dropped; if leadership had just
        been handed to it, it passes leadership on, so the callers behind it are not stranded."""
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
            if job.done or not job.leads:
                return  # served already, or not chosen to lead (and now it cannot be)
            successor = self._hand_over()
        if successor is not None:
            successor.release()

    def close(self, then: Callable[[], object] = lambda: None) -> None:
        """Refuse new writes, wait for the batches being committed, then call `then`. Idempotent."""
        with self._lock:
            self._closed = True
            while self._leading:
                self._idle.wait()
        then()


class AsyncGroupCommit(Generic[W]):
    """Coroutines' writes, many per commit: one drain task commits what is queued, batch after
    batch, while each caller awaits its own job. A caller cancelled before its batch started is
    dropped from the queue (its write never happens); once started, the batch completes for the
    others whatever happens to the caller."""

    def __init__(
        self, commit: Callable[[list[Job[W]]], Awaitable[None]], closed: Callable[[], BaseException]
    ) -> None:
        self._commit = commit
        self._closed_error = closed
        self._queue: list[Job[W]] = []
        self._drain: asyncio.Task[None] | None = None
        self._closed = False

    async def run(self, work: W) -> Any:
        if self._closed:
            raise self._closed_error()
        loop = asyncio.get_running_loop()
        job = Job(work)
        job.future = loop.create_future()
        self._queue.append(job)
        if self._drain is None:
            self._drain = loop.create_task(self._drain_queue())
        return await job.future

    async def _drain_queue(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                batch = [job for job in batch if job.future is not None and not job.future.cancelled()]
                if batch:
                    await self._commit_batch(batch)
        finally:
            self._drain = None
            for job in self._queue:  # only if the drain task itself was cancelled
                self._resolve(job, self._closed_error())
            self._queue = []

    async def _commit_batch(self, batch: list[Job[W]]) -> None:
        try:
            await self._commit(batch)
        except BaseException as exc:
            _fail_all(batch, exc)
            if not isinstance(exc, Exception):
                for job in batch:
                    self._resolve(job, None)
                raise
        for job in batch:
            self._resolve(job, None)

    @staticmethod
    def _resolve(job: Job[Any], error: BaseException | None) -> None:
        if error is not None and job.error is None:
            job.error = error
        future = job.future
        if future is None or future.done():
            return
        if job.error is not None:
            future.set_exception(job.error)
        else:
            future.set_result(job.result)

    async def close(self) -> None:
        """Refuse new writes and wait for the writes already queued. Idempotent."""
        self._closed = True
        drain = self._drain
        if drain is not None:
            await asyncio.shield(drain)
