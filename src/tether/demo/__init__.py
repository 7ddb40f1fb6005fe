"""`tether demo`: a fleet of real worker processes, killed at random, losing nothing.

run_demo(DemoOptions(sessions=10, workers=4)) -> Report
"""

from __future__ import annotations

from collections.abc import Callable

from tether.demo.fleet import DemoOptions, Fleet, FleetState
from tether.demo.report import Report
from tether.demo.worker import demo_policies
from tether.front.manager import SessionManager

__all__ = ["DemoOptions", "FleetState", "Report", "run_demo"]


def run_demo(options: DemoOptions, on_tick: Callable[[FleetState], None] = lambda state: None) -> Report:
    """Run the fleet to the end (or the deadline) and return the verified report."""
    with SessionManager(
        options.store_url,
        policies=demo_policies(options.timeout),
        worker_id="demo-supervisor",
        redis_url=options.redis_url,
    ) as manager:
        return Fleet(options, manager).run(on_tick)
