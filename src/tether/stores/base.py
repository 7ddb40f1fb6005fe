"""The store contract. Every store implements it; `tests/contract/` checks every store against it.

Stores apply decisions, they never make them: the state machine lives in `tether.lifecycle`, and a
store only checks the conditions a `Write` or a fenced call carries, atomically.

Rules every store keeps:
- A call that returns has made its write durable (to the store's configured durability).
- A call that raises has written nothing.
- No driver exception leaves a store: each is wrapped in a `TetherError` (`StoreUnavailable` for
  lost connections) `from` the original.
- Checkpoints are append-only; each session's seq runs 1, 2, 3… without gaps or duplicates, also
  with many concurrent appenders.
- Listings are newest first by (created_at, session_id), keyset-paginated with an opaque cursor.
- Timestamps come back timezone-aware in UTC (an instant is kept exactly, a foreign offset is not).
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tether.core.clock import Clock, SystemClock
from tether.core.errors import InvalidTransition, LeaseLost, NotFound, TetherError, ValidationError
from tether.core.frozen import unguarded
from tether.core.keys import ApiKey
from tether.core.model import Checkpoint, NewCheckpoint, Page, Session, SessionCount, SessionFilter, State
from tether.core.retention import RetentionRule
from tether.lifecycle import Write

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What a store builds a session or checkpoint of each row it reads with (`unguarded`: the frozen
# classes' own constructors cost several times as much).
build_session = unguarded(Session)
build_checkpoint = unguarded(Checkpoint)


@dataclass(frozen=True, slots=True)
class Beat:
    """One heartbeat. `expect_silence` announces a quiet period (seconds) for this lease only."""

    session_id: str
    epoch: int | None = None
    phase: str | None = None
    expect_silence: float | None = None


class Store(ABC):
    """A durable home for sessions and their checkpoints."""

    url: str = ""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()

    def now(self) -> datetime:
        """The time leases are measured against (PostgreSQL: the database clock)."""
        return self.clock.now()

    # -- reads -------------------------------------------------------------------------------
    @abstractmethod
    def get(self, session_id: str) -> Session:
        """The session, with `last_seq` current. Raises NotFound."""

    @abstractmethod
    def query(self, where: SessionFilter, limit: int, cursor: str | None = None) -> Page[Session]:
        """Sessions matching every set field of `where`, newest first, at most `limit`."""

    @abstractmethod
    def checkpoints(
        self, session_id: str, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> list[Checkpoint]:
        """Checkpoints with seq > after_seq in seq order (optionally one name). NotFound if no
        such session."""

    @abstractmethod
    def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        """The newest checkpoint (of that name): an index look-up, never a scan. NotFound if no
        such session."""

    @abstractmethod
    def last_checkpoint_of(self, session_id: str, names: Sequence[str]) -> Checkpoint | None:
        """The newest checkpoint named any of `names` (which of several kinds of record came
        last): an index look-up per name, never a scan. NotFound if no such session."""

    @abstractmethod
    def newest_checkpoints(
        self, session_id: str, limit: int, before_seq: int | None = None
    ) -> list[Checkpoint]:
        """Up to `limit` checkpoints with seq < before_seq (None: the newest), newest first: the
        end of a log read back in pages, one index range each. NotFound if no such session."""

    @abstractmethod
    def claimable(self, agent_types: frozenset[str] | None, limit: int) -> list[Session]:
        """Candidates for takeover: active sessions whose lease expired by `now()`, and failed
        sessions whose failure is not final; longest-waiting first, ties by session id."""

    # -- writes ------------------------------------------------------------------------------
    @abstractmethod
    def create(self, session: Session, checkpoints: Sequence[NewCheckpoint] = ()) -> Session:
        """Insert a new session with checkpoints numbered 1…n. ConflictError if the id exists."""

    @abstractmethod
    def append(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        """Append one checkpoint with the next seq, only if the session is active and (when
        `epoch` is given) still at that epoch. Otherwise raises NotFound, InvalidTransition or
        LeaseLost (see `explain_rejected_append`)."""

    @abstractmethod
    def apply(self, write: Write) -> Session:
        """Apply a lifecycle write only if the session is still at `write.before.version`:
        every non-liveness column from `write.after` (liveness columns too if `renews_lease`),
        plus its checkpoint. Raises ConflictError (version moved) or NotFound."""

    @abstractmethod
    def heartbeat(self, beats: Sequence[Beat]) -> list[TetherError | None]:
        """Apply many heartbeats in one durable batch; one result per beat, in order: None when
        applied, else the error for that beat (see `explain_rejected_beat`). A beat is accepted on
        a paused session, or an active one whose lease has not expired, at the right epoch. It
        sets last_heartbeat, phase, suspect_at and lease_expires_at from the session's own
        timeouts, and does not change the version."""

    @abstractmethod
    def delete(self, session_id: str) -> None:
        """Remove a session and its checkpoints. NotFound if absent."""

    @abstractmethod
    def purge(self, ended_before: datetime, states: frozenset[State]) -> int:
        """Delete sessions in `states` that ended (or, for live states, last heard from) before
        the time; returns how many."""

    @abstractmethod
    def fork(self, session: Session, source_id: str, at_seq: int) -> Session:
        """Insert `session` (a new id) with a copy of the source's checkpoints 1…at_seq, seqs,
        names, timestamps and data unchanged, made inside the store in one bulk copy (the history
        never travels through the caller) in one transaction. The source is not changed.
        NotFound if the source does not exist, ConflictError if the new id does."""

    @abstractmethod
    def retirable(self, rule: RetentionRule, limit: int) -> list[str]:
        """Ids of up to `limit` sessions `rule` covers, oldest first: what `retire` would remove."""

    @abstractmethod
    def retire(self, rule: RetentionRule, limit: int) -> list[str]:
        """Remove up to `limit` sessions `rule` covers, oldest first, with their checkpoints, in
        one short transaction; returns their ids. Concurrent callers (several supervisors) remove
        each session once: a session another caller removed, or is removing, is not counted."""

    @abstractmethod
    def erase_user(self, user_id: str) -> int:
        """Delete every session and checkpoint of one user; returns how many sessions."""

    # -- API keys and counts (`tether serve`) -------------------------------------------------
    @abstractmethod
    def add_api_key(self, key: ApiKey) -> None:
        """Keep a new API key (only its hash). ConflictError if its key_id exists."""

    @abstractmethod
    def get_api_key(self, key_id: str) -> ApiKey | None:
        """The key with that id, revoked or not; None if there is none."""

    @abstractmethod
    def list_api_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first (ties by key id)."""

    @abstractmethod
    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        """Mark the key revoked at `at`; False if there is no such key or it was already revoked."""

    @abstractmethod
    def count_sessions(self, now: datetime, user_id: str | None = None) -> list[SessionCount]:
        """Sessions (of one user, or all) counted by state, agent type and liveness at `now` (None
        for ended states), each group with its oldest last_heartbeat; one aggregate query, in no
        particular order."""

    # -- lifecycle of the store itself ------------------------------------------------------
    @abstractmethod
    def migrate(self) -> int:
        """Bring the schema up to date; returns its version. SchemaMismatch if newer than us."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and threads. Idempotent."""


class AsyncStore(ABC):
    """The async face of a store: `Store`'s methods with the same names and arguments, as coroutines.

    The contract is `Store`'s docstrings, word for word; only the calling convention differs. The
    async PostgreSQL store implements it natively; memory and SQLite get it from a thread adapter.
    """

    url: str = ""
    clock: Clock

    @abstractmethod
    async def now(self) -> datetime:
        """See `Store.now` (PostgreSQL: the database clock, hence a coroutine here)."""

    # -- reads -------------------------------------------------------------------------------
    @abstractmethod
    async def get(self, session_id: str) -> Session:
        """See `Store.get`."""

    @abstractmethod
    async def query(self, where: SessionFilter, limit: int, cursor: str | None = None) -> Page[Session]:
        """See `Store.query`."""

    @abstractmethod
    async def checkpoints(
        self, session_id: str, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> list[Checkpoint]:
        """See `Store.checkpoints`."""

    @abstractmethod
    async def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        """See `Store.last_checkpoint`."""

    @abstractmethod
    async def last_checkpoint_of(self, session_id: str, names: Sequence[str]) -> Checkpoint | None:
        """See `Store.last_checkpoint_of`."""

    @abstractmethod
    async def newest_checkpoints(
        self, session_id: str, limit: int, before_seq: int | None = None
    ) -> list[Checkpoint]:
        """See `Store.newest_checkpoints`."""

    @abstractmethod
    async def claimable(self, agent_types: frozenset[str] | None, limit: int) -> list[Session]:
        """See `Store.claimable`."""

    # -- writes ------------------------------------------------------------------------------
    @abstractmethod
    async def create(self, session: Session, checkpoints: Sequence[NewCheckpoint] = ()) -> Session:
        """See `Store.create`."""

    @abstractmethod
    async def append(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        """See `Store.append`."""

    @abstractmethod
    async def apply(self, write: Write) -> Session:
        """See `Store.apply`."""

    @abstractmethod
    async def heartbeat(self, beats: Sequence[Beat]) -> list[TetherError | None]:
        """See `Store.heartbeat`."""

    @abstractmethod
    async def delete(self, session_id: str) -> None:
        """See `Store.delete`."""

    @abstractmethod
    async def purge(self, ended_before: datetime, states: frozenset[State]) -> int:
        """See `Store.purge`."""

    @abstractmethod
    async def fork(self, session: Session, source_id: str, at_seq: int) -> Session:
        """See `Store.fork`."""

    @abstractmethod
    async def retirable(self, rule: RetentionRule, limit: int) -> list[str]:
        """See `Store.retirable`."""

    @abstractmethod
    async def retire(self, rule: RetentionRule, limit: int) -> list[str]:
        """See `Store.retire`."""

    @abstractmethod
    async def erase_user(self, user_id: str) -> int:
        """See `Store.erase_user`."""

    # -- API keys and counts (`tether serve`) -------------------------------------------------
    @abstractmethod
    async def add_api_key(self, key: ApiKey) -> None:
        """See `Store.add_api_key`."""

    @abstractmethod
    async def get_api_key(self, key_id: str) -> ApiKey | None:
        """See `Store.get_api_key`."""

    @abstractmethod
    async def list_api_keys(self) -> list[ApiKey]:
        """See `Store.list_api_keys`."""

    @abstractmethod
    async def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        """See `Store.revoke_api_key`."""

    @abstractmethod
    async def count_sessions(self, now: datetime, user_id: str | None = None) -> list[SessionCount]:
        """See `Store.count_sessions`."""

    # -- lifecycle of the store itself ------------------------------------------------------
    @abstractmethod
    async def migrate(self) -> int:
        """See `Store.migrate`."""

    @abstractmethod
    async def close(self) -> None:
        """See `Store.close`."""


def explain_rejected_append(session: Session | None, session_id: str, epoch: int | None) -> TetherError:
    """Why a fenced append wrote nothing, given the session as it is now."""
    if session is None:
        return NotFound(session_id)
    if epoch is not None and epoch != session.epoch:
        return LeaseLost(session_id, epoch, session.epoch)
    return InvalidTransition(session_id, session.state.value, "checkpoint")


def explain_rejected_beat(session: Session | None, beat: Beat, now: datetime) -> TetherError:
    """Why a heartbeat wrote nothing, given the session as it is now."""
    if session is None:
        return NotFound(beat.session_id)
    if beat.epoch is not None and beat.epoch != session.epoch:
        return LeaseLost(beat.session_id, beat.epoch, session.epoch)
    if session.state is State.ACTIVE:
        return LeaseLost(
            beat.session_id, beat.epoch, session.epoch, "the lease expired; it is up for takeover"
        )
    return InvalidTransition(beat.session_id, session.state.value, "heartbeat")


def to_micros(value: datetime) -> int:
    """Exact integer microseconds since the Unix epoch (for ordering and cursors)."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_MICROSECOND = timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    """Multiplying a timedelta is exact and cheaper than constructing one: this runs for every
    timestamp a store reads."""
    return EPOCH + _MICROSECOND * value


def encode_cursor(session: Session) -> str:
    raw = f"{to_micros(session.created_at)}:{session.session_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_MIN_MICROS = to_micros(datetime.min.replace(tzinfo=UTC))
_MAX_MICROS = to_micros(datetime.max.replace(tzinfo=UTC))


def decode_cursor(cursor: str) -> tuple[int, str]:
    """(created_at in microseconds, session_id) of the last item of the previous page. Anything
    `encode_cursor` cannot have written is refused here, so a forged cursor never reaches a driver
    (a 25-digit number overflows every store's integer type)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        text, session_id = raw.split(":", 1)
        micros = int(text)
    except (ValueError, UnicodeDecodeError):
        micros, text, session_id = 0, "", ""
    valid_id = bool(session_id) and session_id.isprintable()
    if str(micros) != text or not _MIN_MICROS <= micros <= _MAX_MICROS or not valid_id:
        raise ValidationError("cursor", "is not a cursor this server handed out")
    return micros, session_id


def claim_order(session: Session) -> tuple[datetime, str]:
    """`claimable`'s order: longest-waiting first (an expired lease waits from its expiry, a failure
    from the lease it kept, else from when it failed), ties by id, as the SQL stores order it."""
    return session.lease_expires_at or session.state_since or session.created_at, session.session_id


def page_of(items: Iterable[Session], limit: int) -> Page[Session]:
    """Build a page from up to limit + 1 rows: the extra row only says there is a next page."""
    rows = list(items)
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, encode_cursor(rows[-1]))
    return Page(rows, None)
