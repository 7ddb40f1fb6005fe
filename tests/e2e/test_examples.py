"""The README's first command works: the quickstart runs on the SQLite default, `tether ls` shows it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, run_tether, subprocess_env


def test_quickstart_runs_on_the_default_store_and_tether_ls_shows_its_sessions(tmp_path: Path) -> None:
    script = REPO / "examples" / "quickstart.py"
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "completed, 5 checkpoints" in run.stdout
    assert "refused: " in run.stdout and "cannot checkpoint" in run.stdout
    assert "user-1 has 4 sessions" in run.stdout
    assert (tmp_path / "tether.db").exists()

    listing = run_tether("ls", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count("user-1") == 4


def test_the_langgraph_example_pauses_for_approval_then_finishes_its_thread(tmp_path: Path) -> None:
    pytest.importorskip("langgraph.graph", reason="pip install 'tether[langgraph]'")
    script = REPO / "examples" / "langgraph_thread.py"
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "waiting for approval before: ('reply',)" in run.stdout
    assert "tether session: paused" in run.stdout
    assert "final log: ['opened', 'triaged', 'replied']" in run.stdout
    listing = run_tether("checkpoints", "ticket-42", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "langgraph.checkpoint" in listing.stdout and "session_paused" in listing.stdout


def test_the_openai_agents_example_keeps_the_conversation_across_runs(tmp_path: Path) -> None:
    pytest.importorskip("agents", reason="pip install 'tether[openai-agents]'")
    script = REPO / "examples" / "openai_agents_conversation.py"
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["#1: you said 'hello'", "#2: you said 'how are you?'", "items kept: 4"]
    listing = run_tether("ls", "--type", "openai-agents", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "conversation-7" in listing.stdout and "paused" in listing.stdout


def test_the_adk_example_keeps_events_and_user_state_in_tether(tmp_path: Path) -> None:
    pytest.importorskip("google.adk", reason="pip install 'tether[adk]'")
    script = REPO / "examples" / "adk_session.py"
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines == ["message #1", "message #2", "events kept: 4 user state: {'tier': 'gold'}"]
    listing = run_tether("ls", "--type", "adk:support", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "support/ana/chat-1" in listing.stdout and "paused" in listing.stdout


def test_the_a2a_example_finishes_its_task_across_a_restarted_handler(tmp_path: Path) -> None:
    pytest.importorskip("a2a", reason="pip install 'tether[a2a]'")
    script = REPO / "examples" / "a2a_tasks.py"
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "task TASK_STATE_INPUT_REQUIRED - what is your name?",
        "task TASK_STATE_COMPLETED - hello, Ada",
    ]
    listing = run_tether("ls", "--type", "a2a", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "completed" in listing.stdout
