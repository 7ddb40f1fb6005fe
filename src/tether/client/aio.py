"""`tether.AsyncClient`: `AsyncSessionManager`'s API over HTTP, every method awaited.

    async with AsyncClient("http://tether:8000", api_key="tth_…") as manager:
        async with manager.open("tutor", "alice") as session:
            await session.checkpoint("task_received", {"task": 42})

The requests are `Client`'s (`tether.client.calls`), sent with httpx's async client; docstrings
are the embedded manager's.
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from tether.client import events
from tether.client.calls import Call, Calls, ExportLines, problem, read_source, seed_lines
from tether.client.transport import RETRIES, TIMEOUT, Retry, auth_headers, server_url, settle, tls
from tether.core.errors import TetherError
from tether.core.model import ENDED_STATES, Checkpoint, Liveness, Page, Session, State
from tether.core.retention import RetentionReport
from tether.core.validation import check_text
from tether.events.bus import Subscriber
from tether.flows.operations import default_worker_id
from tether.flows.retention import BATCH as RETENTION_BATCH
from tether.flows.retention import MAX_BATCHES as RETENTION_BATCHES
from tether.flows.runner import run_async
from tether.flows.transfer import opened
from tether.front import handle, worker
from tether.front.handle import AsyncHandler, AsyncSessionHandle
from tether.front.manager import SessionManager
from tether.stores import Beat

T = TypeVar("T")


class AsyncClient:
    """A remote AsyncSessionManager; the arguments are `Client`'s (`transport` is httpx's async one)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        worker_id: str | None = None,
        timeout: float | httpx.Timeout = TIMEOUT,
        retries: int = RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = server_url(url)
        self.worker_id = check_text("worker_id", default_worker_id() if worker_id is None else worker_id)
        self.calls = Calls(self.worker_id)
        self.retries = retries
        self.http = httpx.AsyncClient(
            base_url=self.url,
            headers=auth_headers(api_key),
            timeout=timeout,
            transport=transport,
            verify=tls(),
        )
        self._subscriptions: builtins.list[events.AsyncSubscription] = []

    async def _send(self, call: Call[T]) -> T:
        if self._subscriptions:  # a subscription made before this call sees its change
            await events.all_open(self._subscriptions)
        for attempt in itertools.count():
            try:
                response, error = await self.http.send(call.request(self.http)), None
            except httpx.TransportError as exc:
                response, error = None, exc
            step = settle(call, attempt, response, error, self.retries)
            if not isinstance(step, Retry):
                return step
            await asyncio.sleep(step.delay)
        raise AssertionError("unreachable")

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
        return await self._send(
            self.calls.create(agent_type, user_id, context, metadata, session_id, parent_session_id)
        )

    async def fork(
        self,
        session_id: str,
        at_seq: int | None = None,
        *,
        agent_type: str | None = None,
        user_id: str | None = None,
    ) -> Session:
        return await self._send(self.calls.fork(session_id, at_seq, agent_type, user_id))

    async def get(self, session_id: str) -> Session:
        return await self._send(self.calls.get(session_id))

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
        return await self._send(self.calls.list(user_id, agent_type, state, parent_session_id, limit, cursor))

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
        return await self._send(
            self.calls.stale(no_heartbeat_for, paused_for, liveness, agent_type, user_id, limit, cursor)
        )

    async def checkpoints(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> builtins.list[Checkpoint]:
        return await self._send(self.calls.checkpoints(session_id, after_seq, limit, name))

    async def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        return await self._send(self.calls.last_checkpoint(session_id, name))

    async def duration(self, session_id: str) -> timedelta:
        return await self._send(self.calls.duration(session_id))

    # -- the owner's writes ------------------------------------------------------------------
    async def checkpoint(
        self,
        session_id: str,
        name: str,
        data: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
    ) -> Checkpoint:
        return await self._send(self.calls.checkpoint(session_id, name, data, epoch))

    async def heartbeat(
        self,
        session_id: str,
        *,
        epoch: int | None = None,
        phase: str | None = None,
        expect_silence: float | None = None,
    ) -> None:
        return await self._send(self.calls.heartbeat(session_id, epoch, phase, expect_silence))

    async def heartbeats(self, beats: Sequence[Beat]) -> builtins.list[TetherError | None]:
        return await self._send(self.calls.heartbeats(beats))

    async def pause(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Session:
        return await self._send(self.calls.transition("pause", session_id, expected_version, epoch=epoch))

    async def resume(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Session:
        return await self._send(self.calls.transition("resume", session_id, expected_version, epoch=epoch))

    async def complete(
        self,
        session_id: str,
        result: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Session:
        call = self.calls.transition("complete", session_id, expected_version, result=result, epoch=epoch)
        return await self._send(call)

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
        fields = {"error": error, "details": details, "final": final, "epoch": epoch}
        return await self._send(self.calls.transition("fail", session_id, expected_version, **fields))

    async def update(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Session:
        return await self._send(self.calls.update(session_id, context, metadata, epoch, expected_version))

    # -- takeover ----------------------------------------------------------------------------
    async def claim(self, session_id: str, worker_id: str | None = None) -> Session:
        return await self._send(self.calls.claim(session_id, worker_id))

    async def claim_next(
        self, agent_types: Iterable[str] | None = None, worker_id: str | None = None
    ) -> Session | None:
        return await self._send(self.calls.claim_next(agent_types, worker_id))

    async def time_out(self, session_id: str) -> Session:
        return await self._send(self.calls.time_out(session_id))

    # -- liveness helpers --------------------------------------------------------------------
    def supervise(self, *, interval: float | None = None) -> events.AsyncServerSupervises:
        """See `Client.supervise`."""
        return events.AsyncServerSupervises()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """`Client.subscribe` from a task of the running loop; this client's next call waits until
        the stream is open, so it sees that call's change."""
        subscription = events.AsyncSubscription(self.http, callback)
        self._subscriptions.append(subscription)
        return subscription

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
        stop = stop_event or asyncio.Event()
        return await worker.run_worker_async(self, agent_types, handler, stop, poll_interval)

    # -- housekeeping ------------------------------------------------------------------------
    async def delete(self, session_id: str) -> None:
        return await self._send(self.calls.delete(session_id))

    async def purge(
        self,
        older_than: timedelta | datetime,
        states: Iterable[State | str] = tuple(ENDED_STATES),
    ) -> int:
        return await self._send(self.calls.purge(older_than, states))

    async def enforce_retention(
        self, *, dry_run: bool = False, batch: int = RETENTION_BATCH, max_batches: int = RETENTION_BATCHES
    ) -> RetentionReport:
        return await self._send(self.calls.enforce_retention(dry_run, batch, max_batches))

    async def erase_user(self, user_id: str) -> int:
        return await self._send(self.calls.erase_user(user_id))

    async def export(
        self, destination: str | Path | IO[str], *, user_id: str | None = None, decrypt: bool = False
    ) -> int:
        call = self.calls.export(user_id, decrypt)
        response = await self.http.send(call.request(self.http), stream=True)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise problem(response)
            with opened(destination, "w") as out:
                lines = ExportLines(out)
                async for chunk in response.aiter_bytes():
                    lines.write(chunk)
                lines.close()
            return lines.count
        finally:
            await response.aclose()

    async def import_sessions(
        self,
        source: str | Path | IO[str],
        *,
        on_conflict: str = "error",
        progress: Callable[[int], None] | None = None,
    ) -> int:
        jsonl = read_source(source)
        imported = await self._send(self.calls.import_sessions(jsonl, on_conflict))
        if progress is not None:
            progress(seed_lines(jsonl))
        return imported

    async def close(self) -> None:
        for subscription in self._subscriptions:
            subscription()
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# One set of docstrings: each method documents itself with the embedded manager's words.
for _name, _method in vars(AsyncClient).items():
    if not _name.startswith("_") and callable(_method) and _method.__doc__ is None:
        _method.__doc__ = getattr(SessionManager, _name).__doc__
