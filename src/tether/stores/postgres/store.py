"""`postgresql://…`: many Tether processes on one shared PostgreSQL, through a psycopg pool."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

import psycopg
from psycopg_pool import ConnectionPool

from tether.clock import Clock
from tether.errors import StoreUnavailable, TetherError
from tether.lifecycle import Write
from tether.model import Checkpoint, NewCheckpoint, Page, Session, SessionFilter, State
from tether.stores.base import Beat, Store
from tether.stores.group_commit import GroupCommit, Job, assign
from tether.stores.postgres import operations as ops
from tether.stores.postgres import prepared
from tether.stores.postgres.connection import (
    Connection,
    PoolSettings,
    check_idle,
    redacted,
    returned_rows,
    translate,
)
from tether.stores.postgres.operations import Append, Operation, Query, manual_time

T = TypeVar("T")


def drive(
    conn: psycopg.Connection[Any], operation: Operation[T], query: Query, spin: prepared.Spin | None = None
) -> T:
    """Run an operation's queries on one connection, from its first, feeding each its rows (and
    throwing a failed statement's error into it). Point statements skip the cursor (`prepared.py`);
    `spin` says how long a read polls for its reply before blocking (None: not at all)."""
    pooled = conn if isinstance(conn, Connection) else None
    cursor = conn.cursor() if pooled is None else pooled.statements()
    try:
        while True:
            try:
                if query.point is not None and pooled is not None:
                    step = prepared.execute(pooled.point_statements(), query.point, query.params or {})
                    rows = prepared.wait(step, conn.pgconn.socket, spin if query.point.spins else None)
                else:
                    cursor.execute(query.sql, query.params, prepare=query.prepare)
                    rows = cursor.fetchall() if returned_rows(cursor) else []
            except psycopg.Error as exc:
                query = operation.throw(exc)
                continue
            query = operation.send(rows)
    except StopIteration as done:
        return cast(T, done.value)


class PostgresStore(Store):
    """The Store contract on PostgreSQL; see `operations` for what each method runs."""

    def __init__(self, pool: ConnectionPool[Connection], url: str, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.url = redacted(url)
        self._pool = pool
        self._spin = prepared.Spin(PoolSettings.from_url(url).read_spin)
        # Calls in flight (list append/pop are atomic): a point read spins only when it is alone,
        # as 16 threads spinning on 2 cores halved their read throughput (prepared.wait).
        self._in_flight: list[None] = []
        self._database_clock = ops.DatabaseClock()
        # Concurrent appends share a statement and a commit; one caller alone runs its own.
        self._appends: GroupCommit[Append] = GroupCommit(self._commit_appends, self._closed)

    @classmethod
    def from_url(cls, url: str, clock: Clock | None = None, *, migrate: bool = True) -> PostgresStore:
        """Open a pool on the URL (pool_min, pool_max, pool_timeout in its query) and migrate."""
        settings = PoolSettings.from_url(url)
        pool: ConnectionPool[Connection] = ConnectionPool(
            connection_class=Connection,
            check=check_idle,
            name="tether",
            open=False,
            **settings.pool_arguments(),
        )
        try:  # filled before the first call: a call that had to wait would grow the pool for good
            pool.open(wait=True, timeout=settings.timeout)
        except psycopg.Error as exc:
            pool.close()
            raise translate(exc) from exc
        store = cls(pool, url, clock)
        if migrate:
            try:
                store.migrate()
            except BaseException:
                store.close()
                raise
        return store

    def now(self) -> datetime:
        return self._run(ops.now(manual_time(self.clock), self._database_clock))

    def get(self, session_id: str) -> Session:
        return self._run(ops.get(session_id))

    def query(self, where: SessionFilter, limit: int, cursor: str | None = None) -> Page[Session]:
        return self._run(ops.query(where, limit, cursor))

    def checkpoints(
        self, session_id: str, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> list[Checkpoint]:
        return self._run(ops.checkpoints(session_id, after_seq, limit, name))

    def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        return self._run(ops.last_checkpoint(session_id, name))

    def claimable(self, agent_types: frozenset[str] | None, limit: int) -> list[Session]:
        return self._run(ops.claimable(agent_types, limit, manual_time(self.clock)))

    def create(self, session: Session, checkpoints: Sequence[NewCheckpoint] = ()) -> Session:
        return self._run(ops.create(session, checkpoints))

    def append(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        stored: Checkpoint | None = self._appends.run(Append(session_id, checkpoint, epoch))
        if stored is None:
            raise self._run(ops.explain_append(session_id, epoch))
        return stored

    def _commit_appends(self, jobs: list[Job[Append]]) -> None:
        assign(jobs, self._run(ops.append_batch([job.work for job in jobs])))

    def apply(self, write: Write) -> Session:
        return self._run(ops.apply(write))

    def heartbeat(self, beats: Sequence[Beat]) -> list[TetherError | None]:
        atomic = len(ops.beat_rounds(beats)) > 1
        return self._run(ops.heartbeat(beats, manual_time(self.clock)), atomic)

    def delete(self, session_id: str) -> None:
        self._run(ops.delete(session_id), atomic=True)

    def purge(self, ended_before: datetime, states: frozenset[State]) -> int:
        return self._run(ops.purge(ended_before, states), atomic=True)

    def erase_user(self, user_id: str) -> int:
        return self._run(ops.erase_user(user_id), atomic=True)

    def migrate(self) -> int:
        return self._run(ops.migrate(), atomic=True)

    def close(self) -> None:
        self._appends.close(then=self._pool.close)

    def _closed(self) -> StoreUnavailable:
        return StoreUnavailable("the store is closed")

    def _run(self, operation: Operation[T], atomic: bool = False) -> T:
        """One pooled connection per call (none if the operation needs no query); `atomic` wraps a
        multi-statement operation in a transaction."""
        try:
            first = next(operation)
        except StopIteration as done:
            return cast(T, done.value)
        in_flight = self._in_flight
        in_flight.append(None)
        try:
            conn = self._pool.getconn()
            try:
                spin = self._spin if len(in_flight) == 1 else None
                if not atomic:
                    return drive(conn, operation, first, spin)
                with conn.transaction():
                    return drive(conn, operation, first, spin)
            finally:
                self._pool.putconn(conn)
        except psycopg.Error as exc:
            raise translate(exc) from exc
        finally:
            in_flight.pop()
