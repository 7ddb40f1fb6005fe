"""Session data routes: fork a session from a checkpoint, and the retention policies' pass."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Response

from tether.core.wire import retention_to_json
from tether.server import models, shapes
from tether.server.problems import Forbidden
from tether.server.requests import router as make_router
from tether.server.routes.common import CallerDep, RuntimeDep, problem_responses
from tether.server.routes.sessions import SessionId, session_response

router = make_router(prefix="/v1", tags=["data"])


@router.post(
    "/sessions/{session_id}/fork",
    status_code=201,
    response_model=models.SessionOut,
    responses=problem_responses(404),
)
async def fork(session_id: SessionId, body: models.Fork, caller: CallerDep, rt: RuntimeDep) -> Response:
    """A new active session whose checkpoints are this one's up to `at_seq` (default: its last);
    the source is not changed. A user key forks its own sessions, for its own user."""
    await rt.check(caller, session_id)
    if body.user_id is not None and not caller.admin and body.user_id != caller.user_id:
        raise Forbidden("a user key forks sessions for its own user only")
    ops = rt.operations(body.worker_id)
    flow = ops.fork(session_id, body.at_seq, agent_type=body.agent_type, user_id=body.user_id)
    forked = await rt.manager.runner(flow)
    location = f"/v1/sessions/{quote(forked.session_id, safe='')}"
    return await session_response(rt, forked, 201, Location=location)


@router.get("/retention", response_model=models.RetentionOut, responses=problem_responses())
async def retention_dry_run(caller: CallerDep, rt: RuntimeDep) -> Response:
    """Admin: what the retention policies would remove now, rule by rule (nothing is removed)."""
    caller.require_admin()
    return shapes.json_response(retention_to_json(await rt.manager.enforce_retention(dry_run=True)))


@router.post("/retention", response_model=models.RetentionOut, responses=problem_responses())
async def retention(caller: CallerDep, rt: RuntimeDep) -> Response:
    """Admin: apply the retention policies once (the supervisor also does, every minute)."""
    caller.require_admin()
    report = await rt.manager.enforce_retention()
    rt.owners.clear()
    return shapes.json_response(retention_to_json(report))
