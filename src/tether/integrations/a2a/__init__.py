"""A2A tasks in Tether: an `a2a-sdk` `TaskStore` whose tasks survive a restart.

    from tether.integrations.a2a import TetherTaskStore
    handler = DefaultRequestHandler(executor, TetherTaskStore("sqlite:///tether.db"), agent_card)

See docs/integrations.md.
"""

from tether.integrations.a2a.store import TetherTaskStore

__all__ = ["TetherTaskStore"]
