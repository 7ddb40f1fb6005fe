"""Server-Sent Events: every visible change (`/v1/events`), or one session's (`…/{id}/events`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Header, Path, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from tether.core.errors import NotFound, TetherError
from tether.core.model import Session
from tether.server import shapes
from tether.server.hub import Frame, Subscription, kinds_of
from tether.server.requests import router as make_router
from tether.server.routes.common import CallerDep, RuntimeDep, problem_responses
from tether.server.runtime import Runtime

router = make_router(prefix="/v1", tags=["events"])
RETRY_MS = 3000
ENDING = frozenset({"completed", "failed", "deleted"})
STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "an SSE stream"}
}


def cursor_of(last_event_id: str | None, since: int | None) -> int | None:
    """The cursor to resume after; one that is no number can only be answered with a reset."""
    if since is not None:
        return since
    if last_event_id is None:
        return None
    text = last_event_id.strip()
    return int(text) if text.isdigit() and len(text) < 19 else -1


def frame_event(frame: Frame) -> bytes:
    return frame.wire


def reset_event(rt: Runtime, reason: str) -> ServerSentEvent:
    data = shapes.dumps({"reason": reason, "id": rt.hub.last_id}).decode()
    return ServerSentEvent(data=data, event="reset", id=str(rt.hub.last_id), retry=RETRY_MS)


async def frames(rt: Runtime, subscription: Subscription) -> AsyncIterator[Frame | None]:
    """Live frames of a subscription; None where it fell too far behind (the caller sends a reset)."""
    while True:
        if subscription.overflowed and subscription.queue.empty():
            subscription.overflowed = False
            yield None
            continue
        yield await subscription.queue.get()


def sse(stream: AsyncIterator[ServerSentEvent | bytes], rt: Runtime) -> EventSourceResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return EventSourceResponse(stream, ping=rt.settings.ping_seconds, headers=headers)


@router.get("/events", response_class=EventSourceResponse, responses=problem_responses(404, also=STREAM))
async def events(
    caller: CallerDep,
    rt: RuntimeDep,
    session_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    agent_type: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    kinds: Annotated[str | None, Query(max_length=1000, description="comma-separated")] = None,
    user_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    since: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """Every change the key may see, as SSE frames; resume with `Last-Event-ID`."""
    subscription = Subscription(caller.user_filter(user_id), session_id, agent_type, kinds_of(kinds))
    replay = rt.hub.subscribe(subscription, cursor_of(last_event_id, since))

    async def stream() -> AsyncIterator[ServerSentEvent | bytes]:
        try:
            if replay is None:
                yield reset_event(rt, "cursor_expired")
            else:
                yield ServerSentEvent(comment="tether events", retry=RETRY_MS)
                for frame in replay:
                    yield frame_event(frame)
            async for live in frames(rt, subscription):
                yield reset_event(rt, "slow_consumer") if live is None else frame_event(live)
        finally:
            rt.hub.unsubscribe(subscription)

    return sse(stream(), rt)


@router.get(
    "/sessions/{session_id}/events",
    response_class=EventSourceResponse,
    responses=problem_responses(404, also=STREAM),
)
async def session_events(
    session_id: Annotated[str, Path(min_length=1, max_length=200)], caller: CallerDep, rt: RuntimeDep
) -> EventSourceResponse:
    """`snapshot` (the session), then its changes, then `end` (the final session) once it ended."""
    subscription = Subscription(caller.user_id if not caller.admin else None, session_id)
    rt.hub.subscribe(subscription, None)
    try:
        snapshot = caller.visible(await rt.manager.get(session_id))
    except TetherError:
        rt.hub.unsubscribe(subscription)
        raise
    at = rt.hub.last_id

    async def session_frame(kind: str, session: Session) -> ServerSentEvent:
        data = shapes.dumps(shapes.session_json(session, await rt.now())).decode()
        return ServerSentEvent(data=data, event=kind, id=str(at), retry=RETRY_MS)

    async def stream() -> AsyncIterator[ServerSentEvent | bytes]:
        nonlocal at
        try:
            yield await session_frame("snapshot", snapshot)
            if snapshot.is_ended:
                yield await session_frame("end", snapshot)
                return
            async for live in frames(rt, subscription):
                if live is None:
                    yield reset_event(rt, "slow_consumer")
                    continue
                at = live.id
                yield frame_event(live)
                if live.kind in ENDING:
                    final = await _final(rt, session_id, snapshot)
                    if final is not None and (final.is_ended or live.kind == "deleted"):
                        yield await session_frame("end", final)
                        return
        finally:
            rt.hub.unsubscribe(subscription)

    return sse(stream(), rt)


async def _final(rt: Runtime, session_id: str, snapshot: Session) -> Any:
    try:
        return await rt.manager.get(session_id)
    except NotFound:
        return snapshot  # deleted: the last state it was seen in
