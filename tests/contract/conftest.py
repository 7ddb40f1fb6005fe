"""Fixtures of the store contract suite: sessions in a given state, and a check that nothing changed.

Every test here runs once per store kind (tests/conftest.py: STORE_KINDS) and once per manager
(sync, async) through the `manager` fixture, so a new store, or the async manager, passes the same
specification unchanged.

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
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

import pytest

from tests.async_facade import BlockingAsyncManager
from tether import Policies, SessionManager, State
from tether.core.model import Session
from tether.front.aio import AsyncSessionManager
from tether.stores import POSTGRES_SCHEMES, Store

ALL_CHECKPOINTS = 10_000

MakeSession = Callable[..., Session]
Unchanged = Callable[[str], AbstractContextManager[None]]


@pytest.fixture(params=["sync", "async"])
def manager(
    request: pytest.FixtureRequest, store: Store, store_url: str, policies: Policies
) -> Iterator[SessionManager]:
    yield from front_door(request.param, store, store_url, policies)


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
