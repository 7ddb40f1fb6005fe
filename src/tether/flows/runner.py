"""Flows: manager operations written once, for a sync and an async store alike.

A flow is a generator that validates and decides in plain Python and `yield`s each store call it
needs, receiving the call's result (or having the store's exception thrown in at the `yield`)::

    session = yield store.get(session_id)
    write = lifecycle.pause(session, (yield store.now()))
    after = yield store.apply(write)

`store.get(session_id)` here only *names* the call. `run` makes it on a `Store`; `run_async`
awaits it on an `AsyncStore`, whose methods have the same names and arguments. Those two drivers
are the only code that differs between `SessionManager` and `AsyncSessionManager`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from functools import partial
from operator import methodcaller
from typing import Any, TypeVar, cast

from tether.stores.base import Store

T = TypeVar("T")
Target = TypeVar("Target")

StoreCall = Callable[[Any], Any]  # store -> result (sync) or awaitable of the result (async)
Flow = Generator[StoreCall, Any, T]

STORE_METHODS = frozenset(Store.__abstractmethods__) | {"now"}


class StoreCalls:
    """`store.<method>(*args)` inside a flow: a call for the driver to make on the real store."""

    def __init__(self) -> None:
        for method in STORE_METHODS:  # bound once, so flows never pay for __getattr__
            setattr(self, method, partial(methodcaller, method))

    def __getattr__(self, method: str) -> Callable[..., StoreCall]:
        raise AttributeError(f"{method!r} is not a Store method")  # only reached for unknown names


store = StoreCalls()


def run(flow: Generator[Callable[[Target], Any], Any, T], target: Target) -> T:
    """Run a flow against a sync store (or any object whose methods its calls name, such as a
    manager or `tether.Client`): make each call, send back its result or throw its error."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            call = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as done:
            return cast(T, done.value)
        try:
            result, error = call(target), None
        except Exception as exc:
            result, error = None, exc


async def run_async(flow: Generator[Callable[[Target], Any], Any, T], target: Target) -> T:
    """`run`, awaiting each call on an async store."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            call = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as done:
            return cast(T, done.value)
        try:
            result, error = await call(target), None
        except Exception as exc:
            result, error = None, exc
