"""`tether demo`: the showcase. Real worker processes, random SIGKILLs, nothing acknowledged lost."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live

from tether.cli import render
from tether.cli.options import JsonOption
from tether.core.errors import ConfigurationError
from tether.demo import DemoOptions, FleetState, Report, run_demo
from tether.demo.view import live_view, report_table

commands = typer.Typer()

DEFAULT_FILE = Path("tether-demo.db")
REFRESH_EVERY = 0.25


@commands.command("demo")
def demo(
    sessions: Annotated[
        int, typer.Option(min=1, max=2000, help="Sessions to run (orchestrators add children).")
    ] = 40,
    workers: Annotated[int, typer.Option(min=2, max=64, help="Worker processes in the fleet.")] = 6,
    kill_rate: Annotated[
        float, typer.Option(min=0.0, help="Disruptions per second: SIGKILL, or SIGSTOP for a zombie.")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of every random choice, for a repeatable run.")] = 7,
    timeout: Annotated[float, typer.Option(min=0.2, help="Heartbeat timeout of the agents, seconds.")] = 1.0,
    step: Annotated[float, typer.Option(min=0.0, help="Mean simulated work per agent step, seconds.")] = 0.2,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            show_default=False,
            help="A store every worker process can open \\[default: a fresh sqlite:///tether-demo.db].",
        ),
    ] = None,
    redis: Annotated[
        str | None,
        typer.Option("--redis", metavar="URL", help="Keep leases and heartbeats in this Redis (redis://…)."),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            metavar="URL",
            help="Workers bridge their events over this redis:// or postgresql:// (watch them with "
            "`tether watch --events URL`).",
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Run simulated agents on a fleet of worker processes, crash some, and prove nothing was lost."""
    options = DemoOptions(
        sessions=sessions,
        workers=workers,
        kill_rate=kill_rate,
        seed=seed,
        store_url=store or _fresh_default(),
        redis_url=redis,
        events_url=events,
        timeout=timeout,
        step_seconds=step,
    )
    if options.store_url.startswith("memory:"):
        raise ConfigurationError(
            "the demo's workers are separate processes: use a sqlite or postgresql store"
        )
    if json:
        report = run_demo(options)
        render.print_json(report.as_dict())
    else:
        report = _run_live(options)
        render.out.print(report_table(report))
        render.out.print(f"look around: tether ls --store {options.store_url}")
    if not report.ok:
        raise typer.Exit(1)


def _run_live(options: DemoOptions) -> Report:
    shown = [0.0]
    with Live(console=render.out, refresh_per_second=8, transient=True) as live:

        def tick(state: FleetState) -> None:
            now = time.monotonic()
            if now - shown[0] >= REFRESH_EVERY:
                shown[0] = now
                live.update(live_view(state))

        return run_demo(options, tick)


def _fresh_default() -> str:
    """The default demo database starts empty on every run; a store named with --store is kept."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        DEFAULT_FILE.with_name(DEFAULT_FILE.name + suffix).unlink(missing_ok=True)
    return f"sqlite:///{DEFAULT_FILE}"
