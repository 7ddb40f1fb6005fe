"""`TetherSaver`: a LangGraph checkpointer on any Tether store, sync and async, with thread ownership.

As a plain checkpointer it behaves like LangGraph's own savers. What it adds is `hold(thread_id)`:
the worker running a thread owns it (heartbeats in the background); once it dies, another worker's
`hold` takes the thread over and `graph.invoke(None, config)` goes on from the last checkpoint,
while every later write of the dead worker raises `LeaseLost` and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from tether.core.errors import ValidationError
from tether.flows.runner import Flow
from tether.front.handle import AsyncSessionHandle, SessionHandle
from tether.front.manager import SessionManager
from tether.integrations.adapter import Bound, manager_for
from tether.integrations.langgraph.flows import ThreadFlows
from tether.integrations.langgraph.records import (
    CHECKPOINT,
    WRITES,
    Found,
    checkpoint_record,
    matches,
    record_name,
    thread_config,
    to_tuple,
    writes_record,
)


class TetherSaver(BaseCheckpointSaver[int]):
    """Each LangGraph thread is a Tether session (agent type `agent_type`, id = thread id).

    `TetherSaver("sqlite:///tether.db")` (or `memory://`, `postgresql://…`; None: the
    TETHER_STORE_URL / ./tether.db default), or `TetherSaver(manager)` on a `SessionManager` you
    already have (then `close()` leaves it open). Async methods run the same flows on the same
    store through Tether's thread adapter.
    """

    def __init__(
        self,
        manager: SessionManager | str | None = None,
        *,
        agent_type: str = "langgraph",
        user_id: str = "langgraph",
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        manager, owned = manager_for(manager)
        self.flows = ThreadFlows(manager.ops, agent_type, user_id)
        self.bound = Bound(manager, self.flows, owned)
        self.manager = manager

    @classmethod
    def from_url(cls, url: str, **options: Any) -> TetherSaver:
        """A saver on its own `SessionManager(url)`, closed by `close()`."""
        return cls(url, **options)

    def close(self) -> None:
        self.bound.close()

    def __enter__(self) -> TetherSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def hold(self, thread_id: str) -> AbstractContextManager[SessionHandle]:
        """Own the thread for a run (see `tether.integrations.adapter.Bound.hold`): its writes are
        fenced by this worker's epoch; paused when the block ends, failed recoverably if it raises."""
        return self.bound.hold(thread_id)

    def ahold(self, thread_id: str) -> AbstractAsyncContextManager[AsyncSessionHandle]:
        """`hold` for asyncio."""
        return self.bound.ahold(thread_id)

    # -- the checkpointer, as flows ----------------------------------------------------------
    def _put(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata
    ) -> Flow[RunnableConfig]:
        thread_id, ns = _thread(config), _ns(config)
        meta = get_serializable_checkpoint_metadata(config, metadata)
        data = checkpoint_record(self.serde, ns, get_checkpoint_id(config), checkpoint, meta)
        yield from self.flows.append(thread_id, record_name(CHECKPOINT, ns), data)
        return thread_config(thread_id, ns, checkpoint["id"])

    def _put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> Flow[None]:
        thread_id, ns = _thread(config), _ns(config)
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id is None:
            raise ValidationError("config", "put_writes needs configurable.checkpoint_id")
        data = writes_record(self.serde, ns, checkpoint_id, list(writes), task_id, task_path)
        name = record_name(WRITES, checkpoint_id)
        yield from self.flows.append(thread_id, name, data)

    def _get_tuple(self, config: RunnableConfig) -> Flow[CheckpointTuple | None]:
        thread_id, ns, checkpoint_id = _thread(config), _ns(config), get_checkpoint_id(config)
        if checkpoint_id is None:
            found = yield from self.flows.latest(thread_id, ns)
        else:
            hits = yield from self.flows.newest(thread_id, lambda f: f.key == (ns, checkpoint_id), 1)
            found = hits[0] if hits else None
        if found is None:
            return None
        return to_tuple(self.serde, thread_id, found, (yield from self.flows.writes(thread_id, found)))

    def _list(
        self,
        config: RunnableConfig | None,
        wanted: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Flow[list[CheckpointTuple]]:
        configurable = config["configurable"] if config else {}
        ns, checkpoint_id = configurable.get("checkpoint_ns"), configurable.get("checkpoint_id")
        before_id = get_checkpoint_id(before) if before else None

        def want(found: Found) -> bool:
            found_ns, found_id = found.key
            return (
                (ns is None or found_ns == ns)
                and (checkpoint_id is None or found_id == checkpoint_id)
                and (before_id is None or found_id < before_id)
                and matches(found.metadata, wanted)
            )

        threads = [_thread(config)] if config else (yield from self.flows.sessions())
        tuples: list[CheckpointTuple] = []
        for thread_id in threads:
            left = None if limit is None else limit - len(tuples)
            if left is not None and left <= 0:
                break
            for found in (yield from self.flows.newest(thread_id, want, left)):
                writes = yield from self.flows.writes(thread_id, found)
                tuples.append(to_tuple(self.serde, thread_id, found, writes))
        return tuples

    def _delete_for_runs(self, run_ids: Sequence[str]) -> Flow[None]:
        runs = set(run_ids)
        if not runs:
            return
        for thread_id in (yield from self.flows.sessions()):
            hits = yield from self.flows.newest(thread_id, lambda f: f.metadata.get("run_id") in runs, None)
            yield from self.flows.forget(thread_id, [found.key for found in hits])

    def _prune(self, thread_ids: Sequence[str], strategy: str) -> Flow[None]:
        if strategy not in ("keep_latest", "delete"):
            raise ValidationError("strategy", f"must be 'keep_latest' or 'delete', got {strategy!r}")
        for thread_id in thread_ids:
            if strategy == "delete":
                yield from self.flows.delete(thread_id)
                continue
            hits = yield from self.flows.newest(thread_id, lambda f: True, None)
            newest_of_ns: set[str] = set()
            older = []
            for found in hits:  # newest first: the first of each namespace stays
                if found.key[0] in newest_of_ns:
                    older.append(found.key)
                newest_of_ns.add(found.key[0])
            yield from self.flows.forget(thread_id, older)

    # -- sync --------------------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.bound.run(self._get_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return iter(self.bound.run(self._list(config, filter, before, limit)))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.bound.run(self._put(config, checkpoint, metadata))

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self.bound.run(self._put_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self.bound.run(self.flows.delete(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.bound.run(self._delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.bound.run(self.flows.copy(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.bound.run(self._prune(thread_ids, strategy))

    # -- async -------------------------------------------------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.bound.aread(self._get_tuple(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for found in await self.bound.aread(self._list(config, filter, before, limit)):
            yield found

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self.bound.arun(self._put(config, checkpoint, metadata))

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self.bound.arun(self._put_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self.bound.arun(self.flows.delete(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self.bound.arun(self._delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self.bound.arun(self.flows.copy(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self.bound.arun(self._prune(thread_ids, strategy))


def _thread(config: RunnableConfig) -> str:
    thread_id = config["configurable"].get("thread_id")
    if thread_id is None:
        raise ValidationError("config", "configurable.thread_id is required")
    return str(thread_id)


def _ns(config: RunnableConfig) -> str:
    ns: str = config["configurable"].get("checkpoint_ns", "")
    return ns
