"""The pure state machine: every (state, action) pair, decided without any store."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tether import (
    ConflictError,
    Failure,
    InvalidTransition,
    LeaseLost,
    NotClaimable,
    OnTimeout,
    Policy,
    State,
    lifecycle,
)
from tether.core.model import Liveness, Session
from tether.lifecycle import Write

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = Policy(timeout=60.0, suspect_after=20.0, max_recoveries=2)


def _session(state: State, **changes: object) -> Session:
    base = lifecycle.new_session(
        session_id="s-1",
        agent_type="tutor",
        user_id="u-1",
        owner="worker-a",
        policy=POLICY,
        now=NOW,
        context={"c": 1},
        metadata={"m": 1},
        parent_session_id=None,
    )
    base = replace(base, state=state, last_seq=4, version=3)
    if state is State.FAILED:
        base = replace(base, failure=Failure("boom"), ended_at=NOW)
    if state is State.COMPLETED:
        base = replace(base, ended_at=NOW)
    return replace(base, **changes)  # type: ignore[arg-type]


LATER = NOW + timedelta(seconds=5)
EXPIRED = NOW + timedelta(seconds=61)
ACTIONS: dict[str, Callable[[Session], Write]] = {
    "pause": lambda s: lifecycle.pause(s, LATER),
    "resume": lambda s: lifecycle.resume(s, POLICY, LATER),
    "complete": lambda s: lifecycle.complete(s, LATER, {"r": 1}),
    "fail": lambda s: lifecycle.fail(s, POLICY, LATER, "crash", {"d": 1}),
    "update": lambda s: lifecycle.update(s, LATER, context={"new": True}, metadata=None),
}
# (state, action) -> (resulting state, lifecycle checkpoint name, renews the lease)
TABLE: dict[tuple[State, str], tuple[State, str | None, bool]] = {
    (State.ACTIVE, "pause"): (State.PAUSED, "session_paused", False),
    (State.ACTIVE, "complete"): (State.COMPLETED, "session_completed", False),
    (State.ACTIVE, "fail"): (State.FAILED, "session_failed", False),
    (State.ACTIVE, "update"): (State.ACTIVE, None, False),
    (State.PAUSED, "resume"): (State.ACTIVE, "session_resumed", True),
    (State.PAUSED, "fail"): (State.FAILED, "session_failed", False),
    (State.PAUSED, "update"): (State.PAUSED, None, False),
}
PAIRS = [(state, action) for state in State for action in ACTIONS]


@pytest.mark.parametrize(("state", "action"), PAIRS, ids=[f"{s.value}-{a}" for s, a in PAIRS])
def test_every_state_action_pair_follows_the_table(state: State, action: str) -> None:
    session = _session(state)
    if (state, action) not in TABLE:
        with pytest.raises(InvalidTransition) as caught:
            ACTIONS[action](session)
        assert (caught.value.session_id, caught.value.state, caught.value.action) == (
            "s-1",
            state.value,
            action,
        )
        return
    target, checkpoint, renews = TABLE[(state, action)]
    write = ACTIONS[action](session)
    assert (write.action, write.before, write.renews_lease) == (action, session, renews)
    assert (write.after.state, write.after.version) == (target, session.version + 1)
    assert (write.checkpoint.name if write.checkpoint else None) == checkpoint
    if write.checkpoint is not None:
        assert write.checkpoint.timestamp == LATER
    assert write.after.state_since == (LATER if target is not state else session.state_since)


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("state", list(State))
def test_a_stale_epoch_is_lease_lost_before_the_state_is_considered(state: State, action: str) -> None:
    session = _session(state, epoch=3)
    decide = {
        "pause": lambda: lifecycle.pause(session, LATER, epoch=2),
        "resume": lambda: lifecycle.resume(session, POLICY, LATER, epoch=2),
        "complete": lambda: lifecycle.complete(session, LATER, None, epoch=2),
        "fail": lambda: lifecycle.fail(session, POLICY, LATER, "x", epoch=2),
        "update": lambda: lifecycle.update(session, LATER, context={}, metadata=None, epoch=2),
    }[action]
    with pytest.raises(LeaseLost) as caught:
        decide()
    assert (caught.value.epoch, caught.value.current_epoch) == (2, 3)


def test_lifecycle_checkpoint_data_has_the_seed_shapes() -> None:
    active, paused = _session(State.ACTIVE), _session(State.PAUSED)

    def data(write: Write) -> object:
        assert write.checkpoint is not None
        return json.loads(write.checkpoint.data_json)

    assert data(lifecycle.pause(active, LATER)) == {"previous_state": "active"}
    assert data(lifecycle.resume(paused, POLICY, LATER)) == {}
    assert data(lifecycle.complete(active, LATER, None)) == {"result": {}}
    assert data(lifecycle.complete(active, LATER, {"a": 1})) == {"result": {"a": 1}}
    assert data(lifecycle.fail(active, POLICY, LATER, "e")) == {"error": "e", "details": {}}
    assert data(lifecycle.fail(active, POLICY, LATER, "e", {"k": [1]})) == {
        "error": "e",
        "details": {"k": [1]},
    }


def test_ending_sets_ended_at_and_resume_renews_the_lease() -> None:
    assert lifecycle.complete(_session(State.ACTIVE), LATER, None).after.ended_at == LATER
    failed = lifecycle.fail(_session(State.ACTIVE), POLICY, LATER, "e").after
    assert (failed.ended_at, failed.failure) == (LATER, Failure("e", {}, False))
    resumed = lifecycle.resume(_session(State.PAUSED, phase="idle"), POLICY, LATER).after
    assert (resumed.last_heartbeat, resumed.phase) == (LATER, None)
    assert resumed.suspect_at == LATER + timedelta(seconds=20)
    assert resumed.lease_expires_at == LATER + timedelta(seconds=60)


@pytest.mark.parametrize(
    ("recoveries", "final", "policy", "expected"),
    [
        (0, False, POLICY, False),
        (1, False, POLICY, False),
        (2, False, POLICY, True),  # out of recoveries
        (0, True, POLICY, True),  # the caller says so
        (0, False, Policy(on_timeout=OnTimeout.FAIL), True),  # the policy never recovers
    ],
)
def test_a_failure_is_final_when_asked_or_out_of_recoveries(
    recoveries: int, final: bool, policy: Policy, expected: bool
) -> None:
    session = _session(State.ACTIVE, recoveries=recoveries)
    failure = lifecycle.fail(session, policy, LATER, "e", final=final).after.failure
    assert failure is not None and failure.final is expected


@pytest.mark.parametrize("error", ["", None, 3])
def test_fail_needs_an_error_string(error: object) -> None:
    with pytest.raises(ValueError, match="error"):
        lifecycle.fail(_session(State.ACTIVE), POLICY, LATER, error)  # type: ignore[arg-type]


def test_claim_of_an_expired_lease_bumps_epoch_and_renews() -> None:
    session = _session(State.ACTIVE, phase="tool")
    write = lifecycle.claim(session, POLICY, EXPIRED, "worker-b")
    after = write.after
    assert (after.owner, after.epoch, after.recoveries, after.version) == ("worker-b", 2, 1, 4)
    assert (after.phase, after.failure, after.ended_at, write.renews_lease) == (None, None, None, True)
    assert after.lease_expires_at == EXPIRED + timedelta(seconds=60)
    assert write.checkpoint is not None and write.checkpoint.name == "session_recovered"
    assert json.loads(write.checkpoint.data_json) == {
        "previous_owner": "worker-a",
        "previous_epoch": 1,
        "new_owner": "worker-b",
        "epoch": 2,
        "reason": "heartbeat_timeout",
        "resumed_from_seq": 4,
        "recovery": 1,
    }


@pytest.mark.parametrize(
    ("session", "now"),
    [
        (_session(State.ACTIVE), NOW + timedelta(seconds=59)),  # lease alive
        (_session(State.ACTIVE, recoveries=2), EXPIRED),  # no recoveries left
        (_session(State.PAUSED), EXPIRED),
        (_session(State.COMPLETED), EXPIRED),
        (_session(State.FAILED, failure=Failure("x", final=True)), EXPIRED),
        (_session(State.FAILED, failure=None), EXPIRED),
    ],
    ids=["alive", "exhausted", "paused", "completed", "final", "failure-unknown"],
)
def test_claim_is_refused_unless_dead_or_recoverable(session: Session, now: datetime) -> None:
    with pytest.raises(NotClaimable):
        lifecycle.claim(session, POLICY, now, "worker-b")


def test_claim_at_the_exact_expiry_instant_succeeds() -> None:
    session = _session(State.ACTIVE)
    assert session.lease_expires_at is not None
    assert lifecycle.claim(session, POLICY, session.lease_expires_at, "w").after.epoch == 2


def test_claim_of_a_recoverable_failure_names_its_error() -> None:
    write = lifecycle.claim(_session(State.FAILED), POLICY, LATER, "worker-b")
    assert write.checkpoint is not None
    assert json.loads(write.checkpoint.data_json)["reason"] == "boom"
    assert write.after.state is State.ACTIVE


def test_time_out_fails_an_expired_session_with_the_evidence() -> None:
    session = _session(State.ACTIVE, phase="tool")
    write = lifecycle.time_out(session, POLICY, EXPIRED)
    assert write.after.state is State.FAILED
    assert write.after.failure is not None and write.after.failure.error == "heartbeat_timeout"
    assert write.after.failure.details["phase"] == "tool"
    assert not write.after.failure.final
    with pytest.raises(NotClaimable):
        lifecycle.time_out(session, POLICY, NOW + timedelta(seconds=30))
    with pytest.raises(InvalidTransition):
        lifecycle.time_out(_session(State.PAUSED), POLICY, EXPIRED)


def test_update_validates_and_replaces_only_what_is_given() -> None:
    after = lifecycle.update(_session(State.ACTIVE), LATER, context=None, metadata={"n": 2}).after
    assert (after.context, after.metadata) == ({"c": 1}, {"n": 2})
    with pytest.raises(ValueError, match="context"):
        lifecycle.update(_session(State.ACTIVE), LATER, context={"x": {1}}, metadata=None)


def test_check_version_is_a_conflict_naming_both_versions() -> None:
    lifecycle.check_version(_session(State.ACTIVE), None)
    lifecycle.check_version(_session(State.ACTIVE), 3)
    with pytest.raises(ConflictError) as caught:
        lifecycle.check_version(_session(State.ACTIVE), 2)
    assert (caught.value.expected_version, caught.value.actual_version) == (2, 3)


def test_expect_silence_moves_both_deadlines() -> None:
    fields = lifecycle.lease_fields(POLICY, NOW, silence=300)
    assert fields["suspect_at"] == NOW + timedelta(seconds=300)
    assert fields["lease_expires_at"] == NOW + timedelta(seconds=340)
    default = lifecycle.lease_fields(POLICY, NOW)
    assert (default["suspect_at"], default["lease_expires_at"]) == (
        NOW + timedelta(seconds=20),
        NOW + timedelta(seconds=60),
    )


# -- the liveness rules every store mirrors ------------------------------------------------------
@pytest.mark.parametrize(
    ("seconds", "micros"),
    [(20.0, 20_000_000), (0.3000005, 300_001), (7.1234565, 7_123_457), (1e-7, 0), (5e-7, 1), (0.29, 290_000)],
)
def test_seconds_become_whole_microseconds_rounded_half_up(seconds: float, micros: int) -> None:
    assert lifecycle.micros(seconds) == micros


def test_deadlines_put_the_grace_after_the_soft_deadline_or_the_announced_silence() -> None:
    assert lifecycle.deadlines(NOW, 60.0, 20.0) == (NOW + timedelta(seconds=20), NOW + timedelta(seconds=60))
    suspect_at, expiry = lifecycle.deadlines(NOW, 60.0, 20.0, silence=300.0)
    assert (suspect_at - NOW, expiry - NOW) == (timedelta(seconds=300), timedelta(seconds=340))


def test_a_lease_is_expired_from_its_expiry_instant_on_and_only_while_active() -> None:
    active = _session(State.ACTIVE)
    assert active.lease_expires_at is not None and active.suspect_at is not None
    expiry, suspect_at = active.lease_expires_at, active.suspect_at
    tick = timedelta(microseconds=1)
    assert not lifecycle.lease_expired(active, expiry - tick)
    assert lifecycle.lease_expired(active, expiry)
    assert not lifecycle.suspect(active, suspect_at - tick) and lifecycle.suspect(active, suspect_at)
    assert not lifecycle.lease_expired(_session(State.PAUSED), expiry)
    assert lifecycle.heartbeat_accepted(active, active.epoch, expiry - tick)
    assert not lifecycle.heartbeat_accepted(active, active.epoch, expiry)
    assert not lifecycle.heartbeat_accepted(active, active.epoch + 1, NOW)
    assert lifecycle.heartbeat_accepted(_session(State.PAUSED), None, expiry + timedelta(days=1))


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_session_liveness_agrees_with_the_lease_rules(offset: int) -> None:
    """`Session.liveness` (core cannot import lifecycle) applies the same comparisons."""
    active = _session(State.ACTIVE)
    assert active.lease_expires_at is not None and active.suspect_at is not None
    for instant in (active.suspect_at, active.lease_expires_at):
        at = instant + timedelta(microseconds=offset)
        dead = active.liveness(at) is Liveness.DEAD
        assert dead == lifecycle.lease_expired(active, at)
        assert (active.liveness(at) is not Liveness.HEALTHY) == lifecycle.suspect(active, at)
