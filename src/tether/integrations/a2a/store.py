"""`TetherTaskStore`: the a2a-sdk `TaskStore` on any Tether store.

A task is the Tether session whose id is the task's id (agent type `a2a`, Tether user = the task's
owner as the server's owner resolver names it). Each `save` appends an `a2a.task` checkpoint with
what changed since the task's previous record (a delta: new history messages, new or grown
artifacts, the new status), or now and then the whole task (a snapshot), so a save costs what it
adds however long the task's history is. `get` rebuilds the newest record from its snapshot and the
deltas after it. The Tether session follows the task's state (the mapping is `TETHER_STATE`):
working tasks are active, tasks waiting for their client (input or auth required) are paused,
completed tasks are completed, failed / canceled / rejected tasks are failed for good; a task in a
terminal state takes no more saves (as A2A says), except the same task again, which changes
nothing. `own` makes a worker the task's owner (heartbeats, fenced saves) until a save ends its turn.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime
from typing import Any, NamedTuple

from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import OwnerResolver, resolve_user_scope
from a2a.server.tasks.inmemory_task_store import InMemoryTaskStore
from a2a.server.tasks.task_store import TaskStore
from a2a.types.a2a_pb2 import ListTasksRequest, ListTasksResponse, Task, TaskState

from tether.core.errors import ConflictError, InvalidTransition, NotFound
from tether.core.model import Session, State
from tether.flows.runner import Flow
from tether.front.handle import SessionHandle
from tether.front.manager import SessionManager
from tether.integrations.a2a.records import Stored, rebuilt, record
from tether.integrations.adapter import Bound, manager_for
from tether.integrations.sessions import PAGE, SessionFlows
from tether.lifecycle import check_owner

TASK = "a2a.task"
AGENT_TYPE = "a2a"
ANONYMOUS = "anonymous"  # the owner of tasks whose resolver names nobody (Tether ids are non-empty)
KNOWN = 256  # tasks whose last saved state a store remembers (to store the next save's delta)

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


class Ending(NamedTuple):
    """Where a save moves the task's Tether session: paused (waiting for its client), completed or
    failed for good; `a2a_state` names the A2A state (`input-required`, `canceled`, ...)."""

    state: State
    a2a_state: str

    def by(self, handle: SessionHandle) -> None:
        """Write it as the worker that owns the task (fenced; the heartbeats stop)."""
        if self.state is State.PAUSED:
            handle.pause()
        elif self.state is State.COMPLETED:
            handle.complete({"a2a_state": self.a2a_state})
        else:
            handle.fail(self.a2a_state, {"a2a_state": self.a2a_state}, final=True)


def ending(state: Any) -> Ending | None:
    """The Ending a task in this A2A state brings, or None while it is being worked on."""
    target = TETHER_STATE.get(state, State.ACTIVE)
    name = TaskState.Name(state).removeprefix("TASK_STATE_").lower().replace("_", "-")
    return None if target is State.ACTIVE else Ending(target, name)


class TaskFlows(SessionFlows):
    def __init__(self, manager: SessionManager) -> None:
        super().__init__(manager.ops, AGENT_TYPE, ANONYMOUS, creates=False)
        # The last state this store saved of each task, least recently saved first, with the
        # created_at of the session it went to (a task deleted and saved anew starts over).
        self.known: OrderedDict[str, tuple[datetime, Stored]] = OrderedDict()

    def take_task(self, owner: str, task_id: str) -> Flow[Session]:
        """`take` for a task: a new one is created as `owner`'s, another owner's is refused."""
        try:
            return (yield from self.ops.create(AGENT_TYPE, owner, session_id=task_id))
        except ConflictError:
            session = yield from self.ops.get(task_id)
        if session.user_id != owner:
            raise ConflictError(task_id, f"task {task_id!r} belongs to another owner")
        return (yield from self.take_existing(session))

    def save(self, owner: str, task: Task) -> Flow[Ending | None]:
        """Append what changed in the task; returns the Ending its state brings (the caller
        writes it)."""
        try:
            session = yield from self.ops.get(task.id)
        except NotFound:
            try:
                session = yield from self.ops.create(AGENT_TYPE, owner, session_id=task.id)
            except ConflictError:  # created meanwhile by another saver
                session = yield from self.ops.get(task.id)
        if session.user_id != owner:
            raise ConflictError(task.id, f"task {task.id!r} belongs to another owner")
        check_owner(session, self.epoch_of(task.id))  # a replaced worker's save: LeaseLost
        if session.is_ended:
            final = yield from self.stored(task.id)  # the newest record, whoever wrote it
            if final is not None and final.task == task:
                return None  # the final task saved again
            raise InvalidTransition(task.id, session.state.value, "save a task in a terminal state")
        known = self.known.pop(task.id, None)  # this saver's alone until the save is done
        if known is not None and known[0] == session.created_at:
            last: Stored | None = known[1]
        else:  # not saved by this store yet (or deleted and created anew since)
            last = yield from self.stored(task.id)
        written = yield from self.append(task.id, TASK, record(last, task))  # resumes a waiting task
        saved = Task()
        saved.CopyFrom(task)  # the caller goes on changing its task (the SDK's TaskManager does)
        self.known[task.id] = (session.created_at, Stored.of(written, saved))
        if len(self.known) > KNOWN:
            self.known.popitem(last=False)
        return ending(task.status.state)

    def end(self, task_id: str, end: Ending) -> Flow[None]:
        """Write an Ending as a saver that does not own the task."""
        if end.state is State.PAUSED:
            yield from self.ops.pause(task_id)
        elif end.state is State.COMPLETED:
            yield from self.ops.complete(task_id, {"a2a_state": end.a2a_state})
        else:
            yield from self.ops.fail(task_id, end.a2a_state, {"a2a_state": end.a2a_state}, final=True)

    def get(self, owner: str, task_id: str) -> Flow[Task | None]:
        try:
            session = yield from self.ops.get(task_id)
            stored = yield from self.stored(task_id)
        except NotFound:
            return None
        return None if session.user_id != owner or stored is None else stored.task

    def stored(self, task_id: str) -> Flow[Stored | None]:
        """The task as its newest record holds it; None before its first save."""
        newest = yield from self.ops.last_checkpoint(task_id, TASK)
        if newest is None:
            return None
        log = {newest.seq: newest}
        if "base" in newest.data:  # a delta: its chain is in the records from its snapshot on
            log.update((r.seq, r) for r in (yield from self.read(task_id, newest.data["base"] - 1, TASK)))
        return rebuilt(log, newest.seq)

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
            self.known.pop(task_id, None)


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

    async def own(self, task_id: str, context: ServerCallContext | None = None) -> SessionHandle:
        """This worker runs the task from now on (call it in `AgentExecutor.execute` before the
        first event): creates the task's session as the context's owner, resumes it if the task
        waited for input, or takes it over from a worker whose lease expired (`NotClaimable` while
        that worker lives). Heartbeats from a thread until a save of this store moves the task to
        input-required, auth-required or a terminal state (or `release`). Until then every save
        of the task is fenced by this worker's epoch: once another worker has taken it over, they
        raise `LeaseLost` and change nothing."""
        owner = self._owner(context or ServerCallContext())
        return await asyncio.to_thread(self.bound.own, task_id, lambda: self.flows.take_task(owner, task_id))

    async def release(self, task_id: str) -> None:
        """Stop running an owned task before it ended (e.g. a clean shutdown): its session is
        paused, so it shows idle, not dead, and the next `own` resumes it."""
        await asyncio.to_thread(self.bound.release, task_id, SessionHandle.pause)

    async def save(self, task: Task, context: ServerCallContext) -> None:
        end = await self.bound.arun(self.flows.save(self._owner(context), task))
        if end is None:
            return
        if self.bound.epoch(task.id) is None:
            await self.bound.arun(self.flows.end(task.id, end))
        else:
            await asyncio.to_thread(self.bound.release, task.id, end.by)

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        task: Task | None = await self.bound.aread(self.flows.get(self._owner(context), task_id))
        return task

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        """The SDK's own filtering, ordering and page tokens, over this owner's tasks."""
        tasks = await self.bound.aread(self.flows.owned(self._owner(context)))
        view = InMemoryTaskStore(owner_resolver=lambda _: "", use_copying=False)
        for task in tasks:
            await view.save(task, context)
        return await view.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        await self.bound.arun(self.flows.delete_owned(self._owner(context), task_id))

    def close(self) -> None:
        """Pause the tasks this store still owns (see `release`), close what it opened."""
        for task_id in self.bound.owned():
            self.bound.release(task_id, SessionHandle.pause)
        self.bound.close()
