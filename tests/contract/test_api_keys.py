"""API keys and session counts in every store: what `tether serve` keeps and reports."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tether import ConflictError, Liveness, ManualClock, SessionManager, State
from tether.core import keys
from tether.core.model import SessionCount
from tether.stores import Store, open_async_store


def test_a_key_is_stored_by_its_hash_and_found_by_its_id(store: Store, clock: ManualClock) -> None:
    text, key = keys.mint("alice", False, clock.now())
    store.add_api_key(key)
    found = store.get_api_key(key.key_id)
    assert found == key
    assert found is not None and text.split("_")[-1] not in found.secret_hash
    parts = keys.split(text)
    assert parts is not None and parts[0] == key.key_id and keys.matches(found, parts[1])
    assert not keys.matches(found, parts[1] + "x")
    assert store.get_api_key("000000000000") is None


def test_a_key_id_is_stored_once(store: Store, clock: ManualClock) -> None:
    _, key = keys.mint("alice", False, clock.now())
    store.add_api_key(key)
    with pytest.raises(ConflictError):
        store.add_api_key(key)
    assert store.list_api_keys() == [key]


def test_keys_list_oldest_first_and_a_revoked_key_no_longer_matches(store: Store, clock: ManualClock) -> None:
    alice_text, alice = keys.mint("alice", False, clock.now())
    clock.advance(1)
    _, admin = keys.mint("root", True, clock.now())
    store.add_api_key(admin)
    store.add_api_key(alice)
    assert [k.key_id for k in store.list_api_keys()] == [alice.key_id, admin.key_id]
    clock.advance(1)
    assert store.revoke_api_key(alice.key_id, clock.now()) is True
    assert store.revoke_api_key(alice.key_id, clock.now()) is False
    assert store.revoke_api_key("000000000000", clock.now()) is False
    revoked = store.get_api_key(alice.key_id)
    assert revoked is not None and revoked.revoked_at == clock.now()
    parts = keys.split(alice_text)
    assert parts is not None and not keys.matches(revoked, parts[1])
    assert store.get_api_key(admin.key_id) == admin


def test_sessions_are_counted_by_state_type_and_liveness(
    store: Store, manager: SessionManager, clock: ManualClock
) -> None:
    first = manager.create("tutor", "alice")
    clock.advance(1)
    manager.create("tutor", "alice")
    manager.complete(manager.create("tutor", "bob").session_id)
    manager.pause(manager.create("grader", "alice").session_id)
    clock.advance(40)  # past the soft deadline of the two active tutors and the paused grader
    counts = sorted(store.count_sessions(clock.now()), key=lambda c: (c.state, c.agent_type))
    assert [(c.state, c.agent_type, c.liveness, c.count) for c in counts] == [
        (State.ACTIVE, "tutor", Liveness.SUSPECT, 2),
        (State.COMPLETED, "tutor", None, 1),
        (State.PAUSED, "grader", Liveness.SUSPECT, 1),
    ]
    assert counts[0].oldest_heartbeat == first.last_heartbeat
    clock.advance(30)  # every lease expired
    alice = store.count_sessions(clock.now(), "alice")
    assert {(c.state, c.liveness, c.count) for c in alice} == {
        (State.ACTIVE, Liveness.DEAD, 2),
        (State.PAUSED, Liveness.DEAD, 1),
    }
    assert store.count_sessions(clock.now() + timedelta(days=1), "nobody") == []


def test_the_async_face_keeps_and_counts_alike(store_url: str, store: Store, clock: ManualClock) -> None:
    async def scenario() -> tuple[list[SessionCount], bool, int]:
        face = await open_async_store(store_url, clock) if store_url.startswith("postgres") else None
        from tether.stores.threaded import threaded

        target = face or threaded(store)
        _, key = keys.mint("alice", True, clock.now())
        await target.add_api_key(key)
        found = await target.get_api_key(key.key_id) == key
        revoked = await target.revoke_api_key(key.key_id, clock.now())
        listed = len(await target.list_api_keys())
        counts = await target.count_sessions(clock.now())
        if face is not None:
            await face.close()
        return counts, found and revoked, listed

    counts, ok, listed = asyncio.run(scenario())
    assert counts == [] and ok and listed == 1
