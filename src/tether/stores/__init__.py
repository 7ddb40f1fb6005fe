"""Stores by URL: `memory://`, `sqlite:///path` (the default), `postgresql://…`."""

from __future__ import annotations

from tether.core.clock import Clock
from tether.core.errors import ConfigurationError
from tether.stores.base import AsyncStore, Beat, Store

__all__ = ["AsyncStore", "Beat", "Store", "open_async_store", "open_store", "with_liveness"]

POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(url: str, clock: Clock | None = None) -> Store:
    """Open (and migrate) the store a URL names. Drivers load only when their URL is used."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        from tether.stores.memory import MemoryStore

        return MemoryStore(clock)
    if scheme == "sqlite":
        from tether.stores.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, clock)
    if scheme in ("postgresql", "postgres"):
        try:
            from tether.stores.postgres import PostgresStore
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigurationError(
                "PostgreSQL support is not installed: pip install 'tether[postgres]'"
            ) from exc
        return PostgresStore.from_url(url, clock)
    raise ConfigurationError(
        f"unknown store URL {url!r}: use memory://, sqlite:///path/to/tether.db or postgresql://…"
    )


async def open_async_store(url: str, clock: Clock | None = None, redis_url: str | None = None) -> AsyncStore:
    """The async face of the store a URL names: psycopg async on PostgreSQL; memory and SQLite run
    on a worker thread of their own (`ThreadedStore`), built on that thread. With Redis liveness
    (sync, like redis-py's client) the sync store and its Redis decorator run on that thread."""
    if redis_url is None and url.split(":", 1)[0].lower() in POSTGRES_SCHEMES:
        try:
            from tether.stores.postgres import AsyncPostgresStore
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigurationError(
                "PostgreSQL support is not installed: pip install 'tether[postgres]'"
            ) from exc
        native: AsyncStore = await AsyncPostgresStore.from_url(url, clock)
        return native
    from tether.stores.threaded import ThreadedStore

    return await ThreadedStore.open(lambda: with_liveness(open_store(url, clock), redis_url))


def with_liveness(store: Store, redis_url: str | None) -> Store:
    """The store itself keeps leases, unless a Redis URL is given: then heartbeats go to Redis and the
    store gets leases flushed every TETHER_REDIS_FLUSH_INTERVAL seconds (`tether.stores.redis.liveness`)."""
    if not redis_url:
        return store
    from tether.core.config import redis_flush_interval
    from tether.stores.redis.liveness import RedisLivenessStore

    return RedisLivenessStore(store, redis_url, flush_interval=redis_flush_interval())
