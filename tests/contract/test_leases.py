"""Heartbeats, leases, liveness, fencing and takeover."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tether import (
    Beat,
    ConflictError,
    InvalidTransition,
    LeaseLost,
    Liveness,
    ManualClock,
    NotClaimable,
    NotFound,
    Session,
    SessionManager,
    State,
)

from .conftest import MakeSession, Unchanged

LEASE = timedelta(seconds=60)
SUSPECT = timedelta(seconds=30)


def _taken_over(manager: SessionManager, clock: ManualClock, session: Session) -> Session:
    """Let the lease expire and have worker-b claim the session (epoch 1 → 2)."""
    clock.advance(61)
    return manager.claim(session.session_id, "worker-b")


# -- heartbeats ------------------------------------------------------------------------------
def test_heartbeat_extends_the_lease_without_bumping_the_version(
    manager: SessionManager, clock: ManualClock
) -> None:
    session = manager.create("tutor", "user-1")
    clock.advance(45)
    manager.heartbeat(session.session_id, epoch=1, phase="thinking")
    beaten = manager.get(session.session_id)
    now = clock.now()
    assert (beaten.last_heartbeat, beaten.suspect_at, beaten.lease_expires_at) == (
        now,
        now + SUSPECT,
        now + LEASE,
    )
    assert (beaten.phase, beaten.version, beaten.last_seq) == ("thinking", session.version, 0)


def test_heartbeat_without_epoch_is_accepted_from_the_owner(
    manager: SessionManager, clock: ManualClock
) -> None:
    sid = manager.create("tutor", "user-1").session_id
    clock.advance(59)
    manager.heartbeat(sid)
    assert manager.get(sid).lease_expires_at == clock.now() + LEASE


@pytest.mark.parametrize("epoch", [None, 1])
def test_heartbeat_after_the_lease_expired_is_lease_lost(
    manager: SessionManager, clock: ManualClock, unchanged: Unchanged, epoch: int | None
) -> None:
    sid = manager.create("tutor", "user-1").session_id
    clock.advance(60)
    with unchanged(sid), pytest.raises(LeaseLost) as caught:
        manager.heartbeat(sid, epoch=epoch)
    assert caught.value.current_epoch == 1


def test_heartbeat_on_a_paused_session_is_accepted_even_after_the_lease(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    session = in_state(State.PAUSED)
    clock.advance(3600)
    manager.heartbeat(session.session_id, epoch=1)
    beaten = manager.get(session.session_id)
    assert beaten.state is State.PAUSED
    assert (beaten.last_heartbeat, beaten.lease_expires_at) == (clock.now(), clock.now() + LEASE)
    assert beaten.version == session.version


@pytest.mark.parametrize("state", [State.COMPLETED, State.FAILED])
def test_heartbeat_on_an_ended_session_is_an_invalid_transition(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged, state: State
) -> None:
    sid = in_state(state).session_id
    with unchanged(sid), pytest.raises(InvalidTransition) as caught:
        manager.heartbeat(sid)
    assert caught.value.action == "heartbeat"


def test_expect_silence_extends_only_that_lease(manager: SessionManager, clock: ManualClock) -> None:
    sid = manager.create("tutor", "user-1").session_id
    manager.heartbeat(sid, phase="long_tool_call", expect_silence=600)
    quiet = manager.get(sid)
    start = clock.now()
    assert quiet.phase == "long_tool_call"
    assert quiet.suspect_at == start + timedelta(seconds=600)
    assert quiet.lease_expires_at == start + timedelta(seconds=630)
    clock.advance(500)
    assert manager.get(sid).liveness(clock.now()) is Liveness.HEALTHY
    manager.heartbeat(sid)
    normal = manager.get(sid)
    assert (normal.phase, normal.suspect_at, normal.lease_expires_at) == (
        None,
        clock.now() + SUSPECT,
        clock.now() + LEASE,
    )


def test_heartbeat_does_not_roll_back_a_concurrent_transition(
    manager: SessionManager, clock: ManualClock
) -> None:
    sid = manager.create("tutor", "user-1").session_id
    clock.advance(10)
    manager.heartbeat(sid)
    clock.advance(10)
    manager.update(sid, context={"k": 1})
    assert manager.get(sid).last_heartbeat == clock.now() - timedelta(seconds=10)
    assert manager.get(sid).context == {"k": 1}


def test_batched_heartbeats_report_one_result_per_beat(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    live = manager.create("tutor", "user-1").session_id
    done = in_state(State.COMPLETED).session_id
    results = manager.heartbeats([Beat(live, 1), Beat("missing"), Beat(live, 7), Beat(done)])
    assert results[0] is None
    assert isinstance(results[1], NotFound)
    assert isinstance(results[2], LeaseLost) and results[2].epoch == 7
    assert isinstance(results[3], InvalidTransition)
    assert manager.get(live).last_heartbeat == clock.now()


# -- liveness --------------------------------------------------------------------------------
def test_liveness_goes_healthy_suspect_dead_as_the_clock_moves(
    manager: SessionManager, clock: ManualClock
) -> None:
    sid = manager.create("tutor", "user-1").session_id
    observed = []
    for step in (0, 29.999, 0.001, 29.998, 0.002):
        clock.advance(step)
        observed.append(manager.get(sid).liveness(clock.now()))
    assert observed == [
        Liveness.HEALTHY,
        Liveness.HEALTHY,
        Liveness.SUSPECT,
        Liveness.SUSPECT,
        Liveness.DEAD,
    ]


def test_a_heartbeat_makes_a_suspect_session_healthy_again(
    manager: SessionManager, clock: ManualClock
) -> None:
    sid = manager.create("tutor", "user-1").session_id
    clock.advance(45)
    assert manager.get(sid).liveness(clock.now()) is Liveness.SUSPECT
    manager.heartbeat(sid)
    assert manager.get(sid).liveness(clock.now()) is Liveness.HEALTHY


@pytest.mark.parametrize("state", [State.COMPLETED, State.FAILED])
def test_ended_sessions_have_no_liveness(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock, state: State
) -> None:
    sid = in_state(state).session_id
    clock.advance(1000)
    assert manager.get(sid).liveness(clock.now()) is None


# -- fencing ---------------------------------------------------------------------------------
OWNER_WRITES: dict[str, Callable[[SessionManager, str, int], Any]] = {
    "checkpoint": lambda m, sid, epoch: m.checkpoint(sid, "zombie", {"x": 1}, epoch=epoch),
    "heartbeat": lambda m, sid, epoch: m.heartbeat(sid, epoch=epoch),
    "pause": lambda m, sid, epoch: m.pause(sid, epoch=epoch),
    "complete": lambda m, sid, epoch: m.complete(sid, {"zombie": True}, epoch=epoch),
    "fail": lambda m, sid, epoch: m.fail(sid, "zombie", epoch=epoch),
    "update": lambda m, sid, epoch: m.update(sid, context={"zombie": True}, epoch=epoch),
}


@pytest.mark.parametrize("write", sorted(OWNER_WRITES))
def test_stale_epoch_write_is_rejected(
    manager: SessionManager,
    in_state: MakeSession,
    clock: ManualClock,
    unchanged: Unchanged,
    write: str,
) -> None:
    taken = _taken_over(manager, clock, in_state())
    assert taken.epoch == 2
    with unchanged(taken.session_id), pytest.raises(LeaseLost) as caught:
        OWNER_WRITES[write](manager, taken.session_id, 1)
    assert (caught.value.session_id, caught.value.epoch, caught.value.current_epoch) == (
        taken.session_id,
        1,
        2,
    )
    assert isinstance(caught.value, ConflictError)


def test_stale_epoch_resume_is_rejected(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock, unchanged: Unchanged
) -> None:
    taken = _taken_over(manager, clock, in_state())
    manager.pause(taken.session_id, epoch=2)
    with unchanged(taken.session_id), pytest.raises(LeaseLost):
        manager.resume(taken.session_id, epoch=1)


@pytest.mark.parametrize("write", sorted(OWNER_WRITES))
def test_current_epoch_write_is_accepted(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock, write: str
) -> None:
    taken = _taken_over(manager, clock, in_state())
    OWNER_WRITES[write](manager, taken.session_id, 2)


def test_an_epoch_that_never_existed_is_rejected(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged
) -> None:
    sid = in_state().session_id
    with unchanged(sid), pytest.raises(LeaseLost):
        manager.checkpoint(sid, "step", epoch=5)


# -- claims ----------------------------------------------------------------------------------
def test_claim_of_a_live_lease_is_not_claimable(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock, unchanged: Unchanged
) -> None:
    sid = in_state().session_id
    clock.advance(59.999)
    with unchanged(sid), pytest.raises(NotClaimable) as caught:
        manager.claim(sid, "worker-b")
    assert caught.value.session_id == sid


def test_claim_after_lease_expiry_bumps_the_epoch_and_records_the_recovery(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    session = in_state()
    clock.advance(60)
    claimed = manager.claim(session.session_id, "worker-b")
    now = clock.now()
    assert (claimed.state, claimed.owner, claimed.epoch, claimed.recoveries) == (
        State.ACTIVE,
        "worker-b",
        2,
        1,
    )
    assert claimed.version == session.version + 1
    assert (claimed.last_heartbeat, claimed.lease_expires_at) == (now, now + LEASE)
    last = manager.last_checkpoint(session.session_id)
    assert last is not None and (last.seq, last.name) == (3, "session_recovered")
    assert last.data == {
        "previous_owner": "worker-a",
        "previous_epoch": 1,
        "new_owner": "worker-b",
        "epoch": 2,
        "reason": "heartbeat_timeout",
        "resumed_from_seq": 2,
        "recovery": 1,
    }
    resume_point = manager.checkpoints(session.session_id, after_seq=last.data["resumed_from_seq"] - 1)[0]
    assert (resume_point.name, resume_point.data) == ("step", {"n": 1})


def test_old_owner_writes_fail_after_a_claim_and_new_owner_continues(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    taken = _taken_over(manager, clock, in_state())
    with pytest.raises(LeaseLost):
        manager.checkpoint(taken.session_id, "zombie", epoch=1)
    cp = manager.checkpoint(taken.session_id, "continued", epoch=2)
    assert cp.seq == taken.last_seq + 1
    assert manager.complete(taken.session_id, epoch=2).state is State.COMPLETED


def test_claim_of_a_recoverably_failed_session(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    sid = in_state().session_id
    manager.fail(sid, "tool crashed")
    clock.advance(1)
    claimed = manager.claim(sid, "worker-b")
    assert (claimed.state, claimed.epoch, claimed.failure, claimed.ended_at) == (State.ACTIVE, 2, None, None)
    last = manager.last_checkpoint(sid)
    assert last is not None and last.data["reason"] == "tool crashed"
    assert last.data["resumed_from_seq"] == 3


@pytest.mark.parametrize("state", [State.COMPLETED, State.PAUSED])
def test_completed_and_paused_sessions_are_not_claimable(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock, unchanged: Unchanged, state: State
) -> None:
    sid = in_state(state).session_id
    clock.advance(3600)
    with unchanged(sid), pytest.raises(NotClaimable):
        manager.claim(sid, "worker-b")


def test_final_failure_is_not_claimable(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged
) -> None:
    sid = in_state().session_id
    manager.fail(sid, "fatal", final=True)
    with unchanged(sid), pytest.raises(NotClaimable):
        manager.claim(sid, "worker-b")


def test_max_recoveries_makes_the_failure_final(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock, unchanged: Unchanged
) -> None:
    sid = in_state(agent_type="fragile").session_id  # one recovery allowed
    first = manager.fail(sid, "crash-1")
    assert first.failure is not None and not first.failure.final
    manager.claim(sid, "worker-b")
    second = manager.fail(sid, "crash-2", epoch=2)
    assert second.failure is not None and second.failure.final
    with unchanged(sid), pytest.raises(NotClaimable):
        manager.claim(sid, "worker-c")


def test_expired_session_out_of_recoveries_is_not_claimable(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock, unchanged: Unchanged
) -> None:
    sid = in_state(agent_type="fragile").session_id
    clock.advance(61)
    manager.claim(sid, "worker-b")
    clock.advance(61)
    with unchanged(sid), pytest.raises(NotClaimable):
        manager.claim(sid, "worker-c")


def test_a_policy_without_recovery_fails_for_good(manager: SessionManager, in_state: MakeSession) -> None:
    failed = manager.fail(in_state(agent_type="strict").session_id, "crash")
    assert failed.failure is not None and failed.failure.final


def test_a_second_claim_finds_the_lease_alive(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    taken = _taken_over(manager, clock, in_state())
    with pytest.raises(NotClaimable):
        manager.claim(taken.session_id, "worker-c")
    assert manager.get(taken.session_id).owner == "worker-b"


def test_exactly_one_of_many_concurrent_claimers_wins(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    sid = in_state().session_id
    clock.advance(61)
    winners: list[str] = []
    losers: list[BaseException] = []
    barrier = threading.Barrier(8)

    def claim(worker: str) -> None:
        barrier.wait()
        try:
            manager.claim(sid, worker)
            winners.append(worker)
        except BaseException as exc:  # every loser must lose with a ConflictError
            losers.append(exc)

    threads = [threading.Thread(target=claim, args=(f"worker-{n}",)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert len(losers) == 7 and all(isinstance(e, ConflictError) for e in losers)
    session = manager.get(sid)
    assert (session.owner, session.epoch) == (winners[0], 2)
    assert [cp.name for cp in manager.checkpoints(sid)].count("session_recovered") == 1


def test_claim_next_takes_only_the_requested_agent_types(manager: SessionManager, clock: ManualClock) -> None:
    tutor = manager.create("tutor", "user-1").session_id
    grader = manager.create("grader", "user-1").session_id
    clock.advance(61)
    manager.create("grader", "user-2")  # alive: not claimable
    claimed = manager.claim_next(["grader"], "worker-b")
    assert claimed is not None and (claimed.session_id, claimed.owner) == (grader, "worker-b")
    assert manager.claim_next(["grader", "judge"], "worker-b") is None
    assert manager.get(tutor).owner == "worker-a"
    other = manager.claim_next(None, "worker-c")
    assert other is not None and other.session_id == tutor


def test_claim_next_takes_recoverable_failures_but_not_final_ones(manager: SessionManager) -> None:
    final = manager.create("tutor", "user-1").session_id
    manager.fail(final, "fatal", final=True)
    recoverable = manager.create("tutor", "user-1").session_id
    manager.fail(recoverable, "crash")
    claimed = manager.claim_next(["tutor"], "worker-b")
    assert claimed is not None and claimed.session_id == recoverable
    assert manager.claim_next(["tutor"], "worker-b") is None


def test_claim_next_takes_the_longest_waiting_first(manager: SessionManager, clock: ManualClock) -> None:
    older = manager.create("tutor", "user-1").session_id
    clock.advance(10)
    newer = manager.create("tutor", "user-1").session_id
    clock.advance(100)
    first, second = manager.claim_next(["tutor"], "b"), manager.claim_next(["tutor"], "c")
    assert first is not None and second is not None
    assert (first.session_id, second.session_id) == (older, newer)


def test_claim_next_with_nothing_claimable_returns_none(manager: SessionManager) -> None:
    manager.create("tutor", "user-1")
    assert manager.claim_next(["tutor"], "worker-b") is None
    assert manager.claim_next(None, "worker-b") is None


def test_an_owner_may_still_checkpoint_after_its_lease_expired_until_someone_claims(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    sid = in_state().session_id
    clock.advance(120)
    late = manager.checkpoint(sid, "late_but_acknowledged", {"n": 3}, epoch=1)
    claimed = manager.claim(sid, "worker-b")
    recovered = manager.last_checkpoint(sid)
    assert recovered is not None and recovered.data["resumed_from_seq"] == late.seq
    assert manager.checkpoints(sid, after_seq=late.seq - 1)[0] == late
    assert claimed.epoch == 2


def test_a_timed_out_session_refuses_the_old_owner_and_can_be_claimed(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    sid = in_state().session_id
    clock.advance(61)
    timed_out = manager.time_out(sid)
    assert timed_out.state is State.FAILED
    assert timed_out.failure is not None and timed_out.failure.error == "heartbeat_timeout"
    with pytest.raises(InvalidTransition):
        manager.checkpoint(sid, "zombie", epoch=1)
    claimed = manager.claim(sid, "worker-b")
    assert (claimed.state, claimed.epoch) == (State.ACTIVE, 2)
    with pytest.raises(LeaseLost):
        manager.checkpoint(sid, "zombie", epoch=1)


def test_time_out_of_a_live_lease_is_refused(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock, unchanged: Unchanged
) -> None:
    sid = in_state().session_id
    clock.advance(59)
    with unchanged(sid), pytest.raises(NotClaimable):
        manager.time_out(sid)


@pytest.mark.parametrize("end", ["complete", "fail", "pause", "update"])
def test_a_transition_keeps_the_last_heartbeat_and_phase(
    manager: SessionManager,
    clock: ManualClock,
    end: str,
) -> None:
    sid = manager.create("tutor", "user-1").session_id
    clock.advance(10)
    manager.heartbeat(sid, phase="tool_call")
    beat_at = clock.now()
    clock.advance(5)
    after = {
        "complete": lambda: manager.complete(sid),
        "fail": lambda: manager.fail(sid, "crash"),
        "pause": lambda: manager.pause(sid),
        "update": lambda: manager.update(sid, metadata={"k": 1}),
    }[end]()
    for session in (after, manager.get(sid)):
        assert (session.last_heartbeat, session.phase) == (beat_at, "tool_call")
