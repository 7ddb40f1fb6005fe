"""Events across processes over Redis pub/sub: one channel per namespace (`{namespace}:events`)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tether.core.errors import ConfigurationError
from tether.events.bus import EventBridge, EventBus

POLL = 0.2  # seconds between checks of the stop flag while no message arrives


class RedisEventBridge(EventBridge):
    def __init__(self, bus: EventBus, url: str, namespace: str = "tether") -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigurationError("Redis support is not installed: pip install 'tether[redis]'") from exc
        self.url, self.channel = url, f"{namespace}:events"
        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, decode_responses=True)
        super().__init__(bus)

    def describe(self) -> str:
        return f"Redis channel {self.channel!r} at {self.url}"

    def send(self, text: str) -> None:
        self.client.publish(self.channel, text)

    def listen(self, ready: threading.Event, stop: threading.Event, deliver: Callable[[str], None]) -> None:
        pubsub = self.client.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.channel)
            while not stop.is_set():
                message = pubsub.get_message(timeout=POLL)
                if message is None:
                    continue
                if message["type"] == "subscribe":  # confirmed: events published from now on arrive
                    ready.set()
                elif message["type"] == "message":
                    deliver(message["data"])
        finally:
            pubsub.close()

    def close(self) -> None:
        super().close()
        self.client.close()
