"""SessionManager: the sync front door. Each method runs one flow of `tether.flows.operations`."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from tether.core import config
from tether.core.clock import Clock
from tether.core.config import Settings
from tether.core.errors import TetherError
from tether.core.model import ENDED_STATES, Checkpoint, Liveness, Page, Session, State
from tether.core.policy import Policies
from tether.core.retention import RetentionReport
from tether.core.sealing import PayloadCodec
from tether.flows.operations import ManagerBase, Operations
from tether.flows.retention import BATCH as RETENTION_BATCH
from tether.flows.retention import MAX_BATCHES as RETENTION_BATCHES
from tether.flows.runner import Runner, run
from tether.front import handle, worker
from tether.front.handle import Handler, SessionHandle
from tether.front.supervisor import RunningSupervisor, Supervisor
from tether.stores import Beat, Store, open_store, with_liveness


class SessionManager(ManagerBase):
    """Sessions, checkpoints and takeovers over one store.

    `SessionManager()` opens the embedded SQLite default (`./tether.db`, or TETHER_STORE_URL);
    pass a URL or a Store to choose another. `tether.front.aio.AsyncSessionManager` is the same API, awaited.
    With `redis_url` (or TETHER_REDIS_URL) heartbeats and leases live in Redis, flushed to the store.
    With `codec` (or TETHER_ENCRYPTION_KEY) payloads are encrypted before they reach any store.
    """

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        policies: Policies | None = None,
        clock: Clock | None = None,
        worker_id: str | None = None,
        max_payload_bytes: int | None = None,
        redis_url: str | None = None,
        codec: PayloadCodec | None = None,
    ) -> None:
        settings = Settings.from_env(store if isinstance(store, str) else None)
        super().__init__(Operations(settings, policies, worker_id, max_payload_bytes, codec))
        durable = store if isinstance(store, Store) else open_store(settings.store_url, clock)
        self.store = with_liveness(durable, config.redis_url(redis_url))
        self.runner = Runner(self.store, self.ops.codec)

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
        return self.runner(
            self.ops.create(agent_type, user_id, context, metadata, session_id, parent_session_id)
        )

    def fork(
        self,
        session_id: str,
        at_seq: int | None = None,
        *,
        agent_type: str | None = None,
        user_id: str | None = None,
    ) -> Session:
        """A new active session (owned by this worker) whose checkpoint log is a copy of this one's
        up to `at_seq` (default: its last), copied inside the store in one bulk insert. The fork's
        metadata records `forked_from` ({"session_id", "seq"}) and `lineage`; agent type and user
        default to the source's. The source is not changed."""
        return self.runner(self.ops.fork(session_id, at_seq, agent_type, user_id))

    def get(self, session_id: str) -> Session:
        """The session as stored now. Raises NotFound."""
        return self.runner(self.ops.get(session_id))

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
        return self.runner(self.ops.list(user_id, agent_type, state, parent_session_id, limit, cursor))

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
        return self.runner(
            self.ops.stale(no_heartbeat_for, paused_for, liveness, agent_type, user_id, limit, cursor)
        )

    def checkpoints(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> builtins.list[Checkpoint]:
        """Checkpoints with seq > after_seq, oldest first (optionally only those with one name)."""
        return self.runner(self.ops.checkpoints(session_id, after_seq, limit, name))

    def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        """The newest checkpoint, or the newest with that name: where a new owner resumes."""
        return self.runner(self.ops.last_checkpoint(session_id, name))

    def duration(self, session_id: str) -> timedelta:
        """Time since creation; for an ended session, until it ended."""
        return self.runner(self.ops.duration(session_id))

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
        return self.runner(self.ops.checkpoint(session_id, name, data, epoch))

    def heartbeat(
        self,
        session_id: str,
        *,
        epoch: int | None = None,
        phase: str | None = None,
        expect_silence: float | None = None,
    ) -> None:
        """Extend the lease. `expect_silence` (seconds) announces a long quiet phase."""
        return self.runner(self.ops.heartbeat(session_id, epoch, phase, expect_silence))

    def heartbeats(self, beats: Sequence[Beat]) -> builtins.list[TetherError | None]:
        """Many heartbeats in one durable batch; one result per beat (None = applied)."""
        return self.runner(self.ops.heartbeats(beats))

    def pause(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Session:
        """Pause an active session (heartbeats still accepted, checkpoints not)."""
        return self.runner(self.ops.pause(session_id, epoch, expected_version))

    def resume(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Session:
        """Resume a paused session with a fresh lease."""
        return self.runner(self.ops.resume(session_id, epoch, expected_version))

    def complete(
        self,
        session_id: str,
        result: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Session:
        """End an active session successfully; `result` goes into its final checkpoint."""
        return self.runner(self.ops.complete(session_id, result, epoch, expected_version))

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
        return self.runner(self.ops.fail(session_id, error, details, final, epoch, expected_version))

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
        return self.runner(self.ops.update(session_id, context, metadata, epoch, expected_version))

    # -- takeover ----------------------------------------------------------------------------
    def claim(self, session_id: str, worker_id: str | None = None) -> Session:
        """Take over a dead or recoverably failed session: exactly one claimer wins."""
        return self.runner(self.ops.claim(session_id, worker_id))

    def claim_next(
        self, agent_types: Iterable[str] | None = None, worker_id: str | None = None
    ) -> Session | None:
        """Claim the longest-waiting claimable session of these types, or None."""
        return self.runner(self.ops.claim_next(agent_types, worker_id))

    def time_out(self, session_id: str) -> Session:
        """The supervisor's verdict on an active session whose lease expired: fail it per its policy
        (recoverable, or final past max_recoveries). NotClaimable while the lease is alive."""
        return self.runner(self.ops.time_out(session_id))

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
            self, lambda: run(handle.create_or_claim(session_id, agent_type, user_id, create), self)
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
        return SessionHandle(self, lambda: run(handle.claim_or_create(agent_type, user_id, create), self))

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
        return worker.run_worker(self, agent_types, handler, stop, poll_interval)

    # -- housekeeping ------------------------------------------------------------------------
    def delete(self, session_id: str) -> None:
        """Remove a session and its checkpoints. Raises NotFound."""
        return self.runner(self.ops.delete(session_id))

    def purge(
        self,
        older_than: timedelta | datetime,
        states: Iterable[State | str] = tuple(ENDED_STATES),
    ) -> int:
        """Delete sessions in `states` whose end (or last heartbeat) is older than the cutoff."""
        return self.runner(self.ops.purge(older_than, states))

    def enforce_retention(
        self, *, dry_run: bool = False, batch: int = RETENTION_BATCH, max_batches: int = RETENTION_BATCHES
    ) -> RetentionReport:
        """Apply the retention policies once: remove ended sessions older than their agent type's
        `retain_completed` / `retain_failed`, `batch` at a time, at most `max_batches` per rule
        (the supervisor runs this on its own). `dry_run` only lists what would go."""
        return self.runner(self.ops.enforce_retention(dry_run, batch, max_batches))

    def erase_user(self, user_id: str) -> int:
        """Delete every session and checkpoint of one user (data-protection requests)."""
        return self.runner(self.ops.erase_user(user_id))

    def export(
        self, destination: str | Path | IO[str], *, user_id: str | None = None, decrypt: bool = False
    ) -> int:
        """Write sessions as seed-format JSONL (checkpoints inline); returns how many. With an
        encryption codec only when `decrypt` is True: the file then holds the payloads in clear."""
        return self.runner(self.ops.export(destination, user_id, decrypt))

    def import_sessions(
        self,
        source: str | Path | IO[str],
        *,
        on_conflict: str = "error",
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Read seed-format JSONL; `on_conflict` is "error" or "skip" for existing ids."""
        return self.runner(self.ops.import_sessions(source, on_conflict, progress))

    def close(self) -> None:
        """Close the store. Idempotent."""
        self.store.close()

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
