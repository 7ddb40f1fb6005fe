"""Google ADK sessions in Tether: each ADK session is a Tether session.

    from tether.integrations.adk import TetherSessionService
    runner = Runner(agent=agent, app_name="support", session_service=TetherSessionService("sqlite:///tether.db"))

See docs/integrations.md.
"""

from tether.integrations.adk.service import TetherSessionService

__all__ = ["TetherSessionService"]
