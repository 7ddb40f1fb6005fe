"""The checkpointer's reads and writes as flows, on top of the adapters' shared `SessionFlows`."""

from __future__ import annotations

from collections.abc import Callable

from tether.core.errors import NotFound
from tether.core.model import Checkpoint as Record
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
from tether.integrations.sessions import SessionFlows


class ThreadFlows(SessionFlows):
    """One LangGraph thread = one Tether session (see `records` for what its log holds)."""

    def forget(self, thread_id: str, keys: list[Key]) -> Flow[None]:
        if keys:
            yield from self.append(thread_id, FORGET, forget_record(keys))

    def copy(self, source: str, target: str) -> Flow[None]:
        """Re-append the source's LangGraph records in order: the target reads as the source did."""
        for record in (yield from self.read(source)):
            if record.name.startswith("langgraph."):
                yield from self.append(target, record.name, record.data)

    def latest(self, thread_id: str, ns: str) -> Flow[Found | None]:
        """The newest visible checkpoint of a namespace: one look-up of whichever came last, the
        newest checkpoint or a `forget` (almost always the checkpoint, then visible as it is)."""
        name = record_name(CHECKPOINT, ns)
        try:
            last = yield from self.ops.last_checkpoint_of(thread_id, [name, FORGET])
            if last is None or last.name == name:
                return None if last is None else Found(last)
            return (yield from self._behind_forget(thread_id, ns, name))
        except NotFound:
            return None

    def _behind_forget(self, thread_id: str, ns: str, name: str) -> Flow[Found | None]:
        """`latest` when a `forget` came last: the newest checkpoint unless it names it (an
        index look-up, and one for the forgets after it), else a read back from the end."""
        last = yield from self.ops.last_checkpoint(thread_id, name)
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
        """Visible checkpoints that `want`, newest first, at most `limit`."""
        view, hits = NewestFirst(), []

        def visit(record: Record) -> bool:
            found = view.take(record)
            if found is not None and want(found):
                hits.append(found)
            return limit is not None and len(hits) >= limit

        yield from self.back(thread_id, visit)
        return hits
