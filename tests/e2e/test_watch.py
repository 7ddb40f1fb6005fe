"""`tether watch`: the live table of sessions, as a user runs it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REDIS_URL, service_missing
from tests.support import run_tether, subprocess_env
from tether import SessionManager
from tether.core.policy import Policies, Policy
from tether.events.bus import bridge


def _fleet(url: str) -> dict[str, str]:
    """One session of each liveness, plus a paused and a completed one."""
    with SessionManager(url, policies=Policies(Policy(timeout=600)), worker_id="w-live") as manager:
        healthy = manager.create("tutor", "alice")
        manager.heartbeat(healthy.session_id, epoch=1, phase="llm_call")
        done = manager.create("grader", "bob")
        manager.checkpoint(done.session_id, "scores_computed", {"score": 9}, epoch=1)
        manager.complete(done.session_id, epoch=1)
    with SessionManager(url, policies=Policies(Policy(timeout=0.2)), worker_id="w-dead") as manager:
        dead = manager.create("alert", "carol")
    time.sleep(0.3)
    return {"healthy": healthy.session_id, "done": done.session_id, "dead": dead.session_id}


def test_watch_once_shows_liveness_phase_checkpoints_and_owner(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/watch.db"
    ids = _fleet(url)
    result = run_tether("watch", "--once", "--store", url, cwd=tmp_path, env=subprocess_env(COLUMNS="200"))
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:] if line.strip()}
    assert rows[ids["healthy"]][1:5] == ["tutor", "alice", "active", "healthy"]
    assert "llm_call" in rows[ids["healthy"]]
    assert "1/w-live" in rows[ids["healthy"]]  # epoch/owner, as `tether ls` prints it
    assert rows[ids["dead"]][3:5] == ["active", "dead"]
    assert rows[ids["done"]][3:5] == ["completed", "-"]
    assert "2" in rows[ids["done"]]  # the checkpoint and session_completed
    assert "2 active" in result.stdout and "1 completed" in result.stdout


def test_watch_filters_by_user(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/watch.db"
    ids = _fleet(url)
    result = run_tether("watch", "--once", "--user", "carol", "--store", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ids["dead"] in result.stdout
    assert ids["healthy"] not in result.stdout


def test_watch_refreshes_until_interrupted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/watch.db"
    ids = _fleet(url)
    process = subprocess.Popen(
        [sys.executable, "-m", "tether", "watch", "--interval", "0.2", "--store", url],
        cwd=tmp_path,
        env=subprocess_env(COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)
    with SessionManager(url, worker_id="w-late") as manager:
        late = manager.create("orchestrator", "dave")
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert ids["healthy"] in out
    assert late.session_id in out  # appeared on a later refresh


def test_watch_redraws_on_a_bridged_event_without_waiting_for_the_next_poll(tmp_path: Path) -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        service_missing("Redis", str(exc))
    url = f"sqlite:///{tmp_path}/watch.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "tether", "watch", "--interval", "600", "--events", REDIS_URL, "--store", url],
        cwd=tmp_path,
        env=subprocess_env(COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Pub/sub keeps no history, and a loaded machine may take seconds to start the watch: keep
    # publishing, so events arrive once it listens; the poll is 10 minutes away either way.
    with SessionManager(url, worker_id="w-remote") as manager, bridge(manager.events, REDIS_URL, url):
        for n in range(12):
            remote = manager.create("tutor", f"erin-{n}")
            time.sleep(0.5)
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert remote.session_id in out  # only an event could have redrawn the table with the last one
