"""Live events for `Client.subscribe` / `AsyncClient.subscribe`: `GET /v1/events` read by a thread or a task.

Each frame becomes the library's `Event` and goes to the subscriber. When the connection drops, the
subscription reconnects after the server's `retry:` delay with `Last-Event-ID`, and the server
replays what it missed. When the server cannot (its buffer moved on, or another process answered) it
sends `reset`: those events are gone for this subscriber, which is logged as a warning, never hidden.
What is decided (headers, decoding, reconnect delay) is `Cursor`, shared by both readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from datetime import datetime

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

from tether.client.calls import problem
from tether.core.errors import TetherError
from tether.events.bus import Event, Subscriber

logger = logging.getLogger(__name__)

PATH = "/v1/events"
# The library's subscribers see heartbeats too; the server sends them only when asked.
KINDS = (
    "created,checkpoint,heartbeat,paused,resumed,completed,failed,timed_out,claimed,updated,deleted,suspect"
)
RECONNECT = 1.0  # seconds, until the server's `retry:` says otherwise
OPEN_TIMEOUT = 10.0  # seconds subscribe() waits for the stream to open
STREAM_TIMEOUT = httpx.Timeout(60.0, connect=5.0)  # the server pings every 15 s
DROPPED = (httpx.TransportError, SSEError)


class Cursor:
    """Where a subscription is in the stream, and what each frame means."""

    def __init__(self, callback: Subscriber) -> None:
        self.callback = callback
        self.last_id: str | None = None
        self.delay = RECONNECT

    def headers(self) -> dict[str, str]:
        resume = {} if self.last_id is None else {"Last-Event-ID": self.last_id}
        return {"Accept": "text/event-stream", "Cache-Control": "no-store", **resume}

    def deliver(self, frame: ServerSentEvent) -> None:
        if frame.retry is not None:
            self.delay = frame.retry / 1000
        if frame.id:
            self.last_id = frame.id
        if frame.event == "reset":
            logger.warning("event stream reset by the server (%s): events were missed", frame.data)
        elif frame.data and frame.event != "message":
            try:
                self.callback(event_from_json(json.loads(frame.data)))
            except Exception:
                logger.exception("event subscriber %r failed on %s", self.callback, frame.event)


def event_from_json(body: dict[str, object]) -> Event:
    data = body.get("data")
    seq = body.get("seq")
    return Event(
        session_id=str(body["session_id"]),
        kind=str(body["kind"]),
        at=datetime.fromisoformat(str(body["at"])),
        seq=seq if isinstance(seq, int) else None,
        data=data if isinstance(data, dict) else {},
    )


class Subscription:
    """A thread reading the stream until `stop()`; `start()` returns once the stream is open."""

    def __init__(self, http: httpx.Client, callback: Subscriber) -> None:
        self.http = http
        self.cursor = Cursor(callback)
        self._stop = threading.Event()
        self._open = threading.Event()
        self._refused: TetherError | None = None
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._read, name="tether-events", daemon=True)

    def start(self) -> Subscription:
        self._thread.start()
        self._open.wait(OPEN_TIMEOUT)
        if self._refused is not None:
            raise self._refused
        return self

    def __call__(self) -> None:
        """Unsubscribe: stop reading and close the stream."""
        self._stop.set()
        if self._response is not None:
            self._response.close()
        self._thread.join(OPEN_TIMEOUT)

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except TetherError as refused:  # e.g. a revoked key: reconnecting cannot help
                self._refused = refused
                self._open.set()
                return
            except DROPPED:
                if self._stop.is_set():
                    return
                logger.info("event stream dropped; reconnecting", exc_info=True)
            self._stop.wait(self.cursor.delay)

    def _follow(self) -> None:
        params = {"kinds": KINDS}
        with self.http.stream(
            "GET", PATH, params=params, headers=self.cursor.headers(), timeout=STREAM_TIMEOUT
        ) as response:
            self._response = response
            if response.status_code >= 400:
                response.read()
                raise problem(response)
            for frame in EventSource(response).iter_sse():
                self._open.set()
                self.cursor.deliver(frame)


class AsyncSubscription:
    """A task reading the stream until called; `opened` is set once the stream is open."""

    def __init__(self, http: httpx.AsyncClient, callback: Subscriber) -> None:
        self.http = http
        self.cursor = Cursor(callback)
        self.opened = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read(), name="tether-events")

    def __call__(self) -> None:
        """Unsubscribe: cancel the reading task."""
        self.opened.set()
        self._task.cancel()

    async def _read(self) -> None:
        while True:
            try:
                await self._follow()
            except TetherError:
                logger.exception("the server refused the event stream")
                self.opened.set()
                return
            except DROPPED:
                logger.info("event stream dropped; reconnecting", exc_info=True)
            await asyncio.sleep(self.cursor.delay)

    async def _follow(self) -> None:
        params = {"kinds": KINDS}
        async with self.http.stream(
            "GET", PATH, params=params, headers=self.cursor.headers(), timeout=STREAM_TIMEOUT
        ) as response:
            if response.status_code >= 400:
                await response.aread()
                raise problem(response)
            async for frame in EventSource(response).aiter_sse():
                self.opened.set()
                self.cursor.deliver(frame)


async def all_open(subscriptions: list[AsyncSubscription]) -> None:
    """Wait (at most OPEN_TIMEOUT) until every subscription's stream is open."""
    waiting = [s.opened.wait() for s in subscriptions if not s.opened.is_set()]
    if waiting:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waiting), OPEN_TIMEOUT)


class ServerSupervises:
    """What `Client.supervise()` returns: the server's own supervisor sweeps for dead sessions, so
    there is nothing to run here. Kept so code written for the embedded manager runs unchanged."""

    sweeps = 0
    last_report = None
    running = True

    def stop(self, timeout: float | None = None) -> None:
        self.running = False

    def __enter__(self) -> ServerSupervises:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> ServerSupervises:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()


class AsyncServerSupervises(ServerSupervises):
    """`ServerSupervises` for `AsyncClient.supervise()`: `await stop()`, like AsyncRunningSupervisor."""

    async def stop(self, timeout: float | None = None) -> None:  # type: ignore[override]
        self.running = False

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
