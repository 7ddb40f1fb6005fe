"""An Agents SDK run whose worker is SIGKILLed inside a tool call finishes on another worker, from
the conversation the session holds: no item lost, none written twice, finished steps not rerun."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("agents", reason="pip install 'tether[openai-agents]'")

from tests.conftest import STORE_KINDS, make_store_url
from tests.integrations.agents_worker import POLICIES, STEPS
from tests.support import REPO, subprocess_env
from tether import SessionManager, State
from tether.integrations.openai_agents import TetherSession


def worker(url: str, effects: Path, name: str, *block_at: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.integrations.agents_worker", url, "chat-1", str(effects), name]
    return subprocess.Popen(
        [*command, *block_at], cwd=REPO, env=subprocess_env(), stdout=subprocess.PIPE, text=True
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", [k for k in STORE_KINDS if k != "memory"])
def test_a_killed_agents_worker_is_taken_over_and_the_run_finishes_once(kind: str, tmp_path: Path) -> None:
    url, effects = make_store_url(kind, tmp_path), tmp_path / "effects.log"
    first = worker(url, effects, "worker-1", "3")
    assert first.stdout is not None and first.stdout.readline() == "blocked\n"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)

    second = worker(url, effects, "worker-2")
    out, _ = second.communicate(timeout=90)
    assert second.returncode == 0
    assert json.loads(out) == {"epoch": 2, "resumed": True, "final": f"all {STEPS} steps done"}
    assert effects.read_text().splitlines() == [
        "step1 worker-1",
        "step2 worker-1",
        "step3 worker-1",  # killed inside it: its result never reached the session
        "step3 worker-2",
        "step4 worker-2",
    ]

    with SessionManager(url, policies=POLICIES) as manager:
        items = asyncio.run(TetherSession("chat-1", manager).get_items())
        session = manager.get("chat-1")
    assert (session.owner, session.epoch, session.state) == ("worker-2", 2, State.PAUSED)
    kinds = Counter(item.get("type", item.get("role")) for item in items)
    assert kinds == {"user": 1, "function_call": STEPS, "function_call_output": STEPS, "message": 1}
    assert sorted(item["call_id"] for item in items if item.get("type") == "function_call_output") == [
        f"call-{n}" for n in range(1, STEPS + 1)
    ]
