"""`tether supervise` through the real command: once, as JSON, several at once, and continuously."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from tests.support import run_tether, subprocess_env
from tether import ManualClock, Policies, SessionManager, State, SystemClock
from tether.stores import open_store


def expired_sessions(url: str, count: int) -> set[str]:
    """Sessions created an hour ago with the default 60 s lease: dead by the wall clock."""
    past = ManualClock(SystemClock().now() - timedelta(hours=1))
    with SessionManager(open_store(url, past)) as manager:
        return {manager.create("tutor", f"user-{i}").session_id for i in range(count)}


def test_once_times_out_expired_sessions_and_reports(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tether.db"
    (dead,) = expired_sessions(url, 1)
    with SessionManager(url) as manager:
        alive = manager.create("tutor", "user-2").session_id
    first = run_tether("supervise", "--once", "--store", url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"timed out {dead} (recoverable" in first.stdout
    assert "swept: 1 timed out (0 final, 1 recoverable), 0 newly suspect" in first.stdout
    again = run_tether("supervise", "--once", "--json", "--store", url, cwd=tmp_path)
    assert json.loads(again.stdout)["timed_out"] == []
    with SessionManager(url) as manager:
        assert manager.get(dead).state is State.FAILED
        assert manager.get(alive).state is State.ACTIVE


def test_concurrent_supervisor_commands_apply_each_timeout_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tether.db"
    ids = expired_sessions(url, 150)
    commands = [
        subprocess.Popen(
            [sys.executable, "-m", "tether", "supervise", "--once", "--json", "--store", url],
            cwd=tmp_path,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [c.communicate(timeout=120)[0] for c in commands]
    assert [c.returncode for c in commands] == [0, 0, 0]
    counts = Counter(sid for out in outputs for sid in json.loads(out)["timed_out"])
    assert set(counts) == ids and set(counts.values()) == {1}
    with SessionManager(url) as manager:
        assert all(len(manager.checkpoints(sid, name="session_failed")) == 1 for sid in ids)


def test_continuous_supervisor_reports_until_interrupted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tether.db"
    with SessionManager(url) as manager:
        manager.store.migrate()
    command = subprocess.Popen(
        [sys.executable, "-m", "tether", "supervise", "--interval", "0.05", "--store", url],
        cwd=tmp_path,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert command.stdout is not None
    (dead,) = expired_sessions(url, 1)
    line = command.stdout.readline()
    command.send_signal(signal.SIGINT)
    command.wait(30)
    assert line.startswith(f"timed out {dead}")
    assert command.returncode == 130


def test_policies_from_tether_toml_decide_final_or_recoverable(tmp_path: Path) -> None:
    (tmp_path / "tether.toml").write_text(
        '[policies.default]\nmax_recoveries = 2\n\n[policies.grader]\non_timeout = "fail"\n'
    )
    url = f"sqlite:///{tmp_path}/tether.db"
    past = ManualClock(SystemClock().now() - timedelta(hours=1))
    with SessionManager(open_store(url, past)) as manager:
        tutor = manager.create("tutor", "user-1").session_id
        grader = manager.create("grader", "user-1").session_id
    swept = run_tether("supervise", "--once", "--json", "--store", url, cwd=tmp_path)
    assert swept.returncode == 0, swept.stderr
    report = json.loads(swept.stdout)
    assert (report["recoverable"], report["final"]) == ([tutor], [grader])


def test_with_redis_leases_the_supervisor_reads_expiries_from_redis(tmp_path: Path) -> None:
    import redis
    from tests.conftest import REDIS_URL, service_missing
    from tether.stores.redis.liveness import RedisLivenessStore, default_prefix

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        service_missing("Redis", str(exc))
    (tmp_path / "tether.toml").write_text("[policies.default]\ntimeout = 4.0\n")
    url = f"sqlite:///{tmp_path}/tether.db"
    env = subprocess_env(TETHER_POLICY_FILE=str(tmp_path / "tether.toml"))
    command = ("supervise", "--once", "--json", "--store", url, "--redis", REDIS_URL)
    # Never flushed: SQLite keeps the lease of the session's creation, only Redis sees the beats.
    leases = RedisLivenessStore(open_store(url), REDIS_URL, flush_interval=3600)
    try:
        with SessionManager(leases, policies=Policies.from_toml(tmp_path / "tether.toml")) as m:
            session = m.create("tutor", "user-1")
            for _ in range(16):  # 4.8 s: past the lease SQLite holds, alive in Redis
                time.sleep(0.3)
                m.heartbeat(session.session_id, epoch=session.epoch)
            alive = run_tether(*command, cwd=tmp_path, env=env)
            assert json.loads(alive.stdout)["timed_out"] == [], alive.stderr
            time.sleep(4.1)
            dead = run_tether(*command, cwd=tmp_path, env=env)
            assert json.loads(dead.stdout)["timed_out"] == [session.session_id], dead.stderr
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{default_prefix(url)}*", count=1000))
        if keys:
            client.delete(*keys)
