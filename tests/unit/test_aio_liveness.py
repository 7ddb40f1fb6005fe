"""The asyncio handle, supervisor and worker loop: the same decisions as the thread versions
(tests/unit/test_handle.py, test_supervisor.py), with heartbeats and sweeps as tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from tether import Checkpoint, LeaseLost, ManualClock, Policies, Policy, State
from tether.front.aio import AsyncSessionManager
from tether.front.handle import AsyncSessionHandle
from tether.stores import Store

POLICIES = Policies(Policy(timeout=10, suspect_after=4, max_recoveries=5))
T = TypeVar("T")


class AgentError(RuntimeError):
    pass


def run(store: Store, scenario: Callable[[AsyncSessionManager], Awaitable[T]]) -> T:
    """Run `scenario(manager)` on a fresh event loop with an async manager over the test store."""

    async def main() -> T:
        manager = AsyncSessionManager(store, policies=POLICIES, worker_id="worker-a")
        try:
            return await scenario(manager)
        finally:
            await manager.close()

    return asyncio.run(main())


async def names(manager: AsyncSessionManager, session_id: str) -> list[str]:
    return [cp.name for cp in await manager.checkpoints(session_id)]


def test_normal_exit_completes_and_an_exception_fails(store: Store) -> None:
    async def scenario(manager: AsyncSessionManager) -> None:
        async with manager.open("tutor", "u1", context={"lesson": 3}) as s:
            await s.checkpoint("step", {"n": 1})
        assert (await manager.get(s.session_id)).state is State.COMPLETED
        assert await names(manager, s.session_id) == ["step", "session_completed"]
        with pytest.raises(AgentError):
            async with manager.open("tutor", "u1") as s2:
                raise AgentError("model refused")
        failure = (await manager.get(s2.session_id)).failure
        assert failure is not None and failure.error == "model refused" and not failure.final
        assert failure.details == {"type": f"{__name__}.AgentError"}

    run(store, scenario)


def test_writes_after_a_takeover_raise_lease_lost(store: Store, clock: ManualClock) -> None:
    async def scenario(manager: AsyncSessionManager) -> None:
        rival = AsyncSessionManager(store, policies=POLICIES, worker_id="worker-b")
        with pytest.raises(LeaseLost):
            async with manager.open("tutor", "u1") as s:
                await s.checkpoint("step", {"n": 1})
                clock.advance(10)
                assert (await rival.claim(s.session_id)).epoch == 2
                with pytest.raises(LeaseLost):
                    await s.checkpoint("step", {"n": 2})
                assert s.lost is not None
        after = await manager.get(s.session_id)
        assert after.state is State.ACTIVE and after.owner == "worker-b"
        assert await names(manager, s.session_id) == ["step", "session_recovered"]

    run(store, scenario)


def test_background_heartbeat_task_notices_an_expired_lease(store: Store, clock: ManualClock) -> None:
    async def scenario(manager: AsyncSessionManager) -> None:
        start = lambda: manager.create("tutor", "u1")  # noqa: E731
        with pytest.raises(LeaseLost):
            async with AsyncSessionHandle(manager, start, heartbeat_every=0.005) as s:
                clock.advance(11)
                for _ in range(400):
                    if s.lost is not None:
                        break
                    await asyncio.sleep(0.005)
                assert s.lost is not None and "expired" in s.lost.reason
                with pytest.raises(LeaseLost):
                    await s.checkpoint("zombie")
        assert "zombie" not in await names(manager, s.session_id)

    run(store, scenario)


def test_heartbeat_task_keeps_a_short_lease_alive_under_the_supervisor_task(store_url: str) -> None:
    async def scenario() -> None:
        policies = Policies(Policy(timeout=0.3))
        async with AsyncSessionManager(store_url, policies=policies, worker_id="rt") as manager:
            async with manager.supervise(interval=0.02) as supervisor, manager.open("tutor", "u1") as s:
                for i in range(8):
                    await asyncio.sleep(0.1)
                    await s.checkpoint("step", {"i": i})
                assert supervisor.sweeps > 10 and supervisor.running
            assert not supervisor.running
            assert (await manager.get(s.session_id)).state is State.COMPLETED

    asyncio.run(scenario())


def test_supervisor_sweep_times_out_an_expired_lease_once(store: Store, clock: ManualClock) -> None:
    async def scenario(manager: AsyncSessionManager) -> None:
        session = await manager.create("tutor", "u1")
        clock.advance(11)
        async with manager.supervise(interval=60) as supervisor:
            while supervisor.last_report is None:
                await asyncio.sleep(0.001)
            assert supervisor.last_report.recoverable == (session.session_id,)
        failure = (await manager.get(session.session_id)).failure
        assert failure is not None and failure.error == "heartbeat_timeout"

    run(store, scenario)


def test_resume_or_create_and_the_worker_loop_continue_from_the_last_checkpoint(
    store: Store, clock: ManualClock
) -> None:
    async def scenario(manager: AsyncSessionManager) -> None:
        crashed = await manager.create("tutor", "u1")
        await manager.checkpoint(crashed.session_id, "step", {"n": 7})
        clock.advance(11)
        async with manager.resume_or_create("tutor", "u1") as s:
            assert s.session_id == crashed.session_id and s.epoch == 2
            assert s.resumed_from is not None and s.resumed_from.data == {"n": 7}
            await s.fail("again")
        seen: list[Checkpoint | None] = []
        stop = asyncio.Event()

        async def handler(handle: AsyncSessionHandle, last: Checkpoint | None) -> None:
            seen.append(last)
            stop.set()

        assert await manager.work(["tutor"], handler, stop_event=stop, poll_interval=0.01) == 1
        assert [cp.data if cp else None for cp in seen] == [{"n": 7}]
        assert (await manager.get(crashed.session_id)).state is State.COMPLETED

    run(store, scenario)
