"""Fixtures of the store contract suite: sessions in a given state, and a check that nothing changed.

Every test here runs once per store kind (tests/conftest.py: STORE_KINDS) through the `manager`
fixture, so a new store, or the async manager, passes the same specification unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from tether import SessionManager, State
from tether.model import Session

ALL_CHECKPOINTS = 10_000

MakeSession = Callable[..., Session]
Unchanged = Callable[[str], AbstractContextManager[None]]


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
