"""The operator's dashboard at `/` of `tether serve`: overview, sessions list, session detail, actions.

`install(app)` adds the pages, their static files and the cookie middleware to the server's app. The
server keeps every rule about keys and users: the pages ask its `Authenticator` who is looking, and
the page scripts call the same `/v1` API as any client, authenticated by the dashboard's cookie.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tether.server.dashboard.access import CookieCredentials
from tether.server.dashboard.activity import Activity
from tether.server.dashboard.pages import LoginRequired, Pages, login_redirect

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Serve the dashboard from `app` (call after the server's own routes and middleware)."""
    activity = Activity()
    app.include_router(Pages(activity).router)
    app.mount("/ui/static", StaticFiles(packages=[("tether.server.dashboard", "static")]), name="dashboard")
    app.add_exception_handler(LoginRequired, login_redirect)
    app.add_middleware(CookieCredentials)
    serve = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        """Count events for the charts from the moment the server's runtime has started."""
        async with serve(app) as state:
            activity.attach(app.state.tether.manager)
            try:
                yield state
            finally:
                activity.detach()

    app.router.lifespan_context = lifespan
