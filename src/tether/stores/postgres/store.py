"""`postgresql://…`: many Tether processes on one shared PostgreSQL, through a psycopg pool."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar, cast

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from tether.core.clock import Clock
from tether.core.errors import StoreUnavailable, TetherError
from tether.core.keys import ApiKey
from tether.core.model import Checkpoint, NewCheckpoint, Page, Session, SessionCount, SessionFilter, State
from tether.core.postgres_url import PoolSettings, redacted
from tether.core.retention import RetentionRule
from tether.lifecycle import Write
from tether.stores.base import Beat, Store
from tether.stores.group_commit import GroupCommit, InFlight, Job, assign
from tether.stores.postgres import calls, keys
from tether.stores.postgres.calls import Operation, Outcome, Query, Unsettled, manual_time
from tether.stores.postgres.connection import (
    Connection,
    Pool,
    closed_while_idle,
    cursor_for,
    pool_arguments,
    returned_rows,
    translate,
)
from tether.stores.postgres.mapping import Append

T = TypeVar("T")


def drive(conn: Connection, operation: Operation[T], query: Query) -> T:
    """Run an operation's queries on one connection, from its first, feeding each its rows."""
    try:
        while True:
            cursor = cursor_for(query, conn.points, conn.cursor)
            try:
                cursor.execute(query.sql, query.params, prepare=query.prepare)
            except psycopg.Error as exc:  # the operation may handle it (calls.append_batch)
                query = operation.throw(exc)
                continue
            query = operation.send(cursor.fetchall() if returned_rows(cursor) else [])
    except StopIteration as done:
        return cast(T, done.value)


def open_error(settings: PoolSettings, exc: psycopg.Error) -> TetherError:
    """Why a pool could not fill: the pool's own timeout says only that it waited, so one direct
    connection asks the server (a wrong database or role, a refused password) for its message."""
    if isinstance(exc, PoolTimeout):
        try:
            psycopg.connect(settings.conninfo, connect_timeout=max(1, round(settings.timeout))).close()
        except psycopg.Error as direct:
            exc = direct
    return translate(exc)


class PostgresStore(Store):
    """The Store contract on PostgreSQL; see `calls` for what each method runs."""

    def __init__(self, pool: ConnectionPool[Connection], url: str, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.url = redacted(url)
        self._pool = pool
        self._settings = PoolSettings.from_url(url)
        self._database_clock = calls.DatabaseClock()
        # An append alone runs by itself. Appends made while others are in flight queue, and
        # those queued meanwhile share one statement and one commit (calls.append_batch).
        self._appends: GroupCommit[Append] = GroupCommit(self._commit_appends, self._closed)
        self._in_flight = InFlight()

    @classmethod
    def from_url(cls, url: str, clock: Clock | None = None, *, migrate: bool = True) -> PostgresStore:
        """Open a pool on the URL (pool_min, pool_max, pool_timeout, lock_timeout, statement_timeout
        in its query) and migrate."""
        settings = PoolSettings.from_url(url)
        pool = Pool(name="tether", open=False, connection_class=Connection, **pool_arguments(settings))
        try:
            pool.open(wait=True, timeout=settings.timeout)
        except psycopg.Error as exc:
            pool.close()
            raise open_error(settings, exc) from exc
        store = cls(pool, url, clock)
        if migrate:
            try:
                store.migrate()
            except BaseException:
                store.close()
                raise
        return store

    def now(self) -> datetime:
        return self._run(calls.now(manual_time(self.clock), self._database_clock))

    def get(self, session_id: str) -> Session:
        return self._run(calls.get(session_id), about=session_id)

    def query(self, where: SessionFilter, limit: int, cursor: str | None = None) -> Page[Session]:
        return self._run(calls.query(where, limit, cursor))

    def checkpoints(
        self, session_id: str, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> list[Checkpoint]:
        return self._run(calls.checkpoints(session_id, after_seq, limit, name), about=session_id)

    def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        return self._run(calls.last_checkpoint(session_id, name), about=session_id)

    def last_checkpoint_of(self, session_id: str, names: Sequence[str]) -> Checkpoint | None:
        return self._run(calls.last_checkpoint_of(session_id, names), about=session_id)

    def newest_checkpoints(
        self, session_id: str, limit: int, before_seq: int | None = None
    ) -> list[Checkpoint]:
        return self._run(calls.newest_checkpoints(session_id, limit, before_seq), about=session_id)

    def claimable(self, agent_types: frozenset[str] | None, limit: int) -> list[Session]:
        return self._run(calls.claimable(agent_types, limit, manual_time(self.clock)))

    def create(self, session: Session, checkpoints: Sequence[NewCheckpoint] = ()) -> Session:
        return self._run(calls.create(session, checkpoints), about=session.session_id)

    def append(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        append = Append(session_id, checkpoint, epoch)
        with self._in_flight.alone() as alone:
            batched: Outcome = Unsettled.ALONE if alone else self._appends.run(append)
            if batched is Unsettled.ALONE:
                stored = self._run(calls.append(append), about=session_id)
            else:
                stored = batched
        if stored is None:
            raise self._run(calls.explain_append(session_id, epoch), about=session_id)
        return stored

    def _commit_appends(self, jobs: list[Job[Append]]) -> None:
        assign(jobs, self._run(calls.append_batch([job.work for job in jobs])))

    def _closed(self) -> StoreUnavailable:
        return StoreUnavailable(f"the store for {self.url} is closed")

    def apply(self, write: Write) -> Session:
        return self._run(calls.apply(write), about=write.before.session_id)

    def heartbeat(self, beats: Sequence[Beat]) -> list[TetherError | None]:
        atomic = len(calls.beat_rounds(beats)) > 1
        about = beats[0].session_id if len(beats) == 1 else None
        return self._run(calls.heartbeat(beats, manual_time(self.clock)), atomic, about)

    def delete(self, session_id: str) -> None:
        self._run(calls.delete(session_id), atomic=True, about=session_id)

    def purge(self, ended_before: datetime, states: frozenset[State]) -> int:
        return self._run(calls.purge(ended_before, states), atomic=True)

    def fork(self, session: Session, source_id: str, at_seq: int) -> Session:
        return self._run(calls.fork(session, source_id, at_seq), atomic=True)

    def retirable(self, rule: RetentionRule, limit: int) -> list[str]:
        return self._run(calls.retirable(rule, limit))

    def retire(self, rule: RetentionRule, limit: int) -> list[str]:
        return self._run(calls.retire(rule, limit), atomic=True)

    def erase_user(self, user_id: str) -> int:
        return self._run(calls.erase_user(user_id), atomic=True)

    def add_api_key(self, key: ApiKey) -> None:
        self._run(keys.add_api_key(key))

    def get_api_key(self, key_id: str) -> ApiKey | None:
        return self._run(keys.get_api_key(key_id))

    def list_api_keys(self) -> list[ApiKey]:
        return self._run(keys.list_api_keys())

    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        return self._run(keys.revoke_api_key(key_id, at))

    def count_sessions(self, now: datetime, user_id: str | None = None) -> list[SessionCount]:
        return self._run(keys.count_sessions(now, user_id))

    def migrate(self) -> int:
        return self._run(calls.migrate(), atomic=True)

    def close(self) -> None:
        self._appends.close(then=self._pool.close)

    def _run(self, operation: Operation[T], atomic: bool = False, about: str | None = None) -> T:
        """One pooled connection per call (none if the operation needs no query); `atomic` wraps a
        multi-statement operation in a transaction; `about` is the session errors name."""
        try:
            first = next(operation)
        except StopIteration as done:
            return cast(T, done.value)
        try:
            conn = self._pool.getconn()
            while closed_while_idle(conn):  # the server restarted: try the next, the pool replaces it
                self._pool.putconn(conn)
                conn = self._pool.getconn()
            try:
                if not atomic:
                    return drive(conn, operation, first)
                with conn.transaction():
                    return drive(conn, operation, first)
            finally:
                self._pool.putconn(conn)
        except psycopg.Error as exc:
            raise translate(exc, about, self._settings) from exc
