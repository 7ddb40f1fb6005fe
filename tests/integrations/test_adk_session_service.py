"""TetherSessionService answers as ADK's InMemorySessionService does (a differential test over random
operation sequences: create, get with GetSessionConfig, list, delete, append_event with app: /
user: / temp: state deltas, get_user_state), on every store, and refuses a stale session object."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

pytest.importorskip("google.adk", reason="pip install 'tether[adk]'")

from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions import InMemorySessionService
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from tests.conftest import STORE_KINDS, make_store_url
from tether import LeaseLost, ManualClock, SessionManager
from tether.integrations.adk import TetherSessionService
from tether.stores import open_store

USERS = ["ana", "bo"]
IDS = ["s1", "s2"]
keys = st.sampled_from(["k", "n", "app:k", "app:n", "user:k", "user:n", "temp:k"])
states = st.dictionaries(keys, st.integers(-3, 3) | st.text(max_size=3), max_size=3)
CONFIGS = [None, (None, None), (0, None), (1, None), (3, None), (None, 1.5), (None, 2.5), (2, 2.5)]
configs = st.sampled_from(CONFIGS)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(USERS), st.sampled_from(IDS), states),
        st.tuples(st.just("get"), st.sampled_from(USERS), st.sampled_from(IDS), configs),
        st.tuples(st.just("list"), st.sampled_from([*USERS, None])),
        st.tuples(st.just("delete"), st.sampled_from(USERS), st.sampled_from(IDS)),
        st.tuples(st.just("append"), st.sampled_from(USERS), st.sampled_from(IDS), states, st.booleans()),
        st.tuples(st.just("user_state"), st.sampled_from(USERS)),
    ),
    max_size=20,
)


def seen(session: Any) -> Any:
    """What a caller can observe of a session, besides the clock it was stored at."""
    if session is None:
        return None
    return (
        session.app_name,
        session.user_id,
        session.id,
        session.state,
        [e.model_dump() for e in session.events],
    )


async def answer(service: Any, operation: tuple[Any, ...], clock: itertools.count[int]) -> Any:
    name, *args = operation
    try:
        if name == "create":
            user, sid, state = args
            return seen(
                await service.create_session(app_name="app", user_id=user, session_id=sid, state=state)
            )
        if name == "get":
            user, sid, config = args
            cfg = (
                None
                if config is None
                else GetSessionConfig(num_recent_events=config[0], after_timestamp=config[1])
            )
            return seen(await service.get_session(app_name="app", user_id=user, session_id=sid, config=cfg))
        if name == "list":
            listed = await service.list_sessions(app_name="app", user_id=args[0])
            return [seen(s) for s in listed.sessions]
        if name == "delete":
            return await service.delete_session(app_name="app", user_id=args[0], session_id=args[1])
        if name == "user_state":
            return await service.get_user_state(app_name="app", user_id=args[0])
        user, sid, delta, partial = args
        session = await service.get_session(app_name="app", user_id=user, session_id=sid)
        if session is None:
            return "no session"
        n = next(clock)
        event = Event(
            id=f"e{n}",
            invocation_id="inv",
            author="agent",
            timestamp=1.0 + n,
            partial=partial or None,
            content=types.Content(role="model", parts=[types.Part(text=f"turn {n}")]),
            actions=EventActions(state_delta=dict(delta)),
        )
        appended = await service.append_event(session, event)
        return (appended.model_dump(), session.state, [e.id for e in session.events])
    except (AlreadyExistsError, SessionNotFoundError) as exc:
        return type(exc).__name__


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
@example(  # every config on a session with a few events, whatever the random draws cover
    ops=[
        ("create", "ana", "s1", {"k": 1, "app:k": 2, "user:k": 3, "temp:k": 4}),
        *[("append", "ana", "s1", {"k": n, "user:n": n, "temp:k": n}, False) for n in range(3)],
        *[("get", "ana", "s1", config) for config in CONFIGS],
    ]
)
def test_every_answer_matches_in_memory_session_service(ops: list[tuple[Any, ...]]) -> None:
    async def both() -> None:
        theirs, ours = InMemorySessionService(), TetherSessionService(SessionManager("memory://"))
        their_clock, our_clock = itertools.count(), itertools.count()
        for operation in ops:
            expected = await answer(theirs, operation, their_clock)
            assert await answer(ours, operation, our_clock) == expected, operation

    asyncio.run(both())


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_sessions_and_scoped_state_persist_and_a_stale_session_is_refused(kind: str, tmp_path: Path) -> None:
    url = make_store_url(kind, tmp_path)

    async def scenario() -> Any:
        with SessionManager(url) as manager:
            service = TetherSessionService(manager)
            first = await service.create_session(
                app_name="app", user_id="ana", session_id="s", state={"app:v": 1}
            )
            stale = first.model_copy(deep=True)
            event = Event(
                invocation_id="i", author="a", actions=EventActions(state_delta={"user:name": "Ana"})
            )
            await service.append_event(first, event)
            with pytest.raises(ValueError, match="stale"):
                await service.append_event(stale, Event(invocation_id="i", author="a"))
            again = await TetherSessionService(manager).get_session(
                app_name="app", user_id="ana", session_id="s"
            )
            return again, manager.get("app/ana/s")

    again, tether_session = asyncio.run(scenario())
    assert again is not None and again.state == {"app:v": 1, "user:name": "Ana"} and len(again.events) == 1
    assert (tether_session.agent_type, tether_session.user_id) == ("adk:app", "ana")


def test_a_worker_that_lost_its_session_appends_nothing_more(tmp_path: Path) -> None:
    clock = ManualClock()
    store = open_store(make_store_url("sqlite", tmp_path), clock)
    zombie = TetherSessionService(SessionManager(store, worker_id="worker-1"))
    taker = TetherSessionService(SessionManager(store, worker_id="worker-2"))
    ids = {"app_name": "app", "user_id": "ana", "session_id": "s"}
    asyncio.run(zombie.create_session(**ids))
    with pytest.raises(LeaseLost), zombie.hold("app", "ana", "s"):  # the zombie's block ends refused
        session = asyncio.run(zombie.get_session(**ids))
        clock.advance(61)  # worker-1 went silent past its lease
        with taker.hold("app", "ana", "s") as held:
            assert held.epoch == 2
            with pytest.raises(LeaseLost):
                asyncio.run(zombie.append_event(session, Event(invocation_id="i", author="late")))
            stored = asyncio.run(taker.get_session(**ids))
    assert stored is not None and stored.events == []
    store.close()
