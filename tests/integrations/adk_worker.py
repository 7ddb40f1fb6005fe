"""A worker process running one Google ADK session under `TetherSessionService.hold`, for the
SIGKILL test.

    python -m tests.integrations.adk_worker URL SESSION EFFECTS_FILE WORKER_ID [BLOCK_AT]

The agent's model is scripted (no network): it calls the `step` tool with n = 1, 2, ... STEPS, one
call per turn, then answers. The tool appends `step<n> <worker>` to EFFECTS_FILE; with BLOCK_AT it
prints "blocked" at that step and waits to be killed. The worker takes the session over as soon as
its lease allows and runs it to the end from the events the session holds.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncGenerator

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.genai import types

from tests.integrations.takeover import POLICIES
from tests.integrations.takeover import step as do_step
from tether import NotClaimable, SessionManager
from tether.integrations.adk import TetherSessionService

STEPS = 4


class ScriptedLlm(BaseLlm):
    """Deterministic: the reply depends only on how many tool results the request holds."""

    model: str = "scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        done = sum(1 for c in llm_request.contents for p in c.parts or [] if p.function_response)
        if done < STEPS:
            call = types.FunctionCall(name="step", args={"n": done + 1}, id=f"call-{done + 1}")
            part = types.Part(function_call=call)
        else:
            part = types.Part(text=f"all {done} steps done")
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


async def main(url: str, session_id: str, effects: str, worker: str, block_at: str = "0") -> None:
    def step(n: int) -> str:
        """Do step n."""
        do_step(effects, f"step{n} {worker}", n == int(block_at))
        return f"step {n} ok"

    service = TetherSessionService(SessionManager(url, policies=POLICIES, worker_id=worker))
    runner = Runner(
        agent=LlmAgent(name="stepper", model=ScriptedLlm(), tools=[step]),
        app_name="app",
        session_service=service,
    )
    if await service.get_session(app_name="app", user_id="ana", session_id=session_id) is None:
        await service.create_session(app_name="app", user_id="ana", session_id=session_id)
    while True:
        try:
            with service.hold("app", "ana", session_id) as held:  # heartbeats from a thread
                session = await service.get_session(app_name="app", user_id="ana", session_id=session_id)
                resumed = bool(session and session.events)  # a dead worker's turns are in the session
                message = (
                    None if resumed else types.Content(role="user", parts=[types.Part(text="do the steps")])
                )
                final = ""
                async for event in runner.run_async(
                    user_id="ana", session_id=session_id, new_message=message
                ):
                    if event.content and event.content.parts and event.content.parts[0].text:
                        final = event.content.parts[0].text
                print(json.dumps({"epoch": held.epoch, "resumed": resumed, "final": final}))
                return
        except NotClaimable:  # the previous worker's lease has not expired yet
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
