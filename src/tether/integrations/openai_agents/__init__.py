"""OpenAI Agents SDK sessions in Tether: each conversation is a Tether session.

    from tether.integrations.openai_agents import TetherSession
    await Runner.run(agent, "hello", session=TetherSession("conversation-7", "sqlite:///tether.db"))

See docs/integrations.md.
"""

from tether.integrations.openai_agents.session import TetherSession

__all__ = ["TetherSession"]
