"""A worker SIGKILLed while it holds a session is detected by the supervisor and taken over; the new
owner resumes from exactly the last checkpoint the dead worker had acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import STORE_KINDS, make_store_url
from tests.reliability.agent_child import POLICIES
from tests.support import subprocess_env
from tether import SessionManager, State
from tether.stores import open_store

ROOT = Path(__file__).resolve().parents[2]
SHARED_STORE_KINDS = [k for k in STORE_KINDS if k != "memory"]


def start_agent(
    url: str, session_id: str, hold_after: int, stderr: int | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.agent_child", url, session_id, str(hold_after)],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def kill_after(agent: subprocess.Popen[str], marker: str, count: int) -> list[tuple[int, int]]:
    """SIGKILL the agent once `count` lines start with `marker`; returns every (seq, i) it acked."""
    assert agent.stdout is not None
    acks: list[tuple[int, int]] = []
    seen = 0
    for line in agent.stdout:
        if line.startswith("ack "):
            _, seq, i = line.split()
            acks.append((int(seq), int(i)))
        seen += line.startswith(marker)
        if seen == count:
            break
    os.kill(agent.pid, signal.SIGKILL)
    for line in agent.stdout:  # whatever it printed before dying was acknowledged too
        if line.startswith("ack "):
            _, seq, i = line.split()
            acks.append((int(seq), int(i)))
    agent.wait(10)
    return acks


def wait_for_state(manager: SessionManager, session_id: str, state: State, limit: float) -> float:
    started = time.monotonic()
    while manager.get(session_id).state is not state:
        assert time.monotonic() - started < limit, f"{session_id} never became {state}"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", SHARED_STORE_KINDS)
@pytest.mark.parametrize("moment", ["between_writes", "mid_stream"])
def test_killed_worker_is_detected_and_taken_over_from_its_last_ack(
    kind: str, moment: str, tmp_path: Path
) -> None:
    url = make_store_url(kind, tmp_path)
    with SessionManager(open_store(url), policies=POLICIES, worker_id="survivor") as manager:
        manager.store.migrate()
        agent = start_agent(url, "doomed-session", 25 if moment == "between_writes" else 0)
        acks = kill_after(agent, *(("holding", 1) if moment == "between_writes" else ("ack ", 25)))
        with manager.supervise(interval=0.05):
            wait_for_state(manager, "doomed-session", State.FAILED, limit=30)
        failure = manager.get("doomed-session").failure
        assert failure is not None and failure.error == "heartbeat_timeout" and not failure.final
        with manager.open("tutor", "user-1", session_id="doomed-session") as taker:
            resumed = taker.resumed_from
            assert resumed is not None and taker.epoch == 2
        last_seq, last_i = acks[-1]
        assert [i for _, i in acks] == list(range(1, len(acks) + 1))
        if moment == "between_writes":
            assert (resumed.seq, resumed.data) == (last_seq, {"i": last_i})
        else:  # a write in flight at the kill may have committed without its ack being printed
            assert (resumed.seq, resumed.data["i"]) in {(last_seq, last_i), (last_seq + 1, last_i + 1)}
        steps = manager.checkpoints("doomed-session", name="step", limit=1000)
        assert [cp.data["i"] for cp in steps] == list(range(1, resumed.data["i"] + 1))
