"""Request bodies: parsed as the library parses JSON (tether.core.codec), with a nesting limit, on every
route of the API."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from tether.core import codec
from tether.server.settings import MAX_BODY_BYTES

CONTAINERS = (dict, list)  # what orjson decodes JSON objects and arrays to, exactly


def too_deep(value: Any, limit: int) -> bool:
    """True if JSON containers nest deeper than `limit` levels (checked level by level, without
    recursion: a batch of 1,000 beats is three levels of 1,002 containers)."""
    level, depth = [value], 1
    while level:
        if depth > limit:
            return True
        below: list[Any] = []
        for item in level:
            below += [c for c in (item.values() if type(item) is dict else item) if type(c) in CONTAINERS]
        level, depth = below, depth + 1
    return False


class JSONRequest(Request):
    """A request whose JSON body is parsed by orjson and refused when nested too deeply; FastAPI
    turns either refusal into a 422 like any other unparseable body."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:  # exactly as the library reads JSON (integers past 64 bits stay integers)
                value = codec.decode(body)
            except RecursionError:
                raise json.JSONDecodeError("nested too deeply", "", 0) from None
            limit = self.app.state.tether.settings.max_depth
            if isinstance(value, dict | list) and too_deep(value, limit):
                raise json.JSONDecodeError(f"nested deeper than {limit} levels", "", 0)
            self._json = value
        return self._json


class TetherRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(JSONRequest(request.scope, request.receive))

        return route


def router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose routes parse bodies with `JSONRequest`."""
    return APIRouter(route_class=TetherRoute, max_body_size=MAX_BODY_BYTES, **kwargs)
