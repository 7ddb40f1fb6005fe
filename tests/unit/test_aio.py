"""What only the async manager can get wrong: many coroutines at once, cancellation, opening a URL
on the event loop, and the thread the sync store runs on. Everything else is the contract suite,
which runs through the async manager too (tests/contract/conftest.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from tether import ManualClock, SessionManager, State
from tether.events.bus import Event
from tether.front.aio import AsyncSessionManager
from tether.stores import open_async_store
from tether.stores.memory import MemoryStore
from tether.stores.threaded import ThreadedStore


def test_concurrent_appends_get_contiguous_seqs(store_url: str) -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        async with AsyncSessionManager(store_url, worker_id="w") as manager:
            session = await manager.create("tutor", "user-1")
            appended = await asyncio.gather(
                *(manager.checkpoint(session.session_id, "step", {"n": n}) for n in range(200))
            )
            history = await manager.checkpoints(session.session_id, limit=1000)
            return sorted(cp.seq for cp in appended), [cp.seq for cp in history]

    acknowledged, stored = asyncio.run(scenario())
    assert acknowledged == stored == list(range(1, 201))


def test_cancelled_callers_leave_the_store_whole(store_url: str) -> None:
    async def scenario() -> None:
        async with AsyncSessionManager(store_url, worker_id="w") as manager:
            session = await manager.create("tutor", "user-1")
            sid = session.session_id
            tasks = [asyncio.create_task(manager.checkpoint(sid, "step", {"n": n})) for n in range(100)]
            await asyncio.sleep(0)  # let the first calls reach the store thread
            for task in tasks[::2]:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            acknowledged = [o.seq for o in outcomes if not isinstance(o, BaseException)]
            history = await manager.checkpoints(sid, limit=1000)
            # Every acknowledged append is there, and the history has no gaps or duplicates.
            assert set(acknowledged) <= {cp.seq for cp in history}
            assert [cp.seq for cp in history] == list(range(1, len(history) + 1))
            assert len(history) >= len(acknowledged) >= 50
            # The session still takes writes and transitions after the cancellations.
            assert (await manager.checkpoint(sid, "after", {})).seq == len(history) + 1
            assert (await manager.complete(sid)).state is State.COMPLETED

    asyncio.run(scenario())


def test_a_cancelled_transition_is_all_or_nothing(store_url: str) -> None:
    async def scenario() -> None:
        async with AsyncSessionManager(store_url, worker_id="w") as manager:
            sids = [(await manager.create("tutor", f"user-{n}")).session_id for n in range(20)]
            tasks = [asyncio.create_task(manager.pause(sid)) for sid in sids]
            for task in tasks:  # each later task has run further when it is cancelled
                await asyncio.sleep(0)
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sid in sids:
                session = await manager.get(sid)
                paused = await manager.last_checkpoint(sid, "session_paused")
                assert (session.state is State.PAUSED) == (paused is not None)
                assert session.version == (2 if paused else 1)

    asyncio.run(scenario())


def test_what_the_async_manager_writes_the_sync_one_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tether.db"

    async def write() -> str:
        async with AsyncSessionManager(url, worker_id="w") as manager:
            session = await manager.create("tutor", "user-1")
            await manager.checkpoint(session.session_id, "task_received", {"task": 42})
            return session.session_id

    sid = asyncio.run(write())
    with SessionManager(url) as manager:
        last = manager.last_checkpoint(sid)
        assert last is not None and (last.seq, last.data) == (1, {"task": 42})


def test_sync_store_calls_run_off_the_event_loop_on_the_adapter_s_threads() -> None:
    threads: dict[int, set[int]] = {1: set(), 16: set()}
    loop_thread = threading.get_ident()

    class RecordingStore(MemoryStore):
        def __init__(self, record: set[int]) -> None:
            super().__init__()
            self.record = record

        def get(self, session_id: str):  # type: ignore[no-untyped-def]
            self.record.add(threading.get_ident())
            time.sleep(0.001)  # long enough for concurrent calls to overlap
            return super().get(session_id)

    async def scenario(width: int) -> None:
        manager = AsyncSessionManager(ThreadedStore(RecordingStore(threads[width]), width), worker_id="w")
        sid = (await manager.create("tutor", "user-1")).session_id
        await asyncio.gather(*(manager.get(sid) for _ in range(32)), manager.pause(sid))
        await manager.close()

    for width in threads:
        asyncio.run(scenario(width))
    assert len(threads[1]) == 1 and 1 < len(threads[16]) <= 16
    assert loop_thread not in threads[1] | threads[16]


def test_a_url_store_opens_on_first_use_and_closes_idempotently() -> None:
    async def scenario() -> None:
        manager = AsyncSessionManager("memory://", worker_id="w")
        with pytest.raises(RuntimeError, match="not open yet"):
            _ = manager.store
        await manager.create("tutor", "user-1")
        assert isinstance(manager.store, ThreadedStore)
        await manager.close()
        await manager.close()

    asyncio.run(scenario())


def test_the_injected_clock_is_read_without_a_thread_hop() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        store = await open_async_store("memory://", clock)
        clock.advance(5)
        assert await store.now() == clock.now()
        await store.close()

    asyncio.run(scenario())


def test_subscribers_see_async_changes_in_order() -> None:
    async def scenario() -> list[Event]:
        seen: list[Event] = []
        async with AsyncSessionManager("memory://", worker_id="w") as manager:
            manager.subscribe(seen.append)
            sid = (await manager.create("tutor", "user-1")).session_id
            await manager.checkpoint(sid, "step", {})
            await manager.complete(sid)
        return seen

    assert [e.kind for e in asyncio.run(scenario())] == ["created", "checkpoint", "completed"]
