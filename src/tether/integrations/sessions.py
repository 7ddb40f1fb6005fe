"""What every adapter does with the Tether session behind a framework's thread, as flows
(`tether.flows.runner`): written once, run by the sync and the async face of an adapter alike."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from tether.core.errors import ConflictError, InvalidTransition, NotFound
from tether.core.model import Checkpoint as Record
from tether.core.model import Session, State
from tether.flows.operations import Operations
from tether.flows.runner import Flow

PAGE = 1000  # records read per call when a whole log is read
FIRST_PAGE = 8  # newest-first reads start small (most reads want the newest few) and grow 4x
APPEND_ATTEMPTS = 3  # an unowned append revives its session, then tries again


class SessionFlows:
    """A framework's thread (session, conversation) = one Tether session of `agent_type` whose id
    is the thread's id, created by its first write; the framework's records are its checkpoints."""

    def __init__(self, ops: Operations, agent_type: str, user_id: str, *, creates: bool = True) -> None:
        self.ops, self.agent_type, self.user_id = ops, agent_type, user_id
        self.creates = creates  # whether a write to a missing session creates it (else NotFound)
        # The epoch this worker holds a session at (`Bound.hold` sets it), else None.
        self.epoch_of: Callable[[str], int | None] = lambda session_id: None

    # -- writes ------------------------------------------------------------------------------
    def append(self, session_id: str, name: str, data: dict[str, Any]) -> Flow[Record]:
        """Append as the holder of the session (fenced by its epoch: LeaseLost once taken over), or
        as a writer that holds nothing: then a missing session is created, a paused one resumed
        and a recoverably failed one taken over; a completed one refuses."""
        epoch = self.epoch_of(session_id)
        if epoch is not None:
            return (yield from self.ops.checkpoint(session_id, name, data, epoch=epoch))
        for _ in range(APPEND_ATTEMPTS - 1):
            try:
                return (yield from self.ops.checkpoint(session_id, name, data))
            except NotFound:
                if not self.creates:
                    raise
                with contextlib.suppress(ConflictError):  # another writer created it first
                    yield from self.ops.create(self.agent_type, self.user_id, session_id=session_id)
            except InvalidTransition:
                yield from self._revive(session_id)
        return (yield from self.ops.checkpoint(session_id, name, data))

    def _revive(self, session_id: str) -> Flow[None]:
        session = yield from self.ops.get(session_id)
        try:
            if session.state is State.PAUSED:
                yield from self.ops.resume(session_id, expected_version=session.version)
            elif session.state is State.FAILED:
                yield from self.ops.claim(session_id)
        except (ConflictError, NotFound):
            pass  # moved on meanwhile (or not claimable): the next append says what it is now

    def take(self, session_id: str) -> Flow[Session]:
        """Own the session: create it, resume it if paused between runs, keep it if this worker
        owns it already, or take it over from a worker whose lease expired (NotClaimable while that
        worker is alive)."""
        with contextlib.suppress(ConflictError):
            return (yield from self.ops.create(self.agent_type, self.user_id, session_id=session_id))
        return (yield from self.take_existing((yield from self.ops.get(session_id))))

    def take_existing(self, session: Session) -> Flow[Session]:
        """`take` for a session that exists."""
        session_id = session.session_id
        if session.state is State.PAUSED:
            return (yield from self.ops.resume(session_id, expected_version=session.version))
        if session.state is State.ACTIVE and session.owner == self.ops.worker_id:
            return session  # this worker created it (e.g. ADK's create_session) and still owns it
        return (yield from self.ops.claim(session_id))

    def delete(self, session_id: str) -> Flow[None]:
        with contextlib.suppress(NotFound):
            yield from self.ops.delete(session_id)

    # -- reads -------------------------------------------------------------------------------
    def read(self, session_id: str, after_seq: int = 0, name: str | None = None) -> Flow[list[Record]]:
        """Every record (of that name) after `after_seq`, oldest first; none for a missing session."""
        records: list[Record] = []
        try:
            while True:
                page = yield from self.ops.checkpoints(session_id, after_seq=after_seq, limit=PAGE, name=name)
                records.extend(page)
                if len(page) < PAGE:
                    return records
                after_seq = page[-1].seq
        except NotFound:
            return []

    def back(self, session_id: str, visit: Callable[[Record], bool], page: int = FIRST_PAGE) -> Flow[None]:
        """Hand `visit` the records newest first until it returns True (done) or the log ends:
        reads back from the end only as far as it must, one query a page (`page` records first,
        then 4x more each time, at most PAGE)."""
        before: int | None = None
        page = max(1, min(page, PAGE))
        while True:
            try:
                batch = yield from self.ops.newest_checkpoints(session_id, page, before)
            except NotFound:
                return
            for record in batch:
                if visit(record):
                    return
            if len(batch) < page or batch[-1].seq == 1:
                return
            before, page = batch[-1].seq, min(page * 4, PAGE)

    def sessions(self) -> Flow[list[str]]:
        """Every session of this agent type, newest first."""
        ids: list[str] = []
        cursor: str | None = None
        while True:
            page = yield from self.ops.list(agent_type=self.agent_type, limit=PAGE, cursor=cursor)
            ids.extend(s.session_id for s in page)
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor
