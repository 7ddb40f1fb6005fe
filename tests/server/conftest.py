"""A live `tether serve` per test module (SQLite behind it), with API keys for two users and an admin.

Tests isolate themselves by the users and ids they create, so one server serves a whole module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.live_server import LiveServer, live_server


@dataclass
class Keys:
    alice: str
    bob: str
    admin: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    store_url = f"sqlite:///{tmp_path_factory.mktemp('serve')}/tether.db"
    with live_server(store_url) as running:
        yield running


@pytest.fixture(scope="module")
def keys(server: LiveServer) -> Keys:
    return Keys(server.key("alice"), server.key("bob"), server.key("root", admin=True))


def client_for(server: LiveServer, key: str | None) -> httpx.Client:
    headers = {} if key is None else LiveServer.auth(key)
    return httpx.Client(base_url=server.url, headers=headers, timeout=10)


@pytest.fixture
def alice(server: LiveServer, keys: Keys) -> Iterator[httpx.Client]:
    with client_for(server, keys.alice) as c:
        yield c


@pytest.fixture
def bob(server: LiveServer, keys: Keys) -> Iterator[httpx.Client]:
    with client_for(server, keys.bob) as c:
        yield c


@pytest.fixture
def admin(server: LiveServer, keys: Keys) -> Iterator[httpx.Client]:
    with client_for(server, keys.admin) as c:
        yield c
