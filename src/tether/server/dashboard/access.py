"""Who may look: the API key travels in an HttpOnly, SameSite=Strict cookie, never in a URL.

The server's own key check stays the only one. `CookieCredentials` hands the cookie on as a bearer
token when a request brings no key of its own, so the pages and their scripts (fetch, and
`EventSource`, which cannot send headers) are authenticated like any API client; and it refuses an
unsafe request that relies on the cookie unless it comes from this origin (cross-site request forgery).
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.server.problems import Problem, respond

COOKIE = "tether_key"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEY_HEADERS = frozenset({b"authorization", b"x-api-key"})
CROSS_SITE = "a write with the dashboard's cookie must come from its own pages"


def cookie_key(headers: dict[bytes, bytes]) -> str | None:
    raw = headers.get(b"cookie")
    if raw is None:
        return None
    morsel = SimpleCookie(raw.decode("latin-1")).get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def same_origin(headers: dict[bytes, bytes]) -> bool:
    """The request's Origin (or Referer) names the host it was sent to."""
    host = headers.get(b"host", b"").decode("latin-1")
    source = headers.get(b"origin") or headers.get(b"referer")
    if not host or source is None:
        return False
    return urlsplit(source.decode("latin-1")).netloc == host


class CookieCredentials:
    """ASGI middleware: the cookie as a bearer token, and an origin check on writes that rely on it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key = None if KEY_HEADERS & headers.keys() else cookie_key(headers)
        dashboard_form = scope["path"].startswith("/ui/")
        unsafe = scope["method"] not in SAFE_METHODS
        if unsafe and (key is not None or dashboard_form) and not same_origin(headers):
            problem = Problem(403, "forbidden", CROSS_SITE)
            await respond(Request(scope), problem)(scope, receive, send)
            return
        if key is not None:
            bearer = (b"authorization", f"Bearer {key}".encode("latin-1"))
            scope = {**scope, "headers": [*scope["headers"], bearer]}
        await self.app(scope, receive, send)
