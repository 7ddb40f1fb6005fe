"""An A2A task served through the a2a-sdk's request handler survives its workers: worker-1 is frozen
(SIGSTOP) inside step 3, worker-2 takes the task over and is SIGKILLed inside step 4, worker-3 takes
it over and finishes it from the last saved artifact. Every step's artifact is saved once; when
worker-1 wakes up, its late saves raise LeaseLost and change nothing."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("a2a", reason="pip install 'tether[a2a]'")

from a2a.server.context import ServerCallContext

from tests.conftest import make_store_url
from tests.integrations.a2a_worker import STEPS
from tests.integrations.takeover import DURABLE_KINDS, POLICIES, finish, kill, wait_blocked, worker
from tests.reliability.test_zombie import freeze_outside_a_write
from tether import SessionManager, State
from tether.integrations.a2a import TetherTaskStore
from tether.integrations.a2a.records import rebuilt
from tether.integrations.a2a.store import TASK


def stored(url: str, task_id: str) -> tuple[Any, list[Any], Any]:
    """The task as the store answers it, the Tether log behind it, and the Tether session."""
    with SessionManager(url, policies=POLICIES) as manager:
        task = asyncio.run(TetherTaskStore(manager).get(task_id, ServerCallContext()))
        return task, manager.checkpoints(task_id, limit=1000), manager.get(task_id)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("kind", DURABLE_KINDS)
def test_a_frozen_then_a_killed_a2a_worker_are_taken_over_and_the_task_finishes_once(
    kind: str, tmp_path: Path
) -> None:
    url, effects = make_store_url(kind, tmp_path), tmp_path / "effects.log"
    first = worker("a2a_worker", url, "-", effects, "worker-1", "3")
    task_id = wait_blocked(first)
    freeze_outside_a_write(first, url)
    try:
        second = worker("a2a_worker", url, task_id, effects, "worker-2", "4")
        assert wait_blocked(second) == task_id
        kill(second)
        third = finish(worker("a2a_worker", url, task_id, effects, "worker-3"))
        assert third == {
            "state": "TASK_STATE_COMPLETED",
            "final": f"all {STEPS} steps done",
            "epoch": 3,
            "refused": [],
        }
        task, log, session = stored(url, task_id)
    finally:
        os.kill(first.pid, signal.SIGCONT)

    assert effects.read_text().splitlines() == [
        "step1 worker-1",
        "step2 worker-1",
        "step3 worker-1",  # frozen inside it
        "step3 worker-2",
        "step4 worker-2",  # killed inside it: its artifact never reached the store
        "step4 worker-3",
    ]
    assert task is not None and [a.artifact_id for a in task.artifacts] == [f"step-{n}" for n in range(1, 5)]
    assert (session.state, session.owner, session.epoch) == (State.COMPLETED, "worker-3", 3)
    by_seq = {r.seq: r for r in log}
    every = [rebuilt(by_seq, r.seq) for r in log if r.name == TASK]  # each save's task
    saved = [[a.artifact_id for a in s.task.artifacts] for s in every if s is not None]
    assert len(saved) == len(every)
    assert all(len(set(ids)) == len(ids) for ids in saved)  # no artifact twice in any saved task
    assert [len(ids) for ids in saved] == sorted(len(ids) for ids in saved)  # none lost on the way

    # The zombie wakes up inside step 3 and goes on: its saves are refused, nothing changes.
    zombie = finish(first, "go on\n")
    assert zombie["epoch"] == 1 and zombie["refused"] and "state" not in zombie
    assert all(refusal.startswith("LeaseLost") for refusal in zombie["refused"])
    assert stored(url, task_id) == (task, log, session)
