"""Options every command shares, and parsing of the values the library does not take as text."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

from tether.core.validation import MAX_SECONDS

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        show_default=False,
        help="memory://, sqlite:///path/tether.db or postgresql://… "
        "\\[default: TETHER_STORE_URL, else sqlite:///tether.db]",
    ),
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table, for scripts.")]

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `12h`, `30d` or `2w`: a whole number and one unit."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 15m, 12h, 30d or 2w")
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds > MAX_SECONDS:
        raise typer.BadParameter(f"{text!r} is longer than 100 years")
    return timedelta(seconds=seconds)
