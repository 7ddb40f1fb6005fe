"""Per-user isolation: a user key sees and changes only its user's sessions. Another user's session
id answers exactly like a missing one (404), another user's name in a filter answers 404, admin-only
routes answer 403, and nothing any of it tries changes the store."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

JSON_BODY: dict[str, Any] = {}
# (method, path under /v1/sessions/{id}, body) for every route that names a session.
SESSION_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PATCH", "", {"context": {"stolen": True}}),
    ("DELETE", "", None),
    ("POST", "/pause", JSON_BODY),
    ("POST", "/resume", JSON_BODY),
    ("POST", "/complete", {"result": {"x": 1}}),
    ("POST", "/fail", {"error": "sabotage", "final": True}),
    ("POST", "/heartbeat", {"phase": "spying"}),
    ("POST", "/claim", {"worker_id": "thief"}),
    ("POST", "/time_out", JSON_BODY),
    ("POST", "/fork", {"worker_id": "thief"}),
    ("GET", "/checkpoints", None),
    ("POST", "/checkpoints", {"name": "forged", "data": {}}),
    ("GET", "/checkpoints/latest", None),
    ("GET", "/checkpoints/1", None),
    ("GET", "/events", None),
]


def snapshot(admin: httpx.Client, session_id: str) -> tuple[Any, Any]:
    session = admin.get(f"/v1/sessions/{session_id}").json()
    session.pop("liveness")
    return session, admin.get(f"/v1/sessions/{session_id}/checkpoints", params={"limit": 1000}).json()


def comparable(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k not in ("request_id", "instance", "session_id", "detail")}


@pytest.fixture
def alices(alice: httpx.Client) -> str:
    sid = alice.post("/v1/sessions", json={"agent_type": "private", "context": {"secret": 1}}).json()[
        "session_id"
    ]
    alice.post(f"/v1/sessions/{sid}/checkpoints", json={"name": "step", "data": {"secret": 2}})
    return sid


@pytest.mark.parametrize(
    ("method", "suffix", "body"), SESSION_ROUTES, ids=[f"{m} {p or '/'}" for m, p, _ in SESSION_ROUTES]
)
def test_another_users_session_answers_like_a_missing_one_and_stays_unchanged(
    alices: str, bob: httpx.Client, admin: httpx.Client, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    before = snapshot(admin, alices)
    theirs = bob.request(method, f"/v1/sessions/{alices}{suffix}", json=body)
    missing = bob.request(method, f"/v1/sessions/no-such-session{suffix}", json=body)
    assert theirs.status_code == missing.status_code == 404
    assert comparable(theirs.json()) == comparable(missing.json())
    assert "secret" not in theirs.text
    assert snapshot(admin, alices) == before


def test_filters_naming_another_user_answer_404_and_lists_hold_only_ones_own(
    alices: str, bob: httpx.Client, admin: httpx.Client
) -> None:
    before = snapshot(admin, alices)
    for path in ("/v1/sessions", "/v1/stats", "/v1/export", "/v1/events"):
        assert bob.get(path, params={"user_id": "alice"}).json()["code"] == "not_found", path
    for params in ({}, {"parent_session_id": alices}, {"agent_type": "private"}, {"liveness": "suspect"}):
        items = bob.get("/v1/sessions", params=params).json()["items"]
        assert all(s["user_id"] == "bob" for s in items), params
    assert alices not in bob.get("/v1/export").text
    assert all(c["agent_type"] != "private" for c in bob.get("/v1/stats").json()["counts"])
    beat = bob.post("/v1/heartbeats", json={"beats": [{"session_id": alices, "phase": "spying"}]})
    assert beat.json()["results"][0]["code"] == "not_found"
    assert snapshot(admin, alices) == before


def test_claim_next_with_a_user_key_takes_only_that_users_sessions(
    alice: httpx.Client, bob: httpx.Client, admin: httpx.Client
) -> None:
    sid = alice.post("/v1/sessions", json={"agent_type": "orphan"}).json()["session_id"]
    alice.post(f"/v1/sessions/{sid}/fail", json={"error": "crashed"})
    before = snapshot(admin, sid)
    assert bob.post("/v1/claims", json={"agent_types": ["orphan"]}).status_code == 204
    assert snapshot(admin, sid) == before
    assert alice.post("/v1/claims", json={"agent_types": ["orphan"]}).json()["session_id"] == sid


def test_admin_routes_refuse_user_keys(alices: str, bob: httpx.Client, admin: httpx.Client) -> None:
    before = snapshot(admin, alices)
    refused = [
        bob.post("/v1/users/alice/erase"),
        bob.post("/v1/purge", json={"older_than": 0, "states": ["active"]}),
        bob.post("/v1/import", content=b"", headers={"content-type": "application/x-ndjson"}),
    ]
    assert [(r.status_code, r.json()["code"]) for r in refused] == [(403, "forbidden")] * 3
    assert snapshot(admin, alices) == before


def test_a_user_key_cannot_create_for_another_user_and_admin_sees_everyone(
    alices: str, bob: httpx.Client, admin: httpx.Client
) -> None:
    forged = bob.post("/v1/sessions", json={"agent_type": "private", "user_id": "alice"})
    assert (forged.status_code, forged.json()["code"]) == (403, "forbidden")
    assert admin.get(f"/v1/sessions/{alices}").json()["context"] == {"secret": 1}
    assert admin.get("/v1/sessions", params={"user_id": "alice", "agent_type": "private"}).json()["items"]
