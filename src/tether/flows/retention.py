"""Retention: which ended sessions the policies let go, and a pass that removes them in batches.

A pass asks the store to `retire` one bounded batch at a time (one short transaction each), so a
pass over a large backlog never holds the store for long: appends and heartbeats interleave
between batches. Every batch is idempotent across supervisors: the store removes each session once
and reports only what this caller removed, so counters and events from several supervisors add up
to exactly what was removed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tether.core.model import State
from tether.core.policy import Policies, Policy
from tether.core.retention import RetentionReport, RetentionRule, Retired
from tether.flows.runner import Flow, call
from tether.stores.base import Store

# Sessions per batch: each is removed with all its checkpoints in the batch's transaction.
BATCH = 100
# Batches per pass; a larger backlog is left for the next pass.
MAX_BATCHES = 50


def rules(policies: Policies, now: datetime) -> list[RetentionRule]:
    """One rule per agent type and ended state that has a retention period. The default policy's
    rules cover every type without a policy of its own."""
    own_types = frozenset(policies.by_type)
    found = list(_rules_of(policies.default, now, None, own_types))
    for agent_type, policy in sorted(policies.by_type.items()):
        found.extend(_rules_of(policy, now, agent_type, frozenset()))
    return found


def _rules_of(
    policy: Policy, now: datetime, agent_type: str | None, other_types: frozenset[str]
) -> list[RetentionRule]:
    periods = ((State.COMPLETED, policy.retain_completed), (State.FAILED, policy.retain_failed))
    return [
        RetentionRule(state, now - timedelta(seconds=seconds), agent_type, other_types)
        for state, seconds in periods
        if seconds is not None
    ]


def enforce(
    policies: Policies, *, dry_run: bool, batch: int = BATCH, max_batches: int = MAX_BATCHES
) -> Flow[RetentionReport]:
    """Apply every rule as of the store's time now, `batch` sessions at a time, at most
    `max_batches` batches per rule; a dry run lists what the first `batch * max_batches` would be."""
    now = yield from call(Store.now)
    retired: list[Retired] = []
    for rule in rules(policies, now):
        if dry_run:
            ids = yield from call(Store.retirable, rule, batch * max_batches)
        else:
            ids = yield from _retire(rule, batch, max_batches)
        if ids:
            retired.append(Retired(rule, tuple(ids)))
    return RetentionReport(dry_run, tuple(retired))


def _retire(rule: RetentionRule, batch: int, max_batches: int) -> Flow[list[str]]:
    removed: list[str] = []
    for _ in range(max_batches):
        ids = yield from call(Store.retire, rule, batch)
        removed.extend(ids)
        if len(ids) < batch:  # the backlog is done (or another supervisor is taking the rest)
            break
    return removed
