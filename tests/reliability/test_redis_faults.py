"""Leases in Redis, durability in the store, while Redis dies, comes back empty, or stays away.

Promises (docs/reliability.md):
- Redis restarted empty (or replaced) loses nothing for good: the store is the source of truth for
  who is expired, and Redis is rebuilt from it, so the supervisor, `claim_next` and
  `stale(liveness="dead")` find the sessions whose agent died meanwhile, in this manager or a new one.
- While Redis is down, only heartbeats stop (StoreUnavailable): checkpoints, reads, claims and the
  sweep carry on with the store, and fencing still refuses the old owner after a takeover.

Each test runs its own redis-server on a free port (tests/reliability/redis_server.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_store_url
from tests.reliability.agent_child import POLICIES
from tests.reliability.redis_server import OwnRedis
from tests.reliability.test_killed_worker import SHARED_STORE_KINDS, kill_after, start_agent, wait_for_state
from tether import LeaseLost, ManualClock, Policies, Policy, SessionManager, State, StoreUnavailable
from tether.front.supervisor import Supervisor
from tether.stores import open_store
from tether.stores.redis.liveness import RedisLivenessStore

TIMEOUT = 10.0
TEST_POLICIES = Policies(Policy(timeout=TIMEOUT, suspect_after=TIMEOUT / 2))


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def liveness_manager(url: str, redis: OwnRedis, clock: ManualClock, worker: str) -> SessionManager:
    store = RedisLivenessStore(open_store(url, clock), redis.url, flush_interval=3600)
    return SessionManager(store, policies=TEST_POLICIES, worker_id=worker)


@pytest.mark.parametrize("kind", SHARED_STORE_KINDS)
def test_sessions_that_died_while_redis_restarted_empty_are_found_again(
    kind: str, tmp_path: Path, own_redis: OwnRedis
) -> None:
    url, clock = make_store_url(kind, tmp_path), ManualClock()
    with liveness_manager(url, own_redis, clock, "worker-a") as manager:
        dead = manager.create("tutor", "u").session_id
        alive = manager.create("tutor", "u").session_id
        manager.checkpoint(dead, "step", {"n": 1})
        own_redis.restart_empty()
        clock.advance(TIMEOUT / 2)
        manager.heartbeat(alive)  # its agent lives on: Redis gets it back from this beat
        clock.advance(TIMEOUT * 0.8)  # past the dead one's lease, within the live one's

        assert [s.session_id for s in manager.stale(liveness="dead")] == [dead]
        with liveness_manager(url, own_redis, clock, "newcomer") as newcomer:
            assert [s.session_id for s in newcomer.stale(liveness="dead")] == [dead]
        report = Supervisor(manager).sweep()
        assert manager.get(dead).state is State.FAILED, report
        assert manager.get(alive).state is State.ACTIVE
        claimed = manager.claim_next(worker_id="worker-b")
        assert claimed is not None and claimed.session_id == dead and claimed.epoch == 2
        assert [cp.name for cp in manager.checkpoints(dead)] == [
            "step",
            "session_failed",
            "session_recovered",
        ]


def test_a_new_manager_finds_them_without_any_sweep_of_the_old_one(
    tmp_path: Path, own_redis: OwnRedis
) -> None:
    url, clock = make_store_url("sqlite", tmp_path), ManualClock()
    with liveness_manager(url, own_redis, clock, "worker-a") as manager:
        dead = manager.create("tutor", "u").session_id
    own_redis.restart_empty()
    clock.advance(TIMEOUT * 2)
    with liveness_manager(url, own_redis, clock, "newcomer") as newcomer:
        claimed = newcomer.claim_next()
        assert claimed is not None and claimed.session_id == dead


@pytest.mark.parametrize("kind", SHARED_STORE_KINDS)
def test_while_redis_is_down_only_heartbeats_stop(kind: str, tmp_path: Path, own_redis: OwnRedis) -> None:
    url, clock = make_store_url(kind, tmp_path), ManualClock()
    with liveness_manager(url, own_redis, clock, "worker-a") as manager:
        working = manager.create("tutor", "u").session_id
        dead = manager.create("tutor", "u").session_id
        manager.checkpoint(dead, "step", {"n": 1})
        own_redis.stop()

        with pytest.raises(StoreUnavailable, match="Redis"):
            manager.heartbeat(working)
        assert manager.checkpoint(working, "step", {"n": 1}).seq == 1  # durable writes go on
        assert manager.get(working).last_seq == 1
        assert {s.session_id for s in manager.list()} == {working, dead}
        clock.advance(TIMEOUT + 1)
        assert {s.session_id for s in manager.stale(liveness="dead")} == {working, dead}
        Supervisor(manager).sweep()  # times both out on the store's leases
        assert manager.get(dead).state is State.FAILED
        taken = manager.claim(dead, worker_id="worker-b")
        assert taken.epoch == 2
        with pytest.raises(LeaseLost):
            manager.checkpoint(dead, "zombie", epoch=1)

        own_redis.start()  # back, and empty
        manager.heartbeat(dead, epoch=2)  # the new owner's lease lives in Redis again
        with pytest.raises(LeaseLost):
            manager.heartbeat(dead, epoch=1)
        assert manager.checkpoint(dead, "resumed", epoch=2).seq == 4
        names = [cp.name for cp in manager.checkpoints(dead)]
        assert names == ["step", "session_failed", "session_recovered", "resumed"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("trials", [1, pytest.param(5, marks=pytest.mark.slow)])
@pytest.mark.parametrize("kind", SHARED_STORE_KINDS)
def test_an_agent_killed_while_redis_restarts_empty_is_taken_over_from_its_last_ack(
    kind: str, trials: int, tmp_path: Path, own_redis: OwnRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real processes on the real clock: the agent's acks are recorded here, outside the agent."""
    monkeypatch.setenv("TETHER_REDIS_URL", own_redis.url)
    url = make_store_url(kind, tmp_path)
    with SessionManager(url, policies=POLICIES, worker_id="survivor") as manager:
        for trial in range(trials):
            session_id = f"doomed-{trial}"
            acks = kill_after(start_agent(url, session_id, 0), "ack ", 20)
            own_redis.restart_empty()
            with manager.supervise(interval=0.05):
                wait_for_state(manager, session_id, State.FAILED, limit=30)
            with manager.open("tutor", "user-1", session_id=session_id) as taker:
                resumed = taker.resumed_from
                assert resumed is not None and taker.epoch == 2  # one new owner
            last_seq, last_i = acks[-1]
            assert [i for _, i in acks] == list(range(1, len(acks) + 1))
            # a write in flight at the kill may have committed without its ack being printed
            assert (resumed.seq, resumed.data["i"]) in {(last_seq, last_i), (last_seq + 1, last_i + 1)}
            steps = manager.checkpoints(session_id, name="step", limit=1000)
            assert [cp.data["i"] for cp in steps] == list(
                range(1, resumed.data["i"] + 1)
            )  # none lost or doubled
