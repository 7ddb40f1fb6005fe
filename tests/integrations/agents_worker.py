"""A worker process running one OpenAI Agents SDK conversation under `TetherSession.hold`, for the
SIGKILL test.

    python -m tests.integrations.agents_worker URL SESSION EFFECTS_FILE WORKER_ID [BLOCK_AT]

The agent's model is scripted (no network): it calls the `step` tool with n = 1, 2, ... STEPS, one
call per turn, then answers. The tool appends `step<n> <worker>` to EFFECTS_FILE; with BLOCK_AT it
prints "blocked" at that step and waits to be killed. The worker takes the conversation over as
soon as its lease allows and runs it to the end from what the session holds.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from tests.integrations.takeover import POLICIES
from tests.integrations.takeover import step as do_step
from tether import NotClaimable, SessionManager
from tether.integrations.openai_agents import TetherSession

STEPS = 4


class ScriptedModel(Model):
    """Deterministic: the reply depends only on how many tool results the conversation holds."""

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        done = sum(1 for item in input if item.get("type") == "function_call_output")
        if done < STEPS:
            n = done + 1
            call = ResponseFunctionToolCall(
                type="function_call", call_id=f"call-{n}", name="step", arguments=json.dumps({"n": n})
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        text = ResponseOutputText(type="output_text", text=f"all {done} steps done", annotations=[])
        message = ResponseOutputMessage(
            id="answer", type="message", role="assistant", status="completed", content=[text]
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


async def main(url: str, session_id: str, effects: str, worker: str, block_at: str = "0") -> None:
    @function_tool
    def step(n: int) -> str:
        do_step(effects, f"step{n} {worker}", n == int(block_at))
        return f"step {n} ok"

    set_tracing_disabled(True)
    agent = Agent(name="stepper", model=ScriptedModel(), tools=[step])
    session = TetherSession(session_id, SessionManager(url, policies=POLICIES, worker_id=worker))
    while True:
        try:
            with session.hold() as held:  # heartbeats from a thread, whatever blocks the loop
                resumed = bool(await session.get_items())  # a dead worker's turns are in the session
                result = await Runner.run(agent, [] if resumed else "do the steps", session=session)
                print(json.dumps({"epoch": held.epoch, "resumed": resumed, "final": result.final_output}))
                return
        except NotClaimable:  # the previous worker's lease has not expired yet
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
