"""SessionManager: the sync front door. Each method validates, loads, decides, applies, emits."""

from __future__ import annotations

import builtins
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from tether import handle, lifecycle, transfer
from tether.clock import Clock
from tether.config import Settings
from tether.errors import ConflictError, TetherError, ValidationError
from tether.events import Event, EventBus, Subscriber
from tether.handle import Handler, SessionHandle
from tether.lifecycle import Write
from tether.model import (
    ENDED_STATES,
    Checkpoint,
    Liveness,
    NewCheckpoint,
    Page,
    Session,
    SessionFilter,
    State,
)
from tether.policy import Policies
from tether.stores import Beat, Store, open_store
from tether.supervisor import RunningSupervisor, Supervisor, stale_filter
from tether.validation import (
    MAX_NAME_LENGTH,
    check_limit,
    check_optional_text,
    check_positive,
    check_text,
    encode_json,
)

# A write decided on a stale read is re-decided on a fresh one this many times before giving up.
MAX_DECIDE_ATTEMPTS = 8


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class SessionManager:
    """Sessions, checkpoints and takeovers over one store.

    `SessionManager()` opens the embedded SQLite default (`./tether.db`, or TETHER_STORE_URL);
    pass a URL or a Store to choose another.
    """

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        policies: Policies | None = None,
        clock: Clock | None = None,
        worker_id: str | None = None,
        max_payload_bytes: int | None = None,
    ) -> None:
        settings = Settings.from_env(store if isinstance(store, str) else None)
        self.store = store if isinstance(store, Store) else open_store(settings.store_url, clock)
        self.policies = policies or settings.policies
        self.worker_id = check_text("worker_id", default_worker_id() if worker_id is None else worker_id)
        self.max_payload_bytes = max_payload_bytes or settings.max_payload_bytes
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
    ) -> Session:
        """Start an active session owned by this manager's worker, at epoch 1."""
        context = {} if context is None else context
        metadata = {} if metadata is None else metadata
        encode_json("context", context, self.max_payload_bytes)
        encode_json("metadata", metadata, self.max_payload_bytes)
        session = lifecycle.new_session(
            session_id=check_text("session_id", str(uuid.uuid4()) if session_id is None else session_id),
            agent_type=check_text("agent_type", agent_type),
            user_id=check_text("user_id", user_id),
            owner=self.worker_id,
            policy=self.policies.for_type(agent_type),
            now=self.store.now(),
            context=context,
            metadata=metadata,
            parent_session_id=check_optional_text("parent_session_id", parent_session_id),
        )
        created = self.store.create(session)
        self._emit(created.session_id, "created", created.created_at, None, {"owner": created.owner})
        return created

    def get(self, session_id: str) -> Session:
        return self.store.get(check_text("session_id", session_id))

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_type: str | None = None,
        state: State | str | None = None,
        parent_session_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]:
        """Newest first; pass `page.next_cursor` back as `cursor` for the next page."""
        where = SessionFilter(
            user_id=check_optional_text("user_id", user_id),
            agent_type=check_optional_text("agent_type", agent_type),
            state=_state(state),
            parent_session_id=check_optional_text("parent_session_id", parent_session_id),
        )
        return self.store.query(where, check_limit("limit", limit), cursor)

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
    ) -> Page[Session]:
        """Live sessions gone quiet: no heartbeat for X, paused longer than Y, `suspect` (past the
        soft deadline, dead ones included) or `dead` (lease expired). Indexed, newest first."""
        where = stale_filter(
            self.store.now(), no_heartbeat_for, paused_for, liveness, agent_type=agent_type, user_id=user_id
        )
        return self.store.query(where, check_limit("limit", limit), cursor)

    def checkpoints(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> builtins.list[Checkpoint]:
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise ValidationError("after_seq", f"must be a non-negative integer, got {after_seq!r}")
        return self.store.checkpoints(
            check_text("session_id", session_id),
            after_seq,
            check_limit("limit", limit),
            check_optional_text("name", name, MAX_NAME_LENGTH),
        )

    def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        """The newest checkpoint, or the newest with that name: where a new owner resumes."""
        return self.store.last_checkpoint(
            check_text("session_id", session_id), check_optional_text("name", name, MAX_NAME_LENGTH)
        )

    def duration(self, session_id: str) -> timedelta:
        return self.get(session_id).duration(self.store.now())

    # -- the owner's writes ------------------------------------------------------------------
    def checkpoint(
        self,
        session_id: str,
        name: str,
        data: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
    ) -> Checkpoint:
        """Append a checkpoint to an active session; durable when this returns."""
        new = NewCheckpoint(
            check_text("name", name, MAX_NAME_LENGTH),
            self.store.now(),
            encode_json("data", {} if data is None else data, self.max_payload_bytes),
        )
        cp = self.store.append(check_text("session_id", session_id), new, epoch)
        if self.events.active:
            self._emit(session_id, "checkpoint", cp.timestamp, cp.seq, {"name": cp.name})
        return cp

    def heartbeat(
        self,
        session_id: str,
        *,
        epoch: int | None = None,
        phase: str | None = None,
        expect_silence: float | None = None,
    ) -> None:
        """Extend the lease. `expect_silence` (seconds) announces a long quiet phase."""
        beat = Beat(
            check_text("session_id", session_id),
            epoch,
            check_optional_text("phase", phase, MAX_NAME_LENGTH),
            check_positive("expect_silence", expect_silence),
        )
        error = self.store.heartbeat([beat])[0]
        if error is not None:
            raise error
        if self.events.active:
            self._emit(session_id, "heartbeat", self.store.now(), None, {"phase": phase})

    def heartbeats(self, beats: Sequence[Beat]) -> builtins.list[TetherError | None]:
        """Many heartbeats in one durable batch; one result per beat (None = applied)."""
        return self.store.heartbeat(list(beats))

    def pause(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Session:
        return self._decide(session_id, expected_version, lambda s, now: lifecycle.pause(s, now, epoch))

    def resume(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Session:
        return self._decide(
            session_id,
            expected_version,
            lambda s, now: lifecycle.resume(s, self.policies.for_type(s.agent_type), now, epoch),
        )

    def complete(
        self,
        session_id: str,
        result: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Session:
        if result is not None:
            encode_json("result", result, self.max_payload_bytes)
        return self._decide(
            session_id, expected_version, lambda s, now: lifecycle.complete(s, now, result, epoch)
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
    ) -> Session:
        """Fail the session; recoverable by another worker unless final or out of recoveries."""
        if details is not None:
            encode_json("details", details, self.max_payload_bytes)
        return self._decide(
            session_id,
            expected_version,
            lambda s, now: lifecycle.fail(
                s,
                self.policies.for_type(s.agent_type),
                now,
                error,
                details,
                final=final,
                epoch=epoch,
            ),
        )

    def update(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Session:
        """Replace context and/or metadata; with `expected_version`, only if nobody else did."""
        for field, value in (("context", context), ("metadata", metadata)):
            if value is not None:
                encode_json(field, value, self.max_payload_bytes)
        return self._decide(
            session_id,
            expected_version,
            lambda s, now: lifecycle.update(s, now, context=context, metadata=metadata, epoch=epoch),
        )

    # -- takeover ----------------------------------------------------------------------------
    def claim(self, session_id: str, worker_id: str | None = None) -> Session:
        """Take over a dead or recoverably failed session: exactly one claimer wins."""
        worker = check_text("worker_id", self.worker_id if worker_id is None else worker_id)
        return self._decide(
            session_id,
            None,
            lambda s, now: lifecycle.claim(s, self.policies.for_type(s.agent_type), now, worker),
        )

    def claim_next(
        self, agent_types: Iterable[str] | None = None, worker_id: str | None = None
    ) -> Session | None:
        """Claim the longest-waiting claimable session of these types, or None."""
        types = None if agent_types is None else frozenset(agent_types)
        for candidate in self.store.claimable(types, limit=16):
            try:
                return self.claim(candidate.session_id, worker_id)
            except ConflictError:  # another worker won it, or it is not claimable
                continue
        return None

    def time_out(self, session_id: str) -> Session:
        """The supervisor's verdict on an active session whose lease expired: fail it per its policy
        (recoverable, or final past max_recoveries). NotClaimable while the lease is alive."""
        return self._decide(
            session_id,
            None,
            lambda s, now: lifecycle.time_out(s, self.policies.for_type(s.agent_type), now),
        )

    # -- liveness helpers --------------------------------------------------------------------
    def supervise(self, *, interval: float | None = None) -> RunningSupervisor:
        """Sweep for dead sessions in a background thread (default interval: a quarter of the
        shortest policy timeout). Stop it with `.stop()` or a with-block."""
        return RunningSupervisor(Supervisor(self), interval)

    def open(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        parent_session_id: str | None = None,
    ) -> SessionHandle:
        """`with manager.open(...) as s:` creates the session (or takes over `session_id` if it
        exists and is claimable), heartbeats in the background, completes on exit, fails on error."""
        create = {"context": context, "metadata": metadata, "parent_session_id": parent_session_id}
        return SessionHandle(
            self, lambda: handle.create_or_claim(self, session_id, agent_type, user_id, **create)
        )

    def resume_or_create(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        parent_session_id: str | None = None,
    ) -> SessionHandle:
        """Like `open`, but first takes over this user's dead or recoverably failed session of this
        type if there is one; `handle.resumed_from` is then the checkpoint to continue from."""
        create = {"context": context, "metadata": metadata, "parent_session_id": parent_session_id}
        return SessionHandle(self, lambda: handle.claim_or_create(self, agent_type, user_id, **create))

    def work(
        self,
        agent_types: Iterable[str] | None,
        handler: Handler,
        *,
        stop_event: threading.Event | None = None,
        poll_interval: float = 1.0,
    ) -> int:
        """Worker loop: claim recoverable sessions of these types and call `handler(handle,
        last_checkpoint)` inside an open handle, until `stop_event` is set. Returns sessions run."""
        stop = stop_event or threading.Event()
        return handle.run_worker(self, agent_types, handler, stop, poll_interval)

    # -- housekeeping ------------------------------------------------------------------------
    def delete(self, session_id: str) -> None:
        self.store.delete(check_text("session_id", session_id))
        self._emit(session_id, "deleted", self.store.now(), None, {})

    def purge(
        self,
        older_than: timedelta | datetime,
        states: Iterable[State | str] = tuple(ENDED_STATES),
    ) -> int:
        """Delete sessions in `states` whose end (or last heartbeat) is older than the cutoff."""
        cutoff = older_than if isinstance(older_than, datetime) else self.store.now() - older_than
        chosen = frozenset(_state(s) or State.COMPLETED for s in states)
        return self.store.purge(cutoff, chosen)

    def erase_user(self, user_id: str) -> int:
        """Delete every session and checkpoint of one user (data-protection requests)."""
        return self.store.erase_user(check_text("user_id", user_id))

    def export(self, destination: str | Path | IO[str], *, user_id: str | None = None) -> int:
        """Write sessions as seed-format JSONL (checkpoints inline); returns how many."""
        return transfer.export_jsonl(self.store, destination, check_optional_text("user_id", user_id))

    def import_sessions(
        self,
        source: str | Path | IO[str],
        *,
        on_conflict: str = "error",
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Read seed-format JSONL; `on_conflict` is "error" or "skip" for existing ids."""
        return transfer.import_jsonl(self.store, self.policies, source, on_conflict, progress)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(event)` on every change made through this manager."""
        return self.events.subscribe(callback)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the shell every transition goes through ---------------------------------------------
    def _decide(
        self,
        session_id: str,
        expected_version: int | None,
        decide: Callable[[Session, datetime], Write],
    ) -> Session:
        """Load, decide, apply; re-decide on a fresh read if someone wrote in between."""
        check_text("session_id", session_id)
        for attempt in range(MAX_DECIDE_ATTEMPTS):
            session = self.store.get(session_id)
            lifecycle.check_version(session, expected_version)
            write = decide(session, self.store.now())
            try:
                after = self.store.apply(write)
            except ConflictError:
                if expected_version is not None or attempt == MAX_DECIDE_ATTEMPTS - 1:
                    raise
                continue
            self._emit_write(write, after)
            return after
        raise AssertionError("unreachable")  # pragma: no cover

    def _emit_write(self, write: Write, after: Session) -> None:
        seq = after.last_seq if write.checkpoint is not None else None
        self._emit(
            after.session_id,
            lifecycle.EVENT_KINDS[write.action],
            self.store.now(),
            seq,
            {
                "state": after.state.value,
                "epoch": after.epoch,
                "owner": after.owner,
                **({"error": after.failure.error, "final": after.failure.final} if after.failure else {}),
            },
        )

    def _emit(self, session_id: str, kind: str, at: datetime, seq: int | None, data: dict[str, Any]) -> None:
        if self.events.active:
            self.events.publish(Event(session_id, kind, at, seq, data))


def _state(value: State | str | None) -> State | None:
    if value is None or isinstance(value, State):
        return value
    try:
        return State(value)
    except ValueError:
        allowed = ", ".join(s.value for s in State)
        raise ValidationError("state", f"{value!r} is not one of {allowed}") from None
