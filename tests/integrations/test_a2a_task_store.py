"""TetherTaskStore answers as the a2a-sdk's InMemoryTaskStore does (a differential test over random
save / get / delete / list sequences of two owners), on every store, and its Tether session follows
the A2A task's state. A save stores what changed (a delta) or now and then the whole task (a
snapshot): a task reads back exactly as last saved however it changed (grown, cut, rewritten, saved
by two writers at once, written by an earlier version), and a task saved once per message grows the
database linearly, not with the square of its history."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("a2a", reason="pip install 'tether[a2a]'")

from a2a.auth.user import User
from a2a.server.context import ServerCallContext
from a2a.server.tasks import InMemoryTaskStore
from a2a.types.a2a_pb2 import Artifact, ListTasksRequest, Message, Part, Role, Task, TaskState, TaskStatus
from google.protobuf.json_format import MessageToDict

from tests.conftest import STORE_KINDS, make_store_url
from tether import ConflictError, InvalidTransition, NotClaimable, SessionManager, State
from tether.integrations.a2a import TetherTaskStore
from tether.integrations.a2a.records import rebuilt
from tether.integrations.a2a.store import AGENT_TYPE, ANONYMOUS, TASK


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
            await TetherTaskStore(manager).save(again or Task(), alice)  # read back, not remembered
            with pytest.raises(InvalidTransition):  # what another store saved last is not final
                await TetherTaskStore(manager).save(task("t-1", "c", path[-2], len(path) - 2), alice)
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


# -- what a save stores ------------------------------------------------------------------------------
ANYONE = ServerCallContext()


def said(task: Task, at: int, text: str = "") -> None:
    """A status update with a message, as the SDK's TaskManager applies it: the status message
    before it moves into the history."""
    if task.status.HasField("message"):
        task.history.append(task.status.message)
    task.status.message.CopyFrom(
        Message(message_id=f"m{at}", role=Role.ROLE_AGENT, parts=[Part(text=text or f"step {at} done")])
    )
    task.status.timestamp.FromSeconds(1_700_000_000 + at)


def change(task: Task, kind: str, at: int, n: int) -> None:
    """One change to a task, of the kinds the SDK makes and of those a caller may make."""
    if kind == "say" or (kind in ("chunk", "replace") and not task.artifacts):
        said(task, at)
    elif kind == "artifact":
        task.artifacts.append(Artifact(artifact_id=f"a{at}", name=f"n{n}", parts=[Part(text=f"p{at}")]))
    elif kind == "chunk":  # append=True: more parts, merged metadata
        artifact = task.artifacts[n % len(task.artifacts)]
        artifact.parts.append(Part(text=f"chunk {at}"))
        artifact.metadata.update({f"k{n}": at})
    elif kind == "replace":  # append=False on an existing artifact id
        artifact = task.artifacts[n % len(task.artifacts)]
        artifact.CopyFrom(Artifact(artifact_id=artifact.artifact_id, parts=[Part(raw=bytes([n]))]))
    elif kind == "cut":
        del task.history[n % (len(task.history) + 1) :]
    elif kind == "edit" and task.history:
        task.history[n % len(task.history)].parts[0].text = f"edited {at}"
    elif kind == "metadata":
        task.metadata.update({"n": n}) if n % 2 else task.ClearField("metadata")
    elif kind == "unstatus":  # no status, or one with nothing in it (present, empty)
        task.ClearField("status") if n % 2 else task.status.CopyFrom(TaskStatus())


KINDS = ["say", "say", "say", "artifact", "chunk", "replace", "cut", "edit", "metadata", "unstatus"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(KINDS), st.integers(0, 50), st.integers(0, 1)), min_size=1, max_size=60
    )
)
def test_every_save_reads_back_exactly_however_the_task_changed(changes: list[tuple[str, int, int]]) -> None:
    """Two stores save one task in turns (each takes its deltas against the state it saved last, so
    their chains fork); every get, from either or from a fresh store, is the task as last saved."""

    async def saves() -> None:
        with SessionManager("memory://") as manager:
            writers = [TetherTaskStore(manager), TetherTaskStore(manager)]
            task = Task(id="t", context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED))
            for at, (kind, n, writer) in enumerate(changes):
                change(task, kind, at, n)
                await writers[writer].save(task, ANYONE)
                for reader in (*writers, TetherTaskStore(manager)):
                    assert await reader.get("t", ANYONE) == task, (at, kind)

    asyncio.run(saves())


def records(manager: SessionManager, task_id: str) -> list[Any]:
    return [r for r in manager.checkpoints(task_id, limit=10_000) if r.name == TASK]


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_task_reads_back_exactly_at_every_history_length(kind: str, tmp_path: Path) -> None:
    """Saved once per message, a task is mostly deltas; a store that did not save it (another
    process) reads it back exactly, from its newest snapshot and the deltas after it."""
    url, lengths = make_store_url(kind, tmp_path), {1, 2, 10, 60, 150, 300}

    async def saves() -> list[Task | None]:
        with SessionManager(url) as manager:
            store, task, seen = TetherTaskStore(manager), Task(id="t", context_id="c"), []
            for at in range(max(lengths) + 1):
                said(task, at)
                await store.save(task, ANYONE)
                if len(task.history) in lengths:
                    seen.append(await TetherTaskStore(manager).get("t", ANYONE) == task)
            log = records(manager, "t")
        assert sum("delta" in r.data for r in log) > 0.9 * len(log)
        return seen

    assert asyncio.run(saves()) == [True] * len(lengths)


@pytest.mark.parametrize("kind", [k for k in STORE_KINDS if k != "memory"])
def test_a_cut_history_is_a_snapshot_an_edited_message_a_delta(kind: str, tmp_path: Path) -> None:
    url = make_store_url(kind, tmp_path)
    steps = [
        (79, "-", 0),  # the first save
        (80, "say", 0),
        (81, "cut", 70),
        (82, "say", 0),
        (83, "edit", 30),
        (84, "replace", 0),
        (85, "unstatus", 0),  # a status with nothing in it
        (86, "unstatus", 1),  # no status: only the status's presence changed
        (87, "unstatus", 0),
    ]

    async def saves() -> list[tuple[str, bool]]:
        with SessionManager(url) as manager:
            store, task, seen = TetherTaskStore(manager), Task(id="t", context_id="c"), []
            for at in range(80):
                said(task, at, "x" * 40)
            task.artifacts.append(Artifact(artifact_id="a", parts=[Part(text="y" * 400)]))
            for at, kind, n in steps:
                change(task, kind, at, n)
                await store.save(task, ANYONE)
                newest = records(manager, "t")[-1]
                again = await TetherTaskStore(manager).get("t", ANYONE)
                seen.append((next(iter(newest.data)), again == task))
            return seen

    assert asyncio.run(saves()) == [
        ("snapshot", True),  # nothing stored yet
        ("delta", True),
        ("snapshot", True),  # history cut from 80 messages to 70
        ("delta", True),
        ("delta", True),  # one message rewritten in place: the delta holds it alone
        ("delta", True),  # the artifact replaced (the SDK's append=False)
        ("delta", True),
        ("delta", True),
        ("delta", True),
    ]


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_tasks_stored_whole_by_an_earlier_version_read_back_and_take_saves(kind: str, tmp_path: Path) -> None:
    """Records of the form earlier versions wrote (every save: the whole task as protobuf JSON)."""
    url, task = make_store_url(kind, tmp_path), Task(id="t", context_id="c")

    async def saves() -> tuple[list[bool], list[str]]:
        with SessionManager(url) as manager:
            manager.create(AGENT_TYPE, ANONYMOUS, session_id="t")
            for at in range(5):
                said(task, at)
                task.artifacts.append(Artifact(artifact_id=f"a{at}", parts=[Part(text=f"p{at}")]))
                manager.checkpoint("t", TASK, {"task": MessageToDict(task, preserving_proto_field_name=True)})
            seen = [await TetherTaskStore(manager).get("t", ANYONE) == task]
            store = TetherTaskStore(manager)
            for at in range(5, 8):
                said(task, at)
                await store.save(task, ANYONE)
                seen.append(await TetherTaskStore(manager).get("t", ANYONE) == task)
            return seen, [next(iter(r.data)) for r in records(manager, "t")]

    seen, forms = asyncio.run(saves())
    assert seen == [True] * 4
    assert forms == ["task"] * 5 + ["snapshot", "delta", "delta"]  # the first save after: a snapshot


def database_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def test_a_task_saved_once_per_message_grows_the_database_linearly(tmp_path: Path) -> None:
    """400 saves: the second 200 grow the database about as much as the first 200 (whole-task
    records: three times as much), and a save stores a few hundred bytes (whole-task records:
    ~8.6 KB a save over 200)."""
    path = tmp_path / "tether.db"
    with SessionManager(f"sqlite:///{path}") as manager:
        manager.create("other", "u")  # the schema exists before the first measure
        sizes = [database_size(path)]

        async def saves() -> None:
            store, task = TetherTaskStore(manager), Task(id="t", context_id="c")
            for at in range(400):
                said(task, at)
                await store.save(task, ANYONE)
                if at in (199, 399):
                    sizes.append(database_size(path))

        asyncio.run(saves())
    first, second = sizes[1] - sizes[0], sizes[2] - sizes[1]
    assert second < 1.4 * first, sizes
    assert second / 200 < 1_000, sizes


@pytest.mark.parametrize("kind", [k for k in STORE_KINDS if k != "memory"])
def test_two_writers_saving_one_task_at_once_leave_only_tasks_they_saved(kind: str, tmp_path: Path) -> None:
    """Two processes save one task at once, each its own versions (unowned: nothing fences them):
    every record reads back as a task one of them saved, and get as the newest record's."""
    url = make_store_url(kind, tmp_path)

    async def writer(manager: SessionManager, name: str, saved: set[bytes]) -> None:
        store, task = TetherTaskStore(manager), Task(id="t", context_id="c")
        for at in range(40):
            said(task, at, f"{name} {at}")
            saved.add(task.SerializeToString(deterministic=True))
            await store.save(task, ANYONE)

    async def both() -> tuple[set[bytes], list[bytes], Task | None]:
        saved: set[bytes] = set()
        with SessionManager(url, worker_id="w1") as one, SessionManager(url, worker_id="w2") as two:
            await asyncio.gather(writer(one, "one", saved), writer(two, "two", saved))
            log = records(one, "t")
            by_seq = {r.seq: r for r in log}
            every = [rebuilt(by_seq, r.seq) for r in log]
            tasks = [s.task.SerializeToString(deterministic=True) for s in every if s is not None]
            assert len(tasks) == len(log)
            return saved, tasks, await TetherTaskStore(one).get("t", ANYONE)

    saved, tasks, newest = asyncio.run(both())
    assert set(tasks) <= saved
    assert newest is not None and newest.SerializeToString(deterministic=True) == tasks[-1]


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_task_deleted_and_saved_anew_elsewhere_is_not_taken_for_the_one_remembered(
    kind: str, tmp_path: Path
) -> None:
    """A store remembers the last task it saved to store the next save's delta; the task deleted
    and created again by another store meanwhile is another session: the next save starts over."""
    url = make_store_url(kind, tmp_path)

    async def saves() -> bool:
        with SessionManager(url) as manager:
            mine, theirs = TetherTaskStore(manager), TetherTaskStore(manager)
            task, other = Task(id="t", context_id="c"), Task(id="t", context_id="c")
            for at in range(30):
                said(task, at, "mine")
                await mine.save(task, ANYONE)
            await theirs.delete("t", ANYONE)
            for at in range(40):
                said(other, at, "theirs")
                await theirs.save(other, ANYONE)
            said(task, 30)
            await mine.save(task, ANYONE)
            return await theirs.get("t", ANYONE) == task

    assert asyncio.run(saves())


def test_a_chain_missing_a_record_reads_as_no_task() -> None:
    """A read that finds the task's log gone between its queries (deleted meanwhile)."""

    async def saves() -> tuple[bool, Any]:
        with SessionManager("memory://") as manager:
            store, task = TetherTaskStore(manager), Task(id="t", context_id="c")
            for at in range(20):
                said(task, at)
                await store.save(task, ANYONE)
            log = records(manager, "t")
            newest = log[-1]
            whole = rebuilt({r.seq: r for r in log}, newest.seq)
            return whole is not None and whole.task == task, rebuilt({newest.seq: newest}, newest.seq)

    assert asyncio.run(saves()) == (True, None)


def test_a_store_remembers_the_tasks_it_saved_last_and_reads_back_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tether.integrations.a2a.store.KNOWN", 2)

    async def saves() -> tuple[list[str], bool]:
        with SessionManager("memory://") as manager:
            store, tasks = TetherTaskStore(manager), [Task(id=f"t{i}", context_id="c") for i in range(3)]
            earlier = [Message(message_id=f"h{n}", parts=[Part(text="x" * 50)]) for n in range(10)]
            for task in tasks:
                task.history.extend(earlier)
            for at in range(12):
                said(tasks[at % 3], at)
                await store.save(tasks[at % 3], ANYONE)
            log = records(manager, "t0")
            same = all([await TetherTaskStore(manager).get(t.id, ANYONE) == t for t in tasks])
            return list(store.flows.known), same and "delta" in log[-1].data  # t0: read back, then a delta

    assert asyncio.run(saves()) == (["t1", "t2"], True)
