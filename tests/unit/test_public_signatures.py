"""Every front door's public signatures, pinned as `inspect.signature` prints them: the doors are
built from one statement of each method, and this says that building changed none of them."""

# ruff: noqa: E501 (a signature is one line, as inspect prints it)

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from tether import AsyncClient, Client, SessionManager
from tether.front.aio import AsyncSessionManager
from tether.front.handle import AsyncSessionHandle, SessionHandle

MANAGER = {
    "checkpoint": "(self, session_id: 'str', name: 'str', data: 'dict[str, Any] | None' = None, *, epoch: 'int | None' = None) -> 'Checkpoint'",
    "checkpoints": "(self, session_id: 'str', *, after_seq: 'int' = 0, limit: 'int' = 100, name: 'str | None' = None) -> 'builtins.list[Checkpoint]'",
    "claim": "(self, session_id: 'str', worker_id: 'str | None' = None) -> 'Session'",
    "claim_next": "(self, agent_types: 'Iterable[str] | None' = None, worker_id: 'str | None' = None) -> 'Session | None'",
    "close": "(self) -> 'None'",
    "complete": "(self, session_id: 'str', result: 'dict[str, Any] | None' = None, *, epoch: 'int | None' = None, expected_version: 'int | None' = None) -> 'Session'",
    "create": "(self, agent_type: 'str', user_id: 'str', *, context: 'dict[str, Any] | None' = None, metadata: 'dict[str, Any] | None' = None, session_id: 'str | None' = None, parent_session_id: 'str | None' = None) -> 'Session'",
    "delete": "(self, session_id: 'str') -> 'None'",
    "duration": "(self, session_id: 'str') -> 'timedelta'",
    "enforce_retention": "(self, *, dry_run: 'bool' = False, batch: 'int' = 100, max_batches: 'int' = 50) -> 'RetentionReport'",
    "erase_user": "(self, user_id: 'str') -> 'int'",
    "export": "(self, destination: 'str | Path | IO[str]', *, user_id: 'str | None' = None, decrypt: 'bool' = False) -> 'int'",
    "fail": "(self, session_id: 'str', error: 'str', details: 'dict[str, Any] | None' = None, *, final: 'bool' = False, epoch: 'int | None' = None, expected_version: 'int | None' = None) -> 'Session'",
    "fork": "(self, session_id: 'str', at_seq: 'int | None' = None, *, agent_type: 'str | None' = None, user_id: 'str | None' = None) -> 'Session'",
    "get": "(self, session_id: 'str') -> 'Session'",
    "heartbeat": "(self, session_id: 'str', *, epoch: 'int | None' = None, phase: 'str | None' = None, expect_silence: 'float | None' = None) -> 'None'",
    "heartbeats": "(self, beats: 'Sequence[Beat]') -> 'builtins.list[TetherError | None]'",
    "import_sessions": "(self, source: 'str | Path | IO[str]', *, on_conflict: 'str' = 'error', progress: 'Callable[[int], None] | None' = None) -> 'int'",
    "last_checkpoint": "(self, session_id: 'str', name: 'str | None' = None) -> 'Checkpoint | None'",
    "list": "(self, *, user_id: 'str | None' = None, agent_type: 'str | None' = None, state: 'State | str | None' = None, parent_session_id: 'str | None' = None, limit: 'int' = 50, cursor: 'str | None' = None) -> 'Page[Session]'",
    "open": "(self, agent_type: 'str', user_id: 'str', *, context: 'dict[str, Any] | None' = None, metadata: 'dict[str, Any] | None' = None, session_id: 'str | None' = None, parent_session_id: 'str | None' = None) -> 'SessionHandle'",
    "pause": "(self, session_id: 'str', *, epoch: 'int | None' = None, expected_version: 'int | None' = None) -> 'Session'",
    "purge": "(self, older_than: 'timedelta | datetime', states: 'Iterable[State | str]' = (<State.COMPLETED: 'completed'>, <State.FAILED: 'failed'>)) -> 'int'",
    "resume": "(self, session_id: 'str', *, epoch: 'int | None' = None, expected_version: 'int | None' = None) -> 'Session'",
    "resume_or_create": "(self, agent_type: 'str', user_id: 'str', *, context: 'dict[str, Any] | None' = None, metadata: 'dict[str, Any] | None' = None, parent_session_id: 'str | None' = None) -> 'SessionHandle'",
    "stale": "(self, *, no_heartbeat_for: 'float | timedelta | None' = None, paused_for: 'float | timedelta | None' = None, liveness: 'Liveness | str | None' = None, agent_type: 'str | None' = None, user_id: 'str | None' = None, limit: 'int' = 50, cursor: 'str | None' = None) -> 'Page[Session]'",
    "subscribe": "(self, callback: 'Subscriber') -> 'Callable[[], None]'",
    "supervise": "(self, *, interval: 'float | None' = None) -> 'RunningSupervisor'",
    "time_out": "(self, session_id: 'str') -> 'Session'",
    "update": "(self, session_id: 'str', *, context: 'dict[str, Any] | None' = None, metadata: 'dict[str, Any] | None' = None, epoch: 'int | None' = None, expected_version: 'int | None' = None) -> 'Session'",
    "work": "(self, agent_types: 'Iterable[str] | None', handler: 'Handler', *, stop_event: 'threading.Event | None' = None, poll_interval: 'float' = 1.0) -> 'int'",
}
# What the other doors hand back or take differently, by design (see test_api_parity).
ASYNC = {
    "open": MANAGER["open"].replace("'SessionHandle'", "'AsyncSessionHandle'"),
    "resume_or_create": MANAGER["resume_or_create"].replace("'SessionHandle'", "'AsyncSessionHandle'"),
    "work": MANAGER["work"].replace("'Handler'", "'AsyncHandler'").replace("threading.", "asyncio."),
}
DOORS = {
    SessionManager: MANAGER,
    AsyncSessionManager: MANAGER | ASYNC | {"supervise": MANAGER["supervise"].replace("'R", "'AsyncR")},
    Client: MANAGER
    | {"supervise": MANAGER["supervise"].replace("'RunningSupervisor'", "'events.ServerSupervises'")},
    AsyncClient: MANAGER
    | ASYNC
    | {"supervise": MANAGER["supervise"].replace("'RunningSupervisor'", "'events.AsyncServerSupervises'")},
}
HANDLE = {
    "checkpoint": "(self, name: 'str', data: 'dict[str, Any] | None' = None) -> 'Checkpoint'",
    "complete": "(self, result: 'dict[str, Any] | None' = None) -> 'Session'",
    "fail": "(self, error: 'str', details: 'dict[str, Any] | None' = None, *, final: 'bool' = False) -> 'Session'",
    "heartbeat": "(self, *, phase: 'str | None' = None, expect_silence: 'float | None' = None) -> 'None'",
    "last_checkpoint": "(self, name: 'str | None' = None) -> 'Checkpoint | None'",
    "pause": "(self) -> 'Session'",
}


def _signatures(cls: type) -> dict[str, str]:
    members: dict[str, Callable[..., Any]] = dict(inspect.getmembers(cls, callable))
    return {
        name: _printed(inspect.signature(member))
        for name, member in members.items()
        if not name.startswith("_") and not inspect.isclass(member)
    }


def _printed(signature: inspect.Signature) -> str:
    """As printed, with a tuple default (purge's states, from a frozenset) in a stable order."""
    parameters = [
        p.replace(default=tuple(sorted(p.default))) if isinstance(p.default, tuple) else p
        for p in signature.parameters.values()
    ]
    return str(signature.replace(parameters=parameters))


@pytest.mark.parametrize("door", list(DOORS), ids=lambda cls: cls.__name__)
def test_every_public_method_keeps_its_signature(door: type) -> None:
    assert _signatures(door) == DOORS[door]


@pytest.mark.parametrize("handle", [SessionHandle, AsyncSessionHandle], ids=lambda cls: cls.__name__)
def test_the_handles_keep_their_signatures(handle: type) -> None:
    assert _signatures(handle) == HANDLE


# Where a door words a docstring its own way: an async worker awaits its handler, a task runs the
# async supervisor, and the clients say what the server does instead.
OWN_DOCSTRINGS = {
    AsyncSessionManager: {"supervise", "work"},
    Client: {"subscribe", "supervise"},
    AsyncClient: {"subscribe", "supervise", "work"},
}


@pytest.mark.parametrize("door", list(OWN_DOCSTRINGS), ids=lambda cls: cls.__name__)
def test_the_doors_share_the_sync_managers_docstrings(door: type) -> None:
    for name in MANAGER.keys() - OWN_DOCSTRINGS[door]:
        assert inspect.getdoc(getattr(door, name)) == inspect.getdoc(getattr(SessionManager, name)), name


@pytest.mark.parametrize("cls", [*DOORS, SessionHandle, AsyncSessionHandle], ids=lambda cls: cls.__name__)
def test_type_hints_resolve_to_the_public_ones(cls: type) -> None:
    """`typing.get_type_hints` (what runtime validators read) sees the parameters the signature shows."""
    for name in _signatures(cls):
        method = getattr(cls, name)
        hints = typing.get_type_hints(method)
        shown = [p for p in inspect.signature(method).parameters if p != "self"]
        assert [p for p in hints if p != "return"] == shown, name
