"""Bodies of the worker threads and processes the reliability tests race against each other.

Process workers are started with the `spawn` method, so everything here is importable and takes
only picklable arguments (a store URL, never a store).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tether import ConflictError, LeaseLost, NotClaimable, Policies, Policy, SessionManager
from tether.core.clock import Clock
from tether.front.supervisor import Supervisor
from tether.stores import Store, open_store

# Long enough that a winner's lease outlives the trial; unbounded recoveries for repeated trials.
RACE_POLICIES = Policies(Policy(timeout=60, max_recoveries=1_000_000))


@dataclass(frozen=True)
class Outcome:
    """One contender's view of one trial."""

    won: bool
    epoch: int | None  # the epoch it won with
    claim_error: str | None  # why its claim failed
    stale_write_error: str | None  # what a write at the old epoch raised (None: it was accepted!)
    second_claim_error: str | None  # what claiming again after the race raised


def contend(manager: SessionManager, session_id: str, old_epoch: int) -> Outcome:
    """Claim once; a loser then writes as if it still held the old epoch and claims once more."""
    try:
        won = manager.claim(session_id)
    except ConflictError as exc:
        return Outcome(
            False,
            None,
            type(exc).__name__,
            _stale_write(manager, session_id, old_epoch),
            _reclaim(manager, session_id),
        )
    return Outcome(True, won.epoch, None, None, None)


def _stale_write(manager: SessionManager, session_id: str, epoch: int) -> str | None:
    try:
        manager.checkpoint(session_id, "zombie", {"epoch": epoch}, epoch=epoch)
    except LeaseLost as exc:
        return type(exc).__name__
    return None


def _reclaim(manager: SessionManager, session_id: str) -> str | None:
    try:
        manager.claim(session_id)
    except NotClaimable as exc:
        return type(exc).__name__
    return None


def race_in_threads(
    stores: list[Store], session_id: str, old_epoch: int, barrier: threading.Barrier
) -> list[Outcome]:
    """One trial: every store's worker thread claims `session_id` at once."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def run(index: int, store: Store) -> None:
        manager = SessionManager(store, policies=RACE_POLICIES, worker_id=f"thread-{index}")
        barrier.wait()
        outcome = contend(manager, session_id, old_epoch)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def race_process(url: str, index: int, conn: Connection, barrier: Any) -> None:
    """A long-lived contender process: per (session_id, old_epoch) received, race and report."""
    with SessionManager(open_store(url), policies=RACE_POLICIES, worker_id=f"process-{index}") as manager:
        while (message := conn.recv()) is not None:
            session_id, old_epoch = message
            barrier.wait()
            conn.send(contend(manager, session_id, old_epoch))


def sweep_process(url: str, conn: Connection, barrier: Any, clock: Clock | None = None) -> None:
    """A supervisor process: sweep until a sweep finds nothing left; report what it timed out."""
    policies = Policies(Policy(timeout=1, max_recoveries=1))
    with SessionManager(open_store(url, clock), policies=policies) as manager:
        supervisor = Supervisor(manager, page_size=50)
        barrier.wait()
        timed_out: list[str] = []
        lost = 0
        while report := supervisor.sweep():
            timed_out.extend(report.timed_out)
            lost += report.lost_races
        conn.send((timed_out, lost))
