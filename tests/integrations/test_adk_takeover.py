"""An ADK Runner whose worker is SIGKILLed inside a tool call finishes on another worker, from the
events the session holds: every step's result is stored once, finished steps are not rerun."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("google.adk", reason="pip install 'tether[adk]'")

from tests.conftest import make_store_url
from tests.integrations.adk_worker import STEPS
from tests.integrations.takeover import DURABLE_KINDS, POLICIES, killed_then_finished
from tether import SessionManager, State
from tether.integrations.adk import TetherSessionService


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", DURABLE_KINDS)
def test_a_killed_adk_worker_is_taken_over_and_the_run_finishes_once(kind: str, tmp_path: Path) -> None:
    url, effects = make_store_url(kind, tmp_path), tmp_path / "effects.log"
    result = killed_then_finished("adk_worker", url, "s-1", effects, "3")
    assert result == {"epoch": 2, "resumed": True, "final": f"all {STEPS} steps done"}
    assert effects.read_text().splitlines() == [
        "step1 worker-1",
        "step2 worker-1",
        "step3 worker-1",  # killed inside it: its result never reached the session
        "step3 worker-2",
        "step4 worker-2",
    ]

    with SessionManager(url, policies=POLICIES) as manager:
        service = TetherSessionService(manager)
        stored = asyncio.run(service.get_session(app_name="app", user_id="ana", session_id="s-1"))
        tether_session = manager.get("app/ana/s-1")
    assert (tether_session.owner, tether_session.epoch, tether_session.state) == ("worker-2", 2, State.PAUSED)
    assert stored is not None
    parts = [p for e in stored.events if e.content for p in e.content.parts or []]
    results = Counter(p.function_response.id for p in parts if p.function_response)
    calls = Counter(p.function_call.id for p in parts if p.function_call)
    assert results == {f"call-{n}": 1 for n in range(1, STEPS + 1)}
    # The dead worker's call of step 3 stays in the log (ADK leaves an unanswered call out of what
    # it sends the model); the new worker's model called it again.
    assert calls == {**{f"call-{n}": 1 for n in range(1, STEPS + 1)}, "call-3": 2}
    assert [p.text for p in parts if p.text] == ["do the steps", f"all {STEPS} steps done"]
