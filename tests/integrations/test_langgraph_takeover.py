"""A LangGraph run whose worker is SIGKILLed mid-node finishes on another worker, from the last
checkpoint: every node's answer is in the final state once, the nodes finished before the kill are
not run again, and no checkpoint is written twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("langgraph.graph", reason="pip install 'tether[langgraph]'")

from tests.conftest import make_store_url
from tests.integrations.langgraph_worker import NODES
from tests.integrations.takeover import DURABLE_KINDS, POLICIES, killed_then_finished
from tether import SessionManager, State


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", DURABLE_KINDS)
def test_a_killed_langgraph_worker_is_taken_over_and_the_run_finishes_once(kind: str, tmp_path: Path) -> None:
    url, effects = make_store_url(kind, tmp_path), tmp_path / "effects.log"
    result = killed_then_finished("langgraph_worker", url, "run-1", effects, "draft")

    assert result["epoch"] == 2 and result["resumed_at"] == ["draft"]
    assert [answer.split(":")[0] for answer in result["answers"]] == NODES
    ran = effects.read_text().splitlines()
    assert ran == [
        "plan worker-1",
        "search worker-1",
        "draft worker-1",  # killed inside it: its writes never reached the store
        "draft worker-2",
        "review worker-2",
        "publish worker-2",
    ]
    with SessionManager(url, policies=POLICIES) as manager:
        session = manager.get("run-1")
        records = manager.checkpoints("run-1", limit=1000)
    assert (session.owner, session.epoch, session.state) == ("worker-2", 2, State.PAUSED)
    ids = Counter(r.data["id"] for r in records if r.name == "langgraph.checkpoint")
    assert len(ids) == len(NODES) + 2 and max(ids.values()) == 1  # input + one per node + the first
    writes = Counter(
        (r.data["checkpoint_id"], r.data["task_id"]) for r in records if r.name.startswith("langgraph.writes")
    )
    assert max(writes.values()) == 1
