"""Probes and metrics: /healthz (the process runs), /readyz (the store answers), /metrics."""

from __future__ import annotations

from fastapi import Request, Response

from tether.core.errors import TetherError
from tether.server import models, shapes
from tether.server.auth import caller
from tether.server.problems import Problem
from tether.server.requests import router as make_router
from tether.server.routes.common import RuntimeDep, problem_responses

router = make_router(tags=["health"])
PROBE_KEY = "000000000000"  # no key has this id: reading it is a cheap round trip to the store


@router.get("/healthz", response_model=models.Status)
async def healthz() -> Response:
    return shapes.json_response({"status": "ok"})


@router.get("/readyz", response_model=models.Status, responses=problem_responses())
async def readyz(rt: RuntimeDep) -> Response:
    try:
        await rt.store.get_api_key(PROBE_KEY)
    except TetherError as exc:
        raise Problem(503, "store_unavailable", f"the store does not answer: {exc}") from exc
    return shapes.json_response({"status": "ready"})


@router.get(
    "/metrics",
    response_class=Response,
    responses=problem_responses(also={200: {"content": {"text/plain": {}}}}),
)
async def metrics(request: Request, rt: RuntimeDep) -> Response:
    """Prometheus text format; needs an admin key unless the server is bound to loopback."""
    if not rt.settings.loopback:
        (await caller(request)).require_admin()
    await rt.refresh_counts()
    rt.metrics.subscribers.set(len(rt.hub.subscriptions))
    return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
