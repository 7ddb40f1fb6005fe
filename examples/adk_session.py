"""A Google ADK agent whose sessions live in Tether, owned by this worker while the Runner runs.

    pip install -e '.[adk]' && python examples/adk_session.py && tether ls

The model here is a stand-in that counts (no API key, no network); give the agent a real one
(`LlmAgent(..., model="gemini-2.5-flash")`) and nothing else changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.genai import types

from tether.integrations.adk import TetherSessionService


class CountingLlm(BaseLlm):
    """Answers with how many user messages the session holds."""

    model: str = "counting"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        said = sum(1 for content in llm_request.contents if content.role == "user")
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=f"message #{said}")]))


async def main() -> None:
    sessions = TetherSessionService("sqlite:///tether.db")  # the one line that switches
    agent = LlmAgent(name="counter", model=CountingLlm())
    runner = Runner(agent=agent, app_name="support", session_service=sessions)
    session = await sessions.get_session(app_name="support", user_id="ana", session_id="chat-1")
    if session is None:
        await sessions.create_session(
            app_name="support", user_id="ana", session_id="chat-1", state={"user:tier": "gold"}
        )
    for text in ("hello", "still there?"):
        with sessions.hold("support", "ana", "chat-1"):  # heartbeats (a thread); taken over if we die
            message = types.Content(role="user", parts=[types.Part(text=text)])
            async for event in runner.run_async(user_id="ana", session_id="chat-1", new_message=message):
                if event.content and event.content.parts and event.content.parts[0].text:
                    print(event.content.parts[0].text)
    stored = await sessions.get_session(app_name="support", user_id="ana", session_id="chat-1")
    assert stored is not None
    print(
        "events kept:",
        len(stored.events),
        "user state:",
        await sessions.get_user_state(app_name="support", user_id="ana"),
    )
    sessions.close()


if __name__ == "__main__":
    asyncio.run(main())
