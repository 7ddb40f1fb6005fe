"""The session handle: heartbeats in the background, ends with the block, stops writing once replaced."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from tether import (
    Checkpoint,
    LeaseLost,
    ManualClock,
    NotClaimable,
    Policies,
    Policy,
    SessionManager,
    State,
    StoreUnavailable,
)
from tether.core.model import Session
from tether.front.handle import SessionHandle
from tether.stores import Store, open_store
from tether.stores.memory import MemoryStore

POLICIES = Policies(Policy(timeout=10, suspect_after=4, max_recoveries=5))


class AgentError(RuntimeError):
    pass


@pytest.fixture
def managed(store: Store) -> SessionManager:
    return SessionManager(store, policies=POLICIES, worker_id="worker-a")


@pytest.fixture
def rival(store: Store) -> SessionManager:
    return SessionManager(store, policies=POLICIES, worker_id="worker-b")


@pytest.fixture
def realtime(store_url: str) -> Iterator[SessionManager]:
    """On the wall clock with sub-second leases, for tests that need the heartbeat thread to run."""
    store = open_store(store_url)
    yield SessionManager(store, policies=Policies(Policy(timeout=0.3)), worker_id="worker-rt")
    store.close()


def names(manager: SessionManager, session_id: str) -> list[str]:
    return [cp.name for cp in manager.checkpoints(session_id)]


def test_normal_exit_completes(managed: SessionManager) -> None:
    with managed.open("tutor", "u1", context={"lesson": 3}) as s:
        s.checkpoint("step", {"n": 1})
    after = managed.get(s.session_id)
    assert after.state is State.COMPLETED and after.context == {"lesson": 3}
    assert names(managed, s.session_id) == ["step", "session_completed"]


def test_early_complete_keeps_its_result(managed: SessionManager) -> None:
    with managed.open("tutor", "u1") as s:
        s.complete({"answer": 42})
    last = managed.last_checkpoint(s.session_id)
    assert last is not None and last.data == {"result": {"answer": 42}}
    assert names(managed, s.session_id) == ["session_completed"]


def test_exception_fails_with_message_and_type_and_is_reraised(managed: SessionManager) -> None:
    with pytest.raises(AgentError, match="model refused"), managed.open("tutor", "u1") as s:
        s.checkpoint("step")
        raise AgentError("model refused")
    failure = managed.get(s.session_id).failure
    assert failure is not None and failure.error == "model refused" and not failure.final
    assert failure.details == {"type": f"{__name__}.AgentError"}
    with pytest.raises(KeyError), managed.open("tutor", "u1") as s2:
        raise KeyError("k")
    failure = managed.get(s2.session_id).failure
    assert failure is not None and failure.details == {"type": "KeyError"}


def test_writes_after_a_takeover_raise_lease_lost(
    managed: SessionManager, rival: SessionManager, clock: ManualClock
) -> None:
    handle = managed.open("tutor", "u1")
    with pytest.raises(LeaseLost), handle as s:
        s.checkpoint("step", {"n": 1})
        clock.advance(10)
        assert rival.claim(s.session_id).epoch == 2
        with pytest.raises(LeaseLost):
            s.checkpoint("step", {"n": 2})
        assert s.lost is not None
        with pytest.raises(LeaseLost):
            s.heartbeat(phase="again")
    # leaving the block normally tried to complete: LeaseLost, and nothing written
    after = managed.get(s.session_id)
    assert after.state is State.ACTIVE and after.owner == "worker-b"
    assert names(managed, s.session_id) == ["step", "session_recovered"]


def test_an_error_after_losing_the_lease_does_not_fail_the_new_owners_session(
    managed: SessionManager, rival: SessionManager, clock: ManualClock
) -> None:
    with pytest.raises(AgentError), managed.open("tutor", "u1") as s:
        clock.advance(10)
        rival.claim(s.session_id)
        with pytest.raises(LeaseLost):
            s.checkpoint("late")
        raise AgentError("after the takeover")
    assert managed.get(s.session_id).state is State.ACTIVE


def test_background_heartbeat_notices_an_expired_lease(managed: SessionManager, clock: ManualClock) -> None:
    start = lambda: managed.create("tutor", "u1")  # noqa: E731
    with pytest.raises(LeaseLost), SessionHandle(managed, start, heartbeat_every=0.005) as s:
        clock.advance(11)
        for _ in range(400):
            if s.lost is not None:
                break
            time.sleep(0.005)
        assert s.lost is not None and "expired" in s.lost.reason
        with pytest.raises(LeaseLost):
            s.checkpoint("zombie")
    assert "zombie" not in names(managed, s.session_id)


def test_background_heartbeats_keep_a_short_lease_alive(realtime: SessionManager) -> None:
    with realtime.supervise(interval=0.02) as supervisor, realtime.open("tutor", "u1") as s:
        for i in range(8):
            time.sleep(0.1)
            s.checkpoint("step", {"i": i})
        assert supervisor.sweeps > 10
    assert realtime.get(s.session_id).state is State.COMPLETED


def test_phase_sticks_for_background_beats(realtime: SessionManager) -> None:
    with realtime.open("tutor", "u1") as s:
        s.heartbeat(phase="llm_call", expect_silence=5)
        time.sleep(0.25)  # at least one background beat (every 0.1 s)
        assert realtime.get(s.session_id).phase == "llm_call"


def test_open_with_the_id_of_a_dead_session_takes_it_over(
    managed: SessionManager, rival: SessionManager, clock: ManualClock
) -> None:
    dead = managed.create("tutor", "u1", session_id="lesson-7")
    managed.checkpoint(dead.session_id, "step", {"n": 3})
    with pytest.raises(NotClaimable), rival.open("tutor", "u1", session_id="lesson-7"):
        pass
    clock.advance(10)
    with rival.open("tutor", "u1", session_id="lesson-7") as s:
        assert s.epoch == 2 and s.session.owner == "worker-b"
        assert s.resumed_from is not None and s.resumed_from.data == {"n": 3}
    assert managed.get("lesson-7").state is State.COMPLETED


def test_resume_or_create_takes_over_only_this_users_session(
    managed: SessionManager, rival: SessionManager, clock: ManualClock
) -> None:
    mine = managed.create("tutor", "u1")
    managed.checkpoint(mine.session_id, "step", {"n": 1})
    managed.create("tutor", "u2")
    managed.create("grader", "u1")
    clock.advance(10)
    with rival.resume_or_create("tutor", "u1") as s:
        assert s.session_id == mine.session_id
        assert s.resumed_from is not None and s.resumed_from.data == {"n": 1}
    with rival.resume_or_create("tutor", "u1") as fresh:
        assert fresh.session_id != mine.session_id and fresh.resumed_from is None


def test_resume_or_create_retries_a_recoverably_failed_session(managed: SessionManager) -> None:
    with pytest.raises(AgentError), managed.resume_or_create("tutor", "u1") as first:
        first.checkpoint("halfway", {"done": 50})
        raise AgentError("flaky tool")
    with managed.resume_or_create("tutor", "u1") as second:
        assert second.session_id == first.session_id
        assert second.resumed_from is not None and second.resumed_from.name == "halfway"


def test_worker_loop_hands_over_the_last_checkpoint(
    managed: SessionManager, rival: SessionManager, clock: ManualClock
) -> None:
    for user in ("u1", "u2", "u3"):
        s = managed.create("tutor", user)
        managed.checkpoint(s.session_id, "step", {"user": user})
    managed.create("grader", "u4")
    clock.advance(10)
    stop = threading.Event()
    seen: list[Checkpoint | None] = []

    def handler(handle: SessionHandle, last: Checkpoint | None) -> None:
        seen.append(last)
        try:
            if last is not None and last.data["user"] == "u2":
                raise AgentError("handler bug")  # the session fails (recoverably: it may come back)
        finally:
            if {cp.data["user"] for cp in seen if cp is not None} == {"u1", "u2", "u3"}:
                stop.set()

    assert rival.work(["tutor"], handler, stop_event=stop, poll_interval=0.01) == len(seen)
    assert {cp.data["user"] for cp in seen if cp is not None} == {"u1", "u2", "u3"}
    states = {s.user_id: s.state for s in managed.list(agent_type="tutor")}
    assert states == {"u1": State.COMPLETED, "u2": State.FAILED, "u3": State.COMPLETED}


def test_handle_outside_its_block_has_no_session(managed: SessionManager) -> None:
    handle = managed.open("tutor", "u1")
    with pytest.raises(RuntimeError):
        handle.checkpoint("too early")


class FlakyStore(MemoryStore):
    """claimable() fails a given number of times, then lists a deleted session before the real ones."""

    def __init__(self, clock: ManualClock, failures: int) -> None:
        super().__init__(clock)
        self.failures = failures

    def claimable(self, agent_types: frozenset[str] | None, limit: int) -> list[Session]:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("connection reset")
        ghost = replace(next(iter(super().claimable(agent_types, limit))), session_id="deleted-meanwhile")
        return [ghost, *super().claimable(agent_types, limit)]


def test_worker_loop_outlives_an_unreachable_store_and_deleted_candidates(clock: ManualClock) -> None:
    store = FlakyStore(clock, failures=2)
    owner = SessionManager(store, policies=POLICIES, worker_id="worker-a")
    dead = owner.create("tutor", "u1").session_id
    clock.advance(10)
    stop = threading.Event()

    def handler(handle: SessionHandle, last: Checkpoint | None) -> None:
        stop.set()

    worker = SessionManager(store, policies=POLICIES, worker_id="worker-b")
    assert worker.work(["tutor"], handler, stop_event=stop, poll_interval=0.01) == 1
    assert store.failures == 0 and owner.get(dead).state is State.COMPLETED
