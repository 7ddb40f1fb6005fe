"""Fixtures of the store contract suite: sessions in a given state, and a check that nothing changed.

Every test here runs once per store kind (tests/conftest.py: STORE_KINDS) and once per front door
through the `manager` fixture (sync, async, client, async-client), so a new store, the async
manager, or the HTTP API through `tether.Client`, passes the same specification unchanged.

The clients ("client", "async-client") talk to a real `tether serve` process on a loopback port:
one per store kind (SQLite and PostgreSQL) for the whole run, emptied through the API before each
test (tests/remote.py). Tests that move a ManualClock or use the `store` fixture talk over loopback
HTTP to the same app served from this process around their store and clock (tests/in_process.py).
Skipped, each with its reason: the event tests, whose subscribers the embedded managers call
synchronously (the clients' live stream is asynchronous and is specified in tests/client/), and
the few tests of what a client does differently on purpose (NOT_REMOTE).

How the async run works without a second copy of the tests: for "async", `manager` is a
`BlockingAsyncManager` (tests/async_facade.py) wrapping an `AsyncSessionManager`. It has the
SessionManager's methods; each call runs the async manager's coroutine on a private event loop
thread and blocks for its result or exception, so the same sync test bodies drive the async
manager. The async manager gets the store's native async face where there is one (PostgreSQL, from
the same URL), else the very `store` fixture on a worker thread (`ThreadedStore`), so tests that
also use `store` see the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from tests.async_facade import BlockingAsyncManager
from tests.in_process import served
from tests.remote import empty, serve
from tether import AsyncClient, Client, Policies, SessionManager, State
from tether.core.model import Session
from tether.front.aio import AsyncSessionManager
from tether.stores import POSTGRES_SCHEMES, Store

ALL_CHECKPOINTS = 10_000

MakeSession = Callable[..., Session]
Unchanged = Callable[[str], AbstractContextManager[None]]


CLIENTS = ("client", "async-client")
# Tests that move a ManualClock or use the store directly run their clients against the API served
# from this process around that clock and store (a server process would keep both to itself).
IN_PROCESS = ("clock", "store")
EVENT_TESTS = "test_events.py"
# What a client differs in on purpose (docs/client.md), by test: (front doors, reason).
LOCAL_CLOCK = (
    "duration() of a live session is measured at the client's clock, which a ManualClock does not move"
)
NOT_REMOTE = {
    "test_active_duration_runs_with_the_clock": (CLIENTS, LOCAL_CLOCK),
    "test_paused_duration_keeps_running": (CLIENTS, LOCAL_CLOCK),
    "test_apply_of_a_lease_renewing_write_sets_the_liveness_columns": (
        ("async-client",),
        "AsyncClient has no `policies` property (a property cannot await): GET /v1/policies",
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The clients run against SQLite and PostgreSQL servers, not the memory store."""

    def params(item: pytest.Item) -> dict[str, object]:
        callspec = getattr(item, "callspec", None)
        return callspec.params if callspec is not None else {}

    items[:] = [
        item
        for item in items
        if not (params(item).get("manager") in CLIENTS and params(item).get("store_url") == "memory")
    ]


class Remote:
    """A server process, and a sync and an async client of it, shared by every test of a store kind."""

    def __init__(self, store_url: str, workdir: Path, policies: Policies) -> None:
        self.stack = ExitStack()
        # No sweeps during the run: the embedded managers have no supervisor either, and one would
        # time out imported sessions whose seed leases lie in the past between two calls of a test.
        url = self.stack.enter_context(serve(store_url, workdir, policies, "--sweep-interval", "3600")).url
        self.client = self.stack.enter_context(Client(url, worker_id="worker-a"))
        self.async_client = BlockingAsyncManager(AsyncClient(url, worker_id="worker-a"))  # type: ignore[arg-type]
        self.stack.callback(self.async_client.close)

    def close(self) -> None:
        self.stack.close()


@pytest.fixture(scope="session")
def remotes() -> Iterator[dict[str, Remote]]:
    """One `tether serve` per store kind, started on first use, stopped at the end of the run."""
    started: dict[str, Remote] = {}
    yield started
    for remote in started.values():
        remote.close()


def _remote(request: pytest.FixtureRequest, store_url: str) -> Remote:
    remotes: dict[str, Remote] = request.getfixturevalue("remotes")
    kind = request.node.callspec.params["store_url"]
    if kind not in remotes:
        workdir = request.getfixturevalue("tmp_path_factory").mktemp(f"serve-{kind}")
        url = store_url if kind == "postgres" else f"sqlite:///{workdir}/tether.db"
        remotes[kind] = Remote(url, workdir, request.getfixturevalue("policies"))
    return remotes[kind]


@pytest.fixture(params=["sync", "async", *CLIENTS])
def manager(request: pytest.FixtureRequest, store_url: str, policies: Policies) -> Iterator[SessionManager]:
    if request.param in CLIENTS:
        yield from _client(request, store_url)
        return
    yield from front_door(request.param, request.getfixturevalue("store"), store_url, policies)


def front_door(
    kind: str, store: Store, store_url: str, policies: Policies, **options: Any
) -> Iterator[SessionManager]:
    """The sync manager on `store`, or ("async") the async one behind its blocking facade;
    `options` are further constructor arguments (such as a codec)."""
    if kind == "sync":
        yield SessionManager(store, policies=policies, worker_id="worker-a", **options)
        return
    native = store_url.split(":", 1)[0] in POSTGRES_SCHEMES
    facade = BlockingAsyncManager(
        AsyncSessionManager(
            store_url if native else store,
            policies=policies,
            clock=store.clock,
            worker_id="worker-a",
            **options,
        )
    )
    yield cast(SessionManager, facade)
    facade.close()


def _client(request: pytest.FixtureRequest, store_url: str) -> Iterator[SessionManager]:
    if request.node.path.name == EVENT_TESTS:
        pytest.skip("not through a server: subscribers are called synchronously, in-process")
    doors, reason = NOT_REMOTE.get(request.node.originalname, ((), ""))
    if request.param in doors:
        pytest.skip(f"not through a server: {reason}")
    if any(name in request.fixturenames for name in IN_PROCESS):
        yield from _in_process(request, store_url)
        return
    remote = _remote(request, store_url)
    empty(remote.client)
    yield cast(SessionManager, remote.client if request.param == "client" else remote.async_client)


def _in_process(request: pytest.FixtureRequest, store_url: str) -> Iterator[SessionManager]:
    """The API served from this process around the test's own store and clock (tests/in_process.py),
    reached over loopback HTTP by the client as a remote server would be."""
    store: Store = request.getfixturevalue("store")
    native = store_url.split(":", 1)[0] in POSTGRES_SCHEMES
    policies: Policies = request.getfixturevalue("policies")
    manager = AsyncSessionManager(store_url if native else store, policies=policies, clock=store.clock)
    with served(manager, store_url) as url:
        if request.param == "client":
            with Client(url, worker_id="worker-a") as client:
                yield cast(SessionManager, client)
            return
        facade = BlockingAsyncManager(AsyncClient(url, worker_id="worker-a"))  # type: ignore[arg-type]
        yield cast(SessionManager, facade)
        facade.close()


@pytest.fixture
def in_state(manager: SessionManager) -> MakeSession:
    """Create a "tutor" session with two checkpoints and drive it into the requested state."""

    def make(state: State | str = State.ACTIVE, agent_type: str = "tutor", **create: Any) -> Session:
        session = manager.create(agent_type, create.pop("user_id", "user-1"), **create)
        manager.checkpoint(session.session_id, "task_received", {"task": 1})
        manager.checkpoint(session.session_id, "step", {"n": 1})
        target = State(state)
        if target is State.PAUSED:
            manager.pause(session.session_id)
        elif target is State.COMPLETED:
            manager.complete(session.session_id, {"answer": 42})
        elif target is State.FAILED:
            manager.fail(session.session_id, "boom", {"why": "test"})
        return manager.get(session.session_id)

    return make


@pytest.fixture
def unchanged(manager: SessionManager) -> Unchanged:
    """`with unchanged(session_id): ...` asserts the block wrote nothing: session and history equal."""

    @contextmanager
    def check(session_id: str) -> Iterator[None]:
        before = (manager.get(session_id), manager.checkpoints(session_id, limit=ALL_CHECKPOINTS))
        yield
        after = (manager.get(session_id), manager.checkpoints(session_id, limit=ALL_CHECKPOINTS))
        assert after == before

    return check
