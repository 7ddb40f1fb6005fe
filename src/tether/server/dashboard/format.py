"""How times, durations and JSON read on the pages (Jinja filters). The scripts keep relative
times ticking from the ISO instants these put in `datetime` attributes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any


def iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def clock(value: datetime | None) -> str:
    """UTC wall-clock time, to the second: what an operator compares with logs."""
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def span(seconds: float) -> str:
    """A duration in the two largest units that matter: 45 s, 3 min 5 s, 2 h 10 min, 3 d 4 h."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "—"
    delta = (now - value).total_seconds()
    return f"{span(delta)} ago" if delta >= 0 else f"in {span(delta)}"


def until(value: datetime | None, now: datetime) -> str:
    """A deadline: `in 12 s` while ahead, `expired 3 s ago` once passed."""
    if value is None:
        return "—"
    delta = (value - now).total_seconds()
    return f"in {span(delta)}" if delta > 0 else f"expired {span(delta)} ago"


def duration(value: timedelta) -> str:
    return span(value.total_seconds())


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2f}"


FILTERS: dict[str, Callable[..., str]] = {
    "iso": iso,
    "clock": clock,
    "ago": ago,
    "until": until,
    "duration": duration,
    "pretty_json": pretty_json,
    "number": number,
}
