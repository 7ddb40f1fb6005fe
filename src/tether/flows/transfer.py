"""Export and import of the seed format (JSONL) as flows: one session in memory at a time."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO

from tether import lifecycle
from tether.core.errors import ConflictError, TetherError, ValidationError
from tether.core.model import Checkpoint, Session, SessionFilter, State
from tether.core.policy import Policies
from tether.core.sealing import KEY_VARIABLE, is_sealed
from tether.flows.runner import Flow, call
from tether.flows.seed import new_checkpoints, read_jsonl, write_jsonl
from tether.stores.base import Store

PAGE = 500
CHECKPOINT_PAGE = 1000


def export_jsonl(destination: str | Path | IO[str], user_id: str | None) -> Flow[int]:
    """Write every session (of one user, if given) with all its checkpoints; returns the count."""
    count = 0
    cursor: str | None = None
    with opened(destination, "w") as out:
        while True:
            page = yield from call(Store.query, SessionFilter(user_id=user_id), PAGE, cursor)
            for session in page:
                history = yield from _all_checkpoints(session.session_id)
                _refuse_sealed(session, history)
                write_jsonl(out, session, history)
                count += 1
            if page.next_cursor is None:
                return count
            cursor = page.next_cursor


def import_jsonl(
    policies: Policies,
    source: str | Path | IO[str],
    on_conflict: str,
    progress: Callable[[int], None] | None,
) -> Flow[int]:
    """Create each session of a seed JSONL file; returns how many were imported.

    Bad input changes nothing: every line is read and checked before the first session is written.
    A write that fails after that (an existing id, the store going away) stops the import; the error
    then carries a note saying how many sessions went in and how to resume (import the same file
    again with on_conflict="skip"). Active and paused sessions get a lease measured from their last
    heartbeat, so an import of a dead system's sessions is at once visible to the supervisor.
    """
    if on_conflict not in ("error", "skip"):
        raise ValidationError("on_conflict", "must be 'error' or 'skip'")
    imported = 0
    with _readable_twice(source) as lines:
        try:
            for _ in read_jsonl(lines()):
                pass
        except ValidationError as exc:
            exc.add_note(NOTHING_IMPORTED)
            raise
        for number, session, checkpoints in read_jsonl(lines()):
            try:
                yield from call(Store.create, _with_lease(session, policies), new_checkpoints(checkpoints))
                imported += 1
            except ConflictError as exc:
                if on_conflict == "error":
                    exc.add_note(_stopped_at(number, imported))
                    raise
            except TetherError as exc:
                exc.add_note(_stopped_at(number, imported))
                raise
            if progress is not None:
                progress(1)
    return imported


NOTHING_IMPORTED = "nothing was imported (every line is checked before the first is written)"


def _stopped_at(line: int, imported: int) -> str:
    return (
        f"the import stopped at line {line}: {imported} session(s) from the lines before it were "
        "imported, none after it; import the same file again skipping existing ids "
        "(on_conflict='skip', tether import --skip-existing) to resume"
    )


@contextlib.contextmanager
def _readable_twice(source: str | Path | IO[str]) -> Iterator[Callable[[], Iterator[str | bytes]]]:
    """The source's lines, as often as asked: a file is reopened (in binary, so a bad byte is
    pinned to its line), a seekable stream rewound, any other stream kept in a temporary file."""
    if isinstance(source, str | Path):

        def reopened() -> Iterator[str | bytes]:
            with open(source, "rb") as fh:
                yield from fh

        yield reopened
    elif source.seekable():
        start = source.tell()

        def rewound() -> Iterator[str | bytes]:
            source.seek(start)
            yield from source

        yield rewound
    else:
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="surrogatepass") as spool:

            def spooled() -> Iterator[str | bytes]:
                if spool.tell() == 0:  # the first pass reads the stream and keeps each line
                    for line in source:
                        spool.write(line)
                        yield line
                    return
                spool.seek(0)
                yield from spool

            yield spooled


def _refuse_sealed(session: Session, history: list[Checkpoint]) -> None:
    """The seed format holds plain JSON: a payload still sealed (no key given) is not exported."""
    failure = session.failure
    payloads = [session.context, session.metadata, *(cp.data for cp in history)]
    if any(is_sealed(p) for p in payloads) or (failure is not None and is_sealed(failure.details)):
        raise ValidationError(
            "decrypt",
            f"session {session.session_id!r} is encrypted: set {KEY_VARIABLE}, export with decrypt=True",
        )


def _with_lease(session: Session, policies: Policies) -> Session:
    if session.state not in (State.ACTIVE, State.PAUSED):
        return session
    fields = lifecycle.lease_fields(policies.for_type(session.agent_type), session.last_heartbeat)
    return replace(session, **fields)


def _all_checkpoints(session_id: str) -> Flow[list[Checkpoint]]:
    """One session's whole history: it is written as one JSON line, so it is in memory anyway."""
    history: list[Checkpoint] = []
    while True:
        after = history[-1].seq if history else 0
        batch = yield from call(Store.checkpoints, session_id, after, CHECKPOINT_PAGE)
        history.extend(batch)
        if len(batch) < CHECKPOINT_PAGE:
            return history


@contextlib.contextmanager
def opened(target: str | Path | IO[str], mode: str) -> Iterator[IO[str]]:
    """A path opened as UTF-8 text (and closed after), or a stream used as it is."""
    if isinstance(target, str | Path):
        with open(target, mode, encoding="utf-8") as fh:
            yield fh
    else:
        yield target
