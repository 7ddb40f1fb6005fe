"""`tether keys` and who may call: keys printed once and stored hashed, revocation on the next
request, open mode only on loopback and only until the first key exists."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.live_server import LiveServer, free_port, live_server
from tests.support import run_tether


def test_keys_are_created_once_listed_without_secrets_and_revoked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/k.db"
    created = run_tether("keys", "create", "--user", "alice", "--store", url, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("tth_") and "shown once" in created.stderr
    admin = run_tether(
        "keys", "create", "--user", "root", "--admin", "--store", url, cwd=tmp_path
    ).stdout.strip()
    listed = json.loads(run_tether("keys", "ls", "--json", "--store", url, cwd=tmp_path).stdout)
    assert [(k["user_id"], k["admin"], k["revoked_at"]) for k in listed] == [
        ("alice", False, None),
        ("root", True, None),
    ]
    assert key.split("_", 2)[2] not in json.dumps(listed) and admin.split("_", 2)[2] not in json.dumps(listed)
    with live_server(url) as server:
        me = httpx.get(server.url + "/v1/me", headers={"X-API-Key": key}).json()
        assert (me["user_id"], me["admin"], me["open_mode"]) == ("alice", False, False)
        key_id = listed[0]["key_id"]
        assert run_tether("keys", "revoke", key_id, "--store", url, cwd=tmp_path).returncode == 0
        refused = httpx.get(server.url + "/v1/me", headers=LiveServer.auth(key))
        assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert httpx.get(server.url + "/v1/me", headers=LiveServer.auth(admin)).json()["admin"] is True
    again = run_tether("keys", "revoke", key_id, "--store", url, cwd=tmp_path)
    assert again.returncode != 0 and "no active key" in again.stderr


def test_without_keys_a_loopback_server_is_open_until_the_first_key(tmp_path: Path) -> None:
    with live_server(f"sqlite:///{tmp_path}/o.db") as server:
        me = httpx.get(server.url + "/v1/me").json()
        assert (me["admin"], me["open_mode"]) == (True, True)
        assert "open mode" in server.output()
        key = server.key("alice")
        deadline = time.monotonic() + 5  # the server asks the store again within a second
        while httpx.get(server.url + "/v1/me").status_code != 401:
            assert time.monotonic() < deadline, "still open after a key was created"
            time.sleep(0.1)
        assert httpx.get(server.url + "/v1/me", headers=LiveServer.auth(key)).json()["user_id"] == "alice"


def test_a_server_bound_off_loopback_refuses_to_start_without_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    refused = run_tether(
        "serve", "--store", url, "--host", "0.0.0.0", "--port", str(free_port()), cwd=tmp_path
    )
    assert refused.returncode != 0 and "refusing to serve on 0.0.0.0 without API keys" in refused.stderr
