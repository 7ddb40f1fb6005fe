"""`with manager.open(...) as s:` — an owned session that keeps itself alive and ends with the block.

The handle heartbeats in the background at a third of the timeout, carries its epoch on every
write, completes the session when the block ends normally and fails it (recoverably, per policy) with
the exception's message and type when the block raises. Once the lease is lost (another worker took
over, or the session was ended under it) it writes nothing more: every later write raises LeaseLost,
so a zombie agent can never clobber the worker that replaced it.

`SessionHandle` beats from a thread, `AsyncSessionHandle` (`async with`) from an asyncio task; what a
handle knows and decides is `HandleState`, and how a session is started or resumed is a flow
(`tether.flows.runner`), so the two differ only in how they wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tether.core.errors import ConflictError, InvalidTransition, LeaseLost, NotFound, TetherError
from tether.core.model import Checkpoint, Page, Session, SessionFilter, State
from tether.flows.runner import Flow, store

if TYPE_CHECKING:
    from tether.flows.operations import Operations
    from tether.front.aio import AsyncSessionManager
    from tether.front.manager import SessionManager

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Checkpoints the lifecycle writes itself; an agent resumes from the newest checkpoint that is not one.
LIFECYCLE_CHECKPOINTS = frozenset(
    {"session_paused", "session_resumed", "session_completed", "session_failed", "session_recovered"}
)
RESUME_SCAN = 16  # checkpoints read per step when looking back past lifecycle markers
RESUME_LOOKBACK = 50  # failed sessions of one user and type considered by resume_or_create

Handler = Callable[["SessionHandle", Checkpoint | None], object]
AsyncHandler = Callable[["AsyncSessionHandle", Checkpoint | None], Awaitable[object]]


class HandleState(ABC):
    """What a handle knows, and what it decides when a beat fails or its block ends."""

    def __init__(self, heartbeat_every: float | None) -> None:
        self._every = heartbeat_every
        self._session: Session | None = None
        self.resumed_from: Checkpoint | None = None  # the agent's last checkpoint when taken over
        self._phase: str | None = None
        self._lost: LeaseLost | None = None
        self._ended = False

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

    def _started(self, session: Session) -> float:
        """Record the owned session; returns the heartbeat interval."""
        self._session = session
        return self._every if self._every is not None else session.heartbeat_timeout / 3

    def _refuse_if_lost(self) -> None:
        if self._lost is not None:
            raise LeaseLost(self.session_id, self._lost.epoch, self._lost.current_epoch, self._lost.reason)

    def _lose(self, exc: LeaseLost) -> None:
        if self._lost is None:
            self._lost = exc
            self._stop_beats()

    @abstractmethod
    def _stop_beats(self) -> None:
        """Tell the background beats to stop (without waiting for them)."""

    def _beat_failed(self, exc: TetherError) -> None:
        if isinstance(exc, LeaseLost):
            self._lose(exc)
        elif isinstance(exc, InvalidTransition):  # ended under us (e.g. timed out by a supervisor)
            self._lose(LeaseLost(self.session_id, self.epoch, self.epoch, f"the session is {exc.state}"))
        else:
            logger.warning("heartbeat for %s failed; retrying", self.session_id, exc_info=exc)

    def _on_exit(self, exc: BaseException | None) -> Literal["complete", "fail", "nothing"]:
        if self._ended or (exc is not None and (self._lost is not None or isinstance(exc, LeaseLost))):
            return "nothing"  # ended already, or not ours to fail any more
        return "complete" if exc is None else "fail"


class SessionHandle(HandleState):
    """One owned session. Use it as a context manager; writes outside the block are refused."""

    def __init__(
        self,
        manager: SessionManager,
        start: Callable[[], Session],
        *,
        heartbeat_every: float | None = None,
    ) -> None:
        super().__init__(heartbeat_every)
        self.manager = manager
        self._start = start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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

    def pause(self) -> Session:
        """Pause the session (idle until someone resumes it) before the block ends; the block then
        writes nothing."""
        return self._end(lambda: self.manager.pause(self.session_id, epoch=self.epoch))

    # -- the block ---------------------------------------------------------------------------
    def __enter__(self) -> SessionHandle:
        interval = self._started(self._start())
        self.resumed_from = self.manager._run(resume_point(self.manager.ops, self.session))
        self._thread = threading.Thread(
            target=self._beat, args=(interval,), name=f"tether-heartbeat-{self.session_id}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop_beating()
        action = self._on_exit(exc)
        try:
            if action == "complete":
                self.complete()
            elif action == "fail" and exc is not None:
                self.fail(str(exc) or type(exc).__name__, {"type": exception_type(exc)})
        except TetherError:
            if action == "complete":
                raise
            logger.exception("could not record the failure of session %s", self.session_id)

    # -- internals ---------------------------------------------------------------------------
    def _write(self, call: Callable[[], T]) -> T:
        self._refuse_if_lost()
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

    def _stop_beats(self) -> None:
        self._stop.set()

    def _stop_beating(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.manager.heartbeat(self.session_id, epoch=self.epoch, phase=self._phase)
            except TetherError as exc:
                self._beat_failed(exc)


class AsyncSessionHandle(HandleState):
    """`SessionHandle` for asyncio: `async with manager.open(...) as s:`, beats from a task."""

    def __init__(
        self,
        manager: AsyncSessionManager,
        start: Callable[[], Awaitable[Session]],
        *,
        heartbeat_every: float | None = None,
    ) -> None:
        super().__init__(heartbeat_every)
        self.manager = manager
        self._start = start
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def last_checkpoint(self, name: str | None = None) -> Checkpoint | None:
        return await self.manager.last_checkpoint(self.session_id, name)

    # -- fenced writes -----------------------------------------------------------------------
    async def checkpoint(self, name: str, data: dict[str, Any] | None = None) -> Checkpoint:
        """Append a checkpoint; durable when this returns."""
        return await self._write(
            lambda: self.manager.checkpoint(self.session_id, name, data, epoch=self.epoch)
        )

    async def heartbeat(self, *, phase: str | None = None, expect_silence: float | None = None) -> None:
        """See `SessionHandle.heartbeat`."""
        self._phase = phase
        await self._write(
            lambda: self.manager.heartbeat(
                self.session_id, epoch=self.epoch, phase=phase, expect_silence=expect_silence
            )
        )

    async def complete(self, result: dict[str, Any] | None = None) -> Session:
        """End the session successfully before the block ends (the block then writes nothing)."""
        return await self._end(lambda: self.manager.complete(self.session_id, result, epoch=self.epoch))

    async def fail(
        self, error: str, details: dict[str, Any] | None = None, *, final: bool = False
    ) -> Session:
        """Fail the session (recoverable per policy unless final); the block then writes nothing."""
        return await self._end(
            lambda: self.manager.fail(self.session_id, error, details, final=final, epoch=self.epoch)
        )

    async def pause(self) -> Session:
        """See `SessionHandle.pause`."""
        return await self._end(lambda: self.manager.pause(self.session_id, epoch=self.epoch))

    # -- the block ---------------------------------------------------------------------------
    async def __aenter__(self) -> AsyncSessionHandle:
        interval = self._started(await self._start())
        self.resumed_from = await self.manager._run(resume_point(self.manager.ops, self.session))
        self._task = asyncio.get_running_loop().create_task(
            self._beat(interval), name=f"tether-heartbeat-{self.session_id}"
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop_beating()
        action = self._on_exit(exc)
        try:
            if action == "complete":
                await self.complete()
            elif action == "fail" and exc is not None:
                await self.fail(str(exc) or type(exc).__name__, {"type": exception_type(exc)})
        except TetherError:
            if action == "complete":
                raise
            logger.exception("could not record the failure of session %s", self.session_id)

    # -- internals ---------------------------------------------------------------------------
    async def _write(self, call: Callable[[], Awaitable[T]]) -> T:
        self._refuse_if_lost()
        try:
            return await call()
        except LeaseLost as exc:
            self._lose(exc)
            raise

    async def _end(self, call: Callable[[], Awaitable[Session]]) -> Session:
        await self._stop_beating()
        after = await self._write(call)
        self._session, self._ended = after, True
        return after

    def _stop_beats(self) -> None:
        self._stop.set()

    async def _stop_beating(self) -> None:
        self._stop.set()
        if self._task is not None and self._task is not asyncio.current_task():
            await asyncio.wait([self._task])

    async def _beat(self, interval: float) -> None:
        while not await stopped_within(self._stop, interval):
            try:
                await self.manager.heartbeat(self.session_id, epoch=self.epoch, phase=self._phase)
            except TetherError as exc:
                self._beat_failed(exc)


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """`threading.Event.wait(timeout)` for asyncio: True once `stop` is set, False on timeout."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


def exception_type(exc: BaseException) -> str:
    """`ValueError` for builtins, `package.module.Name` otherwise."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# -- how a handle's session starts: flows, run by either manager ---------------------------------
def resume_point(ops: Operations, session: Session) -> Flow[Checkpoint | None]:
    """The newest checkpoint the agent wrote itself, skipping lifecycle markers: where to go on from."""
    upper = session.last_seq
    while upper > 0:
        lower = max(0, upper - RESUME_SCAN)
        batch = yield from ops.checkpoints(session.session_id, lower, upper - lower, None)
        for cp in reversed(batch):
            if cp.name not in LIFECYCLE_CHECKPOINTS:
                return cp
        upper = lower
    return None


def create_or_claim(
    ops: Operations, session_id: str | None, agent_type: str, user_id: str, create: dict[str, Any]
) -> Flow[Session]:
    """Create the session; if that id exists already, take it over (NotClaimable if still owned)."""
    try:
        return (yield from _create(ops, agent_type, user_id, session_id, create))
    except ConflictError:
        if session_id is None:
            raise
        return (yield from ops.claim(session_id, None))


def claim_or_create(ops: Operations, agent_type: str, user_id: str, create: dict[str, Any]) -> Flow[Session]:
    """Take over this user's dead or recoverably failed session of this type, else start one."""
    now = yield store.now()
    dead = SessionFilter(user_id=user_id, agent_type=agent_type, lease_expired_at=now)
    failed = SessionFilter(user_id=user_id, agent_type=agent_type, state=State.FAILED)
    for where in (dead, failed):
        page: Page[Session] = yield store.query(where, RESUME_LOOKBACK, None)
        for candidate in page:
            if candidate.state is State.FAILED and (candidate.failure is None or candidate.failure.final):
                continue
            try:
                return (yield from ops.claim(candidate.session_id, None))
            except (ConflictError, NotFound):
                continue  # taken by another worker first, or out of recoveries
    return (yield from _create(ops, agent_type, user_id, None, create))


def _create(
    ops: Operations, agent_type: str, user_id: str, session_id: str | None, create: dict[str, Any]
) -> Flow[Session]:
    return ops.create(
        agent_type, user_id, create["context"], create["metadata"], session_id, create["parent_session_id"]
    )
