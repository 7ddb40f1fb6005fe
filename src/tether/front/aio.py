"""AsyncSessionManager: `SessionManager`'s API for asyncio agent frameworks, every method awaited.

Both managers run the same flows (`tether.flows.operations`): this one awaits each store call on an
`AsyncStore` (psycopg async on PostgreSQL; memory and SQLite on a worker thread of their own), so
validation, decisions, retries and events are shared, not copied. Docstrings are `SessionManager`'s.

    async with AsyncSessionManager("sqlite:///tether.db") as manager:
        session = await manager.create("tutor", "user-1")
        await manager.checkpoint(session.session_id, "task_received", {"task": 42})

A `postgresql://` URL gets the native psycopg async store; a sync store passed in runs on the thread
adapter (`tether.stores.threaded`).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from tether.core import config
from tether.core.clock import Clock
from tether.core.config import Settings
from tether.core.errors import ConfigurationError, TetherError
from tether.core.model import ENDED_STATES, Checkpoint, Liveness, Page, Session, State
from tether.core.policy import Policies
from tether.core.retention import RetentionReport
from tether.core.sealing import PayloadCodec
from tether.flows.operations import ManagerBase, Operations
from tether.flows.retention import BATCH as RETENTION_BATCH
from tether.flows.retention import MAX_BATCHES as RETENTION_BATCHES
from tether.flows.runner import AsyncRunner, run_async
from tether.front import handle, worker
from tether.front.handle import AsyncHandler, AsyncSessionHandle
from tether.front.manager import SessionManager
from tether.front.supervisor import AsyncRunningSupervisor, AsyncSupervisor
from tether.stores import AsyncStore, Beat, Store, open_async_store, with_liveness
from tether.stores.threaded import threaded


class AsyncSessionManager(ManagerBase):
    """Sessions, checkpoints and takeovers over one store, for asyncio.

    Takes an `AsyncStore`, a sync `Store` (run on a worker thread), a URL, or nothing (the
    TETHER_STORE_URL / ./tether.db default). A URL is opened by `async with` or the first call.
    """

    def __init__(
        self,
        store: AsyncStore | Store | str | None = None,
        *,
        policies: Policies | None = None,
        clock: Clock | None = None,
        worker_id: str | None = None,
        max_payload_bytes: int | None = None,
        redis_url: str | None = None,
        codec: PayloadCodec | None = None,
    ) -> None:
        settings = Settings.from_env(store if isinstance(store, str) else None)
        super().__init__(Operations(settings, policies, worker_id, max_payload_bytes, codec))
        self._redis_url = config.redis_url(redis_url)
        if isinstance(store, AsyncStore) and self._redis_url:
            raise ConfigurationError("Redis liveness wraps a sync store: pass a URL or a sync Store")
        self._store = threaded(with_liveness(store, self._redis_url)) if isinstance(store, Store) else store
        self._url, self._clock = settings.store_url, clock
        self._opening = asyncio.Lock()
        self.runner = AsyncRunner(self._target, self.ops.codec)

    @property
    def store(self) -> AsyncStore:
        """The async store; a URL's store exists once `async with` or a first call opened it."""
        if isinstance(self._store, AsyncStore):
            return self._store
        raise RuntimeError("the store is not open yet: use `async with` or await a call first")

    async def _open(self) -> AsyncStore:
        async with self._opening:
            if not isinstance(self._store, AsyncStore):
                self._store = await open_async_store(self._url, self._clock, self._redis_url)
            return self._store

    async def _target(self) -> AsyncStore:
        return self._store if isinstance(self._store, AsyncStore) else await self._open()

    # -- creating and reading ----------------------------------------------------------------
    async def create(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        parent_session_id: str | None = None,
    ) -> Session:
        return await self.runner(
            self.ops.create(agent_type, user_id, context, metadata, session_id, parent_session_id)
        )

    async def fork(
        self,
        session_id: str,
        at_seq: int | None = None,
        *,
        agent_type: str | None = None,
        user_id: str | None = None,
    ) -> Session:
        return await self.runner(self.ops.fork(session_id, at_seq, agent_type, user_id))

    async def get(self, session_id: str) -> Session:
        return await self.runner(self.ops.get(session_id))

    async def list(
        self,
        *,
        user_id: str | None = None,
        agent_type: str | None = None,
        state: State | str | None = None,
        parent_session_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]:
        return await self.runner(self.ops.list(user_id, agent_type, state, parent_session_id, limit, cursor))

    async def stale(
        self,
        *,
        no_heartbeat_for: float | timedelta | None = None,
        paused_for: float | timedelta | None = None,
        liveness: Liveness | str | None = None,
        agent_type: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]:
        return await self.runner(
            self.ops.stale(no_heartbeat_for, paused_for, liveness, agent_type, user_id, limit, cursor)
        )

    async def checkpoints(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> builtins.list[Checkpoint]:
        return await self.runner(self.ops.checkpoints(session_id, after_seq, limit, name))

    async def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        return await self.runner(self.ops.last_checkpoint(session_id, name))

    async def duration(self, session_id: str) -> timedelta:
        return await self.runner(self.ops.duration(session_id))

    # -- the owner's writes ------------------------------------------------------------------
    async def checkpoint(
        self,
        session_id: str,
        name: str,
        data: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
    ) -> Checkpoint:
        return await self.runner(self.ops.checkpoint(session_id, name, data, epoch))

    async def heartbeat(
        self,
        session_id: str,
        *,
        epoch: int | None = None,
        phase: str | None = None,
        expect_silence: float | None = None,
    ) -> None:
        return await self.runner(self.ops.heartbeat(session_id, epoch, phase, expect_silence))

    async def heartbeats(self, beats: Sequence[Beat]) -> builtins.list[TetherError | None]:
        return await self.runner(self.ops.heartbeats(beats))

    async def pause(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Session:
        return await self.runner(self.ops.pause(session_id, epoch, expected_version))

    async def resume(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Session:
        return await self.runner(self.ops.resume(session_id, epoch, expected_version))

    async def complete(
        self,
        session_id: str,
        result: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Session:
        return await self.runner(self.ops.complete(session_id, result, epoch, expected_version))

    async def fail(
        self,
        session_id: str,
        error: str,
        details: dict[str, Any] | None = None,
        *,
        final: bool = False,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Session:
        return await self.runner(self.ops.fail(session_id, error, details, final, epoch, expected_version))

    async def update(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Session:
        return await self.runner(self.ops.update(session_id, context, metadata, epoch, expected_version))

    # -- takeover ----------------------------------------------------------------------------
    async def claim(self, session_id: str, worker_id: str | None = None) -> Session:
        return await self.runner(self.ops.claim(session_id, worker_id))

    async def claim_next(
        self, agent_types: Iterable[str] | None = None, worker_id: str | None = None
    ) -> Session | None:
        return await self.runner(self.ops.claim_next(agent_types, worker_id))

    async def time_out(self, session_id: str) -> Session:
        return await self.runner(self.ops.time_out(session_id))

    # -- liveness helpers --------------------------------------------------------------------
    def supervise(self, *, interval: float | None = None) -> AsyncRunningSupervisor:
        """Sweep for dead sessions in an asyncio task of the running loop (default interval: a
        quarter of the shortest policy timeout). Stop it with `await .stop()` or `async with`."""
        return AsyncRunningSupervisor(AsyncSupervisor(self), interval)

    def open(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        parent_session_id: str | None = None,
    ) -> AsyncSessionHandle:
        """`async with manager.open(...) as s:` creates the session (or takes over `session_id` if it
        exists and is claimable), heartbeats from a task, completes on exit, fails on error."""
        create = {"context": context, "metadata": metadata, "parent_session_id": parent_session_id}
        return AsyncSessionHandle(
            self, lambda: run_async(handle.create_or_claim(session_id, agent_type, user_id, create), self)
        )

    def resume_or_create(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        parent_session_id: str | None = None,
    ) -> AsyncSessionHandle:
        create = {"context": context, "metadata": metadata, "parent_session_id": parent_session_id}
        return AsyncSessionHandle(
            self, lambda: run_async(handle.claim_or_create(agent_type, user_id, create), self)
        )

    async def work(
        self,
        agent_types: Iterable[str] | None,
        handler: AsyncHandler,
        *,
        stop_event: asyncio.Event | None = None,
        poll_interval: float = 1.0,
    ) -> int:
        """Worker loop: claim recoverable sessions of these types and await `handler(handle,
        last_checkpoint)` inside an open handle, until `stop_event` is set. Returns sessions run."""
        stop = stop_event or asyncio.Event()
        return await worker.run_worker_async(self, agent_types, handler, stop, poll_interval)

    # -- housekeeping ------------------------------------------------------------------------
    async def delete(self, session_id: str) -> None:
        return await self.runner(self.ops.delete(session_id))

    async def purge(
        self,
        older_than: timedelta | datetime,
        states: Iterable[State | str] = tuple(ENDED_STATES),
    ) -> int:
        return await self.runner(self.ops.purge(older_than, states))

    async def enforce_retention(
        self, *, dry_run: bool = False, batch: int = RETENTION_BATCH, max_batches: int = RETENTION_BATCHES
    ) -> RetentionReport:
        return await self.runner(self.ops.enforce_retention(dry_run, batch, max_batches))

    async def erase_user(self, user_id: str) -> int:
        return await self.runner(self.ops.erase_user(user_id))

    async def export(
        self, destination: str | Path | IO[str], *, user_id: str | None = None, decrypt: bool = False
    ) -> int:
        return await self.runner(self.ops.export(destination, user_id, decrypt))

    async def import_sessions(
        self,
        source: str | Path | IO[str],
        *,
        on_conflict: str = "error",
        progress: Callable[[int], None] | None = None,
    ) -> int:
        return await self.runner(self.ops.import_sessions(source, on_conflict, progress))

    async def close(self) -> None:
        if isinstance(self._store, AsyncStore):
            await self._store.close()

    async def __aenter__(self) -> AsyncSessionManager:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# One set of docstrings: each coroutine documents itself with its sync twin's words.
for _name, _method in vars(AsyncSessionManager).items():
    if not _name.startswith("_") and callable(_method) and _method.__doc__ is None:
        _method.__doc__ = getattr(SessionManager, _name).__doc__
