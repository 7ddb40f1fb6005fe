"""`tether ls --limit 10000` as a table: what printing the rows costs. Not a test: run
`python bench/bench_cli_ls.py`.

Contenders, alternating, median of several rounds, on the same 10,000 sessions:
- `columns`: what `tether ls` prints now (`render.sessions_table`, aligned text);
- `rich.Table`: the same rows as a Rich Table, as `tether ls` printed them before (the baseline);
- `--json`: the rows as `tether ls --json` prints them (the other baseline).
Each renders into a Console writing to memory, as wide as a pipe (4,096) and as a terminal (120).
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rich.console import Console
from rich.table import Table

from tether import ManualClock, SessionManager
from tether.cli import render
from tether.core.model import Session

ROWS = 10_000
ROUNDS = 5


def sessions() -> tuple[list[Session], ManualClock]:
    clock = ManualClock()
    manager = SessionManager("memory://", clock=clock, worker_id="bench-host:4242:abcdef")
    made = [manager.create("tutor", f"user-{i % 50}") for i in range(ROWS)]
    clock.advance(3)
    return made, clock


def rich_table(rows: Sequence[Session], console: Console, clock: ManualClock) -> None:
    now = clock.now()
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name, justify in render.SESSION_COLUMNS:
        table.add_column(name, justify="right" if justify == "right" else "left", no_wrap=name == "id")
    for s in rows:
        table.add_row(
            s.session_id,
            s.agent_type,
            s.user_id,
            render.state_text(s.state),
            render.liveness_text(s.liveness(now)),
            render.heartbeat_age(s, now),
            s.phase or "-",
            str(s.checkpoint_count),
            f"{s.epoch}/{s.owner or '-'}",
        )
    console.print(table)


def columns(rows: Sequence[Session], console: Console, clock: ManualClock) -> None:
    console.print(render.sessions_table(rows, clock.now()))


def as_json(rows: Sequence[Session], console: Console, clock: ManualClock) -> None:
    now = clock.now()
    console.file.write(json.dumps({"sessions": [render.session_json(s, now) for s in rows]}, indent=2))


Contender = Callable[[Sequence[Session], Console, ManualClock], None]


def main() -> None:
    rows, clock = sessions()
    contenders: dict[str, Contender] = {"columns": columns, "rich.Table": rich_table, "--json": as_json}
    for width in (4096, 120):
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(ROUNDS):
            for name, render_rows in contenders.items():
                console = Console(file=io.StringIO(), width=width, highlight=False, markup=False)
                started = time.perf_counter()
                render_rows(rows, console, clock)
                times[name].append(time.perf_counter() - started)
        medians = {name: statistics.median(t) for name, t in times.items()}
        for name, median in medians.items():
            ratio = median / medians["columns"]
            print(f"width {width:>5}  {name:<11} {median:7.2f} s  {ratio:5.1f}x the time of columns")


if __name__ == "__main__":
    main()
