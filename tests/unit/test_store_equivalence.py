"""Every store behaves exactly like the reference: the memory store.

Hypothesis drives the same random operations through a SessionManager over a MemoryStore and one
over the store under test, sharing one ManualClock, and demands identical outcomes: equal Session
values (every field: leases, phase, state_since, failure details…), equal histories, equal listings
and exports, and the same error type for every refused call. Every store runs it: SQLite and
PostgreSQL, and each of the three with its leases and heartbeats in Redis. Timeouts and announced
silences that are not whole microseconds make a store's own arithmetic (SQL, Lua) show if it rounds
differently from `lifecycle.deadlines`.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.conftest import REDIS_URL, STORE_KINDS, make_store_url, service_missing
from tether import ManualClock, Policies, Policy, SessionManager, State, TetherError
from tether.stores import Store, open_store
from tether.stores.redis.liveness import RedisLivenessStore

# Not whole microseconds: 20.0000005 s and 60.0000015 s sit near a half microsecond.
POLICIES = Policies(Policy(timeout=60.0000015, suspect_after=20.0000005, max_recoveries=2))
SESSION_IDS = st.sampled_from([f"s-{n}" for n in range(6)])
EPOCHS = st.sampled_from(["current", "current", "stale", None])
USERS = st.sampled_from(["alice", "bob"])
TYPES = st.sampled_from(["tutor", "grader"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
OBJECTS = st.dictionaries(st.text(max_size=4), JSON, max_size=3)


class MirrorMachine(RuleBasedStateMachine):
    store: Store | None  # the store under test, shared by every example; or
    fresh: Callable[[], Store] | None = None  # a new one for each example
    clock: ManualClock

    def __init__(self) -> None:
        super().__init__()
        self.reference = SessionManager(
            open_store("memory://", self.clock), policies=POLICIES, worker_id="w-a"
        )
        store = self.store if self.fresh is None else self.fresh()
        assert store is not None
        self.tested = SessionManager(store, policies=POLICIES, worker_id="w-a")
        for session in self.tested.list(limit=1000):  # the store is shared: start each example empty
            self.tested.delete(session.session_id)

    @initialize()
    def three_sessions(self) -> None:
        for n, (agent_type, user) in enumerate([("tutor", "alice"), ("grader", "alice"), ("tutor", "bob")]):
            self.both(
                lambda m, n=n, t=agent_type, u=user: m.create(t, u, session_id=f"s-{n}", context={"n": n})
            )

    def epoch(self, sid: str, choice: str | None) -> int | None:
        """The epoch a writer presents: the current one, a stale one, or none."""
        if choice is None:
            return None
        try:
            current = self.reference.get(sid).epoch
        except TetherError:
            return 1
        return current if choice == "current" else current + (-1 if current > 1 else 1)

    def both(self, call: Callable[[SessionManager], Any]) -> None:
        """Same call on both managers: same result, or the same error type."""
        outcomes = []
        for manager in (self.reference, self.tested):
            try:
                outcomes.append(("ok", call(manager)))
            except TetherError as exc:
                outcomes.append(("error", type(exc)))
        assert outcomes[0] == outcomes[1]

    @rule(sid=SESSION_IDS, agent_type=TYPES, user=USERS, context=OBJECTS, parent=st.none() | SESSION_IDS)
    def create(
        self, sid: str, agent_type: str, user: str, context: dict[str, Any], parent: str | None
    ) -> None:
        self.both(
            lambda m: m.create(agent_type, user, session_id=sid, context=context, parent_session_id=parent)
        )

    @rule(
        sid=SESSION_IDS,
        state=st.sampled_from(list(State)),
        names=st.lists(st.sampled_from(["plan", "step", "session_failed"]), max_size=5),
        data=OBJECTS,
    )
    def import_seed(self, sid: str, state: State, names: list[str], data: dict[str, Any]) -> None:
        """The bulk path: a seed session with its checkpoints created in one store call."""
        now = self.clock.now().isoformat()
        seed = {
            "session_id": sid,
            "agent_type": "tutor",
            "user_id": "alice",
            "state": state.value,
            "created_at": now,
            "last_heartbeat": now,
            "context": data,
            "checkpoints": [{"name": name, "timestamp": now, "data": data} for name in names],
            "metadata": {},
        }
        line = json.dumps(seed) + "\n"
        self.both(lambda m: m.import_sessions(io.StringIO(line), on_conflict="skip"))
        self.both(lambda m: [m.last_checkpoint(sid, name) for name in ("plan", "step", "session_failed")])

    @rule(sid=SESSION_IDS, name=st.sampled_from(["plan", "step"]), data=OBJECTS, choice=EPOCHS)
    def checkpoint(self, sid: str, name: str, data: dict[str, Any], choice: str | None) -> None:
        epoch = self.epoch(sid, choice)
        self.both(lambda m: m.checkpoint(sid, name, data, epoch=epoch))

    @rule(
        sid=SESSION_IDS,
        choice=EPOCHS,
        phase=st.none() | st.just("tool"),
        silence=st.none() | st.sampled_from([90.5, 0.3000005, 7.1234565]),
    )
    def heartbeat(self, sid: str, choice: str | None, phase: str | None, silence: float | None) -> None:
        epoch = self.epoch(sid, choice)
        self.both(lambda m: m.heartbeat(sid, epoch=epoch, phase=phase, expect_silence=silence))

    @rule(sid=SESSION_IDS, choice=EPOCHS)
    def pause(self, sid: str, choice: str | None) -> None:
        epoch = self.epoch(sid, choice)
        self.both(lambda m: m.pause(sid, epoch=epoch))

    @rule(sid=SESSION_IDS, choice=EPOCHS)
    def resume(self, sid: str, choice: str | None) -> None:
        epoch = self.epoch(sid, choice)
        self.both(lambda m: m.resume(sid, epoch=epoch))

    @rule(sid=SESSION_IDS, result=st.none() | OBJECTS, choice=EPOCHS)
    def complete(self, sid: str, result: dict[str, Any] | None, choice: str | None) -> None:
        epoch = self.epoch(sid, choice)
        self.both(lambda m: m.complete(sid, result, epoch=epoch))

    @rule(sid=SESSION_IDS, details=st.none() | OBJECTS, final=st.booleans(), choice=EPOCHS)
    def fail(self, sid: str, details: dict[str, Any] | None, final: bool, choice: str | None) -> None:
        epoch = self.epoch(sid, choice)
        self.both(lambda m: m.fail(sid, "crash", details, final=final, epoch=epoch))

    @rule(
        sid=SESSION_IDS,
        context=st.none() | OBJECTS,
        metadata=st.none() | OBJECTS,
        version=st.none() | st.just(2),
    )
    def update(
        self, sid: str, context: dict[str, Any] | None, metadata: dict[str, Any] | None, version: int | None
    ) -> None:
        self.both(lambda m: m.update(sid, context=context, metadata=metadata, expected_version=version))

    @rule(sid=SESSION_IDS, worker=st.sampled_from(["w-b", "w-c"]))
    def claim(self, sid: str, worker: str) -> None:
        self.both(lambda m: m.claim(sid, worker))

    @rule(types=st.sampled_from([None, ["tutor"], ["grader"]]), worker=st.sampled_from(["w-b", "w-c"]))
    def claim_next(self, types: list[str] | None, worker: str) -> None:
        self.both(lambda m: m.claim_next(types, worker))

    @rule(sid=SESSION_IDS)
    def time_out(self, sid: str) -> None:
        self.both(lambda m: m.time_out(sid))

    @rule(sid=SESSION_IDS)
    def delete(self, sid: str) -> None:
        self.both(lambda m: m.delete(sid))

    @rule(seconds=st.sampled_from([25, 61, 3600]), states=st.sampled_from([None, ["failed"], ["paused"]]))
    def purge(self, seconds: int, states: list[str] | None) -> None:
        if states is None:
            self.both(lambda m: m.purge(timedelta(seconds=seconds)))
        else:
            self.both(lambda m: m.purge(timedelta(seconds=seconds), states=states))

    @rule(user=USERS)
    def erase_user(self, user: str) -> None:
        self.both(lambda m: m.erase_user(user))

    @rule(seconds=st.sampled_from([0.000001, 10, 21, 61, 600]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(
        user=st.none() | USERS,
        agent_type=st.none() | TYPES,
        state=st.none() | st.sampled_from(list(State)),
        limit=st.sampled_from([1, 2, 50]),
    )
    def list_pages(self, user: str | None, agent_type: str | None, state: State | None, limit: int) -> None:
        def pages(m: SessionManager) -> list[list[Any]]:
            out, cursor = [], None
            while True:
                page = m.list(user_id=user, agent_type=agent_type, state=state, limit=limit, cursor=cursor)
                out.append(list(page))
                if page.next_cursor is None:
                    return out
                cursor = page.next_cursor

        self.both(pages)

    @invariant()
    def sessions_and_histories_are_identical(self) -> None:
        expected = {s.session_id: s for s in self.reference.list(limit=1000)}
        actual = {s.session_id: s for s in self.tested.list(limit=1000)}
        assert actual == expected
        for sid in expected:
            assert self.tested.checkpoints(sid, limit=1000) == self.reference.checkpoints(sid, limit=1000)

    @invariant()
    def exports_are_identical(self) -> None:
        def export(m: SessionManager) -> list[Any]:
            out = io.StringIO()
            m.export(out)
            return [json.loads(line) for line in out.getvalue().split("\n") if line]

        assert export(self.tested) == export(self.reference)


def run_mirror(store: Store | None, clock: ManualClock, fresh: Callable[[], Store] | None = None) -> None:
    """Run the mirror machine against `store`, or against a `fresh()` store for each example."""
    fields: dict[str, Any] = {
        "store": store,
        "clock": clock,
        "fresh": None if fresh is None else staticmethod(fresh),
    }
    machine = type("BoundMirrorMachine", (MirrorMachine,), fields)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=50,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


@pytest.mark.parametrize("store_url", [kind for kind in STORE_KINDS if kind != "memory"], indirect=True)
def test_every_store_behaves_like_the_memory_reference(store: Store, clock: ManualClock) -> None:
    clock.set(datetime(2026, 1, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))))
    run_mirror(store, clock)  # a clock off UTC: every store must still hand back the same instants


@pytest.mark.parametrize("inner", STORE_KINDS)
def test_redis_liveness_behaves_like_the_memory_reference(
    inner: str, tmp_path: object, clock: ManualClock
) -> None:
    """The Redis liveness store in front of every store: heartbeats then run in heartbeat.lua. Each
    example gets keys of its own, as a fresh deployment would."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis", str(exc))
    prefix = f"tether-equivalence-{uuid.uuid4().hex[:12]}"
    made: list[Store] = []

    def fresh() -> Store:
        if made:  # the previous example's, with the durable store it wraps
            made[-1].close()
        folder = Path(str(tmp_path)) / str(len(made))
        folder.mkdir()
        durable = open_store(make_store_url(inner, folder), clock)
        made.append(
            RedisLivenessStore(durable, REDIS_URL, prefix=f"{prefix}-{len(made)}", flush_interval=3600)
        )
        return made[-1]

    try:
        clock.set(datetime(2026, 1, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))))
        run_mirror(None, clock, fresh)
    finally:
        if made:
            made[-1].close()
        keys = list(client.scan_iter(match=f"{prefix}-*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
