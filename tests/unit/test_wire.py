"""What the server writes, the client reads back exactly: values and errors survive the wire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tether import (
    AuthError,
    Checkpoint,
    ConflictError,
    DecryptionError,
    InvalidTransition,
    LeaseLost,
    NotClaimable,
    NotFound,
    PayloadTooLarge,
    Session,
    State,
    StoreUnavailable,
    TetherError,
    ValidationError,
)
from tether.core.model import Failure
from tether.core.wire import (
    checkpoint_from_json,
    checkpoint_to_json,
    error_from_problem,
    problem_from_error,
    session_from_json,
    session_to_json,
)

NOW = datetime(2026, 12, 3, 13, 0, 0, 123456, tzinfo=UTC)


def _through_json(body: object) -> object:
    return json.loads(json.dumps(body))


@pytest.mark.parametrize(
    "session",
    [
        Session("s1", "tutor", "u1", State.ACTIVE, NOW, NOW, owner="w", lease_expires_at=NOW, suspect_at=NOW),
        Session(
            "s2",
            "tutor",
            "u1",
            State.FAILED,
            NOW,
            NOW + timedelta(seconds=3),
            state_since=NOW,
            context={"a": [1, 2.5, None, "ü"]},
            metadata={"k": {"nested": True}},
            parent_session_id="s1",
            version=7,
            epoch=3,
            heartbeat_timeout=12.5,
            suspect_after=6.0,
            phase="llm",
            recoveries=2,
            ended_at=NOW,
            failure=Failure("boom", {"type": "ValueError"}, final=True),
            last_seq=9,
        ),
        Session("s3", "t", "u", State.PAUSED, NOW.astimezone(timezone(timedelta(hours=2))), NOW),
    ],
)
def test_a_session_survives_the_wire(session: Session) -> None:
    assert session_from_json(_through_json(session_to_json(session))) == session  # type: ignore[arg-type]


def test_listings_leave_out_context_and_metadata() -> None:
    session = Session("s", "t", "u", State.ACTIVE, NOW, NOW, context={"big": 1}, metadata={"m": 1})
    body = session_to_json(session, bulky=False)
    assert "context" not in body and "metadata" not in body
    assert session_from_json(body).context == {}


def test_a_checkpoint_survives_the_wire() -> None:
    checkpoint = Checkpoint("s", 4, "step", NOW, {"n": [1, {"x": None}]})
    assert checkpoint_from_json(_through_json(checkpoint_to_json(checkpoint))) == checkpoint  # type: ignore[arg-type]


ERRORS: list[TetherError] = [
    NotFound("s1"),
    InvalidTransition("s1", "completed", "pause"),
    LeaseLost("s1", 1, 2),
    LeaseLost("s1", None, 4, "the session is failed"),
    NotClaimable("s1", "its lease is alive"),
    ConflictError("s1", expected_version=3, actual_version=4),
    ConflictError("s1", "session 's1' exists"),
    ValidationError("context", "must be a JSON object"),
    PayloadTooLarge("data", 2_000_000, 1_000_000),
    StoreUnavailable("database is down"),
    AuthError("missing API key"),
    DecryptionError("s1", "context"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_an_error_comes_back_as_the_same_exception(error: TetherError) -> None:
    body = problem_from_error(error)
    back = error_from_problem(body["status"], _through_json(body))  # type: ignore[arg-type]
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert vars(back) == vars(error)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NotFound("s"), 404, "not_found"),
        (InvalidTransition("s", "paused", "checkpoint"), 409, "invalid_transition"),
        (LeaseLost("s", 1, 2), 409, "lease_lost"),
        (NotClaimable("s", "alive"), 409, "not_claimable"),
        (ConflictError("s", expected_version=1, actual_version=2), 412, "version_mismatch"),
        (ValidationError("f", "bad"), 422, "validation_error"),
        (PayloadTooLarge("f", 2, 1), 413, "payload_too_large"),
        (AuthError("no"), 401, "unauthorized"),
        (StoreUnavailable("down"), 503, "store_unavailable"),
    ],
)
def test_each_error_has_one_stable_status_and_code(error: TetherError, status: int, code: str) -> None:
    body = problem_from_error(error)
    assert (body["status"], body["code"]) == (status, code)


def test_a_validation_problem_without_a_field_names_it_by_json_pointer() -> None:
    body = {
        "status": 422,
        "code": "validation_error",
        "errors": [{"pointer": "/context/x", "detail": "?"}],
    }
    error = error_from_problem(422, body)
    assert isinstance(error, ValidationError) and error.field == "context.x"


def test_an_unknown_problem_keeps_its_status_and_detail() -> None:
    error = error_from_problem(418, {"detail": "I'm a teapot"})
    assert type(error) is TetherError and "418" in str(error) and "teapot" in str(error)
