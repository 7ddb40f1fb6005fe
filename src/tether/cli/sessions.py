"""Reading sessions: `tether ls`, `tether show`, `tether checkpoints`."""

from __future__ import annotations

from typing import Annotated

import typer

from tether.cli import render
from tether.cli.options import JsonOption, StoreOption
from tether.core.model import State
from tether.front.manager import SessionManager

commands = typer.Typer()

SessionId = Annotated[str, typer.Argument(metavar="ID", help="The session id.", show_default=False)]


@commands.command("ls")
def list_sessions(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's sessions.")] = None,
    agent_type: Annotated[str | None, typer.Option("--type", help="Only this agent type.")] = None,
    state: Annotated[State | None, typer.Option("--state", help="Only sessions in this state.")] = None,
    parent: Annotated[str | None, typer.Option("--parent", help="Only children of this session.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-10000).")] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Continue where a listing stopped.")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List sessions, newest first, one page at a time."""
    with SessionManager(store) as manager:
        page = manager.list(
            user_id=user,
            agent_type=agent_type,
            state=state,
            parent_session_id=parent,
            limit=limit,
            cursor=cursor,
        )
        now = manager.store.now()
    if as_json:
        sessions = [render.session_json(s, now) for s in page]
        render.print_json({"sessions": sessions, "next_cursor": page.next_cursor})
        return
    if not page.items:
        render.out.print("no sessions")
        return
    render.out.print(render.sessions_table(page, now))
    if page.next_cursor is not None:
        render.out.print(f"more: --cursor {page.next_cursor}")


@commands.command("show")
def show(session_id: SessionId, store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Show every field of one session and its last checkpoint."""
    with SessionManager(store) as manager:
        session = manager.get(session_id)
        last = manager.last_checkpoint(session_id)
        now = manager.store.now()
    if as_json:
        document = render.session_json(session, now)
        document["last_checkpoint"] = None if last is None else render.checkpoint_json(last)
        render.print_json(document)
        return
    render.out.print(render.session_table(session, now))
    render.out.print()
    if last is None:
        render.out.print("no checkpoints yet")
    else:
        render.out.print("last checkpoint:")
        render.out.print(render.checkpoints_table([last]))


@commands.command("checkpoints")
def checkpoints(
    session_id: SessionId,
    name: Annotated[str | None, typer.Option("--name", help="Only checkpoints with this name.")] = None,
    after: Annotated[int, typer.Option("--after", help="Only checkpoints with a greater seq.")] = 0,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-10000).")] = 100,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List one session's checkpoints in order (its audit log)."""
    with SessionManager(store) as manager:
        items = manager.checkpoints(session_id, after_seq=after, limit=limit, name=name)
    next_after = items[-1].seq if len(items) == limit else None
    if as_json:
        document = [render.checkpoint_json(cp) for cp in items]
        render.print_json({"checkpoints": document, "next_after": next_after})
        return
    if not items:
        render.out.print("no checkpoints")
        return
    render.out.print(render.checkpoints_table(items))
    if next_after is not None:
        render.out.print(f"more: --after {next_after}")
