"""Waiting for asyncio as the thread-based doors wait on a `threading.Event`."""

from __future__ import annotations

import asyncio
import contextlib


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """`threading.Event.wait(timeout)` for asyncio: True once `stop` is set, False on timeout."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
