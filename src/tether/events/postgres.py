"""Events across processes over PostgreSQL LISTEN/NOTIFY, for fleets that share a PostgreSQL store."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

import psycopg
from psycopg import sql

from tether.core.postgres_url import PoolSettings
from tether.events.bus import EventBridge, EventBus

POLL = 0.2  # seconds between checks of the stop flag while no notification arrives
MAX_PAYLOAD = 7900  # NOTIFY refuses payloads of 8000 bytes or more
MAX_CHANNEL = 63  # PostgreSQL identifiers are at most NAMEDATALEN - 1 bytes


def channel_name(namespace: str) -> str:
    """`tether_events:<namespace>`, or with the namespace hashed when that is too long.

    PostgreSQL silently truncates identifiers to 63 bytes, so two long namespaces with the same first
    63 bytes would end up listening on one channel; a digest keeps them apart and within the limit.
    """
    name = f"tether_events:{namespace}"
    if len(name.encode()) <= MAX_CHANNEL:
        return name
    return f"tether_events:{hashlib.sha256(namespace.encode()).hexdigest()[:32]}"


class PostgresEventBridge(EventBridge):
    max_bytes = MAX_PAYLOAD

    def __init__(self, bus: EventBus, url: str, namespace: str = "tether") -> None:
        self.conninfo = PoolSettings.from_url(url).conninfo
        self.channel = channel_name(namespace)
        self._sender: psycopg.Connection[tuple[object, ...]] | None = None
        self._send_lock = threading.Lock()
        super().__init__(bus)

    def describe(self) -> str:
        return f"PostgreSQL channel {self.channel!r}"

    def send(self, text: str) -> None:
        with self._send_lock:
            if self._sender is None or self._sender.closed:
                self._sender = psycopg.connect(self.conninfo, autocommit=True)
            try:
                self._sender.execute("SELECT pg_notify(%s, %s)", (self.channel, text))
            except psycopg.OperationalError:
                self._sender.close()  # reconnect on the next event
                raise

    def listen(self, ready: threading.Event, stop: threading.Event, deliver: Callable[[str], None]) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            ready.set()
            while not stop.is_set():
                for notify in conn.notifies(timeout=POLL):
                    deliver(notify.payload)

    def close(self) -> None:
        super().close()
        with self._send_lock:
            if self._sender is not None:
                self._sender.close()
