"""Dead-agent detection: find active sessions whose lease expired and apply their agent type's policy.

A sweep is a set of compare-and-set writes (`lifecycle.time_out` through the manager's flows, conditional on
the version it read), so any number of supervisors, in any number of processes or machines, may sweep
one store at once: each expired lease is applied exactly once, and a supervisor that loses the race
sees the session already failed (or claimed) and moves on. No leader election.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Generic, TypeVar

from tether.core.errors import TetherError
from tether.core.model import Session
from tether.core.policy import Policies
from tether.flows.operations import ManagerBase
from tether.flows.sweep import Sweeper, SweepReport
from tether.front.waiting import stopped_within

if TYPE_CHECKING:  # the managers import this module; named in quotes below (ruff sees no use)
    from tether.front.aio import AsyncSessionManager  # noqa: F401
    from tether.front.manager import SessionManager  # noqa: F401

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=ManagerBase)

PAGE = 500
RETENTION_INTERVAL = 60.0  # seconds between retention passes
MIN_INTERVAL, MAX_INTERVAL = 0.05, 5.0


def default_interval(policies: Policies) -> float:
    """A quarter of the shortest configured timeout, so detection lands well within timeout + 1 s."""
    shortest = min([policies.default.timeout, *(p.timeout for p in policies.by_type.values())])
    return min(MAX_INTERVAL, max(MIN_INTERVAL, shortest / 4))


class Sweeps(Generic[M]):
    """What both supervisors keep: the manager whose flows they run, and the sweeper's memory."""

    def __init__(
        self,
        manager: M,
        *,
        page_size: int = PAGE,
        concurrency: int = 8,
        retention_interval: float = RETENTION_INTERVAL,
    ) -> None:
        self.manager = manager
        self.concurrency = concurrency
        self._sweeper = Sweeper(manager.ops, page_size, retention_interval)

    def _every(self, interval: float | None) -> float:
        return interval if interval is not None else default_interval(self.manager.policies)

    @staticmethod
    def _failed(every: float) -> None:
        logger.exception("supervisor sweep failed; retrying in %.2fs", every)


class Supervisor(Sweeps["SessionManager"]):
    """Sweeps one manager's store. Cheap to create; keeps only which suspects it already reported."""

    def sweep(self) -> SweepReport:
        """Time out every expired lease (as of the store's clock now), report new suspects, and
        run a retention pass when one is due.

        Several time-outs are applied concurrently, so SQLite's group commit (and PostgreSQL's
        pool) make one sync cover many of them when many agents died at once.
        """
        now, expired = self.manager.runner(self._sweeper.expired())
        if len(expired) > 1:
            with ThreadPoolExecutor(min(self.concurrency, len(expired))) as pool:
                outcomes = list(pool.map(self._time_out, expired))
        else:
            outcomes = [self._time_out(sid) for sid in expired]
        report = self.manager.runner(self._sweeper.report(now, outcomes))
        return replace(report, retired=self.manager.runner(self._sweeper.retention()))

    def run(
        self,
        stop: threading.Event,
        interval: float | None = None,
        on_report: Callable[[SweepReport], None] | None = None,
    ) -> None:
        """Sweep every `interval` seconds until `stop` is set; store errors are logged, not fatal."""
        every = self._every(interval)
        while True:
            try:
                report = self.sweep()
            except TetherError:
                self._failed(every)
            else:
                if on_report is not None:
                    on_report(report)
            if stop.wait(every):
                return

    def _time_out(self, session_id: str) -> Session | None:
        return self.manager.runner(self._sweeper.time_out(session_id))


class AsyncSupervisor(Sweeps["AsyncSessionManager"]):
    """`Supervisor` for asyncio: the same sweep, its time-outs gathered instead of threaded."""

    async def sweep(self) -> SweepReport:
        """See `Supervisor.sweep`."""
        now, expired = await self.manager.runner(self._sweeper.expired())
        slots = asyncio.Semaphore(self.concurrency)

        async def time_out(session_id: str) -> Session | None:
            async with slots:
                return await self.manager.runner(self._sweeper.time_out(session_id))

        outcomes = await asyncio.gather(*(time_out(sid) for sid in expired))
        report = await self.manager.runner(self._sweeper.report(now, outcomes))
        return replace(report, retired=await self.manager.runner(self._sweeper.retention()))

    async def run(
        self,
        stop: asyncio.Event,
        interval: float | None = None,
        on_report: Callable[[SweepReport], None] | None = None,
    ) -> None:
        """Sweep every `interval` seconds until `stop` is set; store errors are logged, not fatal."""
        every = self._every(interval)
        while True:
            try:
                report = await self.sweep()
            except TetherError:
                self._failed(every)
            else:
                if on_report is not None:
                    on_report(report)
            if await stopped_within(stop, every):
                return


class SweepCount:
    """What a running supervisor tells: how many sweeps, sessions retired, and the last report."""

    def __init__(self) -> None:
        self.sweeps = 0
        self.retired = 0  # sessions removed by retention since this supervisor started
        self.last_report: SweepReport | None = None

    def _record(self, report: SweepReport) -> None:
        self.sweeps += 1
        self.retired += len(report.retired)
        self.last_report = report


class RunningSupervisor(SweepCount):
    """A supervisor sweeping in a background thread; `stop()` (or leaving a with-block) ends it."""

    def __init__(self, supervisor: Supervisor, interval: float | None = None) -> None:
        super().__init__()
        self.supervisor = supervisor
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=supervisor.run,
            args=(self._stop, interval, self._record),
            name="tether-supervisor",
            daemon=True,
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to finish its sweep and wait for it."""
        self._stop.set()
        self._thread.join(timeout)

    def __enter__(self) -> RunningSupervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AsyncRunningSupervisor(SweepCount):
    """A supervisor sweeping in an asyncio task; `await stop()` (or leaving `async with`) ends it."""

    def __init__(self, supervisor: AsyncSupervisor, interval: float | None = None) -> None:
        super().__init__()
        self.supervisor = supervisor
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            supervisor.run(self._stop, interval, self._record), name="tether-supervisor"
        )

    @property
    def running(self) -> bool:
        return not self._task.done()

    async def stop(self, timeout: float | None = None) -> None:
        """Ask the task to finish its sweep and wait for it."""
        self._stop.set()
        await asyncio.wait([self._task], timeout=timeout)

    async def __aenter__(self) -> AsyncRunningSupervisor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
