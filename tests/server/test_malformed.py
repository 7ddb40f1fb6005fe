"""A catalog of malformed requests: each is answered with the expected problem+json (status, code,
and where it names one, the field by JSON pointer or parameter), never a 500, and the store is left
exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.live_server import LiveServer
from tests.server.conftest import Keys
from tether.stores import open_store

PROBLEM = "application/problem+json"
DEEP: dict[str, Any] = {}
_level = DEEP
for _ in range(600):  # past the 512 levels a body may nest (the library keeps 200-deep data)
    _level["x"] = {}
    _level = _level["x"]
SQL = "x'); DROP TABLE sessions; --"
NUL = "a\u0000b"


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # {sid} is the target session
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 422
    code: str = "validation_error"
    pointer: str | None = None
    parameter: str | None = None
    key: str = "alice"  # alice, none, garbage, revoked, basic


S = "/v1/sessions"
ONE = "/v1/sessions/{sid}"
CATALOG = [
    # wrong types and missing fields
    Case("agent_type is a number", "POST", S, {"agent_type": 1}, pointer="/agent_type"),
    Case("agent_type is missing", "POST", S, {"context": {}}, pointer="/agent_type"),
    Case("agent_type is empty", "POST", S, {"agent_type": ""}, pointer="/agent_type"),
    Case("context is a list", "POST", S, {"agent_type": "t", "context": [1]}, pointer="/context"),
    Case("metadata is a string", "POST", S, {"agent_type": "t", "metadata": "m"}, pointer="/metadata"),
    Case("an unknown field", "POST", S, {"agent_type": "t", "colour": "red"}, pointer="/colour"),
    Case("the body is an array", "POST", S, [{"agent_type": "t"}], pointer=""),
    Case("if_exists is unknown", "POST", S, {"agent_type": "t", "if_exists": "merge"}, pointer="/if_exists"),
    Case("epoch is a string", "POST", ONE + "/checkpoints", {"name": "n", "epoch": "1"}, pointer="/epoch"),
    Case("epoch is zero", "POST", ONE + "/checkpoints", {"name": "n", "epoch": 0}, pointer="/epoch"),
    Case("epoch is 2**63", "POST", ONE + "/checkpoints", {"name": "n", "epoch": 2**63}, pointer="/epoch"),
    Case("epoch is a bool", "POST", ONE + "/heartbeat", {"epoch": True}, pointer="/epoch"),
    Case("checkpoint name missing", "POST", ONE + "/checkpoints", {"data": {}}, pointer="/name"),
    Case(
        "checkpoint data is a string",
        "POST",
        ONE + "/checkpoints",
        {"name": "n", "data": "d"},
        pointer="/data",
    ),
    Case(
        "expect_silence negative",
        "POST",
        ONE + "/heartbeat",
        {"expect_silence": -1},
        pointer="/expect_silence",
    ),
    Case(
        "expect_silence a string",
        "POST",
        ONE + "/heartbeat",
        {"expect_silence": "5"},
        pointer="/expect_silence",
    ),
    Case("no beats", "POST", "/v1/heartbeats", {"beats": []}, pointer="/beats"),
    Case("beats is an object", "POST", "/v1/heartbeats", {"beats": {"session_id": "x"}}, pointer="/beats"),
    Case(
        "a beat without a session",
        "POST",
        "/v1/heartbeats",
        {"beats": [{"epoch": 1}]},
        pointer="/beats/0/session_id",
    ),
    Case("fail without error", "POST", ONE + "/fail", {"details": {}}, pointer="/error"),
    Case("final is a string", "POST", ONE + "/fail", {"error": "e", "final": "yes"}, pointer="/final"),
    Case(
        "purge older_than negative",
        "POST",
        "/v1/purge",
        {"older_than": -1},
        pointer="/older_than",
        key="admin",
    ),
    Case(
        "purge with two cutoffs", "POST", "/v1/purge", {"older_than": 1, "before": "2026-01-01"}, key="admin"
    ),
    Case("purge with no cutoff", "POST", "/v1/purge", {"states": ["failed"]}, key="admin"),
    Case("purge before a number", "POST", "/v1/purge", {"before": 0}, pointer="/before", key="admin"),
    Case("purge before no date", "POST", "/v1/purge", {"before": "soon"}, pointer="/before", key="admin"),
    Case("time_out with an epoch", "POST", ONE + "/time_out", {"epoch": 1}, pointer="/epoch"),
    Case(
        "purge of an unknown state", "POST", "/v1/purge", {"older_than": 1, "states": ["gone"]}, key="admin"
    ),
    Case(
        "claims agent_types is a string",
        "POST",
        "/v1/claims",
        {"agent_types": "tutor"},
        pointer="/agent_types",
    ),
    # query and path parameters
    Case("limit zero", "GET", S + "?limit=0", parameter="limit"),
    Case("limit not a number", "GET", S + "?limit=ten", parameter="limit"),
    Case("a forged cursor", "GET", S + "?cursor=Zm9yZ2Vk", parameter="cursor"),
    Case("an unknown state", "GET", S + "?state=sleeping", parameter="state"),
    Case("liveness healthy is no stale filter", "GET", S + "?liveness=healthy", parameter="liveness"),
    Case("seq zero", "GET", ONE + "/checkpoints/0", parameter="seq"),
    Case("seq not a number", "GET", ONE + "/checkpoints/last", parameter="seq"),
    Case("checkpoints after -1", "GET", ONE + "/checkpoints?after=-1", parameter="after"),
    # broken, oversized, deeply nested bodies
    Case("broken JSON", "POST", S, content=b'{"agent_type": ', pointer=""),
    Case("NaN is not JSON", "POST", S, content=b'{"agent_type": "t", "context": {"x": NaN}}', pointer=""),
    Case("a lone surrogate", "POST", S, content=b'{"agent_type": "\\ud800"}', pointer=""),
    Case("not JSON at all", "POST", S, content=b"agent_type=t", headers={"content-type": "text/plain"}),
    Case("nested 600 levels deep", "POST", S, {"agent_type": "t", "context": DEEP}, pointer=""),
    Case(
        "a body over 4 MiB",
        "POST",
        S,
        content=b'{"agent_type": "t", "context": {"x": "' + b"y" * (5 << 20) + b'"}}',
        status=413,
        code="payload_too_large",
    ),
    Case(
        "context over the 1 MiB payload limit",
        "POST",
        S,
        {"agent_type": "t", "context": {"x": "y" * (1 << 20)}},
        status=413,
        code="payload_too_large",
        pointer="/context",
    ),
    # state, fencing, versions, ids
    Case(
        "a stale epoch",
        "POST",
        ONE + "/checkpoints",
        {"name": "late", "epoch": 9},
        status=409,
        code="lease_lost",
    ),
    Case("resume an active session", "POST", ONE + "/resume", {}, status=409, code="invalid_transition"),
    Case("claim a live session", "POST", ONE + "/claim", {}, status=409, code="not_claimable"),
    Case(
        "a stale version",
        "POST",
        ONE + "/pause",
        {},
        headers={"If-Match": '"99"'},
        status=412,
        code="version_mismatch",
    ),
    Case(
        "a weak ETag",
        "POST",
        ONE + "/pause",
        {},
        headers={"If-Match": 'W/"1"'},
        status=412,
        code="version_mismatch",
    ),
    Case(
        "If-Match not an ETag", "POST", ONE + "/pause", {}, headers={"If-Match": "one"}, parameter="if-match"
    ),
    Case(
        "an unknown session", "POST", S + "/nobody/checkpoints", {"name": "n"}, status=404, code="not_found"
    ),
    Case(
        "an existing session id",
        "POST",
        S,
        {"agent_type": "t", "session_id": "{sid}"},
        status=409,
        code="already_exists",
    ),
    Case("an unknown route", "GET", "/v1/sesions", status=404, code="not_found"),
    Case("a wrong method", "PUT", S, {}, status=405, code="method_not_allowed"),
    # NULs in every text field the library keeps as an id or a name
    Case("NUL in agent_type", "POST", S, {"agent_type": NUL}, pointer="/agent_type"),
    Case("NUL in session_id", "POST", S, {"agent_type": "t", "session_id": NUL}, pointer="/session_id"),
    Case(
        "NUL in parent_session_id",
        "POST",
        S,
        {"agent_type": "t", "parent_session_id": NUL},
        pointer="/parent_session_id",
    ),
    Case("NUL in worker_id", "POST", S, {"agent_type": "t", "worker_id": NUL}, pointer="/worker_id"),
    Case("NUL in a checkpoint name", "POST", ONE + "/checkpoints", {"name": NUL}, pointer="/name"),
    Case("NUL in a phase", "POST", ONE + "/heartbeat", {"phase": NUL}, pointer="/phase"),
    Case("NUL in a claim's worker_id", "POST", ONE + "/claim", {"worker_id": NUL}, pointer="/worker_id"),
    Case("NUL in a filter", "GET", S + "?agent_type=a%00b", parameter="agent_type"),
    # keys
    Case("no key", "GET", S, status=401, code="unauthorized", key="none"),
    Case("a garbage key", "GET", S, status=401, code="unauthorized", key="garbage"),
    Case("a revoked key", "GET", S, status=401, code="unauthorized", key="revoked"),
    Case("Basic instead of Bearer", "GET", S, status=401, code="unauthorized", key="basic"),
]


@pytest.fixture(scope="module")
def revoked(server: LiveServer) -> str:
    key = server.key("mallory")
    store = open_store(server.store_url)
    try:
        assert store.revoke_api_key(key.split("_")[1], store.now())
    finally:
        store.close()
    return key


@pytest.fixture(scope="module")
def target(server: LiveServer, keys: Keys) -> str:
    with httpx.Client(base_url=server.url, headers=LiveServer.auth(keys.alice)) as c:
        sid: str = c.post("/v1/sessions", json={"agent_type": "target", "context": {"k": "v"}}).json()[
            "session_id"
        ]
        c.post(f"/v1/sessions/{sid}/checkpoints", json={"name": "step", "data": {"n": 1}})
        return sid


def fingerprint(admin: httpx.Client) -> list[tuple[Any, ...]]:
    """Every stored session's id, state, version, epoch, last seq and last heartbeat."""
    found, cursor = [], None
    while True:
        page = admin.get(
            "/v1/sessions", params={"limit": 1000, **({"cursor": cursor} if cursor else {})}
        ).json()
        found += [
            (s["session_id"], s["state"], s["version"], s["epoch"], s["last_seq"], s["last_heartbeat"])
            for s in page["items"]
        ]
        if (cursor := page["next_cursor"]) is None:
            return found


def headers_for(case: Case, keys: Keys, revoked: str) -> dict[str, str]:
    chosen = {
        "alice": {"Authorization": f"Bearer {keys.alice}"},
        "admin": {"Authorization": f"Bearer {keys.admin}"},
        "none": {},
        "garbage": {"Authorization": "Bearer tth_000000000000_nope"},
        "revoked": {"X-API-Key": revoked},
        "basic": {"Authorization": "Basic YWxpY2U6cGFzcw=="},
    }[case.key]
    return {**chosen, **case.headers}


def test_the_catalog_is_big_enough() -> None:
    assert len(CATALOG) >= 30


@pytest.mark.parametrize("case", CATALOG, ids=[c.name for c in CATALOG])
def test_a_malformed_request_gets_its_problem_and_changes_nothing(
    server: LiveServer, keys: Keys, admin: httpx.Client, target: str, revoked: str, case: Case
) -> None:
    before = fingerprint(admin)
    path = case.path.replace("{sid}", target)
    body = case.json
    if isinstance(body, dict) and body.get("session_id") == "{sid}":
        body = {**body, "session_id": target}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        answer = c.request(
            case.method, path, json=body, content=case.content, headers=headers_for(case, keys, revoked)
        )
    assert answer.status_code == case.status, answer.text[:500]
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert (problem["status"], problem["code"]) == (case.status, case.code)
    assert problem["type"].endswith(case.code) and problem["detail"] and problem["request_id"]
    if case.pointer is not None:
        assert case.pointer in [e.get("pointer") for e in problem["errors"]], problem
    if case.parameter is not None:
        assert case.parameter in [e.get("parameter") for e in problem["errors"]], problem
    assert fingerprint(admin) == before


@pytest.mark.parametrize(
    "field", ["agent_type", "session_id", "parent_session_id", "worker_id", "context", "metadata"]
)
def test_sql_metacharacters_in_a_create_are_stored_exactly(alice: httpx.Client, field: str) -> None:
    text = f"{SQL}-{field}"
    body: dict[str, Any] = {"agent_type": "sql"}
    body[field] = {text: text} if field in ("context", "metadata") else text
    created = alice.post("/v1/sessions", json=body)
    assert created.status_code == 201, created.text
    stored = alice.get(f"/v1/sessions/{created.json()['session_id']}").json()
    expected = body[field] if field != "worker_id" else None
    assert stored["owner" if field == "worker_id" else field] == (text if field == "worker_id" else expected)


def test_sql_metacharacters_and_nul_in_payloads_and_names_are_stored_exactly(alice: httpx.Client) -> None:
    sid = alice.post("/v1/sessions", json={"agent_type": "sql", "context": {"nul": NUL}}).json()["session_id"]
    assert alice.post(f"/v1/sessions/{sid}/heartbeat", json={"phase": SQL}).status_code == 204
    cp = alice.post(f"/v1/sessions/{sid}/checkpoints", json={"name": SQL, "data": {SQL: NUL}}).json()
    assert alice.get(f"/v1/sessions/{sid}/checkpoints/{cp['seq']}").json()["data"] == {SQL: NUL}
    failed = alice.post(f"/v1/sessions/{sid}/fail", json={"error": SQL, "details": {"nul": NUL}}).json()
    assert failed["failure"]["error"] == SQL and failed["failure"]["details"] == {"nul": NUL}
    stored = alice.get(f"/v1/sessions/{sid}").json()
    assert stored["context"] == {"nul": NUL} and stored["phase"] == SQL
    assert alice.get("/v1/sessions", params={"agent_type": SQL}).json()["items"] == []


def test_a_streamed_body_over_the_limit_without_a_length_is_refused_too(alice: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"agent_type": "t", "context": {"x": "'
        for _ in range(5):
            yield b"y" * (1 << 20)
        yield b'"}}'

    answer = alice.post("/v1/sessions", content=chunks(), headers={"content-type": "application/json"})
    assert (answer.status_code, answer.headers["content-type"]) == (413, PROBLEM)
    assert answer.json()["code"] == "payload_too_large"
