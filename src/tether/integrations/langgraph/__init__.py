"""LangGraph checkpoints in Tether: each LangGraph thread is a Tether session.

    from tether.integrations.langgraph import TetherSaver
    graph = builder.compile(checkpointer=TetherSaver.from_url("sqlite:///tether.db"))

See docs/integrations.md.
"""

from tether.integrations.langgraph.saver import TetherSaver

__all__ = ["TetherSaver"]
