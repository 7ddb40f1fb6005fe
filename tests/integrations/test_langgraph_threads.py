"""TetherSaver under a real LangGraph graph: it answers as LangGraph's own InMemorySaver does, each
thread is a Tether session, and a thread held by one worker is fenced once another takes it over."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("langgraph.graph", reason="pip install 'tether[langgraph]'")

from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from tests.conftest import STORE_KINDS, make_store_url
from tether import LeaseLost, ManualClock, SessionManager, State
from tether.integrations.langgraph import TetherSaver
from tether.stores import open_store


class Steps(TypedDict):
    done: Annotated[list[str], operator.add]


def graph(checkpointer: BaseCheckpointSaver[Any], **compile: Any) -> CompiledStateGraph[Any]:
    builder = StateGraph(Steps)
    for name in ("plan", "act", "report"):
        builder.add_node(name, lambda state, name=name: {"done": [name]})
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "act")
    builder.add_edge("act", "report")
    builder.add_edge("report", END)
    return builder.compile(checkpointer=checkpointer, **compile)


def history(app: CompiledStateGraph[Any], thread: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a user sees of a thread's past: values, next nodes and step of every checkpoint."""
    return [
        (s.values, s.next, s.metadata["step"], s.metadata["source"]) for s in app.get_state_history(thread)
    ]


@pytest.fixture(params=STORE_KINDS)
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    with TetherSaver.from_url(make_store_url(request.param, tmp_path)) as tether_saver:
        yield tether_saver


def test_a_graph_runs_resumes_after_an_interrupt_and_keeps_history_as_with_in_memory_saver(
    saver: TetherSaver,
) -> None:
    apps = [graph(saver, interrupt_before=["report"]), graph(InMemorySaver(), interrupt_before=["report"])]
    thread = {"configurable": {"thread_id": "t-1"}}
    seen = []
    for app in apps:
        first = app.invoke({"done": ["start"]}, thread)  # stops before "report"
        paused_at = app.get_state(thread).next
        second = app.invoke(None, thread)  # goes on from the interrupt
        third = app.invoke({"done": ["again"]}, thread)  # a second run on the same thread
        seen.append((first, paused_at, second, third, history(app, thread)))
    assert seen[0] == seen[1]
    assert seen[0][3]["done"] == ["start", "plan", "act", "report", "again", "plan", "act"]


def test_the_async_graph_api_gives_the_same_thread_as_the_sync_one(saver: TetherSaver) -> None:
    app = graph(saver)

    async def run_async() -> list[dict[str, Any]]:
        await app.ainvoke({"done": ["start"]}, {"configurable": {"thread_id": "async"}})
        return [(await app.aget_state({"configurable": {"thread_id": t}})).values for t in ("async", "sync")]

    app.invoke({"done": ["start"]}, {"configurable": {"thread_id": "sync"}})
    states = asyncio.run(run_async())
    assert states[0] == states[1] == {"done": ["start", "plan", "act", "report"]}


def test_each_thread_is_a_tether_session_whose_log_holds_the_graphs_checkpoints(saver: TetherSaver) -> None:
    graph(saver).invoke({"done": []}, {"configurable": {"thread_id": "t-2"}})
    session = saver.manager.get("t-2")
    names = [cp.name for cp in saver.manager.checkpoints("t-2", limit=1000)]
    assert (session.agent_type, session.state) == ("langgraph", State.ACTIVE)
    assert names.count("langgraph.checkpoint") == 5  # input, plan, act, report, and the first empty one
    assert {name.split(":")[0] for name in names} == {"langgraph.checkpoint", "langgraph.writes"}


def test_a_held_thread_is_owned_while_the_run_goes_and_paused_after_it(saver: TetherSaver) -> None:
    app = graph(saver)
    thread = {"configurable": {"thread_id": "held"}}
    with saver.hold("held") as handle:
        app.invoke({"done": []}, thread)
        assert saver.manager.get("held").state is State.ACTIVE
        assert handle.epoch == 1
    assert saver.manager.get("held").state is State.PAUSED
    with saver.hold("held"):  # the next run resumes it
        app.invoke({"done": ["more"]}, thread)
    assert app.get_state(thread).values["done"][-4:] == ["more", "plan", "act", "report"]


def test_a_worker_that_lost_its_thread_writes_nothing_more(tmp_path: Path) -> None:
    clock = ManualClock()
    store = open_store(make_store_url("sqlite", tmp_path), clock)
    first = TetherSaver(SessionManager(store, worker_id="worker-1"))
    second = TetherSaver(SessionManager(store, worker_id="worker-2"))
    thread = {"configurable": {"thread_id": "contested"}}
    with pytest.raises(LeaseLost), first.hold("contested"):  # the zombie's block ends refused, too
        graph(first, interrupt_before=["act"]).invoke({"done": []}, thread)
        before = first.get_tuple(thread)
        clock.advance(61)  # worker-1 went silent past its lease
        with second.hold("contested") as taken:
            assert taken.epoch == 2
            with pytest.raises(LeaseLost):
                graph(first).invoke(None, thread)  # the zombie goes on: its first write is refused
            after = second.get_tuple(thread)
            assert after is not None and before is not None
            assert after.checkpoint["id"] == before.checkpoint["id"]
            assert after.pending_writes == before.pending_writes
            result = graph(second).invoke(None, thread)  # the new owner finishes the run
    assert result == {"done": ["plan", "act", "report"]}
    session = second.manager.get("contested")
    assert (session.owner, session.epoch, session.state) == ("worker-2", 2, State.PAUSED)
    store.close()


def test_writes_stored_before_their_checkpoint_are_found(saver: TetherSaver) -> None:
    """With LangGraph's default "async" durability a task's writes may reach the store before the
    checkpoint they belong to."""
    checkpoint = empty_checkpoint()
    config = {"configurable": {"thread_id": "early", "checkpoint_ns": "", "checkpoint_id": checkpoint["id"]}}
    saver.put_writes(config, [("done", ["plan"])], "task-1", "plan")
    saver.put({"configurable": {"thread_id": "early", "checkpoint_ns": ""}}, checkpoint, {"step": 0}, {})
    found = saver.get_tuple({"configurable": {"thread_id": "early"}})
    assert found is not None and found.pending_writes == [("task-1", "done", ["plan"])]


def test_a_forgotten_checkpoint_is_never_the_latest(saver: TetherSaver) -> None:
    """`delete_for_runs` appends a `forget`: the newest checkpoint it names is skipped, one it does
    not name stays the latest."""
    ids: list[str] = []
    for step, run in enumerate(["r1", "r2", "r3"]):
        config: dict[str, Any] = {"configurable": {"thread_id": "forgetful", "checkpoint_ns": ""}}
        if ids:
            config["configurable"]["checkpoint_id"] = ids[-1]
        stored = saver.put(config, empty_checkpoint(), {"step": step, "run_id": run}, {})
        ids.append(stored["configurable"]["checkpoint_id"])

    def latest() -> str | None:
        found = saver.get_tuple({"configurable": {"thread_id": "forgetful"}})
        return None if found is None else found.config["configurable"]["checkpoint_id"]

    assert latest() == ids[2]
    saver.delete_for_runs(["r1"])
    assert latest() == ids[2]
    saver.delete_for_runs(["r3"])
    assert latest() == ids[1]
    saver.delete_for_runs(["r2"])
    assert latest() is None
