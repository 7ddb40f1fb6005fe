"""The `tether` command end to end: a real subprocess on a SQLite file the library wrote."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support import SEED_FIXTURES, load_seed_module, run_tether, seed_fixture, subprocess_env
from tether import ManualClock, SessionManager


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/tether.db"


@pytest.fixture
def library(url: str) -> Iterator[SessionManager]:
    with SessionManager(url, worker_id="worker-1") as manager:
        yield manager


def tether(tmp_path: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_tether(*args, cwd=tmp_path, input=input)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a failed command: exactly one line starting with 'error: '."""
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# -- reading -----------------------------------------------------------------------------------
def test_ls_shows_sessions_created_by_the_library(tmp_path: Path, url: str, library: SessionManager) -> None:
    a = library.create("tutor", "alice")
    b = library.create("grader", "bob")
    library.checkpoint(b.session_id, "graded", {"score": 7})
    library.complete(b.session_id)

    table = ok(tether(tmp_path, "ls", "--store", url))
    assert a.session_id in table and b.session_id in table
    assert "worker-1" in table and "healthy" in table

    listed = as_json(tether(tmp_path, "ls", "--store", url, "--user", "bob", "--json"))
    [only] = listed["sessions"]
    assert only["session_id"] == b.session_id
    assert (only["state"], only["checkpoint_count"], only["liveness"]) == ("completed", 2, None)
    assert listed["next_cursor"] is None

    active_tutors = ["--type", "tutor", "--state", "active", "--json"]
    by_type = as_json(tether(tmp_path, "ls", "--store", url, *active_tutors))
    assert [s["session_id"] for s in by_type["sessions"]] == [a.session_id]


def test_ls_filters_children_by_parent(tmp_path: Path, url: str, library: SessionManager) -> None:
    parent = library.create("orchestrator", "alice")
    child = library.create("tutor", "alice", parent_session_id=parent.session_id)
    listed = as_json(tether(tmp_path, "ls", "--store", url, "--parent", parent.session_id, "--json"))
    assert [s["session_id"] for s in listed["sessions"]] == [child.session_id]


def test_ls_pages_through_every_session_with_the_cursor(
    tmp_path: Path, url: str, library: SessionManager
) -> None:
    created = [library.create("tutor", "alice").session_id for _ in range(5)]
    seen: list[str] = []
    cursor: list[str] = []
    while True:
        page = as_json(tether(tmp_path, "ls", "--store", url, "--limit", "2", "--json", *cursor))
        seen += [s["session_id"] for s in page["sessions"]]
        if page["next_cursor"] is None:
            break
        cursor = ["--cursor", page["next_cursor"]]
    assert seen == list(reversed(created))

    first = ok(tether(tmp_path, "ls", "--store", url, "--limit", "2"))
    assert "more: --cursor " in first


def test_show_prints_every_field_and_the_last_checkpoint(
    tmp_path: Path, url: str, library: SessionManager
) -> None:
    s = library.create("tutor", "alice", context={"course": "algebra"}, metadata={"tier": "gold"})
    library.checkpoint(s.session_id, "task_received", {"task": 42})
    library.pause(s.session_id)

    text = ok(tether(tmp_path, "show", s.session_id, "--store", url))
    for expected in (s.session_id, "tutor", "alice", "paused", '{"course":"algebra"}', "session_paused"):
        assert expected in text

    shown = as_json(tether(tmp_path, "show", s.session_id, "--store", url, "--json"))
    assert shown["state"] == "paused"
    assert (shown["epoch"], shown["owner"], shown["checkpoint_count"]) == (1, "worker-1", 2)
    assert shown["context"] == {"course": "algebra"} and shown["metadata"] == {"tier": "gold"}
    assert shown["last_checkpoint"]["name"] == "session_paused"
    assert shown["last_checkpoint"]["data"] == {"previous_state": "active"}


def test_checkpoints_lists_in_order_filters_and_pages(
    tmp_path: Path, url: str, library: SessionManager
) -> None:
    s = library.create("tutor", "alice")
    for step in range(4):
        library.checkpoint(s.session_id, "step", {"step": step})
        library.checkpoint(s.session_id, "note", {"text": f"after {step}"})

    listed = as_json(tether(tmp_path, "checkpoints", s.session_id, "--store", url, "--json"))
    assert [c["seq"] for c in listed["checkpoints"]] == list(range(1, 9))
    assert listed["next_after"] is None

    steps_after_2 = ["--name", "step", "--after", "2", "--json"]
    steps = as_json(tether(tmp_path, "checkpoints", s.session_id, "--store", url, *steps_after_2))
    assert [(c["seq"], c["data"]["step"]) for c in steps["checkpoints"]] == [(3, 1), (5, 2), (7, 3)]

    page = as_json(tether(tmp_path, "checkpoints", s.session_id, "--store", url, "--limit", "3", "--json"))
    assert page["next_after"] == 3

    table = ok(tether(tmp_path, "checkpoints", s.session_id, "--store", url))
    assert '{"text":"after 3"}' in table


# -- export and import -------------------------------------------------------------------------
def populate(library: SessionManager) -> None:
    a = library.create("tutor", "alice", context={"lang": "de"})
    library.checkpoint(a.session_id, "task_received", {"task": 1, "text": "grüße"})
    library.complete(a.session_id, {"answer": 2})
    b = library.create("grader", "bob")
    library.pause(b.session_id)
    library.create("tutor", "alice", metadata={"priority": "high"})


def test_export_import_round_trip_through_a_file(tmp_path: Path, url: str, library: SessionManager) -> None:
    populate(library)
    dump = tmp_path / "sessions.jsonl"
    assert "exported 3 sessions" in ok(tether(tmp_path, "export", str(dump), "--store", url))

    copy = f"sqlite:///{tmp_path}/copy.db"
    assert "imported 3 sessions" in ok(tether(tmp_path, "import", str(dump), "--store", copy))
    again = tmp_path / "again.jsonl"
    ok(tether(tmp_path, "export", str(again), "--store", copy))
    assert again.read_text(encoding="utf-8") == dump.read_text(encoding="utf-8")

    alice_only = tmp_path / "alice.jsonl"
    ok(tether(tmp_path, "export", str(alice_only), "--store", url, "--user", "alice"))
    users = {json.loads(line)["user_id"] for line in alice_only.read_text(encoding="utf-8").splitlines()}
    assert users == {"alice"}


def test_export_to_stdout_and_import_from_stdin(tmp_path: Path, url: str, library: SessionManager) -> None:
    populate(library)
    exported = tether(tmp_path, "export", "-", "--store", url)
    lines = ok(exported).splitlines()
    assert len(lines) == 3 and "exported 3 sessions" in exported.stderr

    copy = f"sqlite:///{tmp_path}/copy.db"
    ok(tether(tmp_path, "import", "-", "--store", copy, input=exported.stdout))
    assert ok(tether(tmp_path, "export", "-", "--store", copy)).splitlines() == lines


def test_import_stops_at_an_existing_id_unless_told_to_skip(
    tmp_path: Path, url: str, library: SessionManager
) -> None:
    populate(library)
    dump = tmp_path / "sessions.jsonl"
    ok(tether(tmp_path, "export", str(dump), "--store", url))

    refused = tether(tmp_path, "import", str(dump), "--store", url)
    assert refused.returncode == 4
    assert "--skip-existing" in one_error_line(refused)

    skipped = ok(tether(tmp_path, "import", str(dump), "--store", url, "--skip-existing"))
    assert "imported 0 sessions, skipped 3 existing" in skipped


def _as_the_seed_compares(session: dict[str, Any]) -> dict[str, Any]:
    """SESSION with its timestamps as instants: equal when the seed's `from_dict` gives equal sessions."""
    return dict(
        session,
        created_at=datetime.fromisoformat(session["created_at"]),
        last_heartbeat=datetime.fromisoformat(session["last_heartbeat"]),
        checkpoints=[
            dict(cp, timestamp=datetime.fromisoformat(cp["timestamp"])) for cp in session["checkpoints"]
        ],
    )


def test_import_reads_jsonl_written_by_the_seed_module(tmp_path: Path, url: str) -> None:
    """tests/fixtures/seed/methods.jsonl: sessions the seed's own methods drove, then `to_dict()` wrote."""
    source = SEED_FIXTURES / "methods.jsonl"
    originals = {s["session_id"]: s for s in seed_fixture("methods")}
    assert "imported 3 sessions" in ok(tether(tmp_path, "import", str(source), "--store", url))

    exported = [json.loads(line) for line in ok(tether(tmp_path, "export", "-", "--store", url)).splitlines()]
    assert len(exported) == 3
    for data in exported:
        # Equal as the seed compares them: same fields, timestamps as the same instants.
        assert _as_the_seed_compares(data) == _as_the_seed_compares(originals[data["session_id"]])
    listed = as_json(tether(tmp_path, "ls", "--store", url, "--state", "failed", "--json"))
    assert [s["failure"]["error"] for s in listed["sessions"]] == ["grader crashed"]


def test_import_reads_jsonl_the_live_seed_module_writes(tmp_path: Path, url: str) -> None:
    """The same with the seed module itself (skipped without it, required in CI)."""
    seed = load_seed_module()
    berlin = timezone(timedelta(hours=1))
    finished = seed.AgentSession(agent_type="tutor", user_id="alice", context={"topic": "fractions"})
    finished.checkpoint("task_received", {"task": "1/2 + 1/3"})
    finished.pause()
    finished.resume()
    finished.complete({"answer": "5/6"})
    failed = seed.AgentSession(
        agent_type="grader",
        user_id="bob",
        created_at=datetime(2026, 3, 1, 9, 30, tzinfo=berlin),
        last_heartbeat=datetime(2026, 3, 1, 9, 45, 12, 345678, tzinfo=berlin),
        metadata={"batch": 7},
    )
    failed.fail("grader crashed", {"exit": 137})
    originals = {s.session_id: s for s in (finished, failed, seed.AgentSession(agent_type="a", user_id="c"))}
    source = tmp_path / "seed.jsonl"
    source.write_text("".join(json.dumps(s.to_dict()) + "\n" for s in originals.values()), encoding="utf-8")

    assert "imported 3 sessions" in ok(tether(tmp_path, "import", str(source), "--store", url))

    exported = [json.loads(line) for line in ok(tether(tmp_path, "export", "-", "--store", url)).splitlines()]
    assert len(exported) == 3
    for data in exported:
        # Equal as the seed compares them: same fields, timestamps as the same instants.
        assert seed.AgentSession.from_dict(data) == originals[data["session_id"]]
    listed = as_json(tether(tmp_path, "ls", "--store", url, "--state", "failed", "--json"))
    assert [s["failure"]["error"] for s in listed["sessions"]] == ["grader crashed"]


def test_import_of_a_malformed_file_names_the_line(tmp_path: Path, url: str) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text("{not json}\n", encoding="utf-8")
    result = tether(tmp_path, "import", str(source), "--store", url)
    assert result.returncode == 2
    assert "line 1" in one_error_line(result)


# -- purge -------------------------------------------------------------------------------------
def test_purge_deletes_sessions_that_ended_before_the_cutoff(
    tmp_path: Path, url: str, library: SessionManager
) -> None:
    long_ago = ManualClock(datetime.now(UTC) - timedelta(days=40))
    with SessionManager(url, clock=long_ago, worker_id="old-worker") as old:
        done = old.create("tutor", "alice")
        old.complete(done.session_id)
        broken = old.create("tutor", "alice")
        old.fail(broken.session_id, "boom", final=True)
        silent = old.create("tutor", "alice")
    recent = library.create("tutor", "alice")
    library.complete(recent.session_id)

    declined = tether(tmp_path, "purge", "--older-than", "30d", "--store", url, input="n\n")
    assert declined.returncode == 1 and one_error_line(declined) == "error: aborted"
    assert len(as_json(tether(tmp_path, "ls", "--store", url, "--json"))["sessions"]) == 4

    purged = ok(tether(tmp_path, "purge", "--older-than", "30d", "--yes", "--store", url))
    assert "purged 2 sessions" in purged
    left = as_json(tether(tmp_path, "ls", "--store", url, "--json"))["sessions"]
    assert {s["session_id"] for s in left} == {silent.session_id, recent.session_id}

    only_active = ["--state", "active", "--older-than", "720h", "--yes"]
    assert "purged 1 session\n" in ok(tether(tmp_path, "purge", *only_active, "--store", url))


# -- store selection and maintenance -----------------------------------------------------------
def test_the_default_store_is_tether_db_in_the_working_directory(tmp_path: Path) -> None:
    with SessionManager(f"sqlite:///{tmp_path}/tether.db") as manager:
        s = manager.create("tutor", "alice")
    assert s.session_id in ok(run_tether("ls", cwd=tmp_path, env=subprocess_env()))

    elsewhere = f"sqlite:///{tmp_path}/other.db"
    from_env = run_tether("ls", "--json", cwd=tmp_path, env=subprocess_env(TETHER_STORE_URL=elsewhere))
    assert json.loads(ok(from_env))["sessions"] == []


def test_migrate_prints_the_schema_version(tmp_path: Path, url: str) -> None:
    assert ok(tether(tmp_path, "migrate", "--store", url)).startswith("schema version ")


def test_version_and_help(tmp_path: Path) -> None:
    assert ok(tether(tmp_path, "version")).startswith("tether 0.")
    usage = ok(tether(tmp_path, "--help"))
    for command in ("ls", "show", "checkpoints", "export", "import", "purge", "migrate"):
        assert command in usage
    assert "TETHER_STORE_URL" in ok(tether(tmp_path, "ls", "--help"))  # help text is not read as markup


def test_the_installed_console_script_runs(tmp_path: Path) -> None:
    """CI installs the package, so `tether` is on PATH there; elsewhere `python -m tether` stands in."""
    script = shutil.which("tether")
    if script is None:
        result = tether(tmp_path, "--help")
    else:
        result = subprocess.run([script, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "Usage: tether" in ok(result)


# -- errors: one line on stderr, a distinct exit status, never a traceback ---------------------
@pytest.mark.parametrize("command", ["show", "checkpoints"])
def test_an_unknown_session_is_one_line_and_exit_status_3(tmp_path: Path, url: str, command: str) -> None:
    result = tether(tmp_path, command, "no-such-session", "--store", url)
    assert result.returncode == 3
    assert one_error_line(result) == "error: session 'no-such-session' not found"


@pytest.mark.parametrize(
    ("args", "status", "mentions"),
    [
        (["ls", "--store", "bogus://nowhere"], 6, "unknown store URL"),
        (["ls", "--store", "postgresql://postgres@127.0.0.1:1/none?pool_timeout=1"], 5, "unavailable"),
        (["purge", "--older-than", "30x", "--yes"], 2, "--older-than"),
        (["purge", "--yes"], 2, "--older-than"),
        (["ls", "--state", "sleeping"], 2, "--state"),
        (["ls", "--limit", "0"], 2, "limit"),
        (["ls", "--cursor", "not-a-cursor"], 2, "cursor"),
        (["frobnicate"], 2, "frobnicate"),
        (["import", "missing.jsonl"], 1, "missing.jsonl"),
    ],
)
def test_bad_input_is_one_line_and_a_distinct_exit_status(
    tmp_path: Path, url: str, args: list[str], status: int, mentions: str
) -> None:
    store = [] if "--store" in args else ["--store", url]
    result = tether(tmp_path, *args, *store)
    assert result.returncode == status, result.stderr
    assert mentions in one_error_line(result)
