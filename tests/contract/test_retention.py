"""Retention: ended sessions older than their agent type's period go, with their checkpoints, in
bounded batches; everything else stays. Dry runs change nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tether import Event, ManualClock, NotFound, Policies, SessionManager, State
from tether.core.policy import Policy
from tether.front.supervisor import Supervisor
from tether.stores import Store, open_store

from .conftest import front_door

HOUR, DAY = 3600.0, 86_400.0
# Completed sessions of most types go after a day, failed ones after two; "ephemeral" keeps its
# completed sessions for an hour; "archival" keeps everything for ever.
RETAINING = Policies(
    default=Policy(retain_completed=DAY, retain_failed=2 * DAY),
    by_type={"ephemeral": Policy(retain_completed=HOUR), "archival": Policy()},
)


@pytest.fixture(params=["sync", "async"])
def retaining(request: pytest.FixtureRequest, store: Store, store_url: str) -> Iterator[SessionManager]:
    yield from front_door(request.param, store, store_url, RETAINING)


def _ended(manager: SessionManager, state: State, agent_type: str = "tutor", **create: object) -> str:
    sid = manager.create(agent_type, "user-1", **create).session_id  # type: ignore[arg-type]
    manager.checkpoint(sid, "work", {"n": 1})
    if state is State.COMPLETED:
        manager.complete(sid)
    elif state is State.FAILED:
        manager.fail(sid, "boom", final=True)
    return sid


def _exists(manager: SessionManager, session_id: str) -> bool:
    try:
        manager.get(session_id)
    except NotFound:
        return False
    return True


def test_ended_sessions_go_after_their_period_with_their_checkpoints(
    retaining: SessionManager, clock: ManualClock
) -> None:
    completed = _ended(retaining, State.COMPLETED)
    failed = _ended(retaining, State.FAILED)
    live = _ended(retaining, State.ACTIVE)
    clock.advance(DAY + 1)
    young = _ended(retaining, State.COMPLETED)
    report = retaining.enforce_retention()
    assert report.session_ids == (completed,) and report.removed == 1 and not report.dry_run
    assert not _exists(retaining, completed)
    with pytest.raises(NotFound):
        retaining.checkpoints(completed)
    assert all(_exists(retaining, sid) for sid in (failed, live, young))
    clock.advance(DAY + 1)
    assert retaining.enforce_retention().session_ids == (young, failed)  # rule by rule
    assert [s.session_id for s in retaining.list()] == [live]


def test_each_agent_type_follows_its_own_policy(retaining: SessionManager, clock: ManualClock) -> None:
    ephemeral = _ended(retaining, State.COMPLETED, "ephemeral")
    archival = _ended(retaining, State.COMPLETED, "archival")
    archival_failed = _ended(retaining, State.FAILED, "archival")
    ephemeral_failed = _ended(retaining, State.FAILED, "ephemeral")  # inherits nothing: kept
    clock.advance(HOUR + 1)
    assert retaining.enforce_retention().session_ids == (ephemeral,)
    clock.advance(365 * DAY)
    assert retaining.enforce_retention().removed == 0
    assert all(_exists(retaining, sid) for sid in (archival, archival_failed, ephemeral_failed))


def test_a_dry_run_lists_what_would_go_and_removes_nothing(
    retaining: SessionManager, clock: ManualClock
) -> None:
    doomed = sorted(_ended(retaining, State.COMPLETED) for _ in range(3))  # same instant: by id
    clock.advance(DAY + 1)
    dry = retaining.enforce_retention(dry_run=True)
    assert dry.dry_run and dry.session_ids == tuple(doomed)
    assert dry.retired[0].rule.state is State.COMPLETED and dry.retired[0].rule.agent_type is None
    assert all(_exists(retaining, sid) for sid in doomed)
    assert retaining.enforce_retention().session_ids == tuple(doomed)


def test_a_parent_stays_while_a_child_is_live(retaining: SessionManager, clock: ManualClock) -> None:
    parent = _ended(retaining, State.COMPLETED)
    child = _ended(retaining, State.ACTIVE, parent_session_id=parent)
    clock.advance(DAY + 1)
    assert retaining.enforce_retention().removed == 0
    retaining.pause(child)
    assert retaining.enforce_retention().removed == 0
    retaining.resume(child)
    retaining.complete(child)
    assert retaining.enforce_retention().session_ids == (parent,)
    clock.advance(DAY + 1)
    assert retaining.enforce_retention().session_ids == (child,)


def test_a_pass_works_in_bounded_batches_and_leaves_the_rest_for_the_next(
    retaining: SessionManager, clock: ManualClock
) -> None:
    doomed = sorted(_ended(retaining, State.COMPLETED) for _ in range(5))  # same instant: by id
    clock.advance(DAY + 1)
    assert retaining.enforce_retention(batch=2, max_batches=2).session_ids == tuple(doomed[:4])
    assert retaining.enforce_retention(batch=2, max_batches=2).session_ids == (doomed[4],)
    assert retaining.enforce_retention().removed == 0


def test_removals_are_announced_as_deleted_events(retaining: SessionManager, clock: ManualClock) -> None:
    doomed = _ended(retaining, State.COMPLETED)
    clock.advance(DAY + 1)
    seen: list[Event] = []
    retaining.subscribe(seen.append)
    retaining.enforce_retention(dry_run=True)
    assert seen == []
    retaining.enforce_retention()
    assert [(e.session_id, e.kind, e.data["reason"]) for e in seen] == [(doomed, "deleted", "retention")]


def test_the_supervisor_applies_retention_at_its_interval(store: Store, clock: ManualClock) -> None:
    manager = SessionManager(store, policies=RETAINING, worker_id="supervisor")
    doomed = _ended(manager, State.COMPLETED)
    clock.advance(DAY + 1)
    supervisor = Supervisor(manager, retention_interval=2 * HOUR)
    assert supervisor.sweep().retired == (doomed,)
    later = _ended(manager, State.COMPLETED, "ephemeral")
    clock.advance(HOUR + 1)
    assert supervisor.sweep().retired == ()  # due, but the last pass was under two hours ago
    clock.advance(HOUR)
    assert supervisor.sweep().retired == (later,)


def test_retention_racing_appends_and_a_second_supervisor_keeps_what_it_must(
    store: Store, store_url: str, clock: ManualClock
) -> None:
    """Two supervisors retire one backlog in small batches while a worker appends to live
    sessions and ends new ones: every expired session goes exactly once, nothing else goes, and
    every acknowledged checkpoint of what stays is there."""
    first = SessionManager(store, policies=RETAINING, worker_id="first")
    other_store = store if store_url.startswith("memory") else open_store(store_url, clock)
    second = SessionManager(other_store, policies=RETAINING, worker_id="second")
    expired = {_ended(first, State.COMPLETED) for _ in range(60)}
    clock.advance(DAY + 1)
    live = [first.create("tutor", "user-1").session_id for _ in range(4)]
    acknowledged: dict[str, int] = {sid: 0 for sid in live}
    kept: set[str] = set()
    removed: list[list[str]] = [[], []]
    done = threading.Event()

    def supervise(manager: SessionManager, into: list[str]) -> None:
        while not done.is_set():
            into.extend(manager.enforce_retention(batch=3, max_batches=2).session_ids)

    def work() -> None:
        for n in range(40):
            sid = live[n % len(live)]
            first.checkpoint(sid, "step", {"n": n})
            acknowledged[sid] += 1
            if n % 10 == 0:
                kept.add(_ended(first, State.COMPLETED))  # ended now: young, must stay

    threads = [
        threading.Thread(target=supervise, args=(m, r)) for m, r in zip((first, second), removed, strict=True)
    ]
    for t in threads:
        t.start()
    work()
    while not expired <= {*removed[0], *removed[1]}:
        done.wait(0.01)
    done.set()
    for t in threads:
        t.join()
    if other_store is not store:
        other_store.close()
    assert sorted(removed[0] + removed[1]) == sorted(expired)  # each once, by one of the two
    assert {s.session_id for s in first.list(limit=1000)} == {*live, *kept}
    for sid, count in acknowledged.items():
        assert [c.data["n"] for c in first.checkpoints(sid, limit=1000)] == [
            n for n in range(40) if live[n % len(live)] == sid
        ]
        assert first.get(sid).last_seq == count
