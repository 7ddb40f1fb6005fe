"""A front door's public methods, each stated once: `create = runs(Operations.create)`.

The signature and docstring of a manager method are its flow's (`tether.flows.operations`); a front
door only says how it runs flows. `runs` makes the sync method, `awaits` the coroutine, and
`tether.client.methods` the client's over HTTP. mypy types each as the flow's parameters (a
`ParamSpec`) returning the flow's result, and checks that the class it sits in can run it;
`inspect.signature` and `help()` show the flow's parameters, with the flow's result as the return.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from tether.flows.operations import Operations
from tether.flows.runner import AsyncRunner, Flow, Runner

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M", bound=Callable[..., Any])

_WRAPPED = re.compile(r"\w+\[(.*)\]")  # `Flow[Session]` -> `Session`


class RunsFlows(Protocol):
    """A sync front door: its operations and the runner that runs them on its store."""

    @property
    def ops(self) -> Operations: ...

    @property
    def runner(self) -> Runner: ...


class AwaitsFlows(Protocol):
    """An async front door: its operations and the runner that awaits them on its store."""

    @property
    def ops(self) -> Operations: ...

    @property
    def runner(self) -> AsyncRunner: ...


def runs(flow: Callable[Concatenate[Operations, P], Flow[T]]) -> Callable[Concatenate[RunsFlows, P], T]:
    """The sync front door's method that runs `flow` and returns its result."""

    def method(self: RunsFlows, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.runner(flow(self.ops, *args, **kwargs))

    return stated_as(flow, method)


def awaits(
    flow: Callable[Concatenate[Operations, P], Flow[T]],
) -> Callable[Concatenate[AwaitsFlows, P], Coroutine[Any, Any, T]]:
    """The async front door's coroutine that runs `flow` and returns its result."""

    async def method(self: AwaitsFlows, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.runner(flow(self.ops, *args, **kwargs))

    return stated_as(flow, method)


def stated_as(
    spec: Callable[..., Any], method: M, *, doc: str | None = None, returns: str | None = None
) -> M:
    """`method` as `spec` states it: its name, docstring (or `doc`), signature and annotations, with a
    bare `self` first and the return annotation unwrapped (`Flow[Session]` is `Session` for whoever
    calls the front door) or as given. `typing.get_type_hints` reads them in `spec`'s module."""
    signature = inspect.signature(spec)
    parameters = [p for p in signature.parameters.values() if p.name != "self"]
    parameters.insert(0, inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD))
    annotation = signature.return_annotation
    if returns is None and isinstance(annotation, str) and (wrapped := _WRAPPED.fullmatch(annotation)):
        returns = wrapped.group(1)
    returns = annotation if returns is None else returns
    method.__name__ = method.__qualname__ = spec.__name__.lstrip("_")  # a private flow's public method
    method.__doc__ = spec.__doc__ if doc is None else doc
    method.__annotations__ = {
        **{name: hint for name, hint in spec.__annotations__.items() if name not in ("self", "return")},
        "return": returns,
    }
    method.__signature__ = signature.replace(parameters=parameters, return_annotation=returns)  # type: ignore[attr-defined]
    if spec is not method:
        method.__wrapped__ = spec  # type: ignore[attr-defined]  # where get_type_hints finds the names
    return method


def shared(method: M) -> M:
    """A method written once for several front doors (`work = worker.work` in each), its `self`
    typed as the protocol they share; shown as a method is, with a bare `self`."""
    return stated_as(method, method)
