"""Property: a fork and its source never see each other's later checkpoints, whatever the
interleaving of appends and forks (forks of forks included), on the memory and SQLite stores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether import SessionManager

# A step: ("append", session index) or ("fork", session index, where in its history, 0..1).
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 7)),
        st.tuples(st.just("fork"), st.integers(0, 7), st.floats(0, 1)),
    ),
    max_size=40,
)


@pytest.fixture(params=["memory", "sqlite"], scope="module")
def manager(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SessionManager]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path_factory.mktemp('fork')}/t.db"
    with SessionManager(url, worker_id="prop") as m:
        yield m


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_forks_and_sources_never_mix(manager: SessionManager, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    sessions = [manager.create("agent", "user").session_id]
    expected: dict[str, list[str]] = {sessions[0]: []}
    for n, step in enumerate(steps):
        sid = sessions[step[1] % len(sessions)]
        if step[0] == "append":
            manager.checkpoint(sid, f"cp-{n}", {"n": n, "in": sid})
            expected[sid].append(f"cp-{n}")
        else:
            at = round(step[2] * len(expected[sid]))
            forked = manager.fork(sid, at).session_id
            sessions.append(forked)
            expected[forked] = expected[sid][:at]
    for sid, names in expected.items():
        history = manager.checkpoints(sid, limit=1000)
        assert [c.name for c in history] == names
        assert [c.seq for c in history] == list(range(1, len(names) + 1))
