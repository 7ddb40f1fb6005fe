"""An OpenAI Agents SDK conversation kept in Tether, owned by this worker while a run goes.

    pip install -e '.[openai-agents]' && python examples/openai_agents_conversation.py && tether ls

The model here is a stand-in that echoes (no API key, no network); give the agent a real one
(`Agent(..., model="gpt-4.1")`) and nothing else changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents import Agent, Runner, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

from tether.integrations.openai_agents import TetherSession


class EchoModel(Model):
    """Answers with how many user messages the conversation holds and the last one."""

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        said = [item["content"] for item in input if item.get("role") == "user"]
        text = ResponseOutputText(
            type="output_text", text=f"#{len(said)}: you said {said[-1]!r}", annotations=[]
        )
        reply = ResponseOutputMessage(
            id="r", type="message", role="assistant", status="completed", content=[text]
        )
        return ModelResponse(output=[reply], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


async def main() -> None:
    set_tracing_disabled(True)
    agent = Agent(name="echo", model=EchoModel())
    session = TetherSession("conversation-7", "sqlite:///tether.db")  # the one line that switches
    for message in ("hello", "how are you?"):
        async with session.ahold():  # heartbeats; another worker takes over if this one dies
            result = await Runner.run(agent, message, session=session)
        print(result.final_output)
    print("items kept:", len(await session.get_items()))
    session.close()


if __name__ == "__main__":
    asyncio.run(main())
