"""The demo's parent process: a dispatcher, a chaos monkey and a supervisor around real workers.

Workers are separate processes (`tether.demo.worker`) sharing one store. The parent hands out jobs,
SIGKILLs busy workers at random (and freezes some with SIGSTOP, thawing them once their session
was taken over, so they come back as zombies), runs the supervisor sweep, and records everything
the workers acknowledge so the report can prove nothing acknowledged was lost.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Any

from tether.core.errors import NotFound, TetherError
from tether.demo import worker
from tether.demo.agents import AGENT_TYPES, Job
from tether.demo.report import Ack, Ledger, Report, build_report
from tether.events.bus import bridge
from tether.front.manager import SessionManager
from tether.front.supervisor import Supervisor

SWEEP_EVERY = 0.1
CHECK_EVERY = 0.3
# Chaos spares a session disrupted this often: otherwise, at high kill rates, the last few sessions
# are killed again before they can progress and the run ends in a long tail instead of a report.
MAX_DISRUPTIONS_PER_SESSION = 2


@dataclass(frozen=True)
class DemoOptions:
    sessions: int = 40
    workers: int = 6
    kill_rate: float = 1.0  # disruptions (kills or freezes) per second
    freeze_share: float = 0.25  # of disruptions, how many freeze a worker instead of killing it
    seed: int = 7
    store_url: str = "sqlite:///tether-demo.db"
    redis_url: str | None = None  # leases and heartbeats in Redis (tether.stores.redis.liveness)
    events_url: str | None = None  # workers bridge their events here (redis:// or postgresql://)
    timeout: float = 1.0  # heartbeat timeout of the simulated agents
    step_seconds: float = 0.2
    users: int = 5
    deadline: float = 55.0  # stop waiting for stragglers after this many seconds


# Imported once by the fork server, so a replacement worker starts in milliseconds, not a second.
PRELOAD = ["tether.demo.worker", "tether.stores.sqlite", "tether.stores.redis.liveness", "redis"]


def worker_context() -> ForkServerContext:
    """Workers fork from a single-threaded fork server: plain fork would copy this process's threads'
    locks mid-use, and spawn would re-import Tether for every replacement of a killed worker."""
    context = get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


@dataclass
class WorkerProcess:
    worker_id: str
    process: BaseProcess
    conn: Connection
    session: str | None = None  # the session it runs now
    step: str = ""  # the last step it acknowledged in that session
    job: Job | None = None  # handed out, not started yet
    freeze_requested: bool = False
    frozen_on: str | None = None  # the session it held when it froze
    alive: bool = True


@dataclass
class FleetState:
    """What the live view shows; the parent updates it as messages arrive."""

    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    top_level: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)
    pending: deque[Job] = field(default_factory=deque)
    ledger: Ledger = field(default_factory=Ledger)
    events: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    started_at: float = field(default_factory=time.monotonic)

    @property
    def known(self) -> int:
        return len(self.top_level) + len(self.children)


class Fleet:
    def __init__(self, options: DemoOptions, manager: SessionManager) -> None:
        self.options = options
        self.manager = manager
        self.supervisor = Supervisor(manager)
        self.random = random.Random(options.seed)
        self.state = FleetState()
        self.context = worker_context()
        self.run_id = uuid.uuid4().hex[:6]  # session ids of this run: a --store may hold earlier runs
        self._undetected: dict[str, float] = {}  # session -> when its worker was killed or froze
        self._disruptions: Counter[str] = Counter()  # session -> kills and freezes it suffered
        self._serial = 0
        self._stopping = False  # past the end or the deadline: idle workers are told to stop

    def run(self, on_tick: Callable[[FleetState], None] = lambda state: None) -> Report:
        for n in range(self.options.sessions):
            job = Job(
                f"{self.run_id}-{n:03d}",
                AGENT_TYPES[n % len(AGENT_TYPES)],
                f"user-{self.random.randrange(self.options.users) + 1}",
            )
            self.state.top_level.append(job.session_id)
            self.state.pending.append(job)
        url = self.options.events_url
        # The store's namespace, so `tether watch --events URL` and `tether serve` see the fleet too.
        events = bridge(self.manager.events, url, self.manager.store.url) if url else None
        for _ in range(self.options.workers):
            self._spawn()
        try:
            self._loop(on_tick)
        finally:
            self._shutdown()
            if events is not None:
                self.state.ledger.events_received = events.received
                events.close()
        seconds = time.monotonic() - self.state.started_at
        state = self.state
        leases = self.options.redis_url or "store"
        return build_report(self.manager, state.ledger, state.top_level, state.children, seconds, leases)

    def _loop(self, on_tick: Callable[[FleetState], None]) -> None:
        started = self.state.started_at
        next_disruption = started + self._gap()
        last_sweep = last_check = started
        while time.monotonic() - started < self.options.deadline:
            conns = [w.conn for w in self.state.workers.values() if w.alive]
            for conn in wait(conns, timeout=0.05):
                self._drain(self._by_conn(conn))
            now = time.monotonic()
            for w in [w for w in self.state.workers.values() if not w.alive]:
                self._gone(w, now)
            if now >= next_disruption and self._disrupt(now):
                next_disruption = now + self._gap()
            try:
                if now - last_sweep >= SWEEP_EVERY:
                    last_sweep = now
                    self._sweep()
                if now - last_check >= CHECK_EVERY:
                    last_check = now
                    if self._finished():
                        return
            except TetherError as exc:  # a busy or unreachable store: try again on the next tick
                self._note(f"store: {exc}")
            on_tick(self.state)

    # -- workers -----------------------------------------------------------------------------
    def _spawn(self) -> None:
        self._serial += 1
        worker_id = f"w{self._serial}"
        parent_end, child_end = self.context.Pipe()
        settings = worker.WorkerSettings(
            store_url=self.options.store_url,
            redis_url=self.options.redis_url,
            events_url=self.options.events_url,
            worker_id=worker_id,
            timeout=self.options.timeout,
            step_seconds=self.options.step_seconds,
            seed=self.random.getrandbits(32),
        )
        process = self.context.Process(
            target=worker.main, args=(settings, child_end), name=worker_id, daemon=True
        )
        process.start()
        child_end.close()
        self.state.workers[worker_id] = WorkerProcess(worker_id, process, parent_end)
        self.state.ledger.workers_started += 1

    def _by_conn(self, conn: object) -> WorkerProcess:
        return next(w for w in self.state.workers.values() if w.conn is conn)

    def _drain(self, w: WorkerProcess) -> None:
        """Read every message the worker has sent; a dead worker's pipe just ends."""
        try:
            while w.conn.poll():
                self._handle(w, w.conn.recv())
        except (EOFError, OSError):
            w.alive = False

    def _handle(self, w: WorkerProcess, message: tuple[Any, ...]) -> None:
        kind, *args = message
        ledger = self.state.ledger
        if kind == "idle":
            self._dispatch(w)
        elif kind == "started":
            w.session, w.job, w.step = args[0], None, ""
        elif kind == "duplicate":
            w.job = None
        elif kind == "not_started":  # the store refused the create: nothing was written
            self.state.pending.appendleft(args[0])
            w.job = None
        elif kind == "claimed":
            self._claimed(w, args[0], args[1], args[2])
        elif kind == "ack":
            ledger.acks.append(Ack(*args))
            w.step = args[2]
        elif kind == "spawn":
            self._spawned(args[0])
        elif kind == "done":
            w.session = None
            self.state.ended.add(args[0])
        elif kind == "rejected":
            ledger.rejected[args[1]] += 1
            self._note(f"zombie {w.worker_id}: {args[1]} on {args[0]} rejected ({args[2]})")
            if w.session == args[0]:
                w.session = None
        elif kind == "abandoned":  # the store failed the worker; the lease will expire and be seen
            self._undetected[args[0]] = time.monotonic()
            self._note(f"{w.worker_id} dropped {args[0]}: {args[1]}")
            w.session = None
        elif kind == "frozen":
            self._frozen(w)
        elif kind == "thawed":
            w.frozen_on = None

    def _dispatch(self, w: WorkerProcess) -> None:
        if self.state.pending:
            w.job = self.state.pending.popleft()
            w.conn.send(("job", w.job))
        elif self._stopping or self._all_ended():
            w.conn.send(("stop",))
        else:
            w.conn.send(("wait",))

    def _claimed(self, w: WorkerProcess, session_id: str, epoch: int, resumed_seq: int) -> None:
        w.session, w.step = session_id, f"resumed from seq {resumed_seq}"
        self.state.ledger.claims.append((session_id, epoch, resumed_seq))
        self._detected(session_id, "a claiming worker")
        self._note(f"{w.worker_id} took over {session_id} at epoch {epoch}, from seq {resumed_seq}")
        for other in self.state.workers.values():
            if other.frozen_on == session_id and other.alive:
                os.kill(other.process.pid or 0, signal.SIGCONT)  # wake the zombie
                self._note(f"{other.worker_id} thawed: its writes must now be rejected")

    def _spawned(self, job: Job) -> None:
        if job.session_id not in self.state.children:
            self.state.children.append(job.session_id)
            self.state.pending.append(job)

    def _frozen(self, w: WorkerProcess) -> None:
        w.freeze_requested = False
        w.frozen_on = w.session
        self.state.ledger.freezes += 1
        if w.session is not None:
            self._undetected[w.session] = time.monotonic()
            self._note(f"{w.worker_id} frozen (SIGSTOP) holding {w.session}")

    # -- chaos -------------------------------------------------------------------------------
    def _gap(self) -> float:
        return self.random.expovariate(self.options.kill_rate) if self.options.kill_rate > 0 else 1e9

    def _disrupt(self, now: float) -> bool:
        """SIGKILL (or freeze) a random worker that is running a session, keeping one healthy.
        False when nobody is busy right now: the disruption is then tried again on the next tick."""
        healthy = [
            w for w in self.state.workers.values() if w.alive and not w.frozen_on and not w.freeze_requested
        ]
        busy = [
            w
            for w in healthy
            if w.session is not None and self._disruptions[w.session] < MAX_DISRUPTIONS_PER_SESSION
        ]
        if len(healthy) < 2 or not busy:
            return False
        victim = self.random.choice(busy)
        self._disruptions[victim.session or ""] += 1
        if self.random.random() < self.options.freeze_share and not any(
            w.frozen_on or w.freeze_requested for w in self.state.workers.values()
        ):
            victim.freeze_requested = True
            os.kill(victim.process.pid or 0, signal.SIGUSR1)
        else:
            self._kill(victim, now)
        return True

    def _kill(self, w: WorkerProcess, now: float) -> None:
        os.kill(w.process.pid or 0, signal.SIGKILL)
        self._reap(w, now, "SIGKILL")

    def _gone(self, w: WorkerProcess, now: float) -> None:
        """A worker whose pipe ended: stopped when told to (exit 0), or crashed by itself."""
        w.process.join()
        if w.process.exitcode != 0:
            self._reap(w, now, f"died by itself (exit {w.process.exitcode})")
            return
        self._drain(w)
        w.conn.close()
        del self.state.workers[w.worker_id]

    def _reap(self, w: WorkerProcess, now: float, how: str) -> None:
        """A worker is gone: collect what it said, hand its unstarted job on, start a replacement."""
        w.process.join()
        self._drain(w)  # acks it sent before dying are still in the pipe
        w.alive = False
        w.conn.close()
        self.state.ledger.crashes += 1
        if w.session is not None:
            self._undetected[w.session] = now
        if w.job is not None and not self._exists(w.job.session_id):
            self.state.pending.appendleft(w.job)  # it died before creating the session
        self._note(f"{how}: {w.worker_id} (pid {w.process.pid}) while running {w.session or 'nothing'}")
        del self.state.workers[w.worker_id]
        self._spawn()

    def _exists(self, session_id: str) -> bool:
        try:
            self.manager.get(session_id)
        except NotFound:
            return False
        return True

    # -- supervision and the end -------------------------------------------------------------
    def _sweep(self) -> None:
        for session_id in self.supervisor.sweep().timed_out:
            self._detected(session_id, "the supervisor")
            self._note(f"supervisor: {session_id} missed its lease, failed for takeover")

    def _detected(self, session_id: str, by: str) -> None:
        killed_at = self._undetected.pop(session_id, None)
        if killed_at is not None:
            self.state.ledger.detection_latencies.append(time.monotonic() - killed_at)
            self.state.ledger.detected_by[by] += 1

    def _finished(self) -> bool:
        for session_id in [*self.state.top_level, *self.state.children]:
            if session_id not in self.state.ended and self._ended(session_id):
                self.state.ended.add(session_id)
        return self._all_ended()

    def _all_ended(self) -> bool:
        return not self.state.pending and len(self.state.ended) == self.state.known

    def _ended(self, session_id: str) -> bool:
        try:
            session = self.manager.get(session_id)
        except NotFound:
            return False
        return session.is_ended and (session.failure is None or session.failure.final)

    def _shutdown(self) -> None:
        """Wake frozen workers, tell idle ones to stop, and reap everything within a few seconds."""
        self._stopping = True
        for w in self.state.workers.values():
            if w.alive and (w.frozen_on or w.freeze_requested):
                os.kill(w.process.pid or 0, signal.SIGCONT)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(w.process.is_alive() for w in self.state.workers.values()):
            conns = [w.conn for w in self.state.workers.values() if w.alive]
            for conn in wait(conns, timeout=0.05):
                w = self._by_conn(conn)
                self._drain(w)
                if not w.process.is_alive():
                    w.alive = False
        for w in self.state.workers.values():
            if w.process.is_alive():
                w.process.kill()
            w.process.join()
            with contextlib.suppress(OSError):
                w.conn.close()

    def _note(self, text: str) -> None:
        self.state.events.append(f"{time.monotonic() - self.state.started_at:6.2f}s  {text}")
