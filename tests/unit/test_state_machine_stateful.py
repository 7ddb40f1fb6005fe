"""The state machine against a reference model, driven by hypothesis through a real store.

Every rule is tried in every state, legal or not, by the owner, by a zombie with a stale epoch, and
by other workers claiming; the clock moves so leases expire. After each step the store must agree
with a dict-sized model of what the architecture's table says should have happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.async_facade import BlockingAsyncManager
from tether import (
    ConflictError,
    InvalidTransition,
    LeaseLost,
    Liveness,
    ManualClock,
    NotClaimable,
    Policies,
    Policy,
    SessionManager,
    State,
)
from tether.front.aio import AsyncSessionManager
from tether.stores import POSTGRES_SCHEMES, Store, open_store

LEASE = 60.0
SUSPECT = 30.0
MAX_RECOVERIES = 2
POLICIES = Policies(default=Policy(timeout=LEASE, suspect_after=SUSPECT, max_recoveries=MAX_RECOVERIES))
LIFECYCLE_NAMES = {
    "pause": "session_paused",
    "resume": "session_resumed",
    "complete": "session_completed",
    "fail": "session_failed",
    "claim": "session_recovered",
}
EPOCHS = st.sampled_from(["current", "stale", "unfenced"])


@dataclass
class Model:
    """What one session should look like: the reference the store is checked against."""

    state: State = State.ACTIVE
    version: int = 1
    epoch: int = 1
    owner: str = "worker-a"
    recoveries: int = 0
    final: bool = False
    lease_expires_at: datetime = datetime.min
    checkpoints: list[str] = field(default_factory=list)

    def epoch_for(self, choice: str) -> int | None:
        """The epoch a writer presents: the owner's, a zombie's (stale), or none at all."""
        if choice == "unfenced":
            return None
        if choice == "current":
            return self.epoch
        return self.epoch - 1 if self.epoch > 1 else self.epoch + 1


class SessionMachine(RuleBasedStateMachine):
    driven: SessionManager  # set on a subclass per test: one manager for every example
    clock: ManualClock

    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__()
        self.manager = self.driven
        self.agent_type = f"agent-{uuid.uuid4().hex[:8]}"  # this run's sessions only
        self.models: dict[str, Model] = {}
        self.seen_versions: dict[str, int] = {}

    def now(self) -> datetime:
        return self.clock.now()

    def renew(self, model: Model, silence: float | None = None) -> None:
        """A heartbeat's lease: the timeout, or an announced silence plus the grace after it."""
        seconds = LEASE if silence is None else silence + (LEASE - SUSPECT)
        model.lease_expires_at = self.now() + timedelta(seconds=seconds)

    # -- creating and the clock -------------------------------------------------------------
    @initialize(target=sessions)
    def first_session(self) -> str:
        return self.create()

    @initialize(target=sessions)
    def second_session(self) -> str:
        return self.create()

    @rule(target=sessions)
    def create(self) -> str:
        session = self.manager.create(self.agent_type, "user-1")
        self.models[session.session_id] = Model(lease_expires_at=self.now() + timedelta(seconds=LEASE))
        return session.session_id

    @rule(seconds=st.sampled_from([0.5, 15.0, 31.0, 59.0, 61.0, 300.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -- owner writes (or a zombie's, with a stale epoch) ------------------------------------
    def expect(self, model: Model, choice: str, allowed: bool, call: Any) -> Any:
        """Run `call`; stale epochs must be LeaseLost, illegal actions InvalidTransition."""
        epoch = model.epoch_for(choice)
        if epoch is not None and epoch != model.epoch:
            self.refused(LeaseLost, call, epoch)
            return None
        if not allowed:
            self.refused(InvalidTransition, call, epoch)
            return None
        return call(epoch)

    def refused(self, error: type[Exception], call: Any, epoch: int | None) -> None:
        try:
            call(epoch)
        except error:
            return
        raise AssertionError(f"expected {error.__name__}")

    @rule(sid=sessions, choice=EPOCHS, name=st.sampled_from(["step", "plan"]))
    def checkpoint(self, sid: str, choice: str, name: str) -> None:
        model = self.models[sid]
        cp = self.expect(
            model,
            choice,
            model.state is State.ACTIVE,
            lambda epoch: self.manager.checkpoint(sid, name, {"n": len(model.checkpoints)}, epoch=epoch),
        )
        if cp is not None:
            model.checkpoints.append(name)
            assert cp.seq == len(model.checkpoints)

    @rule(sid=sessions, choice=EPOCHS, silence=st.sampled_from([None, None, 200.0]))
    def heartbeat(self, sid: str, choice: str, silence: float | None) -> None:
        model = self.models[sid]
        epoch = model.epoch_for(choice)
        alive = model.state is State.ACTIVE and self.now() < model.lease_expires_at

        def beat(e: int | None) -> None:
            self.manager.heartbeat(sid, epoch=e, expect_silence=silence)

        if (epoch is None or epoch == model.epoch) and (alive or model.state is State.PAUSED):
            beat(epoch)
            self.renew(model, silence)
        elif model.state in (State.COMPLETED, State.FAILED) and (epoch is None or epoch == model.epoch):
            self.refused(InvalidTransition, beat, epoch)
        else:
            self.refused(LeaseLost, beat, epoch)

    def transition(self, sid: str, choice: str, action: str, allowed: set[State], call: Any) -> bool:
        model = self.models[sid]
        after = self.expect(model, choice, model.state in allowed, call)
        if after is None:
            return False
        model.version += 1
        if action in LIFECYCLE_NAMES:
            model.checkpoints.append(LIFECYCLE_NAMES[action])
        return True

    @rule(sid=sessions, choice=EPOCHS)
    def pause(self, sid: str, choice: str) -> None:
        if self.transition(sid, choice, "pause", {State.ACTIVE}, lambda e: self.manager.pause(sid, epoch=e)):
            self.models[sid].state = State.PAUSED

    @rule(sid=sessions, choice=EPOCHS)
    def resume(self, sid: str, choice: str) -> None:
        if self.transition(
            sid, choice, "resume", {State.PAUSED}, lambda e: self.manager.resume(sid, epoch=e)
        ):
            self.models[sid].state = State.ACTIVE
            self.renew(self.models[sid])

    @rule(sid=sessions, choice=EPOCHS)
    def complete(self, sid: str, choice: str) -> None:
        if self.transition(
            sid, choice, "complete", {State.ACTIVE}, lambda e: self.manager.complete(sid, {}, epoch=e)
        ):
            self.models[sid].state = State.COMPLETED

    @rule(sid=sessions, choice=EPOCHS, final=st.booleans())
    def fail(self, sid: str, choice: str, final: bool) -> None:
        live = {State.ACTIVE, State.PAUSED}
        if self.transition(
            sid, choice, "fail", live, lambda e: self.manager.fail(sid, "boom", final=final, epoch=e)
        ):
            model = self.models[sid]
            model.state = State.FAILED
            model.final = final or model.recoveries >= MAX_RECOVERIES

    @rule(sid=sessions, choice=EPOCHS)
    def update(self, sid: str, choice: str) -> None:
        live = {State.ACTIVE, State.PAUSED}
        self.transition(
            sid, choice, "update", live, lambda e: self.manager.update(sid, context={"v": 1}, epoch=e)
        )

    @rule(sid=sessions)
    def write_on_a_stale_version(self, sid: str) -> None:
        model = self.models[sid]
        try:
            stale = model.version - 1 if model.version > 1 else model.version + 1
            self.manager.update(sid, metadata={"late": True}, expected_version=stale)
        except LeaseLost:
            raise
        except ConflictError:
            return
        raise AssertionError("expected ConflictError")

    # -- other workers -----------------------------------------------------------------------
    @rule(sid=sessions)
    def supervisor_times_out(self, sid: str) -> None:
        model = self.models[sid]
        if model.state is not State.ACTIVE:
            self.refused(InvalidTransition, lambda _: self.manager.time_out(sid), None)
        elif self.now() < model.lease_expires_at:
            self.refused(NotClaimable, lambda _: self.manager.time_out(sid), None)
        else:
            self.manager.time_out(sid)
            model.state, model.final = State.FAILED, model.recoveries >= MAX_RECOVERIES
            model.version += 1
            model.checkpoints.append("session_failed")

    def claimable(self, model: Model) -> bool:
        if model.state is State.ACTIVE:
            return self.now() >= model.lease_expires_at and model.recoveries < MAX_RECOVERIES
        return model.state is State.FAILED and not model.final

    def claimed(self, sid: str, worker: str) -> None:
        model = self.models[sid]
        model.state, model.owner = State.ACTIVE, worker
        model.epoch += 1
        model.recoveries += 1
        model.version += 1
        model.final = False
        model.checkpoints.append("session_recovered")
        self.renew(model)

    @rule(sid=sessions, worker=st.sampled_from(["worker-b", "worker-c"]))
    def claim(self, sid: str, worker: str) -> None:
        if self.claimable(self.models[sid]):
            session = self.manager.claim(sid, worker)
            assert (session.owner, session.epoch) == (worker, self.models[sid].epoch + 1)
            self.claimed(sid, worker)
        else:
            try:
                self.manager.claim(sid, worker)
            except NotClaimable:
                return
            raise AssertionError("expected NotClaimable")

    @rule(worker=st.sampled_from(["worker-b", "worker-c"]))
    def claim_next(self, worker: str) -> None:
        candidates = {sid for sid, model in self.models.items() if self.claimable(model)}
        session = self.manager.claim_next([self.agent_type], worker)
        if session is None:
            assert candidates == set()
        else:
            assert session.session_id in candidates
            self.claimed(session.session_id, worker)

    @rule(sid=consumes(sessions))
    def delete(self, sid: str) -> None:
        self.manager.delete(sid)
        del self.models[sid]
        self.seen_versions.pop(sid, None)

    # -- what must always hold ---------------------------------------------------------------
    @invariant()
    def store_agrees_with_the_model(self) -> None:
        for sid, model in self.models.items():
            session = self.manager.get(sid)
            keys = ("state", "version", "epoch", "owner", "recoveries")
            observed = {key: getattr(session, key) for key in keys} | {"last_seq": session.last_seq}
            expected = {key: getattr(model, key) for key in keys} | {"last_seq": len(model.checkpoints)}
            assert observed == expected, f"session {sid}: store {observed} != model {expected}"
            if session.state is State.FAILED:
                assert session.failure is not None and session.failure.final == model.final
            if session.state in (State.ACTIVE, State.PAUSED):
                dead = self.now() >= model.lease_expires_at
                assert (session.liveness(self.now()) is Liveness.DEAD) == dead
                assert session.lease_expires_at == model.lease_expires_at

    @invariant()
    def history_is_contiguous_and_holds_every_lifecycle_checkpoint(self) -> None:
        for sid, model in self.models.items():
            history = self.manager.checkpoints(sid, limit=10_000)
            assert [cp.seq for cp in history] == list(range(1, len(history) + 1))
            assert [cp.name for cp in history] == model.checkpoints

    @invariant()
    def versions_never_go_back(self) -> None:
        for sid in self.models:
            version = self.manager.get(sid).version
            assert version >= self.seen_versions.get(sid, 0)
            self.seen_versions[sid] = version


@pytest.fixture(params=["sync", "async"])
def driven(request: pytest.FixtureRequest, store: Store, store_url: str) -> Iterator[SessionManager]:
    """The manager the machine drives: SessionManager, or AsyncSessionManager behind the blocking
    facade the contract suite uses (native async store on PostgreSQL, the sync store on a thread
    elsewhere)."""
    if request.param == "sync":
        yield SessionManager(store, policies=POLICIES, worker_id="worker-a")
        return
    native = store_url.split(":", 1)[0] in POSTGRES_SCHEMES
    async_manager = AsyncSessionManager(
        store_url if native else store, policies=POLICIES, clock=store.clock, worker_id="worker-a"
    )
    facade = BlockingAsyncManager(async_manager)
    yield cast(SessionManager, facade)
    facade.close()


def test_state_machine_matches_the_model(driven: SessionManager, clock: ManualClock) -> None:
    machine = type("BoundSessionMachine", (SessionMachine,), {"driven": driven, "clock": clock})
    synchronous = isinstance(driven, SessionManager)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=40 if synchronous else 15,
            stateful_step_count=35,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_the_model_notices_a_wrong_store() -> None:
    """The machine can fail: a model that disagrees with the store about epochs is caught."""

    class ForgetfulMachine(SessionMachine):
        def claimed(self, sid: str, worker: str) -> None:
            super().claimed(sid, worker)
            self.models[sid].epoch -= 1

    clock = ManualClock()
    manager = SessionManager(open_store("memory://", clock), policies=POLICIES, worker_id="worker-a")
    machine = type("BoundForgetfulMachine", (ForgetfulMachine,), {"driven": manager, "clock": clock})
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=200,
                stateful_step_count=40,
                deadline=None,
                database=None,
                phases=[Phase.generate],
            ),
        )
    except AssertionError as exc:
        assert "epoch" in str(exc)
        return
    raise AssertionError("the stateful test did not notice a model/store disagreement")
