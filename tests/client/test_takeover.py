"""A worker killed mid-session, through the API: the server's supervisor notices its silence, another
worker takes the session over through `tether.Client`, and whatever the old owner still sends is
refused with 409 lease_lost. Real processes: `tether serve`, and workers that are SIGKILLed/SIGSTOPped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_server import LiveServer
from tests.remote import serve
from tests.support import subprocess_env
from tether import Client, LeaseLost, Policies, Policy, State

LEASE = 3.0  # seconds of silence before the server's supervisor times a session out
POLICIES = Policies(default=Policy(timeout=LEASE, suspect_after=LEASE / 2))
DEADLINE = 30.0

# An agent as a user writes one: open a session (background heartbeats), checkpoint, work, repeat.
WORKER = """
import sys, time
from tether import Client, LeaseLost
client = Client(sys.argv[1], worker_id=sys.argv[2])
try:
    with client.open("essay", "alice") as session:
        print(session.session_id, session.epoch, flush=True)
        for step in range(1, 10_000):
            session.checkpoint("step", {"n": step})
            print("step", step, flush=True)
            time.sleep(0.2)
except LeaseLost as lost:
    print("lease_lost", lost.epoch, lost.current_epoch, flush=True)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("takeover")
    with serve(f"sqlite:///{workdir}/tether.db", workdir, POLICIES, "--sweep-interval", "0.1") as served:
        yield served


def _start_worker(
    server: LiveServer, worker_id: str, tmp_path: Path
) -> tuple[subprocess.Popen[str], str, int]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    worker = subprocess.Popen(
        [sys.executable, str(script), server.url, worker_id],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    session_id, epoch = worker.stdout.readline().split()
    assert worker.stdout.readline().startswith("step 1")  # mid-session: at least one checkpoint written
    return worker, session_id, int(epoch)


def _wait_for(condition: str, check: object) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting until {condition}")


def test_a_killed_worker_is_detected_and_taken_over_and_its_late_writes_get_409(
    server: LiveServer, tmp_path: Path
) -> None:
    worker, session_id, epoch = _start_worker(server, "doomed", tmp_path)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    rescuer = Client(server.url, worker_id="rescuer")

    # Detected: no heartbeats, so the server's supervisor times the session out (recoverable).
    _wait_for("the session is timed out", lambda: rescuer.get(session_id).state is State.FAILED)
    failed = rescuer.get(session_id)
    assert failed.failure is not None and not failed.failure.final

    # Taken over through the API, continuing from the last checkpoint the dead worker wrote.
    with rescuer.resume_or_create("essay", "alice") as session:
        assert (session.session_id, session.epoch) == (session_id, epoch + 1)
        assert session.resumed_from is not None and session.resumed_from.name == "step"
        done_steps = session.resumed_from.data["n"]
        session.checkpoint("step", {"n": done_steps + 1})

    # The old owner's writes, as its process would have sent them, are refused with 409.
    with httpx.Client(base_url=server.url) as raw:
        late = raw.post(f"/v1/sessions/{session_id}/checkpoints", json={"name": "late", "epoch": epoch})
    assert late.status_code == 409
    assert late.headers["content-type"].startswith("application/problem+json")
    assert (late.json()["code"], late.json()["epoch"], late.json()["current_epoch"]) == (
        "lease_lost",
        epoch,
        epoch + 1,
    )
    with pytest.raises(LeaseLost):
        Client(server.url, worker_id="doomed").heartbeat(session_id, epoch=epoch)
    history = rescuer.checkpoints(session_id, limit=1000)
    assert "late" not in [cp.name for cp in history]
    assert [cp.data["n"] for cp in history if cp.name == "step"] == list(range(1, done_steps + 2))
    rescuer.close()


def test_a_frozen_worker_that_wakes_up_after_the_takeover_writes_nothing(
    server: LiveServer, tmp_path: Path
) -> None:
    worker, session_id, epoch = _start_worker(server, "sleepy", tmp_path)
    os.kill(worker.pid, signal.SIGSTOP)  # a zombie: alive, but silent past its lease
    rescuer = Client(server.url, worker_id="rescuer")
    try:
        _wait_for("the session is timed out", lambda: rescuer.get(session_id).state is State.FAILED)
        with rescuer.open("essay", "alice", session_id=session_id) as taken:  # claims it, and beats
            assert taken.epoch == epoch + 1
            history = rescuer.checkpoints(session_id, limit=1000)
            os.kill(worker.pid, signal.SIGCONT)
            out, _ = worker.communicate(timeout=DEADLINE)
            assert rescuer.checkpoints(session_id, limit=1000) == history
            assert rescuer.get(session_id).owner == "rescuer"
    finally:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGCONT)
    # Its next write (a checkpoint or a background beat) got 409, and the handle stopped writing.
    assert out.splitlines()[-1] == f"lease_lost {epoch} {epoch + 1}"
    rescuer.close()
