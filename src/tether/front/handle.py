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
import builtins
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import timedelta
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from tether.core.errors import ConflictError, InvalidTransition, LeaseLost, NotFound, TetherError
from tether.core.model import Checkpoint, Liveness, Page, Session, State
from tether.flows.runner import Caller, Flow, method_call, run, run_async
from tether.front.methods import stated_as
from tether.front.waiting import stopped_within

logger = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")

# Checkpoints the lifecycle writes itself; an agent resumes from the newest checkpoint that is not one.
LIFECYCLE_CHECKPOINTS = frozenset(
    {"session_paused", "session_resumed", "session_completed", "session_failed", "session_recovered"}
)
RESUME_SCAN = 16  # checkpoints read per step when looking back past lifecycle markers
RESUME_LOOKBACK = 50  # failed sessions of one user and type considered by resume_or_create

Handler = Callable[["SessionHandle", Checkpoint | None], object]
AsyncHandler = Callable[["AsyncSessionHandle", Checkpoint | None], Awaitable[object]]


class Front(Protocol):
    """What handles and worker loops use of their manager (a SessionManager or a `tether.Client`),
    besides the flows below."""

    def create(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        parent_session_id: str | None = None,
    ) -> Session: ...

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_type: str | None = None,
        state: State | str | None = None,
        parent_session_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]: ...

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
    ) -> Page[Session]: ...

    def checkpoints(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> builtins.list[Checkpoint]: ...

    def claim(self, session_id: str, worker_id: str | None = None) -> Session: ...

    def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None: ...

    def checkpoint(
        self, session_id: str, name: str, data: dict[str, Any] | None = None, *, epoch: int | None = None
    ) -> Checkpoint: ...

    def heartbeat(
        self,
        session_id: str,
        *,
        epoch: int | None = None,
        phase: str | None = None,
        expect_silence: float | None = None,
    ) -> None: ...

    def complete(
        self, session_id: str, result: dict[str, Any] | None = None, *, epoch: int | None = None
    ) -> Session: ...

    def fail(
        self,
        session_id: str,
        error: str,
        details: dict[str, Any] | None = None,
        *,
        final: bool = False,
        epoch: int | None = None,
    ) -> Session: ...

    def pause(self, session_id: str, *, epoch: int | None = None) -> Session: ...

    def claim_next(self, agent_types: Iterable[str] | None = None) -> Session | None: ...


class AsyncFront(Protocol):
    """`Front` for asyncio: an AsyncSessionManager or a `tether.AsyncClient`."""

    async def create(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        parent_session_id: str | None = None,
    ) -> Session: ...

    async def list(
        self,
        *,
        user_id: str | None = None,
        agent_type: str | None = None,
        state: State | str | None = None,
        parent_session_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]: ...

    async def stale(
        self,
        *,
        no_heartbeat_for: float | timedelta | None = None,
        paused_for: float | timedelta | None = None,
        liveness: Liveness | str | None = None,
        agent_type: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]: ...

    async def checkpoints(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> builtins.list[Checkpoint]: ...

    async def claim(self, session_id: str, worker_id: str | None = None) -> Session: ...

    async def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None: ...

    async def checkpoint(
        self, session_id: str, name: str, data: dict[str, Any] | None = None, *, epoch: int | None = None
    ) -> Checkpoint: ...

    async def heartbeat(
        self,
        session_id: str,
        *,
        epoch: int | None = None,
        phase: str | None = None,
        expect_silence: float | None = None,
    ) -> None: ...

    async def complete(
        self, session_id: str, result: dict[str, Any] | None = None, *, epoch: int | None = None
    ) -> Session: ...

    async def fail(
        self,
        session_id: str,
        error: str,
        details: dict[str, Any] | None = None,
        *,
        final: bool = False,
        epoch: int | None = None,
    ) -> Session: ...

    async def pause(self, session_id: str, *, epoch: int | None = None) -> Session: ...

    async def claim_next(self, agent_types: Iterable[str] | None = None) -> Session | None: ...


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

    # -- what a handle does, as flows over its manager; each handle runs them its own way ---------
    def _last_checkpoint(self, name: str | None = None) -> Flow[Checkpoint | None]:
        """The newest checkpoint of this session, or the newest with that name."""
        return (yield from ask(Front.last_checkpoint, self.session_id, name))

    def _checkpoint(self, name: str, data: dict[str, Any] | None = None) -> Flow[Checkpoint]:
        """Append a checkpoint; durable when this returns."""
        write = ask(Front.checkpoint, self.session_id, name, data, epoch=self.epoch)
        return (yield from self._fenced(write))

    def _heartbeat(self, *, phase: str | None = None, expect_silence: float | None = None) -> Flow[None]:
        """Beat now, e.g. before a long model call: `heartbeat(phase="llm_call", expect_silence=120)`.

        The phase sticks for the background beats; the announced silence is for this lease only
        (background beats prove the process alive, so they do not stretch the lease further).
        """
        self._phase = phase
        beat = ask(
            Front.heartbeat, self.session_id, epoch=self.epoch, phase=phase, expect_silence=expect_silence
        )
        yield from self._fenced(beat)

    def _complete(self, result: dict[str, Any] | None = None) -> Flow[Session]:
        """End the session successfully before the block ends (the block then writes nothing)."""
        return (yield from self._ending(ask(Front.complete, self.session_id, result, epoch=self.epoch)))

    def _fail(
        self, error: str, details: dict[str, Any] | None = None, *, final: bool = False
    ) -> Flow[Session]:
        """Fail the session (recoverable per policy unless final); the block then writes nothing."""
        write = ask(Front.fail, self.session_id, error, details, final=final, epoch=self.epoch)
        return (yield from self._ending(write))

    def _pause(self) -> Flow[Session]:
        """Pause the session (idle until someone resumes it) before the block ends; the block then
        writes nothing."""
        return (yield from self._ending(ask(Front.pause, self.session_id, epoch=self.epoch)))

    def _exit(self, exc: BaseException | None) -> Flow[None]:
        """The block's end: complete, or fail with the exception's message and type, unless the
        session ended already or is not this handle's to fail any more."""
        if self._ended or (exc is not None and (self._lost is not None or isinstance(exc, LeaseLost))):
            return
        try:
            if exc is None:
                yield from self._complete()
            else:
                yield from self._fail(str(exc) or type(exc).__name__, {"type": exception_type(exc)})
        except TetherError:
            if exc is None:
                raise
            logger.exception("could not record the failure of session %s", self.session_id)

    def _fenced(self, write: Flow[T]) -> Flow[T]:
        """A write while this handle owns the session: refused once the lease is lost."""
        self._refuse_if_lost()
        try:
            return (yield from write)
        except LeaseLost as exc:
            self._lose(exc)
            raise

    def _ending(self, write: Flow[Session]) -> Flow[Session]:
        after = yield from self._fenced(write)
        self._session, self._ended = after, True
        return after


def runs(flow: Callable[Concatenate[HandleState, P], Flow[T]]) -> Callable[Concatenate[SessionHandle, P], T]:
    """`SessionHandle`'s method that runs one of `HandleState`'s flows on the handle's manager."""

    def method(self: SessionHandle, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return run(flow(self, *args, **kwargs), self.manager)

    return stated_as(flow, method)


def ends(flow: Callable[Concatenate[HandleState, P], Flow[T]]) -> Callable[Concatenate[SessionHandle, P], T]:
    """`runs`, for a write that ends the session: the background beats stop first."""

    def method(self: SessionHandle, /, *args: P.args, **kwargs: P.kwargs) -> T:
        self._stop_beating()
        return run(flow(self, *args, **kwargs), self.manager)

    return stated_as(flow, method)


def awaits(
    flow: Callable[Concatenate[HandleState, P], Flow[T]],
) -> Callable[Concatenate[AsyncSessionHandle, P], Coroutine[Any, Any, T]]:
    """`runs` for `AsyncSessionHandle`: a coroutine."""

    async def method(self: AsyncSessionHandle, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await run_async(flow(self, *args, **kwargs), self.manager)

    return stated_as(flow, method)


def ends_async(
    flow: Callable[Concatenate[HandleState, P], Flow[T]],
) -> Callable[Concatenate[AsyncSessionHandle, P], Coroutine[Any, Any, T]]:
    """`ends` for `AsyncSessionHandle`: a coroutine."""

    async def method(self: AsyncSessionHandle, /, *args: P.args, **kwargs: P.kwargs) -> T:
        await self._stop_beating()
        return await run_async(flow(self, *args, **kwargs), self.manager)

    return stated_as(flow, method)


class SessionHandle(HandleState):
    """One owned session. Use it as a context manager; writes outside the block are refused."""

    def __init__(
        self,
        manager: Front,
        start: Callable[[], Session],
        *,
        heartbeat_every: float | None = None,
    ) -> None:
        super().__init__(heartbeat_every)
        self.manager = manager
        self._start = start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    last_checkpoint = runs(HandleState._last_checkpoint)
    checkpoint = runs(HandleState._checkpoint)
    heartbeat = runs(HandleState._heartbeat)
    complete = ends(HandleState._complete)
    fail = ends(HandleState._fail)
    pause = ends(HandleState._pause)

    # -- the block ---------------------------------------------------------------------------
    def __enter__(self) -> SessionHandle:
        interval = self._started(self._start())
        self.resumed_from = run(resume_point(self.session), self.manager)
        self._thread = threading.Thread(
            target=self._beat, args=(interval,), name=f"tether-heartbeat-{self.session_id}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop_beating()
        run(self._exit(exc), self.manager)

    # -- internals ---------------------------------------------------------------------------
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
        manager: AsyncFront,
        start: Callable[[], Awaitable[Session]],
        *,
        heartbeat_every: float | None = None,
    ) -> None:
        super().__init__(heartbeat_every)
        self.manager = manager
        self._start = start
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    last_checkpoint = awaits(HandleState._last_checkpoint)
    checkpoint = awaits(HandleState._checkpoint)
    heartbeat = awaits(HandleState._heartbeat)
    complete = ends_async(HandleState._complete)
    fail = ends_async(HandleState._fail)
    pause = ends_async(HandleState._pause)

    # -- the block ---------------------------------------------------------------------------
    async def __aenter__(self) -> AsyncSessionHandle:
        interval = self._started(await self._start())
        self.resumed_from = await run_async(resume_point(self.session), self.manager)
        self._task = asyncio.get_running_loop().create_task(
            self._beat(interval), name=f"tether-heartbeat-{self.session_id}"
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop_beating()
        await run_async(self._exit(exc), self.manager)

    # -- internals ---------------------------------------------------------------------------
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


def exception_type(exc: BaseException) -> str:
    """`ValueError` for builtins, `package.module.Name` otherwise."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# -- how a handle's session starts: flows over the front door's public methods ------------------------
# Driven by `tether.flows.runner.run` / `run_async` on a SessionManager, an AsyncSessionManager or a
# `tether.Client` / `AsyncClient` alike, so taking over and resuming is decided once for all four.
ask: Caller[Front] = method_call  # `yield from ask(Front.claim, session_id)`: typed as Front.claim


def resume_point(session: Session) -> Flow[Checkpoint | None]:
    """The newest checkpoint the agent wrote itself, skipping lifecycle markers: where to go on from."""
    upper = session.last_seq
    while upper > 0:
        lower = max(0, upper - RESUME_SCAN)
        batch = yield from ask(Front.checkpoints, session.session_id, after_seq=lower, limit=upper - lower)
        for cp in reversed(batch):
            if cp.name not in LIFECYCLE_CHECKPOINTS:
                return cp
        upper = lower
    return None


class Start:
    """How a handle's session starts: the flows behind the front doors' `open` and
    `resume_or_create`, whose signatures and docstrings they are (see `opens`)."""

    @staticmethod
    def open(
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        parent_session_id: str | None = None,
    ) -> Flow[Session]:
        """`with manager.open(...) as s:` (`async with` on the async doors) creates the session (or
        takes over `session_id` if it exists and is claimable), heartbeats in the background,
        completes on exit, fails on error."""
        try:
            return (
                yield from ask(
                    Front.create,
                    agent_type,
                    user_id,
                    context=context,
                    metadata=metadata,
                    session_id=session_id,
                    parent_session_id=parent_session_id,
                )
            )
        except ConflictError:
            if session_id is None:
                raise
            return (yield from ask(Front.claim, session_id))

    @staticmethod
    def resume_or_create(
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        parent_session_id: str | None = None,
    ) -> Flow[Session]:
        """Like `open`, but first takes over this user's dead or recoverably failed session of this
        type if there is one; `handle.resumed_from` is then the checkpoint to continue from."""
        dead = ask(
            Front.stale, liveness=Liveness.DEAD, agent_type=agent_type, user_id=user_id, limit=RESUME_LOOKBACK
        )
        failed = ask(
            Front.list, state=State.FAILED, agent_type=agent_type, user_id=user_id, limit=RESUME_LOOKBACK
        )
        for candidates in (dead, failed):
            page = yield from candidates
            for candidate in page:
                if candidate.state is State.FAILED and (candidate.failure is None or candidate.failure.final):
                    continue
                try:
                    claimed = yield from ask(Front.claim, candidate.session_id)
                except (ConflictError, NotFound):
                    continue  # taken by another worker first, or out of recoveries
                return claimed
        create = ask(
            Front.create,
            agent_type,
            user_id,
            context=context,
            metadata=metadata,
            parent_session_id=parent_session_id,
        )
        return (yield from create)


def opens(start: Callable[P, Flow[Session]]) -> Callable[Concatenate[Front, P], SessionHandle]:
    """The sync door's method that hands out a `SessionHandle` whose session `start` begins."""

    def method(self: Front, /, *args: P.args, **kwargs: P.kwargs) -> SessionHandle:
        return SessionHandle(self, lambda: run(start(*args, **kwargs), self))

    return stated_as(start, method, returns="SessionHandle")


def opens_async(
    start: Callable[P, Flow[Session]],
) -> Callable[Concatenate[AsyncFront, P], AsyncSessionHandle]:
    """`opens` for the async doors: an `AsyncSessionHandle`."""

    def method(self: AsyncFront, /, *args: P.args, **kwargs: P.kwargs) -> AsyncSessionHandle:
        return AsyncSessionHandle(self, lambda: run_async(start(*args, **kwargs), self))

    return stated_as(start, method, returns="AsyncSessionHandle")
