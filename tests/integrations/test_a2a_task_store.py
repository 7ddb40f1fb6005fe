"""TetherTaskStore answers as the a2a-sdk's InMemoryTaskStore does (a differential test over random
save / get / delete / list sequences of two owners), on every store, and its Tether session follows
the A2A task's state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("a2a", reason="pip install 'tether[a2a]'")

from a2a.auth.user import User
from a2a.server.context import ServerCallContext
from a2a.server.tasks import InMemoryTaskStore
from a2a.types.a2a_pb2 import ListTasksRequest, Message, Part, Task, TaskState, TaskStatus

from tests.conftest import STORE_KINDS, make_store_url
from tether import ConflictError, InvalidTransition, NotClaimable, SessionManager, State
from tether.integrations.a2a import TetherTaskStore


class Named(User):
    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self.name


def context(owner: str) -> ServerCallContext:
    return ServerCallContext(user=Named(owner))


def task(task_id: str, context_id: str, state: Any, at: int, text: str = "") -> Task:
    status = TaskStatus(state=state)
    status.timestamp.FromSeconds(1_700_000_000 + at)
    if text:
        status.message.CopyFrom(Message(message_id=f"m{at}", parts=[Part(text=text)]))
    return Task(id=task_id, context_id=context_id, status=status)


OWNERS = {"alice": ["a1", "a2"], "bob": ["b1", "b2"]}
LIVE = [TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_INPUT_REQUIRED]
owners = st.sampled_from(sorted(OWNERS))
ids = st.sampled_from([i for v in OWNERS.values() for i in v])
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("save"), owners, st.integers(0, 1), st.sampled_from(["c1", "c2"]), st.sampled_from(LIVE)
        ),
        st.tuples(st.just("get"), owners, ids),
        st.tuples(st.just("delete"), owners, ids),
        st.tuples(
            st.just("list"),
            owners,
            st.sampled_from(["", "c1"]),
            st.sampled_from([0, TaskState.TASK_STATE_WORKING]),
            st.sampled_from([0, 1, 2]),
        ),
    ),
    max_size=20,
)


async def answer(store: Any, operation: tuple[Any, ...], at: int) -> Any:
    name, owner, *args = operation
    if name == "save":
        index, context_id, state = args
        return await store.save(task(OWNERS[owner][index], context_id, state, at, f"t{at}"), context(owner))
    if name == "get":
        return await store.get(args[0], context(owner))
    if name == "delete":
        return await store.delete(args[0], context(owner))
    context_id, status, page_size = args
    pages, token = [], ""
    while True:
        request = ListTasksRequest(
            context_id=context_id, status=status, page_size=page_size, page_token=token
        )
        page = await store.list(request, context(owner))
        pages.append(page)
        token = page.next_page_token
        if not token:
            return pages


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_every_answer_matches_in_memory_task_store(ops: list[tuple[Any, ...]]) -> None:
    async def both() -> None:
        theirs, ours = InMemoryTaskStore(), TetherTaskStore(SessionManager("memory://"))
        for at, operation in enumerate(ops):
            assert await answer(ours, operation, at) == await answer(theirs, operation, at), operation

    asyncio.run(both())


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_the_tether_session_follows_the_task_and_a_finished_task_takes_no_more_saves(
    kind: str, tmp_path: Path
) -> None:
    url, alice = make_store_url(kind, tmp_path), context("alice")
    path = [
        TaskState.TASK_STATE_SUBMITTED,
        TaskState.TASK_STATE_WORKING,
        TaskState.TASK_STATE_INPUT_REQUIRED,
        TaskState.TASK_STATE_WORKING,
        TaskState.TASK_STATE_COMPLETED,
    ]

    async def lifecycle() -> tuple[list[State], Task | None, Task | None]:
        with SessionManager(url) as manager:
            store = TetherTaskStore(manager)
            states = []
            for at, state in enumerate(path):
                await store.save(task("t-1", "c", state, at), alice)
                states.append(manager.get("t-1").state)
            await store.save(task("t-1", "c", path[-1], len(path) - 1), alice)  # the same final task
            with pytest.raises(InvalidTransition):
                await store.save(task("t-1", "c", TaskState.TASK_STATE_WORKING, 99), alice)
            again = await TetherTaskStore(manager).get("t-1", alice)
            return states, again, await store.get("t-1", context("bob"))

    states, again, foreign = asyncio.run(lifecycle())
    assert states == [State.ACTIVE, State.ACTIVE, State.PAUSED, State.ACTIVE, State.COMPLETED]
    assert again == task("t-1", "c", TaskState.TASK_STATE_COMPLETED, len(path) - 1)
    assert foreign is None  # another owner's task is invisible, as in the SDK's stores


@pytest.mark.parametrize("kind", [k for k in STORE_KINDS if k != "memory"])  # two managers, one store
def test_a_worker_owns_a_task_until_a_save_ends_its_turn(kind: str, tmp_path: Path) -> None:
    url, alice = make_store_url(kind, tmp_path), context("alice")
    working, waiting = TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_INPUT_REQUIRED

    async def turns() -> list[tuple[State, int, bool]]:
        with (
            SessionManager(url, worker_id="w1") as one,
            SessionManager(url, worker_id="w2") as two,
        ):
            mine, theirs = TetherTaskStore(one), TetherTaskStore(two)
            seen = []
            held = await mine.own("t-1", alice)
            with pytest.raises(NotClaimable):  # w1 is alive
                await theirs.own("t-1", alice)
            with pytest.raises(ConflictError):  # another owner's task
                await theirs.own("t-1", context("bob"))
            await mine.save(task("t-1", "c", working, 1), alice)
            seen.append((one.get("t-1").state, held.epoch, held.lost is None))
            await mine.save(task("t-1", "c", waiting, 2), alice)  # ends the turn: paused, no beats
            seen.append((one.get("t-1").state, one.get("t-1").epoch, mine.bound.owned() == []))
            again = await theirs.own("t-1", alice)  # the client answered; another worker goes on
            await theirs.release("t-1")
            seen.append((one.get("t-1").state, again.epoch, theirs.bound.owned() == []))
            await theirs.own("t-1", alice)
            theirs.close()  # pauses what it still owns
            seen.append((one.get("t-1").state, one.get("t-1").epoch, True))
            return seen

    assert asyncio.run(turns()) == [
        (State.ACTIVE, 1, True),
        (State.PAUSED, 1, True),
        (State.PAUSED, 1, True),
        (State.PAUSED, 1, True),
    ]
