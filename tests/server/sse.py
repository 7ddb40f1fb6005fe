"""A minimal Server-Sent Events reader for tests: frames as (id, event, data) from an httpx stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import httpx


@dataclass(frozen=True)
class Frame:
    id: str | None
    event: str
    data: Any


def frames(response: httpx.Response) -> Iterator[Frame]:
    """Frames as they arrive (comments and bare `retry:` blocks skipped)."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in fields:
                yield Frame(fields.get("id"), fields.get("event", "message"), json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


def take(stream: Iterator[Frame], count: int) -> list[Frame]:
    """The next `count` frames (fewer if the server ends the stream)."""
    return list(islice(stream, count))
