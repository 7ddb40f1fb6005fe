"""`tether demo` end to end: real worker processes, SIGKILLed at random, lose nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REDIS_URL, service_missing
from tests.support import run_tether


def test_demo_crashes_workers_and_loses_no_acknowledged_checkpoint(tmp_path: Path) -> None:
    result = run_tether(
        "demo",
        *("--sessions", "10", "--workers", "4", "--kill-rate", "3", "--seed", "3"),
        *("--timeout", "0.5", "--step", "0.05", "--json"),
        *("--store", f"sqlite:///{tmp_path}/demo.db"),
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["sessions"] == 10 + 2 * 2  # two orchestrators, two children each
    assert report["completed"] == report["sessions"]
    assert report["checkpoints_acknowledged"] > 0
    assert report["checkpoints_lost"] == 0
    assert report["resumed_behind_last_ack"] == 0
    assert report["crashes"] + report["freezes"] >= 1
    assert report["takeovers"] >= 1


def test_demo_with_leases_and_events_in_redis_loses_nothing_either(tmp_path: Path) -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        service_missing("Redis", str(exc))
    result = run_tether(
        "demo",
        *("--sessions", "8", "--workers", "3", "--kill-rate", "3", "--seed", "5"),
        *("--timeout", "0.5", "--step", "0.05", "--json", "--redis", REDIS_URL, "--events", REDIS_URL),
        *("--store", f"sqlite:///{tmp_path}/demo.db"),
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["leases"] == REDIS_URL
    assert report["ok"] is True
    assert report["completed"] == report["sessions"]
    assert report["checkpoints_lost"] == 0
    assert report["takeovers"] >= 1
    # A checkpoint's event is published before `checkpoint()` returns, hence before its ack.
    assert report["events_received"] >= report["checkpoints_acknowledged"]


def test_demo_refuses_a_store_its_worker_processes_cannot_share(tmp_path: Path) -> None:
    result = run_tether("demo", "--store", "memory://", cwd=tmp_path)
    assert result.returncode == 6
    assert "separate processes" in result.stderr


def test_demo_prints_its_report_for_people(tmp_path: Path) -> None:
    result = run_tether(
        "demo",
        *("--sessions", "5", "--workers", "2", "--kill-rate", "0", "--step", "0.01"),
        *("--store", f"sqlite:///{tmp_path}/demo.db"),
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "nothing acknowledged was lost" in result.stdout
    assert "7 of 7" in result.stdout  # the fifth session is an orchestrator: two children
