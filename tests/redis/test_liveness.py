"""Heartbeats and leases in Redis, against the real server; the durable store is the memory one."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import redis
from tests.conftest import REDIS_URL
from tests.redis.conftest import TIMEOUT
from tether import (
    Beat,
    ConfigurationError,
    InvalidTransition,
    LeaseLost,
    ManualClock,
    NotClaimable,
    NotFound,
    SessionManager,
    StoreUnavailable,
)
from tether.core.model import Liveness, Session, SessionFilter, State
from tether.core.policy import Policies, Policy
from tether.front.aio import AsyncSessionManager
from tether.front.supervisor import Supervisor
from tether.stores.memory import MemoryStore
from tether.stores.redis.liveness import RedisLivenessStore, default_prefix

pytestmark = pytest.mark.redis


def test_heartbeat_goes_to_redis_and_reaches_the_store_on_flush(
    manager: SessionManager, redis_store: RedisLivenessStore, inner: MemoryStore, clock: ManualClock
) -> None:
    session = manager.create("tutor", "u1")
    clock.advance(1)
    manager.heartbeat(session.session_id, epoch=1, phase="llm_call")
    live = manager.get(session.session_id)
    assert live.last_heartbeat == clock.now()
    assert live.phase == "llm_call"
    assert inner.get(session.session_id).last_heartbeat == session.last_heartbeat  # not yet flushed
    assert redis_store.flush() == 1
    flushed = inner.get(session.session_id)
    assert (flushed.last_heartbeat, flushed.lease_expires_at, flushed.phase) == (
        live.last_heartbeat,
        live.lease_expires_at,
        "llm_call",
    )
    assert flushed.version == session.version  # heartbeats never bump the version


def test_heartbeat_with_a_stale_epoch_is_rejected(manager: SessionManager) -> None:
    session = manager.create("tutor", "u1")
    with pytest.raises(LeaseLost) as caught:
        manager.heartbeat(session.session_id, epoch=7)
    assert (caught.value.epoch, caught.value.current_epoch) == (7, 1)


def test_heartbeat_after_the_lease_expired_is_refused(manager: SessionManager, clock: ManualClock) -> None:
    session = manager.create("tutor", "u1")
    clock.advance(TIMEOUT)
    with pytest.raises(LeaseLost, match="expired"):
        manager.heartbeat(session.session_id, epoch=1)
    assert manager.get(session.session_id).liveness(clock.now()) is Liveness.DEAD


def test_an_announced_silence_extends_only_that_lease(manager: SessionManager, clock: ManualClock) -> None:
    session = manager.create("tutor", "u1")
    manager.heartbeat(session.session_id, epoch=1, phase="llm_call", expect_silence=100)
    clock.advance(TIMEOUT * 5)
    assert manager.get(session.session_id).liveness(clock.now()) is Liveness.HEALTHY
    manager.heartbeat(session.session_id, epoch=1)
    clock.advance(TIMEOUT)
    assert manager.get(session.session_id).liveness(clock.now()) is Liveness.DEAD


def test_claim_consults_the_redis_lease_not_the_stale_store_row(
    manager: SessionManager, inner: MemoryStore, clock: ManualClock
) -> None:
    session = manager.create("tutor", "u1")
    for _ in range(8):
        clock.advance(TIMEOUT / 4)
        manager.heartbeat(session.session_id, epoch=1)
    stale_row = inner.get(session.session_id)
    assert stale_row.lease_expires_at is not None and stale_row.lease_expires_at < clock.now()
    with pytest.raises(NotClaimable):
        manager.claim(session.session_id, "worker-b")
    assert manager.claim_next(["tutor"], "worker-b") is None
    assert manager.stale(liveness="dead").items == []


def test_claim_next_takes_equally_long_waiters_by_session_id_as_every_store(
    manager: SessionManager, clock: ManualClock
) -> None:
    """A recoverable failure and an expired lease that have waited since the same instant (the
    failed session keeps the lease it had): the smaller id is claimed first, as from the store
    alone, whichever of the two lists (Redis's expiries, the store's failures) it comes from."""
    for sid in ("a", "b"):
        manager.create("tutor", "u1", session_id=sid)
    manager.fail("a", "crash", epoch=1)
    clock.advance(TIMEOUT + 1)
    first = manager.claim_next(None, "worker-b")
    assert first is not None and first.session_id == "a" and first.last_seq == 2


def test_dead_session_is_found_in_redis_taken_over_and_the_zombie_fenced(
    manager: SessionManager, clock: ManualClock
) -> None:
    session = manager.create("grader", "u1")
    manager.checkpoint(session.session_id, "rubric_applied", {"score": 3}, epoch=1)
    clock.advance(TIMEOUT)
    expired = manager.store.query(SessionFilter(lease_expired_at=clock.now()), 10)
    assert [s.session_id for s in expired] == [session.session_id]
    report = Supervisor(manager).sweep()
    assert report.timed_out == (session.session_id,)
    taken = manager.claim_next(["grader"], "worker-b")
    assert taken is not None and taken.epoch == 2 and taken.owner == "worker-b"
    manager.heartbeat(session.session_id, epoch=2)
    with pytest.raises(LeaseLost):
        manager.heartbeat(session.session_id, epoch=1)
    with pytest.raises(LeaseLost):
        manager.checkpoint(session.session_id, "late", {}, epoch=1)
    assert manager.last_checkpoint(session.session_id, "rubric_applied") is not None


def test_transitions_are_mirrored_so_heartbeats_follow_the_state(
    manager: SessionManager, clock: ManualClock
) -> None:
    session = manager.create("alert", "u1")
    manager.pause(session.session_id, epoch=1)
    clock.advance(TIMEOUT * 2)
    manager.heartbeat(session.session_id, epoch=1)  # paused sessions may still beat, and never expire
    assert manager.store.query(SessionFilter(lease_expired_at=clock.now()), 10).items == []
    manager.resume(session.session_id, epoch=1)
    manager.complete(session.session_id, epoch=1)
    with pytest.raises(InvalidTransition) as caught:
        manager.heartbeat(session.session_id, epoch=1)
    assert caught.value.state == State.COMPLETED.value


def test_a_session_redis_never_saw_is_copied_there_on_its_first_heartbeat(
    manager: SessionManager, inner: MemoryStore, clock: ManualClock
) -> None:
    plain = SessionManager(inner, policies=manager.policies, worker_id="worker-a")
    session = plain.create("tutor", "u1")  # straight into the store, bypassing Redis
    clock.advance(1)
    manager.heartbeat(session.session_id, epoch=1)
    assert manager.get(session.session_id).last_heartbeat == clock.now()


def test_a_takeover_redis_missed_is_repaired_by_the_new_owners_heartbeat(
    manager: SessionManager, redis_store: RedisLivenessStore, clock: ManualClock
) -> None:
    session = manager.create("tutor", "u1")
    clock.advance(TIMEOUT)
    manager.claim(session.session_id, "worker-b")
    redis_store.redis.client.hset(
        redis_store.redis.key(session.session_id), mapping={"version": 1, "epoch": 1}
    )
    manager.heartbeat(session.session_id, epoch=2)  # Redis says epoch 1: resync, then accepted
    with pytest.raises(LeaseLost):
        manager.heartbeat(session.session_id, epoch=1)


def test_batch_heartbeats_answer_each_beat(manager: SessionManager) -> None:
    live = [manager.create("tutor", f"u{i}") for i in range(50)]
    beats = [Beat(s.session_id, 1) for s in live] + [Beat(live[0].session_id, 9), Beat("nope", None)]
    results = manager.heartbeats(beats)
    assert results[:50] == [None] * 50
    assert isinstance(results[50], LeaseLost)
    assert isinstance(results[51], NotFound)


def test_redis_server_clock_times_the_leases_without_a_test_clock(redis_prefix: str) -> None:
    store = RedisLivenessStore(MemoryStore(), REDIS_URL, prefix=redis_prefix)
    policies = Policies(by_type={"quick": Policy(timeout=0.3), "slow": Policy(timeout=600)})
    try:
        manager = SessionManager(store, policies=policies)
        quick, slow = manager.create("quick", "u1"), manager.create("slow", "u1")
        assert abs((store.now() - store.redis.now()).total_seconds()) < 1
        time.sleep(0.5)
        manager.heartbeat(slow.session_id, epoch=1)
        with pytest.raises(LeaseLost, match="expired"):
            manager.heartbeat(quick.session_id, epoch=1)
    finally:
        store.close()


def test_each_store_gets_keys_of_its_own() -> None:
    assert default_prefix("sqlite:///a.db") == default_prefix("sqlite:///a.db")
    assert default_prefix("sqlite:///a.db") != default_prefix("sqlite:///b.db")
    assert default_prefix("memory://") != default_prefix("memory://")  # private to a process


def test_unreachable_redis_raises_store_unavailable_never_a_silent_loss(redis_prefix: str) -> None:
    inner = MemoryStore()
    session = SessionManager(inner, worker_id="w").create("tutor", "u1")
    store = RedisLivenessStore(inner, "redis://127.0.0.1:1/0", prefix=redis_prefix)
    try:
        with pytest.raises(StoreUnavailable, match="Redis"):
            store.heartbeat([Beat(session.session_id, 1)])
    finally:
        store.close()


def test_unreachable_redis_with_fallback_beats_into_the_store(redis_prefix: str, clock: ManualClock) -> None:
    inner = MemoryStore(clock)
    session = SessionManager(inner, worker_id="w").create("tutor", "u1")
    store = RedisLivenessStore(inner, "redis://127.0.0.1:1/0", prefix=redis_prefix, fallback="store")
    try:
        clock.advance(1)
        assert store.heartbeat([Beat(session.session_id, 1)]) == [None]
        assert inner.get(session.session_id).last_heartbeat == clock.now()
        clock.advance(3600)  # the expiry scan and claims then read the store's leases
        assert [s.session_id for s in store.query(SessionFilter(lease_expired_at=clock.now()), 10)] == [
            session.session_id
        ]
        assert [s.session_id for s in store.claimable(None, 10)] == [session.session_id]
    finally:
        store.close()


def test_manager_takes_the_redis_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_REDIS_URL", REDIS_URL)
    manager = SessionManager("memory://")
    try:
        assert isinstance(manager.store, RedisLivenessStore)
    finally:
        manager.close()


def test_async_manager_keeps_leases_in_redis_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tether.db"

    async def scenario() -> tuple[Session, Session]:
        async with AsyncSessionManager(url, redis_url=REDIS_URL, worker_id="w-async") as manager:
            created = await manager.create("tutor", "u1")
            await manager.heartbeat(created.session_id, epoch=1, phase="llm_call")
            return created, await manager.get(created.session_id)

    try:
        created, beaten = asyncio.run(scenario())
        assert beaten.phase == "llm_call"
        assert beaten.last_heartbeat > created.last_heartbeat
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{default_prefix(url)}:*"))
        if keys:
            client.delete(*keys)


def test_a_recreated_store_reusing_an_id_replaces_the_old_sessions_redis_state(
    redis_prefix: str, clock: ManualClock
) -> None:
    """`tether demo` re-creates ./tether-demo.db with the same seeded ids: the same URL, so the same keys."""
    first = RedisLivenessStore(MemoryStore(clock), REDIS_URL, prefix=redis_prefix)
    old = SessionManager(first, worker_id="w1")
    old.create("tutor", "u1", session_id="s-1")
    old.complete("s-1", epoch=1)
    first.close()
    clock.advance(1)
    second = RedisLivenessStore(MemoryStore(clock), REDIS_URL, prefix=redis_prefix)
    try:
        new = SessionManager(second, worker_id="w2")
        new.create("tutor", "u1", session_id="s-1")
        new.heartbeat("s-1", epoch=1)  # Redis held the old, completed s-1: replaced on create
        clock.advance(3600)
        assert [s.session_id for s in new.stale(liveness="dead")] == ["s-1"]
    finally:
        second.close()


def test_the_flusher_copies_leases_to_the_store_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_REDIS_FLUSH_INTERVAL", "0.1")
    manager = SessionManager("memory://", redis_url=REDIS_URL)
    store = manager.store
    assert isinstance(store, RedisLivenessStore)
    try:
        session = manager.create("tutor", "u1")
        time.sleep(0.01)
        manager.heartbeat(session.session_id, epoch=1, phase="flushed")
        deadline = time.monotonic() + 10
        while store.inner.get(session.session_id).phase != "flushed":
            assert time.monotonic() < deadline, "the flusher never copied the lease"
            time.sleep(0.05)
    finally:
        prefix = store.redis.prefix
        manager.close()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)


def test_a_bad_flush_interval_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_REDIS_FLUSH_INTERVAL", "soon")
    with pytest.raises(ConfigurationError, match="TETHER_REDIS_FLUSH_INTERVAL"):
        SessionManager("memory://", redis_url=REDIS_URL)
