"""A worker process serving one A2A task through the a2a-sdk's `DefaultRequestHandler` on a
`TetherTaskStore`, for the takeover test.

    python -m tests.integrations.a2a_worker URL TASK EFFECTS_FILE WORKER_ID [BLOCK_AT]

TASK is `-` for a new task, else the id of a task a dead or frozen worker was running: the worker
sends the handler a message for it, as a client asking again would. The agent is deterministic (no
model): it does steps 1 .. STEPS, each appends `step<n> <worker>` to EFFECTS_FILE and adds artifact
`step-<n>` to the task, then completes the task; a resumed task goes on after its last saved
artifact. The executor owns the task (`TetherTaskStore.own`) as soon as its lease allows. With
BLOCK_AT, the worker prints `blocked <task id>` at that step once the previous steps are saved, and
waits for a line on stdin (or to be killed). It prints JSON: the task's final state and the epoch it
ran at, and the saves of its that the store refused.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from a2a.helpers.proto_helpers import new_task
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import AgentCard, Message, Part, Role, SendMessageRequest, Task, TaskState

from tests.integrations.takeover import POLICIES
from tether import LeaseLost, NotClaimable, SessionManager
from tether.integrations.a2a import TetherTaskStore

STEPS = 4


class RecordingStore(TetherTaskStore):
    """Remembers which of its saves were refused because another worker took the task over."""

    refused: list[str]

    async def save(self, task: Task, context: ServerCallContext) -> None:
        try:
            await super().save(task, context)
        except LeaseLost as exc:
            self.refused.append(f"{type(exc).__name__} {len(task.artifacts)} artifacts")
            raise


class Stepper(AgentExecutor):
    def __init__(self, tasks: TetherTaskStore, effects: str, worker: str, block_at: int) -> None:
        self.tasks, self.effects, self.worker, self.block_at = tasks, effects, worker, block_at
        self.epoch = 0

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "", context.context_id or ""
        while True:
            try:
                self.epoch = (await self.tasks.own(task_id, context.call_context)).epoch
                break
            except NotClaimable:  # the previous worker's lease has not expired yet
                await asyncio.sleep(0.1)
        updater = TaskUpdater(event_queue, task_id, context_id)
        task = context.current_task
        if task is None:
            await event_queue.enqueue_event(new_task(task_id, context_id, TaskState.TASK_STATE_SUBMITTED))
        done = {artifact.artifact_id for artifact in task.artifacts} if task else set()
        await updater.start_work()
        for n in range(1, STEPS + 1):
            if f"step-{n}" not in done:
                await self.step(n, task_id, context.call_context)
                await updater.add_artifact([Part(text=f"step {n} ok")], artifact_id=f"step-{n}")
        await updater.complete(updater.new_agent_message([Part(text=f"all {STEPS} steps done")]))

    async def step(self, n: int, task_id: str, call: Any) -> None:
        with open(self.effects, "a") as log:
            log.write(f"step{n} {self.worker}\n")
        if n == self.block_at:
            while len(((await self.tasks.get(task_id, call)) or Task()).artifacts) < n - 1:
                await asyncio.sleep(0.02)  # the previous steps' artifacts are saved
            print(f"blocked {task_id}", flush=True)
            await asyncio.to_thread(sys.stdin.readline)  # killed here, or frozen and woken up

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


async def main(url: str, task_id: str, effects: str, worker: str, block_at: str = "0") -> None:
    tasks = RecordingStore(SessionManager(url, policies=POLICIES, worker_id=worker))
    tasks.refused = []
    executor = Stepper(tasks, effects, worker, int(block_at))
    handler = DefaultRequestHandler(executor, tasks, AgentCard(name="stepper"))
    message = Message(message_id=f"m-{worker}", role=Role.ROLE_USER, parts=[Part(text="do the steps")])
    if task_id != "-":  # a client asking again names the task and its context
        stored = await tasks.get(task_id, ServerCallContext())
        assert stored is not None
        message.task_id, message.context_id = task_id, stored.context_id
    report: dict[str, Any] = {}
    try:
        result = await asyncio.wait_for(
            handler.on_message_send(SendMessageRequest(message=message), ServerCallContext()), 60
        )
        assert isinstance(result, Task)
        report = {"state": TaskState.Name(result.status.state), "final": result.status.message.parts[0].text}
    except Exception as exc:  # a zombie's request fails: its saves are refused
        report = {"error": type(exc).__name__}
    print(json.dumps({**report, "epoch": executor.epoch, "refused": tasks.refused}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
