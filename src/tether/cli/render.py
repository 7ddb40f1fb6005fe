"""What the commands print: Rich tables for people, JSON documents for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tether.core.model import LIVE_STATES, Checkpoint, Failure, Liveness, Session, State


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False, markup=False)  # user data is never markup
    if not console.is_terminal:  # pipes, files and test runners get whole rows, never an 80-column cut
        console.width = 4096
    return console


out = _console(stderr=False)
err = _console(stderr=True)

STATE_STYLES = {
    State.ACTIVE: "green",
    State.PAUSED: "yellow",
    State.COMPLETED: "blue",
    State.FAILED: "red",
}
LIVENESS_STYLES = {Liveness.HEALTHY: "green", Liveness.SUSPECT: "yellow", Liveness.DEAD: "bold red"}
MAX_DATA_CHARS = 120  # checkpoint data in a table cell; --json prints it whole


# -- JSON --------------------------------------------------------------------------------------
def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=_plain) + "\n")


def session_json(session: Session, now: datetime) -> dict[str, Any]:
    """Every field of the session, plus what is derived from it at `now`."""
    document = {f.name: _plain(getattr(session, f.name)) for f in fields(session)}
    liveness = session.liveness(now)
    document["liveness"] = liveness.value if liveness is not None else None
    document["checkpoint_count"] = session.checkpoint_count
    document["duration_seconds"] = session.duration(now).total_seconds()
    return document


def checkpoint_json(cp: Checkpoint) -> dict[str, Any]:
    return {f.name: _plain(getattr(cp, f.name)) for f in fields(cp)}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Failure):
        return asdict(value)
    return value


# -- tables ------------------------------------------------------------------------------------
def sessions_table(sessions: Iterable[Session], now: datetime) -> Text:
    """One row per session: what `tether ls` prints and `tether watch` redraws."""
    rows: list[list[str | Text]] = [
        [
            s.session_id,
            s.agent_type,
            s.user_id,
            state_text(s.state),
            liveness_text(s.liveness(now)),
            heartbeat_age(s, now),
            s.phase or "-",
            str(s.checkpoint_count),
            f"{s.epoch}/{s.owner or '-'}",
        ]
        for s in sessions
    ]
    return columns(SESSION_COLUMNS, rows)


SESSION_COLUMNS = (
    ("id", "left"),
    ("type", "left"),
    ("user", "left"),
    ("state", "left"),
    ("liveness", "left"),
    ("heartbeat", "right"),
    ("phase", "left"),
    ("checkpoints", "right"),
    ("epoch/owner", "left"),
)


def columns(header: Sequence[tuple[str, str]], rows: Sequence[Sequence[str | Text]]) -> Text:
    """Rows aligned in columns as one Text, lines never wrapped. A Rich Table lays out and renders
    every cell on its own, which takes seconds for the 10,000 rows `tether ls` may print."""
    widths = [
        max([cell_len(name), *(cell_len(str(row[i])) for row in rows)]) for i, (name, _) in enumerate(header)
    ]
    text = Text(no_wrap=True, overflow="crop", end="")
    lines: list[Sequence[str | Text]] = [[Text(name, style="bold") for name, _ in header], *rows]
    for n, line in enumerate(lines):
        if n:
            text.append("\n")
        for i, (cell, width, (_, justify)) in enumerate(zip(line, widths, header, strict=True)):
            gap = " " * (width - cell_len(str(cell)))
            last = i == len(widths) - 1
            text.append(gap if justify == "right" else "")
            text.append(cell)
            text.append("" if justify == "right" or last else gap)
            text.append("" if last else "  ")
    return text


def session_table(session: Session, now: datetime) -> Table:
    """One session, field by field."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("id", session.session_id),
        ("type", session.agent_type),
        ("user", session.user_id),
        ("parent", session.parent_session_id or "-"),
        ("state", state_text(session.state)),
        ("state since", timestamp(session.state_since)),
        ("liveness", liveness_text(session.liveness(now))),
        ("phase", session.phase or "-"),
        ("owner", session.owner or "-"),
        ("epoch", str(session.epoch)),
        ("version", str(session.version)),
        ("recoveries", str(session.recoveries)),
        ("created", timestamp(session.created_at)),
        ("last heartbeat", f"{timestamp(session.last_heartbeat)} ({age(now - session.last_heartbeat)} ago)"),
        ("suspect at", timestamp(session.suspect_at)),
        ("lease expires", timestamp(session.lease_expires_at)),
        ("timeouts", f"suspect after {session.suspect_after:g}s, lease {session.heartbeat_timeout:g}s"),
        ("ended", timestamp(session.ended_at)),
        ("duration", age(session.duration(now))),
        ("failure", _failure(session.failure)),
        ("checkpoints", str(session.checkpoint_count)),
        ("context", compact(session.context)),
        ("metadata", compact(session.metadata)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def checkpoints_table(checkpoints: Iterable[Checkpoint]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("seq", justify="right")
    table.add_column("name")
    table.add_column("timestamp", no_wrap=True)
    table.add_column("data", overflow="fold")
    for cp in checkpoints:
        table.add_row(str(cp.seq), cp.name, timestamp(cp.timestamp), compact(cp.data, MAX_DATA_CHARS))
    return table


# -- cells -------------------------------------------------------------------------------------
def state_text(state: State) -> Text:
    return Text(state.value, style=STATE_STYLES[state])


def liveness_text(liveness: Liveness | None) -> Text:
    if liveness is None:
        return Text("-")
    return Text(liveness.value, style=LIVENESS_STYLES[liveness])


def timestamp(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(timespec="milliseconds")


def heartbeat_age(session: Session, now: datetime) -> str:
    """Silence since the last heartbeat of a live session, to a tenth of a second under a minute
    (a lease is a few seconds); "-" once the session has ended."""
    if session.state not in LIVE_STATES:
        return "-"
    silence = now - session.last_heartbeat
    seconds = silence.total_seconds()
    return f"{max(seconds, 0.0):.1f}s" if seconds < 60 else age(silence)


def age(delta: timedelta) -> str:
    """A duration in its largest sensible unit: 42s, 5m, 3h12m, 4d."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86_400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86_400}d"


def how_many(n: int) -> str:
    return f"{n} session" if n == 1 else f"{n} sessions"


def compact(data: Any, limit: int | None = None) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _failure(failure: Failure | None) -> str:
    if failure is None:
        return "-"
    final = "final" if failure.final else "recoverable"
    return f"{failure.error} ({final}) {compact(failure.details)}"
