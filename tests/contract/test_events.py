"""Every change made through a manager is announced to its subscribers, in order."""

from __future__ import annotations

import pytest

from tether import Beat, Event, ManualClock, SessionManager, TetherError


def test_each_change_emits_an_event_in_order(manager: SessionManager, clock: ManualClock) -> None:
    events: list[Event] = []
    manager.subscribe(events.append)
    sid = manager.create("tutor", "user-1").session_id
    manager.checkpoint(sid, "step", {"x": 1})
    manager.heartbeat(sid, phase="thinking")
    manager.update(sid, metadata={"k": 1})
    manager.pause(sid)
    manager.resume(sid)
    manager.fail(sid, "crash")
    clock.advance(1)
    manager.claim(sid, "worker-b")
    manager.complete(sid, epoch=2)
    manager.delete(sid)
    assert [e.kind for e in events] == [
        "created",
        "checkpoint",
        "heartbeat",
        "updated",
        "paused",
        "resumed",
        "failed",
        "claimed",
        "completed",
        "deleted",
    ]
    assert {e.session_id for e in events} == {sid}
    by_kind = {e.kind: e for e in events}
    assert (by_kind["checkpoint"].seq, by_kind["checkpoint"].data) == (1, {"name": "step"})
    assert by_kind["paused"].seq == 2
    assert by_kind["updated"].seq is None
    assert by_kind["claimed"].data == {"state": "active", "epoch": 2, "owner": "worker-b"}
    assert by_kind["claimed"].at == clock.now()


def test_refused_writes_emit_nothing(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    manager.complete(sid)
    events: list[Event] = []
    manager.subscribe(events.append)
    for refused in (
        lambda: manager.pause(sid),
        lambda: manager.checkpoint(sid, "late"),
        lambda: manager.heartbeat(sid),
        lambda: manager.claim(sid, "worker-b"),
    ):
        with pytest.raises(TetherError):
            refused()
    assert events == []


def test_unsubscribe_stops_delivery(manager: SessionManager) -> None:
    events: list[Event] = []
    unsubscribe = manager.subscribe(events.append)
    sid = manager.create("tutor", "user-1").session_id
    unsubscribe()
    manager.checkpoint(sid, "step")
    assert [e.kind for e in events] == ["created"]


def test_a_failing_subscriber_does_not_break_the_write_or_other_subscribers(
    manager: SessionManager, clock: ManualClock
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    events: list[Event] = []
    manager.subscribe(broken)
    manager.subscribe(events.append)
    sid = manager.create("tutor", "user-1").session_id
    cp = manager.checkpoint(sid, "step")
    assert manager.last_checkpoint(sid) == cp
    assert [e.kind for e in events] == ["created", "checkpoint"]
    assert events[0].at == clock.now()


def test_batched_heartbeats_emit_one_event_per_applied_beat(
    manager: SessionManager, clock: ManualClock
) -> None:
    a = manager.create("tutor", "user-1").session_id
    b = manager.create("tutor", "user-1").session_id
    events: list[Event] = []
    manager.subscribe(events.append)
    results = manager.heartbeats([Beat(a, phase="x"), Beat("missing"), Beat(b, 7), Beat(b)])
    assert [r is None for r in results] == [True, False, False, True]
    assert [(e.kind, e.session_id, e.data) for e in events] == [
        ("heartbeat", a, {"phase": "x"}),
        ("heartbeat", b, {"phase": None}),
    ]
    assert all(e.at == clock.now() for e in events)


def test_a_supervisor_time_out_is_announced(manager: SessionManager, clock: ManualClock) -> None:
    sid = manager.create("tutor", "user-1").session_id
    clock.advance(61)
    events: list[Event] = []
    manager.subscribe(events.append)
    manager.time_out(sid)
    [event] = events
    assert (event.kind, event.session_id, event.seq, event.at) == ("timed_out", sid, 1, clock.now())
    assert event.data["state"] == "failed"
    assert event.data["error"] == "heartbeat_timeout"
