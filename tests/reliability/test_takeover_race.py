"""Takeover race: 8 workers claim the same dead session, 1,000 times per store (threads, and
separately processes).

Exactly one wins each trial; every loser's claim is refused, and so is each loser's write at the
old epoch and a second claim; the old owner's write is refused too (LeaseLost / NotClaimable).
Threads share one manual clock; processes, which cannot, race for sessions created an hour in the
past (their leases long expired by the wall clock and by the database clock).
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import STORE_KINDS, make_store_url
from tests.reliability.workers import RACE_POLICIES, Outcome, race_in_threads, race_process
from tether import LeaseLost, ManualClock, SessionManager, State, SystemClock
from tether.stores import Store, open_store

WORKERS = 8
# A bounded form runs by default (CI); the long form, minutes on a loaded 2-core machine, with `-m slow`.
TRIALS = [50, pytest.param(1_000, marks=pytest.mark.slow)]
PROCESS_TRIALS = [30, pytest.param(1_000, marks=pytest.mark.slow)]
SHARED_STORE_KINDS = [k for k in STORE_KINDS if k != "memory"]  # memory is private to a process


def check_trial(old_owner: SessionManager, session_id: str, outcomes: list[Outcome]) -> None:
    winners = [o for o in outcomes if o.won]
    assert len(outcomes) == WORKERS and len(winners) == 1, outcomes
    losers = [o for o in outcomes if not o.won]
    assert {o.claim_error for o in losers} <= {"NotClaimable", "ConflictError"}
    assert {o.stale_write_error for o in losers} == {"LeaseLost"}
    assert {o.second_claim_error for o in losers} == {"NotClaimable"}
    session = old_owner.get(session_id)
    assert session.epoch == winners[0].epoch == 2 and session.state is State.ACTIVE
    with pytest.raises(LeaseLost):
        old_owner.checkpoint(session_id, "zombie", epoch=1)
    with pytest.raises(LeaseLost):
        old_owner.heartbeat(session_id, epoch=1)
    names = [cp.name for cp in old_owner.checkpoints(session_id)]
    assert names == ["step", "session_recovered"]


@pytest.fixture
def race_stores(store_url: str, clock: ManualClock) -> Iterator[list[Store]]:
    """One store per worker thread (own connections), all on the test's manual clock."""
    if store_url.startswith("memory"):
        shared = open_store(store_url, clock)
        stores = [shared] * (WORKERS + 1)
    else:
        stores = [open_store(store_url, clock) for _ in range(WORKERS + 1)]
    yield stores
    for s in set(stores):
        s.close()


@pytest.mark.parametrize("trials", TRIALS)
def test_threads_race_for_a_dead_session(race_stores: list[Store], clock: ManualClock, trials: int) -> None:
    owner_store, *worker_stores = race_stores
    old_owner = SessionManager(owner_store, policies=RACE_POLICIES, worker_id="old-owner")
    barrier = threading.Barrier(WORKERS)
    for _ in range(trials):
        session = old_owner.create("tutor", "u1")
        old_owner.checkpoint(session.session_id, "step", epoch=1)
        clock.advance(61)
        outcomes = race_in_threads(worker_stores, session.session_id, 1, barrier)
        check_trial(old_owner, session.session_id, outcomes)


@pytest.mark.parametrize("trials", PROCESS_TRIALS)
@pytest.mark.parametrize("kind", SHARED_STORE_KINDS)
def test_processes_race_for_a_dead_session(kind: str, trials: int, tmp_path: Path) -> None:
    url = make_store_url(kind, tmp_path)
    past = ManualClock(SystemClock().now() - timedelta(hours=1))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    pipes = [context.Pipe() for _ in range(WORKERS)]
    processes = [
        context.Process(target=race_process, args=(url, i, child, barrier), daemon=True)
        for i, (_, child) in enumerate(pipes)
    ]
    with SessionManager(open_store(url, past), policies=RACE_POLICIES, worker_id="old-owner") as owner:
        for p in processes:
            p.start()
        try:
            for _ in range(trials):
                session = owner.create("tutor", "u1")
                owner.checkpoint(session.session_id, "step", epoch=1)
                for parent, _ in pipes:
                    parent.send((session.session_id, 1))
                check_trial(owner, session.session_id, [parent.recv() for parent, _ in pipes])
        finally:
            for parent, _ in pipes:
                parent.send(None)
            for p in processes:
                p.join(30)
    assert all(p.exitcode == 0 for p in processes)
