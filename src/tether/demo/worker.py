"""One demo worker process: claims dead sessions first, else starts the job the dispatcher hands it.

It talks to the parent over its own pipe (a shared queue could be corrupted by a SIGKILLed writer).
Messages to the parent are tuples whose first item names them; see `tether.demo.fleet`.
Every checkpoint is reported ("ack") only after `checkpoint()` returned, i.e. once it is durable,
so the parent can later prove that no acknowledged checkpoint was lost.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tether.core.errors import ConflictError, InvalidTransition, LeaseLost, TetherError
from tether.core.model import Session
from tether.core.policy import OnTimeout, Policies, Policy
from tether.demo.agents import AGENT_TYPES, LLM_STEPS, STEPS, Job, children_of, fingerprint, step_data
from tether.events.bus import bridge
from tether.front.manager import SessionManager


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    store_url: str
    redis_url: str | None
    events_url: str | None
    worker_id: str
    timeout: float  # heartbeat timeout of every demo agent type
    step_seconds: float  # mean simulated work per step
    seed: int


def demo_policies(timeout: float) -> Policies:
    """Every type recovers, and often: the chaos here is far denser than a real fleet's, and a session
    unlucky enough to be killed many times in a row must still finish."""
    return Policies(
        Policy(timeout=timeout, suspect_after=timeout / 2, on_timeout=OnTimeout.RECOVER, max_recoveries=100)
    )


FLUSH_ONLY_ON_CLOSE = 24 * 3600.0


class Outbox:
    """The pipe to the parent, shared by the work loop and the heartbeat thread."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def send(self, *message: Any) -> None:
        with self._lock:
            self.conn.send(message)


class Beater(threading.Thread):
    """Heartbeats the session the worker is running, at a quarter of the timeout.

    `write_lock` is held around every store write of this process, so freezing the process while
    holding it guarantees it is frozen outside any database transaction.
    """

    def __init__(self, manager: SessionManager, outbox: Outbox, interval: float) -> None:
        super().__init__(daemon=True, name="tether-demo-beater")
        self.manager, self.outbox, self.interval = manager, outbox, interval
        self.write_lock = threading.Lock()
        self.current: tuple[str, int] | None = None
        self.phase = "working"

    def run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self.write_lock:  # `current` is cleared under it too: never a beat after the end
                current = self.current
                if current is None:
                    continue
                try:
                    self.manager.heartbeat(current[0], epoch=current[1], phase=self.phase)
                except (LeaseLost, InvalidTransition) as exc:
                    if self.current == current:
                        self.current = None
                        self.outbox.send("rejected", current[0], "heartbeat", type(exc).__name__)
                except TetherError:
                    continue  # a busy store: the next beat tries again


class Worker:
    def __init__(self, settings: WorkerSettings, conn: Connection) -> None:
        self.settings = settings
        self.outbox = Outbox(conn)
        self.manager = SessionManager(
            settings.store_url,
            policies=demo_policies(settings.timeout),
            worker_id=settings.worker_id,
            redis_url=settings.redis_url,
        )
        self.beater = Beater(self.manager, self.outbox, settings.timeout / 4)
        self.random = random.Random(settings.seed)
        self.freeze_requested = False

    def serve(self) -> None:
        """Recover dead sessions first; else ask for a job; stop when told."""
        signal.signal(signal.SIGUSR1, self._request_freeze)
        self.beater.start()
        self.outbox.send("hello", self.settings.worker_id, os.getpid())
        while True:
            session = self._claim_next()
            if session is not None:
                self.run(session, claimed=True)
                continue
            self.outbox.send("idle")
            reply = self.outbox.conn.recv()
            if reply[0] == "stop":
                return
            if reply[0] == "job":
                session = self._start(reply[1])
                if session is not None:
                    self.run(session, claimed=False)
            else:
                time.sleep(0.05)

    def _claim_next(self) -> Session | None:
        with self.beater.write_lock:
            try:
                return self.manager.claim_next(AGENT_TYPES)
            except TetherError:
                return None

    def _start(self, job: Job) -> Session | None:
        with self.beater.write_lock:
            try:
                session = self.manager.create(
                    job.agent_type,
                    job.user_id,
                    session_id=job.session_id,
                    parent_session_id=job.parent_session_id,
                )
            except ConflictError:  # a re-sent job whose session exists: recovery owns it
                self.outbox.send("duplicate", job.session_id)
                return None
            except TetherError:  # e.g. a busy store: nothing was written, the job goes back
                self.outbox.send("not_started", job)
                return None
        self.outbox.send("started", session.session_id, session.epoch)
        return session

    def run(self, session: Session, *, claimed: bool) -> None:
        """Run the agent from its newest step checkpoint to the end, unless the lease is lost."""
        sid, epoch, steps = session.session_id, session.epoch, STEPS[session.agent_type]
        state, step, resumed_seq = self._resume_point(session)
        if claimed:
            self.outbox.send("claimed", sid, epoch, resumed_seq)
        self.beater.current = (sid, epoch)
        try:
            for index in range(step, len(steps)):
                self._maybe_freeze()
                self.beater.phase = "llm_call" if steps[index] in LLM_STEPS else "working"
                time.sleep(self.random.uniform(0.5, 1.5) * self.settings.step_seconds)
                if steps[index] == "children_spawned":
                    job = Job(sid, session.agent_type, session.user_id, session.parent_session_id)
                    for child in children_of(job):
                        self.outbox.send("spawn", child)
                state = step_data(session.agent_type, index, state)
                with self.beater.write_lock:
                    cp = self.manager.checkpoint(sid, steps[index], state, epoch=epoch)
                self.outbox.send("ack", sid, cp.seq, cp.name, fingerprint(cp.data), epoch)
            with self.beater.write_lock:
                self.manager.complete(sid, {"digest": state["digest"]}, epoch=epoch)
                self.beater.current = None
            self.outbox.send("done", sid)
        except (LeaseLost, InvalidTransition) as exc:  # a zombie: someone else owns it now
            self.outbox.send("rejected", sid, "checkpoint", type(exc).__name__)
        except TetherError as exc:  # the store failed us: drop the session; its lease will expire
            self.outbox.send("abandoned", sid, str(exc))
        finally:
            self.beater.current = None

    def _resume_point(self, session: Session) -> tuple[dict[str, Any], int, int]:
        """(state, next step, seq of the step checkpoint resumed from); steps only move forward,
        so the newest checkpoint of the latest step name is where the previous owner got to."""
        for name in reversed(STEPS[session.agent_type]):
            cp = self.manager.last_checkpoint(session.session_id, name)
            if cp is not None:
                return cp.data, int(cp.data["step"]) + 1, cp.seq
        return {}, 0, 0

    def _request_freeze(self, signum: int, frame: object) -> None:
        self.freeze_requested = True

    def _maybe_freeze(self) -> None:
        """Stop this whole process (SIGSTOP) between writes, like a VM pause or a GC stall."""
        if not self.freeze_requested:
            return
        self.freeze_requested = False
        with self.beater.write_lock:
            self.outbox.send("frozen")
            os.kill(os.getpid(), signal.SIGSTOP)
        self.outbox.send("thawed")


def main(settings: WorkerSettings, conn: Connection) -> None:
    """Process entry point (multiprocessing target)."""
    # With leases in Redis, the store's copy is refreshed by a background flusher whose writes the
    # write lock does not cover; a worker frozen inside one would stall every writer. Redis holds the
    # truth during the demo, so the workers flush only when they close.
    os.environ["TETHER_REDIS_FLUSH_INTERVAL"] = str(FLUSH_ONLY_ON_CLOSE)
    worker = Worker(settings, conn)
    events = (
        bridge(worker.manager.events, settings.events_url, worker.manager.store.url)
        if settings.events_url
        else None
    )
    try:
        worker.serve()
    finally:
        if events is not None:
            events.close()
        worker.manager.close()
