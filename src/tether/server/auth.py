"""Who is calling: the API key decides the user, never the URL or the body.

Keys live hashed in the store (`tether.core.keys`), so every server process on one store shares them
and a revocation takes effect on the next request. While the store holds no key at all, a server
bound to loopback runs open: every caller is an admin (the server says so when it starts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import Request

from tether.core import keys
from tether.core.errors import AuthError, NotFound
from tether.core.model import Session
from tether.server.problems import Forbidden
from tether.stores import AsyncStore

OPEN_RECHECK = 1.0  # seconds


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str | None  # None in open mode
    admin: bool
    key_id: str | None = None

    def owns(self, session: Session) -> bool:
        return self.admin or session.user_id == self.user_id

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden("this needs an admin key")

    def user_filter(self, user_id: str | None) -> str | None:
        """The user a listing is restricted to. A user key naming someone else sees nothing, the
        same answer as for a user that does not exist."""
        if self.admin:
            return user_id
        if user_id is not None and user_id != self.user_id:
            raise NotFound(user_id)
        return self.user_id

    def visible(self, session: Session) -> Session:
        """The session if this caller may see it; another user's answers like a missing one."""
        if not self.owns(session):
            raise NotFound(session.session_id)
        return session


OPEN = Caller(None, True)


class Authenticator:
    def __init__(self, store: AsyncStore, loopback: bool) -> None:
        self.store = store
        self.loopback = loopback
        self._keyed = False  # once a key exists, keys are required for good
        self._looked = -OPEN_RECHECK

    async def open_mode(self) -> bool:
        """No key stored yet and bound to loopback. While open, the store is asked again at most
        every OPEN_RECHECK seconds, so a first key (made by `tether keys create`) closes it."""
        if not self._keyed and time.monotonic() - self._looked >= OPEN_RECHECK:
            self._keyed = bool(await self.store.list_api_keys())
            self._looked = time.monotonic()
        return not self._keyed and self.loopback

    async def caller(self, request: Request) -> Caller:
        text = presented_key(request)
        if text is None:
            if await self.open_mode():
                return OPEN
            raise AuthError("an API key is required: Authorization: Bearer tth_…")
        return await self.check(text)

    async def check(self, text: str) -> Caller:
        """The caller a key stands for (the dashboard's login form has a key, not a header)."""
        parts = keys.split(text)
        key = None if parts is None else await self.store.get_api_key(parts[0])
        if parts is None or key is None or not keys.matches(key, parts[1]):
            raise AuthError("unknown or revoked API key")
        self._keyed = True
        return Caller(key.user_id, key.admin, key.key_id)


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise AuthError("the Authorization header must be `Bearer <key>`")
    return request.headers.get("x-api-key")


async def caller(request: Request) -> Caller:
    """The FastAPI dependency every /v1 route takes."""
    authenticator: Authenticator = request.app.state.tether.auth
    found = await authenticator.caller(request)
    request.state.caller = found
    return found
