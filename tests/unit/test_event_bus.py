"""The event bus: subscribers that decline heartbeats get every other event, and `wants_heartbeats`
says whether anyone takes them (a manager builds heartbeat events only then: the hot path of a
server's batches)."""

from __future__ import annotations

from tether import SessionManager
from tether.stores import Beat


def test_a_subscriber_may_decline_heartbeats() -> None:
    with SessionManager("memory://") as manager:
        every: list[str] = []
        quiet: list[str] = []
        manager.events.subscribe(lambda e: quiet.append(e.kind), heartbeats=False)
        assert not manager.events.wants_heartbeats
        unsubscribe = manager.subscribe(lambda e: every.append(e.kind))
        assert manager.events.wants_heartbeats
        sid = manager.create("tutor", "u").session_id
        manager.heartbeats([Beat(sid), Beat(sid)])
        manager.pause(sid)
        unsubscribe()
        assert not manager.events.wants_heartbeats
        manager.heartbeat(sid)
    assert every == ["created", "heartbeat", "heartbeat", "paused"]
    assert quiet == ["created", "paused"]
