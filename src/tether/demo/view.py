"""What `tether demo` shows: a live view while the fleet runs, and the final report."""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tether.demo.fleet import FleetState
from tether.demo.report import Report


def live_view(state: FleetState) -> RenderableType:
    """Counters, the workers and the latest happenings."""
    ledger = state.ledger
    elapsed = time.monotonic() - state.started_at
    counters = Text.assemble(
        (f"{elapsed:5.1f}s   ", "bold"),
        (f"{len(state.ended)}/{state.known}", "bold"),
        " sessions done   ",
        (str(len(ledger.acks)), "bold"),
        " checkpoints   ",
        (str(ledger.crashes), "bold red"),
        " crashes   ",
        (str(ledger.freezes), "bold yellow"),
        " freezes   ",
        (str(len(ledger.claims)), "bold green"),
        " takeovers   ",
        (str(sum(ledger.rejected.values())), "bold"),
        " zombie writes rejected",
    )
    workers = Table(box=None, pad_edge=False, header_style="bold dim")
    for column in ("worker", "pid", "status", "session", "last step"):
        workers.add_column(column)
    for w in state.workers.values():
        status = (
            Text("frozen", "yellow")
            if w.frozen_on
            else Text("busy", "green")
            if w.session
            else Text("idle", "dim")
        )
        workers.add_row(w.worker_id, str(w.process.pid), status, w.session or "", w.step if w.session else "")
    happenings = Text("\n".join(state.events) or "…", style="dim")
    return Group(
        Panel(counters, title="tether demo", border_style="cyan"),
        workers,
        Panel(happenings, title="latest", border_style="dim"),
    )


def report_table(report: Report) -> RenderableType:
    """The final report; checkpoints lost is the number that matters."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    latency = report.detection_latency_ms
    rows = [
        ("sessions", f"{report.sessions} ({report.child_sessions} spawned by orchestrators)"),
        ("workers started", str(report.workers_started)),
        ("crashes (SIGKILL)", str(report.crashes)),
        ("freezes (SIGSTOP → zombie)", str(report.freezes)),
        ("detections", _detections(report)),
        ("detection latency p50 / p99", f"{latency['p50']:.0f} ms / {latency['p99']:.0f} ms"),
        ("takeovers", str(report.takeovers)),
        ("completed", f"{report.completed} of {report.sessions}"),
        ("failed / unfinished", f"{report.failed} / {report.unfinished}"),
        ("checkpoints acknowledged", str(report.checkpoints_acknowledged)),
        ("checkpoints lost", _verdict(report.checkpoints_lost)),
        ("takeovers behind the last ack", _verdict(report.resumed_behind_last_ack)),
        ("wrong final results", _verdict(report.wrong_results)),
        ("zombie writes rejected", str(report.zombie_writes_rejected)),
        ("events from the workers (bridged)", str(report.events_received) if report.events_received else "-"),
        ("wall time", f"{report.seconds:.1f} s"),
        ("store", report.store),
        ("leases and heartbeats in", report.leases),
    ]
    for name, value in rows:
        table.add_row(name, Text.from_markup(value))
    border = "green" if report.ok else "red"
    title = "tether demo: nothing acknowledged was lost" if report.ok else "tether demo: FAILED"
    return Panel(table, title=title, border_style=border, expand=False)


def _detections(report: Report) -> str:
    by = ", ".join(f"{n} by {who}" for who, n in sorted(report.detected_by.items()))
    return f"{report.detections} ({by})" if by else str(report.detections)


def _verdict(count: int) -> str:
    return f"[b green]{count}[/]" if count == 0 else f"[b red]{count}[/]"
