"""The API served from this process: uvicorn on a thread, on a free loopback port, around a manager the
test built. For tests whose server must share their ManualClock or their `store` object (a
`tether serve` subprocess keeps both to itself); clients reach it over real HTTP all the same.

with served(AsyncSessionManager(store, clock=clock)) as url:
    Client(url).create("tutor", "alice")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tests.live_server import free_port
from tether.front.aio import AsyncSessionManager
from tether.server.app import create_app
from tether.server.settings import ServerSettings

START_TIMEOUT = 30.0


@contextmanager
def served(manager: AsyncSessionManager, store_url: str, *, supervise: bool = False) -> Iterator[str]:
    """Serve `manager` (opened, and closed at the end, by the app) and yield the base URL. No
    supervisor by default: a test that moves the clock decides when a lease is timed out."""
    settings = ServerSettings(store_url=store_url, supervise=supervise)
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, manager), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"tether-in-process-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the in-process server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
