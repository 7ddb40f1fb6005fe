"""The FastAPI application of `tether serve`: `create_app(settings)`.

uvicorn --factory tether.server.app:app_from_env    # what `tether serve --workers N` runs
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether import __version__
from tether.front.aio import AsyncSessionManager
from tether.server import dashboard, problems
from tether.server.metrics import Metrics
from tether.server.problems import MEDIA_TYPE, Problem
from tether.server.runtime import Runtime
from tether.server.settings import IMPORT_MAX_BYTES, MAX_BODY_BYTES, ServerSettings
from tether.server.shapes import dumps


class Observe:
    """Outermost: a request id on every response, request counts and latency per templated route,
    and a problem+json 413 for a declared Content-Length over the limit (Starlette's own body limit,
    which still guards bodies without one, would answer that in plain text)."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], Metrics | None]) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if 0 < len(given) <= 200 and given.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        started = time.perf_counter()
        limit = IMPORT_MAX_BYTES if scope["path"] == IMPORT_PATH else MAX_BODY_BYTES
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            problem = Problem(
                413, "payload_too_large", f"the body is over the limit of {limit} bytes", limit=limit
            )
            body = dumps(problem.body(scope["path"], request_id))
            response = Response(body, 413, media_type=MEDIA_TYPE, headers={"Connection": "close"})
            await response(scope, receive, send_with_id)
            return
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics = self.metrics()
            route = scope.get("route")
            path = route.path if isinstance(route, APIRoute) else "unmatched"
            if metrics is not None:
                metrics.requests.labels(scope["method"], path, str(status)).inc()
                metrics.latency.labels(scope["method"], path).observe(time.perf_counter() - started)


IMPORT_PATH = "/v1/import"


def create_app(settings: ServerSettings, manager: AsyncSessionManager | None = None) -> FastAPI:
    """The app; `manager` (default: one on `settings.store_url`) is opened when it starts."""
    from tether.server.routes import admin, data, events, health, sessions

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.tether = await Runtime.start(settings, manager)
        try:
            yield
        finally:
            await app.state.tether.close()

    app = FastAPI(
        title="Tether",
        version=__version__,
        summary="Durable, supervised sessions for AI agents: heartbeats, checkpoints, leases, takeover.",
        lifespan=lifespan,
    )
    problems.install(app)
    document = app.openapi

    def openapi() -> dict[str, Any]:
        return problems.document_media_type(document())

    app.openapi = openapi  # type: ignore[method-assign]
    for module in (sessions, data, admin, events, health):
        app.include_router(module.router)
    dashboard.install(app)
    app.add_middleware(
        Observe,
        metrics=lambda: getattr(getattr(app.state, "tether", None), "metrics", None),
    )
    return app


def app_from_env() -> FastAPI:
    """The app as uvicorn's worker processes build it (settings from TETHER_* variables)."""
    return create_app(ServerSettings.from_env())
