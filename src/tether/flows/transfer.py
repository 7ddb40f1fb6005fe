"""Export and import of the seed format (JSONL) as flows: one session in memory at a time."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO

from tether import lifecycle
from tether.core.errors import ConflictError, ValidationError
from tether.core.model import Checkpoint, Page, Session, SessionFilter, State
from tether.core.policy import Policies
from tether.flows.runner import Flow, store
from tether.flows.seed import new_checkpoints, read_jsonl, write_jsonl

PAGE = 500
CHECKPOINT_PAGE = 1000


def export_jsonl(destination: str | Path | IO[str], user_id: str | None) -> Flow[int]:
    """Write every session (of one user, if given) with all its checkpoints; returns the count."""
    count = 0
    cursor: str | None = None
    with opened(destination, "w") as out:
        while True:
            page: Page[Session] = yield store.query(SessionFilter(user_id=user_id), PAGE, cursor)
            for session in page:
                write_jsonl(out, session, (yield from _all_checkpoints(session.session_id)))
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

    Active and paused sessions get a lease measured from their last heartbeat, so an import of a
    dead system's sessions is immediately visible to the supervisor and claimable.
    """
    if on_conflict not in ("error", "skip"):
        raise ValidationError("on_conflict", "must be 'error' or 'skip'")
    imported = 0
    with opened(source, "r") as stream:
        for session, checkpoints in read_jsonl(stream):
            try:
                yield store.create(_with_lease(session, policies), new_checkpoints(checkpoints))
                imported += 1
            except ConflictError:
                if on_conflict == "error":
                    raise
            if progress is not None:
                progress(1)
    return imported


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
        batch: list[Checkpoint] = yield store.checkpoints(session_id, after, CHECKPOINT_PAGE)
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
