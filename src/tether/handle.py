"""`with manager.open(...) as s:` — an owned session that keeps itself alive and ends with the block.

The handle heartbeats from a background thread at a third of the timeout, carries its epoch on every
write, completes the session when the block ends normally and fails it (recoverably, per policy) with
the exception's message and type when the block raises. Once the lease is lost (another worker took
over, or the session was ended under it) it writes nothing more: every later write raises LeaseLost,
so a zombie agent can never clobber the worker that replaced it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from tether.errors import ConflictError, InvalidTransition, LeaseLost, NotFound, TetherError
from tether.model import Checkpoint, Session, SessionFilter, State

if TYPE_CHECKING:
    from tether.manager import SessionManager

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Checkpoints the lifecycle writes itself; an agent resumes from the newest checkpoint that is not one.
LIFECYCLE_CHECKPOINTS = frozenset(
    {"session_paused", "session_resumed", "session_completed", "session_failed", "session_recovered"}
)
RESUME_SCAN = 16  # checkpoints read per step when looking back past lifecycle markers
RESUME_LOOKBACK = 50  # failed sessions of one user and type considered by resume_or_create

Handler = Callable[["SessionHandle", Checkpoint | None], object]


class SessionHandle:
    """One owned session. Use it as a context manager; writes outside the block are refused."""

    def __init__(
        self,
        manager: SessionManager,
        start: Callable[[], Session],
        *,
        heartbeat_every: float | None = None,
    ) -> None:
        self.manager = manager
        self._start = start
        self._every = heartbeat_every
        self._session: Session | None = None
        self.resumed_from: Checkpoint | None = None  # the agent's last checkpoint when taken over
        self._phase: str | None = None
        self._lost: LeaseLost | None = None
        self._ended = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the owner knows ----------------------------------------------------------------
    @property
    def session(self) -> Session:
        """The session as of this handle's last write (heartbeats do not refresh it)."""
        if self._session is None:
            raise RuntimeError("the session handle is used outside its with-block")
        return self._session

    @property
    def session_id(self) -> str:
        return self.session.session_id

    @property
    def epoch(self) -> int:
        return self.session.epoch

    @property
    def lost(self) -> LeaseLost | None:
        """Why this handle stopped writing, once another owner took over; else None."""
        return self._lost

    def last_checkpoint(self, name: str | None = None) -> Checkpoint | None:
        return self.manager.last_checkpoint(self.session_id, name)

    # -- fenced writes -----------------------------------------------------------------------
    def checkpoint(self, name: str, data: dict[str, Any] | None = None) -> Checkpoint:
        """Append a checkpoint; durable when this returns."""
        return self._write(lambda: self.manager.checkpoint(self.session_id, name, data, epoch=self.epoch))

    def heartbeat(self, *, phase: str | None = None, expect_silence: float | None = None) -> None:
        """Beat now, e.g. before a long model call: `heartbeat(phase="llm_call", expect_silence=120)`.

        The phase sticks for the background beats; the announced silence is for this lease only
        (background beats prove the process alive, so they do not stretch the lease further).
        """
        self._phase = phase
        self._write(
            lambda: self.manager.heartbeat(
                self.session_id, epoch=self.epoch, phase=phase, expect_silence=expect_silence
            )
        )

    def complete(self, result: dict[str, Any] | None = None) -> Session:
        """End the session successfully before the block ends (the block then writes nothing)."""
        return self._end(lambda: self.manager.complete(self.session_id, result, epoch=self.epoch))

    def fail(self, error: str, details: dict[str, Any] | None = None, *, final: bool = False) -> Session:
        """Fail the session (recoverable per policy unless final); the block then writes nothing."""
        return self._end(
            lambda: self.manager.fail(self.session_id, error, details, final=final, epoch=self.epoch)
        )

    # -- the block ---------------------------------------------------------------------------
    def __enter__(self) -> SessionHandle:
        session = self._start()
        self._session = session
        self.resumed_from = resume_point(self.manager, session.session_id, session.last_seq)
        interval = self._every if self._every is not None else session.heartbeat_timeout / 3
        self._thread = threading.Thread(
            target=self._beat, args=(interval,), name=f"tether-heartbeat-{session.session_id}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop_beating()
        if self._ended:
            return
        if exc is None:
            self.complete()
            return
        if self._lost is not None or isinstance(exc, LeaseLost):
            return  # not ours to fail any more
        try:
            self.fail(str(exc) or type(exc).__name__, {"type": exception_type(exc)})
        except TetherError:
            logger.exception("could not record the failure of session %s", self.session_id)

    # -- internals ---------------------------------------------------------------------------
    def _write(self, call: Callable[[], T]) -> T:
        if self._lost is not None:
            raise LeaseLost(self.session_id, self._lost.epoch, self._lost.current_epoch, self._lost.reason)
        try:
            return call()
        except LeaseLost as exc:
            self._lose(exc)
            raise

    def _end(self, call: Callable[[], Session]) -> Session:
        self._stop_beating()
        after = self._write(call)
        self._session, self._ended = after, True
        return after

    def _lose(self, exc: LeaseLost) -> None:
        if self._lost is None:
            self._lost = exc
            self._stop.set()

    def _stop_beating(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.manager.heartbeat(self.session_id, epoch=self.epoch, phase=self._phase)
            except LeaseLost as exc:
                self._lose(exc)
            except InvalidTransition as exc:  # ended under us (e.g. timed out by a supervisor)
                self._lose(LeaseLost(self.session_id, self.epoch, self.epoch, f"the session is {exc.state}"))
            except TetherError:
                logger.warning("heartbeat for %s failed; retrying", self.session_id, exc_info=True)


def exception_type(exc: BaseException) -> str:
    """`ValueError` for builtins, `package.module.Name` otherwise."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def resume_point(manager: SessionManager, session_id: str, last_seq: int) -> Checkpoint | None:
    """The newest checkpoint the agent wrote itself, skipping lifecycle markers: where to go on from."""
    upper = last_seq
    while upper > 0:
        lower = max(0, upper - RESUME_SCAN)
        batch = manager.checkpoints(session_id, after_seq=lower, limit=upper - lower)
        for cp in reversed(batch):
            if cp.name not in LIFECYCLE_CHECKPOINTS:
                return cp
        upper = lower
    return None


def create_or_claim(
    manager: SessionManager, session_id: str | None, agent_type: str, user_id: str, **create: Any
) -> Session:
    """Create the session; if that id exists already, take it over (NotClaimable if still owned)."""
    try:
        return manager.create(agent_type, user_id, session_id=session_id, **create)
    except ConflictError:
        if session_id is None:
            raise
        return manager.claim(session_id)


def claim_or_create(manager: SessionManager, agent_type: str, user_id: str, **create: Any) -> Session:
    """Take over this user's dead or recoverably failed session of this type, else start one."""
    for session_id in _resumable(manager, agent_type, user_id):
        try:
            return manager.claim(session_id)
        except (ConflictError, NotFound):
            continue  # taken by another worker first, or out of recoveries
    return manager.create(agent_type, user_id, **create)


def _resumable(manager: SessionManager, agent_type: str, user_id: str) -> Iterator[str]:
    now = manager.store.now()
    dead = SessionFilter(user_id=user_id, agent_type=agent_type, lease_expired_at=now)
    failed = SessionFilter(user_id=user_id, agent_type=agent_type, state=State.FAILED)
    yield from (s.session_id for s in manager.store.query(dead, RESUME_LOOKBACK))
    for s in manager.store.query(failed, RESUME_LOOKBACK):
        if s.failure is not None and not s.failure.final:
            yield s.session_id


def run_worker(
    manager: SessionManager,
    agent_types: Iterable[str] | None,
    handler: Handler,
    stop: threading.Event,
    poll_interval: float,
) -> int:
    """Claim, run, repeat until `stop` is set; a failing handler fails its session, not the worker."""
    types = None if agent_types is None else frozenset(agent_types)
    handled = 0
    while not stop.is_set():
        session = manager.claim_next(types)
        if session is None:
            stop.wait(poll_interval)
            continue
        handled += 1
        try:
            with SessionHandle(manager, _given(session)) as handle:
                handler(handle, handle.resumed_from)
        except LeaseLost:
            logger.info("session %s was taken over while this worker ran it", session.session_id)
        except Exception:
            logger.exception("handler failed on session %s", session.session_id)
    return handled


def _given(session: Session) -> Callable[[], Session]:
    """A start for a session this worker has already claimed."""
    return lambda: session
