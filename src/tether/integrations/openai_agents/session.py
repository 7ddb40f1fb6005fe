"""`TetherSession`: the OpenAI Agents SDK's `Session` protocol on any Tether store.

A conversation's log holds one `agents.items` checkpoint per `add_items` call (the items as JSON,
exactly as the SDK's SQLiteSession keeps them), an `agents.pop` per `pop_item` (with the item it
took) and an `agents.clear` per `clear_session`: the log is append-only, it is the audit trail.
`get_items(limit)` reads back from the newest record only as far as the `limit` newest items go.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

from agents.items import TResponseInputItem
from agents.memory.session_settings import SessionSettings, coerce_session_settings, resolve_session_limit

from tether.core.model import Checkpoint as Record
from tether.flows.runner import Flow
from tether.front.handle import AsyncSessionHandle, SessionHandle
from tether.front.manager import SessionManager
from tether.integrations.adapter import Bound, manager_for
from tether.integrations.sessions import FIRST_PAGE, SessionFlows

ITEMS = "agents.items"
POP = "agents.pop"
CLEAR = "agents.clear"
# A run's add_items holds the user's input and the model's reply at least: the newest `limit`
# items are usually in the newest limit / 2 records (a second page reads on past a pop).
ITEMS_PER_CALL = 2


class ConversationFlows(SessionFlows):
    def items(self, session_id: str, limit: int | None) -> Flow[list[Any]]:
        """The conversation, oldest first; only the newest `limit` items when limit > 0, none when
        it is 0, all of them when it is None or negative (as SQLiteSession's SQL LIMIT does)."""
        if limit == 0:
            return []
        wanted = None if limit is None or limit < 0 else limit
        newest: list[Any] = []
        popped = 0

        def visit(record: Record) -> bool:
            nonlocal popped
            if record.name == CLEAR:
                return True
            if record.name == POP:
                popped += 1
            elif record.name == ITEMS:
                for item in reversed(record.data["items"]):
                    if popped:
                        popped -= 1
                    else:
                        newest.append(item)
                    if wanted is not None and len(newest) >= wanted:
                        return True
            return False

        first_page = FIRST_PAGE if wanted is None else -(-wanted // ITEMS_PER_CALL)
        yield from self.back(session_id, visit, first_page)
        return newest[::-1]

    def pop(self, session_id: str) -> Flow[Any]:
        last = yield from self.items(session_id, 1)
        if not last:
            return None
        yield from self.append(session_id, POP, {"item": last[0]})
        return last[0]

    def clear(self, session_id: str) -> Flow[None]:
        if (yield from self.items(session_id, 1)):
            yield from self.append(session_id, CLEAR, {})


class TetherSession:
    """An Agents SDK session (`Runner.run(agent, input, session=...)`) kept in Tether.

    `TetherSession(session_id, "sqlite:///tether.db")` (or `memory://`, `postgresql://…`; None:
    the TETHER_STORE_URL / ./tether.db default) or `TetherSession(session_id, manager)`.
    `session_settings` works as in the SDK's own sessions (`SessionSettings(limit=N)`).
    """

    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        manager: SessionManager | str | None = None,
        *,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        agent_type: str = "openai-agents",
        user_id: str = "openai-agents",
    ) -> None:
        self.session_id = session_id
        self.session_settings = (
            coerce_session_settings(session_settings) if session_settings is not None else SessionSettings()
        )
        manager, owned = manager_for(manager)
        self.manager = manager
        self.flows = ConversationFlows(manager.ops, agent_type, user_id)
        self.bound = Bound(manager, self.flows, owned)

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        limit = resolve_session_limit(limit, self.session_settings)
        return await self.bound.aread(self.flows.items(self.session_id, limit))

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        if items:
            await self.bound.arun(self.flows.append(self.session_id, ITEMS, {"items": list(items)}))

    async def pop_item(self) -> TResponseInputItem | None:
        item: TResponseInputItem | None = await self.bound.arun(self.flows.pop(self.session_id))
        return item

    async def clear_session(self) -> None:
        await self.bound.arun(self.flows.clear(self.session_id))

    def hold(self) -> AbstractContextManager[SessionHandle]:
        """Own the conversation for a run (see `tether.integrations.adapter.Bound.hold`). Usable
        around `await Runner.run(...)` too: its heartbeats come from a thread, so work that blocks
        the event loop does not starve them."""
        return self.bound.hold(self.session_id)

    def ahold(self) -> AbstractAsyncContextManager[AsyncSessionHandle]:
        """`hold` with heartbeats from an asyncio task (which a blocked event loop delays)."""
        return self.bound.ahold(self.session_id)

    def close(self) -> None:
        self.bound.close()
