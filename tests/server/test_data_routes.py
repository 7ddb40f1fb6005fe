"""Fork, retention and encryption at rest through `tether serve` (docs/data.md)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_server import LiveServer, live_server
from tether import Client, FernetCodec, ValidationError

MARKER = "served-plaintext-marker-91c"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve-data")
    (path / "tether.toml").write_text('[policies.default]\nretain_completed = "1s"\n')
    return path


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[LiveServer]:
    env = {
        "TETHER_ENCRYPTION_KEY": FernetCodec.generate_key(),
        "TETHER_POLICY_FILE": str(folder / "tether.toml"),
    }
    with live_server(f"sqlite:///{folder}/tether.db", env=env) as running:
        yield running


def _client(server: LiveServer, user: str, admin: bool = False) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=LiveServer.auth(server.key(user, admin)), timeout=10)


def test_a_user_forks_their_own_session_from_a_checkpoint(server: LiveServer) -> None:
    with _client(server, "alice") as alice, _client(server, "bob") as bob:
        sid = alice.post("/v1/sessions", json={"agent_type": "tutor"}).json()["session_id"]
        for n in range(3):
            alice.post(f"/v1/sessions/{sid}/checkpoints", json={"name": f"step-{n}", "data": {"n": n}})
        forked = alice.post(f"/v1/sessions/{sid}/fork", json={"at_seq": 2})
        assert forked.status_code == 201
        body = forked.json()
        assert forked.headers["location"] == f"/v1/sessions/{body['session_id']}"
        assert body["state"] == "active" and body["last_seq"] == 2 and body["user_id"] == "alice"
        assert body["metadata"]["forked_from"] == {"session_id": sid, "seq": 2}
        history = alice.get(f"/v1/sessions/{body['session_id']}/checkpoints").json()["items"]
        assert [c["name"] for c in history] == ["step-0", "step-1"]
        assert bob.post(f"/v1/sessions/{sid}/fork", json={}).status_code == 404
        assert alice.post(f"/v1/sessions/{sid}/fork", json={"user_id": "bob"}).status_code == 403
        assert alice.post(f"/v1/sessions/{sid}/fork", json={"at_seq": 9}).status_code == 422


def test_an_admin_sees_and_applies_the_retention_policies(server: LiveServer) -> None:
    with _client(server, "carol") as carol, _client(server, "root", admin=True) as admin:
        sid = carol.post("/v1/sessions", json={"agent_type": "tutor"}).json()["session_id"]
        carol.post(f"/v1/sessions/{sid}/complete", json={})
        time.sleep(1.1)
        assert carol.get("/v1/retention").status_code == 403
        dry = admin.get("/v1/retention").json()
        assert dry["dry_run"] is True and sid in dry["rules"][0]["session_ids"]
        assert carol.get(f"/v1/sessions/{sid}").status_code == 200
        applied = admin.post("/v1/retention").json()
        assert applied["dry_run"] is False and sid in applied["rules"][0]["session_ids"]
        assert carol.get(f"/v1/sessions/{sid}").status_code == 404


def test_an_encrypting_server_stores_no_plaintext_and_reads_back_exactly(
    server: LiveServer, folder: Path
) -> None:
    with _client(server, "dave") as dave:
        context = {"z": MARKER, "a": [1, 2.5]}
        sid = dave.post("/v1/sessions", json={"agent_type": "tutor", "context": context}).json()["session_id"]
        dave.post(f"/v1/sessions/{sid}/checkpoints", json={"name": "said", "data": {"text": MARKER}})
        assert dave.get(f"/v1/sessions/{sid}").json()["context"] == context
        assert dave.get(f"/v1/sessions/{sid}/checkpoints/1").json()["data"] == {"text": MARKER}
        refused = dave.get("/v1/export")
        assert refused.status_code == 422 and refused.json()["field"] == "decrypt"
        exported = dave.get("/v1/export", params={"decrypt": "true"})
        assert exported.status_code == 200 and MARKER in exported.text
        key = dave.headers["authorization"].removeprefix("Bearer ")
    with Client(server.url, api_key=key) as client:  # the same, as embedded: decrypt or a ValidationError
        with pytest.raises(ValidationError) as refused_error:
            client.export(io.StringIO())
        assert refused_error.value.field == "decrypt"
        lines = io.StringIO()
        assert client.export(lines, decrypt=True) == 1 and MARKER in lines.getvalue()
    raw = b"".join(path.read_bytes() for path in folder.glob("tether.db*"))
    assert sid.encode() in raw and MARKER.encode() not in raw
