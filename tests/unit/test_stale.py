"""Stale-session queries: quiet, long-paused, suspect and dead sessions, by type and user."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tether import Liveness, ManualClock, Policies, Policy, SessionManager, ValidationError
from tether.stores import Store

POLICIES = Policies(Policy(timeout=10, suspect_after=4))


@pytest.fixture
def managed(store: Store) -> SessionManager:
    return SessionManager(store, policies=POLICIES, worker_id="worker-a")


def ids(page: object) -> set[str]:
    return {s.session_id for s in page}  # type: ignore[attr-defined]


def test_liveness_moves_healthy_suspect_dead(managed: SessionManager, clock: ManualClock) -> None:
    quiet = managed.create("tutor", "u1")
    chatty = managed.create("tutor", "u2")
    assert ids(managed.stale(liveness="suspect")) == set()
    clock.advance(5)
    managed.heartbeat(chatty.session_id)
    assert managed.get(quiet.session_id).liveness(clock.now()) is Liveness.SUSPECT
    assert ids(managed.stale(liveness=Liveness.SUSPECT)) == {quiet.session_id}
    assert ids(managed.stale(liveness="dead")) == set()
    clock.advance(5)
    managed.heartbeat(chatty.session_id)
    assert managed.get(quiet.session_id).liveness(clock.now()) is Liveness.DEAD
    assert ids(managed.stale(liveness="dead")) == {quiet.session_id}
    assert ids(managed.stale(liveness="suspect")) == {quiet.session_id}  # dead is past suspect too


def test_no_heartbeat_for_and_paused_for(managed: SessionManager, clock: ManualClock) -> None:
    a = managed.create("tutor", "u1")
    b = managed.create("grader", "u1")
    managed.pause(b.session_id)
    clock.advance(3)
    c = managed.create("tutor", "u2")
    assert ids(managed.stale(no_heartbeat_for=2)) == {a.session_id, b.session_id}
    assert ids(managed.stale(no_heartbeat_for=timedelta(seconds=2), agent_type="tutor")) == {a.session_id}
    assert ids(managed.stale(paused_for=2.5)) == {b.session_id}
    assert ids(managed.stale(paused_for=4)) == set()
    assert ids(managed.stale(no_heartbeat_for=1, user_id="u2")) == set()
    clock.advance(2)
    assert ids(managed.stale(no_heartbeat_for=1, user_id="u2")) == {c.session_id}


def test_ended_sessions_are_never_stale(managed: SessionManager, clock: ManualClock) -> None:
    s = managed.create("tutor", "u1")
    managed.complete(s.session_id)
    clock.advance(100)
    assert ids(managed.stale(no_heartbeat_for=1)) == set()
    assert ids(managed.stale(liveness="dead")) == set()


def test_stale_pages_with_a_cursor(managed: SessionManager, clock: ManualClock) -> None:
    created = {managed.create("tutor", f"u{i}").session_id for i in range(7)}
    clock.advance(11)
    first = managed.stale(liveness="dead", limit=4)
    assert len(first) == 4 and first.next_cursor is not None
    second = managed.stale(liveness="dead", limit=4, cursor=first.next_cursor)
    assert second.next_cursor is None
    assert ids(first) | ids(second) == created


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"liveness": "healthy"}, "liveness"),
        ({"no_heartbeat_for": -1}, "no_heartbeat_for"),
        ({"paused_for": "soon"}, "paused_for"),
        ({"user_id": ""}, "user_id"),
    ],
)
def test_bad_arguments_name_their_field(
    managed: SessionManager, arguments: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        managed.stale(**arguments)  # type: ignore[arg-type]
    assert caught.value.field == field
