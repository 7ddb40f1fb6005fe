"""Whole-store routes: export, import, erase, purge, stats, and who the caller is."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Literal, cast

from fastapi import Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from tether.core.model import ENDED_STATES
from tether.core.wire import policies_to_json
from tether.server import models, shapes
from tether.server.requests import router as make_router
from tether.server.routes.common import CallerDep, RuntimeDep, problem_responses
from tether.server.settings import IMPORT_MAX_BYTES

router = make_router(prefix="/v1", tags=["admin"])
UserQuery = Annotated[str | None, Query(min_length=1, max_length=200, description="admin keys only")]
CHUNK = 64 * 1024
SPOOL = 8 * 1024 * 1024  # an export is kept in memory up to this size, then in a temporary file


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses=problem_responses(404, also={200: {"content": {"application/x-ndjson": {}}}}),
)
async def export(
    caller: CallerDep,
    rt: RuntimeDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    decrypt: Annotated[bool, Query(description="an encrypting server: write payloads in clear")] = False,
) -> StreamingResponse:
    """Sessions in the seed JSONL format, checkpoints inline (a user key: its own sessions)."""
    user = caller.user_filter(user_id)
    spool = tempfile.SpooledTemporaryFile(SPOOL, mode="w+", encoding="utf-8")  # noqa: SIM115 (streamed, closed below)
    await rt.manager.export(spool, user_id=user, decrypt=decrypt)
    spool.seek(0)

    def chunks() -> Iterator[str]:
        with spool:
            while chunk := spool.read(CHUNK):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/x-ndjson")


@router.post(
    "/import",
    response_model=models.Imported,
    responses=problem_responses(409),
    max_body_size=IMPORT_MAX_BYTES,
    openapi_extra={"requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
async def import_sessions(
    request: Request,
    caller: CallerDep,
    rt: RuntimeDep,
    on_conflict: Literal["error", "skip"] = "error",
) -> Response:
    """Admin: read seed-format JSONL from the body."""
    caller.require_admin()
    body = await request.body()
    # Lines as bytes, as the library reads a file, so a bad byte is pinned to its line as it is there.
    lines = cast(IO[str], io.BytesIO(body))
    count = await rt.manager.import_sessions(lines, on_conflict=on_conflict)
    rt.owners.clear()
    return shapes.json_response({"imported": count})


@router.post("/users/{user_id}/erase", response_model=models.Erased, responses=problem_responses())
async def erase_user(
    user_id: Annotated[str, Path(min_length=1, max_length=200)], caller: CallerDep, rt: RuntimeDep
) -> Response:
    """Admin: delete every session and checkpoint of one user."""
    caller.require_admin()
    erased = await rt.manager.erase_user(user_id)
    rt.owners.clear()
    return shapes.json_response({"erased": erased})


@router.post("/purge", response_model=models.Purged, responses=problem_responses())
async def purge(body: models.Purge, caller: CallerDep, rt: RuntimeDep) -> Response:
    """Admin: delete sessions in `states` (default: ended ones) that ended (or last beat) before
    `before`, or more than `older_than` seconds ago."""
    caller.require_admin()
    states = tuple(ENDED_STATES) if body.states is None else tuple(body.states)
    purged = await rt.manager.purge(body.cutoff(), states)
    rt.owners.clear()
    return shapes.json_response({"purged": purged})


@router.get("/stats", response_model=models.Stats, responses=problem_responses(404))
async def stats(
    caller: CallerDep,
    rt: RuntimeDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response:
    """Sessions counted by state x agent type x liveness (one aggregate query)."""
    now = await rt.now()
    counts = await rt.store.count_sessions(now, caller.user_filter(user_id))
    live = [c.oldest_heartbeat for c in counts if c.liveness is not None]
    body = {
        "counts": [shapes.count_json(c) for c in counts],
        "oldest_heartbeat": min(live, default=None),
        "at": now,
    }
    return shapes.json_response(body)


@router.get("/policies", response_model=models.PoliciesOut, responses=problem_responses())
async def policies(caller: CallerDep, rt: RuntimeDep) -> Response:
    """The liveness and retention policies this server runs with (`SessionManager.policies`):
    what timeouts new sessions get and what the supervisor does with them. Any key may read them."""
    return shapes.json_response(policies_to_json(rt.manager.policies))


@router.get("/me", response_model=models.Me, responses=problem_responses())
async def me(caller: CallerDep, rt: RuntimeDep) -> Response:
    body = {
        "user_id": caller.user_id,
        "admin": caller.admin,
        "key_id": caller.key_id,
        "open_mode": caller.key_id is None,
    }
    return shapes.json_response(body)
