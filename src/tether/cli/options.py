"""Options every command shares, and parsing of the values the library does not take as text."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from tether.core import duration

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


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `12h`, `30d` or `2w` (`tether.core.duration`), as a usage error if not."""
    try:
        return duration.parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
