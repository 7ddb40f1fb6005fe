"""Redis fixtures: the real server (conftest.REDIS_URL), a fresh key prefix per test, deleted after.

The durable store runs on the test clock, which the Redis store then also uses to time heartbeats
(as the PostgreSQL store does for now()), so these tests move time instead of sleeping; the tests
of the Redis server's own clock build their store without one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import REDIS_URL, service_missing
from tether import ManualClock, SessionManager
from tether.core.policy import Policies, Policy
from tether.stores.memory import MemoryStore
from tether.stores.redis.liveness import RedisLivenessStore

TIMEOUT = 10.0  # seconds of silence before a lease expires (moved past with the test clock)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis", str(exc))
    prefix = f"tether-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def inner(clock: ManualClock) -> MemoryStore:
    return MemoryStore(clock)


@pytest.fixture
def redis_store(inner: MemoryStore, redis_prefix: str) -> Iterator[RedisLivenessStore]:
    store = RedisLivenessStore(inner, REDIS_URL, prefix=redis_prefix, flush_interval=3600)
    yield store
    store.close()


@pytest.fixture
def manager(redis_store: RedisLivenessStore) -> SessionManager:
    policies = Policies(Policy(timeout=TIMEOUT, suspect_after=TIMEOUT / 2))
    return SessionManager(redis_store, policies=policies, worker_id="worker-a")
