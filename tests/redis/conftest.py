"""Redis fixtures: the real server (conftest.REDIS_URL), a fresh key prefix per test, deleted after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import REDIS_URL, service_missing
from tether import SessionManager
from tether.policy import Policies, Policy
from tether.stores.memory import MemoryStore
from tether.stores.redis_liveness import RedisLivenessStore

TIMEOUT = 0.4  # seconds: short, because Redis's own clock times these leases and cannot be moved


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
def inner() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def redis_store(inner: MemoryStore, redis_prefix: str) -> Iterator[RedisLivenessStore]:
    store = RedisLivenessStore(inner, REDIS_URL, prefix=redis_prefix, flush_interval=3600)
    yield store
    store.close()


@pytest.fixture
def manager(redis_store: RedisLivenessStore) -> SessionManager:
    policies = Policies(Policy(timeout=TIMEOUT, suspect_after=TIMEOUT / 2))
    return SessionManager(redis_store, policies=policies, worker_id="worker-a")
