"""What the pages show, read from the durable store (events only make it live): a viewer's scope,
the list's filters as they travel in the URL, and the queries behind each page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import urlencode

from tether.core.errors import NotFound, ValidationError
from tether.core.model import Checkpoint, Liveness, Page, Session, SessionCount, SessionFilter, State
from tether.core.validation import check_optional_text
from tether.flows.operations import stale_filter
from tether.server.auth import Caller
from tether.server.runtime import Runtime

PAGE_SIZES = (25, 50, 100, 200)
NEAREST_SCAN = 200  # sessions read per window when looking for the nearest lease expiries
NEAREST = 10  # sessions shown as closest to lease expiry
NEAREST_HORIZONS = (0.0, 5.0, 30.0, 120.0, 600.0, 3600.0)  # seconds ahead, widened until enough
CHECKPOINTS_SHOWN = 50
CHILDREN_SHOWN = 100
ANCESTORS_SHOWN = 20
LIFECYCLE_PREFIX = "session_"  # session_paused, session_recovered, ...: written by Tether itself
# The liveness filters the stores index: past the soft deadline (dead ones too), lease expired.
LIVENESS_FILTERS = {
    Liveness.SUSPECT: frozenset({Liveness.SUSPECT, Liveness.DEAD}),
    Liveness.DEAD: frozenset({Liveness.DEAD}),
}


@dataclass(frozen=True, slots=True)
class ListFilters:
    """The sessions list's filters, exactly as the URL carries them (bookmarkable)."""

    user_id: str | None = None
    agent_type: str | None = None
    state: State | None = None
    liveness: Liveness | None = None
    parent_session_id: str | None = None
    silent_for: int | None = None  # seconds without a heartbeat, at least
    limit: int = 50
    cursor: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], caller: Caller) -> ListFilters:
        """Parse the query string; a user key's filter is always its own user."""
        text = {name: (query.get(name) or "").strip() or None for name in _TEXT_FIELDS}
        for name, value in text.items():
            check_optional_text(name, value)
        return cls(
            user_id=text["user_id"] if caller.admin else caller.user_id,
            agent_type=text["agent_type"],
            state=_choice("state", query.get("state"), State),
            liveness=_choice("liveness", query.get("liveness"), LIVENESS_FILTERS),
            parent_session_id=text["parent_session_id"],
            silent_for=_seconds("silent_for", query.get("silent_for")),
            limit=_limit(query.get("limit")),
            cursor=text["cursor"],
        )

    def store_filter(self, now: datetime) -> SessionFilter:
        """`suspect` selects sessions past their soft deadline, the dead ones included, as
        `SessionManager.stale` does: every field here is one the stores index."""
        where = stale_filter(
            now, self.silent_for, None, self.liveness, agent_type=self.agent_type, user_id=self.user_id
        )
        return replace(where, state=self.state, parent_session_id=self.parent_session_id)

    def query(self, **changes: object) -> str:
        """This filter as a query string, with some values changed (None drops one)."""
        values: dict[str, object] = {
            "user_id": self.user_id,
            "agent_type": self.agent_type,
            "state": self.state,
            "liveness": self.liveness,
            "parent_session_id": self.parent_session_id,
            "silent_for": self.silent_for,
            "limit": None if self.limit == 50 else self.limit,
            "cursor": self.cursor,
        }
        values.update(changes)
        return urlencode({k: str(v) for k, v in values.items() if v is not None})


_TEXT_FIELDS = ("user_id", "agent_type", "parent_session_id", "cursor")
E = TypeVar("E", State, Liveness)


def _choice(name: str, raw: str | None, allowed: Iterable[E]) -> E | None:
    if not raw:
        return None
    for member in allowed:
        if member.value == raw:
            return member
    names = ", ".join(member.value for member in allowed)
    raise ValidationError(name, f"must be one of {names}, got {raw!r}")


def _seconds(name: str, raw: str | None) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= 10**9:
        raise ValidationError(name, f"must be a whole number of seconds, got {raw!r}")
    return int(raw)


def _limit(raw: str | None) -> int:
    if not raw:
        return 50
    if not raw.isdigit() or int(raw) not in PAGE_SIZES:
        raise ValidationError("limit", f"must be one of {PAGE_SIZES}, got {raw!r}")
    return int(raw)


class Fleet:
    """The store reads behind the pages, each scoped to the caller (a user key: its own sessions)."""

    def __init__(self, runtime: Runtime, caller: Caller) -> None:
        self.store, self.manager, self.caller = runtime.store, runtime.manager, caller
        self.user_id = None if caller.admin else caller.user_id

    async def now(self) -> datetime:
        return await self.store.now()

    async def page(self, filters: ListFilters, now: datetime) -> Page[Session]:
        return await self.store.query(filters.store_filter(now), filters.limit, filters.cursor)

    async def session(self, session_id: str) -> Session:
        """The session, or NotFound, also when it belongs to another user (indistinguishable)."""
        return self.caller.visible(await self.manager.get(session_id))

    async def counts(self, now: datetime) -> list[SessionCount]:
        return await self.store.count_sessions(now, self.user_id)

    async def nearest_expiry(self, now: datetime) -> list[Session]:
        """Active sessions whose lease runs out soonest (overdue first): the soft deadline is
        indexed, so widen a window ahead of now until it holds enough of them."""
        found: list[Session] = []
        for ahead in NEAREST_HORIZONS:
            where = SessionFilter(user_id=self.user_id, suspect_at_or_before=now + timedelta(seconds=ahead))
            found = list((await self.store.query(where, NEAREST_SCAN)).items)
            if len(found) >= NEAREST:
                break
        found.sort(key=lambda s: (s.lease_expires_at or now, s.session_id))
        return found[:NEAREST]

    async def checkpoints(self, session: Session, before: int | None) -> list[Checkpoint]:
        """Up to CHECKPOINTS_SHOWN checkpoints before seq `before` (default: the newest), newest first."""
        last = session.last_seq if before is None else min(before - 1, session.last_seq)
        if last < 1:
            return []
        start = max(0, last - CHECKPOINTS_SHOWN)
        found = await self.manager.checkpoints(session.session_id, after_seq=start, limit=last - start)
        return found[::-1]

    async def ancestors(self, session: Session) -> list[Session]:
        """Parent, grandparent, … (root first), as far as the viewer may see them."""
        chain: list[Session] = []
        parent_id = session.parent_session_id
        while parent_id is not None and len(chain) < ANCESTORS_SHOWN:
            try:
                parent = await self.session(parent_id)
            except NotFound:
                break
            chain.append(parent)
            parent_id = parent.parent_session_id
        return chain[::-1]

    async def children(self, session: Session) -> Page[Session]:
        where = SessionFilter(parent_session_id=session.session_id, user_id=self.user_id)
        return await self.store.query(where, CHILDREN_SHOWN)


def is_lifecycle(checkpoint: Checkpoint) -> bool:
    return checkpoint.name.startswith(LIFECYCLE_PREFIX)
