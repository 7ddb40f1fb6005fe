"""The dashboard's pages: server-rendered HTML, one route per page, each read scoped to the viewer.

The scripts in static/ make them live by re-reading a page when an event concerns it; the markup
here is complete without them.
"""

from __future__ import annotations

from collections import Counter
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tether.core.errors import AuthError, NotFound, ValidationError
from tether.core.model import SessionCount, State
from tether.server.dashboard import format
from tether.server.dashboard.access import COOKIE
from tether.server.dashboard.activity import Activity
from tether.server.dashboard.views import PAGE_SIZES, Fleet, ListFilters, is_lifecycle
from tether.server.runtime import Runtime

COOKIE_MAX_AGE = 12 * 3600  # seconds; the operator logs in again after a working day


class LoginRequired(Exception):
    """Raised by a page without a valid key; answered with a redirect to the login page."""

    def __init__(self, path: str) -> None:
        self.path = path


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(files("tether.server.dashboard") / "templates"))
    found.env.filters.update(format.FILTERS)
    found.env.globals.update(states=list(State), page_sizes=PAGE_SIZES)
    return found


class Pages:
    def __init__(self, activity: Activity) -> None:
        self.activity = activity
        self.templates = templates()
        self.router = APIRouter(include_in_schema=False)
        add = self.router.add_api_route
        add("/", self.overview, methods=["GET"], response_class=HTMLResponse)
        add("/sessions", self.sessions, methods=["GET"], response_class=HTMLResponse)
        add("/sessions/{session_id}", self.detail, methods=["GET"], response_class=HTMLResponse)
        add("/login", self.login_page, methods=["GET"], response_class=HTMLResponse)
        add("/ui/login", self.login, methods=["POST"], response_class=HTMLResponse)
        add("/ui/logout", self.logout, methods=["POST"])

    async def fleet(self, request: Request) -> Fleet:
        """The reads of whoever the request's key (from the cookie) belongs to; LoginRequired if none."""
        runtime: Runtime = request.app.state.tether
        try:
            caller = await runtime.auth.caller(request)
        except AuthError:
            raise LoginRequired(str(request.url.replace(scheme="", netloc=""))) from None
        return Fleet(runtime, caller)

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    # -- pages -------------------------------------------------------------------------------
    async def overview(self, request: Request) -> HTMLResponse:
        fleet = await self.fleet(request)
        now = await fleet.now()
        counts = await fleet.counts(now)
        return self.render(
            request,
            "overview.html",
            viewer=fleet.caller,
            now=now,
            table=_count_table(counts),
            totals=_totals(counts),
            nearest=await fleet.nearest_expiry(now),
            charts=await self.activity.series(now),
        )

    async def sessions(self, request: Request) -> HTMLResponse:
        fleet = await self.fleet(request)
        now = await fleet.now()
        try:
            filters = ListFilters.from_query(request.query_params, fleet.caller)
            page = await fleet.page(filters, now)
        except ValidationError as exc:
            context = {"viewer": fleet.caller, "now": now, "filters": ListFilters(), "page": None}
            return self.render(request, "sessions.html", 422, error=exc, **context)
        return self.render(
            request, "sessions.html", viewer=fleet.caller, now=now, filters=filters, page=page, error=None
        )

    async def detail(self, request: Request, session_id: str) -> HTMLResponse:
        fleet = await self.fleet(request)
        try:
            session = await fleet.session(session_id)
            before = _before(request.query_params.get("before"))
        except (NotFound, ValidationError) as exc:
            status = 404 if isinstance(exc, NotFound) else 422
            return self.render(request, "missing.html", status, viewer=fleet.caller, error=exc)
        now = await fleet.now()
        return self.render(
            request,
            "detail.html",
            viewer=fleet.caller,
            now=now,
            s=session,
            checkpoints=await fleet.checkpoints(session, before),
            is_lifecycle=is_lifecycle,
            ancestors=await fleet.ancestors(session),
            children=await fleet.children(session),
        )

    # -- logging in and out ------------------------------------------------------------------
    async def login_page(self, request: Request) -> Response:
        if await request.app.state.tether.auth.open_mode():
            return RedirectResponse("/", 303)
        return self.render(request, "login.html", next=_local(request.query_params.get("next")), error=None)

    async def login(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        key = (form.get("key") or [""])[0].strip()
        target = _local((form.get("next") or [""])[0])
        try:
            await request.app.state.tether.auth.check(key)
        except AuthError:
            error = "That key is not valid (unknown, revoked or mistyped)."
            return self.render(request, "login.html", 401, next=target, error=error)
        response = RedirectResponse(target, 303)
        response.set_cookie(
            COOKIE,
            key,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, httponly=True, samesite="strict")
        return response


def login_redirect(request: Request, exc: Exception) -> Response:
    path = exc.path if isinstance(exc, LoginRequired) else "/"
    return RedirectResponse(f"/login?next={quote(path, safe='')}", 303)


def _local(target: str | None) -> str:
    """Only a path on this site is a place to return to after login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _before(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise ValidationError("before", f"must be a checkpoint seq, got {raw!r}")
    return int(raw)


def _count_table(counts: list[SessionCount]) -> list[dict[str, Any]]:
    """One row per agent type: sessions per state, and live ones per liveness."""
    rows: dict[str, Counter[str]] = {}
    for c in counts:
        row = rows.setdefault(c.agent_type, Counter())
        row[c.state.value] += c.count
        if c.liveness is not None:
            row[c.liveness.value] += c.count
    return [{"agent_type": agent_type, **rows[agent_type]} for agent_type in sorted(rows)]


def _totals(counts: list[SessionCount]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for c in counts:
        totals[c.state.value] += c.count
        totals["all"] += c.count
        if c.liveness is not None:
            totals[c.liveness.value] += c.count
    return totals
