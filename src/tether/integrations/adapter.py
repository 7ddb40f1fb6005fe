"""The part every adapter shares: a `SessionManager`, the async face of its store, and `hold`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

from tether.core.model import Session
from tether.flows.runner import Flow, run, run_async
from tether.front.aio import AsyncSessionManager
from tether.front.handle import AsyncSessionHandle, SessionHandle
from tether.front.manager import SessionManager
from tether.integrations.sessions import SessionFlows
from tether.stores.threaded import ThreadedStore

T = TypeVar("T")
F = TypeVar("F", bound=SessionFlows)


def manager_for(target: SessionManager | str | None) -> tuple[SessionManager, bool]:
    """The manager to use, and whether the adapter opened it (and so closes it)."""
    if isinstance(target, SessionManager):
        return target, False
    return SessionManager(target), True


class Bound:
    """Runs an adapter's flows on a manager's store, sync or async (the async face is Tether's thread
    adapter over the same store), and lets a worker own a session while it runs it."""

    def __init__(self, manager: SessionManager, flows: SessionFlows, owns_manager: bool) -> None:
        self.manager = manager
        self.amanager = AsyncSessionManager(
            manager.store,
            policies=manager.policies,
            worker_id=manager.worker_id,
            max_payload_bytes=manager.max_payload_bytes,
            redis_url="",
        )
        self.flows = flows
        flows.epoch_of = self.epoch
        self._owns_manager = owns_manager
        self._held: dict[str, SessionHandle | AsyncSessionHandle] = {}

    def run(self, flow: Flow[T]) -> T:
        return run(flow, self.manager.store)

    async def arun(self, flow: Flow[T]) -> T:
        return await run_async(flow, self.amanager.store)

    async def aread(self, flow: Flow[T]) -> T:
        """`arun` for a flow of reads: behind the thread adapter (SQLite, memory) the whole flow
        runs in one thread hop instead of one per call (the hop costs more CPU than a small read);
        on a natively async store (PostgreSQL) it is `arun`."""
        store = self.amanager.store
        if isinstance(store, ThreadedStore):
            return await store.run_sync(run, flow, store.sync)
        return await self.arun(flow)

    def epoch(self, session_id: str) -> int | None:
        """The epoch writes to this session carry: this worker's while it holds it, else none."""
        handle = self._held.get(session_id)
        return None if handle is None else handle.epoch

    def close(self) -> None:
        if self._owns_manager:
            self.manager.close()

    @contextmanager
    def hold(self, session_id: str) -> Iterator[SessionHandle]:
        """Own the session for a run: writes are fenced by this worker's epoch, heartbeats keep the
        lease. When the block ends the session is paused (idle until the next run); when it raises,
        failed recoverably, so another worker can take it over."""
        handle = SessionHandle(self.manager, lambda: self.run(self.flows.take(session_id)))
        with handle:
            self._held[session_id] = handle
            try:
                yield handle
                handle.pause()
            finally:
                self._held.pop(session_id, None)

    def own(self, session_id: str, take: Callable[[], Flow[Session]]) -> SessionHandle:
        """Own the session until `release`: `hold` for a framework whose runs do not fit in one
        block (A2A: a task is run by one request and ended by a later save). Heartbeats from a
        thread; `take` makes this worker the owner (see `SessionFlows.take`)."""
        held = self._held.get(session_id)
        if isinstance(held, SessionHandle) and held.lost is None:
            return held
        handle = SessionHandle(self.manager, lambda: self.run(take()))
        handle.__enter__()
        self._held[session_id] = handle
        return handle

    def release(self, session_id: str, end: Callable[[SessionHandle], object]) -> None:
        """Stop owning a session `own` took: `end` writes its last transition with the handle (so
        a replaced worker's raises LeaseLost), then the heartbeats stop."""
        handle = self._held.pop(session_id, None)
        if not isinstance(handle, SessionHandle):
            return
        try:
            end(handle)
        finally:
            handle.__exit__(None, None, None)  # ended (or lost) already: writes nothing

    def owned(self) -> list[str]:
        """The sessions this worker holds now."""
        return list(self._held)

    @asynccontextmanager
    async def ahold(self, session_id: str) -> AsyncIterator[AsyncSessionHandle]:
        """`hold` for asyncio."""
        handle = AsyncSessionHandle(self.amanager, lambda: self.arun(self.flows.take(session_id)))
        async with handle:
            self._held[session_id] = handle
            try:
                yield handle
                await handle.pause()
            finally:
                self._held.pop(session_id, None)
