"""The async PostgreSQL store: the same calls as `PostgresStore`, driven with awaits."""

from __future__ import annotations

import asyncio
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
from tether.stores.group_commit import AsyncGroupCommit, InFlight, Job, assign
from tether.stores.postgres import calls, keys
from tether.stores.postgres.calls import Operation, Outcome, Query, Unsettled, manual_time
from tether.stores.postgres.connection import (
    AsyncConnection,
    AsyncPool,
    closed_while_idle,
    cursor_for,
    pool_arguments,
    returned_rows,
    translate,
)
from tether.stores.postgres.mapping import Append
from tether.stores.postgres.store import open_error

T = TypeVar("T")


async def drive(conn: AsyncConnection, operation: Operation[T], query: Query) -> T:
    """Run an operation's queries on one connection, from its first, feeding each its rows."""
    try:
        while True:
            cursor = cursor_for(query, conn.points, conn.cursor)
            try:
                await cursor.execute(query.sql, query.params, prepare=query.prepare)
            except psycopg.Error as exc:  # the operation may handle it (calls.append_batch)
                query = operation.throw(exc)
                continue
            query = operation.send(await cursor.fetchall() if returned_rows(cursor) else [])
    except StopIteration as done:
        return cast(T, done.value)


class AsyncPostgresStore(AsyncStore):
    """The AsyncStore contract on PostgreSQL. Open with `await AsyncPostgresStore.from_url(url)`."""

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection], url: str, clock: Clock | None = None
    ) -> None:
        self.clock = clock or SystemClock()
        self.url = redacted(url)
        self._pool = pool
        self._settings = PoolSettings.from_url(url)
        self._database_clock = calls.DatabaseClock()
        # As in PostgresStore: an append alone runs by itself, concurrent ones share a statement.
        self._appends: AsyncGroupCommit[Append] = AsyncGroupCommit(self._commit_appends, self._closed)
        self._in_flight = InFlight()

    @classmethod
    async def from_url(
        cls, url: str, clock: Clock | None = None, *, migrate: bool = True
    ) -> AsyncPostgresStore:
        """Open a pool on the URL (the same query parameters as `PostgresStore`) and migrate."""
        settings = PoolSettings.from_url(url)
        pool = AsyncPool(
            name="tether-async", open=False, connection_class=AsyncConnection, **pool_arguments(settings)
        )
        try:
            await pool.open(wait=True, timeout=settings.timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise await asyncio.to_thread(open_error, settings, exc) from exc
        store = cls(pool, url, clock)
        if migrate:
            try:
                await store.migrate()
            except BaseException:
                await store.close()
                raise
        return store

    async def now(self) -> datetime:
        return await self._run(calls.now(manual_time(self.clock), self._database_clock))

    async def get(self, session_id: str) -> Session:
        return await self._run(calls.get(session_id), about=session_id)

    async def query(self, where: SessionFilter, limit: int, cursor: str | None = None) -> Page[Session]:
        return await self._run(calls.query(where, limit, cursor))

    async def checkpoints(
        self, session_id: str, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> list[Checkpoint]:
        return await self._run(calls.checkpoints(session_id, after_seq, limit, name), about=session_id)

    async def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        return await self._run(calls.last_checkpoint(session_id, name), about=session_id)

    async def last_checkpoint_of(self, session_id: str, names: Sequence[str]) -> Checkpoint | None:
        return await self._run(calls.last_checkpoint_of(session_id, names), about=session_id)

    async def newest_checkpoints(
        self, session_id: str, limit: int, before_seq: int | None = None
    ) -> list[Checkpoint]:
        return await self._run(calls.newest_checkpoints(session_id, limit, before_seq), about=session_id)

    async def claimable(self, agent_types: frozenset[str] | None, limit: int) -> list[Session]:
        return await self._run(calls.claimable(agent_types, limit, manual_time(self.clock)))

    async def create(self, session: Session, checkpoints: Sequence[NewCheckpoint] = ()) -> Session:
        return await self._run(calls.create(session, checkpoints), about=session.session_id)

    async def append(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        append = Append(session_id, checkpoint, epoch)
        with self._in_flight.alone() as alone:
            batched: Outcome = Unsettled.ALONE if alone else await self._appends.run(append)
            if batched is Unsettled.ALONE:
                stored = await self._run(calls.append(append), about=session_id)
            else:
                stored = batched
        if stored is None:
            raise await self._run(calls.explain_append(session_id, epoch), about=session_id)
        return stored

    async def _commit_appends(self, jobs: list[Job[Append]]) -> None:
        assign(jobs, await self._run(calls.append_batch([job.work for job in jobs])))

    def _closed(self) -> StoreUnavailable:
        return StoreUnavailable(f"the store for {self.url} is closed")

    async def apply(self, write: Write) -> Session:
        return await self._run(calls.apply(write), about=write.before.session_id)

    async def heartbeat(self, beats: Sequence[Beat]) -> list[TetherError | None]:
        atomic = len(calls.beat_rounds(beats)) > 1
        about = beats[0].session_id if len(beats) == 1 else None
        return await self._run(calls.heartbeat(beats, manual_time(self.clock)), atomic, about)

    async def delete(self, session_id: str) -> None:
        await self._run(calls.delete(session_id), atomic=True, about=session_id)

    async def purge(self, ended_before: datetime, states: frozenset[State]) -> int:
        return await self._run(calls.purge(ended_before, states), atomic=True)

    async def fork(self, session: Session, source_id: str, at_seq: int) -> Session:
        return await self._run(calls.fork(session, source_id, at_seq), atomic=True)

    async def retirable(self, rule: RetentionRule, limit: int) -> list[str]:
        return await self._run(calls.retirable(rule, limit))

    async def retire(self, rule: RetentionRule, limit: int) -> list[str]:
        return await self._run(calls.retire(rule, limit), atomic=True)

    async def erase_user(self, user_id: str) -> int:
        return await self._run(calls.erase_user(user_id), atomic=True)

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
        return await self._run(calls.migrate(), atomic=True)

    async def close(self) -> None:
        await self._appends.close()
        await self._pool.close()

    async def _run(self, operation: Operation[T], atomic: bool = False, about: str | None = None) -> T:
        """`PostgresStore._run` with awaits."""
        try:
            first = next(operation)
        except StopIteration as done:
            return cast(T, done.value)
        try:
            conn = await self._pool.getconn()
            while closed_while_idle(conn):
                await self._pool.putconn(conn)
                conn = await self._pool.getconn()
            try:
                if not atomic:
                    return await drive(conn, operation, first)
                async with conn.transaction():
                    return await drive(conn, operation, first)
            finally:
                await self._pool.putconn(conn)
        except psycopg.Error as exc:
            raise translate(exc, about, self._settings) from exc
