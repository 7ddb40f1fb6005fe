"""A worker process running one LangGraph thread under `TetherSaver.hold`, for the SIGKILL test.

    python -m tests.integrations.langgraph_worker URL THREAD EFFECTS_FILE WORKER_ID [BLOCK_AT]

Every node asks a deterministic fake model for its answer, appends `<node> <worker>` to
EFFECTS_FILE (what ran where) and adds its answer to the state. With BLOCK_AT, that node prints
"blocked" and waits to be killed. The worker takes the thread over as soon as its lease allows, runs
it to the end (from the last checkpoint if there is one) and prints the final state as JSON.
"""

from __future__ import annotations

import json
import operator
import sys
import time
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import END, START, StateGraph

from tests.integrations.takeover import POLICIES, step
from tether import NotClaimable, SessionManager
from tether.integrations.langgraph import TetherSaver

NODES = ["plan", "search", "draft", "review", "publish"]


class Run(TypedDict):
    answers: Annotated[list[str], operator.add]


def build(saver: TetherSaver, effects: str, worker: str, block_at: str | None) -> Any:
    def node(name: str) -> Any:
        def run(state: Run) -> dict[str, list[str]]:
            step(effects, f"{name} {worker}", name == block_at)
            model = FakeListChatModel(responses=[f"{name}: done after {len(state['answers'])}"])
            return {"answers": [str(model.invoke(f"please {name}").content)]}

        return run

    builder = StateGraph(Run)
    previous = START
    for name in NODES:
        builder.add_node(name, node(name))
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=saver)


def main(url: str, thread_id: str, effects: str, worker: str, block_at: str | None = None) -> None:
    saver = TetherSaver(SessionManager(url, policies=POLICIES, worker_id=worker))
    graph = build(saver, effects, worker, block_at)
    config = {"configurable": {"thread_id": thread_id}}
    deadline = time.monotonic() + 60
    while True:
        try:
            with saver.hold(thread_id) as held:
                started = graph.get_state(config).next  # where the last worker stopped, if anywhere
                # "sync" durability: each step's checkpoint is stored before the next step starts
                result = graph.invoke(None if started else {"answers": []}, config, durability="sync")
                print(json.dumps({"epoch": held.epoch, "resumed_at": list(started), **result}), flush=True)
                return
        except NotClaimable:  # the previous worker's lease has not expired yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    main(*sys.argv[1:])
