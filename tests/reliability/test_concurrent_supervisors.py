"""Several supervisor processes sweeping one store at once never double-apply a timeout."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import STORE_KINDS, make_store_url
from tests.reliability.workers import sweep_process
from tether import ManualClock, Policies, Policy, SessionManager, SystemClock
from tether.stores import open_store

SUPERVISORS = 4
# The bounded form runs by default (CI); the long form only with `-m slow`.
SESSIONS = [40, pytest.param(400, marks=pytest.mark.slow)]
SHARED_STORE_KINDS = [k for k in STORE_KINDS if k != "memory"]


@pytest.mark.parametrize("sessions", SESSIONS)
@pytest.mark.parametrize("kind", SHARED_STORE_KINDS)
def test_supervisor_processes_time_each_session_out_once(kind: str, sessions: int, tmp_path: Path) -> None:
    url = make_store_url(kind, tmp_path)
    past = ManualClock(SystemClock().now() - timedelta(hours=1))
    policies = Policies(Policy(timeout=1, max_recoveries=1))
    with SessionManager(open_store(url, past), policies=policies) as manager:
        ids = {manager.create("tutor", f"user-{i % 7}").session_id for i in range(sessions)}
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(SUPERVISORS)
        pipes = [context.Pipe() for _ in range(SUPERVISORS)]
        processes = [context.Process(target=sweep_process, args=(url, child, barrier)) for _, child in pipes]
        for p in processes:
            p.start()
        results = [parent.recv() for parent, _ in pipes]
        for p in processes:
            p.join(30)
        timed_out = Counter(sid for swept, _ in results for sid in swept)
        assert set(timed_out) == ids and set(timed_out.values()) == {1}
        for sid in ids:
            assert len(manager.checkpoints(sid, name="session_failed")) == 1
