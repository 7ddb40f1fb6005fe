"""A LangGraph graph checkpointed in Tether, its thread owned by this worker while it runs.

    pip install -e '.[langgraph]' && python examples/langgraph_thread.py && tether ls

The graph stops for a human's approval (`interrupt_before`), then a second run goes on from the
checkpoint. The thread is a Tether session: `tether checkpoints ticket-42` shows its log.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from tether.integrations.langgraph import TetherSaver


class Ticket(TypedDict):
    log: Annotated[list[str], operator.add]


def build(checkpointer: TetherSaver) -> Any:
    builder = StateGraph(Ticket)
    builder.add_node("triage", lambda state: {"log": ["triaged"]})
    builder.add_node("reply", lambda state: {"log": ["replied"]})
    builder.add_edge(START, "triage")
    builder.add_edge("triage", "reply")
    builder.add_edge("reply", END)
    return builder.compile(checkpointer=checkpointer, interrupt_before=["reply"])


def main() -> None:
    with TetherSaver.from_url("sqlite:///tether.db") as checkpointer:  # the one line that switches
        graph = build(checkpointer)
        thread = {"configurable": {"thread_id": "ticket-42"}}
        with checkpointer.hold("ticket-42"):  # heartbeats; another worker takes over if we die
            graph.invoke({"log": ["opened"]}, thread)
        print("waiting for approval before:", graph.get_state(thread).next)
        print("tether session:", checkpointer.manager.get("ticket-42").state)
        with checkpointer.hold("ticket-42"):
            final = graph.invoke(None, thread)  # goes on from the checkpoint
        print("final log:", final["log"])


if __name__ == "__main__":
    main()
