"""/v1/sessions: create, read, list, edit, lifecycle, heartbeats, takeover and checkpoints."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path, Query, Request, Response

from tether.core.errors import ConflictError, NotFound, TetherError, ValidationError
from tether.core.model import Liveness, Session, State
from tether.core.validation import MAX_COUNTER
from tether.server import models, shapes
from tether.server.problems import Forbidden, Problem, from_error
from tether.server.requests import router as make_router
from tether.server.routes.common import CallerDep, IfMatch, RuntimeDep, problem_responses
from tether.server.runtime import Runtime
from tether.stores.base import Beat

MAX_LIMIT = 10_000  # the library's own bound (tether.core.validation.check_limit)

router = make_router(prefix="/v1", tags=["sessions"])

SessionId = Annotated[str, Path(min_length=1, max_length=200)]
LIFECYCLE = problem_responses(404, 409, 412)


async def session_response(rt: Runtime, session: Session, status: int = 200, **headers: str) -> Response:
    rt.owners.remember(session.session_id, session.user_id, session.agent_type)
    body = shapes.session_json(session, await rt.now())
    return shapes.json_response(body, status, {**shapes.etag(session), **headers})


@router.post(
    "/sessions",
    status_code=201,
    response_model=models.SessionOut,
    responses=problem_responses(409, also={200: {"model": models.SessionOut, "description": "it existed"}}),
)
async def create_session(body: models.CreateSession, caller: CallerDep, rt: RuntimeDep) -> Response:
    if body.user_id is not None and not caller.admin and body.user_id != caller.user_id:
        raise Forbidden("a user key creates sessions for its own user only")
    user_id = body.user_id or caller.user_id
    if user_id is None:
        raise ValidationError("user_id", "is required (no key names the user)")
    ops = rt.operations(body.worker_id)
    flow = ops.create(
        body.agent_type,
        user_id,
        context=body.context,
        metadata=body.metadata,
        session_id=body.session_id,
        parent_session_id=body.parent_session_id,
    )
    try:
        session = await rt.manager.runner(flow)
    except ConflictError as exc:
        existing = await _existing(rt, caller, body) if body.if_exists == "return_existing" else None
        if existing is not None:
            return await session_response(rt, existing)
        raise Problem(409, "already_exists", str(exc), session_id=exc.session_id) from None
    location = f"/v1/sessions/{quote(session.session_id, safe='')}"
    return await session_response(rt, session, 201, Location=location)


async def _existing(rt: Runtime, caller: Any, body: models.CreateSession) -> Session | None:
    try:
        found = await rt.manager.get(body.session_id or "")
    except NotFound:
        return None
    return found if caller.owns(found) and found.agent_type == body.agent_type else None


@router.get("/sessions", response_model=models.SessionList, responses=problem_responses(404))
async def list_sessions(
    caller: CallerDep,
    rt: RuntimeDep,
    request: Request,
    agent_type: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    state: State | None = None,
    parent_session_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    user_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    liveness: Liveness | None = None,
    no_heartbeat_for: Annotated[float | None, Query(gt=0, le=3_162_240_000)] = None,
    paused_for: Annotated[float | None, Query(gt=0, le=3_162_240_000)] = None,
    include: Annotated[str | None, Query(pattern="^context$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    user = caller.user_filter(user_id)
    m = rt.manager
    if liveness is not None or no_heartbeat_for is not None or paused_for is not None:
        if liveness is Liveness.HEALTHY:
            raise ValidationError("liveness", "only suspect or dead select stale sessions")
        if state is not None or parent_session_id is not None:
            raise ValidationError("liveness", "combines with agent_type and user_id only")
        page = await m.stale(
            no_heartbeat_for=no_heartbeat_for,
            paused_for=paused_for,
            liveness=liveness,
            agent_type=agent_type,
            user_id=user,
            limit=limit,
            cursor=cursor,
        )
    else:
        page = await m.list(
            user_id=user,
            agent_type=agent_type,
            state=state,
            parent_session_id=parent_session_id,
            limit=limit,
            cursor=cursor,
        )
    for s in page.items:
        rt.owners.remember(s.session_id, s.user_id, s.agent_type)
    headers = {}
    if page.next_cursor is not None:
        headers["Link"] = f'<{request.url.include_query_params(cursor=page.next_cursor)}>; rel="next"'
    return shapes.json_response(shapes.page_json(page, await rt.now(), include is not None), 200, headers)


@router.get("/sessions/{session_id}", response_model=models.SessionOut, responses=problem_responses(404))
async def get_session(session_id: SessionId, caller: CallerDep, rt: RuntimeDep) -> Response:
    return await session_response(rt, caller.visible(await rt.manager.get(session_id)))


@router.patch("/sessions/{session_id}", response_model=models.SessionOut, responses=LIFECYCLE)
async def update_session(
    session_id: SessionId, body: models.UpdateSession, caller: CallerDep, rt: RuntimeDep, version: IfMatch
) -> Response:
    await rt.check(caller, session_id)
    session = await rt.manager.update(
        session_id, context=body.context, metadata=body.metadata, epoch=body.epoch, expected_version=version
    )
    return await session_response(rt, session)


@router.delete("/sessions/{session_id}", status_code=204, responses=problem_responses(404))
async def delete_session(session_id: SessionId, caller: CallerDep, rt: RuntimeDep) -> Response:
    await rt.check(caller, session_id)
    await rt.manager.delete(session_id)
    rt.owners.forget(session_id)
    return Response(status_code=204)


def _fenced(action: str, summary: str) -> None:
    """pause and resume: the same route, but for the manager method it calls."""

    async def route(
        session_id: SessionId, body: models.Fenced, caller: CallerDep, rt: RuntimeDep, version: IfMatch
    ) -> Response:
        await rt.check(caller, session_id)
        call = getattr(rt.manager, action)
        return await session_response(rt, await call(session_id, epoch=body.epoch, expected_version=version))

    path = f"/sessions/{{session_id}}/{action}"
    router.post(path, response_model=models.SessionOut, responses=LIFECYCLE, name=action, summary=summary)(
        route
    )


_fenced("pause", "Pause an active session (heartbeats still accepted, checkpoints not)")
_fenced("resume", "Resume a paused session with a fresh lease")


@router.post("/sessions/{session_id}/complete", response_model=models.SessionOut, responses=LIFECYCLE)
async def complete(
    session_id: SessionId, body: models.Complete, caller: CallerDep, rt: RuntimeDep, version: IfMatch
) -> Response:
    await rt.check(caller, session_id)
    session = await rt.manager.complete(session_id, body.result, epoch=body.epoch, expected_version=version)
    return await session_response(rt, session)


@router.post("/sessions/{session_id}/fail", response_model=models.SessionOut, responses=LIFECYCLE)
async def fail(
    session_id: SessionId, body: models.Fail, caller: CallerDep, rt: RuntimeDep, version: IfMatch
) -> Response:
    await rt.check(caller, session_id)
    session = await rt.manager.fail(
        session_id, body.error, body.details, final=body.final, epoch=body.epoch, expected_version=version
    )
    return await session_response(rt, session)


@router.post("/sessions/{session_id}/heartbeat", status_code=204, responses=problem_responses(404, 409))
async def heartbeat(
    session_id: SessionId, body: models.Heartbeat, caller: CallerDep, rt: RuntimeDep
) -> Response:
    await rt.check(caller, session_id)
    try:
        await rt.manager.heartbeat(
            session_id, epoch=body.epoch, phase=body.phase, expect_silence=body.expect_silence
        )
    except TetherError:
        rt.metrics.heartbeats.labels("rejected").inc()
        raise
    rt.metrics.heartbeats.labels("applied").inc()
    return Response(status_code=204)


@router.post("/heartbeats", response_model=models.HeartbeatResults, responses=problem_responses())
async def heartbeats(
    body: models.Heartbeats, caller: CallerDep, rt: RuntimeDep, request: Request
) -> Response:
    """One durable batch; `results[i]` is null when beat i was applied, else its problem."""
    sent = body.beats
    results: list[TetherError | None] = [None] * len(sent)
    allowed = list(range(len(sent)))
    if not caller.admin:  # an admin sees every session: the store answers not_found for missing ones
        allowed = []
        for i, beat in enumerate(sent):
            try:
                await rt.check(caller, beat["session_id"])
            except TetherError as exc:
                results[i] = exc
            else:
                allowed.append(i)
    beats = [
        Beat(b["session_id"], b.get("epoch"), b.get("phase"), b.get("expect_silence"))
        for b in (sent[i] for i in allowed)
    ]
    try:
        outcomes = await rt.manager.heartbeats(beats)
    except ValidationError:  # one bad beat refuses the batch: find which, and apply the others
        outcomes = [await _single(rt, beat) for beat in beats]
    for i, outcome in zip(allowed, outcomes, strict=True):
        results[i] = outcome
    for r in results:
        if r is not None:
            rt.metrics.rejected(r)
    refused = sum(r is not None for r in results)
    rt.metrics.heartbeats.labels("applied").inc(len(results) - refused)
    rt.metrics.heartbeats.labels("rejected").inc(refused)
    path, rid = request.url.path, getattr(request.state, "request_id", None)
    answers = [
        None if r is None else from_error(r, "body", f"/beats/{i}").body(path, rid)
        for i, r in enumerate(results)
    ]
    return shapes.json_response({"results": answers})


async def _single(rt: Runtime, beat: Beat) -> TetherError | None:
    try:
        return (await rt.manager.heartbeats([beat]))[0]
    except ValidationError as exc:
        return exc


@router.post("/sessions/{session_id}/claim", response_model=models.SessionOut, responses=LIFECYCLE)
async def claim(session_id: SessionId, body: models.Claim, caller: CallerDep, rt: RuntimeDep) -> Response:
    await rt.check(caller, session_id)
    session = await rt.manager.claim(session_id, body.worker_id)
    rt.metrics.takeovers.labels("claim").inc()
    return await session_response(rt, session)


@router.post(
    "/claims",
    response_model=models.SessionOut,
    responses=problem_responses(409, also={204: {"description": "nothing to claim"}}),
)
async def claim_next(body: models.ClaimNext, caller: CallerDep, rt: RuntimeDep) -> Response:
    """The longest-waiting claimable session of these types (a user key: of its own user)."""
    if caller.admin:
        session = await rt.manager.claim_next(body.agent_types, body.worker_id)
    else:
        session = await _claim_own(rt, caller.user_id or "", body)
    if session is None:
        return Response(status_code=204)
    rt.metrics.takeovers.labels("claim_next").inc()
    return await session_response(rt, session)


@router.post("/sessions/{session_id}/time_out", response_model=models.SessionOut, responses=LIFECYCLE)
async def time_out(
    session_id: SessionId, body: models.TimeOut, caller: CallerDep, rt: RuntimeDep, version: IfMatch
) -> Response:
    """The supervisor's verdict, on demand: fail an active session whose lease expired, per its
    policy (recoverable, or final past max_recoveries); 409 not_claimable while the lease lives.
    Not an owner write (the owner is gone), so no epoch; If-Match pins the version looked at."""
    await rt.check(caller, session_id)
    session = await rt.manager.runner(rt.manager.ops.time_out_at(session_id, version))
    return await session_response(rt, session)


OWN_CANDIDATES = 500


async def _claim_own(rt: Runtime, user_id: str, body: models.ClaimNext) -> Session | None:
    types = None if body.agent_types is None else frozenset(body.agent_types)
    for candidate in await rt.store.claimable(types, OWN_CANDIDATES):
        if candidate.user_id != user_id:
            continue
        try:
            return await rt.manager.claim(candidate.session_id, body.worker_id)
        except (ConflictError, NotFound):  # another worker won it, or it is gone
            continue
    return None


# -- checkpoints ---------------------------------------------------------------------------------
@router.get(
    "/sessions/{session_id}/checkpoints",
    response_model=models.CheckpointList,
    responses=problem_responses(404),
    tags=["checkpoints"],
)
async def list_checkpoints(
    session_id: SessionId,
    caller: CallerDep,
    rt: RuntimeDep,
    after: Annotated[int, Query(ge=0, le=MAX_COUNTER)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response:
    await rt.check(caller, session_id)
    found = await rt.manager.checkpoints(session_id, after_seq=after, limit=limit, name=name)
    next_cursor = str(found[-1].seq) if len(found) == limit else None
    return shapes.json_response(
        {"items": [shapes.checkpoint_json(c) for c in found], "next_cursor": next_cursor}
    )


@router.post(
    "/sessions/{session_id}/checkpoints",
    status_code=201,
    response_model=models.CheckpointOut,
    responses=problem_responses(404, 409),
    tags=["checkpoints"],
)
async def append_checkpoint(
    session_id: SessionId, body: models.NewCheckpoint, caller: CallerDep, rt: RuntimeDep
) -> Response:
    await rt.check(caller, session_id)
    cp = await rt.manager.checkpoint(session_id, body.name, body.data, epoch=body.epoch)
    location = f"/v1/sessions/{quote(session_id, safe='')}/checkpoints/{cp.seq}"
    return shapes.json_response(shapes.checkpoint_json(cp), 201, {"Location": location})


@router.get(
    "/sessions/{session_id}/checkpoints/latest",
    response_model=models.CheckpointOut,
    responses=problem_responses(404, also={204: {"description": "no such checkpoint yet"}}),
    tags=["checkpoints"],
)
async def latest_checkpoint(
    session_id: SessionId,
    caller: CallerDep,
    rt: RuntimeDep,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response:
    await rt.check(caller, session_id)
    cp = await rt.manager.last_checkpoint(session_id, name)
    return Response(status_code=204) if cp is None else shapes.json_response(shapes.checkpoint_json(cp))


@router.get(
    "/sessions/{session_id}/checkpoints/{seq}",
    response_model=models.CheckpointOut,
    responses=problem_responses(404),
    tags=["checkpoints"],
)
async def get_checkpoint(
    session_id: SessionId, seq: Annotated[int, Path(ge=1, le=MAX_COUNTER)], caller: CallerDep, rt: RuntimeDep
) -> Response:
    await rt.check(caller, session_id)
    found = await rt.manager.checkpoints(session_id, after_seq=seq - 1, limit=1)
    if not found or found[0].seq != seq:
        raise Problem(
            404, "not_found", f"session {session_id!r} has no checkpoint {seq}", session_id=session_id
        )
    return shapes.json_response(shapes.checkpoint_json(found[0]))
