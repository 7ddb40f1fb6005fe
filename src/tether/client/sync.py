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

import builtins
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from tether.client import events
from tether.client.calls import Call, Calls, ExportLines, problem, read_source, seed_lines
from tether.client.transport import RETRIES, TIMEOUT, Retry, auth_headers, server_url, settle, tls
from tether.core.errors import TetherError
from tether.core.model import ENDED_STATES, Checkpoint, Liveness, Page, Session, State
from tether.core.policy import Policies
from tether.core.retention import RetentionReport
from tether.core.validation import check_text
from tether.events.bus import Subscriber
from tether.flows.operations import default_worker_id
from tether.flows.retention import BATCH as RETENTION_BATCH
from tether.flows.retention import MAX_BATCHES as RETENTION_BATCHES
from tether.flows.runner import run
from tether.flows.transfer import opened
from tether.front import handle, worker
from tether.front.handle import Handler, SessionHandle
from tether.front.manager import SessionManager
from tether.stores import Beat

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
    def create(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        parent_session_id: str | None = None,
    ) -> Session:
        return self._send(
            self.calls.create(agent_type, user_id, context, metadata, session_id, parent_session_id)
        )

    def fork(
        self,
        session_id: str,
        at_seq: int | None = None,
        *,
        agent_type: str | None = None,
        user_id: str | None = None,
    ) -> Session:
        return self._send(self.calls.fork(session_id, at_seq, agent_type, user_id))

    def get(self, session_id: str) -> Session:
        return self._send(self.calls.get(session_id))

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_type: str | None = None,
        state: State | str | None = None,
        parent_session_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]:
        return self._send(self.calls.list(user_id, agent_type, state, parent_session_id, limit, cursor))

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
    ) -> Page[Session]:
        return self._send(
            self.calls.stale(no_heartbeat_for, paused_for, liveness, agent_type, user_id, limit, cursor)
        )

    def checkpoints(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> builtins.list[Checkpoint]:
        return self._send(self.calls.checkpoints(session_id, after_seq, limit, name))

    def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        return self._send(self.calls.last_checkpoint(session_id, name))

    def duration(self, session_id: str) -> timedelta:
        return self._send(self.calls.duration(session_id))

    # -- the owner's writes ------------------------------------------------------------------
    def checkpoint(
        self,
        session_id: str,
        name: str,
        data: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
    ) -> Checkpoint:
        return self._send(self.calls.checkpoint(session_id, name, data, epoch))

    def heartbeat(
        self,
        session_id: str,
        *,
        epoch: int | None = None,
        phase: str | None = None,
        expect_silence: float | None = None,
    ) -> None:
        return self._send(self.calls.heartbeat(session_id, epoch, phase, expect_silence))

    def heartbeats(self, beats: Sequence[Beat]) -> builtins.list[TetherError | None]:
        return self._send(self.calls.heartbeats(beats))

    def pause(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Session:
        return self._send(self.calls.transition("pause", session_id, expected_version, epoch=epoch))

    def resume(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Session:
        return self._send(self.calls.transition("resume", session_id, expected_version, epoch=epoch))

    def complete(
        self,
        session_id: str,
        result: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Session:
        call = self.calls.transition("complete", session_id, expected_version, result=result, epoch=epoch)
        return self._send(call)

    def fail(
        self,
        session_id: str,
        error: str,
        details: dict[str, Any] | None = None,
        *,
        final: bool = False,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Session:
        fields = {"error": error, "details": details, "final": final, "epoch": epoch}
        return self._send(self.calls.transition("fail", session_id, expected_version, **fields))

    def update(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Session:
        return self._send(self.calls.update(session_id, context, metadata, epoch, expected_version))

    # -- takeover ----------------------------------------------------------------------------
    def claim(self, session_id: str, worker_id: str | None = None) -> Session:
        return self._send(self.calls.claim(session_id, worker_id))

    def claim_next(
        self, agent_types: Iterable[str] | None = None, worker_id: str | None = None
    ) -> Session | None:
        return self._send(self.calls.claim_next(agent_types, worker_id))

    def time_out(self, session_id: str) -> Session:
        return self._send(self.calls.time_out(session_id))

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

    def open(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        parent_session_id: str | None = None,
    ) -> SessionHandle:
        create = {"context": context, "metadata": metadata, "parent_session_id": parent_session_id}
        return SessionHandle(
            self, lambda: run(handle.create_or_claim(session_id, agent_type, user_id, create), self)
        )

    def resume_or_create(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        parent_session_id: str | None = None,
    ) -> SessionHandle:
        create = {"context": context, "metadata": metadata, "parent_session_id": parent_session_id}
        return SessionHandle(self, lambda: run(handle.claim_or_create(agent_type, user_id, create), self))

    def work(
        self,
        agent_types: Iterable[str] | None,
        handler: Handler,
        *,
        stop_event: threading.Event | None = None,
        poll_interval: float = 1.0,
    ) -> int:
        stop = stop_event or threading.Event()
        return worker.run_worker(self, agent_types, handler, stop, poll_interval)

    # -- housekeeping ------------------------------------------------------------------------
    def delete(self, session_id: str) -> None:
        return self._send(self.calls.delete(session_id))

    def purge(
        self,
        older_than: timedelta | datetime,
        states: Iterable[State | str] = tuple(ENDED_STATES),
    ) -> int:
        return self._send(self.calls.purge(older_than, states))

    def enforce_retention(
        self, *, dry_run: bool = False, batch: int = RETENTION_BATCH, max_batches: int = RETENTION_BATCHES
    ) -> RetentionReport:
        return self._send(self.calls.enforce_retention(dry_run, batch, max_batches))

    def erase_user(self, user_id: str) -> int:
        return self._send(self.calls.erase_user(user_id))

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

    def import_sessions(
        self,
        source: str | Path | IO[str],
        *,
        on_conflict: str = "error",
        progress: Callable[[int], None] | None = None,
    ) -> int:
        jsonl = read_source(source)
        imported = self._send(self.calls.import_sessions(jsonl, on_conflict))
        if progress is not None:
            progress(seed_lines(jsonl))
        return imported

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
