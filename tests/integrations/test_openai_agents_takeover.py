"""An Agents SDK run whose worker is SIGKILLed inside a tool call finishes on another worker, from
the conversation the session holds: no item lost, none written twice, finished steps not rerun."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("agents", reason="pip install 'tether[openai-agents]'")

from tests.conftest import make_store_url
from tests.integrations.agents_worker import STEPS
from tests.integrations.takeover import DURABLE_KINDS, POLICIES, killed_then_finished
from tether import SessionManager, State
from tether.integrations.openai_agents import TetherSession


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", DURABLE_KINDS)
def test_a_killed_agents_worker_is_taken_over_and_the_run_finishes_once(kind: str, tmp_path: Path) -> None:
    url, effects = make_store_url(kind, tmp_path), tmp_path / "effects.log"
    result = killed_then_finished("agents_worker", url, "chat-1", effects, "3")
    assert result == {"epoch": 2, "resumed": True, "final": f"all {STEPS} steps done"}
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
