"""The supervisor's sweep as flows, run by the thread and asyncio supervisors alike.

A sweep is a set of compare-and-set writes (`lifecycle.time_out` through `Operations.time_out`,
conditional on the version it read), so any number of supervisors may sweep one store at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from tether.core.errors import ConflictError, InvalidTransition, NotFound
from tether.core.model import Liveness, Session, SessionFilter
from tether.events.bus import Event
from tether.flows.operations import Operations
from tether.flows.retention import BATCH as RETENTION_BATCH
from tether.flows.retention import MAX_BATCHES as RETENTION_BATCHES
from tether.flows.retention import rules
from tether.flows.runner import Flow, call
from tether.stores.base import Store


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
        now = yield from call(Store.now)
        last = self._last_retention
        if (last is not None and now - last < self.retention_interval) or not rules(self.ops.policies, now):
            return ()
        self._last_retention = now
        report = yield from self.ops.enforce_retention(batch=RETENTION_BATCH, max_batches=RETENTION_BATCHES)
        return report.session_ids

    def expired(self) -> Flow[tuple[datetime, list[str]]]:
        """The store's time now, and the sessions whose lease had expired by then."""
        now = yield from call(Store.now)
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
            page = yield from call(Store.query, where, self.page_size, cursor)
            found.extend(page)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor
