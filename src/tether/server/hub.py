"""Live events for SSE subscribers: the manager's event bus, numbered, buffered and fanned out.

Writes emit `Event`s on the manager's bus (in the event loop; events from other server processes
arrive on a bridge's thread). One dispatcher task numbers them with a per-process monotonic id, tags
each with its session's user and agent type (immutable, so cached), keeps the last `size` in a ring
for `Last-Event-ID` resumption, and offers each to every subscription whose filter matches. Ids start
at the process's start time in milliseconds times 1000, so a later process's ids are above an earlier
one's, and a cursor from another process is recognised as foreign (a `reset`, never a silent gap).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sse_starlette import ServerSentEvent

from tether.events.bus import HEARTBEAT, Event, EventBus
from tether.server.shapes import dumps

QUEUE_SIZE = 1000  # frames a slow subscriber may fall behind before it gets a reset
OWNERS_CACHED = 50_000

Owner = tuple[str, str]  # (user_id, agent_type)
Resolve = Callable[[str], Awaitable[Owner | None]]


@dataclass(frozen=True, slots=True)
class Frame:
    id: int
    kind: str
    session_id: str
    user_id: str | None
    agent_type: str | None
    wire: bytes  # the whole SSE frame, encoded once for every subscriber


@dataclass(slots=True, eq=False)  # hashed by identity: the hub keeps a set of them
class Subscription:
    """What one stream wants: always one user's events (None: an admin's, all users)."""

    user_id: str | None
    session_id: str | None = None
    agent_type: str | None = None
    kinds: frozenset[str] | None = None
    queue: asyncio.Queue[Frame] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False

    def wants(self, frame: Frame) -> bool:
        if self.user_id is not None and frame.user_id != self.user_id:
            return False
        if self.session_id is not None and frame.session_id != self.session_id:
            return False
        if self.agent_type is not None and frame.agent_type != self.agent_type:
            return False
        if self.kinds is None:
            return frame.kind != HEARTBEAT
        return frame.kind in self.kinds

    def offer(self, frame: Frame) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True  # the stream sends a reset and starts over from the present


class Owners:
    """session id -> (user, agent type): both never change, so a bounded LRU cache is exact."""

    def __init__(self, size: int = OWNERS_CACHED) -> None:
        self._size = size
        self._known: OrderedDict[str, Owner] = OrderedDict()

    def get(self, session_id: str) -> Owner | None:
        found = self._known.get(session_id)
        if found is not None:
            self._known.move_to_end(session_id)
        return found

    def remember(self, session_id: str, user_id: str, agent_type: str) -> None:
        self._known[session_id] = (user_id, agent_type)
        self._known.move_to_end(session_id)
        if len(self._known) > self._size:
            self._known.popitem(last=False)

    def forget(self, session_id: str) -> None:
        self._known.pop(session_id, None)

    def clear(self) -> None:
        self._known.clear()


class EventHub:
    def __init__(self, bus: EventBus, owners: Owners, resolve: Resolve, size: int = 10_000) -> None:
        self.bus = bus
        self.owners = owners
        self._resolve = resolve
        self.base = time.time_ns() // 1_000_000 * 1000
        self.last_id = self.base
        self.ring: deque[Frame] = deque(maxlen=size)
        self.evicted_upto = self.base  # the newest id pushed out of the ring
        self.subscriptions: set[Subscription] = set()
        self.heartbeats_wanted = 0
        self._inbox: asyncio.Queue[tuple[Event, bool]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self.on_local: list[Callable[[Event, Owner | None], None]] = []  # metrics, per local event
        self._task = self._loop.create_task(self._dispatch(), name="tether-events")
        # Heartbeats only while a stream asks for them: else writers build no heartbeat events.
        self._unsubscribe = bus.subscribe(self.publish, heartbeats=False)
        self._beats_off: Callable[[], None] | None = None

    # -- intake, from any thread ------------------------------------------------------------
    def publish(self, event: Event) -> None:
        """The bus callback (every kind but heartbeats)."""
        if threading.get_ident() == self._thread:
            self._inbox.put_nowait((event, True))
        else:  # a bridge delivering another process's event
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, (event, False))

    def _heartbeat(self, event: Event) -> None:
        """The second bus callback, subscribed while a stream wants heartbeats."""
        if event.kind == HEARTBEAT:
            self.publish(event)

    async def _dispatch(self) -> None:
        while True:
            event, local = await self._inbox.get()
            owner = self.owners.get(event.session_id)
            if owner is None and event.kind != "deleted":
                try:
                    owner = await self._resolve(event.session_id)
                except Exception:  # the store is down: the event still goes to admins
                    owner = None
            if event.kind == "deleted":
                self.owners.forget(event.session_id)
            if local:
                for hook in self.on_local:
                    hook(event, owner)
            self._deliver(event, owner)

    def _deliver(self, event: Event, owner: Owner | None) -> None:
        self.last_id += 1
        user_id, agent_type = owner if owner is not None else (None, None)
        payload: dict[str, Any] = {
            "id": self.last_id,
            "session_id": event.session_id,
            "kind": event.kind,
            "at": event.at,
            "seq": event.seq,
            "user_id": user_id,
            "agent_type": agent_type,
            "data": event.data,
        }
        text = dumps(payload).decode()
        wire = ServerSentEvent(data=text, event=event.kind, id=str(self.last_id)).encode()
        frame = Frame(self.last_id, event.kind, event.session_id, user_id, agent_type, wire)
        if event.kind != HEARTBEAT:
            if len(self.ring) == self.ring.maxlen:
                self.evicted_upto = self.ring[0].id
            self.ring.append(frame)
        for subscription in self.subscriptions:
            if subscription.wants(frame):
                subscription.offer(frame)

    # -- subscribers, in the event loop ------------------------------------------------------
    def subscribe(self, subscription: Subscription, since: int | None) -> list[Frame] | None:
        """Register; returns the buffered frames after `since` to replay first (none without a
        cursor), or None when the cursor cannot be honoured (too old, or another process's)."""
        self.subscriptions.add(subscription)
        if subscription.kinds is not None and HEARTBEAT in subscription.kinds:
            self.heartbeats_wanted += 1
            if self._beats_off is None:
                self._beats_off = self.bus.subscribe(self._heartbeat)
        if since is None or since == self.last_id:
            return []
        if since > self.last_id or since < self.evicted_upto:
            return None
        return [frame for frame in self.ring if frame.id > since and subscription.wants(frame)]

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self.subscriptions:
            self.subscriptions.discard(subscription)
            if subscription.kinds is not None and HEARTBEAT in subscription.kinds:
                self.heartbeats_wanted -= 1
                if not self.heartbeats_wanted and self._beats_off is not None:
                    self._beats_off()
                    self._beats_off = None

    async def close(self) -> None:
        self._unsubscribe()
        if self._beats_off is not None:
            self._beats_off()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        for subscription in self.subscriptions:
            subscription.overflowed = True  # wakes nobody; streams end with the server


def kinds_of(text: str | None) -> frozenset[str] | None:
    if text is None or not text.strip():
        return None
    return frozenset(k.strip() for k in text.split(",") if k.strip())
