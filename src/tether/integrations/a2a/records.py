"""How an A2A task's `a2a.task` records hold it, and which record a save appends.

A record is a snapshot, `{"snapshot": b64}` (the whole task, binary protobuf), or a delta on an
earlier record, `{"delta": ..., "after": seq, "base": seq, "room": n}` (see `delta`): `after` names
the record it applies to, `base` the snapshot its chain starts from (a read fetches the records from
there on in one range), and `room` how many more bytes of deltas the chain takes before a save
writes a snapshot instead. Records written by earlier versions, `{"task": ...}` (the whole task as
protobuf JSON), are snapshots too. A delta names its parent rather than meaning "the record before
me": two writers that save one task at once each append a delta on the state they knew, and the
newest record wins whole, as it did when every record was a whole task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from a2a.types.a2a_pb2 import Task
from google.protobuf.json_format import ParseDict

from tether.core.model import Checkpoint as Record
from tether.integrations.a2a import delta

# A chain's deltas may add up to ROOM times its snapshot's size, then a save writes a snapshot: a
# read parses the snapshot and at most ROOM times its size in deltas, and snapshots add about 1/ROOM
# to what the deltas cost (payload and RECORD), however long the task. Why 4: docs/integrations.md.
ROOM = 4
# What a record costs beyond its payload (its row, its index entries), counted against the room
# so that a chain of tiny deltas (status changes) still ends in a snapshot before reads get long.
RECORD = 200

Data = dict[str, Any]
LISTS = frozenset(f.name for f in Task.DESCRIPTOR.fields if f.is_repeated)  # history, artifacts


@dataclass(frozen=True, slots=True)
class Stored:
    """A task as one of its records holds it: what the next save's delta is taken against."""

    task: Task
    seq: int  # the record's
    base: int  # the snapshot its chain of deltas starts from (itself for a snapshot)
    room: int  # bytes of deltas its chain still takes

    @classmethod
    def of(cls, record: Record, task: Task) -> Stored:
        data = record.data
        if "delta" in data:
            return cls(task, record.seq, data["base"], data["room"])
        # A whole task in protobuf JSON (an earlier version's) has no room: the next save writes a
        # binary snapshot.
        room = ROOM * len(data["snapshot"]) if "snapshot" in data else 0
        return cls(task, record.seq, record.seq, room)


def record(known: Stored | None, task: Task) -> Data:
    """What a save of `task` appends: a delta on `known` (the task's newest record, or the one this
    writer knows) while it fits in its chain's room and is smaller than the task, else a snapshot.
    A snapshot too when the history or the artifacts lost elements (cut, or replaced by fewer): the
    delta would restate the list, and later reads are better off starting from there."""
    if known is not None:
        change = delta.diff(known.task, task)
        size = len(json.dumps(change))
        room = known.room - size - RECORD
        cut = not LISTS.isdisjoint(change.get("clear", ()))
        if room >= 0 and size < delta.encoded_size(task) and not cut:
            return {"delta": change, "after": known.seq, "base": known.base, "room": room}
    return {"snapshot": delta.encode(task)}


def rebuilt(log: Mapping[int, Record], seq: int) -> Stored | None:
    """The task the record at `seq` holds, from its snapshot and the deltas on the way (`log`: the
    records by seq, from its snapshot on); None when one is missing (the task was deleted meanwhile)."""
    chain = [log[seq]]
    while "delta" in chain[-1].data:
        parent = log.get(chain[-1].data["after"])
        if parent is None:
            return None
        chain.append(parent)
    task = whole(chain.pop().data)
    for step in reversed(chain):
        delta.apply(task, step.data["delta"])
    return Stored.of(log[seq], task)


def whole(snapshot: Data) -> Task:
    """The task a snapshot holds."""
    task = Task()
    if "snapshot" in snapshot:
        task.ParseFromString(delta.decode(snapshot["snapshot"]))
    else:
        ParseDict(snapshot["task"], task)  # an earlier version's record
    return task
