"""The store contract suite again, on the memory store with its leases and heartbeats in Redis.

`RedisLivenessStore` is a Store like any other, so it must pass the same specification: the contract
tests are imported unchanged (test_contract.py); only `store_url` and `store` differ here. The test
clock is injected into Redis's heartbeat script, as PostgreSQL's store takes it for `now()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import REDIS_URL, service_missing
from tests.contract.conftest import *  # noqa: F403  (every contract fixture; store_url and store are replaced below)
from tests.contract.conftest import front_door
from tether import ManualClock, Policies, SessionManager
from tether.stores import Store, open_store
from tether.stores.redis.liveness import RedisLivenessStore


@pytest.fixture
def store_url() -> str:
    return "memory://"


@pytest.fixture
def store(clock: ManualClock) -> Iterator[Store]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis", str(exc))
    prefix = f"tether-contract-{uuid.uuid4().hex[:12]}"
    wrapped = RedisLivenessStore(
        open_store("memory://", clock), REDIS_URL, prefix=prefix, flush_interval=3600
    )
    yield wrapped
    wrapped.close()
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["sync", "async"])
def manager(
    request: pytest.FixtureRequest, store: Store, store_url: str, policies: Policies
) -> Iterator[SessionManager]:
    """The embedded managers only: Redis liveness wraps an in-process store here, while the clients'
    server runs stores of its own (the clients run the contract suite in tests/contract)."""
    yield from front_door(request.param, store, store_url, policies)
