"""What changed between two states of a protobuf message (an A2A task), as a small JSON record.

A save of a task stores this instead of the whole task, so a task saved once per message stores
each message once. A delta is `{"clear": [field, ...], "at": {field: {index: delta}}, "add": b64}`,
applied in that order: clear the fields that changed, change in place the elements of repeated
fields that changed in place (an artifact whose parts grew), then merge `add`, protobuf's binary
form of the new values of the cleared fields and of the elements appended to repeated fields (a
binary merge appends repeated elements and sets singular ones). Binary, not protobuf JSON: parsing
protobuf JSON took most of a read, and it is bigger (docs/integrations.md).
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.message import Message

Delta = dict[str, Any]


def encode(message: Message) -> str:
    return base64.b64encode(message.SerializeToString()).decode("ascii")


def encoded_size(message: Message) -> int:
    """len(encode(message)), without encoding it."""
    size: int = message.ByteSize()
    return 4 * ((size + 2) // 3)


def decode(text: str) -> bytes:
    return base64.b64decode(text)


def diff(old: Message, new: Message) -> Delta:
    """The delta that turns `old` into `new` (messages of one type). A repeated field that lost
    elements is stored whole; every other change costs what changed."""
    clear: list[str] = []
    at: dict[str, dict[str, Delta]] = {}
    add = type(new)()
    add.CopyFrom(new)  # then keep only what changed: C copies are cheaper than Python building
    for field in new.DESCRIPTOR.fields:
        name, grows = field.name, field.is_repeated
        was, now = getattr(old, name), getattr(new, name)
        if grows and len(now) >= len(was):
            kept = len(was)
            changed = [] if now[:kept] == was[:] else [i for i in range(kept) if now[i] != was[i]]
            if changed and field.message_type is None:  # a list of scalars changed: store it whole
                clear.append(name)
                continue
            if changed:
                at[name] = {str(i): diff(was[i], now[i]) for i in changed}
            del getattr(add, name)[:kept]
        elif grows or was != now or (field.has_presence and old.HasField(name) != new.HasField(name)):
            clear.append(name)  # a repeated field that lost elements, or a singular one that changed
        else:
            add.ClearField(name)
    found: Delta = {"clear": clear} if clear else {}
    if at:
        found["at"] = at
    if add.ByteSize():
        found["add"] = encode(add)
    return found


def apply(target: Message, delta: Delta) -> None:
    """Turn the message `delta` was taken from into the message it was taken to, in place."""
    for name in delta.get("clear", ()):
        target.ClearField(name)
    for name, changes in delta.get("at", {}).items():
        items = getattr(target, name)
        for index, change in changes.items():
            apply(items[int(index)], change)
    if "add" in delta:
        target.MergeFromString(decode(delta["add"]))
