"""The JSON wire form of Tether's values and errors, shared by the HTTP server and `tether.Client`.

One module encodes and decodes, so what the server writes is exactly what the client reads back:
`session_from_json(session_to_json(s)) == s`. Errors travel as RFC 9457 problem details with one
stable `code` per exception class (`ERRORS`); the exception's attributes ride along as extension
members, so the client raises the very exception the embedded manager would have raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from tether.core.errors import (
    AuthError,
    ConfigurationError,
    ConflictError,
    DecryptionError,
    InvalidTransition,
    LeaseLost,
    NotClaimable,
    NotFound,
    PayloadTooLarge,
    SchemaMismatch,
    StoreUnavailable,
    TetherError,
    ValidationError,
)
from tether.core.model import Checkpoint, Failure, Session, State
from tether.core.policy import Policies, Policy
from tether.core.retention import RetentionReport, RetentionRule, Retired

JSON = dict[str, Any]

_SESSION_TIMES = ("created_at", "last_heartbeat", "state_since", "lease_expires_at", "suspect_at", "ended_at")
# Fields a listing leaves out unless asked (they can be large); a session read without them has {}.
BULKY_FIELDS = ("context", "metadata")


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def session_to_json(session: Session, *, bulky: bool = True) -> JSON:
    """Every field of the session; `bulky=False` leaves out context and metadata (listings)."""
    failure = session.failure
    body: JSON = {
        "session_id": session.session_id,
        "agent_type": session.agent_type,
        "user_id": session.user_id,
        "state": session.state.value,
        "parent_session_id": session.parent_session_id,
        "version": session.version,
        "owner": session.owner,
        "epoch": session.epoch,
        "heartbeat_timeout": session.heartbeat_timeout,
        "suspect_after": session.suspect_after,
        "phase": session.phase,
        "recoveries": session.recoveries,
        "failure": None
        if failure is None
        else {"error": failure.error, "details": failure.details, "final": failure.final},
        "last_seq": session.last_seq,
    }
    for name in _SESSION_TIMES:
        body[name] = _time(getattr(session, name))
    if bulky:
        body["context"], body["metadata"] = session.context, session.metadata
    return body


def session_from_json(body: Mapping[str, Any]) -> Session:
    failure = body.get("failure")
    times = {name: _parse_time(body.get(name)) for name in _SESSION_TIMES}
    return Session(
        session_id=body["session_id"],
        agent_type=body["agent_type"],
        user_id=body["user_id"],
        state=State(body["state"]),
        created_at=times.pop("created_at"),  # type: ignore[arg-type]  # always present
        last_heartbeat=times.pop("last_heartbeat"),  # type: ignore[arg-type]
        context=body.get("context", {}),
        metadata=body.get("metadata", {}),
        parent_session_id=body.get("parent_session_id"),
        version=body["version"],
        owner=body.get("owner"),
        epoch=body["epoch"],
        heartbeat_timeout=body["heartbeat_timeout"],
        suspect_after=body["suspect_after"],
        phase=body.get("phase"),
        recoveries=body.get("recoveries", 0),
        failure=None if failure is None else Failure(failure["error"], failure["details"], failure["final"]),
        last_seq=body.get("last_seq", 0),
        **times,
    )


def checkpoint_to_json(checkpoint: Checkpoint) -> JSON:
    return {
        "session_id": checkpoint.session_id,
        "seq": checkpoint.seq,
        "name": checkpoint.name,
        "timestamp": checkpoint.timestamp.isoformat(),
        "data": checkpoint.data,
    }


def checkpoint_from_json(body: Mapping[str, Any]) -> Checkpoint:
    return Checkpoint(
        body["session_id"], body["seq"], body["name"], datetime.fromisoformat(body["timestamp"]), body["data"]
    )


# -- errors ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Problem:
    """How one exception class travels: HTTP status, stable code, and the attributes it carries."""

    status: int
    code: str
    title: str
    attributes: tuple[str, ...]


# Most specific class first: `problem_for` takes the first entry the exception is an instance of.
ERRORS: dict[type[TetherError], Problem] = {
    NotFound: Problem(404, "not_found", "Session not found", ("session_id",)),
    InvalidTransition: Problem(
        409, "invalid_transition", "Not allowed in this state", ("session_id", "state", "action")
    ),
    LeaseLost: Problem(409, "lease_lost", "Lease lost", ("session_id", "epoch", "current_epoch", "reason")),
    NotClaimable: Problem(409, "not_claimable", "Not claimable", ("session_id", "reason")),
    PayloadTooLarge: Problem(413, "payload_too_large", "Payload too large", ("field", "size", "limit")),
    ValidationError: Problem(422, "validation_error", "Invalid request", ("field", "problem")),
    StoreUnavailable: Problem(503, "store_unavailable", "Store unavailable", ()),
    AuthError: Problem(401, "unauthorized", "Unauthorized", ()),  # the server answers 403 "forbidden" too
    SchemaMismatch: Problem(500, "schema_mismatch", "Schema mismatch", ("found", "supported")),
    ConfigurationError: Problem(500, "configuration_error", "Server misconfigured", ()),
    DecryptionError: Problem(
        500, "decryption_error", "Stored payload cannot be decrypted", ("session_id", "field")
    ),
}
# A ConflictError with versions is a failed precondition (If-Match); without, a plain conflict (a race
# lost too often). The server answers "already_exists" for a create whose id exists (docs/http-api.md).
VERSION_MISMATCH = Problem(
    412, "version_mismatch", "Version mismatch", ("session_id", "expected_version", "actual_version")
)
CONFLICT = Problem(409, "conflict", "Conflict", ("session_id",))
_BY_CODE = {p.code: (cls, p) for cls, p in ERRORS.items()}
_BY_CODE[VERSION_MISMATCH.code] = (ConflictError, VERSION_MISMATCH)
_BY_CODE[CONFLICT.code] = (ConflictError, CONFLICT)
_BY_CODE["already_exists"] = (ConflictError, CONFLICT)  # the server's answer to a create of an existing id
_BY_CODE["forbidden"] = (AuthError, ERRORS[AuthError])


def problem_for(error: TetherError) -> Problem:
    for cls, problem in ERRORS.items():
        if isinstance(error, cls):
            return problem
    if isinstance(error, ConflictError):
        return VERSION_MISMATCH if error.expected_version is not None else CONFLICT
    return Problem(500, "error", "Error", ())


def problem_from_error(error: TetherError) -> JSON:
    """The problem+json body for a library error (`type`/`instance` are the server's to add)."""
    problem = problem_for(error)
    body: JSON = {
        "title": problem.title,
        "status": problem.status,
        "detail": str(error),
        "code": problem.code,
    }
    for name in problem.attributes:
        body[name] = getattr(error, name)
    if getattr(error, "__notes__", None):
        body["notes"] = list(error.__notes__)
    return body


def error_from_problem(status: int, body: Mapping[str, Any]) -> TetherError:
    """The exception a problem+json body stands for (with its notes); unknown codes keep their status
    and detail."""
    error = _error(status, body)
    notes = body.get("notes")
    for note in notes if isinstance(notes, list) else ():
        error.add_note(str(note))
    return error


def _error(status: int, body: Mapping[str, Any]) -> TetherError:
    code = body.get("code")
    detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
    cls, _ = _BY_CODE.get(code, (None, None)) if isinstance(code, str) else (None, None)
    get = body.get
    if cls is NotFound:
        return NotFound(get("session_id") or "")
    if cls is InvalidTransition:
        return InvalidTransition(get("session_id") or "", get("state") or "", get("action") or "")
    if cls is LeaseLost:
        return LeaseLost(get("session_id") or "", get("epoch"), get("current_epoch") or 0, get("reason"))
    if cls is NotClaimable:
        return NotClaimable(get("session_id") or "", get("reason") or detail)
    if cls is ConflictError:
        return ConflictError(
            get("session_id") or "",
            None if code == VERSION_MISMATCH.code else detail,
            expected_version=get("expected_version"),
            actual_version=get("actual_version"),
        )
    if cls is PayloadTooLarge:
        return PayloadTooLarge(get("field") or _pointer_field(body), get("size") or 0, get("limit") or 0)
    if cls is ValidationError or status == 422:
        return ValidationError(get("field") or _pointer_field(body), get("problem") or detail)
    if cls is SchemaMismatch:
        return SchemaMismatch(get("found") or 0, get("supported") or 0)
    if cls is DecryptionError:
        return DecryptionError(get("session_id") or "", get("field") or "")
    if cls is AuthError or status in (401, 403):
        return AuthError(detail)
    if cls is StoreUnavailable or status == 503:
        return StoreUnavailable(detail)
    if cls is ConfigurationError:
        return ConfigurationError(detail)
    return TetherError(f"HTTP {status}: {detail}")


def _pointer_field(body: Mapping[str, Any]) -> str:
    """`/context/x` -> `context.x`: the field named by the first entry of `errors` (a JSON pointer into
    the body, or the name of a query, path or header parameter)."""
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        first = errors[0]
        if first.get("parameter"):
            return str(first["parameter"])
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(first.get("pointer", "")).split("/")]
        return ".".join(p for p in parts if p) or "body"
    return "body"


def retention_to_json(report: RetentionReport) -> JSON:
    """A retention pass's report, rule by rule (`other_types` is implied by the policies)."""
    rules = [
        {
            "agent_type": r.rule.agent_type,
            "state": r.rule.state.value,
            "ended_before": _time(r.rule.ended_before),
            "session_ids": list(r.session_ids),
        }
        for r in report.retired
    ]
    return {"dry_run": report.dry_run, "removed": report.removed, "rules": rules}


def retention_from_json(body: Mapping[str, Any]) -> RetentionReport:
    retired = tuple(
        Retired(
            RetentionRule(State(r["state"]), datetime.fromisoformat(r["ended_before"]), r["agent_type"]),
            tuple(r["session_ids"]),
        )
        for r in body["rules"]
    )
    return RetentionReport(bool(body["dry_run"]), retired)


def policies_to_json(policies: Policies) -> JSON:
    """`{"default": {...}, "by_type": {"tutor": {...}}}`, each policy field for field."""

    def one(policy: Policy) -> JSON:
        return {**asdict(policy), "on_timeout": policy.on_timeout.value}

    return {
        "default": one(policies.default),
        "by_type": {name: one(p) for name, p in sorted(policies.by_type.items())},
    }


def policies_from_json(body: Mapping[str, Any]) -> Policies:
    return Policies(
        Policy(**body["default"]), {name: Policy(**fields) for name, fields in body["by_type"].items()}
    )
