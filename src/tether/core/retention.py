"""Retention values: which ended sessions a policy lets go (a rule), and what a pass removed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tether.core.model import State


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Which ended sessions a retention policy lets go: those in `state` that ended before
    `ended_before`, of `agent_type`, or, when it is None, of every type not in `other_types`
    (the default policy covers the types without a policy of their own). A session with a live
    (active or paused) child is never covered: it goes after its children end."""

    state: State
    ended_before: datetime
    agent_type: str | None = None
    other_types: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Retired:
    """The sessions one rule removed (in a dry run: would remove, up to the pass's bound)."""

    rule: RetentionRule
    session_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one retention pass did, rule by rule."""

    dry_run: bool
    retired: tuple[Retired, ...] = ()

    @property
    def removed(self) -> int:
        """Sessions removed (in a dry run: that would be)."""
        return sum(len(r.session_ids) for r in self.retired)

    @property
    def session_ids(self) -> tuple[str, ...]:
        return tuple(sid for r in self.retired for sid in r.session_ids)
