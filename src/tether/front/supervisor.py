"""Dead-agent detection: find active sessions whose lease expired and apply their agent type's policy.

A sweep is a set of compare-and-set writes (`lifecycle.time_out` through the manager, conditional on
the version it read), so any number of supervisors, in any number of processes or machines, may sweep
one store at once: each expired lease is applied exactly once, and a supervisor that loses the race
sees the session already failed (or claimed) and moves on. No leader election.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tether.core.errors import ConflictError, InvalidTransition, NotFound, TetherError
from tether.core.model import Liveness, Page, Session, SessionFilter
from tether.core.policy import Policies
from tether.events.bus import Event
from tether.flows.retention import BATCH as RETENTION_BATCH
from tether.flows.retention import MAX_BATCHES as RETENTION_BATCHES
from tether.flows.retention import rules
from tether.flows.runner import Flow, store
from tether.front.handle import stopped_within

if TYPE_CHECKING:
    from tether.flows.operations import Operations
    from tether.front.aio import AsyncSessionManager
    from tether.front.manager import SessionManager

logger = logging.getLogger(__name__)

PAGE = 500
RETENTION_INTERVAL = 60.0  # seconds between retention passes
MIN_INTERVAL, MAX_INTERVAL = 0.05, 5.0


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep did. Each session id appears in at most one of timed_out's two halves."""

    timed_out: tuple[str, ...] = ()  # sessions this sweep failed for heartbeat timeout
    final: tuple[str, ...] = ()  # of those, failed for good (policy `fail` or out of recoveries)
    recoverable: tuple[str, ...] = ()  # of those, now claimable by the next worker
    suspects: tuple[str, ...] = ()  # newly past their soft deadline, lease still alive
    lost_races: int = 0  # expired sessions another supervisor or a claimer handled first
    retired: tuple[str, ...] = ()  # ended sessions this sweep's retention pass removed

    def __bool__(self) -> bool:
        return bool(self.timed_out or self.suspects or self.retired)

    @classmethod
    def of(cls, outcomes: Iterable[Session | None], suspects: Iterable[Session]) -> SweepReport:
        """Tally time-out outcomes (None: another supervisor or a claimer got there first)."""
        final: list[str] = []
        recoverable: list[str] = []
        lost = 0
        for after in outcomes:
            if after is None or after.failure is None:
                lost += 1
            else:
                (final if after.failure.final else recoverable).append(after.session_id)
        return cls(
            timed_out=(*final, *recoverable),
            final=tuple(final),
            recoverable=tuple(recoverable),
            suspects=tuple(s.session_id for s in suspects),
            lost_races=lost,
        )


# A time-out that finds the session failed, claimed, completed or deleted lost a race: not an error.
LOST_RACE = (ConflictError, InvalidTransition, NotFound)


class SuspectLog:
    """Which suspects were reported, at which soft deadline, so each is reported once per deadline."""

    def __init__(self) -> None:
        self._reported: dict[str, datetime | None] = {}

    def fresh(self, candidates: Iterable[Session], now: datetime) -> list[Session]:
        current = {s.session_id: s for s in candidates if s.liveness(now) is Liveness.SUSPECT}
        seen = self._reported
        fresh = [s for sid, s in current.items() if sid not in seen or seen[sid] != s.suspect_at]
        self._reported = {sid: s.suspect_at for sid, s in current.items()}
        return fresh


def suspect_events(sessions: Iterable[Session], now: datetime) -> Iterator[Event]:
    for s in sessions:
        data = {"phase": s.phase, "owner": s.owner, "epoch": s.epoch, "liveness": "suspect"}
        yield Event(s.session_id, "suspect", now, None, data)


def default_interval(policies: Policies) -> float:
    """A quarter of the shortest configured timeout, so detection lands well within timeout + 1 s."""
    shortest = min([policies.default.timeout, *(p.timeout for p in policies.by_type.values())])
    return min(MAX_INTERVAL, max(MIN_INTERVAL, shortest / 4))


class Sweeper:
    """A sweep's store work as flows (`tether.flows.runner`), shared by the thread and asyncio supervisors:
    find the expired leases, time out one session, then report. Only how the time-outs run side by
    side (a thread pool, or gathered coroutines) is the supervisors' own."""

    def __init__(self, ops: Operations, page_size: int, retention_interval: float) -> None:
        self.ops = ops
        self.page_size = page_size
        self.suspects = SuspectLog()
        self.retention_interval = timedelta(seconds=retention_interval)
        self._last_retention: datetime | None = None

    def retention(self) -> Flow[tuple[str, ...]]:
        """A retention pass (bounded batches, `tether.flows.retention`) when one is due: at most
        every `retention_interval`, and only if some policy retains for a limited time."""
        now: datetime = yield store.now()
        last = self._last_retention
        if (last is not None and now - last < self.retention_interval) or not rules(self.ops.policies, now):
            return ()
        self._last_retention = now
        report = yield from self.ops.enforce_retention(False, RETENTION_BATCH, RETENTION_BATCHES)
        return report.session_ids

    def expired(self) -> Flow[tuple[datetime, list[str]]]:
        """The store's time now, and the sessions whose lease had expired by then."""
        now: datetime = yield store.now()
        sessions = yield from self._scan(SessionFilter(lease_expired_at=now))
        return now, [s.session_id for s in sessions]

    def time_out(self, session_id: str) -> Flow[Session | None]:
        try:
            return (yield from self.ops.time_out(session_id))
        except LOST_RACE:
            return None

    def report(self, now: datetime, outcomes: Iterable[Session | None]) -> Flow[SweepReport]:
        """Tally the time-outs and report (and announce) suspects new at this deadline."""
        fresh = self.suspects.fresh((yield from self._scan(SessionFilter(suspect_at_or_before=now))), now)
        if self.ops.events.active:
            for event in suspect_events(fresh, now):
                self.ops.events.publish(event)
        return SweepReport.of(outcomes, fresh)

    def _scan(self, where: SessionFilter) -> Flow[list[Session]]:
        found: list[Session] = []
        cursor: str | None = None
        while True:
            page: Page[Session] = yield store.query(where, self.page_size, cursor)
            found.extend(page)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor


class Supervisor:
    """Sweeps one manager's store. Cheap to create; keeps only which suspects it already reported."""

    def __init__(
        self,
        manager: SessionManager,
        *,
        page_size: int = PAGE,
        concurrency: int = 8,
        retention_interval: float = RETENTION_INTERVAL,
    ) -> None:
        self.manager = manager
        self.concurrency = concurrency
        self._sweeper = Sweeper(manager.ops, page_size, retention_interval)

    def sweep(self) -> SweepReport:
        """Time out every expired lease (as of the store's clock now), report new suspects, and
        run a retention pass when one is due.

        Several time-outs are applied concurrently, so SQLite's group commit (and PostgreSQL's
        pool) make one sync cover many of them when many agents died at once.
        """
        now, expired = self.manager._run(self._sweeper.expired())
        if len(expired) > 1:
            with ThreadPoolExecutor(min(self.concurrency, len(expired))) as pool:
                outcomes = list(pool.map(self._time_out, expired))
        else:
            outcomes = [self._time_out(sid) for sid in expired]
        report = self.manager._run(self._sweeper.report(now, outcomes))
        return replace(report, retired=self.manager._run(self._sweeper.retention()))

    def run(
        self,
        stop: threading.Event,
        interval: float | None = None,
        on_report: Callable[[SweepReport], None] | None = None,
    ) -> None:
        """Sweep every `interval` seconds until `stop` is set; store errors are logged, not fatal."""
        every = interval if interval is not None else default_interval(self.manager.policies)
        while True:
            try:
                report = self.sweep()
            except TetherError:
                logger.exception("supervisor sweep failed; retrying in %.2fs", every)
            else:
                if on_report is not None:
                    on_report(report)
            if stop.wait(every):
                return

    def _time_out(self, session_id: str) -> Session | None:
        return self.manager._run(self._sweeper.time_out(session_id))


class AsyncSupervisor:
    """`Supervisor` for asyncio: the same sweep, its time-outs gathered instead of threaded."""

    def __init__(
        self,
        manager: AsyncSessionManager,
        *,
        page_size: int = PAGE,
        concurrency: int = 8,
        retention_interval: float = RETENTION_INTERVAL,
    ) -> None:
        self.manager = manager
        self.concurrency = concurrency
        self._sweeper = Sweeper(manager.ops, page_size, retention_interval)

    async def sweep(self) -> SweepReport:
        """See `Supervisor.sweep`."""
        now, expired = await self.manager._run(self._sweeper.expired())
        slots = asyncio.Semaphore(self.concurrency)

        async def time_out(session_id: str) -> Session | None:
            async with slots:
                return await self.manager._run(self._sweeper.time_out(session_id))

        outcomes = await asyncio.gather(*(time_out(sid) for sid in expired))
        report = await self.manager._run(self._sweeper.report(now, outcomes))
        return replace(report, retired=await self.manager._run(self._sweeper.retention()))

    async def run(
        self,
        stop: asyncio.Event,
        interval: float | None = None,
        on_report: Callable[[SweepReport], None] | None = None,
    ) -> None:
        """Sweep every `interval` seconds until `stop` is set; store errors are logged, not fatal."""
        every = interval if interval is not None else default_interval(self.manager.policies)
        while True:
            try:
                report = await self.sweep()
            except TetherError:
                logger.exception("supervisor sweep failed; retrying in %.2fs", every)
            else:
                if on_report is not None:
                    on_report(report)
            if await stopped_within(stop, every):
                return


class RunningSupervisor:
    """A supervisor sweeping in a background thread; `stop()` (or leaving a with-block) ends it."""

    def __init__(self, supervisor: Supervisor, interval: float | None = None) -> None:
        self.supervisor = supervisor
        self.sweeps = 0
        self.retired = 0  # sessions removed by retention since this supervisor started
        self.last_report: SweepReport | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=supervisor.run,
            args=(self._stop, interval, self._record),
            name="tether-supervisor",
            daemon=True,
        )
        self._thread.start()

    def _record(self, report: SweepReport) -> None:
        self.sweeps += 1
        self.retired += len(report.retired)
        self.last_report = report

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


class AsyncRunningSupervisor:
    """A supervisor sweeping in an asyncio task; `await stop()` (or leaving `async with`) ends it."""

    def __init__(self, supervisor: AsyncSupervisor, interval: float | None = None) -> None:
        self.supervisor = supervisor
        self.sweeps = 0
        self.retired = 0  # sessions removed by retention since this supervisor started
        self.last_report: SweepReport | None = None
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            supervisor.run(self._stop, interval, self._record), name="tether-supervisor"
        )

    def _record(self, report: SweepReport) -> None:
        self.sweeps += 1
        self.retired += len(report.retired)
        self.last_report = report

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
