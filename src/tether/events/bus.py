"""Every change emits an Event; in-process subscribers receive them synchronously, in order.

An `EventBridge` (`bridge(manager.events, url, manager.store.url)`) extends the bus across processes
over Redis pub/sub or PostgreSQL LISTEN/NOTIFY, in the store's namespace.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tether.core.errors import ConfigurationError, StoreUnavailable

logger = logging.getLogger(__name__)

LISTEN_TIMEOUT = 5.0  # seconds to wait for a bridge's subscription before giving up
RECONNECT_DELAY = 1.0


@dataclass(frozen=True, slots=True)
class Event:
    session_id: str
    kind: str  # created, checkpoint, heartbeat, paused, resumed, completed, failed, ...
    at: datetime
    seq: int | None = None  # checkpoint seq, when the change wrote one
    data: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[Event], None]


HEARTBEAT = "heartbeat"


class EventBus:
    """Fan-out to subscribers. A failing subscriber is logged and never breaks the write.

    A subscriber may decline heartbeats (`heartbeats=False`): they are one event per beat, the hot
    path, and most listeners (a server's hub, its charts, the bridges) ignore them; with nobody
    wanting them, writers build none (`wants_heartbeats`)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._beat_subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber, *, heartbeats: bool = True) -> Callable[[], None]:
        """Register a callback (for every event, or every event but heartbeats); returns a function
        that unsubscribes it."""
        with self._lock:
            self._subscribers = [*self._subscribers, callback]
            if heartbeats:
                self._beat_subscribers = [*self._beat_subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]
                self._beat_subscribers = [s for s in self._beat_subscribers if s is not callback]

        return unsubscribe

    @property
    def active(self) -> bool:
        """True when someone listens: callers skip building events nobody reads."""
        return bool(self._subscribers)

    @property
    def wants_heartbeats(self) -> bool:
        """True when a subscriber takes heartbeat events."""
        return bool(self._beat_subscribers)

    def publish(self, event: Event) -> None:
        for callback in self._beat_subscribers if event.kind == HEARTBEAT else self._subscribers:
            try:
                callback(event)
            except Exception:
                logger.exception("event subscriber %r failed on %s", callback, event.kind)


def encode_event(event: Event, origin: str) -> str:
    """The wire form of an event between processes: JSON, tagged with the sending bridge."""
    return json.dumps(
        {
            "origin": origin,
            "session_id": event.session_id,
            "kind": event.kind,
            "at": event.at.isoformat(),
            "seq": event.seq,
            "data": event.data,
        },
        separators=(",", ":"),
        default=str,
    )


def decode_event(text: str) -> tuple[str, Event]:
    """(origin, event) of a message `encode_event` wrote."""
    raw = json.loads(text)
    at = datetime.fromisoformat(raw["at"])
    return raw["origin"], Event(raw["session_id"], raw["kind"], at, raw.get("seq"), raw.get("data") or {})


class EventBridge(ABC):
    """Carries one process's events to the others and theirs to it, over a broadcast channel.

    Local events (except the kinds in `skip`: heartbeats, by default, are the hot path and the lease
    tables already carry them) are sent on the channel; events arriving from other processes are
    published on the local bus, so `manager.subscribe` sees the whole fleet. Delivery across processes
    is best effort (pub/sub keeps no history): a listener that was down misses what was sent meanwhile,
    which is why `tether watch` also polls the store.
    """

    max_bytes: int | None = None  # a channel's message size limit; bigger events go without data

    def __init__(self, bus: EventBus, *, skip: frozenset[str] = frozenset({"heartbeat"})) -> None:
        self.bus, self.skip = bus, skip
        self.origin = uuid.uuid4().hex  # our own messages come back to us; this drops them
        self.received = 0  # events delivered here from other processes
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._listener = threading.Thread(target=self._listen_forever, name="tether-events", daemon=True)
        self._listener.start()
        if not self._ready.wait(LISTEN_TIMEOUT):
            self.close()
            raise StoreUnavailable(f"could not listen for events on {self.describe()}")
        self._unsubscribe = bus.subscribe(self._outbound, heartbeats=HEARTBEAT not in skip)

    @abstractmethod
    def describe(self) -> str:
        """Where the events go, for messages."""

    @abstractmethod
    def send(self, text: str) -> None:
        """Broadcast one encoded event."""

    @abstractmethod
    def listen(self, ready: threading.Event, stop: threading.Event, deliver: Callable[[str], None]) -> None:
        """Subscribe, set `ready`, then call `deliver` with each message until `stop` is set."""

    def close(self) -> None:
        if hasattr(self, "_unsubscribe"):
            self._unsubscribe()
        self._stop.set()
        self._listener.join(LISTEN_TIMEOUT)

    def __enter__(self) -> EventBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _outbound(self, event: Event) -> None:
        # The listener thread publishes remote events on the bus; sending those on would echo them
        # between processes for ever.
        if threading.current_thread() is self._listener or event.kind in self.skip:
            return
        text = encode_event(event, self.origin)
        if self.max_bytes is not None and len(text.encode()) > self.max_bytes:
            text = encode_event(replace(event, data={"truncated": True}), self.origin)
        self.send(text)

    def _deliver(self, text: str) -> None:
        try:
            origin, event = decode_event(text)
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed event message on %s", self.describe())
            return
        if origin != self.origin:
            self.received += 1
            self.bus.publish(event)

    def _listen_forever(self) -> None:
        """Listen, and after a lost connection listen again, until closed."""
        while not self._stop.is_set():
            try:
                self.listen(self._ready, self._stop, self._deliver)
            except Exception:
                logger.exception("event listener on %s failed; reconnecting", self.describe())
                self._stop.wait(RECONNECT_DELAY)


def namespace(store_url: str) -> str:
    """Where the events of one store meet: every process on the same store (a server, a demo
    worker, `tether watch`, an embedded manager) bridges in the same namespace, and processes of
    different stores never mix. The store is named as its processes reach it: a SQLite file by its
    real absolute path (so `sqlite:///tether.db` run from its directory is the same file), any other
    URL as given, without its password."""
    parts = urlsplit(store_url)
    if parts.scheme.lower() == "sqlite":
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        identity = "sqlite:///" + os.path.realpath(path)
    elif parts.password is not None:
        identity = urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", "@", 1)))
    else:
        identity = store_url
    return "tether-" + hashlib.sha256(identity.encode()).hexdigest()[:16]


def bridge(bus: EventBus, url: str, store_url: str) -> EventBridge:
    """An event bridge over Redis pub/sub (`redis://…`) or PostgreSQL LISTEN/NOTIFY (`postgresql://…`)
    for the events of the store at `store_url` (`manager.store.url`): processes of one store bridging
    over the same URL see each other's events (`namespace`)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        from tether.events.redis import RedisEventBridge

        return RedisEventBridge(bus, url, namespace(store_url))
    if scheme in ("postgresql", "postgres"):
        from tether.events.postgres import PostgresEventBridge

        return PostgresEventBridge(bus, url, namespace(store_url))
    raise ConfigurationError(f"events need a redis:// or postgresql:// URL, got {url!r}")
