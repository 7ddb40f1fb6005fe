"""SessionManager: the sync front door. Each method runs one flow of `tether.flows.operations`,
stated as `create = runs(Operations.create)` (`tether.front.methods`) with the flow's signature."""

from __future__ import annotations

from tether.core import config
from tether.core.clock import Clock
from tether.core.config import Settings
from tether.core.policy import Policies
from tether.core.sealing import PayloadCodec
from tether.flows.operations import ManagerBase, Operations
from tether.flows.runner import Runner
from tether.front import handle, worker
from tether.front.handle import Start
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

    open = handle.opens(Start.open)
    resume_or_create = handle.opens(Start.resume_or_create)

    work = worker.work

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
