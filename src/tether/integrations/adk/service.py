"""`TetherSessionService`: Google ADK's `BaseSessionService` on any Tether store.

An ADK session `(app, user, id)` is the Tether session `app/user/id` (agent type `adk:<app>`, user
`user`), created with its session-scoped state in its context. Each appended event is one
`adk.event` checkpoint: the event as JSON (`model_dump(mode="json")`, what ADK's own database
services store), its timestamp, and the session-scoped state after it, so the newest record alone
gives the current state and `get_session(num_recent_events=N)` reads only the N newest records.
`app:` and `user:` state live in the context of Tether sessions of their own (`adk-app/<app>`,
`adk-user/<app>/<user>`, agent type `adk-state`, paused: nobody runs them), updated by
compare-and-set; `temp:` state is never stored. A new session is paused until a run holds it (or an
event is appended), so an idle session never looks dead. An append whose session object is older
than the stored session raises ADK's `StaleSessionError`, as ADK's database services do.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.sessions import _session_util
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from google.adk.sessions.state import State as AdkState

from tether.core.errors import ConflictError, NotFound
from tether.core.model import Checkpoint as Record
from tether.flows.operations import Operations
from tether.flows.runner import Flow
from tether.front.handle import AsyncSessionHandle, SessionHandle
from tether.front.manager import SessionManager
from tether.integrations.adapter import Bound, manager_for
from tether.integrations.sessions import PAGE, SessionFlows

try:  # ADK >= 1.x names it here; the error only exists where ADK checks staleness
    from google.adk.errors._stale_session_error import StaleSessionError
except ImportError:  # pragma: no cover - depends on the installed ADK
    StaleSessionError = ValueError  # type: ignore[misc,assignment]

EVENT = "adk.event"


def session_key(app_name: str, user_id: str, session_id: str) -> str:
    return f"{app_name}/{user_id}/{session_id}"


def app_key(app_name: str) -> str:
    return f"adk-app/{app_name}"


def user_key(app_name: str, user_id: str) -> str:
    return f"adk-user/{app_name}/{user_id}"


class AdkFlows(SessionFlows):
    """An ADK session's log, and the snapshots of app and user state."""

    def __init__(self, ops: Operations) -> None:
        super().__init__(ops, "adk", "adk", creates=False)  # sessions are created explicitly

    def scoped(self, key: str) -> Flow[dict[str, Any]]:
        """An app's or a user's state: the context of its (paused) Tether session, one point read."""
        try:
            holder = yield from self.ops.get(key)
        except NotFound:
            return {}
        return dict(holder.context["state"])

    def update_scoped(self, key: str, delta: dict[str, Any]) -> Flow[None]:
        """Merge `delta` into an app's or a user's state: compare-and-set on the holder's version,
        so concurrent writers never lose each other's keys."""
        while delta:
            try:
                holder = yield from self.ops.get(key)
            except NotFound:
                with contextlib.suppress(ConflictError):  # else created meanwhile: merge into it
                    yield from self.ops.create("adk-state", "adk", context={"state": delta}, session_id=key)
                    yield from self.ops.pause(key)  # bookkeeping: nobody runs it
                    return
                continue
            with contextlib.suppress(ConflictError):  # another writer got in first: read again
                state = {**holder.context["state"], **delta}
                yield from self.ops.update(key, context={"state": state}, expected_version=holder.version)
                return

    def current(self, key: str) -> Flow[tuple[dict[str, Any], float, Record | None]]:
        """(session-scoped state, last update time, newest event record) as stored now."""
        session = yield from self.ops.get(key)
        last = yield from self.ops.last_checkpoint(key, EVENT)
        if last is None:
            return dict(session.context["state"]), float(session.context["time"]), None
        return dict(last.data["state"]), float(last.data["time"]), last

    def events(self, key: str, limit: int | None) -> Flow[list[Record]]:
        """The newest `limit` event records (all when None), oldest first."""
        if limit is None:
            return [r for r in (yield from self.read(key, 0, EVENT))]
        newest: list[Record] = []

        def visit(record: Record) -> bool:
            if record.name == EVENT:
                newest.append(record)
            return len(newest) >= limit

        yield from self.back(key, visit, limit)  # one event a record, mostly: one page
        return newest[::-1]


class TetherSessionService(BaseSessionService):
    """ADK's session service on Tether: `TetherSessionService("sqlite:///tether.db")` (or
    `memory://`, `postgresql://…`, a `SessionManager`, or None for the TETHER_STORE_URL default)."""

    def __init__(self, manager: SessionManager | str | None = None) -> None:
        manager, owned = manager_for(manager)
        self.manager = manager
        self.flows = AdkFlows(manager.ops)
        self.bound = Bound(manager, self.flows, owned)

    def hold(self, app_name: str, user_id: str, session_id: str) -> AbstractContextManager[SessionHandle]:
        """Own the session while a `Runner` runs it (see `tether.integrations.adapter.Bound.hold`).
        Heartbeats come from a thread, so a run that blocks the event loop (ADK's first run imports
        and builds a lot) does not starve them: prefer it to `ahold` around `Runner.run_async`."""
        return self.bound.hold(session_key(app_name, user_id, session_id))

    def ahold(
        self, app_name: str, user_id: str, session_id: str
    ) -> AbstractAsyncContextManager[AsyncSessionHandle]:
        """`hold` with heartbeats from an asyncio task (which a blocked event loop delays)."""
        return self.bound.ahold(session_key(app_name, user_id, session_id))

    def close(self) -> None:
        self.bound.close()

    # -- BaseSessionService ------------------------------------------------------------------
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        session_id = (session_id.strip() if session_id else None) or str(uuid.uuid4())
        return await self.bound.arun(self._create(app_name, user_id, state or {}, session_id))

    def _create(self, app_name: str, user_id: str, state: dict[str, Any], session_id: str) -> Flow[Session]:
        deltas = _session_util.extract_state_delta(state)
        now = time.time()
        context = {
            "app_name": app_name,
            "user_id": user_id,
            "id": session_id,
            "state": deltas["session"],
            "time": now,
        }
        try:
            yield from self.flows.ops.create(
                f"adk:{app_name}",
                user_id,
                context=context,
                session_id=session_key(app_name, user_id, session_id),
            )
        except ConflictError:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.") from None
        yield from self.flows.ops.pause(session_key(app_name, user_id, session_id))
        yield from self.flows.update_scoped(app_key(app_name), deltas["app"])
        yield from self.flows.update_scoped(user_key(app_name, user_id), deltas["user"])
        return (yield from self._session(app_name, user_id, session_id, deltas["session"], now, []))

    def _session(
        self,
        app_name: str,
        user_id: str,
        session_id: str,
        state: dict[str, Any],
        at: float,
        events: list[Event],
    ) -> Flow[Session]:
        """The session as ADK hands it out: app and user state merged in under their prefixes."""
        merged = dict(state)
        for key, value in (yield from self.flows.scoped(app_key(app_name))).items():
            merged[AdkState.APP_PREFIX + key] = value
        for key, value in (yield from self.flows.scoped(user_key(app_name, user_id))).items():
            merged[AdkState.USER_PREFIX + key] = value
        return Session(
            app_name=app_name,
            user_id=user_id,
            id=session_id,
            state=merged,
            events=events,
            last_update_time=at,
        )

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        session_id = session_id.strip() if session_id else session_id
        return await self.bound.aread(self._get(app_name, user_id, session_id, config))

    def _get(
        self, app_name: str, user_id: str, session_id: str, config: GetSessionConfig | None
    ) -> Flow[Session | None]:
        key = session_key(app_name, user_id, session_id)
        try:
            state, at, _ = yield from self.flows.current(key)
        except NotFound:
            return None
        limit = config.num_recent_events if config else None
        records = [] if limit == 0 else (yield from self.flows.events(key, limit))
        events = [Event.model_validate(r.data["event"]) for r in records]
        if config and config.after_timestamp is not None:  # as InMemorySessionService filters
            i = len(events) - 1
            while i >= 0 and events[i].timestamp >= config.after_timestamp:
                i -= 1
            events = events[i + 1 :]
        return (yield from self._session(app_name, user_id, session_id, state, at, events))

    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        return await self.bound.aread(self._list(app_name, user_id))

    def _list(self, app_name: str, user_id: str | None) -> Flow[ListSessionsResponse]:
        sessions: list[Session] = []
        cursor: str | None = None
        while True:
            page = yield from self.flows.ops.list(
                user_id=user_id, agent_type=f"adk:{app_name}", limit=PAGE, cursor=cursor
            )
            for found in page:
                state, at, _ = yield from self.flows.current(found.session_id)
                ctx = found.context
                sessions.append(
                    (yield from self._session(app_name, ctx["user_id"], ctx["id"], state, at, []))
                )
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        session_id = session_id.strip() if session_id else session_id
        await self.bound.arun(self.flows.delete(session_key(app_name, user_id, session_id)))

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        return await self.bound.aread(self.flows.scoped(user_key(app_name, user_id)))

    async def append_event(self, session: Session, event: Event) -> Event:
        if event.partial:
            return event
        key = session_key(session.app_name, session.user_id, session.id)
        try:
            stored_state, stored_at, _ = await self.bound.arun(self.flows.current(key))
        except NotFound:
            raise SessionNotFoundError(f"Session {session.id} not found.") from None
        if stored_at > session.last_update_time:
            raise StaleSessionError(
                "The last_update_time provided in the session object is earlier than the update_time"
                " in storage. Please check if it is a stale session."
            )
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        delta = event.actions.state_delta if event.actions else {}
        deltas = _session_util.extract_state_delta(delta)
        record = {
            "event": event.model_dump(mode="json", exclude_none=True),
            "time": event.timestamp,
            "state": {**stored_state, **deltas["session"]},
        }
        await self.bound.arun(self._append(session, key, record, deltas))
        session.last_update_time = event.timestamp
        return self._commit_event_to_session(session, event)

    def _append(
        self, session: Session, key: str, record: dict[str, Any], deltas: dict[str, dict[str, Any]]
    ) -> Flow[None]:
        yield from self.flows.append(key, EVENT, record)  # fenced first: a replaced worker changes nothing
        yield from self.flows.update_scoped(app_key(session.app_name), deltas["app"])
        yield from self.flows.update_scoped(user_key(session.app_name, session.user_id), deltas["user"])
