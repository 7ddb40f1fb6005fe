"""Each store call once, as a generator of queries: the sync and async stores only drive them.

A call yields a `Query`, receives the rows it returned, and finally returns its result (or
raises a TetherError). It never touches a connection,
so `PostgresStore` runs it with blocking calls and `AsyncPostgresStore` with awaits, and every
decision about rows (what a missing row means, which error a rejected write gets) exists once, here.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from time import monotonic
from typing import Any, Literal, TypeVar

import psycopg
from psycopg import errors as pg_errors

from tether.core.clock import Clock, SystemClock
from tether.core.errors import ConflictError, NotFound, SchemaMismatch, TetherError
from tether.core.model import Checkpoint, NewCheckpoint, Page, Session, SessionFilter, State
from tether.core.retention import RetentionRule
from tether.core.validation import MAX_COUNTER
from tether.lifecycle import Write
from tether.stores.base import (
    Beat,
    build_checkpoint,
    explain_rejected_append,
    explain_rejected_beat,
    page_of,
)
from tether.stores.postgres import mapping
from tether.stores.postgres.mapping import Append, session_from_row
from tether.stores.sql_files import Migration, load_migrations, load_queries

T = TypeVar("T")

QUERIES = load_queries(__package__ or "tether.stores.postgres")
MIGRATIONS = load_migrations(__package__ or "tether.stores.postgres")


@dataclass(frozen=True, slots=True)
class Query:
    """One statement and its parameters. `prepare=False` asks for a plan made with the values in
    place (filters whose unset conditions must fold away); None leaves it to the driver.

    A `point` statement (one row at most, on the hot paths: appends, latest checkpoint, the clock)
    answers with tuples instead of dicts, on a cursor its connection keeps for it (`connection`).
    """

    sql: str  # from queries.sql or a migration file, never built at runtime
    params: Mapping[str, Any] | None = None
    prepare: bool | None = None
    point: bool = False


# The rows a query returned: dicts by column name, tuples for a point statement.
Operation = Generator[Query, list[Any], T]


def _query(name: str, params: Mapping[str, Any] | None = None, prepare: bool | None = None) -> Query:
    return Query(QUERIES[name], params, prepare)


def _point(name: str, params: Mapping[str, Any]) -> Query:
    return Query(QUERIES[name], params, None, point=True)


def manual_time(clock: Clock) -> datetime | None:
    """None on the system clock, so SQL uses the database's `now()`; else the injected time."""
    return None if isinstance(clock, SystemClock) else clock.now()


class DatabaseClock:
    """The database's clock for `Store.now()`, read with one query at most every `resync` seconds
    and carried forward in between by the local monotonic clock.

    Leases are measured by the server (SQL uses its `now()`); callers that need the time to decide
    or stamp a checkpoint get the same clock without a round trip per call. The monotonic clock
    is immune to changes of the client's wall clock; between reads it can drift by parts per
    million, i.e. microseconds.
    """

    def __init__(self, resync: float = 5.0) -> None:
        self.resync = resync
        self._anchor: tuple[datetime, float] | None = None

    def carried(self) -> datetime | None:
        anchor, now = self._anchor, monotonic()
        if anchor is None or now - anchor[1] > self.resync:
            return None
        return anchor[0] + timedelta(seconds=now - anchor[1])

    def anchor(self, database_now: datetime, sent: float, received: float) -> datetime:
        """Pin the server's answer to the middle of the round trip that fetched it."""
        self._anchor = (database_now, (sent + received) / 2)
        return database_now + timedelta(seconds=(received - sent) / 2)


def now(manual: datetime | None, clock: DatabaseClock) -> Operation[datetime]:
    if manual is not None:
        return manual
    carried = clock.carried()
    if carried is not None:
        return carried
    sent = monotonic()
    rows = yield _point("clock", {"now": None})
    return clock.anchor(rows[0][0], sent, monotonic())


# -- reads -----------------------------------------------------------------------------------
def get(session_id: str) -> Operation[Session]:
    rows = yield _query("get_session", {"session_id": session_id})
    if not rows:
        raise NotFound(session_id)
    return session_from_row(rows[0])


def query(where: SessionFilter, limit: int, cursor: str | None) -> Operation[Page[Session]]:
    rows = yield _query("query_sessions", mapping.filter_params(where, limit, cursor), prepare=False)
    return page_of((session_from_row(row) for row in rows), limit)


def checkpoints(session_id: str, after_seq: int, limit: int, name: str | None) -> Operation[list[Checkpoint]]:
    params = {"session_id": session_id, "after_seq": after_seq, "limit": limit, "name": name}
    query_name = "checkpoints" if name is None else "checkpoints_named"
    return (yield from _checkpoints(session_id, query_name, params))


def newest_checkpoints(session_id: str, limit: int, before_seq: int | None) -> Operation[list[Checkpoint]]:
    through = MAX_COUNTER if before_seq is None else before_seq - 1
    params = {"session_id": session_id, "through_seq": through, "limit": limit}
    return (yield from _checkpoints(session_id, "newest_checkpoints", params))


def _checkpoints(session_id: str, query_name: str, params: Mapping[str, Any]) -> Operation[list[Checkpoint]]:
    rows = yield _query(query_name, params)
    if not rows:
        yield from _require(session_id)
    return [mapping.checkpoint_from_row(session_id, row) for row in rows]


def last_checkpoint(session_id: str, name: str | None) -> Operation[Checkpoint | None]:
    params = {"session_id": session_id, "name": name}
    rows = yield _point("last_checkpoint" if name is None else "last_checkpoint_named", params)
    return (yield from _last(session_id, rows))


def last_checkpoint_of(session_id: str, names: Sequence[str]) -> Operation[Checkpoint | None]:
    rows = yield _point("last_checkpoint_of", {"session_id": session_id, "names": list(dict.fromkeys(names))})
    return (yield from _last(session_id, rows))


def _last(session_id: str, rows: list[Any]) -> Operation[Checkpoint | None]:
    """The checkpoint of a point read; when it found none, whether the session exists."""
    if rows:
        seq, name, created_at, data = rows[0]
        return build_checkpoint(session_id, seq, name, created_at, data)
    yield from _require(session_id)
    return None


def claimable(
    agent_types: frozenset[str] | None, limit: int, manual: datetime | None
) -> Operation[list[Session]]:
    types = None if agent_types is None else sorted(agent_types)
    rows = yield _query("claimable", {"now": manual, "agent_types": types, "limit": limit})
    return [session_from_row(row) for row in rows]


# -- writes ----------------------------------------------------------------------------------
def create(session: Session, new: Sequence[NewCheckpoint]) -> Operation[Session]:
    rows = yield _query("create_session", mapping.create_params(session, new))
    if not rows:
        raise ConflictError(session.session_id, f"session {session.session_id!r} exists")
    return session_from_row(rows[0])


def append(append: Append) -> Operation[Checkpoint | None]:
    """The stored checkpoint, or None when its fence rejected it (`explain_append` says why)."""
    rows = yield _point("append_checkpoint", append.params())
    if not rows:
        return None
    seq, created_at = rows[0]
    return Checkpoint(append.session_id, seq, append.checkpoint.name, created_at, append.checkpoint.data)


class Unsettled(Enum):
    """What the batch leaves to an append's own caller, who runs it alone (`append`)."""

    ALONE = "alone"


# What one append of a batch came to: stored, refused by its fence (None), or left to its caller.
Outcome = Checkpoint | None | Literal[Unsettled.ALONE]


def append_batch(appends: Sequence[Append]) -> Operation[list[Outcome]]:
    """Concurrent appends (the group commit in store.py) in one statement and one commit.

    The statement never waits on a row lock: an append whose session row another transaction holds
    is left to its caller, and so is every append when the statement fails without having committed
    (one bad append, a value PostgreSQL refuses, then fails alone). When the connection is lost,
    nobody knows whether the batch committed: that error reaches every caller.
    """
    try:
        rows = yield _query("append_checkpoints", mapping.batch_params(appends))
    except psycopg.Error as exc:
        if may_have_committed(exc):
            raise
        return [Unsettled.ALONE] * len(appends)
    return [_settled(a, row) for a, row in zip(appends, rows, strict=True)]


def _settled(append: Append, row: Mapping[str, Any]) -> Outcome:
    if not row["locked"]:
        return Unsettled.ALONE
    if row["seq"] is None:
        return None
    return Checkpoint(
        append.session_id, row["seq"], append.checkpoint.name, row["created_at"], append.checkpoint.data
    )


def may_have_committed(exc: psycopg.Error) -> bool:
    """Whether a statement that raised this may still have been committed: only when the connection
    was lost (the answer with it). Any other error rolled the statement back: nothing was written."""
    if isinstance(exc, pg_errors.TransactionRollback | pg_errors.QueryCanceled | pg_errors.LockNotAvailable):
        return False  # deadlock, serialization, a timeout: the server rolled the statement back
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def explain_append(session_id: str, epoch: int | None) -> Operation[TetherError]:
    """Why a fenced append wrote nothing, from the session as it is now."""
    current = yield from _find(session_id)
    return explain_rejected_append(current, session_id, epoch)


def apply(write: Write) -> Operation[Session]:
    rows = yield _query("apply_write", mapping.write_params(write))
    if rows:
        return session_from_row(rows[0])
    current = yield from _find(write.before.session_id)
    if current is None:
        raise NotFound(write.before.session_id)
    raise ConflictError(
        current.session_id, expected_version=write.before.version, actual_version=current.version
    )


def heartbeat(beats: Sequence[Beat], manual: datetime | None) -> Operation[list[TetherError | None]]:
    """Beats in rounds where each session appears once (a statement updates a row only once)."""
    results: list[TetherError | None] = [None] * len(beats)
    for batch in beat_rounds(beats):
        rows = yield _query("heartbeat", mapping.beat_params([beat for _, beat in batch], manual))
        accepted = {row["session_id"] for row in rows}
        rejected = [(i, beat) for i, beat in batch if beat.session_id not in accepted]
        if rejected:
            ids = sorted({beat.session_id for _, beat in rejected})
            found = yield _query("sessions_by_ids", {"session_ids": ids})
            current = {row["session_id"]: session_from_row(row) for row in found}
            at = yield from now(manual, DatabaseClock(resync=0))
            for i, beat in rejected:
                results[i] = explain_rejected_beat(current.get(beat.session_id), beat, at)
    return results


def beat_rounds(beats: Sequence[Beat]) -> list[list[tuple[int, Beat]]]:
    """Split a batch so no session repeats within a round, keeping each session's beats in order.
    More than one round means the batch must run in one transaction to stay all-or-nothing."""
    rounds: list[list[tuple[int, Beat]]] = []
    seen: dict[str, int] = {}
    for i, beat in enumerate(beats):
        n = seen.get(beat.session_id, -1) + 1
        seen[beat.session_id] = n
        if n == len(rounds):
            rounds.append([])
        rounds[n].append((i, beat))
    return rounds


def delete(session_id: str) -> Operation[None]:
    """Run atomically (the lock is held until the delete commits), as purge and erase_user."""
    rows = yield _query("lock_session", {"session_id": session_id})
    if not rows:
        raise NotFound(session_id)
    yield from _delete_locked([session_id])


def purge(ended_before: datetime, states: frozenset[State]) -> Operation[int]:
    params = {"before": ended_before, "states": sorted(s.value for s in states)}
    rows = yield _query("lock_purgeable", params)
    return (yield from _delete_locked([row["session_id"] for row in rows]))


def fork(session: Session, source_id: str, at_seq: int) -> Operation[Session]:
    """Run atomically: the new row, and its history copied from the share-locked source."""
    if not (yield _query("lock_fork_source", {"source_id": source_id})):
        raise NotFound(source_id)
    if not (yield _query("create_session", mapping.create_params(session, ()))):
        raise ConflictError(session.session_id, f"session {session.session_id!r} exists")
    params = {"session_id": session.session_id, "source_id": source_id, "at_seq": at_seq}
    rows = yield _query("fork_checkpoints", params)
    return session_from_row(rows[0])


def retirable(rule: RetentionRule, limit: int) -> Operation[list[str]]:
    rows = yield _query("retirable", _rule_params(rule, limit))
    return [row["session_id"] for row in rows]


def retire(rule: RetentionRule, limit: int) -> Operation[list[str]]:
    """Run atomically, as purge: the rows are locked, then removed with their checkpoints."""
    rows = yield _query("lock_retirable", _rule_params(rule, limit))
    doomed = [row["session_id"] for row in rows]
    yield from _delete_locked(doomed)
    return doomed


def _rule_params(rule: RetentionRule, limit: int) -> dict[str, Any]:
    return {
        "state": rule.state.value,
        "before": rule.ended_before,
        "agent_type": rule.agent_type,
        "other_types": sorted(rule.other_types),
        "limit": limit,
    }


def erase_user(user_id: str) -> Operation[int]:
    rows = yield _query("lock_user_sessions", {"user_id": user_id})
    return (yield from _delete_locked([row["session_id"] for row in rows]))


def _delete_locked(session_ids: list[str]) -> Operation[int]:
    """Sessions this transaction has locked, with all their checkpoints: none can be appended
    meanwhile, and this statement sees every checkpoint committed before the locks were taken."""
    if not session_ids:
        return 0
    rows = yield _query("delete_sessions", {"session_ids": session_ids})
    removed: int = rows[0]["removed"]
    return removed


# -- the schema ------------------------------------------------------------------------------
def migrate(migrations: Sequence[Migration] = MIGRATIONS) -> Operation[int]:
    """Apply the missing migrations; run in one transaction, so a failed one leaves no trace."""
    yield _query("migration_lock")
    yield _query("create_version_table", prepare=False)
    rows = yield _query("schema_version")
    current: int = rows[0]["version"]
    if current > len(migrations):
        raise SchemaMismatch(current, len(migrations))
    for migration in migrations[current:]:
        yield Query(migration.sql, None, prepare=False)
        yield _query("record_migration", {"version": migration.version, "name": migration.name})
    return len(migrations)


# -- internals -------------------------------------------------------------------------------
def _find(session_id: str) -> Operation[Session | None]:
    rows = yield _query("get_session", {"session_id": session_id})
    return session_from_row(rows[0]) if rows else None


def _require(session_id: str) -> Operation[None]:
    """Raise NotFound unless the session exists: asked only when a checkpoint read found none."""
    if not (yield _query("session_exists", {"session_id": session_id})):
        raise NotFound(session_id)
