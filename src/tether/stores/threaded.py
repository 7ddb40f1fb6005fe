"""Any sync `Store` as an `AsyncStore`: every call runs on worker threads owned by the adapter.

Memory and SQLite are written once, sync; this adapter is their async face, and keeps the event
loop free while a call waits on the disk. Sync stores are thread-safe (the sync manager's session
handles already call them from heartbeat threads), so the adapter runs up to `threads` calls at
once: that is what lets concurrent coroutines share one SQLite group commit the way threads do
(with one thread, every append would pay its own disk sync); `threads=1` remains for a store that
must see a single thread.

Cancelling a caller never cuts a call in half: a call still queued never starts, and a call already
running finishes before the caller sees its CancelledError. So once the cancellation arrives, the
write has happened completely or not at all, and no orphaned write races the caller's next read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from tether.core.errors import TetherError
from tether.core.keys import ApiKey
from tether.core.model import Checkpoint, NewCheckpoint, Page, Session, SessionCount, SessionFilter, State
from tether.core.retention import RetentionRule
from tether.lifecycle import Write
from tether.stores.base import AsyncStore, Beat, Store

T = TypeVar("T")


# Enough for the concurrency one event loop usually drives; threads start only when calls overlap.
DEFAULT_THREADS = 16


class ThreadedStore(AsyncStore):
    def __init__(
        self, store: Store, threads: int = DEFAULT_THREADS, *, executor: ThreadPoolExecutor | None = None
    ) -> None:
        self.sync = store
        self.url = store.url
        self.clock = store.clock
        self._executor = executor or _worker_threads(threads)
        self._closed = False
        # A store that keeps Store.now reads its injected clock: thread-safe and free, no hop needed.
        self._now_is_clock = type(store).now is Store.now

    @classmethod
    async def open(cls, factory: Callable[[], Store], threads: int = DEFAULT_THREADS) -> ThreadedStore:
        """Build (connect, migrate) the sync store on a worker thread, off the event loop."""
        executor = _worker_threads(threads)
        store = await asyncio.get_running_loop().run_in_executor(executor, factory)
        return threaded(store, executor=executor)

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        call = self._executor.submit(method, *args)
        result = asyncio.wrap_future(call)
        try:
            return await asyncio.shield(result)
        except asyncio.CancelledError:
            if not call.cancel():  # already running: let it finish before the cancellation lands
                await asyncio.wait([result])
            raise

    async def run_sync(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(*args)`, which calls the sync store, on the adapter's threads: one hop
        for several calls (e.g. a flow of reads), with the same cancellation rule as every call."""
        return await self._call(function, *args)

    async def now(self) -> datetime:
        return self.clock.now() if self._now_is_clock else await self._call(self.sync.now)

    # -- reads -------------------------------------------------------------------------------
    async def get(self, session_id: str) -> Session:
        return await self._call(self.sync.get, session_id)

    async def query(self, where: SessionFilter, limit: int, cursor: str | None = None) -> Page[Session]:
        return await self._call(self.sync.query, where, limit, cursor)

    async def checkpoints(
        self, session_id: str, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> list[Checkpoint]:
        return await self._call(self.sync.checkpoints, session_id, after_seq, limit, name)

    async def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        return await self._call(self.sync.last_checkpoint, session_id, name)

    async def last_checkpoint_of(self, session_id: str, names: Sequence[str]) -> Checkpoint | None:
        return await self._call(self.sync.last_checkpoint_of, session_id, names)

    async def newest_checkpoints(
        self, session_id: str, limit: int, before_seq: int | None = None
    ) -> list[Checkpoint]:
        return await self._call(self.sync.newest_checkpoints, session_id, limit, before_seq)

    async def claimable(self, agent_types: frozenset[str] | None, limit: int) -> list[Session]:
        return await self._call(self.sync.claimable, agent_types, limit)

    # -- writes ------------------------------------------------------------------------------
    async def create(self, session: Session, checkpoints: Sequence[NewCheckpoint] = ()) -> Session:
        return await self._call(self.sync.create, session, checkpoints)

    async def append(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        return await self._call(self.sync.append, session_id, checkpoint, epoch)

    async def apply(self, write: Write) -> Session:
        return await self._call(self.sync.apply, write)

    async def heartbeat(self, beats: Sequence[Beat]) -> list[TetherError | None]:
        return await self._call(self.sync.heartbeat, beats)

    async def delete(self, session_id: str) -> None:
        return await self._call(self.sync.delete, session_id)

    async def purge(self, ended_before: datetime, states: frozenset[State]) -> int:
        return await self._call(self.sync.purge, ended_before, states)

    async def fork(self, session: Session, source_id: str, at_seq: int) -> Session:
        return await self._call(self.sync.fork, session, source_id, at_seq)

    async def retirable(self, rule: RetentionRule, limit: int) -> list[str]:
        return await self._call(self.sync.retirable, rule, limit)

    async def retire(self, rule: RetentionRule, limit: int) -> list[str]:
        return await self._call(self.sync.retire, rule, limit)

    async def erase_user(self, user_id: str) -> int:
        return await self._call(self.sync.erase_user, user_id)

    # -- API keys and counts ----------------------------------------------------------------
    async def add_api_key(self, key: ApiKey) -> None:
        return await self._call(self.sync.add_api_key, key)

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        return await self._call(self.sync.get_api_key, key_id)

    async def list_api_keys(self) -> list[ApiKey]:
        return await self._call(self.sync.list_api_keys)

    async def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        return await self._call(self.sync.revoke_api_key, key_id, at)

    async def count_sessions(self, now: datetime, user_id: str | None = None) -> list[SessionCount]:
        return await self._call(self.sync.count_sessions, now, user_id)

    # -- lifecycle of the store itself ------------------------------------------------------
    async def migrate(self) -> int:
        return await self._call(self.sync.migrate)

    async def close(self) -> None:
        """Close the sync store on its thread, then let the thread go. Idempotent."""
        if not self._closed:
            self._closed = True
            await self._call(self.sync.close)
            self._executor.shutdown(wait=False)


@runtime_checkable
class AppendsFromTheLoop(Protocol):
    """A sync store whose appends can be awaited from the event loop without a thread hop (SQLite's
    group commit: a writer thread leads the batch and settles the coroutine's future)."""

    async def append_async(
        self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None
    ) -> Checkpoint: ...


class ThreadedAppendingStore(ThreadedStore):
    """The thread adapter, except for appends, the hot path: they go straight to the store's
    `append_async`, saving the two thread hops."""

    def __init__(
        self,
        store: Store,
        append_async: Callable[[str, NewCheckpoint, int | None], Awaitable[Checkpoint]],
        *,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        super().__init__(store, executor=executor)
        self._append_async = append_async

    async def append(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        return await self._append_async(session_id, checkpoint, epoch)


def threaded(store: Store, *, executor: ThreadPoolExecutor | None = None) -> ThreadedStore:
    """The async face of a sync store."""
    if isinstance(store, AppendsFromTheLoop):
        return ThreadedAppendingStore(store, store.append_async, executor=executor)
    return ThreadedStore(store, executor=executor)


def _worker_threads(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tether-store")
