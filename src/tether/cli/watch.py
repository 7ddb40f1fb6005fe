"""`tether watch`: a live table of sessions, their liveness and heartbeat age.

It polls the store every --interval seconds; with --events URL (the Redis or PostgreSQL the fleet
bridges its events to) it also redraws as soon as something happens anywhere in the fleet.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from tether.cli import render
from tether.cli.options import StoreOption
from tether.core.model import LIVE_STATES, Session, State
from tether.events.bus import bridge
from tether.front.manager import SessionManager

commands = typer.Typer()

MIN_REDRAW = 0.1  # seconds: a burst of events redraws once


@commands.command("watch")
def watch(
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls of the store.")] = 1.0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Newest sessions to show.")] = 30,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's sessions.")] = None,
    agent_type: Annotated[str | None, typer.Option("--type", help="Only this agent type.")] = None,
    state: Annotated[State | None, typer.Option("--state", help="Only sessions in this state.")] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            metavar="URL",
            help="Also redraw on events bridged over this redis:// or postgresql://.",
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Print the table once and exit.")] = False,
    store: StoreOption = None,
) -> None:
    """Watch sessions live: state, liveness (healthy/suspect/dead), heartbeat age, phase, owner."""
    with SessionManager(store) as manager:

        def view() -> RenderableType:
            page = manager.list(user_id=user, agent_type=agent_type, state=state, limit=limit)
            return watch_view(page.items, manager.store.now(), manager.store.url)

        if once:
            render.out.print(view())
            return
        with contextlib.suppress(KeyboardInterrupt):  # the way out of a watch: not an error
            _live(manager, view, interval, events)


def _live(
    manager: SessionManager, view: Callable[[], RenderableType], interval: float, events: str | None
) -> None:
    """Redraw every `interval` seconds, and as soon as an event (local or bridged) arrives."""
    changed = threading.Event()
    with Live(view(), console=render.out, refresh_per_second=4) as live:
        listening = bridge(manager.events, events, manager.store.url) if events else None
        unsubscribe = manager.subscribe(lambda event: changed.set())
        try:
            while True:
                changed.wait(interval)
                changed.clear()
                live.update(view())
                time.sleep(MIN_REDRAW)
        finally:
            unsubscribe()
            if listening is not None:
                listening.close()


def watch_view(sessions: Sequence[Session], now: datetime, store_url: str) -> RenderableType:
    """A summary line over the shown sessions, then live ones first, each newest first."""
    shown = sorted(sessions, key=lambda s: s.state not in LIVE_STATES)  # stable: keeps newest first
    states = Counter(s.state for s in shown)
    liveness = Counter(s.liveness(now) for s in shown if s.state in LIVE_STATES)
    summary = Text.assemble(
        (f"{store_url}  {now.strftime('%H:%M:%S')}  ", "dim"),
        *((f"{states[st]} {st.value}  ", render.STATE_STYLES[st]) for st in State if states[st]),
        *((f"{n} {level.value}  ", render.LIVENESS_STYLES[level]) for level, n in liveness.items() if level),
    )
    return Group(summary, render.sessions_table(shown, now))
