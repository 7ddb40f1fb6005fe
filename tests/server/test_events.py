"""Live events over SSE: in order, resumable with Last-Event-ID without loss, scoped to the key's
user, one session's stream from snapshot to end, the supervisor's verdicts, and across processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_postgres_url
from tests.live_server import LiveServer, live_server
from tests.server.conftest import Keys
from tests.server.sse import Frame, frames, take

STREAM = httpx.Timeout(10.0)


def fresh_type() -> str:
    return f"agent-{uuid.uuid4().hex[:8]}"


def stream(server: LiveServer, key: str, path: str = "/v1/events", **headers: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={**LiveServer.auth(key), **headers}, timeout=STREAM)


def test_a_subscriber_sees_create_checkpoint_pause_in_order(
    server: LiveServer, keys: Keys, alice: httpx.Client
) -> None:
    kind = fresh_type()
    with (
        stream(server, keys.alice) as c,
        c.stream("GET", "/v1/events", params={"agent_type": kind}) as response,
    ):
        events = frames(response)
        assert response.headers["content-type"].startswith("text/event-stream")
        sid = alice.post("/v1/sessions", json={"agent_type": kind}).json()["session_id"]
        alice.post(f"/v1/sessions/{sid}/checkpoints", json={"name": "step", "data": {"n": 1}})
        alice.post(f"/v1/sessions/{sid}/pause", json={})
        got = take(events, 3)
    assert [f.event for f in got] == ["created", "checkpoint", "paused"]
    assert all(f.data["session_id"] == sid and f.data["user_id"] == "alice" for f in got)
    assert got[1].data["seq"] == 1 and got[1].data["data"] == {"name": "step"}
    ids = [int(f.id or 0) for f in got]
    assert ids == sorted(ids) and len(set(ids)) == 3 and [f.data["id"] for f in got] == ids


def test_last_event_id_resumes_after_a_dropped_connection_without_loss(
    server: LiveServer, keys: Keys, alice: httpx.Client
) -> None:
    kind = fresh_type()
    sid = ""
    with (
        stream(server, keys.alice) as c,
        c.stream("GET", "/v1/events", params={"agent_type": kind}) as response,
    ):
        events = frames(response)
        sid = alice.post("/v1/sessions", json={"agent_type": kind}).json()["session_id"]
        (first,) = take(events, 1)
    for n in range(3):  # written while nobody listens
        alice.post(f"/v1/sessions/{sid}/checkpoints", json={"name": f"step-{n}"})
    with (
        stream(server, keys.alice, **{"Last-Event-ID": first.id or ""}) as c,
        c.stream("GET", "/v1/events", params={"agent_type": kind}) as response,
    ):
        events = frames(response)
        replayed = take(events, 3)
        alice.post(f"/v1/sessions/{sid}/complete", json={})
        (live,) = take(events, 1)
    assert [f.data["data"]["name"] for f in replayed] == ["step-0", "step-1", "step-2"]
    assert live.event == "completed"
    assert int(first.id or 0) < int(replayed[0].id or 0) < int(live.id or 0)


def test_a_cursor_the_server_cannot_honour_gets_an_explicit_reset(server: LiveServer, keys: Keys) -> None:
    with stream(server, keys.alice, **{"Last-Event-ID": "1"}) as c, c.stream("GET", "/v1/events") as response:
        events = frames(response)
        (reset,) = take(events, 1)
    assert reset.event == "reset" and reset.data["reason"] == "cursor_expired"
    assert int(reset.id or 0) == reset.data["id"]


def test_events_are_scoped_to_the_keys_user(
    server: LiveServer, keys: Keys, alice: httpx.Client, bob: httpx.Client
) -> None:
    kind = fresh_type()
    with (
        stream(server, keys.bob) as c,
        c.stream("GET", "/v1/events", params={"agent_type": kind}) as response,
    ):
        events = frames(response)
        alice.post("/v1/sessions", json={"agent_type": kind})
        mine = bob.post("/v1/sessions", json={"agent_type": kind}).json()["session_id"]
        (first,) = take(events, 1)
    assert first.data["session_id"] == mine and first.data["user_id"] == "bob"


def test_one_sessions_stream_sends_a_snapshot_its_changes_then_end(
    server: LiveServer, keys: Keys, alice: httpx.Client
) -> None:
    sid = alice.post("/v1/sessions", json={"agent_type": fresh_type()}).json()["session_id"]
    with stream(server, keys.alice) as c, c.stream("GET", f"/v1/sessions/{sid}/events") as response:
        events = frames(response)
        alice.post(f"/v1/sessions/{sid}/checkpoints", json={"name": "step"})
        alice.post(f"/v1/sessions/{sid}/complete", json={})
        got: list[Frame] = list(take(events, 10))  # the server ends the stream after `end`
    assert [f.event for f in got] == ["snapshot", "checkpoint", "completed", "end"]
    assert got[0].data["state"] == "active" and got[-1].data["state"] == "completed"
    with alice.stream("GET", f"/v1/sessions/{sid}/events") as ended:  # already ended: snapshot, end
        assert [f.event for f in take(frames(ended), 10)] == ["snapshot", "end"]


def test_a_session_stream_of_another_users_session_is_404(
    server: LiveServer, keys: Keys, alice: httpx.Client
) -> None:
    sid = alice.post("/v1/sessions", json={"agent_type": fresh_type()}).json()["session_id"]
    with stream(server, keys.bob) as c:
        assert c.get(f"/v1/sessions/{sid}/events").json()["code"] == "not_found"


@pytest.fixture(scope="module")
def quick_policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policies") / "tether.toml"
    path.write_text('[policies.flaky]\ntimeout = 1.0\nsuspect_after = 0.5\non_timeout = "recover"\n')
    return path


def test_the_supervisor_inside_reports_suspect_then_timed_out(tmp_path: Path, quick_policies: Path) -> None:
    env = {"TETHER_POLICY_FILE": str(quick_policies)}
    with live_server(f"sqlite:///{tmp_path}/t.db", "--sweep-interval", "0.1", env=env) as server:
        with (
            httpx.Client(base_url=server.url, timeout=STREAM) as c,
            c.stream("GET", "/v1/events", params={"agent_type": "flaky"}) as response,
        ):
            events = frames(response)
            sid = c.post("/v1/sessions", json={"agent_type": "flaky", "user_id": "u"}).json()["session_id"]
            got = take(events, 3)
        metrics = httpx.get(server.url + "/metrics").text
    assert [f.event for f in got] == ["created", "suspect", "timed_out"]
    assert got[1].data["data"]["liveness"] == "suspect" and got[2].data["session_id"] == sid
    assert "tether_detection_latency_seconds_count 1.0" in metrics
    assert 'tether_session_transitions_total{kind="timed_out"} 1.0' in metrics


@pytest.fixture
def two_servers_on_postgres(quick_policies: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    from tests.conftest import _postgres_unreachable, service_missing

    if (reason := _postgres_unreachable()) is not None:
        service_missing("PostgreSQL", reason)
    url = fresh_postgres_url()
    env = {"TETHER_POLICY_FILE": str(quick_policies)}
    with (
        live_server(url, "--sweep-interval", "0.1", env=env) as one,
        live_server(url, "--sweep-interval", "0.1", env=env) as two,
    ):
        yield one, two


@pytest.mark.postgres
def test_a_write_on_one_process_reaches_a_subscriber_on_another_and_each_timeout_applies_once(
    two_servers_on_postgres: tuple[LiveServer, LiveServer],
) -> None:
    one, two = two_servers_on_postgres
    with (
        httpx.Client(base_url=one.url, timeout=STREAM) as watcher,
        httpx.Client(base_url=two.url, timeout=STREAM) as writer,
        watcher.stream("GET", "/v1/events", params={"agent_type": "flaky"}) as response,
    ):
        events = frames(response)
        sid = writer.post("/v1/sessions", json={"agent_type": "flaky", "user_id": "u"}).json()["session_id"]
        created = take(events, 1)[0]
        assert (created.event, created.data["session_id"], created.data["user_id"]) == ("created", sid, "u")
        # Every process's supervisor may report the suspect; only one applies the time-out.
        verdict = next(f for f in events if f.event != "suspect")
    assert (verdict.event, verdict.data["session_id"]) == ("timed_out", sid)
    history = httpx.get(f"{one.url}/v1/sessions/{sid}/checkpoints").json()["items"]
    assert [c["name"] for c in history].count("session_failed") == 1
    assert httpx.get(f"{two.url}/v1/sessions/{sid}").json()["failure"]["error"] == "heartbeat_timeout"


def test_heartbeats_reach_only_a_stream_that_asks_for_them(
    server: LiveServer, keys: Keys, alice: httpx.Client
) -> None:
    kind = fresh_type()
    sid = alice.post("/v1/sessions", json={"agent_type": kind}).json()["session_id"]
    with (
        stream(server, keys.alice) as c,
        c.stream("GET", "/v1/events", params={"agent_type": kind}) as plain,
        c.stream("GET", "/v1/events", params={"agent_type": kind, "kinds": "heartbeat,paused"}) as beats,
    ):
        alice.post(f"/v1/sessions/{sid}/heartbeat", json={"phase": "one"})
        alice.post("/v1/heartbeats", json={"beats": [{"session_id": sid, "phase": "two"}]})
        alice.post(f"/v1/sessions/{sid}/pause", json={})
        got = take(frames(beats), 3)
        assert [f.event for f in take(frames(plain), 1)] == ["paused"]
    assert [(f.event, f.data["data"].get("phase")) for f in got] == [
        ("heartbeat", "one"),
        ("heartbeat", "two"),
        ("paused", None),
    ]
