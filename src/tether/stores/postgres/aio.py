"""The async PostgreSQL store: the same operations as `PostgresStore`, driven with awaits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar, cast

import psycopg
from psycopg_pool import AsyncConnectionPool

from tether.core.clock import Clock, SystemClock
from tether.core.errors import StoreUnavailable, TetherError
from tether.core.keys import ApiKey
from tether.core.model import Checkpoint, NewCheckpoint, Page, Session, SessionCount, SessionFilter, State
from tether.core.postgres_url import PoolSettings, redacted
from tether.core.retention import RetentionRule
from tether.lifecycle import Write
from tether.stores.base import AsyncStore, Beat
from tether.stores.group_commit import AsyncGroupCommit, Job, assign
from tether.stores.postgres import keys, prepared
from tether.stores.postgres import operations as ops
from tether.stores.postgres.connection import (
    AsyncConnection,
    check_idle,
    pool_arguments,
    returned_rows,
    translate,
)
from tether.stores.postgres.operations import Append, Operation, Query, manual_time

T = TypeVar("T")


async def drive(conn: AsyncConnection, operation: Operation[T], query: Query) -> T:
    """Run an operation's queries on one connection, from its first, feeding each its rows (and
    throwing a failed statement's error into it). Point statements skip the cursor (`prepared.py`)."""
    cursor = conn.statements()
    try:
        while True:
            try:
                if query.point is not None:
                    step = prepared.execute(conn.point_statements(), query.point, query.params or {})
                    rows = await prepared.wait_async(step, conn.pgconn.socket)
                else:
                    await cursor.execute(query.sql, query.params, prepare=query.prepare)
                    rows = await cursor.fetchall() if returned_rows(cursor) else []
            except psycopg.Error as exc:
                query = operation.throw(exc)
                continue
            query = operation.send(rows)
    except StopIteration as done:
        return cast(T, done.value)


async def _check_idle(conn: AsyncConnection) -> None:
    check_idle(conn)


class AsyncPostgresStore(AsyncStore):
    """The AsyncStore contract on PostgreSQL. Open with `await AsyncPostgresStore.from_url(url)`."""

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection], url: str, clock: Clock | None = None
    ) -> None:
        self.clock = clock or SystemClock()
        self.url = redacted(url)
        self._pool = pool
        self._database_clock = ops.DatabaseClock()
        self._appends: AsyncGroupCommit[Append] = AsyncGroupCommit(self._commit_appends, self._closed)

    @classmethod
    async def from_url(
        cls, url: str, clock: Clock | None = None, *, migrate: bool = True
    ) -> AsyncPostgresStore:
        """Open a pool on the URL (pool_min, pool_max, pool_timeout in its query) and migrate."""
        settings = PoolSettings.from_url(url)
        pool: AsyncConnectionPool[AsyncConnection] = AsyncConnectionPool(
            connection_class=AsyncConnection,
            check=_check_idle,
            name="tether-async",
            open=False,
            **pool_arguments(settings),
        )
        try:  # filled before the first call: a call that had to wait would grow the pool for good
            await pool.open(wait=True, timeout=settings.timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise translate(exc) from exc
        store = cls(pool, url, clock)
        if migrate:
            try:
                await store.migrate()
            except BaseException:
                await store.close()
                raise
        return store

    async def now(self) -> datetime:
        return await self._run(ops.now(manual_time(self.clock), self._database_clock))

    async def get(self, session_id: str) -> Session:
        return await self._run(ops.get(session_id))

    async def query(self, where: SessionFilter, limit: int, cursor: str | None = None) -> Page[Session]:
        return await self._run(ops.query(where, limit, cursor))

    async def checkpoints(
        self, session_id: str, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> list[Checkpoint]:
        return await self._run(ops.checkpoints(session_id, after_seq, limit, name))

    async def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        return await self._run(ops.last_checkpoint(session_id, name))

    async def claimable(self, agent_types: frozenset[str] | None, limit: int) -> list[Session]:
        return await self._run(ops.claimable(agent_types, limit, manual_time(self.clock)))

    async def create(self, session: Session, checkpoints: Sequence[NewCheckpoint] = ()) -> Session:
        return await self._run(ops.create(session, checkpoints))

    async def append(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        stored: Checkpoint | None = await self._appends.run(Append(session_id, checkpoint, epoch))
        if stored is None:
            raise await self._run(ops.explain_append(session_id, epoch))
        return stored

    async def _commit_appends(self, jobs: list[Job[Append]]) -> None:
        assign(jobs, await self._run(ops.append_batch([job.work for job in jobs])))

    async def apply(self, write: Write) -> Session:
        return await self._run(ops.apply(write))

    async def heartbeat(self, beats: Sequence[Beat]) -> list[TetherError | None]:
        atomic = len(ops.beat_rounds(beats)) > 1
        return await self._run(ops.heartbeat(beats, manual_time(self.clock)), atomic)

    async def delete(self, session_id: str) -> None:
        await self._run(ops.delete(session_id), atomic=True)

    async def purge(self, ended_before: datetime, states: frozenset[State]) -> int:
        return await self._run(ops.purge(ended_before, states), atomic=True)

    async def fork(self, session: Session, source_id: str, at_seq: int) -> Session:
        return await self._run(ops.fork(session, source_id, at_seq), atomic=True)

    async def retirable(self, rule: RetentionRule, limit: int) -> list[str]:
        return await self._run(ops.retirable(rule, limit))

    async def retire(self, rule: RetentionRule, limit: int) -> list[str]:
        return await self._run(ops.retire(rule, limit), atomic=True)

    async def erase_user(self, user_id: str) -> int:
        return await self._run(ops.erase_user(user_id), atomic=True)

    async def add_api_key(self, key: ApiKey) -> None:
        await self._run(keys.add_api_key(key))

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        return await self._run(keys.get_api_key(key_id))

    async def list_api_keys(self) -> list[ApiKey]:
        return await self._run(keys.list_api_keys())

    async def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        return await self._run(keys.revoke_api_key(key_id, at))

    async def count_sessions(self, now: datetime, user_id: str | None = None) -> list[SessionCount]:
        return await self._run(keys.count_sessions(now, user_id))

    async def migrate(self) -> int:
        return await self._run(ops.migrate(), atomic=True)

    async def close(self) -> None:
        await self._appends.close()
        await self._pool.close()

    def _closed(self) -> StoreUnavailable:
        return StoreUnavailable("the store is closed")

    async def _run(self, operation: Operation[T], atomic: bool = False) -> T:
        """One pooled connection per call (none if the operation needs no query); `atomic` wraps a
        multi-statement operation in a transaction."""
        try:
            first = next(operation)
        except StopIteration as done:
            return cast(T, done.value)
        try:
            conn = await self._pool.getconn()
            try:
                if not atomic:
                    return await drive(conn, operation, first)
                async with conn.transaction():
                    return await drive(conn, operation, first)
            finally:
                await self._pool.putconn(conn)
        except psycopg.Error as exc:
            raise translate(exc) from exc
