"""AsyncSessionManager: `SessionManager`'s API for asyncio agent frameworks, every method awaited.

Both managers run the same flows (`tether.flows.operations`): this one awaits each store call on an
`AsyncStore` (psycopg async on PostgreSQL; memory and SQLite on a worker thread of their own), so
validation, decisions, retries and events are shared, not copied. Each method is its flow
(`create = awaits(Operations.create)`, see `tether.front.methods`), with the flow's signature and docstring.

    async with AsyncSessionManager("sqlite:///tether.db") as manager:
        session = await manager.create("tutor", "user-1")
        await manager.checkpoint(session.session_id, "task_received", {"task": 42})

A `postgresql://` URL gets the native psycopg async store; a sync store passed in runs on the thread
adapter (`tether.stores.threaded`).
"""

from __future__ import annotations

import asyncio

from tether.core import config
from tether.core.clock import Clock
from tether.core.config import Settings
from tether.core.errors import ConfigurationError
from tether.core.policy import Policies
from tether.core.sealing import PayloadCodec
from tether.flows.operations import ManagerBase, Operations
from tether.flows.runner import AsyncRunner
from tether.front import handle, worker
from tether.front.handle import Start
from tether.front.manager import SessionManager
from tether.front.methods import awaits
from tether.front.supervisor import AsyncRunningSupervisor, AsyncSupervisor
from tether.stores import AsyncStore, Store, open_async_store, with_liveness
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
    create = awaits(Operations.create)
    fork = awaits(Operations.fork)
    get = awaits(Operations.get)
    list = awaits(Operations.list)
    stale = awaits(Operations.stale)
    checkpoints = awaits(Operations.checkpoints)
    last_checkpoint = awaits(Operations.last_checkpoint)
    duration = awaits(Operations.duration)

    # -- the owner's writes ------------------------------------------------------------------
    checkpoint = awaits(Operations.checkpoint)
    heartbeat = awaits(Operations.heartbeat)
    heartbeats = awaits(Operations.heartbeats)
    pause = awaits(Operations.pause)
    resume = awaits(Operations.resume)
    complete = awaits(Operations.complete)
    fail = awaits(Operations.fail)
    update = awaits(Operations.update)

    # -- takeover ----------------------------------------------------------------------------
    claim = awaits(Operations.claim)
    claim_next = awaits(Operations.claim_next)
    time_out = awaits(Operations.time_out)

    # -- liveness helpers --------------------------------------------------------------------
    def supervise(self, *, interval: float | None = None) -> AsyncRunningSupervisor:
        """Sweep for dead sessions in an asyncio task of the running loop (default interval: a
        quarter of the shortest policy timeout). Stop it with `await .stop()` or `async with`."""
        return AsyncRunningSupervisor(AsyncSupervisor(self), interval)

    open = handle.opens_async(Start.open)
    resume_or_create = handle.opens_async(Start.resume_or_create)

    work = worker.work_async

    # -- housekeeping ------------------------------------------------------------------------
    delete = awaits(Operations.delete)
    purge = awaits(Operations.purge)
    enforce_retention = awaits(Operations.enforce_retention)
    erase_user = awaits(Operations.erase_user)
    export = awaits(Operations.export)
    import_sessions = awaits(Operations.import_sessions)

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
