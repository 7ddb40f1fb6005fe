"""The values Tether hands out: immutable, so a Session read is a snapshot, never a live view."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

JSON = dict[str, Any]
T = TypeVar("T")


class State(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"


class Liveness(StrEnum):
    """How an active or paused session's heartbeats look right now."""

    HEALTHY = "healthy"  # heard from within the expected silence
    SUSPECT = "suspect"  # past the soft deadline, lease not yet expired
    DEAD = "dead"  # lease expired: the supervisor may fail or hand it over


LIVE_STATES = frozenset({State.ACTIVE, State.PAUSED})
ENDED_STATES = frozenset({State.COMPLETED, State.FAILED})


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a session failed. `final` means no worker may recover it any more."""

    error: str
    details: JSON = field(default_factory=dict)
    final: bool = False


@dataclass(frozen=True, slots=True)
class Checkpoint:
    session_id: str
    seq: int
    name: str
    timestamp: datetime
    data: JSON


@dataclass(frozen=True, slots=True)
class NewCheckpoint:
    """A checkpoint not yet written: the store assigns its seq. Data arrives already encoded, with
    the decoded copy a write hands back (`tether.core.validation.encode_payload` makes both)."""

    name: str
    timestamp: datetime
    data_json: str
    data: JSON


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    agent_type: str
    user_id: str
    state: State
    created_at: datetime
    last_heartbeat: datetime
    state_since: datetime | None = None  # when the current state was entered
    context: JSON = field(default_factory=dict)
    metadata: JSON = field(default_factory=dict)
    parent_session_id: str | None = None
    version: int = 1
    owner: str | None = None
    epoch: int = 1
    heartbeat_timeout: float = 60.0  # seconds of silence before the lease expires
    suspect_after: float = 30.0  # seconds of silence before the session looks suspect
    lease_expires_at: datetime | None = None
    suspect_at: datetime | None = None
    phase: str | None = None
    recoveries: int = 0
    ended_at: datetime | None = None
    failure: Failure | None = None
    last_seq: int = 0

    @property
    def checkpoint_count(self) -> int:
        """Checkpoints are append-only with seq 1, 2, 3…, so the count is the last seq."""
        return self.last_seq

    @property
    def is_ended(self) -> bool:
        return self.state in ENDED_STATES

    def liveness(self, now: datetime) -> Liveness | None:
        """healthy / suspect / dead for a live session; None once it has ended."""
        if self.state not in LIVE_STATES:
            return None
        if self.lease_expires_at is not None and now >= self.lease_expires_at:
            return Liveness.DEAD
        if self.suspect_at is not None and now >= self.suspect_at:
            return Liveness.SUSPECT
        return Liveness.HEALTHY

    def duration(self, now: datetime) -> timedelta:
        """As in the seed: an ended session ends at its final checkpoint (`ended_at`)."""
        end = self.ended_at if self.ended_at is not None and self.is_ended else now
        return end - self.created_at


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a keyset-paginated listing; pass `next_cursor` back to get the next."""

    items: Sequence[T]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """What `list` and the stale-session queries select. None means any."""

    user_id: str | None = None
    agent_type: str | None = None
    state: State | None = None
    parent_session_id: str | None = None
    agent_types: frozenset[str] | None = None
    heartbeat_before: datetime | None = None  # no heartbeat since
    paused_before: datetime | None = None  # paused since before
    suspect_at_or_before: datetime | None = None  # liveness suspect or dead at that time
    lease_expired_at: datetime | None = None  # liveness dead at that time


@dataclass(frozen=True, slots=True)
class SessionCount:
    """How many sessions share a state, an agent type and a liveness (None once ended), and the
    oldest last heartbeat among them: what `/v1/stats` and the metrics report."""

    state: State
    agent_type: str
    liveness: Liveness | None
    count: int
    oldest_heartbeat: datetime


def as_aware(value: datetime) -> datetime:
    """Timestamps without an offset are read as UTC (the seed itself always writes UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
