"""Every client operation, once: the HTTP request a manager method becomes, and how its answer is read.

Pure, no I/O: `Client` sends a `Call` with httpx's sync client and `AsyncClient` with its async one,
and both read the answer with the call's own `decode`, so the two cannot drift apart. Requests follow
docs/http-api.md; errors come back as the library's exceptions (`tether.core.wire`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from tether.core.codec import encode
from tether.core.errors import TetherError, ValidationError
from tether.core.model import ENDED_STATES, Checkpoint, Liveness, Page, Session, State, as_aware
from tether.core.policy import Policies
from tether.core.retention import RetentionReport
from tether.core.validation import (
    check_counter,
    check_error,
    check_flag,
    check_limit,
    check_optional_counter,
    encode_payload,
)
from tether.core.wire import (
    checkpoint_from_json,
    error_from_problem,
    policies_from_json,
    retention_from_json,
    session_from_json,
)
from tether.flows.operations import checked_agent_types, checked_beat, parse_state, required_state
from tether.flows.retention import BATCH as RETENTION_BATCH
from tether.flows.retention import MAX_BATCHES as RETENTION_BATCHES
from tether.stores.base import Beat

T = TypeVar("T")
NO_LIMIT = 2**62  # payload sizes are the server's to limit (413 payload_too_large)


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request, and what its successful answer means."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        params = {k: v for k, v in (self.params or {}).items() if v is not None}
        headers = (
            {"Content-Type": "application/json", **self.headers} if self.body is not None else self.headers
        )
        return http.build_request(self.method, self.path, params=params, content=self.body, headers=headers)


def answer(call: Call[T], response: httpx.Response) -> T:
    """The call's result, or the library exception the problem+json answer stands for."""
    if response.status_code >= 400:
        raise problem(response)
    return call.decode(response)


def problem(response: httpx.Response) -> TetherError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"detail": response.text[:200] or response.reason_phrase}
    error = error_from_problem(response.status_code, body)
    error.request_id = response.headers.get("x-request-id")
    return error


# -- bodies and values ---------------------------------------------------------------------------
def json_body(**fields: Any) -> bytes:
    """The JSON body of the given fields, leaving out those that are None (the server's default).

    A value that is not JSON (NaN, a set, bytes, a lone surrogate, nesting past the interpreter's
    limit) raises the library's ValidationError naming its field, before anything is sent.
    """
    present = {name: value for name, value in fields.items() if value is not None}
    try:
        return encode(present).text.encode()
    except (ValueError, TypeError, RecursionError):
        for name, value in present.items():
            encode_payload(name, {name: value}, NO_LIMIT)
        raise


def _seconds(value: float | timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _text(value: State | Liveness | str | None) -> str | None:
    return value.value if isinstance(value, State | Liveness) else value


def _if_match(expected_version: int | None) -> dict[str, str]:
    version = check_optional_counter("expected_version", expected_version, 1)
    return {} if version is None else {"If-Match": f'"{version}"'}


def _epoch(epoch: int | None) -> int | None:
    """Numbers the API takes are checked here by the library's own rules, so a bad one raises the
    embedded manager's ValidationError (JSON would carry `True` or `1.0` where Python has none)."""
    return check_optional_counter("epoch", epoch, 1)


def _path(collection: str, key: str, *rest: str) -> str:
    """`/v1/sessions/<id>/...`, the id escaped whatever it holds (the library allows `/` and `?`)."""
    if not isinstance(key, str):
        field_name = "user_id" if collection == "users" else "session_id"
        raise ValidationError(field_name, f"must be a string, got {type(key).__name__}")
    return "/".join(["/v1", collection, quote(key, safe=""), *rest])


def _session(response: httpx.Response) -> Session:
    return session_from_json(response.json())


def _maybe_session(response: httpx.Response) -> Session | None:
    return None if response.status_code == 204 else _session(response)


def _checkpoint(response: httpx.Response) -> Checkpoint:
    return checkpoint_from_json(response.json())


def _maybe_checkpoint(response: httpx.Response) -> Checkpoint | None:
    return None if response.status_code == 204 else _checkpoint(response)


def _sessions(response: httpx.Response) -> Page[Session]:
    body = response.json()
    return Page([session_from_json(item) for item in body["items"]], body.get("next_cursor"))


def _checkpoints(response: httpx.Response) -> builtins.list[Checkpoint]:
    return [checkpoint_from_json(item) for item in response.json()["items"]]


def _retention(response: httpx.Response) -> RetentionReport:
    return retention_from_json(response.json())


def _nothing(response: httpx.Response) -> None:
    return None


def _count(key: str) -> Callable[[httpx.Response], int]:
    return lambda response: int(response.json()[key])


def _beat_results(response: httpx.Response) -> builtins.list[TetherError | None]:
    return [
        None if r is None else error_from_problem(r.get("status", 0), r) for r in response.json()["results"]
    ]


# -- the calls, one per manager method, in SessionManager's order ---------------------------------
class Calls:
    """The requests of one client; `worker_id` owns what it creates and claims. Each method takes
    the manager method's signature: the clients' methods are these (`tether.client.methods`)."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id

    def create(
        self,
        agent_type: str,
        user_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        parent_session_id: str | None = None,
    ) -> Call[Session]:
        body = json_body(
            agent_type=agent_type,
            user_id=user_id,
            context=context,
            metadata=metadata,
            session_id=session_id,
            parent_session_id=parent_session_id,
            worker_id=self.worker_id,
        )
        return Call("POST", "/v1/sessions", _session, body=body)

    def fork(
        self,
        session_id: str,
        at_seq: int | None = None,
        *,
        agent_type: str | None = None,
        user_id: str | None = None,
    ) -> Call[Session]:
        at_seq = check_optional_counter("at_seq", at_seq, 0)
        body = json_body(at_seq=at_seq, agent_type=agent_type, user_id=user_id, worker_id=self.worker_id)
        return Call("POST", _path("sessions", session_id, "fork"), _session, body=body)

    def get(self, session_id: str) -> Call[Session]:
        return Call("GET", _path("sessions", session_id), _session)

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_type: str | None = None,
        state: State | str | None = None,
        parent_session_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Call[Page[Session]]:
        state = parse_state(state)
        query: dict[str, Any] = {"user_id": user_id, "agent_type": agent_type, "state": _text(state)}
        query["limit"] = check_limit("limit", limit)
        query |= {"parent_session_id": parent_session_id, "cursor": cursor, "include": "context"}
        return Call("GET", "/v1/sessions", _sessions, params=query)

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
    ) -> Call[Page[Session]]:
        query: dict[str, Any] = {
            "no_heartbeat_for": _seconds(no_heartbeat_for),
            "paused_for": _seconds(paused_for),
        }
        query |= {"liveness": _text(liveness), "agent_type": agent_type, "user_id": user_id}
        query |= {"limit": check_limit("limit", limit), "cursor": cursor, "include": "context"}
        return Call("GET", "/v1/sessions", _sessions, params=query)

    def checkpoints(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> Call[builtins.list[Checkpoint]]:
        query: dict[str, Any] = {"after": check_counter("after_seq", after_seq, 0), "name": name}
        query["limit"] = check_limit("limit", limit)
        return Call("GET", _path("sessions", session_id, "checkpoints"), _checkpoints, params=query)

    def last_checkpoint(self, session_id: str, name: str | None = None) -> Call[Checkpoint | None]:
        path = _path("sessions", session_id, "checkpoints", "latest")
        return Call("GET", path, _maybe_checkpoint, params={"name": name})

    def duration(self, session_id: str) -> Call[timedelta]:
        # Measured at this machine's clock (exact for an ended session, which ends at `ended_at`).
        return Call("GET", _path("sessions", session_id), lambda r: _session(r).duration(datetime.now(UTC)))

    def checkpoint(
        self,
        session_id: str,
        name: str,
        data: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
    ) -> Call[Checkpoint]:
        body = json_body(name=name, data=data, epoch=_epoch(epoch))
        return Call("POST", _path("sessions", session_id, "checkpoints"), _checkpoint, body=body)

    def heartbeat(
        self,
        session_id: str,
        *,
        epoch: int | None = None,
        phase: str | None = None,
        expect_silence: float | None = None,
    ) -> Call[None]:
        body = json_body(epoch=_epoch(epoch), phase=phase, expect_silence=expect_silence)
        return Call("POST", _path("sessions", session_id, "heartbeat"), _nothing, body=body)

    def heartbeats(self, beats: Sequence[Beat]) -> Call[builtins.list[TetherError | None]]:
        if isinstance(beats, str | bytes) or not isinstance(beats, Sequence):
            raise ValidationError("beats", f"must be a list of Beat, got {type(beats).__name__}")
        beats = [checked_beat(i, b) for i, b in enumerate(beats)]  # the library's check, naming the field
        rows = [
            {k: v for k, v in (("session_id", b.session_id), ("epoch", b.epoch), ("phase", b.phase),
                               ("expect_silence", b.expect_silence)) if v is not None}
            for b in beats
        ]  # fmt: skip
        return Call("POST", "/v1/heartbeats", _beat_results, body=json_body(beats=rows))

    def pause(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Call[Session]:
        return self._transition("pause", session_id, expected_version, epoch=epoch)

    def resume(
        self, session_id: str, *, epoch: int | None = None, expected_version: int | None = None
    ) -> Call[Session]:
        return self._transition("resume", session_id, expected_version, epoch=epoch)

    def complete(
        self,
        session_id: str,
        result: dict[str, Any] | None = None,
        *,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Call[Session]:
        return self._transition("complete", session_id, expected_version, result=result, epoch=epoch)

    def fail(
        self,
        session_id: str,
        error: str,
        details: dict[str, Any] | None = None,
        *,
        final: bool = False,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Call[Session]:
        fields = {"error": error, "details": details, "final": final, "epoch": epoch}
        return self._transition("fail", session_id, expected_version, **fields)

    def _transition(
        self, action: str, session_id: str, expected_version: int | None, **fields: Any
    ) -> Call[Session]:
        """pause, resume, complete, fail: an owner write with If-Match."""
        if action == "fail":
            check_error(fields["error"], NO_LIMIT)
            check_flag("final", fields["final"])
        path = _path("sessions", session_id, action)
        fields["epoch"] = _epoch(fields.get("epoch"))
        return Call("POST", path, _session, body=json_body(**fields), headers=_if_match(expected_version))

    def update(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        epoch: int | None = None,
        expected_version: int | None = None,
    ) -> Call[Session]:
        body = json_body(context=context, metadata=metadata, epoch=_epoch(epoch))
        return Call(
            "PATCH", _path("sessions", session_id), _session, body=body, headers=_if_match(expected_version)
        )

    def claim(self, session_id: str, worker_id: str | None = None) -> Call[Session]:
        body = json_body(worker_id=worker_id or self.worker_id)
        return Call("POST", _path("sessions", session_id, "claim"), _session, body=body)

    def claim_next(
        self, agent_types: Iterable[str] | None = None, worker_id: str | None = None
    ) -> Call[Session | None]:
        checked = checked_agent_types(agent_types)
        types = None if checked is None else sorted(checked)
        body = json_body(agent_types=types, worker_id=worker_id or self.worker_id)
        return Call("POST", "/v1/claims", _maybe_session, body=body)

    def time_out(self, session_id: str) -> Call[Session]:
        return Call("POST", _path("sessions", session_id, "time_out"), _session, body=json_body())

    def policies(self) -> Call[Policies]:
        return Call("GET", "/v1/policies", lambda r: policies_from_json(r.json()))

    def delete(self, session_id: str) -> Call[None]:
        return Call("DELETE", _path("sessions", session_id), _nothing)

    def purge(
        self,
        older_than: timedelta | datetime,
        states: Iterable[State | str] = tuple(ENDED_STATES),
    ) -> Call[int]:
        # A timedelta is an age at the server's clock; a datetime an instant (`before`).
        chosen = sorted(required_state(s).value for s in states)
        if isinstance(older_than, datetime):
            body = json_body(before=as_aware(older_than).isoformat(), states=chosen)
        elif isinstance(older_than, timedelta):
            body = json_body(older_than=older_than.total_seconds(), states=chosen)
        else:
            raise ValidationError(
                "older_than", f"must be a timedelta or datetime, got {type(older_than).__name__}"
            )
        return Call("POST", "/v1/purge", _count("purged"), body=body)

    def enforce_retention(
        self, *, dry_run: bool = False, batch: int = RETENTION_BATCH, max_batches: int = RETENTION_BATCHES
    ) -> Call[RetentionReport]:
        # GET is the dry run, POST the pass; the server's own batch bounds apply.
        check_flag("dry_run", dry_run)
        check_limit("batch", batch)
        check_limit("max_batches", max_batches)
        if dry_run:
            return Call("GET", "/v1/retention", _retention)
        return Call("POST", "/v1/retention", _retention, body=json_body())

    def erase_user(self, user_id: str) -> Call[int]:
        return Call("POST", _path("users", user_id, "erase"), _count("erased"), body=json_body())

    def export(self, user_id: str | None, decrypt: bool) -> Call[None]:
        """Streamed: the client hands the lines to an `ExportLines` as they arrive. An encrypting
        server exports payloads in clear only with `decrypt` (422 naming it otherwise), as embedded."""
        params = {"user_id": user_id, "decrypt": "true" if check_flag("decrypt", decrypt) else None}
        return Call("GET", "/v1/export", _nothing, params=params)

    def import_sessions(
        self,
        source: str | Path | IO[str],
        *,
        on_conflict: str = "error",
        progress: Callable[[int], None] | None = None,
    ) -> Call[int]:
        # The file is sent as it is on disk (the server reads it as the library would); `progress`
        # hears of every session once the server has imported them.
        jsonl = read_source(source)

        def imported(response: httpx.Response) -> int:
            count = int(response.json()["imported"])
            if progress is not None:
                progress(seed_lines(jsonl))
            return count

        headers = {"Content-Type": "application/x-ndjson"}
        params = {"on_conflict": on_conflict}
        return Call("POST", "/v1/import", imported, params=params, body=jsonl, headers=headers)


class ExportLines:
    """Where a streamed export goes: one seed-format session per line, counted. Lines end at "\n"
    only: U+2028 and friends inside a session's data are data (httpx's line reader splits on them)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.count = 0
        self._partial = b""

    def write(self, chunk: bytes) -> None:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            if line.strip():
                self.out.write(line.decode() + "\n")
                self.count += 1

    def close(self) -> None:
        self.write(b"\n")


def seed_lines(jsonl: bytes) -> int:
    """How many sessions a seed JSONL file holds: its non-blank lines (ended by "\n" only)."""
    return sum(1 for line in jsonl.split(b"\n") if line.strip())


def read_source(source: str | Path | IO[str]) -> bytes:
    """An import's bytes: a file as it is on disk (the server reads it as the library would)."""
    if isinstance(source, str | Path):
        return Path(source).read_bytes()
    return source.read().encode("utf-8", "surrogatepass")
