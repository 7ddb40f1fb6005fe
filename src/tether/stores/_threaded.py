"""Any sync `Store` as an `AsyncStore`: every call runs on one worker thread owned by the store.

Memory and SQLite are written once, sync; this adapter is their async face. One thread per store
keeps an SQLite connection on the thread that uses it and keeps the event loop free while a call
waits on the disk. A caller cancelled while awaiting does not cancel the call: a call already
running finishes (the store's own atomicity keeps it whole), a call still queued never starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from tether.errors import TetherError
from tether.lifecycle import Write
from tether.model import Checkpoint, NewCheckpoint, Page, Session, SessionFilter, State
from tether.stores.base import AsyncStore, Beat, Store

T = TypeVar("T")


class ThreadedStore(AsyncStore):
    def __init__(self, store: Store, executor: ThreadPoolExecutor | None = None) -> None:
        self.sync = store
        self.url = store.url
        self.clock = store.clock
        self._executor = executor or _worker_thread()
        self._closed = False
        # A store that keeps Store.now reads its injected clock: thread-safe and free, no hop needed.
        self._now_is_clock = type(store).now is Store.now

    @classmethod
    async def open(cls, factory: Callable[[], Store]) -> ThreadedStore:
        """Build the sync store on the worker thread itself, so its connections are born there."""
        executor = _worker_thread()
        store = await asyncio.get_running_loop().run_in_executor(executor, factory)
        return cls(store, executor)

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, method, *args)

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

    async def erase_user(self, user_id: str) -> int:
        return await self._call(self.sync.erase_user, user_id)

    # -- lifecycle of the store itself ------------------------------------------------------
    async def migrate(self) -> int:
        return await self._call(self.sync.migrate)

    async def close(self) -> None:
        """Close the sync store on its thread, then let the thread go. Idempotent."""
        if not self._closed:
            self._closed = True
            await self._call(self.sync.close)
            self._executor.shutdown(wait=False)


def _worker_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="tether-store")
