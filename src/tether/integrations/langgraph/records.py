"""How LangGraph's records sit in a thread's Tether checkpoint log, and how they are read back.

A thread is one Tether session. Every `put` appends a Tether checkpoint named
`langgraph.checkpoint` (`langgraph.checkpoint:<ns>` in a subgraph namespace), so the newest
checkpoint of a namespace is an index look-up; every `put_writes` one named
`langgraph.writes:<checkpoint id>`, so a checkpoint's writes are one too, wherever they sit in the
log (with LangGraph's default "async" durability they may land before their checkpoint). The log is
append-only, so `prune` and `delete_for_runs` append a `langgraph.forget` record naming the
checkpoints they remove; reads skip what a newer `forget` names.

Whatever LangGraph's serializer turns into bytes (channel values, the checkpoint's bookkeeping,
pending writes) is kept as `[type, base64]`: the serializer's own bytes, so a read hands them back
to `serde.loads_typed` exactly as written, whatever the serializer (msgpack, pickle, encrypted),
and base64 costs one C call each way. Metadata is plain JSON, as `list(filter=...)` reads it.
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from tether.core.model import Checkpoint as Record
from tether.core.validation import MAX_NAME_LENGTH

CHECKPOINT = "langgraph.checkpoint"
WRITES = "langgraph.writes"
FORGET = "langgraph.forget"

Key = tuple[str, str]  # (checkpoint_ns, checkpoint_id)


def record_name(kind: str, suffix: str) -> str:
    """`kind` alone for an empty suffix (the root namespace), else `kind:suffix` (a namespace, or a
    checkpoint id for writes), hashed if that cannot be a Tether checkpoint name."""
    if not suffix:
        return kind
    name = f"{kind}:{suffix}"
    if len(name) <= MAX_NAME_LENGTH and name.isprintable() and name == name.strip():
        return name
    return f"{kind}#{hashlib.sha256(suffix.encode()).hexdigest()}"


def kind_of(name: str) -> str:
    return name.partition(":")[0].partition("#")[0]


def pack(serde: SerializerProtocol, value: Any) -> list[str]:
    kind, raw = serde.dumps_typed(value)
    return [kind, binascii.b2a_base64(raw, newline=False).decode("ascii")]


def unpack(serde: SerializerProtocol, blob: list[str]) -> Any:
    return serde.loads_typed((blob[0], binascii.a2b_base64(blob[1])))


def checkpoint_record(
    serde: SerializerProtocol,
    ns: str,
    parent_id: str | None,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
) -> dict[str, Any]:
    rest = {k: v for k, v in checkpoint.items() if k != "channel_values"}
    return {
        "ns": ns,
        "id": checkpoint["id"],
        "parent": parent_id,
        "checkpoint": pack(serde, rest),
        "values": {k: pack(serde, v) for k, v in checkpoint["channel_values"].items()},
        "metadata": dict(metadata),
    }


def writes_record(
    serde: SerializerProtocol,
    ns: str,
    checkpoint_id: str,
    writes: list[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> dict[str, Any]:
    # Special channels (errors, interrupts) have fixed negative indices, so a retry replaces them.
    rows = [[WRITES_IDX_MAP.get(c, i), c, *pack(serde, v)] for i, (c, v) in enumerate(writes)]
    return {
        "ns": ns,
        "checkpoint_id": checkpoint_id,
        "task_id": task_id,
        "task_path": task_path,
        "writes": rows,
    }


def forget_record(keys: list[Key]) -> dict[str, Any]:
    return {"checkpoints": [list(key) for key in keys]}


@dataclass(frozen=True, slots=True)
class Found:
    """A visible LangGraph checkpoint: its record (its writes are read by name when needed)."""

    record: Record

    @property
    def key(self) -> Key:
        return self.record.data["ns"], self.record.data["id"]

    @property
    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self.record.data["metadata"]
        return metadata


@dataclass
class NewestFirst:
    """Reads a thread's log from the newest record back: a `forget` and the writes of a checkpoint
    come after it in the log, so both are known by the time its record is reached."""

    forgotten: set[Key] = field(default_factory=set)
    seen: set[Key] = field(default_factory=set)

    def take(self, record: Record) -> Found | None:
        """The checkpoint this record is, if it is one and visible (not forgotten, not re-put later)."""
        kind, data = kind_of(record.name), record.data
        if kind == FORGET:
            self.forgotten.update((ns, cid) for ns, cid in data["checkpoints"])
        elif kind == CHECKPOINT:
            key = (data["ns"], data["id"])
            if key not in self.forgotten and key not in self.seen:
                self.seen.add(key)
                return Found(record)
        return None


def to_tuple(
    serde: SerializerProtocol, thread_id: str, found: Found, writes: list[Record]
) -> CheckpointTuple:
    data = found.record.data
    ns = data["ns"]
    checkpoint = unpack(serde, data["checkpoint"])
    checkpoint["channel_values"] = {k: unpack(serde, v) for k, v in data["values"].items()}
    return CheckpointTuple(
        config=thread_config(thread_id, ns, data["id"]),
        checkpoint=checkpoint,
        metadata=cast(CheckpointMetadata, dict(data["metadata"])),
        parent_config=thread_config(thread_id, ns, data["parent"]) if data["parent"] else None,
        pending_writes=pending_writes(serde, [w for w in writes if w.data["ns"] == ns]),
    )


def thread_config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


def pending_writes(serde: SerializerProtocol, records: list[Record]) -> list[PendingWrite]:
    """As every LangGraph saver keeps them: a regular write's first version stands, a special
    channel's last; in `writes_sort_key` order. `records` are oldest first."""
    chosen: dict[tuple[str, int], tuple[str, str, int, str, list[str]]] = {}
    for record in records:
        task_id, task_path = record.data["task_id"], record.data["task_path"]
        for idx, channel, kind, raw in record.data["writes"]:
            if idx >= 0 and (task_id, idx) in chosen:
                continue
            chosen[(task_id, idx)] = (task_path, task_id, idx, channel, [kind, raw])
    ordered = sorted(chosen.values(), key=lambda w: writes_sort_key(w[0], w[1], w[2]))
    return [(task_id, channel, unpack(serde, blob)) for _, task_id, _, channel, blob in ordered]


def matches(metadata: dict[str, Any], wanted: dict[str, Any] | None) -> bool:
    return not wanted or all(metadata.get(k) == v for k, v in wanted.items())
