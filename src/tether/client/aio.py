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
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

import httpx

from tether.client import events
from tether.client.calls import Call, Calls, ExportLines, problem
from tether.client.methods import awaits
from tether.client.transport import RETRIES, TIMEOUT, Retry, auth_headers, server_url, settle, tls
from tether.core.validation import check_text
from tether.events.bus import Subscriber
from tether.flows.operations import default_worker_id
from tether.flows.transfer import opened
from tether.front import handle, worker
from tether.front.handle import Start
from tether.front.manager import SessionManager

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
    create = awaits(Calls.create)
    fork = awaits(Calls.fork)
    get = awaits(Calls.get)
    list = awaits(Calls.list)
    stale = awaits(Calls.stale)
    checkpoints = awaits(Calls.checkpoints)
    last_checkpoint = awaits(Calls.last_checkpoint)
    duration = awaits(Calls.duration)

    # -- the owner's writes ------------------------------------------------------------------
    checkpoint = awaits(Calls.checkpoint)
    heartbeat = awaits(Calls.heartbeat)
    heartbeats = awaits(Calls.heartbeats)
    pause = awaits(Calls.pause)
    resume = awaits(Calls.resume)
    complete = awaits(Calls.complete)
    fail = awaits(Calls.fail)
    update = awaits(Calls.update)

    # -- takeover ----------------------------------------------------------------------------
    claim = awaits(Calls.claim)
    claim_next = awaits(Calls.claim_next)
    time_out = awaits(Calls.time_out)

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

    open = handle.opens_async(Start.open)
    resume_or_create = handle.opens_async(Start.resume_or_create)

    work = worker.work_async

    # -- housekeeping ------------------------------------------------------------------------
    delete = awaits(Calls.delete)
    purge = awaits(Calls.purge)
    enforce_retention = awaits(Calls.enforce_retention)
    erase_user = awaits(Calls.erase_user)
    import_sessions = awaits(Calls.import_sessions)

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
