"""`tether.Client`: `SessionManager`'s API over HTTP, for an agent in another process or machine.

    from tether import Client
    manager = Client("http://tether:8000", api_key="tth_…")   # or TETHER_URL / TETHER_API_KEY
    with manager.open("tutor", "alice") as session:            # heartbeats in the background
        session.checkpoint("task_received", {"task": 42})

Same method names, arguments, return values (`Session`, `Checkpoint`, `Page`, …) and exceptions
(`LeaseLost`, `NotFound`, …) as the embedded manager. Each method is one request built by
`tether.client.calls`; `open`, `resume_or_create` and `work` run the library's own handles and
flows over this client, so taking over and resuming behave exactly as embedded.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

import httpx

from tether.client import events
from tether.client.calls import Call, Calls, ExportLines, problem
from tether.client.methods import sends
from tether.client.transport import RETRIES, TIMEOUT, Retry, auth_headers, server_url, settle, tls
from tether.core.policy import Policies
from tether.core.validation import check_text
from tether.events.bus import Subscriber
from tether.flows.operations import default_worker_id
from tether.flows.transfer import opened
from tether.front import handle, worker
from tether.front.handle import Start
from tether.front.manager import SessionManager

T = TypeVar("T")


class Client:
    """A remote SessionManager: every call is a request to `tether serve` at `url`.

    `url` defaults to TETHER_URL (else http://127.0.0.1:8000), `api_key` to TETHER_API_KEY. The
    client owns what it creates and claims as `worker_id` (default: host:pid:random, as embedded).
    Connection refused and 503 are retried `retries` times (see `tether.client.transport`).
    `transport` is httpx's, e.g. to reach an app in-process.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        worker_id: str | None = None,
        timeout: float | httpx.Timeout = TIMEOUT,
        retries: int = RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = server_url(url)
        self.worker_id = check_text("worker_id", default_worker_id() if worker_id is None else worker_id)
        self.calls = Calls(self.worker_id)
        self.retries = retries
        self.http = httpx.Client(
            base_url=self.url,
            headers=auth_headers(api_key),
            timeout=timeout,
            transport=transport,
            verify=tls(),
        )

    def _send(self, call: Call[T]) -> T:
        for attempt in itertools.count():
            try:
                response, error = self.http.send(call.request(self.http)), None
            except httpx.TransportError as exc:
                response, error = None, exc
            step = settle(call, attempt, response, error, self.retries)
            if not isinstance(step, Retry):
                return step
            time.sleep(step.delay)
        raise AssertionError("unreachable")

    @property
    def policies(self) -> Policies:
        """The policies the server runs with (GET /v1/policies), read at each access. (The async
        client has no such property: a property cannot await; ask GET /v1/policies.)"""
        return self._send(self.calls.policies())

    # -- creating and reading ----------------------------------------------------------------
    create = sends(Calls.create)
    fork = sends(Calls.fork)
    get = sends(Calls.get)
    list = sends(Calls.list)
    stale = sends(Calls.stale)
    checkpoints = sends(Calls.checkpoints)
    last_checkpoint = sends(Calls.last_checkpoint)
    duration = sends(Calls.duration)

    # -- the owner's writes ------------------------------------------------------------------
    checkpoint = sends(Calls.checkpoint)
    heartbeat = sends(Calls.heartbeat)
    heartbeats = sends(Calls.heartbeats)
    pause = sends(Calls.pause)
    resume = sends(Calls.resume)
    complete = sends(Calls.complete)
    fail = sends(Calls.fail)
    update = sends(Calls.update)

    # -- takeover ----------------------------------------------------------------------------
    claim = sends(Calls.claim)
    claim_next = sends(Calls.claim_next)
    time_out = sends(Calls.time_out)

    # -- liveness helpers --------------------------------------------------------------------
    def supervise(self, *, interval: float | None = None) -> events.ServerSupervises:
        """The server's supervisor sweeps for dead sessions; this returns a handle that says so, so
        code written for the embedded manager runs unchanged."""
        return events.ServerSupervises()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(event)` on every change the server reports to this key (its user's sessions,
        from every client), in a background thread; reconnects with Last-Event-ID. Returns once the
        stream is open; the returned function unsubscribes."""
        return events.Subscription(self.http, callback).start()

    open = handle.opens(Start.open)
    resume_or_create = handle.opens(Start.resume_or_create)

    work = worker.work

    # -- housekeeping ------------------------------------------------------------------------
    delete = sends(Calls.delete)
    purge = sends(Calls.purge)
    enforce_retention = sends(Calls.enforce_retention)
    erase_user = sends(Calls.erase_user)
    import_sessions = sends(Calls.import_sessions)

    def export(
        self, destination: str | Path | IO[str], *, user_id: str | None = None, decrypt: bool = False
    ) -> int:
        call = self.calls.export(user_id, decrypt)
        response = self.http.send(call.request(self.http), stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                raise problem(response)
            with opened(destination, "w") as out:
                lines = ExportLines(out)
                for chunk in response.iter_bytes():
                    lines.write(chunk)
                lines.close()
            return lines.count
        finally:
            response.close()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# One set of docstrings: each method documents itself with the embedded manager's words.
for _name, _method in vars(Client).items():
    if not _name.startswith("_") and callable(_method) and _method.__doc__ is None:
        _method.__doc__ = getattr(SessionManager, _name).__doc__
