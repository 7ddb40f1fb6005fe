"""The demo's verification must be able to fail: a lost or altered checkpoint is counted."""

from __future__ import annotations

from tether import SessionManager
from tether.demo.agents import STEPS, expected_digest, fingerprint, step_data
from tether.demo.report import Ack, Ledger, lost_acks, percentile, resumed_behind


def test_an_acknowledged_checkpoint_missing_from_the_store_counts_as_lost(manager: SessionManager) -> None:
    session = manager.create("tutor", "u1")
    cp = manager.checkpoint(session.session_id, "task_received", {"step": 0})
    kept = Ack(session.session_id, cp.seq, cp.name, fingerprint(cp.data), 1)
    missing = Ack(session.session_id, cp.seq + 1, "lesson_planned", fingerprint({"step": 1}), 1)
    altered = Ack(session.session_id, cp.seq, cp.name, fingerprint({"step": 99}), 1)
    unknown = Ack("no-such-session", 1, "task_received", fingerprint({}), 1)
    assert lost_acks(manager, [kept]) == 0
    assert lost_acks(manager, [kept, missing, altered, unknown]) == 3


def test_a_takeover_that_starts_before_an_acknowledged_step_is_counted() -> None:
    ledger = Ledger(acks=[Ack("s", 3, "exercise_set", "f", 1)], claims=[("s", 2, 3), ("s", 3, 2)])
    assert resumed_behind(ledger) == 1


def test_the_step_digest_depends_on_every_step() -> None:
    state: dict[str, object] = {}
    for step in range(len(STEPS["grader"])):
        if step != 2:  # skip one step, as a takeover from the wrong checkpoint would
            state = step_data("grader", step, state)
    assert state["digest"] != expected_digest("grader")


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 99) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(v) for v in range(1, 101)], 99) == 99.0
