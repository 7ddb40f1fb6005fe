"""The supervisor: expired leases are timed out per policy, exactly once, and suspects are reported."""

from __future__ import annotations

import threading

import pytest

from tether import Event, ManualClock, OnTimeout, Policies, Policy, SessionManager, State
from tether.front.supervisor import Supervisor, default_interval
from tether.stores import Store

POLICIES = Policies(
    Policy(timeout=10, suspect_after=4, max_recoveries=2),
    {"grader": Policy(timeout=30, on_timeout=OnTimeout.FAIL)},
)


@pytest.fixture
def managed(store: Store) -> SessionManager:
    return SessionManager(store, policies=POLICIES, worker_id="worker-a")


def events_of(manager: SessionManager) -> list[Event]:
    seen: list[Event] = []
    manager.subscribe(seen.append)
    return seen


def test_live_sessions_are_left_alone(managed: SessionManager, clock: ManualClock) -> None:
    s = managed.create("tutor", "u1")
    clock.advance(9.9)
    report = Supervisor(managed).sweep()
    assert not report.timed_out
    assert managed.get(s.session_id).state is State.ACTIVE


def test_expired_lease_fails_recoverably_under_recover_policy(
    managed: SessionManager, clock: ManualClock
) -> None:
    s = managed.create("tutor", "u1")
    seen = events_of(managed)
    clock.advance(10)
    report = Supervisor(managed).sweep()
    after = managed.get(s.session_id)
    assert report.timed_out == report.recoverable == (s.session_id,)
    assert after.state is State.FAILED and after.failure is not None
    assert after.failure.error == "heartbeat_timeout" and not after.failure.final
    assert [e.kind for e in seen] == ["timed_out"]
    assert seen[0].data["final"] is False


def test_fail_policy_makes_the_timeout_final(managed: SessionManager, clock: ManualClock) -> None:
    s = managed.create("grader", "u1")
    clock.advance(30)
    report = Supervisor(managed).sweep()
    assert report.final == (s.session_id,)
    assert managed.claim_next(["grader"], "worker-b") is None


def test_past_max_recoveries_the_session_stays_failed_with_its_history(
    managed: SessionManager, clock: ManualClock
) -> None:
    s = managed.create("tutor", "u1")
    supervisor = Supervisor(managed)
    for attempt in range(3):
        clock.advance(10)
        assert supervisor.sweep().timed_out == (s.session_id,)
        if attempt < 2:
            assert managed.claim_next(["tutor"], f"worker-{attempt}") is not None
    final = managed.get(s.session_id)
    assert final.state is State.FAILED and final.failure is not None and final.failure.final
    assert final.recoveries == 2
    assert managed.claim_next(["tutor"], "worker-z") is None
    clock.advance(100)
    assert not supervisor.sweep().timed_out
    names = [cp.name for cp in managed.checkpoints(s.session_id)]
    assert names == ["session_failed", "session_recovered"] * 2 + ["session_failed"]
    recovered = managed.checkpoints(s.session_id, name="session_recovered")
    assert [cp.data["new_owner"] for cp in recovered] == ["worker-0", "worker-1"]


def test_heartbeats_keep_the_lease_and_a_late_one_is_refused(
    managed: SessionManager, clock: ManualClock
) -> None:
    s = managed.create("tutor", "u1")
    supervisor = Supervisor(managed)
    for _ in range(5):
        clock.advance(8)
        managed.heartbeat(s.session_id, epoch=s.epoch)
        assert not supervisor.sweep().timed_out
    clock.advance(10)
    assert supervisor.sweep().timed_out == (s.session_id,)


def test_announced_silence_is_not_death(managed: SessionManager, clock: ManualClock) -> None:
    s = managed.create("tutor", "u1")
    managed.heartbeat(s.session_id, epoch=s.epoch, phase="llm_call", expect_silence=120)
    supervisor = Supervisor(managed)
    clock.advance(100)
    report = supervisor.sweep()
    assert not report.timed_out and not report.suspects
    clock.advance(25)  # past the announced silence, inside the grace period: suspect
    assert supervisor.sweep().suspects == (s.session_id,)
    clock.advance(2)  # 120 s of silence + the 6 s of grace between soft and hard deadline
    assert supervisor.sweep().timed_out == (s.session_id,)
    failure = managed.get(s.session_id).failure
    assert failure is not None and failure.details["phase"] == "llm_call"


def test_suspects_are_reported_once_per_deadline(managed: SessionManager, clock: ManualClock) -> None:
    s = managed.create("tutor", "u1")
    seen = events_of(managed)
    supervisor = Supervisor(managed)
    clock.advance(5)
    assert supervisor.sweep().suspects == (s.session_id,)
    assert supervisor.sweep().suspects == ()
    managed.heartbeat(s.session_id, epoch=s.epoch)
    clock.advance(5)
    assert supervisor.sweep().suspects == (s.session_id,)
    assert [e.kind for e in seen if e.kind == "suspect"] == ["suspect", "suspect"]


def test_concurrent_supervisors_never_double_apply(managed: SessionManager, clock: ManualClock) -> None:
    ids = {managed.create("tutor", f"u{i}").session_id for i in range(60)}
    clock.advance(10)
    supervisors = [Supervisor(SessionManager(managed.store, policies=POLICIES)) for _ in range(4)]
    start = threading.Barrier(len(supervisors))
    reports = []

    def sweep(supervisor: Supervisor) -> None:
        start.wait()
        reports.append(supervisor.sweep())

    threads = [threading.Thread(target=sweep, args=(s,)) for s in supervisors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    timed_out = [sid for r in reports for sid in r.timed_out]
    assert sorted(timed_out) == sorted(ids)
    for sid in ids:
        assert len(managed.checkpoints(sid, name="session_failed")) == 1


def test_supervise_runs_in_the_background_until_stopped(managed: SessionManager, clock: ManualClock) -> None:
    s = managed.create("tutor", "u1")
    clock.advance(10)
    running = managed.supervise(interval=0.01)
    try:
        for _ in range(500):
            if managed.get(s.session_id).state is State.FAILED:
                break
            threading.Event().wait(0.01)
    finally:
        running.stop()
    assert managed.get(s.session_id).state is State.FAILED
    assert not running.running and running.sweeps >= 1


def test_default_interval_is_a_quarter_of_the_shortest_timeout() -> None:
    assert default_interval(POLICIES) == 2.5
    assert default_interval(Policies(Policy(timeout=0.1))) == 0.05
