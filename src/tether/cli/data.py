"""Session data an operator manages: `tether fork`, `tether retention`."""

from __future__ import annotations

from typing import Annotated

import typer

from tether.cli import render
from tether.cli.options import JsonOption, StoreOption
from tether.core.wire import retention_to_json
from tether.front.manager import SessionManager

commands = typer.Typer()


@commands.command("fork")
def fork(
    session_id: Annotated[str, typer.Argument(metavar="ID", help="The session to fork.", show_default=False)],
    at: Annotated[
        int | None,
        typer.Option("--at", metavar="SEQ", help="Copy checkpoints up to this seq. [default: last]"),
    ] = None,
    agent_type: Annotated[str | None, typer.Option("--type", help="Agent type of the fork.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="User of the fork.")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a new active session from a checkpoint of another; the source is left as it is."""
    with SessionManager(store) as manager:
        forked = manager.fork(session_id, at, agent_type=agent_type, user_id=user)
        now = manager.store.now()
    if as_json:
        render.print_json(render.session_json(forked, now))
        return
    render.out.print(f"forked {session_id} at seq {forked.last_seq} into {forked.session_id}")


@commands.command("retention")
def retention(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be removed.")] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply the retention policies of tether.toml once (the supervisor also does, every minute):
    remove ended sessions kept longer than their type's retain_completed / retain_failed."""
    with SessionManager(store) as manager:
        report = manager.enforce_retention(dry_run=dry_run)
    if as_json:
        render.print_json(retention_to_json(report))
        return
    verb = "would remove" if dry_run else "removed"
    if not report.retired:
        render.out.print(f"{verb} nothing")
    for retired in report.retired:
        rule = retired.rule
        kind = rule.agent_type or "types without a policy of their own"
        cutoff = render.timestamp(rule.ended_before)
        count = render.how_many(len(retired.session_ids))
        render.out.print(f"{verb} {count} ({rule.state.value}, {kind}, ended before {cutoff})")
