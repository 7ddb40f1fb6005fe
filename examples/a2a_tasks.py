"""An A2A agent whose tasks live in Tether: they survive a restart of the server process.

    pip install -e '.[a2a]' && python examples/a2a_tasks.py && tether ls --type a2a

The a2a-sdk's request handler runs in process (no HTTP here; mount it in the SDK's Starlette or
FastAPI app to serve it). The agent asks for a name, then greets: the task waits for input (the
Tether session is paused), then completes.
"""

from __future__ import annotations

import asyncio

from a2a.helpers.proto_helpers import new_task
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import AgentCard, Message, Part, Role, SendMessageRequest, TaskState

from tether.integrations.a2a import TetherTaskStore


class Greeter(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        if context.current_task is None:
            await event_queue.enqueue_event(
                new_task(updater.task_id, updater.context_id, TaskState.TASK_STATE_SUBMITTED)
            )
            await updater.requires_input(updater.new_agent_message([Part(text="what is your name?")]))
        else:
            await updater.complete(
                updater.new_agent_message([Part(text=f"hello, {context.get_user_input()}")])
            )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


def said(text: str, task_id: str = "", context_id: str = "") -> SendMessageRequest:
    message = Message(message_id=f"m-{text}", role=Role.ROLE_USER, parts=[Part(text=text)])
    message.task_id, message.context_id = task_id, context_id
    return SendMessageRequest(message=message)


async def main() -> None:
    tasks = TetherTaskStore("sqlite:///tether.db")  # the one line that switches
    handler = DefaultRequestHandler(Greeter(), tasks, AgentCard(name="greeter"))
    call = ServerCallContext()
    first = await handler.on_message_send(said("hi"), call)
    print("task", TaskState.Name(first.status.state), "-", first.status.message.parts[0].text)

    restarted = DefaultRequestHandler(
        Greeter(), TetherTaskStore("sqlite:///tether.db"), AgentCard(name="greeter")
    )
    second = await restarted.on_message_send(said("Ada", first.id, first.context_id), call)
    print("task", TaskState.Name(second.status.state), "-", second.status.message.parts[0].text)
    tasks.close()


if __name__ == "__main__":
    asyncio.run(main())
