"""What every store benchmark writes and how it reports: one payload, one row shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# ~1 KB of JSON, the checkpoint size the issues' targets are stated for.
PAYLOAD: dict[str, Any] = {
    "task": "summarise the customer's last three tickets",
    "step": 7,
    "scores": [round(i * 0.37, 2) for i in range(40)],
    "notes": "lorem ipsum dolor sit amet " * 26,
}
NAMES = ("task_received", "tool_call", "tool_result", "draft", "review")


@dataclass
class Row:
    metric: str
    tether: str
    baseline: str
    ratio: float | None
    target: str
    ok: bool | None
    note: str = ""
