"""Every public method of `SessionManager` works through `tether.Client` against a real `tether serve`:
each one is called once, succeeds, and every request it sent matched a route of the API (a request no
route matches would answer a 404 that looks like a missing session). A method added to the manager
fails `test_every_manager_method_is_exercised` until it has a route, a client method and a line here.
(tests/unit/test_api_parity.py checks the signatures: same names, parameters and defaults.)"""

from __future__ import annotations

import inspect
import io
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from starlette.routing import Match

from tests.remote import serve
from tether import Client, Policies, Policy, SessionManager, State
from tether.server.app import create_app
from tether.server.settings import ServerSettings
from tether.stores import Beat

LEASE = 1.0  # seconds: short, so a session's lease can expire for time_out and claim
POLICIES = Policies(default=Policy(timeout=LEASE, suspect_after=LEASE / 2))
# Methods that send nothing: the server runs the supervisor, and close only closes the connection pool.
NO_REQUEST = {"supervise", "close"}


class Recording(httpx.HTTPTransport):
    """The real transport, keeping each request and its status."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[httpx.Request, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.sent.append((request, response.status_code))
        return response


def public_methods(cls: type) -> set[str]:
    return {name for name, member in inspect.getmembers(cls, callable) if not name.startswith("_")}


@pytest.fixture(scope="module")
def exercised(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, list[tuple[httpx.Request, int]]]]:
    workdir = tmp_path_factory.mktemp("every-method")
    with serve(f"sqlite:///{workdir}/tether.db", workdir, POLICIES, "--sweep-interval", "3600") as server:
        transport = Recording()
        with Client(server.url, worker_id="worker-a", transport=transport) as client:
            yield exercise(client, transport, workdir)


def exercise(
    client: Client, transport: Recording, workdir: Path
) -> dict[str, list[tuple[httpx.Request, int]]]:
    """Call each method once, in an order where each has something to act on."""
    seen: dict[str, list[tuple[httpx.Request, int]]] = {}

    def call(name: str, *args: Any, **kwargs: Any) -> Any:
        transport.sent.clear()
        result = getattr(client, name)(*args, **kwargs)
        seen.setdefault(name, []).extend(transport.sent)
        return result

    events: list[object] = []
    unsubscribe: Callable[[], None] = call("subscribe", events.append)
    s = call("create", "tutor", "alice", context={"n": 1})
    sid = s.session_id
    call("get", sid)
    call("list", user_id="alice")
    call("update", sid, metadata={"m": 1}, epoch=1, expected_version=s.version)
    call("checkpoint", sid, "step", {"k": 1}, epoch=1)
    call("checkpoints", sid)
    call("last_checkpoint", sid, "step")
    call("duration", sid)
    call("heartbeat", sid, epoch=1, phase="thinking")
    call("heartbeats", [Beat(sid, 1)])
    call("pause", sid, epoch=1)
    call("resume", sid, epoch=1)
    call("fork", sid, 1)
    time.sleep(LEASE * 1.5)
    assert call("stale", liveness="dead").items
    assert call("time_out", sid).state is State.FAILED
    assert call("claim", sid).epoch == 2
    call("complete", sid, {"done": True}, epoch=2)
    failed = client.create("tutor", "alice")
    client.fail(failed.session_id, "boom")  # recoverable (and the fork's lease has expired)
    claimed = call("claim_next", ["tutor"])
    call("fail", claimed.session_id, "again", final=True, epoch=claimed.epoch)
    for name in ("open", "resume_or_create"):  # the handle's requests, from entering to leaving
        transport.sent.clear()
        with getattr(client, name)("tutor", "alice") as handle:
            handle.checkpoint(name, {})
        seen[name] = list(transport.sent)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()  # a few polls for a type nobody has
    call("work", ["nobody"], lambda handle, last: None, stop_event=stop, poll_interval=0.05)
    transport.sent.clear()
    assert client.policies.default.timeout == LEASE  # a property, as on the manager
    seen["policies"] = list(transport.sent)
    exported = io.StringIO()
    call("export", exported, user_id="alice")
    call("delete", sid)
    call("import_sessions", io.StringIO(exported.getvalue()), on_conflict="skip")
    call("enforce_retention", dry_run=True)
    call("purge", timedelta(0), [State.COMPLETED])
    call("erase_user", "alice")
    unsubscribe()
    call("supervise")
    call("close")
    return seen


def test_every_manager_method_is_exercised(exercised: dict[str, list[tuple[httpx.Request, int]]]) -> None:
    assert public_methods(SessionManager) | {"policies"} == set(exercised)


def test_each_method_sends_requests_that_succeed(
    exercised: dict[str, list[tuple[httpx.Request, int]]],
) -> None:
    for name, sent in exercised.items():
        assert bool(sent) == (name not in NO_REQUEST), name
        failed = [(r.method, r.url.path, status) for r, status in sent if status >= 400]
        assert not failed, name


def test_every_request_matches_a_route_of_the_api(
    exercised: dict[str, list[tuple[httpx.Request, int]]],
) -> None:
    routes = create_app(ServerSettings("memory://")).routes
    for name, sent in exercised.items():
        for request, _ in sent:
            scope = {"type": "http", "method": request.method, "path": unquote(request.url.path)}
            assert any(route.matches(scope)[0] is Match.FULL for route in routes), (name, scope)
