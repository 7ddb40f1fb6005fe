"""`TetherTaskStore`: the a2a-sdk `TaskStore` on any Tether store.

A task is the Tether session whose id is the task's id (agent type `a2a`, Tether user = the task's
owner as the server's owner resolver names it). Each `save` appends an `a2a.task` checkpoint with
the whole task as protobuf JSON, so `get` is one index look-up and the log is the task's history.
The Tether session follows the task's state (the mapping is `TETHER_STATE`): working tasks are
active, tasks waiting for their client (input or auth required) are paused, completed tasks are
completed, failed / canceled / rejected tasks are failed for good; a task in a terminal state takes
no more saves (as A2A says), except the same task again, which changes nothing.
"""

from __future__ import annotations

from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import OwnerResolver, resolve_user_scope
from a2a.server.tasks.inmemory_task_store import InMemoryTaskStore
from a2a.server.tasks.task_store import TaskStore
from a2a.types.a2a_pb2 import ListTasksRequest, ListTasksResponse, Task, TaskState
from google.protobuf.json_format import MessageToDict, ParseDict

from tether.core.errors import ConflictError, InvalidTransition, NotFound
from tether.core.model import State
from tether.flows.runner import Flow
from tether.front.manager import SessionManager
from tether.integrations.adapter import Bound, manager_for
from tether.integrations.sessions import PAGE, SessionFlows

TASK = "a2a.task"
AGENT_TYPE = "a2a"
ANONYMOUS = "anonymous"  # the owner of tasks whose resolver names nobody (Tether ids are non-empty)

TETHER_STATE = {
    TaskState.TASK_STATE_UNSPECIFIED: State.ACTIVE,
    TaskState.TASK_STATE_SUBMITTED: State.ACTIVE,
    TaskState.TASK_STATE_WORKING: State.ACTIVE,
    TaskState.TASK_STATE_INPUT_REQUIRED: State.PAUSED,
    TaskState.TASK_STATE_AUTH_REQUIRED: State.PAUSED,
    TaskState.TASK_STATE_COMPLETED: State.COMPLETED,
    TaskState.TASK_STATE_FAILED: State.FAILED,
    TaskState.TASK_STATE_CANCELED: State.FAILED,
    TaskState.TASK_STATE_REJECTED: State.FAILED,
}


class TaskFlows(SessionFlows):
    def __init__(self, manager: SessionManager) -> None:
        super().__init__(manager.ops, AGENT_TYPE, ANONYMOUS, creates=False)

    def save(self, owner: str, task: Task) -> Flow[None]:
        data = {"task": MessageToDict(task, preserving_proto_field_name=True)}
        try:
            session = yield from self.ops.get(task.id)
        except NotFound:
            try:
                session = yield from self.ops.create(AGENT_TYPE, owner, session_id=task.id)
            except ConflictError:  # created meanwhile by another saver
                session = yield from self.ops.get(task.id)
        if session.user_id != owner:
            raise ConflictError(task.id, f"task {task.id!r} belongs to another owner")
        if session.is_ended:
            last = yield from self.ops.last_checkpoint(task.id, TASK)
            if last is not None and last.data == data:
                return  # the final task saved again
            raise InvalidTransition(task.id, session.state.value, "save a task in a terminal state")
        yield from self.append(task.id, TASK, data)  # resumes a task that was waiting for input
        yield from self._follow(task.id, task.status.state)

    def _follow(self, task_id: str, state: Any) -> Flow[None]:
        """Move the Tether session to the state the A2A task is in."""
        target, epoch = TETHER_STATE.get(state, State.ACTIVE), self.epoch_of(task_id)
        name = TaskState.Name(state).removeprefix("TASK_STATE_").lower()
        if target is State.PAUSED:
            yield from self.ops.pause(task_id, epoch=epoch)
        elif target is State.COMPLETED:
            yield from self.ops.complete(task_id, {"a2a_state": name}, epoch=epoch)
        elif target is State.FAILED:
            yield from self.ops.fail(task_id, name, {"a2a_state": name}, final=True, epoch=epoch)

    def get(self, owner: str, task_id: str) -> Flow[Task | None]:
        try:
            session = yield from self.ops.get(task_id)
            last = yield from self.ops.last_checkpoint(task_id, TASK)
        except NotFound:
            return None
        if session.user_id != owner or last is None:
            return None
        task: Task = ParseDict(last.data["task"], Task())
        return task

    def owned(self, owner: str) -> Flow[list[Task]]:
        tasks: list[Task] = []
        cursor: str | None = None
        while True:
            page = yield from self.ops.list(user_id=owner, agent_type=AGENT_TYPE, limit=PAGE, cursor=cursor)
            for session in page:
                task = yield from self.get(owner, session.session_id)
                if task is not None:
                    tasks.append(task)
            if page.next_cursor is None:
                return tasks
            cursor = page.next_cursor

    def delete_owned(self, owner: str, task_id: str) -> Flow[None]:
        if (yield from self.get(owner, task_id)) is not None:
            yield from self.delete(task_id)


class TetherTaskStore(TaskStore):
    """`TetherTaskStore("sqlite:///tether.db")` (or `memory://`, `postgresql://…`, a
    `SessionManager`, or None for the TETHER_STORE_URL default). `owner_resolver` as in the
    SDK's own stores: whose tasks a call may see."""

    def __init__(
        self, manager: SessionManager | str | None = None, owner_resolver: OwnerResolver = resolve_user_scope
    ) -> None:
        manager, owned = manager_for(manager)
        self.manager = manager
        self.flows = TaskFlows(manager)
        self.bound = Bound(manager, self.flows, owned)
        self.owner_resolver = owner_resolver

    def _owner(self, context: ServerCallContext) -> str:
        return self.owner_resolver(context) or ANONYMOUS

    async def save(self, task: Task, context: ServerCallContext) -> None:
        await self.bound.arun(self.flows.save(self._owner(context), task))

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        task: Task | None = await self.bound.arun(self.flows.get(self._owner(context), task_id))
        return task

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        """The SDK's own filtering, ordering and page tokens, over this owner's tasks."""
        tasks = await self.bound.arun(self.flows.owned(self._owner(context)))
        view = InMemoryTaskStore(owner_resolver=lambda _: "", use_copying=False)
        for task in tasks:
            await view.save(task, context)
        return await view.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        await self.bound.arun(self.flows.delete_owned(self._owner(context), task_id))

    def close(self) -> None:
        self.bound.close()
