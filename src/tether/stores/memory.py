"""`memory://`: everything in dicts, for tests and throwaway agents. Nothing survives the process."""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any

from tether import lifecycle
from tether.core.clock import Clock
from tether.core.codec import encode
from tether.core.errors import ConflictError, NotFound, TetherError
from tether.core.keys import ApiKey
from tether.core.model import (
    LIVE_STATES,
    Checkpoint,
    Liveness,
    NewCheckpoint,
    Page,
    Session,
    SessionCount,
    SessionFilter,
    State,
)
from tether.core.retention import RetentionRule
from tether.lifecycle import Write
from tether.stores.base import (
    Beat,
    Store,
    claim_order,
    decode_cursor,
    explain_rejected_append,
    explain_rejected_beat,
    page_of,
    to_micros,
)

LIVENESS_FIELDS = (
    "last_heartbeat",
    "lease_expires_at",
    "suspect_at",
    "phase",
    "heartbeat_timeout",
    "suspect_after",
)


class MemoryStore(Store):
    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.url = "memory://"
        self._lock = threading.RLock()
        self._sessions: dict[str, Session] = {}
        self._checkpoints: dict[str, list[Checkpoint]] = {}
        self._last_by_name: dict[tuple[str, str], Checkpoint] = {}
        self._keys: dict[str, ApiKey] = {}

    # -- reads -------------------------------------------------------------------------------
    def get(self, session_id: str) -> Session:
        with self._lock:
            try:
                return self._sessions[session_id]
            except KeyError:
                raise NotFound(session_id) from None

    def query(self, where: SessionFilter, limit: int, cursor: str | None = None) -> Page[Session]:
        with self._lock:
            rows = [s for s in self._sessions.values() if lifecycle.matches(s, where)]
        rows.sort(key=lambda s: (to_micros(s.created_at), s.session_id), reverse=True)
        if cursor is not None:
            after = decode_cursor(cursor)
            rows = [s for s in rows if (to_micros(s.created_at), s.session_id) < after]
        return page_of(rows[: limit + 1], limit)

    def checkpoints(
        self, session_id: str, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> list[Checkpoint]:
        with self._lock:
            history = self._history(session_id)
            start = bisect.bisect_right(history, after_seq, key=_seq)
            selected = (c for c in history[start:] if name is None or c.name == name)
            out: list[Checkpoint] = []
            for cp in selected:
                if len(out) == limit:
                    break
                out.append(_copy(cp))
            return out

    def newest_checkpoints(
        self, session_id: str, limit: int, before_seq: int | None = None
    ) -> list[Checkpoint]:
        with self._lock:
            history = self._history(session_id)
            end = len(history) if before_seq is None else bisect.bisect_left(history, before_seq, key=_seq)
            return [_copy(cp) for cp in reversed(history[max(0, end - limit) : end])]

    def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        with self._lock:
            history = self._history(session_id)
            cp = history[-1] if name is None and history else self._last_by_name.get((session_id, name or ""))
            return _copy(cp) if cp is not None else None

    def last_checkpoint_of(self, session_id: str, names: Sequence[str]) -> Checkpoint | None:
        with self._lock:
            self._history(session_id)
            found = (self._last_by_name.get((session_id, name)) for name in names)
            newest = max(filter(None, found), key=_seq, default=None)
            return None if newest is None else _copy(newest)

    def claimable(self, agent_types: frozenset[str] | None, limit: int) -> list[Session]:
        now = self.now()
        with self._lock:
            found = [
                s
                for s in self._sessions.values()
                if (agent_types is None or s.agent_type in agent_types) and _claimable(s, now)
            ]
        found.sort(key=claim_order)
        return found[:limit]

    # -- writes ------------------------------------------------------------------------------
    def create(self, session: Session, checkpoints: Sequence[NewCheckpoint] = ()) -> Session:
        with self._lock:
            if session.session_id in self._sessions:
                raise ConflictError(session.session_id, f"session {session.session_id!r} exists")
            self._checkpoints[session.session_id] = []
            stored = replace(_as_stored(session), last_seq=0)
            self._sessions[session.session_id] = stored
            for cp in checkpoints:
                self._append(session.session_id, cp)
            return self._sessions[session.session_id]

    def append(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        with self._lock:
            session = self._sessions.get(session_id)
            if (
                session is None
                or session.state is not State.ACTIVE
                or (epoch is not None and epoch != session.epoch)
            ):
                raise explain_rejected_append(session, session_id, epoch)
            return _copy(self._append(session_id, checkpoint))

    def apply(self, write: Write) -> Session:
        with self._lock:
            current = self.get(write.before.session_id)
            if current.version != write.before.version or write.expected_last_seq not in (
                None,
                current.last_seq,
            ):
                raise ConflictError(
                    current.session_id,
                    expected_version=write.before.version,
                    actual_version=current.version,
                )
            after = write.after
            if not write.renews_lease:
                after = replace(after, **{f: getattr(current, f) for f in LIVENESS_FIELDS})
            self._sessions[current.session_id] = replace(_as_stored(after), last_seq=current.last_seq)
            if write.checkpoint is not None:
                self._append(current.session_id, write.checkpoint)
            return self._sessions[current.session_id]

    def heartbeat(self, beats: Sequence[Beat]) -> list[TetherError | None]:
        now = self.now().astimezone(UTC)
        results: list[TetherError | None] = []
        with self._lock:
            for beat in beats:
                session = self._sessions.get(beat.session_id)
                if session is None or not lifecycle.heartbeat_accepted(session, beat.epoch, now):
                    results.append(explain_rejected_beat(session, beat, now))
                    continue
                suspect_at, lease = lifecycle.deadlines(
                    now, session.heartbeat_timeout, session.suspect_after, beat.expect_silence
                )
                self._sessions[beat.session_id] = replace(
                    session,
                    last_heartbeat=now,
                    phase=beat.phase,
                    suspect_at=suspect_at,
                    lease_expires_at=lease,
                )
                results.append(None)
        return results

    def delete(self, session_id: str) -> None:
        with self._lock:
            self.get(session_id)
            self._drop(session_id)

    def purge(self, ended_before: datetime, states: frozenset[State]) -> int:
        with self._lock:
            doomed = [
                s.session_id
                for s in self._sessions.values()
                if s.state in states and _last_activity(s) < ended_before
            ]
            for session_id in doomed:
                self._drop(session_id)
            return len(doomed)

    def fork(self, session: Session, source_id: str, at_seq: int) -> Session:
        with self._lock:
            copied = self._history(source_id)[:at_seq]
            if session.session_id in self._sessions:
                raise ConflictError(session.session_id, f"session {session.session_id!r} exists")
            sid = session.session_id
            history = [replace(cp, session_id=sid) for cp in copied]
            self._checkpoints[sid] = history
            self._last_by_name.update(((sid, cp.name), cp) for cp in history)
            stored = replace(_as_stored(session), last_seq=history[-1].seq if history else 0)
            self._sessions[sid] = stored
            return stored

    def retirable(self, rule: RetentionRule, limit: int) -> list[str]:
        with self._lock:
            parents = {s.parent_session_id for s in self._sessions.values() if s.state in LIVE_STATES}
            found = [s for s in self._sessions.values() if covers(s, rule) and s.session_id not in parents]
        found.sort(key=lambda s: (to_micros(s.created_at), s.session_id))
        return [s.session_id for s in found[:limit]]

    def retire(self, rule: RetentionRule, limit: int) -> list[str]:
        with self._lock:
            doomed = self.retirable(rule, limit)
            for session_id in doomed:
                self._drop(session_id)
            return doomed

    def erase_user(self, user_id: str) -> int:
        with self._lock:
            doomed = [s.session_id for s in self._sessions.values() if s.user_id == user_id]
            for session_id in doomed:
                self._drop(session_id)
            return len(doomed)

    def add_api_key(self, key: ApiKey) -> None:
        with self._lock:
            if key.key_id in self._keys:
                raise ConflictError(key.key_id, f"API key {key.key_id!r} exists")
            self._keys[key.key_id] = replace(key, created_at=key.created_at.astimezone(UTC))

    def get_api_key(self, key_id: str) -> ApiKey | None:
        with self._lock:
            return self._keys.get(key_id)

    def list_api_keys(self) -> list[ApiKey]:
        with self._lock:
            return sorted(self._keys.values(), key=lambda k: (k.created_at, k.key_id))

    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None or key.revoked_at is not None:
                return False
            self._keys[key_id] = replace(key, revoked_at=at.astimezone(UTC))
            return True

    def count_sessions(self, now: datetime, user_id: str | None = None) -> list[SessionCount]:
        groups: dict[tuple[State, str, Liveness | None], list[datetime]] = {}
        with self._lock:
            for s in self._sessions.values():
                if user_id is None or s.user_id == user_id:
                    groups.setdefault((s.state, s.agent_type, s.liveness(now)), []).append(s.last_heartbeat)
        return [SessionCount(*group, len(beats), min(beats)) for group, beats in groups.items()]

    def migrate(self) -> int:
        return 1

    def close(self) -> None:
        """Nothing to release."""

    # -- internals ---------------------------------------------------------------------------
    def _history(self, session_id: str) -> list[Checkpoint]:
        try:
            return self._checkpoints[session_id]
        except KeyError:
            raise NotFound(session_id) from None

    def _append(self, session_id: str, new: NewCheckpoint) -> Checkpoint:
        session = self._sessions[session_id]
        timestamp = new.timestamp.astimezone(UTC)
        cp = Checkpoint(session_id, session.last_seq + 1, new.name, timestamp, json.loads(new.data_json))
        self._checkpoints[session_id].append(cp)
        self._last_by_name[(session_id, new.name)] = cp
        self._sessions[session_id] = replace(session, last_seq=cp.seq)
        return cp

    def _drop(self, session_id: str) -> None:
        del self._sessions[session_id]
        for cp in self._checkpoints.pop(session_id, []):
            self._last_by_name.pop((session_id, cp.name), None)


def _as_stored(session: Session) -> Session:
    """The session as a database row gives it back: timestamps in UTC (the instant kept exactly),
    and JSON fields as their JSON text decodes (keys made strings, tuples lists, the caller's dicts
    not shared), so memory:// answers what the other stores answer."""
    values = {f.name: getattr(session, f.name) for f in fields(session)}
    stored: dict[str, Any] = {k: v.astimezone(UTC) for k, v in values.items() if isinstance(v, datetime)}
    stored["context"] = encode(session.context).copy
    stored["metadata"] = encode(session.metadata).copy
    if session.failure is not None:
        stored["failure"] = replace(session.failure, details=encode(session.failure.details).copy)
    return replace(session, **stored)


def _seq(cp: Checkpoint) -> int:
    return cp.seq


def _copy(cp: Checkpoint) -> Checkpoint:
    """Callers get their own data dict, as from a database; the stored one stays untouched."""
    return replace(cp, data=json.loads(json.dumps(cp.data)))


def _last_activity(session: Session) -> datetime:
    return session.ended_at if session.ended_at is not None else session.last_heartbeat


def _claimable(session: Session, now: datetime) -> bool:
    if session.state is State.ACTIVE:
        return lifecycle.lease_expired(session, now)
    return session.state is State.FAILED and session.failure is not None and not (session.failure.final)


def covers(s: Session, rule: RetentionRule) -> bool:
    """What a RetentionRule selects apart from live children: the reference for every store's SQL."""
    of_type = (
        s.agent_type == rule.agent_type
        if rule.agent_type is not None
        else s.agent_type not in rule.other_types
    )
    return s.state is rule.state and s.ended_at is not None and s.ended_at < rule.ended_before and of_type
