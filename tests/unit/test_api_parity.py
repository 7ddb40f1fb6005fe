"""Every front door has the same methods with the same signatures: code moves between sync and
async, embedded and remote, by changing one line. Client / AsyncClient join the check as soon as
`tether.client` exists."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from tether import SessionManager
from tether.aio import AsyncSessionManager
from tether.operations import ManagerBase


def _front_doors() -> list[type]:
    doors: list[type] = [SessionManager, AsyncSessionManager]
    try:
        client = importlib.import_module("tether.client")
    except ImportError:  # not built yet (or its extra is not installed)
        return doors
    return doors + [getattr(client, name) for name in ("Client", "AsyncClient") if hasattr(client, name)]


FRONT_DOORS = _front_doors()

# Background helpers (threads in the sync manager) whose asyncio counterparts are being written;
# this set only shrinks (notes-aio.md).
NOT_YET_ASYNC = {"supervise", "open", "resume_or_create", "work"}


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
        return text.replace("builtins.", "").replace("Async", "")

    signature = inspect.signature(method)
    parameters = [(p.name, p.kind, p.default, plain(p.annotation)) for p in signature.parameters.values()]
    return parameters, plain(signature.return_annotation)


def test_the_sync_manager_has_the_documented_methods() -> None:
    expected = {
        "create", "get", "list", "checkpoints", "last_checkpoint", "duration", "checkpoint",
        "heartbeat", "heartbeats", "pause", "resume", "complete", "fail", "update", "claim",
        "claim_next", "delete", "purge", "erase_user", "export", "import_sessions", "subscribe", "close",
    }  # fmt: skip
    assert expected <= set(_public_methods(SessionManager))


@pytest.mark.parametrize("door", FRONT_DOORS[1:], ids=lambda cls: cls.__name__)
def test_same_method_names_as_the_sync_manager(door: type) -> None:
    assert sorted(_public_methods(door)) == sorted(set(_public_methods(SessionManager)) - NOT_YET_ASYNC)


@pytest.mark.parametrize("door", FRONT_DOORS[1:], ids=lambda cls: cls.__name__)
def test_same_signatures_as_the_sync_manager(door: type) -> None:
    sync = _public_methods(SessionManager)
    for name, method in _public_methods(door).items():
        assert _shape(method) == _shape(sync[name]), name


def test_async_manager_takes_the_same_constructor_arguments() -> None:
    def names(cls: type) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert names(AsyncSessionManager) == names(SessionManager)


def test_async_manager_awaits_every_method_it_does_not_share() -> None:
    shared = set(_public_methods(ManagerBase))
    for name, method in _public_methods(AsyncSessionManager).items():
        assert inspect.iscoroutinefunction(method) == (name not in shared), name
    for name, method in _public_methods(SessionManager).items():
        assert not inspect.iscoroutinefunction(method), name


def test_async_methods_carry_the_sync_docstrings() -> None:
    for name, method in _public_methods(AsyncSessionManager).items():
        assert method.__doc__ == getattr(SessionManager, name).__doc__, name
