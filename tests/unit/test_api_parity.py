"""Every front door has the same methods with the same signatures: code moves between sync and
async, embedded and remote, by changing one line."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from tether import AsyncClient, Client, SessionManager
from tether.front.aio import AsyncSessionManager

FRONT_DOORS: list[type] = [SessionManager, AsyncSessionManager, Client, AsyncClient]
REMOTE = (Client, AsyncClient)

# Methods that hand back something to run in the background or a block to enter (`with` /
# `async with`): plain calls in every front door. Every other async method is a coroutine.
RETURN_A_CONTEXT = {"open", "resume_or_create", "supervise", "subscribe"}
# What waiting is made of differs by design: a thread's event vs the event loop's.
CONCURRENCY_PRIMITIVES = {"asyncio.Event": "threading.Event"}


def _public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, callable)
        if not name.startswith("_") and not inspect.isclass(member)
    }


def _shape(method: Callable[..., Any]) -> tuple[list[tuple[str, Any, Any, str]], str]:
    """Parameters (name, kind, default, annotation) and the return annotation, with async-ness and
    spelling (`builtins.list` vs `list`) ignored."""

    def plain(annotation: Any) -> str:
        text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
        for primitive, sync in CONCURRENCY_PRIMITIVES.items():
            text = text.replace(primitive, sync)
        return text.replace("builtins.", "").replace("Async", "")

    signature = inspect.signature(method)
    parameters = [(p.name, p.kind, p.default, plain(p.annotation)) for p in signature.parameters.values()]
    return parameters, plain(signature.return_annotation)


def test_the_sync_manager_has_the_documented_methods() -> None:
    expected = {
        "create", "get", "list", "checkpoints", "last_checkpoint", "duration", "checkpoint",
        "heartbeat", "heartbeats", "pause", "resume", "complete", "fail", "update", "claim",
        "claim_next", "delete", "purge", "erase_user", "export", "import_sessions", "subscribe", "close",
        "stale", "time_out", "supervise", "open", "resume_or_create", "work", "fork", "enforce_retention",
    }  # fmt: skip
    assert expected <= set(_public_methods(SessionManager))


@pytest.mark.parametrize("door", FRONT_DOORS[1:], ids=lambda cls: cls.__name__)
def test_same_method_names_as_the_sync_manager(door: type) -> None:
    assert sorted(_public_methods(door)) == sorted(_public_methods(SessionManager))


@pytest.mark.parametrize("door", FRONT_DOORS[1:], ids=lambda cls: cls.__name__)
def test_same_signatures_as_the_sync_manager(door: type) -> None:
    sync = _public_methods(SessionManager)
    for name, method in _public_methods(door).items():
        parameters, returns = _shape(method)
        if door in REMOTE and name == "supervise":
            # The server runs the supervisor: the clients hand back a stand-in saying so.
            assert returns == "events.ServerSupervises"
            returns = _shape(sync[name])[1]
        assert (parameters, returns) == _shape(sync[name]), name


def test_the_clients_await_what_the_async_manager_awaits() -> None:
    for name, method in _public_methods(AsyncClient).items():
        assert inspect.iscoroutinefunction(method) == (name not in RETURN_A_CONTEXT), name
    for name, method in _public_methods(Client).items():
        assert not inspect.iscoroutinefunction(method), name


def test_async_manager_takes_the_same_constructor_arguments() -> None:
    def names(cls: type) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert names(AsyncSessionManager) == names(SessionManager)


def test_async_manager_awaits_every_call_that_does_io() -> None:
    for name, method in _public_methods(AsyncSessionManager).items():
        assert inspect.iscoroutinefunction(method) == (name not in RETURN_A_CONTEXT), name
    for name, method in _public_methods(SessionManager).items():
        assert not inspect.iscoroutinefunction(method), name


def test_every_manager_method_is_documented() -> None:
    """The async manager and the clients borrow the sync docstring where they have none of their own."""
    for door in FRONT_DOORS:
        for name, method in _public_methods(door).items():
            assert method.__doc__, f"{door.__name__}.{name}"
