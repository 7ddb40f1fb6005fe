"""Many threads and many processes on one SQLite file: every acknowledged checkpoint is there
exactly once, seq runs 1…n without gaps, and a killed process loses nothing it acknowledged."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import subprocess_env
from tether import InvalidTransition, SessionManager, StoreUnavailable
from tether.core.model import NewCheckpoint
from tether.core.validation import encode_payload
from tether.stores.sqlite import SQLiteStore
from tether.stores.sqlite.group_commit import SQLiteWrites
from tether.stores.sqlite.group_commit import _Job as Job
from tether.stores.sqlite.store import SCHEMA_VERSION

THREADS = 8
PER_THREAD = 40


def run_threads(count: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def assert_history(manager: SessionManager, session_id: str, expected: set[tuple[int, int]]) -> None:
    """seq is 1…n and the (writer, n) payloads are exactly the acknowledged ones."""
    history = manager.checkpoints(session_id, limit=10_000)
    assert [cp.seq for cp in history] == list(range(1, len(history) + 1))
    payloads = [(cp.data["writer"], cp.data["n"]) for cp in history]
    assert sorted(payloads) == sorted(expected)


def test_threads_appending_to_one_session(tmp_path: Path) -> None:
    manager = SessionManager(f"sqlite:///{tmp_path}/t.db")
    session = manager.create("tutor", "u1")
    acknowledged: dict[int, tuple[int, int]] = {}

    def append(writer: int) -> None:
        for n in range(PER_THREAD):
            cp = manager.checkpoint(session.session_id, "step", {"writer": writer, "n": n})
            acknowledged[cp.seq] = (writer, n)

    run_threads(THREADS, append)
    assert len(acknowledged) == THREADS * PER_THREAD
    assert_history(manager, session.session_id, set(acknowledged.values()))
    for cp in manager.checkpoints(session.session_id, limit=10_000):
        assert (cp.data["writer"], cp.data["n"]) == acknowledged[cp.seq]
    manager.close()


def test_threads_appending_to_their_own_sessions(tmp_path: Path) -> None:
    manager = SessionManager(f"sqlite:///{tmp_path}/t.db")
    sessions = [manager.create("tutor", f"u{i}").session_id for i in range(THREADS)]

    def append(writer: int) -> None:
        for n in range(PER_THREAD):
            assert manager.checkpoint(sessions[writer], "step", {"writer": writer, "n": n}).seq == n + 1

    run_threads(THREADS, append)
    for writer, session_id in enumerate(sessions):
        assert_history(manager, session_id, {(writer, n) for n in range(PER_THREAD)})
    manager.close()


def start_leader(writes: SQLiteWrites, call: Callable[[], None]) -> threading.Thread:
    """Run `call` on a thread and return once its write leads (white-box)."""
    first = threading.Thread(target=call)
    first.start()
    while not writes._leading:
        time.sleep(0.001)
    return first


def test_concurrent_writes_share_a_commit_and_a_rejected_one_spoils_none(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "g.db", isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (v INTEGER)")
    commits: list[str] = []
    conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    writes = SQLiteWrites(conn, lambda exc: StoreUnavailable(str(exc)))
    release = threading.Event()
    outcomes: dict[int, object] = {}

    def insert(value: int) -> Callable[[sqlite3.Connection], int]:
        def work(c: sqlite3.Connection) -> int:
            if value == 0:
                release.wait(5)  # the first leader holds the others back until all are queued
            c.execute("INSERT INTO t VALUES (?)", (value,))
            if value == 2:
                raise ValueError("rejected")
            return value

        return work

    def call(value: int) -> None:
        try:
            outcomes[value] = writes.run(insert(value))
        except ValueError as exc:
            outcomes[value] = exc

    first = start_leader(writes, lambda: call(0))
    others = [threading.Thread(target=call, args=(v,)) for v in (1, 2, 3)]
    for t in others:
        t.start()
    while len(writes._queue) < 3:
        time.sleep(0.001)
    release.set()
    for t in [first, *others]:
        t.join()
    assert outcomes[0] == 0 and outcomes[1] == 1 and outcomes[3] == 3
    assert isinstance(outcomes[2], ValueError)
    assert sorted(v for (v,) in conn.execute("SELECT v FROM t")) == [0, 1, 3]
    assert len(commits) == 2  # the first write alone, then the three queued ones together


CHILD_APPEND = """
import sys
from tether import SessionManager
manager = SessionManager(sys.argv[1])
for n in range(int(sys.argv[3])):
    cp = manager.checkpoint(sys.argv[2], "step", {"writer": int(sys.argv[4]), "n": n})
    print(cp.seq, flush=True)
manager.close()
"""


def test_processes_appending_to_one_session(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    manager = SessionManager(url)
    session = manager.create("tutor", "u1")
    per_process, processes = 30, 4
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_APPEND, url, session.session_id, str(per_process), str(w)],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(processes)
    ]
    printed = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        printed += [int(line) for line in out.split()]
    assert sorted(printed) == list(range(1, processes * per_process + 1))
    expected = {(w, n) for w in range(processes) for n in range(per_process)}
    assert_history(manager, session.session_id, expected)
    manager.close()


@pytest.mark.parametrize("synchronous", ["full", "normal"])
def test_a_killed_process_loses_no_acknowledged_checkpoint(tmp_path: Path, synchronous: str) -> None:
    url = f"sqlite:///{tmp_path}/t.db?synchronous={synchronous}"
    manager = SessionManager(url)
    session = manager.create("tutor", "u1")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_APPEND, url, session.session_id, "1000000", "0"],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acknowledged = [int(child.stdout.readline()) for _ in range(200)]
    child.send_signal(signal.SIGKILL)
    acknowledged += [int(line) for line in child.stdout.read().split()]
    child.wait(timeout=30)
    manager.close()
    with SessionManager(url) as reopened:
        stored = {cp.seq: cp.data["n"] for cp in reopened.checkpoints(session.session_id, limit=10_000)}
    assert acknowledged == list(range(1, len(acknowledged) + 1))
    for seq in acknowledged:
        assert stored[seq] == seq - 1
    assert sorted(stored) == list(range(1, len(stored) + 1))


def test_rejected_writes_in_shared_commits_fail_alone(tmp_path: Path) -> None:
    manager = SessionManager(f"sqlite:///{tmp_path}/t.db")
    live = manager.create("tutor", "u1").session_id
    ended = manager.create("tutor", "u2").session_id
    manager.complete(ended)
    rejected: list[int] = []
    accepted: list[tuple[int, int]] = []
    lock = threading.Lock()

    def append(writer: int) -> None:
        for n in range(PER_THREAD):
            target = ended if n % 3 == 0 else live
            try:
                manager.checkpoint(target, "step", {"writer": writer, "n": n})
            except InvalidTransition:
                with lock:
                    rejected.append(n)
            else:
                with lock:
                    accepted.append((writer, n))

    run_threads(16, append)
    assert sorted(rejected) == sorted(n for _ in range(16) for n in range(0, PER_THREAD, 3))
    assert_history(manager, live, set(accepted))
    assert manager.get(ended).last_seq == 1  # only its session_completed checkpoint
    manager.close()


CHILD_CREATE = """
import sys
from tether import SessionManager
with SessionManager(sys.argv[1]) as manager:
    session = manager.create("tutor", sys.argv[2])
    manager.checkpoint(session.session_id, "step", {})
"""


def test_processes_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD_CREATE, url, f"user-{i}"], env=subprocess_env())
        for i in range(4)
    ]
    assert [child.wait(timeout=120) for child in children] == [0, 0, 0, 0]
    with SessionManager(url) as manager:
        assert len(manager.list(limit=10)) == 4
    versions = sqlite3.connect(tmp_path / "fresh.db").execute("SELECT version FROM tether_schema").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]  # each migration recorded once


def test_a_forked_child_opens_its_own_connections(tmp_path: Path) -> None:
    manager = SessionManager(f"sqlite:///{tmp_path}/t.db")
    session = manager.create("tutor", "u1")
    manager.checkpoint(session.session_id, "before_fork", {})
    inherited = manager.store._writes  # type: ignore[attr-defined]  # white-box: the parent's writer
    pid = os.fork()
    if pid == 0:  # the child: write through the inherited manager, report by exit code
        code = 1
        try:
            reconnected = manager.store._writes is not inherited  # type: ignore[attr-defined]
            code = 0 if reconnected and manager.checkpoint(session.session_id, "in_child", {}).seq == 2 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert manager.checkpoint(session.session_id, "in_parent", {}).seq == 3
    names = [cp.name for cp in manager.checkpoints(session.session_id)]
    assert names == ["before_fork", "in_child", "in_parent"]
    manager.close()


def waiting_jobs(count: int) -> list[Job[None]]:
    """Followers as `SQLiteWrites.run` queues them: each asleep on its own held lock."""
    jobs: list[Job[None]] = []
    for _ in range(count):
        job: Job[None] = Job(lambda c: None)
        job.wake = threading.Lock()
        job.wake.acquire()
        jobs.append(job)
    return jobs


def test_an_interrupted_follower_drops_its_unstarted_write() -> None:
    """White-box (a signal handler raising in a waiting thread cannot be timed reliably)."""
    writes = SQLiteWrites(sqlite3.connect(":memory:"), lambda exc: StoreUnavailable(str(exc)))
    interrupted, behind = waiting_jobs(2)
    writes._leading, writes._queue = True, [interrupted, behind]
    assert interrupted.wake is not None
    writes._leave(interrupted, interrupted.wake)
    assert writes._queue == [behind] and writes._leading
    assert behind.wake is not None and behind.wake.locked()  # still waits for the current leader


def test_leadership_handed_to_an_interrupted_follower_passes_on() -> None:
    """White-box: the leader released the waiter's lock, but the waiter was interrupted first."""
    writes = SQLiteWrites(sqlite3.connect(":memory:"), lambda exc: StoreUnavailable(str(exc)))
    chosen, next_in_line = waiting_jobs(2)
    writes._leading, writes._queue = True, [chosen, next_in_line]
    assert chosen.wake is not None and next_in_line.wake is not None
    chosen.wake.release()  # what the finishing leader does for its successor
    writes._leave(chosen, chosen.wake)
    assert writes._queue == [next_in_line] and writes._leading
    assert not next_in_line.wake.locked()  # it leads now


def counting_commits(path: Path) -> tuple[SQLiteWrites, list[str], sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (v INTEGER)")
    commits: list[str] = []
    conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    return SQLiteWrites(conn, lambda exc: StoreUnavailable(str(exc))), commits, conn


def insert_many(conn: sqlite3.Connection, values: list[int]) -> list[int | Exception]:
    """A `Many`: refuses negative values (writing none of them), inserts the rest at once."""
    conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values if v >= 0])
    return [ValueError(f"refused {v}") if v < 0 else v for v in values]


def test_queued_items_of_one_kind_run_as_one_call_in_queue_order(tmp_path: Path) -> None:
    writes, commits, conn = counting_commits(tmp_path / "g.db")
    calls: list[list[int]] = []
    release = threading.Event()
    outcomes: dict[int, object] = {}

    def many(c: sqlite3.Connection, values: list[int]) -> list[int | Exception]:
        calls.append(values)
        if values == [0]:
            release.wait(5)  # the first leader holds the others back until all are queued
        return insert_many(c, values)

    def plain(c: sqlite3.Connection) -> int:
        c.execute("INSERT INTO t VALUES (100)")
        return 100

    def call(value: int) -> None:
        try:
            outcomes[value] = writes.run(plain) if value == 100 else writes.run_many(many, value)
        except ValueError as exc:
            outcomes[value] = exc

    first = start_leader(writes, lambda: call(0))
    queued = []
    for value in (1, -2, 3, 100, 4):  # started one by one, so they queue in this order
        queued.append(threading.Thread(target=call, args=(value,)))
        queued[-1].start()
        while len(writes._queue) < len(queued):
            time.sleep(0.001)
    release.set()
    for t in [first, *queued]:
        t.join()
    assert calls == [[0], [1, -2, 3], [4]]  # the plain write in between splits the run
    assert [outcomes[v] for v in (0, 1, 3, 100, 4)] == [0, 1, 3, 100, 4]
    assert isinstance(outcomes[-2], ValueError)
    assert sorted(v for (v,) in conn.execute("SELECT v FROM t")) == [0, 1, 3, 4, 100]
    assert len(commits) == 2  # the first alone, then the five queued ones together


def test_a_leader_waits_for_the_callers_of_the_last_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tether.stores.group_commit.GATHER_LIMIT", (30.0, 30.0))
    writes, commits, conn = counting_commits(tmp_path / "g.db")
    writes._last_batch = 3  # white-box: three callers were served together last time
    run_threads(3, lambda i: writes.run_many(insert_many, i))
    assert len(commits) == 1  # the first to arrive waited for the other two
    assert sorted(v for (v,) in conn.execute("SELECT v FROM t")) == [0, 1, 2]
    assert writes._last_batch == 3


def test_a_leader_stops_waiting_for_callers_who_do_not_come(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tether.stores.group_commit.GATHER_LIMIT", (1.0, 1.0))
    writes, commits, _ = counting_commits(tmp_path / "g.db")
    writes._last_batch = 16
    started = time.monotonic()
    assert writes.run_many(insert_many, 7) == 7
    waited = time.monotonic() - started
    assert waited >= 1.0 and waited < 30
    assert writes._last_batch == 1  # alone now: the next write does not wait
    started = time.monotonic()
    writes.run_many(insert_many, 8)
    assert time.monotonic() - started < 1.0 and len(commits) == 2


def test_a_cancelled_coroutine_s_queued_write_never_happens(tmp_path: Path) -> None:
    writes, _, conn = counting_commits(tmp_path / "g.db")
    started, release = threading.Event(), threading.Event()

    def slow(c: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)

    leader = threading.Thread(target=writes.run, args=(slow,))
    leader.start()
    started.wait(10)

    async def scenario() -> None:
        task = asyncio.create_task(writes.run_many_async(insert_many, 5))
        while not writes._queue:  # white-box: queued behind the busy leader
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert writes._queue == []

    asyncio.run(scenario())
    release.set()
    leader.join()
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert writes.run_many(insert_many, 6) == 6  # the queue still moves


def test_a_cancelled_coroutine_s_started_write_finishes_first(tmp_path: Path) -> None:
    writes, _, conn = counting_commits(tmp_path / "g.db")
    started, release = threading.Event(), threading.Event()

    def slow_many(c: sqlite3.Connection, values: list[int]) -> list[int | Exception]:
        started.set()
        release.wait(10)
        return insert_many(c, values)

    async def scenario() -> None:
        task = asyncio.create_task(writes.run_many_async(slow_many, 7))
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # the cancellation waits for the write in progress
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert conn.execute("SELECT v FROM t").fetchall() == [(7,)]


def test_threads_and_coroutines_append_to_one_session_through_one_group_commit(tmp_path: Path) -> None:
    manager = SessionManager(f"sqlite:///{tmp_path}/t.db")
    store = manager.store
    assert isinstance(store, SQLiteStore)
    session = manager.create("tutor", "u1")
    acknowledged: list[tuple[int, int, int]] = []

    def thread_appends(writer: int) -> None:
        for n in range(PER_THREAD):
            seq = manager.checkpoint(session.session_id, "step", {"writer": writer, "n": n}).seq
            acknowledged.append((seq, writer, n))

    async def coroutine_appends() -> None:
        async def one(writer: int, n: int) -> None:
            data = {"writer": writer, "n": n}
            encoded = encode_payload("data", data)
            new = NewCheckpoint("step", store.now(), encoded.text, encoded.copy)
            acknowledged.append(((await store.append_async(session.session_id, new, None)).seq, writer, n))

        await asyncio.gather(*(one(writer, n) for writer in range(100, 104) for n in range(PER_THREAD)))

    threads = [threading.Thread(target=thread_appends, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    asyncio.run(coroutine_appends())
    for t in threads:
        t.join()
    assert sorted(seq for seq, _, _ in acknowledged) == list(range(1, 8 * PER_THREAD + 1))
    assert_history(manager, session.session_id, {(w, n) for _, w, n in acknowledged})
    manager.close()
