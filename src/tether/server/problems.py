"""RFC 9457 problem details: every error the API answers, one stable `code` per library error.

Library errors map to a status and a code here, once; FastAPI's own errors (unknown route, wrong
method, unparseable or ill-typed body) are answered in the same shape, so a client reads one format.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tether.core import wire
from tether.core.errors import AuthError, TetherError, ValidationError

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://tether.dev/problems/"
RETRY_AFTER = "1"
# The codes an HTTP status answers when no library error says more.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "version_mismatch",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "store_unavailable",
}


class Problem(Exception):
    """An error answer: status, code, detail and any extension members."""

    def __init__(self, status: int, code: str, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.extensions = status, code, detail, extensions

    def body(self, instance: str, request_id: str | None) -> dict[str, Any]:
        return {
            "type": TYPE_BASE + self.code,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            "code": self.code,
            "request_id": request_id,
            **self.extensions,
        }


class Forbidden(AuthError):
    """A valid key asking for what it may not do (403, where a bad key is 401)."""


def from_error(exc: TetherError, place: str = "body", prefix: str = "") -> Problem:
    """The problem a library error answers (status, code and attributes from `tether.core.wire`).
    `place` says where a ValidationError's field came from ("body": a JSON pointer under `prefix`;
    else a query, path or header parameter)."""
    if isinstance(exc, Forbidden):
        return Problem(403, "forbidden", str(exc))
    shape = wire.problem_for(exc)
    if shape.status == 500:
        logger.error("error answered as 500: %r", exc)
    body = wire.problem_from_error(exc)
    extensions = {name: body[name] for name in (*shape.attributes, "notes") if name in body}
    if isinstance(exc, ValidationError):
        extensions["errors"] = [field_error(exc.field, exc.problem, place, prefix)]
    return Problem(shape.status, shape.code, str(exc), **extensions)


def field_error(field: str, detail: str, place: str = "body", prefix: str = "") -> dict[str, str]:
    if place == "body":
        return {"pointer": f"{prefix}/{field}", "detail": detail}
    return {"parameter": field, "detail": detail}


def pointer(location: Sequence[int | str]) -> str:
    """A JSON Pointer (RFC 6901) to a body location as pydantic reports it."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in location)


def from_validation(errors: Sequence[Mapping[str, Any]]) -> Problem:
    """FastAPI's request validation errors (body, query, path, header) as one 422 problem."""
    found: list[dict[str, str]] = []
    for error in errors:
        where, *location = error.get("loc", ()) or ("body",)
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            message = f"not valid JSON: {error.get('ctx', {}).get('error', message)}"
            found.append({"pointer": "", "detail": message})
        elif where == "body":
            found.append({"pointer": pointer(location), "detail": message})
        else:
            found.append({"parameter": str(location[0]) if location else str(where), "detail": message})
    summary = "; ".join(f"{e.get('pointer', e.get('parameter'))}: {e['detail']}" for e in found[:5])
    return Problem(422, "validation_error", f"invalid request: {summary}", errors=found)


def document_media_type(spec: dict[str, Any]) -> dict[str, Any]:
    """Declare error answers as problem+json in an OpenAPI document (FastAPI files a response
    model under application/json); idempotent."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status.isdigit() and int(status) >= 400 and "application/json" in content:
                    content[MEDIA_TYPE] = content.pop("application/json")
    return spec


def respond(request: Request, problem: Problem) -> JSONResponse:
    headers = {"Retry-After": RETRY_AFTER} if problem.status == 503 else {}
    if problem.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tether"'
    request_id = getattr(request.state, "request_id", None)
    body = problem.body(request.url.path, request_id)
    return JSONResponse(body, problem.status, headers=headers, media_type=MEDIA_TYPE)


def install(app: FastAPI) -> None:
    """Answer every error as problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return respond(request, exc)

    async def on_library(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TetherError)
        runtime = getattr(request.app.state, "tether", None)
        if runtime is not None:
            runtime.metrics.rejected(exc)
        place = "parameter" if request.method in ("GET", "DELETE", "HEAD") else "body"
        return respond(request, from_error(exc, place))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return respond(request, from_validation(exc.errors()))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404:
            detail = f"no route {request.url.path}"
        problem = Problem(exc.status_code, code, detail)
        response = respond(request, problem)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return respond(request, Problem(500, "internal_error", "the server failed; please report it"))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(TetherError, on_library)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
