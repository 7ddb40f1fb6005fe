"""SessionManager: the sync front door. Each method runs one flow of `tether.flows.operations`."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from tether.core import config
from tether.core.clock import Clock
from tether.core.config import Settings
from tether.core.policy import Policies
from tether.core.sealing import PayloadCodec
from tether.flows.operations import ManagerBase, Operations
from tether.flows.runner import Runner, run
from tether.front import handle, worker
from tether.front.handle import Handler, SessionHandle
from tether.front.methods import runs
from tether.front.supervisor import RunningSupervisor, Supervisor
from tether.stores import Store, open_store, with_liveness


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
    create = runs(Operations.create)
    fork = runs(Operations.fork)
    get = runs(Operations.get)
    list = runs(Operations.list)
    stale = runs(Operations.stale)
    checkpoints = runs(Operations.checkpoints)
    last_checkpoint = runs(Operations.last_checkpoint)
    duration = runs(Operations.duration)

    # -- the owner's writes ------------------------------------------------------------------
    checkpoint = runs(Operations.checkpoint)
    heartbeat = runs(Operations.heartbeat)
    heartbeats = runs(Operations.heartbeats)
    pause = runs(Operations.pause)
    resume = runs(Operations.resume)
    complete = runs(Operations.complete)
    fail = runs(Operations.fail)
    update = runs(Operations.update)

    # -- takeover ----------------------------------------------------------------------------
    claim = runs(Operations.claim)
    claim_next = runs(Operations.claim_next)
    time_out = runs(Operations.time_out)

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
    delete = runs(Operations.delete)
    purge = runs(Operations.purge)
    enforce_retention = runs(Operations.enforce_retention)
    erase_user = runs(Operations.erase_user)
    export = runs(Operations.export)
    import_sessions = runs(Operations.import_sessions)

    def close(self) -> None:
        """Close the store. Idempotent."""
        self.store.close()

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
