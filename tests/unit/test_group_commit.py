"""The group commit queue every store shares (tether/stores/group_commit.py), without a database:
concurrent callers share batches, each gets its own outcome, leadership never strands a caller."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from tether import StoreUnavailable
from tether.stores.group_commit import AsyncGroupCommit, GroupCommit, InFlight, Job


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


def outcomes(jobs: list[Job[int]]) -> None:
    """What the test commits decide: ten times each number, a negative one rejected alone."""
    for job in jobs:
        if job.work < 0:
            job.error = ValueError(job.work)
        else:
            job.result = job.work * 10


class Recorder:
    """A commit that records its batches, can be held back, and rejects negative numbers alone."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def __call__(self, jobs: list[Job[int]]) -> None:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        self.gate.wait(10)
        time.sleep(0.001)
        with self._lock:
            self.batches.append([job.work for job in jobs])
            self.running -= 1
        outcomes(jobs)


def run_threads(
    queue: GroupCommit[int], values: list[int], outcomes: dict[int, object]
) -> list[threading.Thread]:
    def call(value: int) -> None:
        try:
            outcomes[value] = queue.run(value)
        except Exception as exc:
            outcomes[value] = exc

    threads = [threading.Thread(target=call, args=(v,)) for v in values]
    for t in threads:
        t.start()
    return threads


def test_callers_queued_behind_a_commit_share_the_next_one_and_get_their_own_outcome() -> None:
    commit = Recorder()
    commit.gate.clear()
    queue: GroupCommit[int] = GroupCommit(commit, lambda: StoreUnavailable("closed"))
    outcomes: dict[int, object] = {}
    leaders = run_threads(queue, [100], outcomes)  # leads alone, held at the gate
    eventually(lambda: commit.running == 1)
    queued = run_threads(queue, [1, -2, 3, 4], outcomes)
    eventually(lambda: len(queue._queue) == 4)
    commit.gate.set()
    for t in leaders + queued:
        t.join()
    assert outcomes[1] == 10 and outcomes[3] == 30 and outcomes[4] == 40
    assert isinstance(outcomes[-2], ValueError)  # rejected alone
    assert outcomes[100] == 1000
    assert commit.batches == [[100], [1, -2, 3, 4]]  # one commit for all four, in arrival order
    assert not queue._leading and not queue._queue


def test_commits_never_overlap_and_callers_share_them_under_load() -> None:
    commit = Recorder()
    queue: GroupCommit[int] = GroupCommit(commit, lambda: StoreUnavailable("closed"))
    outcomes: dict[int, object] = {}
    threads = run_threads(queue, list(range(200)), outcomes)
    for t in threads:
        t.join()
    assert outcomes == {v: v * 10 for v in range(200)}
    assert commit.most_running == 1
    assert len(commit.batches) < 200  # some shared a commit


def test_a_commit_that_raises_gives_every_caller_in_its_batch_the_error() -> None:
    def commit(jobs: list[Job[int]]) -> None:
        raise StoreUnavailable("connection lost")

    queue: GroupCommit[int] = GroupCommit(commit, lambda: StoreUnavailable("closed"))
    with pytest.raises(StoreUnavailable, match="connection lost"):
        queue.run(1)
    assert not queue._leading  # the next caller leads


def test_close_waits_for_the_batch_in_flight_then_refuses_writes() -> None:
    commit = Recorder()
    commit.gate.clear()
    queue: GroupCommit[int] = GroupCommit(commit, lambda: StoreUnavailable("closed"))
    outcomes: dict[int, object] = {}
    threads = run_threads(queue, [1], outcomes)
    eventually(lambda: commit.running == 1)
    closed: list[bool] = []
    closer = threading.Thread(target=queue.close, kwargs={"then": lambda: closed.append(True)})
    closer.start()
    time.sleep(0.05)
    assert not closed  # still committing
    commit.gate.set()
    closer.join()
    threads[0].join()
    assert closed == [True] and outcomes == {1: 10}
    with pytest.raises(StoreUnavailable, match="closed"):
        queue.run(2)


class AsyncRecorder:
    """An async commit that records its batches, can be held back, and rejects negative numbers."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.running = 0

    async def __call__(self, jobs: list[Job[int]]) -> None:
        self.running += 1
        await self.gate.wait()
        self.batches.append([job.work for job in jobs])
        self.running -= 1
        outcomes(jobs)


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached in time")


def test_coroutines_queued_behind_a_commit_share_the_next_one_and_get_their_own_outcome() -> None:
    async def scenario() -> None:
        commit = AsyncRecorder()
        commit.gate.clear()
        queue: AsyncGroupCommit[int] = AsyncGroupCommit(commit, lambda: StoreUnavailable("closed"))
        first = asyncio.ensure_future(queue.run(100))
        await until(lambda: commit.running == 1)
        queued = [asyncio.ensure_future(queue.run(v)) for v in (1, -2, 3)]
        await asyncio.sleep(0.01)
        commit.gate.set()
        outcomes = await asyncio.gather(first, *queued, return_exceptions=True)
        assert outcomes[0] == 1000 and outcomes[1] == 10 and outcomes[3] == 30
        assert isinstance(outcomes[2], ValueError)  # rejected alone
        assert commit.batches == [[100], [1, -2, 3]]  # one commit for the three, in arrival order

    asyncio.run(scenario())


def test_a_cancelled_coroutine_s_queued_write_is_dropped_and_a_committing_one_finishes() -> None:
    async def scenario() -> None:
        commit = AsyncRecorder()
        commit.gate.clear()
        queue: AsyncGroupCommit[int] = AsyncGroupCommit(commit, lambda: StoreUnavailable("closed"))
        committing = asyncio.ensure_future(queue.run(1))
        await until(lambda: commit.running == 1)
        queued = asyncio.ensure_future(queue.run(2))
        await asyncio.sleep(0.01)
        committing.cancel()
        queued.cancel()
        await asyncio.sleep(0.01)
        commit.gate.set()
        after = await queue.run(3)
        assert after == 30
        assert commit.batches == [[1], [3]]  # 1 finished though its caller left; 2 never ran

    asyncio.run(scenario())


def test_an_async_commit_that_raises_fails_its_batch_and_close_refuses_writes() -> None:
    async def scenario() -> None:
        async def commit(jobs: list[Job[int]]) -> None:
            raise StoreUnavailable("connection lost")

        queue: AsyncGroupCommit[int] = AsyncGroupCommit(commit, lambda: StoreUnavailable("closed"))
        with pytest.raises(StoreUnavailable, match="connection lost"):
            await queue.run(1)
        await queue.close()
        with pytest.raises(StoreUnavailable, match="closed"):
            await queue.run(2)

    asyncio.run(scenario())


def test_in_flight_says_alone_only_without_another_caller() -> None:
    in_flight = InFlight()
    with in_flight.alone() as first:
        with in_flight.alone() as second:
            assert first and not second
        with in_flight.alone() as third:
            assert not third
    with in_flight.alone() as again:
        assert again
