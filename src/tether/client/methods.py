"""The clients' public methods, each stated once: `create = sends(Calls.create)`.

A method's signature is its call's (`tether.client.calls`), which is the manager's, and its docstring
is the manager's (`tether.flows.operations`); `Client` sends the call with httpx's sync client and
`AsyncClient` awaits it on the async one. mypy types each as the call's parameters returning what
the call decodes, as `tether.front.methods` does for the managers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from tether.client.calls import Call, Calls
from tether.flows.operations import Operations
from tether.front.methods import stated_as

P = ParamSpec("P")
T = TypeVar("T")


class SendsCalls(Protocol):
    """`tether.Client`: its calls, and how it sends one (retrying per `tether.client.transport`)."""

    @property
    def calls(self) -> Calls: ...

    def _send(self, call: Call[T], /) -> T: ...


class AwaitsCalls(Protocol):
    """`tether.AsyncClient`: `SendsCalls`, awaited."""

    @property
    def calls(self) -> Calls: ...

    async def _send(self, call: Call[T], /) -> T: ...


def sends(call: Callable[Concatenate[Calls, P], Call[T]]) -> Callable[Concatenate[SendsCalls, P], T]:
    """The client's method that sends `call` and returns what its answer means."""

    def method(self: SendsCalls, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._send(call(self.calls, *args, **kwargs))

    return stated_as(call, method, doc=_manager_doc(call))


def awaits(
    call: Callable[Concatenate[Calls, P], Call[T]],
) -> Callable[Concatenate[AwaitsCalls, P], Coroutine[Any, Any, T]]:
    """The async client's coroutine that sends `call` and returns what its answer means."""

    async def method(self: AwaitsCalls, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._send(call(self.calls, *args, **kwargs))

    return stated_as(call, method, doc=_manager_doc(call))


def _manager_doc(call: Callable[..., Any]) -> str | None:
    doc: str | None = getattr(Operations, call.__name__).__doc__
    return doc
