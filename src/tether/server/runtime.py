"""What one server process holds while it runs: the manager and its store, the key checker, the event
hub, the metrics, the supervisor task and the event bridge to other processes."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from tether.core.errors import NotFound, TetherError
from tether.core.validation import check_text
from tether.events.bus import EventBridge, bridge
from tether.flows.operations import Operations
from tether.front.aio import AsyncSessionManager
from tether.front.supervisor import AsyncSupervisor, default_interval
from tether.front.waiting import stopped_within
from tether.server.auth import Authenticator, Caller
from tether.server.hub import EventHub, Owner, Owners
from tether.server.metrics import Metrics
from tether.server.settings import ServerSettings
from tether.stores import POSTGRES_SCHEMES, AsyncStore

logger = logging.getLogger("tether.server")


@dataclass
class Runtime:
    settings: ServerSettings
    manager: AsyncSessionManager
    store: AsyncStore
    auth: Authenticator
    hub: EventHub
    owners: Owners
    metrics: Metrics
    bridge: EventBridge | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: ServerSettings, manager: AsyncSessionManager | None = None) -> Runtime:
        """Open the store and start serving; `manager` (default: one on `settings.store_url`) is
        closed with the runtime. Tests pass one on a ManualClock."""
        if manager is None:
            manager = AsyncSessionManager(settings.store_url, redis_url=settings.redis_url)
        await manager.__aenter__()
        store = manager.store
        owners = Owners()

        async def resolve(session_id: str) -> Owner | None:
            try:
                s = await store.get(session_id)
            except NotFound:
                return None
            owners.remember(s.session_id, s.user_id, s.agent_type)
            return s.user_id, s.agent_type

        metrics = Metrics()
        hub = EventHub(manager.events, owners, resolve, settings.ring_size)
        hub.on_local.append(metrics.on_event)
        auth = Authenticator(store, settings.loopback)
        runtime = cls(settings, manager, store, auth, hub, owners, metrics)
        runtime.bridge = await asyncio.to_thread(events_bridge, manager, settings)
        if settings.supervise:
            runtime.tasks.append(asyncio.create_task(runtime._supervise(), name="tether-supervisor"))
        if await auth.open_mode():
            logger.warning(
                "open mode: the store has no API keys, so every caller is an admin (bound to %s only). "
                "Create one with `tether keys create --user NAME` to require keys.",
                settings.host,
            )
        return runtime

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.bridge is not None:
            await asyncio.to_thread(self.bridge.close)
        await self.hub.close()
        await self.manager.close()

    def operations(self, worker_id: str | None) -> Operations:
        """The manager's operations, acting as `worker_id` (the owner a create records)."""
        if worker_id is None:
            return self.manager.ops
        ops = copy.copy(self.manager.ops)
        ops.worker_id = check_text("worker_id", worker_id)
        return ops

    async def owner(self, session_id: str) -> Owner:
        found = self.owners.get(session_id)
        if found is None:
            s = await self.store.get(check_text("session_id", session_id))
            self.owners.remember(s.session_id, s.user_id, s.agent_type)
            found = (s.user_id, s.agent_type)
        return found

    async def check(self, caller: Caller, session_id: str) -> None:
        """NotFound unless the caller may see the session (admins skip the look-up: the call
        itself answers NotFound for a missing one)."""
        if not caller.admin and (await self.owner(session_id))[0] != caller.user_id:
            raise NotFound(session_id)

    async def now(self) -> datetime:
        return await self.store.now()

    async def refresh_counts(self) -> None:
        if self.metrics.stale():
            now = await self.store.now()
            self.metrics.set_counts(await self.store.count_sessions(now), now)

    async def _supervise(self) -> None:
        """The supervisor inside the server: every process sweeps, each expiry is applied once."""
        supervisor = AsyncSupervisor(self.manager)
        every = self.settings.sweep_interval or default_interval(self.manager.policies)
        while True:
            started = time.perf_counter()
            try:
                report = await supervisor.sweep()
            except TetherError:
                logger.exception("supervisor sweep failed; retrying in %.2fs", every)
            else:
                self.metrics.sweep.observe(time.perf_counter() - started)
                self.metrics.last_sweep.set(time.time())
                await self._observe_detection(report.timed_out)
            if await stopped_within(self.stop, every):
                return

    async def _observe_detection(self, timed_out: tuple[str, ...]) -> None:
        for session_id in timed_out:
            try:
                s = await self.store.get(session_id)
            except TetherError:
                continue
            expired = (s.failure.details.get("lease_expires_at") if s.failure else None) or None
            if s.ended_at is not None and isinstance(expired, str):
                lag = (s.ended_at - datetime.fromisoformat(expired)).total_seconds()
                self.metrics.detection.observe(max(0.0, lag))


def events_bridge(manager: AsyncSessionManager, settings: ServerSettings) -> EventBridge | None:
    """Carry events between the processes of this store (other servers, demo workers, `tether watch`,
    embedded managers that bridge): over the PostgreSQL store itself, else over Redis."""
    if settings.store_url.split(":", 1)[0].lower() in POSTGRES_SCHEMES:
        return bridge(manager.events, settings.store_url, manager.store.url)
    if settings.redis_url:
        return bridge(manager.events, settings.redis_url, manager.store.url)
    return None
