"""The service end to end, as docs/http-api.md describes it: a session's life over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from tests.live_server import LiveServer

PROBLEM = "application/problem+json"


def test_a_session_lives_through_create_heartbeat_checkpoint_complete(alice: httpx.Client) -> None:
    created = alice.post("/v1/sessions", json={"agent_type": "tutor", "context": {"lang": "fr"}})
    assert created.status_code == 201
    session = created.json()
    sid = session["session_id"]
    assert session["user_id"] == "alice" and session["state"] == "active" and session["epoch"] == 1
    assert created.headers["location"] == f"/v1/sessions/{sid}"
    assert created.headers["etag"] == '"1"'
    assert alice.post(f"/v1/sessions/{sid}/heartbeat", json={"epoch": 1, "phase": "think"}).status_code == 204
    cp = alice.post(f"/v1/sessions/{sid}/checkpoints", json={"name": "step", "data": {"n": 1}, "epoch": 1})
    assert cp.status_code == 201 and cp.json()["seq"] == 1
    assert cp.headers["location"] == f"/v1/sessions/{sid}/checkpoints/1"
    assert alice.get(f"/v1/sessions/{sid}/checkpoints/1").json()["data"] == {"n": 1}
    assert alice.get(f"/v1/sessions/{sid}/checkpoints/latest", params={"name": "step"}).json()["seq"] == 1
    assert alice.get(f"/v1/sessions/{sid}/checkpoints/latest", params={"name": "other"}).status_code == 204
    done = alice.post(f"/v1/sessions/{sid}/complete", json={"result": {"ok": True}, "epoch": 1})
    assert done.status_code == 200 and done.json()["state"] == "completed" and done.json()["liveness"] is None
    page = alice.get(f"/v1/sessions/{sid}/checkpoints").json()
    assert [c["name"] for c in page["items"]] == ["step", "session_completed"]


def test_a_stale_epoch_is_refused_with_both_epochs(alice: httpx.Client) -> None:
    sid = alice.post("/v1/sessions", json={"agent_type": "tutor"}).json()["session_id"]
    refused = alice.post(f"/v1/sessions/{sid}/checkpoints", json={"name": "late", "epoch": 2})
    assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["code"] == "lease_lost"
    assert (refused.json()["epoch"], refused.json()["current_epoch"]) == (2, 1)


def test_if_match_guards_a_write_with_the_etag(alice: httpx.Client) -> None:
    created = alice.post("/v1/sessions", json={"agent_type": "tutor"})
    sid, etag = created.json()["session_id"], created.headers["etag"]
    assert (
        alice.patch(f"/v1/sessions/{sid}", json={"context": {"a": 1}}, headers={"If-Match": etag}).status_code
        == 200
    )
    stale = alice.post(f"/v1/sessions/{sid}/pause", json={}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["code"] == "version_mismatch"
    assert stale.json()["actual_version"] == 2
    fresh = alice.get(f"/v1/sessions/{sid}").headers["etag"]
    assert (
        alice.post(f"/v1/sessions/{sid}/pause", json={}, headers={"If-Match": fresh}).json()["state"]
        == "paused"
    )


def test_lists_leave_out_context_unless_asked_and_page_with_a_cursor(alice: httpx.Client) -> None:
    for n in range(3):
        alice.post("/v1/sessions", json={"agent_type": "lister", "context": {"n": n}})
    first = alice.get("/v1/sessions", params={"agent_type": "lister", "limit": 2})
    body = first.json()
    assert len(body["items"]) == 2 and "context" not in body["items"][0] and body["next_cursor"]
    assert 'rel="next"' in first.headers["link"]
    rest = alice.get("/v1/sessions", params={"agent_type": "lister", "cursor": body["next_cursor"]}).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    full = alice.get("/v1/sessions", params={"agent_type": "lister", "include": "context"}).json()
    assert [s["context"]["n"] for s in full["items"]] == [2, 1, 0]


def test_a_batch_of_heartbeats_answers_one_result_per_beat(alice: httpx.Client) -> None:
    sid = alice.post("/v1/sessions", json={"agent_type": "tutor"}).json()["session_id"]
    beats = [{"session_id": sid, "epoch": 1}, {"session_id": "missing"}, {"session_id": sid, "epoch": 5}]
    results = alice.post("/v1/heartbeats", json={"beats": beats}).json()["results"]
    assert results[0] is None
    assert results[1]["code"] == "not_found" and results[2]["code"] == "lease_lost"


def test_claim_next_takes_over_a_failed_session_with_a_new_epoch(alice: httpx.Client) -> None:
    sid = alice.post("/v1/sessions", json={"agent_type": "claimable"}).json()["session_id"]
    alice.post(f"/v1/sessions/{sid}/fail", json={"error": "crash"})
    claimed = alice.post("/v1/claims", json={"agent_types": ["claimable"], "worker_id": "w2"})
    assert claimed.status_code == 200
    assert (claimed.json()["session_id"], claimed.json()["owner"], claimed.json()["epoch"]) == (sid, "w2", 2)
    assert alice.post("/v1/claims", json={"agent_types": ["claimable"]}).status_code == 204


def test_probes_docs_and_metrics_answer(server: LiveServer, alice: httpx.Client) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
    assert httpx.get(server.url + "/openapi.json").json()["info"]["title"] == "Tether"
    assert httpx.get(server.url + "/docs").status_code == 200
    text = httpx.get(server.url + "/metrics").text
    assert (
        "tether_sessions{" in text and 'tether_http_requests_total{method="POST",route="/v1/sessions"' in text
    )
    assert "session_id=" not in text and "user_id=" not in text
    assert alice.get("/v1/me").json() == {
        "user_id": "alice",
        "admin": False,
        "key_id": alice.headers["authorization"].split("_")[1],
        "open_mode": False,
    }


def test_time_out_is_refused_while_the_lease_lives_and_honours_if_match(alice: httpx.Client) -> None:
    created = alice.post("/v1/sessions", json={"agent_type": "tutor"})
    sid, etag = created.json()["session_id"], created.headers["etag"]
    alive = alice.post(f"/v1/sessions/{sid}/time_out", json={}, headers={"If-Match": etag})
    assert alive.status_code == 409 and alive.json()["code"] == "not_claimable"
    stale = alice.post(f"/v1/sessions/{sid}/time_out", json={}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412 and stale.json()["actual_version"] == 1
    assert alice.get(f"/v1/sessions/{sid}").json()["state"] == "active"


def test_policies_are_the_ones_the_server_runs_with(alice: httpx.Client) -> None:
    answer = alice.get("/v1/policies").json()
    assert answer["default"] == {
        "timeout": 60.0,
        "suspect_after": None,
        "on_timeout": "recover",
        "max_recoveries": 3,
        "retain_completed": None,
        "retain_failed": None,
    }
    assert answer["by_type"] == {}


def test_purge_takes_an_instant_as_well_as_an_age(admin: httpx.Client) -> None:
    sid = admin.post("/v1/sessions", json={"agent_type": "purged", "user_id": "carol"}).json()["session_id"]
    ended = datetime.fromisoformat(admin.post(f"/v1/sessions/{sid}/complete", json={}).json()["ended_at"])
    assert admin.post("/v1/purge", json={"before": "2000-01-01T00:00:00Z"}).json() == {"purged": 0}
    assert admin.get(f"/v1/sessions/{sid}").status_code == 200
    naive = (ended + timedelta(microseconds=1)).replace(tzinfo=None)  # read as UTC, as embedded
    assert admin.post("/v1/purge", json={"before": naive.isoformat()}).json()["purged"] >= 1
    assert admin.get(f"/v1/sessions/{sid}").status_code == 404
