"""The overview's live charts: takeovers, detections, checkpoints per minute and detection latency,
counted from the events this server process sees (its own API writes, its supervisor's verdicts,
and what an event bridge brings from other processes).

Counting happens in the publishing thread, so it only bumps integers under a lock. Detection latency
(lease expiry to verdict) is read afterwards from the `session_failed` checkpoint the verdict wrote,
which records the lease it found expired.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tether.core.errors import TetherError
from tether.events.bus import Event
from tether.front.aio import AsyncSessionManager
from tether.lifecycle import HEARTBEAT_TIMEOUT

MINUTES = 30  # how far back the charts reach
PENDING_LIMIT = 500  # detections waiting for their latency to be read; older ones are dropped
SERIES = {"claimed": "takeovers", "timed_out": "detections", "checkpoint": "checkpoints"}


@dataclass(slots=True)
class Minute:
    start: datetime
    counts: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Series:
    """One chart: a value per minute, oldest first, and the SVG polyline that draws it."""

    name: str
    values: list[float]
    unit: str = "/min"

    @property
    def latest(self) -> float:
        return self.values[-1] if self.values else 0.0

    @property
    def peak(self) -> float:
        return max(self.values, default=0.0)

    def points(self, width: int = 300, height: int = 60) -> str:
        top = self.peak or 1.0
        step = width / max(1, len(self.values) - 1)
        scale = (height - 4) / top
        return " ".join(f"{i * step:.1f},{height - 2 - v * scale:.1f}" for i, v in enumerate(self.values))


class Activity:
    """Per-minute tallies of the last MINUTES minutes, counted while attached to a manager."""

    def __init__(self) -> None:
        self._minutes: deque[Minute] = deque(maxlen=MINUTES)
        self._pending: deque[tuple[str, datetime]] = deque(maxlen=PENDING_LIMIT)
        self._lock = threading.Lock()
        self._manager: AsyncSessionManager | None = None
        self._unsubscribe: Callable[[], None] = lambda: None

    def attach(self, manager: AsyncSessionManager) -> None:
        self._manager = manager
        self._unsubscribe = manager.events.subscribe(self.record, heartbeats=False)

    def detach(self) -> None:
        self._unsubscribe()
        self._manager = None

    def record(self, event: Event) -> None:
        series = SERIES.get(event.kind)
        if series is None:
            return
        with self._lock:
            minute = self._minute(event.at)
            minute.counts[series] = minute.counts.get(series, 0) + 1
            if event.kind == "timed_out":
                self._pending.append((event.session_id, event.at))

    async def series(self, now: datetime) -> list[Series]:
        await self._read_latencies()
        with self._lock:
            self._minute(now)
            minutes = [Minute(now)] * (MINUTES - len(self._minutes)) + list(self._minutes)
        charts = [Series(name, [float(m.counts.get(name, 0)) for m in minutes]) for name in SERIES.values()]
        latency = [sum(m.latencies) / len(m.latencies) if m.latencies else 0.0 for m in minutes]
        return [*charts, Series("detection latency", latency, " s")]

    def _minute(self, at: datetime) -> Minute:
        """The bucket of `at`, adding the empty minutes since the last one."""
        start = at.replace(second=0, microsecond=0)
        if not self._minutes:
            self._minutes.append(Minute(start))
        while self._minutes[-1].start < start:
            self._minutes.append(Minute(self._minutes[-1].start + timedelta(minutes=1)))
        for minute in reversed(self._minutes):
            if minute.start <= start:
                return minute
        return self._minutes[0]  # older than the window: counted in its first minute

    async def _read_latencies(self) -> None:
        manager = self._manager
        if manager is None:
            return
        with self._lock:
            pending = list(self._pending)
            self._pending.clear()
        for session_id, at in pending:
            try:
                verdict = await manager.last_checkpoint(session_id, "session_failed")
            except TetherError:  # deleted meanwhile
                continue
            if verdict is None or verdict.data.get("error") != HEARTBEAT_TIMEOUT:
                continue
            expired = datetime.fromisoformat(verdict.data["details"]["lease_expires_at"])
            with self._lock:
                self._minute(at).latencies.append(max(0.0, (verdict.timestamp - expired).total_seconds()))
