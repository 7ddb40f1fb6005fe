"""The checkpointer's reads and writes as flows (`tether.flows.runner`), written once for the sync
and the async saver: each runs them on its manager's store."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from tether.core.errors import ConflictError, InvalidTransition, NotFound
from tether.core.model import Checkpoint as Record
from tether.core.model import Session, State
from tether.flows.operations import Operations
from tether.flows.runner import Flow
from tether.integrations.langgraph.records import (
    CHECKPOINT,
    FORGET,
    WRITES,
    Found,
    Key,
    NewestFirst,
    forget_record,
    record_name,
)

PAGE = 1000  # records read per call when a whole log is read
FIRST_PAGE = 8  # newest-first reads start small (most reads want the newest few) and grow 4x
APPEND_ATTEMPTS = 3  # an unowned append revives its session, then tries again


class ThreadFlows:
    """One LangGraph thread = one Tether session of `agent_type`, created by its first write."""

    def __init__(self, ops: Operations, agent_type: str, user_id: str) -> None:
        self.ops, self.agent_type, self.user_id = ops, agent_type, user_id

    # -- writes ------------------------------------------------------------------------------
    def append(self, thread_id: str, name: str, data: dict[str, Any], epoch: int | None) -> Flow[Record]:
        """Append as the holder of the thread at `epoch` (fenced: LeaseLost once taken over), or, with
        no epoch, as a writer that holds nothing: then a missing session is created, a paused one
        resumed and a recoverably failed one taken over; a completed one refuses."""
        if epoch is not None:
            return (yield from self.ops.checkpoint(thread_id, name, data, epoch))
        for _ in range(APPEND_ATTEMPTS - 1):
            try:
                return (yield from self.ops.checkpoint(thread_id, name, data, None))
            except NotFound:
                with contextlib.suppress(ConflictError):  # another writer created it first
                    yield from self.ops.create(self.agent_type, self.user_id, None, None, thread_id, None)
            except InvalidTransition:
                yield from self._revive(thread_id)
        return (yield from self.ops.checkpoint(thread_id, name, data, None))

    def _revive(self, thread_id: str) -> Flow[None]:
        session = yield from self.ops.get(thread_id)
        try:
            if session.state is State.PAUSED:
                yield from self.ops.resume(thread_id, None, session.version)
            elif session.state is State.FAILED:
                yield from self.ops.claim(thread_id, None)
        except (ConflictError, NotFound):
            pass  # moved on meanwhile (or not claimable): the next append says what it is now

    def forget(self, thread_id: str, keys: list[Key]) -> Flow[None]:
        if keys:
            yield from self.append(thread_id, FORGET, forget_record(keys), None)

    def take(self, thread_id: str) -> Flow[Session]:
        """Own the thread: create its session, resume it if paused between runs, or take it over
        from a worker whose lease expired (NotClaimable while that worker is alive)."""
        try:
            return (yield from self.ops.create(self.agent_type, self.user_id, None, None, thread_id, None))
        except ConflictError:
            pass
        session = yield from self.ops.get(thread_id)
        if session.state is State.PAUSED:
            return (yield from self.ops.resume(thread_id, None, session.version))
        return (yield from self.ops.claim(thread_id, None))

    def delete(self, thread_id: str) -> Flow[None]:
        with contextlib.suppress(NotFound):
            yield from self.ops.delete(thread_id)

    def copy(self, source: str, target: str) -> Flow[None]:
        """Re-append the source's LangGraph records in order: the target reads as the source did."""
        for record in (yield from self.read(source)):
            if record.name.startswith("langgraph."):
                yield from self.append(target, record.name, record.data, None)

    # -- reads -------------------------------------------------------------------------------
    def read(self, thread_id: str, after_seq: int = 0, name: str | None = None) -> Flow[list[Record]]:
        """Every record (of that name) after `after_seq`, oldest first; none for a missing thread."""
        records: list[Record] = []
        try:
            while True:
                page = yield from self.ops.checkpoints(thread_id, after_seq, PAGE, name)
                records.extend(page)
                if len(page) < PAGE:
                    return records
                after_seq = page[-1].seq
        except NotFound:
            return []

    def latest(self, thread_id: str, ns: str) -> Flow[Found | None]:
        """The newest visible checkpoint of a namespace: an index look-up, and one more for the
        `forget` records after it (almost always none)."""
        try:
            last = yield from self.ops.last_checkpoint(thread_id, record_name(CHECKPOINT, ns))
        except NotFound:
            return None
        if last is None:
            return None
        view = NewestFirst()
        for forget in (yield from self.read(thread_id, last.seq, FORGET)):
            view.take(forget)
        found = view.take(last)
        if found is not None:
            return found
        hits = yield from self.newest(thread_id, lambda f: f.key[0] == ns, 1)
        return hits[0] if hits else None

    def writes(self, thread_id: str, found: Found) -> Flow[list[Record]]:
        """The writes records of a checkpoint, oldest first: an index look-up by name."""
        return (yield from self.read(thread_id, 0, record_name(WRITES, found.key[1])))

    def newest(self, thread_id: str, want: Callable[[Found], bool], limit: int | None) -> Flow[list[Found]]:
        """Visible checkpoints that `want`, newest first, at most `limit`: reads back from the end of
        the log only as far as it must."""
        try:
            upper = (yield from self.ops.get(thread_id)).last_seq
        except NotFound:
            return []
        view, hits, page = NewestFirst(), [], FIRST_PAGE
        while upper > 0:
            lower = max(0, upper - page)
            batch = yield from self.ops.checkpoints(thread_id, lower, upper - lower, None)
            for record in reversed(batch):
                found = view.take(record)
                if found is not None and want(found):
                    hits.append(found)
                    if limit is not None and len(hits) >= limit:
                        return hits
            upper, page = lower, min(page * 4, PAGE)
        return hits

    def threads(self) -> Flow[list[str]]:
        """Every thread (session) of this saver's agent type, newest first."""
        ids: list[str] = []
        cursor: str | None = None
        while True:
            page = yield from self.ops.list(None, self.agent_type, None, None, PAGE, cursor)
            ids.extend(s.session_id for s in page)
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor
