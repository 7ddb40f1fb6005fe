"""TetherSaver passes LangGraph's published conformance suite (`langgraph-checkpoint-conformance`),
every capability it tests, on every store: through the async methods, and through the sync ones
(the suite only awaits, so `SyncFace` routes each awaited call to the sync method it names)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph.checkpoint.conformance", reason="pip install 'tether[langgraph]'")

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from tests.conftest import STORE_KINDS, make_store_url
from tether.integrations.langgraph import TetherSaver


class SyncFace(BaseCheckpointSaver[int]):
    """The suite's awaited calls, each made on the saver's sync method of the same name."""

    def __init__(self, saver: TetherSaver) -> None:
        super().__init__(serde=saver.serde)
        self.saver = saver

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.saver.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for found in self.saver.list(config, filter=filter, before=before, limit=limit):
            yield found

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.saver.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self.saver.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.saver.delete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.saver.delete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.saver.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.saver.prune(thread_ids, strategy=strategy)


@pytest.mark.parametrize("face", ["async", "sync"])
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_tether_saver_passes_every_capability_of_the_conformance_suite(
    kind: str, face: str, tmp_path: Path
) -> None:
    def fresh_url() -> str:  # the suite wants a fresh checkpointer (and store) per capability
        directory = tmp_path / uuid.uuid4().hex
        directory.mkdir()
        return make_store_url(kind, directory)

    @checkpointer_test(name=f"TetherSaver[{kind}, {face}]")
    async def tether_saver() -> AsyncIterator[BaseCheckpointSaver[int]]:
        saver = TetherSaver.from_url(fresh_url())
        try:
            yield saver if face == "async" else SyncFace(saver)
        finally:
            saver.close()

    report = asyncio.run(validate(tether_saver))
    results = report.results
    assert {cap.value for cap in ALL_CAPABILITIES} <= set(results)
    not_tested = [name for name, result in results.items() if not result.detected]
    failures = {name: result.failures for name, result in results.items() if result.passed is not True}
    assert not_tested == [] and failures == {}
    assert all(result.tests_passed > 0 for result in results.values())
