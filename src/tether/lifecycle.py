"""The state machine, in one place, as pure functions.

Each function takes the session as last read and returns a `Write` (what to change, conditional on
the session still being at that version) or raises. Nothing here does I/O, so the sync manager,
the async manager and the server share every decision.

    from \\ to   active                 paused   completed  failed
    active      heartbeat, checkpoint  pause    complete   fail / heartbeat timeout
    paused      resume                 -        -          fail (abandon)
    failed      recover (claim)        -        -          -
    completed   - (terminal)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from tether.core.errors import (
    ConflictError,
    InvalidTransition,
    LeaseLost,
    NotClaimable,
)
from tether.core.model import LIVE_STATES, Failure, NewCheckpoint, Session, SessionFilter, State
from tether.core.policy import Policy
from tether.core.validation import check_error, check_flag, encode_json, encode_payload

HEARTBEAT_TIMEOUT = "heartbeat_timeout"

# The event each action emits once applied.
EVENT_KINDS = {
    "pause": "paused",
    "resume": "resumed",
    "complete": "completed",
    "fail": "failed",
    "time out": "timed_out",
    "claim": "claimed",
    "update": "updated",
}


@dataclass(frozen=True, slots=True)
class Write:
    """A decided change. Stores apply it only while the session is still at `before.version`.

    `renews_lease` says the liveness columns (heartbeat, lease, phase) change too; other writes
    leave them alone so they never race with heartbeats, which do not bump the version.
    `expected_last_seq`, when set, also requires the newest checkpoint to be that one: appends do
    not bump the version either, and a claim's audit record names the seq it resumes from.
    """

    action: str
    before: Session
    after: Session
    checkpoint: NewCheckpoint | None = None
    renews_lease: bool = False
    expected_last_seq: int | None = None


# -- the liveness rules: every store applies these (the SQL and Lua ones mirror them, and say so) --
def micros(seconds: float) -> int:
    """Whole microseconds, rounded half up, computed as floor(seconds * 1e6 + 0.5): the same double
    arithmetic the SQL and Lua mirrors do, so every store lands on the same microsecond."""
    return math.floor(seconds * 1_000_000 + 0.5)


def deadlines(
    now: datetime, timeout: float, suspect_after: float, silence: float | None = None
) -> tuple[datetime, datetime]:
    """(suspect_at, lease_expires_at) for a heartbeat, or a fresh lease, at `now`: suspect after the
    soft deadline (or the announced `silence`), expired a grace of `timeout - suspect_after` later.
    Mirrored by the `heartbeat` statements (SQLite and PostgreSQL queries.sql) and heartbeat.lua."""
    soft = suspect_after if silence is None else silence
    grace = timeout - suspect_after
    return now + timedelta(microseconds=micros(soft)), now + timedelta(microseconds=micros(soft + grace))


def lease_expired(session: Session, at: datetime) -> bool:
    """An active session's lease is over from its expiry instant on: from then its heartbeats are
    refused and it may be timed out or claimed. Mirrored by the SQL `lease_*` conditions and
    heartbeat.lua (`now >= lease`)."""
    return (
        session.state is State.ACTIVE
        and session.lease_expires_at is not None
        and session.lease_expires_at <= at
    )


def suspect(session: Session, at: datetime) -> bool:
    """An active session is suspect (or dead) from its soft deadline on."""
    return session.state is State.ACTIVE and session.suspect_at is not None and session.suspect_at <= at


def heartbeat_accepted(session: Session, epoch: int | None, now: datetime) -> bool:
    """A heartbeat counts on a paused session, or an active one whose lease has not expired, at the
    current epoch (if it names one). Mirrored by the `heartbeat` statements and heartbeat.lua."""
    if epoch is not None and epoch != session.epoch:
        return False
    return session.state is State.PAUSED or (
        session.state is State.ACTIVE and not lease_expired(session, now)
    )


def lease_fields(policy: Policy, now: datetime, silence: float | None = None) -> dict[str, Any]:
    """Liveness columns for a fresh lease at `now`; `silence` is an announced quiet period."""
    suspect_at, lease_expires_at = deadlines(now, policy.timeout, policy.soft_deadline, silence)
    return {
        "last_heartbeat": now,
        "heartbeat_timeout": policy.timeout,
        "suspect_after": policy.soft_deadline,
        "suspect_at": suspect_at,
        "lease_expires_at": lease_expires_at,
    }


def matches(session: Session, where: SessionFilter) -> bool:
    """What a SessionFilter means, field by field: the reference every store's SQL follows (the
    memory store filters with it, the Redis liveness store re-checks its overlaid rows with it)."""
    s = session
    checks = (
        where.user_id is None or s.user_id == where.user_id,
        where.agent_type is None or s.agent_type == where.agent_type,
        where.agent_types is None or s.agent_type in where.agent_types,
        where.state is None or s.state is where.state,
        where.parent_session_id is None or s.parent_session_id == where.parent_session_id,
        where.heartbeat_before is None
        or (s.state in LIVE_STATES and s.last_heartbeat < where.heartbeat_before),
        where.paused_before is None
        or (s.state is State.PAUSED and (s.state_since or s.created_at) < where.paused_before),
        where.suspect_at_or_before is None or suspect(s, where.suspect_at_or_before),
        where.lease_expired_at is None or lease_expired(s, where.lease_expired_at),
    )
    return all(checks)


def new_session(
    *,
    session_id: str,
    agent_type: str,
    user_id: str,
    owner: str | None,
    policy: Policy,
    now: datetime,
    context: dict[str, Any],
    metadata: dict[str, Any],
    parent_session_id: str | None,
) -> Session:
    return Session(
        session_id=session_id,
        agent_type=agent_type,
        user_id=user_id,
        state=State.ACTIVE,
        created_at=now,
        state_since=now,
        context=context,
        metadata=metadata,
        parent_session_id=parent_session_id,
        owner=owner,
        phase=None,
        **lease_fields(policy, now),
    )


def check_owner(session: Session, epoch: int | None) -> None:
    """Fencing: a write that names an epoch must name the current one."""
    if epoch is not None and epoch != session.epoch:
        raise LeaseLost(session.session_id, epoch, session.epoch)


def check_version(session: Session, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != session.version:
        raise ConflictError(
            session.session_id,
            expected_version=expected_version,
            actual_version=session.version,
        )


def _require(session: Session, action: str, *states: State) -> None:
    if session.state not in states:
        raise InvalidTransition(session.session_id, session.state.value, action)


def _checkpoint(name: str, now: datetime, data: dict[str, Any]) -> NewCheckpoint:
    encoded = encode_payload("data", data)
    return NewCheckpoint(name, now, encoded.text, encoded.copy)


def _transition(
    action: str,
    session: Session,
    now: datetime,
    checkpoint: NewCheckpoint | None,
    renews_lease: bool = False,
    **changes: Any,
) -> Write:
    if "state" in changes and changes["state"] != session.state:
        changes["state_since"] = now
    after = replace(session, version=session.version + 1, **changes)
    return Write(action, session, after, checkpoint, renews_lease)


def pause(session: Session, now: datetime, epoch: int | None = None) -> Write:
    check_owner(session, epoch)
    _require(session, "pause", State.ACTIVE)
    cp = _checkpoint("session_paused", now, {"previous_state": session.state.value})
    return _transition("pause", session, now, cp, state=State.PAUSED)


def resume(session: Session, policy: Policy, now: datetime, epoch: int | None = None) -> Write:
    check_owner(session, epoch)
    _require(session, "resume", State.PAUSED)
    cp = _checkpoint("session_resumed", now, {})
    return _transition(
        "resume",
        session,
        now,
        cp,
        True,
        state=State.ACTIVE,
        phase=None,
        **lease_fields(policy, now),
    )


def complete(
    session: Session, now: datetime, result: dict[str, Any] | None, epoch: int | None = None
) -> Write:
    check_owner(session, epoch)
    _require(session, "complete", State.ACTIVE)
    cp = _checkpoint("session_completed", now, {"result": result or {}})
    return _transition("complete", session, now, cp, state=State.COMPLETED, ended_at=now)


def fail(
    session: Session,
    policy: Policy,
    now: datetime,
    error: str,
    details: dict[str, Any] | None = None,
    *,
    final: bool = False,
    epoch: int | None = None,
) -> Write:
    """Fail an active or paused session. Recoverable (claimable) unless final or out of retries."""
    check_owner(session, epoch)
    check_error(error)
    check_flag("final", final)
    _require(session, "fail", State.ACTIVE, State.PAUSED)
    details = details or {}
    cp = _checkpoint("session_failed", now, {"error": error, "details": details})
    is_final = final or not policy.can_recover(session.recoveries)
    failure = Failure(error, details, is_final)
    return _transition("fail", session, now, cp, state=State.FAILED, ended_at=now, failure=failure)


def time_out(session: Session, policy: Policy, now: datetime) -> Write:
    """The supervisor's verdict on an active session whose lease has expired."""
    _require(session, "time out", State.ACTIVE)
    if session.lease_expires_at is None or not lease_expired(session, now):
        raise NotClaimable(session.session_id, "lease has not expired")
    details = {
        "owner": session.owner,
        "epoch": session.epoch,
        "phase": session.phase,
        "last_heartbeat": session.last_heartbeat.isoformat(),
        "lease_expires_at": session.lease_expires_at.isoformat(),
        "recoveries": session.recoveries,
    }
    final = not policy.can_recover(session.recoveries)
    cp = _checkpoint("session_failed", now, {"error": HEARTBEAT_TIMEOUT, "details": details})
    failure = Failure(HEARTBEAT_TIMEOUT, details, final)
    return _transition("time out", session, now, cp, state=State.FAILED, ended_at=now, failure=failure)


def claim(session: Session, policy: Policy, now: datetime, worker_id: str) -> Write:
    """Take over a session whose lease expired, or that failed recoverably; bumps the epoch."""
    if session.state is State.ACTIVE:
        if session.lease_expires_at is not None and not lease_expired(session, now):
            raise NotClaimable(session.session_id, "its lease is still alive")
        if not policy.can_recover(session.recoveries):
            raise NotClaimable(session.session_id, "its policy does not allow another recovery")
        reason = HEARTBEAT_TIMEOUT
    elif session.state is State.FAILED:
        if session.failure is None or session.failure.final:
            raise NotClaimable(session.session_id, "its failure is final")
        reason = session.failure.error
    else:
        raise NotClaimable(session.session_id, f"it is {session.state.value}")
    cp = _checkpoint(
        "session_recovered",
        now,
        {
            "previous_owner": session.owner,
            "previous_epoch": session.epoch,
            "new_owner": worker_id,
            "epoch": session.epoch + 1,
            "reason": reason,
            "resumed_from_seq": session.last_seq,
            "recovery": session.recoveries + 1,
        },
    )
    write = _transition(
        "claim",
        session,
        now,
        cp,
        True,
        state=State.ACTIVE,
        owner=worker_id,
        epoch=session.epoch + 1,
        recoveries=session.recoveries + 1,
        ended_at=None,
        failure=None,
        phase=None,
        **lease_fields(policy, now),
    )
    return replace(write, expected_last_seq=session.last_seq)


def update(
    session: Session,
    now: datetime,
    *,
    context: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    epoch: int | None = None,
) -> Write:
    """Replace context and/or metadata. Allowed while the session is live."""
    check_owner(session, epoch)
    _require(session, "update", *LIVE_STATES)
    changes: dict[str, Any] = {}
    if context is not None:
        encode_json("context", context)
        changes["context"] = context
    if metadata is not None:
        encode_json("metadata", metadata)
        changes["metadata"] = metadata
    return _transition("update", session, now, None, **changes)
