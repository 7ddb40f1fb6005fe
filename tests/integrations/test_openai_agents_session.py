"""TetherSession answers every call as the SDK's own SQLiteSession does (a differential test over
random operation sequences), on every store, and keeps the conversation in a Tether session."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("agents", reason="pip install 'tether[openai-agents]'")

from agents import SQLiteSession
from agents.memory import SessionSettings

from tests.conftest import STORE_KINDS, make_store_url
from tether import LeaseLost, ManualClock, SessionManager
from tether.integrations.openai_agents import TetherSession
from tether.stores import open_store

items = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": st.text(max_size=5)}),
    max_size=3,
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add_items"), items),
        st.tuples(st.just("get_items"), st.sampled_from([None, -1, 0, 1, 2, 3, 7])),
        st.tuples(st.just("pop_item")),
        st.tuples(st.just("clear_session")),
    ),
    max_size=25,
)


async def answer(session: Any, operation: tuple[Any, ...]) -> Any:
    name, *args = operation
    return await getattr(session, name)(*args)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, default_limit=st.sampled_from([None, 2]))
def test_every_answer_matches_sqlite_session(ops: list[tuple[Any, ...]], default_limit: int | None) -> None:
    async def both() -> None:
        sdk_settings = SessionSettings(limit=default_limit)
        theirs = SQLiteSession("conversation", session_settings=sdk_settings)
        ours = TetherSession("conversation", SessionManager("memory://"), session_settings=sdk_settings)
        for operation in ops:
            assert await answer(ours, operation) == await answer(theirs, operation), operation
        assert await ours.get_items() == await theirs.get_items()
        theirs.close()

    asyncio.run(both())


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_conversation_outlives_its_session_object_and_is_a_tether_session(
    kind: str, tmp_path: Path
) -> None:
    url = make_store_url(kind, tmp_path)

    async def write_then_read() -> tuple[list[Any], Any]:
        with SessionManager(url) as manager:
            first = TetherSession("chat-1", manager)
            await first.add_items(
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
            )
            await first.add_items([{"role": "user", "content": "bye"}])
            assert await first.pop_item() == {"role": "user", "content": "bye"}
            again = TetherSession("chat-1", manager, session_settings={"limit": 1})
            return [await again.get_items(), await again.get_items(limit=5)], manager.get("chat-1")

    (latest, everything), session = asyncio.run(write_then_read())
    assert latest == [{"role": "assistant", "content": "hello"}]
    assert everything == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert (session.agent_type, session.last_seq) == ("openai-agents", 3)


def test_a_worker_that_lost_its_conversation_writes_nothing_more(tmp_path: Path) -> None:
    clock = ManualClock()
    store = open_store(make_store_url("sqlite", tmp_path), clock)
    zombie = TetherSession("chat-2", SessionManager(store, worker_id="worker-1"))
    taker = TetherSession("chat-2", SessionManager(store, worker_id="worker-2"))

    async def race() -> list[Any]:
        with pytest.raises(LeaseLost):  # the zombie's block ends refused, too
            async with zombie.ahold():
                await zombie.add_items([{"role": "user", "content": "hi"}])
                clock.advance(61)  # worker-1 went silent past its lease
                async with taker.ahold() as held:
                    assert held.epoch == 2
                    with pytest.raises(LeaseLost):
                        await zombie.add_items([{"role": "assistant", "content": "late"}])
                    with pytest.raises(LeaseLost):
                        await zombie.pop_item()
                    await taker.add_items([{"role": "assistant", "content": "hello"}])
        return await taker.get_items()

    assert asyncio.run(race()) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    store.close()
