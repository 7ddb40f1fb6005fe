"""The simulated agents of the demo: the seed's five agent types, each a fixed list of steps.

An agent's whole progress is in its checkpoints: step `i` writes a checkpoint named after the step
whose data carries `step=i` and a running `state`, so a worker that takes the session over finds
the newest step checkpoint and continues with step `i + 1`. Nothing lives only in worker memory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

STEPS: dict[str, tuple[str, ...]] = {
    "tutor": ("task_received", "lesson_planned", "explanation_given", "exercise_set", "feedback_given"),
    "grader": ("submission_loaded", "rubric_applied", "scores_computed", "comments_written"),
    "quality-judge": ("answer_loaded", "criteria_checked", "verdict_drafted", "verdict_final"),
    "alert": ("signal_received", "severity_assessed", "recipients_notified"),
    "orchestrator": ("plan_made", "children_spawned", "results_collected", "summary_written"),
}
AGENT_TYPES = tuple(STEPS)

# Steps during which the agent "calls a model": it announces the silence in its heartbeat.
LLM_STEPS = frozenset({"explanation_given", "comments_written", "verdict_drafted", "summary_written"})

# How many child sessions an orchestrator delegates to, and of which types.
CHILD_TYPES = ("grader", "quality-judge")


@dataclass(frozen=True, slots=True)
class Job:
    """A session to start: what the dispatcher hands an idle worker."""

    session_id: str
    agent_type: str
    user_id: str
    parent_session_id: str | None = None


def step_data(job_type: str, step: int, previous: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint data of step `step`: the running state plus a digest chaining the steps.

    The digest makes every step depend on the one before it, so a takeover that resumed from the
    wrong checkpoint would produce a different final digest than an uninterrupted run.
    """
    name = STEPS[job_type][step]
    chain = hashlib.sha256(f"{previous.get('digest', '')}|{name}".encode()).hexdigest()[:16]
    return {"step": step, "digest": chain, "tokens": previous.get("tokens", 0) + 100 * (step + 1)}


def expected_digest(agent_type: str) -> str:
    """The digest an uninterrupted run of this agent type ends with."""
    state: dict[str, Any] = {}
    for step in range(len(STEPS[agent_type])):
        state = step_data(agent_type, step, state)
    return str(state["digest"])


def children_of(job: Job) -> list[Job]:
    """The sessions an orchestrator delegates to; ids are derived, so a re-run spawns the same ones."""
    return [
        Job(f"{job.session_id}.{i}", child_type, job.user_id, job.session_id)
        for i, child_type in enumerate(CHILD_TYPES)
    ]


def fingerprint(data: dict[str, Any]) -> str:
    """A stable digest of checkpoint data, to compare what a worker wrote with what the store has."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
