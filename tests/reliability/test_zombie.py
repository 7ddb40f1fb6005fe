"""A worker frozen (SIGSTOP) past its lease is taken over; when it wakes (SIGCONT) it is a zombie:
none of its writes gets in after the takeover, and it learns so from LeaseLost.

The agent's acknowledged seqs are recorded here, outside the agent (tests/reliability/agent_child).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import make_store_url
from tests.reliability.agent_child import POLICIES
from tests.reliability.test_killed_worker import SHARED_STORE_KINDS, start_agent, wait_for_state
from tether import SessionManager, State


def acks_until(agent: subprocess.Popen[str], count: int) -> list[tuple[int, int]]:
    assert agent.stdout is not None
    acks = []
    for line in agent.stdout:
        if line.startswith("ack "):
            acks.append(tuple(map(int, line.split()[1:])))
        if len(acks) == count:
            return acks
    raise AssertionError("the agent stopped before its acks")


def holds_the_write_lock(url: str) -> bool:
    """Whether someone holds the SQLite file's write lock (a frozen writer would block every other)."""
    if not url.startswith("sqlite:///"):
        return False  # PostgreSQL statements run in autocommit: a frozen client holds no lock
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


def freeze_outside_a_write(agent: subprocess.Popen[str], url: str) -> None:
    """SIGSTOP the agent at a moment it holds no write lock: on SQLite a process frozen inside a write
    transaction stops every writer until it wakes (docs/reliability.md), which is not this test's fault."""
    for _ in range(200):
        os.kill(agent.pid, signal.SIGSTOP)
        if not holds_the_write_lock(url):
            return
        os.kill(agent.pid, signal.SIGCONT)
        time.sleep(0.001)
    raise AssertionError("the agent never left a write transaction")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", SHARED_STORE_KINDS)
def test_a_frozen_worker_wakes_up_fenced_out(kind: str, tmp_path: Path) -> None:
    url = make_store_url(kind, tmp_path)
    with SessionManager(url, policies=POLICIES, worker_id="survivor") as manager:
        agent = start_agent(url, "frozen", 0, stderr=subprocess.PIPE)
        acks = acks_until(agent, 10)
        freeze_outside_a_write(agent, url)
        try:
            with manager.supervise(interval=0.05):
                wait_for_state(manager, "frozen", State.FAILED, limit=30)
            taken = manager.claim("frozen")
            assert taken.epoch == 2 and taken.owner == "survivor"
            recovered_at = taken.last_seq
        finally:
            os.kill(agent.pid, signal.SIGCONT)
        out, err = agent.communicate(timeout=60)  # it writes on, is refused, and exits
        acks += [tuple(map(int, line.split()[1:])) for line in out.splitlines() if line.startswith("ack ")]
        assert "LeaseLost" in err and agent.returncode != 0

        manager.checkpoint("frozen", "after", {"by": "survivor"}, epoch=2)
        history = manager.checkpoints("frozen", limit=1000)
        steps = [(cp.seq, cp.data["i"]) for cp in history if cp.name == "step"]
        assert steps == sorted(set(acks))  # every ack stored, once; nothing unacknowledged but…
        assert all(seq < recovered_at for seq, _ in steps)  # …nothing of the zombie after the takeover
        assert [cp.name for cp in history[len(steps) :]] == ["session_failed", "session_recovered", "after"]
        assert manager.get("frozen").owner == "survivor" and manager.get("frozen").epoch == 2
