"""The hot one-row statements through libpq directly, prepared once per connection: the point
reads (get, last checkpoint, last by name) and a lone checkpoint append.

A point read is one short round trip: the statement runs in ~0.02 ms inside the server, yet going
through a psycopg cursor (query conversion, its prepared-statement bookkeeping, a blocking wait)
and a pooled connection cost several times that in Python. An append waits for the WAL flush as
well; the cursor's share of it measured ~35-60 µs of ~0.3 ms. Here a statement from queries.sql
is prepared under its own name on each connection the first time it runs there, then executed with
`PGconn.send_query_prepared` (psycopg's documented low-level `psycopg.pq` API), its binary result
loaded by psycopg's own loaders (`psycopg.adapt.Transformer`, so the values are exactly what a
cursor gives: timestamps, jsonb through `tether.core.codec`).

The I/O is sans-IO like the operations: `execute` is a generator that yields what it waits for
(`READ` or `WRITE` on the connection's socket). `wait` drives it for the sync store, spinning
briefly on a zero-timeout poll before it blocks (see `wait`), `wait_async` for asyncio.

Failures are psycopg's exceptions, as a cursor raises them: a lost connection is an
`OperationalError` (libpq's own), a statement the server refused the error class of its SQLSTATE.
The connection is then in the state libpq left it in, which the pool checks when it comes back.
"""

from __future__ import annotations

import asyncio
import re
import select
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
from time import perf_counter
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Transformer
from psycopg.pq import ConnStatus, ExecStatus, Format

T = TypeVar("T")
Row = tuple[Any, ...]

READ, WRITE = select.POLLIN, select.POLLOUT
Step = Generator[int, None, T]  # yields READ or WRITE: what to wait for on the socket

# After these a statement is prepared again: the server forgot it (26000), or its result's shape
# changed under it, e.g. a migration added a column to a `SELECT *` (0A000, "cached plan must not
# change result type").
PREPARE_AGAIN = frozenset({"26000", "0A000"})


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement of queries.sql in the server's own form: `%(name)s` placeholders become $1, $2…
    in order of first appearance; `params` names them in that order. `spins`: whether waiting for
    its reply may spin (see `wait`); a write's reply waits for the disk, longer than any spin."""

    name: bytes
    sql: bytes
    params: tuple[str, ...]
    spins: bool = True

    @classmethod
    def of(cls, name: str, sql: str, spins: bool = True) -> Prepared:
        order: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match[1] not in order:
                order.append(match[1])
            return f"${order.index(match[1]) + 1}"

        text = re.sub(r"%\((\w+)\)s", number, sql)
        if "%" in text:
            raise ValueError(f"statement {name!r}: only %(name)s placeholders can be prepared")
        return cls(f"tether_{name}".encode(), text.encode(), tuple(order), spins)

    def values(self, params: Mapping[str, Any], encoding: str) -> list[bytes | None]:
        """The parameters as libpq's text values, which the server parses as the types the
        statement gives them: strings, integers, timezone-aware datetimes, None."""
        out: list[bytes | None] = []
        for key in self.params:
            value = params[key]
            if value is None:
                out.append(None)
            elif isinstance(value, str):
                if "\x00" in value:  # a C string would end there: refuse it, as psycopg's dumper does
                    raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
                out.append(value.encode(encoding))
            elif isinstance(value, int) and not isinstance(value, bool):
                out.append(str(value).encode())
            elif isinstance(value, datetime) and value.tzinfo is not None:
                out.append(value.isoformat().encode())
            else:
                raise TypeError(f"{self.name.decode()}: parameter {key!r} cannot be sent as {value!r}")
        return out


class Statements:
    """What one connection knows about its point statements: those prepared on it, and the
    loaders of their results (kept, as a cursor keeps its own)."""

    def __init__(self, conn: psycopg.BaseConnection[Any]) -> None:
        self.conn = conn
        self.prepared: set[bytes] = set()
        self.encoding = conn.info.encoding
        self.loaders = Transformer(conn)


def execute(statements: Statements, statement: Prepared, params: Mapping[str, Any]) -> Step[list[Row]]:
    """Run a point statement (preparing it on this connection first) and return its rows as tuples."""
    pgconn = statements.conn.pgconn
    values = statement.values(params, statements.encoding)
    for attempt in (1, 2):
        if statement.name not in statements.prepared:
            yield from _prepare(pgconn, statement, statements.encoding, replace=attempt > 1)
            statements.prepared.add(statement.name)
        pgconn.send_query_prepared(statement.name, values, result_format=Format.BINARY)
        result = yield from _result(pgconn)
        if result.status == ExecStatus.TUPLES_OK:
            loaders = statements.loaders
            loaders.set_pgresult(result)
            return loaders.load_rows(0, result.ntuples, tuple)
        error = _error(pgconn, result, statements.encoding)
        if attempt == 1 and error.sqlstate in PREPARE_AGAIN:
            statements.prepared.discard(statement.name)
            continue
        raise error
    raise AssertionError("unreachable")  # pragma: no cover


def _prepare(pgconn: Any, statement: Prepared, encoding: str, replace: bool) -> Step[None]:
    if replace:  # drop the server's copy if it still has one; "does not exist" is fine
        pgconn.send_query(b"DEALLOCATE " + statement.name)
        yield from _result(pgconn)
    pgconn.send_prepare(statement.name, statement.sql)
    result = yield from _result(pgconn)
    if result.status != ExecStatus.COMMAND_OK:
        raise _error(pgconn, result, encoding)


def _error(pgconn: Any, result: Any, encoding: str) -> psycopg.Error:
    """The exception a cursor raises for a failed result: OperationalError if the connection is gone."""
    if pgconn.status == ConnStatus.BAD:
        return psycopg.OperationalError(result.get_error_message(encoding) or "the connection was lost")
    return pg_errors.error_from_result(result, encoding=encoding)


def _result(pgconn: Any) -> Step[Any]:
    """Flush what was sent, then read until the command's results are complete; the first result.
    A lost connection raises OperationalError from libpq (flush / consume_input), as in a cursor."""
    while pgconn.flush():
        yield WRITE
    first = None
    while True:
        pgconn.consume_input()
        if pgconn.is_busy():
            yield READ
            continue
        result = pgconn.get_result()
        if result is None:
            break
        first = result if first is None else first
    if first is None:  # pragma: no cover - libpq always gives a result or raises
        raise psycopg.OperationalError("the server sent no result")
    return first


class Spin:
    """How long a lone point read polls for its reply before blocking (see `wait`), learning from
    misses: when replies keep coming later than that (a server across a network), polling only
    burns CPU, so after `MISSES` misses in a row it rests for `REST` reads, then tries again."""

    MISSES = 3
    REST = 100

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._misses = 0
        self._resting = 0

    def budget(self) -> float:
        """Seconds the next read may poll; 0 while resting (or configured off)."""
        if self._resting:
            self._resting -= 1
            return 0.0
        return self.seconds

    def record(self, hit: bool) -> None:
        """Whether the reply came while polling. Races between threads only blur the counts."""
        if hit:
            self._misses = 0
            return
        self._misses += 1
        if self._misses >= self.MISSES:
            self._misses = 0
            self._resting = self.REST


def wait(step: Step[T], fileno: int, spin: Spin | None) -> T:
    """Drive a step on a blocking socket, polling without a timeout for up to the spin's budget
    before blocking (no spin: block at once).

    On a virtual machine an idle CPU halts, and waking a halted CPU costs tens of microseconds:
    a blocking wait for a 0.02 ms point read was woken ~0.05 ms later than the reply arrived
    (README, "PostgreSQL reads"). Spinning keeps this CPU awake for a reply that is already on its
    way; a reply slower than the budget costs that much CPU, then the wait blocks as before, and
    the spin rests if that keeps happening. Each poll releases the GIL, so other threads run
    meanwhile.
    """
    poller = select.poll()
    try:
        want = next(step)
        poller.register(fileno, want)
        while True:
            ready = poller.poll(0)
            if not ready and spin is not None and (budget := spin.budget()) > 0:
                deadline = perf_counter() + budget
                while not (ready := poller.poll(0)) and perf_counter() < deadline:
                    pass
                spin.record(bool(ready))
            if not ready:
                poller.poll()
            want = step.send(None)
            poller.modify(fileno, want)
    except StopIteration as done:
        result: T = done.value
        return result


async def wait_async(step: Step[T], fileno: int) -> T:
    """Drive a step from the event loop: each wait is a reader (or writer) callback on the socket."""
    loop = asyncio.get_running_loop()
    try:
        want = next(step)
        while True:
            ready: asyncio.Future[None] = loop.create_future()
            watch, unwatch = (
                (loop.add_reader, loop.remove_reader)
                if want == READ
                else (loop.add_writer, loop.remove_writer)
            )
            watch(fileno, _settle, ready)
            try:
                await ready
            finally:
                unwatch(fileno)
            want = step.send(None)
    except StopIteration as done:
        result: T = done.value
        return result


def _settle(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)
