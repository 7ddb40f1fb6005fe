"""Looking after the store: `tether purge`, `tether migrate`, `tether version`."""

from __future__ import annotations

import platform
from datetime import timedelta
from typing import Annotated

import typer

import tether
from tether.cli import render
from tether.cli.options import StoreOption, parse_duration
from tether.core.config import store_url
from tether.core.model import ENDED_STATES, State
from tether.front.manager import SessionManager
from tether.stores import open_store

commands = typer.Typer()


@commands.command("purge")
def purge(
    older_than: Annotated[
        timedelta,
        typer.Option(
            "--older-than",
            parser=parse_duration,
            metavar="DURATION",
            help="Age of the last activity: 90s, 15m, 12h, 30d, 2w.",
            show_default=False,
        ),
    ],
    states: Annotated[
        list[State] | None,
        typer.Option("--state", help="States to purge; repeatable. \\[default: completed, failed]"),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    store: StoreOption = None,
) -> None:
    """Delete sessions, with their checkpoints, that ended (or went silent) long enough ago."""
    chosen = sorted(states or ENDED_STATES)
    with SessionManager(store) as manager:
        cutoff = manager.store.now() - older_than
        names = " or ".join(s.value for s in chosen)
        question = f"Delete every {names} session inactive since before {render.timestamp(cutoff)}?"
        if not yes and not typer.confirm(question):
            raise typer.Abort()
        purged = manager.purge(cutoff, chosen)
    render.out.print(f"purged {render.how_many(purged)}")


@commands.command("migrate")
def migrate(store: StoreOption = None) -> None:
    """Bring the store's schema up to date and print its version."""
    url = store_url(store)
    opened = open_store(url)
    try:
        version = opened.migrate()
    finally:
        opened.close()
    render.out.print(f"schema version {version} ({opened.url or url})")


@commands.command("version")
def version() -> None:
    """Print Tether's version."""
    render.out.print(f"tether {tether.__version__} (Python {platform.python_version()})")
