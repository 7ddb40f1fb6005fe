"""Worker loops: claim a recoverable session, run the handler inside a handle, repeat.

A failing handler fails its session (through the handle), never the worker; nor does a store that
is briefly unreachable (the loop waits a poll interval and tries again). `work` is the front
doors' method of that name on a thread (`SessionManager.work = worker.work`, and `tether.Client`'s),
`work_async` the asyncio one; claiming and handles are shared code.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable

from tether.core.errors import LeaseLost, StoreUnavailable
from tether.core.model import Session
from tether.front.handle import (
    AsyncFront,
    AsyncHandler,
    AsyncSessionHandle,
    Front,
    Handler,
    SessionHandle,
)
from tether.front.methods import shared
from tether.front.waiting import stopped_within

logger = logging.getLogger(__name__)


@shared
def work(
    self: Front,
    agent_types: Iterable[str] | None,
    handler: Handler,
    *,
    stop_event: threading.Event | None = None,
    poll_interval: float = 1.0,
) -> int:
    """Worker loop: claim recoverable sessions of these types and call `handler(handle,
    last_checkpoint)` inside an open handle, until `stop_event` is set. Returns sessions run."""
    stop = stop_event or threading.Event()
    types = None if agent_types is None else frozenset(agent_types)
    handled = 0
    while not stop.is_set():
        try:
            session = self.claim_next(types)
        except StoreUnavailable:
            logger.warning("cannot reach the store to claim work; retrying", exc_info=True)
            session = None
        if session is None:
            stop.wait(poll_interval)
            continue
        handled += 1
        try:
            with SessionHandle(self, _given(session)) as handle:
                handler(handle, handle.resumed_from)
        except Exception as exc:
            _handler_failed(session, exc)
    return handled


@shared
async def work_async(
    self: AsyncFront,
    agent_types: Iterable[str] | None,
    handler: AsyncHandler,
    *,
    stop_event: asyncio.Event | None = None,
    poll_interval: float = 1.0,
) -> int:
    """Worker loop: claim recoverable sessions of these types and await `handler(handle,
    last_checkpoint)` inside an open handle, until `stop_event` is set. Returns sessions run."""
    stop = stop_event or asyncio.Event()
    types = None if agent_types is None else frozenset(agent_types)
    handled = 0
    while not stop.is_set():
        try:
            session = await self.claim_next(types)
        except StoreUnavailable:
            logger.warning("cannot reach the store to claim work; retrying", exc_info=True)
            session = None
        if session is None:
            await stopped_within(stop, poll_interval)
            continue
        handled += 1
        try:
            async with AsyncSessionHandle(self, _given_async(session)) as handle:
                await handler(handle, handle.resumed_from)
        except Exception as exc:
            _handler_failed(session, exc)
    return handled


def _given(session: Session) -> Callable[[], Session]:
    """A start for a session this worker has already claimed."""
    return lambda: session


def _given_async(session: Session) -> Callable[[], Awaitable[Session]]:
    """A start for a session this worker has already claimed."""

    async def start() -> Session:
        return session

    return start


def _handler_failed(session: Session, exc: Exception) -> None:
    if isinstance(exc, LeaseLost):
        logger.info("session %s was taken over while this worker ran it", session.session_id)
    else:
        logger.error("handler failed on session %s", session.session_id, exc_info=exc)
