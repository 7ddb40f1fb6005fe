"""Flows: manager operations written once, for a sync and an async store alike.

A flow is a generator that validates and decides in plain Python and delegates each store call it
needs to `call`, receiving the call's result (or having the store's exception raised there)::

    session = yield from call(Store.get, session_id)
    write = lifecycle.pause(session, (yield from call(Store.now)))
    after = yield from call(Store.apply, write)

`call(Store.get, session_id)` is typed by the `Store` method it names: mypy checks its arguments
and gives the result the method's return type (`Session` here). It yields the call, by name, for
the driver: `run` makes it on a `Store`, `run_async` awaits it on an `AsyncStore`, whose methods have
the same names and arguments. Those two drivers are the only code that differs between
`SessionManager` and `AsyncSessionManager`. Flows over another target (the front doors' public
methods, for session handles) get their own typed `Caller` the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from operator import methodcaller
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, cast

from tether.core.sealing import PayloadCodec
from tether.flows.sealing import Sealed
from tether.stores.base import AsyncStore, Store

T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", covariant=True)
Target = TypeVar("Target")

# A call as the driver makes it: `methodcaller("get", session_id)(store)`.
Flow = Generator[methodcaller, Any, T]


class Caller(Protocol, Generic[S]):
    """`yield from call(S.method, *args)`: a call of one of S's methods, typed as that method."""

    def __call__(
        self, method: Callable[Concatenate[S, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Flow[T]: ...


def method_call(method: Callable[Concatenate[Any, P], T], /, *args: P.args, **kwargs: P.kwargs) -> Flow[T]:
    """Yield `method`'s call by name for the driver; return what the driver sends back."""
    result: T = yield methodcaller(method.__name__, *args, **kwargs)
    return result


call: Caller[Store] = method_call  # flows over a store


def run(flow: Generator[Callable[[Target], Any], Any, T], target: Target) -> T:
    """Run a flow against a sync store (or any object whose methods its calls name, such as a
    manager or `tether.Client`): make each call, send back its result or throw its error."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as done:
            return cast(T, done.value)
        try:
            result, error = step(target), None
        except Exception as exc:
            result, error = None, exc


async def run_async(flow: Generator[Callable[[Target], Any], Any, T], target: Target) -> T:
    """`run`, awaiting each call on an async store."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as done:
            return cast(T, done.value)
        try:
            result, error = await step(target), None
        except Exception as exc:
            result, error = None, exc


class Runner:
    """Runs flows on one sync store: `manager.runner(manager.ops.get(id))`. What a front door and the
    helpers it hands out (supervisors) share, so they run flows exactly as it does. With a payload
    codec, the flows see the store through it (`tether.flows.sealing`)."""

    def __init__(self, target: Store, codec: PayloadCodec | None = None) -> None:
        self.store = target
        self._through: Store | Sealed = target if codec is None else Sealed(target, codec)

    def __call__(self, flow: Flow[T]) -> T:
        return run(flow, self._through)


class AsyncRunner:
    """`Runner` for an async store, which `target()` returns (opening it on first use)."""

    def __init__(
        self, target: Callable[[], Awaitable[AsyncStore]], codec: PayloadCodec | None = None
    ) -> None:
        self._target = target
        self._codec = codec
        self._sealed: Sealed | None = None

    async def __call__(self, flow: Flow[T]) -> T:
        store = await self._target()
        if self._codec is None:
            return await run_async(flow, store)
        if self._sealed is None or self._sealed.target is not store:
            self._sealed = Sealed(store, self._codec)
        return await run_async(flow, self._sealed)
