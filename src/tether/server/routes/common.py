"""What every route needs: the runtime, the caller, If-Match, and the documented error answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

from tether.server.auth import Caller, caller
from tether.server.models import ProblemOut
from tether.server.problems import MEDIA_TYPE, Problem
from tether.server.runtime import Runtime

CallerDep = Annotated[Caller, Depends(caller)]


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.tether
    return found


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def problem_responses(
    *statuses: int, also: dict[int | str, dict[str, Any]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems a route may answer (always 401, 403, 413, 422, 503), plus
    the other answers in `also`."""
    every = sorted({401, 403, 413, 422, 503, *statuses})
    problems: dict[int | str, dict[str, Any]] = {
        s: {"model": ProblemOut, "content": {MEDIA_TYPE: {}}} for s in every
    }
    return {**(also or {}), **problems}


def expected_version(if_match: Annotated[str | None, Header(include_in_schema=True)] = None) -> int | None:
    """`If-Match: "<version>"` as expected_version; `*` (or none) means any version."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip()
    if text.startswith("W/"):
        raise Problem(412, "version_mismatch", "a weak ETag never matches If-Match (RFC 9110)")
    inner = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else ""
    if not inner.isdigit() or not 1 <= int(inner) <= 2**63 - 1:
        raise Problem(
            422, "validation_error", 'If-Match must be a session ETag: "<version>"',
            errors=[{"parameter": "if-match", "detail": 'expected "<version>", e.g. "3"'}],
        )  # fmt: skip
    return int(inner)


IfMatch = Annotated[int | None, Depends(expected_version)]
