"""The root `tether` command.

A command group is a module with a `commands = typer.Typer()` holding its commands; adding it to
COMMAND_GROUPS below is all it takes to register it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from tether.cli import data, demo, maintenance, serve, sessions, supervise, transfer, watch
from tether.cli.exits import run

app = typer.Typer(
    name="tether",
    add_completion=False,
    pretty_exceptions_enable=False,  # errors are reported in one line by `exits.run`
)

COMMAND_GROUPS = (
    sessions.commands,
    transfer.commands,
    maintenance.commands,
    demo.commands,
    supervise.commands,
    watch.commands,
    data.commands,
    serve.commands,
)

for group in COMMAND_GROUPS:
    app.add_typer(group)


@app.callback(invoke_without_command=True)
def root(ctx: typer.Context) -> None:
    """Tether: durable, supervised sessions for AI agents.

    Every command takes --store URL (default: TETHER_STORE_URL, else sqlite:///tether.db).
    """
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help(), nl=False)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the command, exit with its status."""
    sys.exit(run(app, argv))
