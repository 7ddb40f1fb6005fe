"""`tether supervise`: time out dead agents' sessions, once or until interrupted."""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Annotated

import typer

from tether.cli import render
from tether.cli.options import JsonOption, StoreOption
from tether.flows.sweep import SweepReport
from tether.front.manager import SessionManager
from tether.front.supervisor import Supervisor

commands = typer.Typer()


@commands.command("supervise")
def supervise(
    interval: Annotated[
        float | None,
        typer.Option(
            "--interval",
            min=0.01,
            metavar="SECONDS",
            show_default=False,
            help="Seconds between sweeps. \\[default: a quarter of the shortest policy timeout]",
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Sweep once, report, and exit.")] = False,
    redis: Annotated[
        str | None,
        typer.Option(
            "--redis",
            metavar="URL",
            show_default=False,
            help="Read leases from this Redis, where the agents heartbeat. [default: TETHER_REDIS_URL]",
        ),
    ] = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Fail sessions whose lease expired, per their agent type's policy (tether.toml).

    Run one per server, or several: each timeout is applied exactly once. Prints what each sweep
    did (every sweep with --once; otherwise only sweeps that found something).
    """
    with SessionManager(store, redis_url=redis) as manager:
        supervisor = Supervisor(manager)
        if once:
            report(supervisor.sweep(), as_json, always=True)
            return
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
        supervisor.run(threading.Event(), interval, lambda r: report(r, as_json, always=False))


def report(sweep: SweepReport, as_json: bool, *, always: bool) -> None:
    if not (sweep or always):
        return
    if as_json:
        render.print_json(dataclasses.asdict(sweep))
        return
    for session_id in sweep.final:
        render.out.print(f"timed out {session_id} (final)")
    for session_id in sweep.recoverable:
        render.out.print(f"timed out {session_id} (recoverable: claimable by the next worker)")
    for session_id in sweep.suspects:
        render.out.print(f"suspect   {session_id}")
    if always:
        render.out.print(
            f"swept: {len(sweep.timed_out)} timed out ({len(sweep.final)} final, "
            f"{len(sweep.recoverable)} recoverable), {len(sweep.suspects)} newly suspect"
        )
