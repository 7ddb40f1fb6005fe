"""Every manager operation, once: validate, load, decide, apply, emit.

Each method returns a flow (see `tether.flows.runner`): the arguments are checked before any I/O, the
decisions come from `tether.lifecycle`, and the store calls are yielded for the manager to make.
`SessionManager` runs these flows on a `Store` and `AsyncSessionManager` awaits them on an
`AsyncStore`, so the two managers cannot drift apart. Each flow's signature and docstring are the
public method's: the front doors state their methods as these flows (`tether.front.methods`).
"""

from __future__ import annotations

import builtins
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from tether import lifecycle
from tether.core.config import Settings
from tether.core.errors import ConflictError, NotFound, TetherError, ValidationError
from tether.core.model import (
    ENDED_STATES,
    Checkpoint,
    Liveness,
    NewCheckpoint,
    Page,
    Session,
    SessionFilter,
    State,
    as_aware,
)
from tether.core.policy import Policies
from tether.core.retention import RetentionReport
from tether.core.sealing import PayloadCodec
from tether.core.validation import (
    MAX_NAME_LENGTH,
    MAX_SECONDS,
    check_counter,
    check_error,
    check_flag,
    check_limit,
    check_optional_counter,
    check_optional_cursor,
    check_optional_text,
    check_payload_limit,
    check_positive,
    check_text,
    encode_json,
    encode_payload,
)
from tether.events.bus import Event, EventBus, Subscriber
from tether.flows import retention, transfer
from tether.flows.retention import BATCH as RETENTION_BATCH
from tether.flows.retention import MAX_BATCHES as RETENTION_BATCHES
from tether.flows.runner import Flow, call
from tether.lifecycle import Write
from tether.stores.base import Beat, Store

MAX_AGE = timedelta(seconds=MAX_SECONDS)
# A write decided on a stale read is re-decided on a fresh one this many times before giving up.
MAX_DECIDE_ATTEMPTS = 8
# How many takeover candidates claim_next reads at once; losing races to other workers eats some.
CLAIM_CANDIDATES = 16

Decide = Callable[[Session, datetime], Write]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Operations:
    """The manager's settings and its operations as flows; shared by the sync and async managers."""

    def __init__(
        self,
        settings: Settings,
        policies: Policies | None = None,
        worker_id: str | None = None,
        max_payload_bytes: int | None = None,
        codec: PayloadCodec | None = None,
    ) -> None:
        self.policies = policies or settings.policies
        self.codec = codec if codec is not None else settings.codec
        self.worker_id = check_text("worker_id", default_worker_id() if worker_id is None else worker_id)
        self.max_payload_bytes = (
            settings.max_payload_bytes
            if max_payload_bytes is None
            else check_payload_limit(max_payload_bytes)
        )
        self.events = EventBus()

    # -- creating and reading ----------------------------------------------------------------
    def create(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        parent_session_id: str | None = None,
    ) -> Flow[Session]:
        """Start an active session owned by this manager's worker, at epoch 1."""
        context = {} if context is None else context
        metadata = {} if metadata is None else metadata
        encode_json("context", context, self.max_payload_bytes)
        encode_json("metadata", metadata, self.max_payload_bytes)
        session_id = check_text("session_id", str(uuid.uuid4()) if session_id is None else session_id)
        agent_type, user_id = check_text("agent_type", agent_type), check_text("user_id", user_id)
        parent_session_id = check_optional_text("parent_session_id", parent_session_id)
        now = yield from call(Store.now)
        session = lifecycle.new_session(
            session_id=session_id,
            agent_type=agent_type,
            user_id=user_id,
            owner=self.worker_id,
            policy=self.policies.for_type(agent_type),
            now=now,
            context=context,
            metadata=metadata,
            parent_session_id=parent_session_id,
        )
        created = yield from call(Store.create, session)
        self._emit(created.session_id, "created", created.created_at, None, {"owner": created.owner})
        return created

    def fork(
        self,
        session_id: str,
        at_seq: int | None = None,
        *,
        agent_type: str | None = None,
        user_id: str | None = None,
    ) -> Flow[Session]:
        """A new active session (owned by this worker) whose checkpoint log is a copy of this one's
        up to `at_seq` (default: its last), copied inside the store in one bulk insert. The fork's
        metadata records `forked_from` ({"session_id", "seq"}) and `lineage`; agent type and user
        default to the source's. The source is not changed."""
        source_id = check_text("session_id", session_id)
        at = check_optional_counter("at_seq", at_seq, 0)
        agent_type, user_id = (
            check_optional_text("agent_type", agent_type),
            check_optional_text("user_id", user_id),
        )
        source = yield from call(Store.get, source_id)
        at = source.last_seq if at is None else at
        if at > source.last_seq:
            raise ValidationError(
                "at_seq", f"is past the last checkpoint of {source_id!r} ({source.last_seq})"
            )
        metadata = fork_metadata(source, at)
        encode_json("metadata", metadata, self.max_payload_bytes)
        kind = agent_type or source.agent_type
        session = lifecycle.new_session(
            session_id=str(uuid.uuid4()),
            agent_type=kind,
            user_id=user_id or source.user_id,
            owner=self.worker_id,
            policy=self.policies.for_type(kind),
            now=(yield from call(Store.now)),
            context=source.context,
            metadata=metadata,
            parent_session_id=source.parent_session_id,
        )
        forked = yield from call(Store.fork, session, source_id, at)
        data = {"owner": forked.owner, FORKED_FROM: metadata[FORKED_FROM]}
        self._emit(forked.session_id, "created", forked.created_at, None, data)
        return forked

    def get(self, session_id: str) -> Flow[Session]:
        """The session as stored now. Raises NotFound."""
        session = yield from call(Store.get, check_text("session_id", session_id))
        return session

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_type: str | None = None,
        state: State | str | None = None,
        parent_session_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Flow[Page[Session]]:
        """Newest first; pass `page.next_cursor` back as `cursor` for the next page."""
        where = SessionFilter(
            user_id=check_optional_text("user_id", user_id),
            agent_type=check_optional_text("agent_type", agent_type),
            state=parse_state(state),
            parent_session_id=check_optional_text("parent_session_id", parent_session_id),
        )
        page = yield from call(Store.query, where, check_limit("limit", limit), check_optional_cursor(cursor))
        return page

    def stale(
        self,
        *,
        no_heartbeat_for: float | timedelta | None = None,
        paused_for: float | timedelta | None = None,
        liveness: Liveness | str | None = None,
        agent_type: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Flow[Page[Session]]:
        """Live sessions gone quiet: no heartbeat for X, paused longer than Y, `suspect` (past the
        soft deadline, dead ones included) or `dead` (lease expired). Indexed, newest first."""
        limit, cursor = check_limit("limit", limit), check_optional_cursor(cursor)
        now = yield from call(Store.now)
        where = stale_filter(
            now, no_heartbeat_for, paused_for, liveness, agent_type=agent_type, user_id=user_id
        )
        page = yield from call(Store.query, where, limit, cursor)
        return page

    def checkpoints(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> Flow[builtins.list[Checkpoint]]:
        """Checkpoints with seq > after_seq, oldest first (optionally only those with one name)."""
        found = yield from call(
            Store.checkpoints,
            check_text("session_id", session_id),
            check_counter("after_seq", after_seq, 0),
            check_limit("limit", limit),
            check_optional_text("name", name, MAX_NAME_LENGTH),
        )
        return found

    def last_checkpoint_of(self, session_id: str, names: Sequence[str]) -> Flow[Checkpoint | None]:
        """The newest checkpoint named any of `names`: which of several kinds of record came last
        (the adapters' reads, e.g. a checkpoint or a later record that retracts it)."""
        if isinstance(names, str) or not names:
            raise ValidationError("names", "must be a non-empty list of checkpoint names")
        found = yield from call(
            Store.last_checkpoint_of,
            check_text("session_id", session_id),
            [check_text("names", name, MAX_NAME_LENGTH) for name in names],
        )
        return found

    def newest_checkpoints(
        self, session_id: str, limit: int, before_seq: int | None = None
    ) -> Flow[builtins.list[Checkpoint]]:
        """Checkpoints with seq < before_seq (None: the newest), newest first: a log read back
        from its end (the adapters' newest-first reads), one query a page."""
        found = yield from call(
            Store.newest_checkpoints,
            check_text("session_id", session_id),
            check_limit("limit", limit),
            check_optional_counter("before_seq", before_seq, 1),
        )
        return found

    def last_checkpoint(self, session_id: str, name: str | None = None) -> Flow[Checkpoint | None]:
        """The newest checkpoint, or the newest with that name: where a new owner resumes."""
        found = yield from call(
            Store.last_checkpoint,
            check_text("session_id", session_id),
            check_optional_text("name", name, MAX_NAME_LENGTH),
        )
        return found

    def duration(self, session_id: str) -> Flow[timedelta]:
        """Time since creation; for an ended session, until it ended."""
        session = yield from self.get(session_id)
        return session.duration((yield from call(Store.now)))

    # -- the owner's writes ------------------------------------------------------------------
    def checkpoint(
        self,
        session_id: str,
        name: str,
        data: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
    ) -> Flow[Checkpoint]:
        """Append a checkpoint to an active session; durable when this returns."""
        session_id, name = check_text("session_id", session_id), check_text("name", name, MAX_NAME_LENGTH)
        payload = encode_payload("data", {} if data is None else data, self.max_payload_bytes)
        epoch = check_optional_counter("epoch", epoch, 1)
        new = NewCheckpoint(name, (yield from call(Store.now)), payload.text, payload.copy)
        cp = yield from call(Store.append, session_id, new, epoch)
        if self.events.active:  # the hot path: build no event nobody reads
            self._emit(session_id, "checkpoint", cp.timestamp, cp.seq, {"name": cp.name})
        return cp

    def heartbeat(
        self,
        session_id: str,
        *,
        epoch: int | None = None,
        phase: str | None = None,
        expect_silence: float | None = None,
    ) -> Flow[None]:
        """Extend the lease. `expect_silence` (seconds) announces a long quiet phase."""
        error = (yield from self.heartbeats([Beat(session_id, epoch, phase, expect_silence)]))[0]
        if error is not None:
            raise error

    def heartbeats(self, beats: Sequence[Beat]) -> Flow[builtins.list[TetherError | None]]:
        """Many heartbeats in one durable batch; one result per beat (None = applied)."""
        # A "heartbeat" event for each beat that was applied, built only when a subscriber takes them.
        if isinstance(beats, str | bytes) or not isinstance(beats, Sequence):
            raise ValidationError("beats", f"must be a list of Beat, got {type(beats).__name__}")
        checked = [checked_beat(i, beat) for i, beat in enumerate(beats)]
        results = yield from call(Store.heartbeat, checked)
        if self.events.wants_heartbeats:
            now = yield from call(Store.now)
            for beat, error in zip(checked, results, strict=True):
                if error is None:
                    self._emit(beat.session_id, "heartbeat", now, None, {"phase": beat.phase})
        return results

    def pause(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Flow[Session]:
        """Pause an active session (heartbeats still accepted, checkpoints not)."""
        return self._transition(
            session_id, expected_version, lambda s, now: lifecycle.pause(s, now, epoch), epoch
        )

    def resume(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Flow[Session]:
        """Resume a paused session with a fresh lease."""
        return self._transition(
            session_id,
            expected_version,
            lambda s, now: lifecycle.resume(s, self.policies.for_type(s.agent_type), now, epoch),
            epoch,
        )

    def complete(
        self,
        session_id: str,
        result: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Flow[Session]:
        """End an active session successfully; `result` goes into its final checkpoint."""
        if result is not None:
            encode_json("result", result, self.max_payload_bytes)
        return self._transition(
            session_id, expected_version, lambda s, now: lifecycle.complete(s, now, result, epoch), epoch
        )

    def fail(
        self,
        session_id: str,
        error: str,
        details: dict[str, Any] | None = None,
        *,
        final: bool = False,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Flow[Session]:
        """Fail the session; recoverable by another worker unless final or out of recoveries."""
        check_error(error, self.max_payload_bytes)
        check_flag("final", final)
        if details is not None:
            encode_json("details", details, self.max_payload_bytes)
        return self._transition(
            session_id,
            expected_version,
            lambda s, now: lifecycle.fail(
                s, self.policies.for_type(s.agent_type), now, error, details, final=final, epoch=epoch
            ),
            epoch,
        )

    def update(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Flow[Session]:
        """Replace context and/or metadata; with `expected_version`, only if nobody else did."""
        for field, value in (("context", context), ("metadata", metadata)):
            if value is not None:
                encode_json(field, value, self.max_payload_bytes)
        return self._transition(
            session_id,
            expected_version,
            lambda s, now: lifecycle.update(s, now, context=context, metadata=metadata, epoch=epoch),
            epoch,
        )

    # -- takeover ----------------------------------------------------------------------------
    def claim(self, session_id: str, worker_id: str | None = None) -> Flow[Session]:
        """Take over a dead or recoverably failed session: exactly one claimer wins."""
        worker = check_text("worker_id", self.worker_id if worker_id is None else worker_id)
        return self._transition(
            session_id,
            None,
            lambda s, now: lifecycle.claim(s, self.policies.for_type(s.agent_type), now, worker),
        )

    def claim_next(
        self, agent_types: Iterable[str] | None = None, worker_id: str | None = None
    ) -> Flow[Session | None]:
        """Claim the longest-waiting claimable session of these types, or None."""
        types = checked_agent_types(agent_types)
        worker = check_text("worker_id", self.worker_id if worker_id is None else worker_id)
        candidates = yield from call(Store.claimable, types, CLAIM_CANDIDATES)
        for candidate in candidates:
            try:
                return (yield from self.claim(candidate.session_id, worker))
            except (ConflictError, NotFound):  # another worker won it, it is not claimable any
                continue  # more, or it was deleted since the listing
        return None

    def time_out(self, session_id: str) -> Flow[Session]:
        """The supervisor's verdict on an active session whose lease expired: fail it per its policy
        (recoverable, or final past max_recoveries). NotClaimable while the lease is alive."""
        return self.time_out_at(session_id, None)

    def time_out_at(self, session_id: str, expected_version: int | None) -> Flow[Session]:
        """`time_out`, only at `expected_version` (the HTTP route's If-Match)."""
        return self._transition(
            session_id,
            expected_version,
            lambda s, now: lifecycle.time_out(s, self.policies.for_type(s.agent_type), now),
        )

    # -- housekeeping ------------------------------------------------------------------------
    def delete(self, session_id: str) -> Flow[None]:
        """Remove a session and its checkpoints. Raises NotFound."""
        yield from call(Store.delete, check_text("session_id", session_id))
        if self.events.active:
            self._emit(session_id, "deleted", (yield from call(Store.now)), None, {})

    def purge(
        self,
        older_than: timedelta | datetime,
        states: Iterable[State | str] = tuple(ENDED_STATES),
    ) -> Flow[int]:
        """Delete sessions in `states` whose end (or last heartbeat) is older than the cutoff."""
        chosen = frozenset(required_state(s) for s in states)
        if isinstance(older_than, datetime):
            cutoff = as_aware(older_than)
        elif isinstance(older_than, timedelta) and timedelta(0) <= older_than <= MAX_AGE:
            cutoff = (yield from call(Store.now)) - older_than
        else:
            raise ValidationError(
                "older_than", f"must be a datetime or a timedelta of 0 to 100 years, got {older_than!r}"
            )
        purged = yield from call(Store.purge, cutoff, chosen)
        return purged

    def enforce_retention(
        self, *, dry_run: bool = False, batch: int = RETENTION_BATCH, max_batches: int = RETENTION_BATCHES
    ) -> Flow[RetentionReport]:
        """Apply the retention policies once: remove ended sessions older than their agent type's
        `retain_completed` / `retain_failed`, `batch` at a time, at most `max_batches` per rule
        (the supervisor runs this on its own). `dry_run` only lists what would go."""
        report = yield from retention.enforce(
            self.policies,
            dry_run=dry_run,
            batch=check_limit("batch", batch),
            max_batches=check_limit("max_batches", max_batches),
        )
        if not dry_run and self.events.active:
            now = yield from call(Store.now)
            for retired in report.retired:
                data = {"reason": "retention", "state": retired.rule.state.value}
                for sid in retired.session_ids:
                    self._emit(sid, "deleted", now, None, data)
        return report

    def erase_user(self, user_id: str) -> Flow[int]:
        """Delete every session and checkpoint of one user (data-protection requests)."""
        erased = yield from call(Store.erase_user, check_text("user_id", user_id))
        return erased

    def export(
        self, destination: str | Path | IO[str], *, user_id: str | None = None, decrypt: bool = False
    ) -> Flow[int]:
        """Write sessions as seed-format JSONL (checkpoints inline); returns how many. With an
        encryption codec only when `decrypt` is True: the file then holds the payloads in clear."""
        if self.codec is not None and not decrypt:
            raise ValidationError(
                "decrypt", "payloads are encrypted at rest: export them in clear only with decrypt=True"
            )
        return transfer.export_jsonl(destination, check_optional_text("user_id", user_id))

    def import_sessions(
        self,
        source: str | Path | IO[str],
        *,
        on_conflict: str = "error",
        progress: Callable[[int], None] | None = None,
    ) -> Flow[int]:
        """Read seed-format JSONL; `on_conflict` is "error" or "skip" for existing ids."""
        return transfer.import_jsonl(self.policies, source, on_conflict, progress)

    # -- the path every transition takes -----------------------------------------------------
    def _transition(
        self, session_id: str, expected_version: int | None, decide: Decide, epoch: int | None = None
    ) -> Flow[Session]:
        """Load, decide, apply; re-decide on a fresh read if someone wrote in between, unless the
        caller pinned `expected_version` (then the conflict is theirs to see). `epoch` is only
        checked here; `decide` carries it."""
        check_text("session_id", session_id)
        check_optional_counter("expected_version", expected_version, 1)
        check_optional_counter("epoch", epoch, 1)
        attempt = 1
        while True:
            session = yield from call(Store.get, session_id)
            lifecycle.check_version(session, expected_version)
            now = yield from call(Store.now)
            write = decide(session, now)
            try:
                after = yield from call(Store.apply, write)
            except ConflictError:
                if expected_version is not None or attempt == MAX_DECIDE_ATTEMPTS:
                    raise
                attempt += 1
                continue
            self._emit_write(write, after, now)
            return after

    def _emit_write(self, write: Write, after: Session, at: datetime) -> None:
        seq = after.last_seq if write.checkpoint is not None else None
        data: dict[str, Any] = {"state": after.state.value, "epoch": after.epoch, "owner": after.owner}
        if after.failure is not None:
            data.update(error=after.failure.error, final=after.failure.final)
        self._emit(after.session_id, lifecycle.EVENT_KINDS[write.action], at, seq, data)

    def _emit(self, session_id: str, kind: str, at: datetime, seq: int | None, data: dict[str, Any]) -> None:
        if self.events.active:
            self.events.publish(Event(session_id, kind, at, seq, data))


FORKED_FROM, LINEAGE = "forked_from", "lineage"


def fork_metadata(source: Session, at_seq: int) -> dict[str, Any]:
    """The source's metadata plus where the fork came from: `forked_from` (session id and seq)
    and `lineage`, the ids of every session it descends from by forks, oldest first."""
    previous = source.metadata.get(LINEAGE)
    lineage = [sid for sid in previous if isinstance(sid, str)] if isinstance(previous, builtins.list) else []
    return {
        **source.metadata,
        FORKED_FROM: {"session_id": source.session_id, "seq": at_seq},
        LINEAGE: [*lineage, source.session_id],
    }


def checked_agent_types(agent_types: Iterable[str] | None) -> frozenset[str] | None:
    if isinstance(agent_types, str):
        raise ValidationError("agent_types", "must be a collection of agent types, not one string")
    if agent_types is not None and not isinstance(agent_types, Iterable):
        raise ValidationError("agent_types", f"must be a collection of agent types, got {agent_types!r}")
    return None if agent_types is None else frozenset(check_text("agent_types", t) for t in agent_types)


def required_state(value: State | str) -> State:
    state = parse_state(value)
    if state is None:
        raise ValidationError("state", "must be a state, got None")
    return state


def checked_beat(index: int, beat: object) -> Beat:
    if not isinstance(beat, Beat):
        raise ValidationError(f"beats[{index}]", f"must be a Beat, got {type(beat).__name__}")
    check_text("session_id", beat.session_id)
    check_optional_counter("epoch", beat.epoch, 1)
    check_optional_text("phase", beat.phase, MAX_NAME_LENGTH)
    silence = check_positive("expect_silence", beat.expect_silence)
    if type(silence) is type(beat.expect_silence):  # valid as given (the common case): no copy
        return beat
    return Beat(beat.session_id, beat.epoch, beat.phase, silence)


def parse_state(value: State | str | None) -> State | None:
    if value is None or isinstance(value, State):
        return value
    try:
        return State(value)
    except ValueError:
        allowed = ", ".join(s.value for s in State)
        raise ValidationError("state", f"{value!r} is not one of {allowed}") from None


def stale_filter(
    now: datetime,
    no_heartbeat_for: float | timedelta | None,
    paused_for: float | timedelta | None,
    liveness: Liveness | str | None,
    *,
    agent_type: str | None,
    user_id: str | None,
) -> SessionFilter:
    """The stale-session query as a filter whose every field the stores index."""
    level = _liveness(liveness)
    return SessionFilter(
        user_id=check_optional_text("user_id", user_id),
        agent_type=check_optional_text("agent_type", agent_type),
        heartbeat_before=_ago(now, "no_heartbeat_for", no_heartbeat_for),
        paused_before=_ago(now, "paused_for", paused_for),
        suspect_at_or_before=now if level is Liveness.SUSPECT else None,
        lease_expired_at=now if level is Liveness.DEAD else None,
    )


def _ago(now: datetime, field: str, value: float | timedelta | None) -> datetime | None:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    seconds = check_positive(field, value)
    return None if seconds is None else now - timedelta(seconds=seconds)


def _liveness(value: Liveness | str | None) -> Liveness | None:
    if value is None or (isinstance(value, Liveness) and value is not Liveness.HEALTHY):
        return value
    if value in (Liveness.SUSPECT.value, Liveness.DEAD.value):
        return Liveness(value)
    raise ValidationError("liveness", f"{value!r} is not 'suspect' or 'dead'")


class ManagerBase:
    """What both managers share besides the flows: settings as attributes, and subscriptions.

    `ops` (these operations as flows) and the manager's `runner` (which runs them on its store) are
    public so that what a manager hands out, such as its supervisors, runs flows exactly as it does.
    """

    def __init__(self, ops: Operations) -> None:
        self.ops = ops

    @property
    def policies(self) -> Policies:
        return self.ops.policies

    @property
    def worker_id(self) -> str:
        return self.ops.worker_id

    @property
    def max_payload_bytes(self) -> int:
        return self.ops.max_payload_bytes

    @property
    def events(self) -> EventBus:
        return self.ops.events

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(event)` on every change made through this manager (in the caller's thread,
        after the write; with the async manager, in the event loop)."""
        return self.ops.events.subscribe(callback)
