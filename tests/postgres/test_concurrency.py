"""Many processes and threads on one PostgreSQL: seq allocation never duplicates or skips, every
acknowledged checkpoint is stored exactly once, and exactly one claimer wins a takeover."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from tests.support import subprocess_env
from tether import ConflictError, ManualClock, SessionManager, TetherError
from tether.stores.postgres import PostgresStore

CHILD_APPEND = """
import sys
from tether import SessionManager
url, writer, rounds, *session_ids = sys.argv[1:]
with SessionManager(url, worker_id=f"writer-{writer}") as manager:
    for n in range(int(rounds)):
        for session_id in session_ids:
            cp = manager.checkpoint(session_id, "step", {"writer": int(writer), "n": n}, epoch=1)
            print(session_id, cp.seq, flush=True)
"""


def assert_exactly_acknowledged(
    manager: SessionManager, session_id: str, acknowledged: dict[int, tuple[int, int]]
) -> None:
    """seq runs 1…n with no gap, and each stored checkpoint is the one acknowledged with its seq."""
    history = manager.checkpoints(session_id, limit=10_000)
    assert [cp.seq for cp in history] == list(range(1, len(history) + 1))
    assert {cp.seq: (cp.data["writer"], cp.data["n"]) for cp in history} == acknowledged


def test_processes_appending_to_the_same_sessions(pg_url: str) -> None:
    processes, rounds = 4, 40
    manager = SessionManager(pg_url, worker_id="setup")
    session_ids = [manager.create("tutor", "u1").session_id for _ in range(3)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_APPEND, pg_url, str(w), str(rounds), *session_ids],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(processes)
    ]
    seqs: dict[str, list[int]] = defaultdict(list)
    for child in children:
        out, _ = child.communicate(timeout=240)
        assert child.returncode == 0
        for line in out.splitlines():
            session_id, seq = line.split()
            seqs[session_id].append(int(seq))
    for session_id in session_ids:
        assert sorted(seqs[session_id]) == list(range(1, processes * rounds + 1))
        history = manager.checkpoints(session_id, limit=10_000)
        assert [cp.seq for cp in history] == list(range(1, processes * rounds + 1))
        per_writer = defaultdict(list)
        for cp in history:
            per_writer[cp.data["writer"]].append(cp.data["n"])
        assert per_writer == {w: list(range(rounds)) for w in range(processes)}  # each writer in order
    manager.close()


def test_threads_sharing_one_pool_append_each_checkpoint_once(pg_url: str) -> None:
    manager = SessionManager(f"{pg_url}&pool_max=8", worker_id="w")
    session = manager.create("tutor", "u1")
    acknowledged: dict[int, tuple[int, int]] = {}

    def append(writer: int) -> None:
        for n in range(25):
            cp = manager.checkpoint(session.session_id, "step", {"writer": writer, "n": n}, epoch=1)
            acknowledged[cp.seq] = (writer, n)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(acknowledged) == 12 * 25
    assert_exactly_acknowledged(manager, session.session_id, acknowledged)
    assert manager.get(session.session_id).version == 1  # appends never bump the version
    manager.close()


def test_exactly_one_of_many_claimers_takes_a_dead_session_over(pg_url: str) -> None:
    clock = ManualClock(datetime(2026, 5, 1, tzinfo=UTC))
    store = PostgresStore.from_url(f"{pg_url}&pool_max=8", clock)
    owner = SessionManager(store, worker_id="owner")
    session = owner.create("tutor", "u1")
    clock.advance(timedelta(hours=1).total_seconds())
    winners: list[str] = []
    losers: list[ConflictError] = []

    def claim(worker: str) -> None:
        try:
            winners.append(SessionManager(store, worker_id=worker).claim(session.session_id).owner or "")
        except ConflictError as exc:
            losers.append(exc)

    threads = [threading.Thread(target=claim, args=(f"claimer-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(losers) == 7
    after = owner.get(session.session_id)
    assert (after.owner, after.epoch, after.recoveries) == (winners[0], 2, 1)
    assert [cp.name for cp in owner.checkpoints(session.session_id)] == ["session_recovered"]
    store.close()


def checkpoints_left(manager: SessionManager, session_ids: list[str]) -> int:
    """Rows in the checkpoints table for these sessions, whether or not the sessions still exist."""
    pool = manager.store._pool  # type: ignore[attr-defined]  # white-box: the table itself
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM checkpoints WHERE session_id = ANY(%s)", (session_ids,)
        ).fetchone()
    return int(row["n"])


def appending_while(manager: SessionManager, session_ids: list[str], remove: Callable[[], object]) -> None:
    """Three threads append to each session without pause; once they are in full swing, `remove`."""
    stop = threading.Event()
    appended: list[int] = []

    def append(session_id: str) -> None:
        while not stop.is_set():
            try:
                manager.checkpoint(session_id, "step", {})
            except TetherError:  # the session is gone
                return
            appended.append(1)

    threads = [threading.Thread(target=append, args=(sid,)) for sid in session_ids for _ in range(3)]
    for t in threads:
        t.start()
    while len(appended) < 20:
        time.sleep(0.001)
    remove()
    stop.set()
    for t in threads:
        t.join()


def map_all(call: Callable[[str], object], values: list[str]) -> None:
    for value in values:
        call(value)


@pytest.mark.parametrize("how", ["delete", "erase_user"])
def test_appends_racing_a_delete_leave_no_checkpoint_behind(pg_url: str, how: str) -> None:
    """Checkpoints have no foreign key (migration 0003): a delete locks the session first, so an
    append either commits before it (and is deleted with it) or finds the session gone."""
    manager = SessionManager(f"{pg_url}&pool_max=8", worker_id="w")
    removed: list[str] = []
    for round_ in range(6):
        user = f"racer-{round_}"
        session_ids = [manager.create("tutor", user).session_id for _ in range(2)]
        if how == "delete":
            appending_while(manager, session_ids, partial(map_all, manager.delete, session_ids))
        else:
            appending_while(manager, session_ids, partial(manager.erase_user, user))
        assert not any(manager.list(user_id=user).items)
        removed += session_ids
    assert checkpoints_left(manager, removed) == 0
    manager.close()
