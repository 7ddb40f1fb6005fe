"""`tether fork`, `tether retention` and `tether export --decrypt` end to end, in a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support import run_tether, subprocess_env
from tether import FernetCodec, SessionManager

KEY = FernetCodec.generate_key()


def _tether(tmp_path: Path, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = subprocess_env()
    if key is not None:
        env["TETHER_ENCRYPTION_KEY"] = key
    return run_tether(*args, "--store", f"sqlite:///{tmp_path}/tether.db", cwd=tmp_path, env=env)


def test_fork_at_a_seq_prints_the_new_session(tmp_path: Path) -> None:
    with SessionManager(f"sqlite:///{tmp_path}/tether.db") as manager:
        source = manager.create("tutor", "alice").session_id
        for n in range(4):
            manager.checkpoint(source, f"step-{n}", {"n": n})
    result = _tether(tmp_path, "fork", source, "--at", "2", "--json")
    assert result.returncode == 0, result.stderr
    forked = json.loads(result.stdout)
    assert forked["state"] == "active" and forked["last_seq"] == 2
    assert forked["metadata"]["forked_from"] == {"session_id": source, "seq": 2}
    assert _tether(tmp_path, "fork", source, "--at", "9").returncode == 2  # past the last seq
    assert _tether(tmp_path, "fork", "missing").returncode == 3


def test_retention_dry_run_then_apply(tmp_path: Path) -> None:
    (tmp_path / "tether.toml").write_text('[policies.default]\nretain_completed = "1s"\n')
    with SessionManager(f"sqlite:///{tmp_path}/tether.db") as manager:
        done = manager.create("tutor", "alice").session_id
        manager.complete(done)
        live = manager.create("tutor", "alice").session_id
    subprocess.run(["sleep", "1.1"], check=True)
    dry = _tether(tmp_path, "retention", "--dry-run", "--json")
    assert json.loads(dry.stdout)["rules"][0]["session_ids"] == [done]
    assert "would remove 1 session (completed" in _tether(tmp_path, "retention", "--dry-run").stdout
    assert "removed 1 session" in _tether(tmp_path, "retention").stdout
    listed = json.loads(_tether(tmp_path, "ls", "--json").stdout)["sessions"]
    assert [s["session_id"] for s in listed] == [live]


def test_export_of_encrypted_sessions_needs_decrypt(tmp_path: Path) -> None:
    with SessionManager(f"sqlite:///{tmp_path}/tether.db", codec=FernetCodec(KEY)) as manager:
        manager.create("tutor", "alice", context={"secret": "s3cr3t"})
    refused = _tether(tmp_path, "export", "out.jsonl", key=KEY)
    assert refused.returncode == 2 and "decrypt" in refused.stderr
    assert not (tmp_path / "out.jsonl").exists()
    assert _tether(tmp_path, "export", "out.jsonl", key=None).returncode == 2  # no key: still sealed
    assert _tether(tmp_path, "export", "out.jsonl", "--decrypt", key=KEY).returncode == 0
    assert json.loads((tmp_path / "out.jsonl").read_text())["context"] == {"secret": "s3cr3t"}
