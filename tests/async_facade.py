"""A blocking, SessionManager-shaped facade over an AsyncSessionManager (tests only).

Sync test functions call `manager.create(...)`; through this facade each call runs the async
manager's coroutine on a private event loop in its own thread and blocks for the result (or its
exception). So one test body checks both managers, and calls from several test threads run as
concurrent coroutines on that one loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from tether.front.aio import AsyncSessionManager

T = TypeVar("T")


class BlockingAsyncManager:
    def __init__(self, manager: AsyncSessionManager) -> None:
        self.async_manager = manager
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="async-manager", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one coroutine on the facade's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.async_manager, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute  # properties, and subscribe (callbacks run on the loop's thread)
        return self._blocking(attribute)

    def _blocking(self, method: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> T:
            return self.run(method(*args, **kwargs))

        return call

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self.run(self.async_manager.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
