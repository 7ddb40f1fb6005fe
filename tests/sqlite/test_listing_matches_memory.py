"""Every listing path of the SQLite store (one query per driving index) returns exactly what the
reference memory store returns, page by page, for the same sessions and the same filters."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from tether import ManualClock, SessionManager, State
from tether.core.model import SessionFilter
from tether.stores import Store, open_store

USERS = ["ann", "bob", "cy"]
TYPES = ["tutor", "grader", "judge"]


def populate(manager: SessionManager, clock: ManualClock, seed: int) -> None:
    rng = random.Random(seed)
    parents: list[str] = []
    for i in range(45):
        clock.advance(rng.choice([0, 1, 7]))  # equal created_at values exercise the session_id tie-break
        parent = rng.choice(parents) if parents and rng.random() < 0.3 else None
        session = manager.create(
            rng.choice(TYPES), rng.choice(USERS), session_id=f"s{i:02d}", parent_session_id=parent
        )
        parents.append(session.session_id)
        action = rng.choice(["keep", "beat", "pause", "complete", "fail"])
        if action == "beat":
            manager.heartbeat(session.session_id, expect_silence=rng.choice([1, 100]))
        elif action == "pause":
            manager.pause(session.session_id)
        elif action == "complete":
            manager.complete(session.session_id)
        elif action == "fail":
            manager.fail(session.session_id, "boom", final=rng.random() < 0.5)


def every_page(store: Store, where: SessionFilter) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = store.query(where, 7, cursor)
        ids += [s.session_id for s in page]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


@pytest.fixture
def stores(tmp_path: Path) -> tuple[Store, Store, ManualClock]:
    clock = ManualClock()
    memory, sqlite = open_store("memory://", clock), open_store(f"sqlite:///{tmp_path}/t.db", clock)
    for store in (memory, sqlite):
        start = clock.now()
        populate(SessionManager(store, worker_id="w"), clock, seed=7)
        clock.set(start)
    clock.advance(3600)
    return memory, sqlite, clock


def filters(clock: ManualClock) -> list[SessionFilter]:
    soon, later = clock.now() - timedelta(seconds=3500), clock.now()
    return [
        SessionFilter(),
        SessionFilter(user_id="bob"),
        SessionFilter(agent_type="grader", state=State.ACTIVE),
        SessionFilter(agent_types=frozenset({"tutor", "judge"}), user_id="ann"),
        SessionFilter(state=State.FAILED),
        SessionFilter(parent_session_id="s00"),
        SessionFilter(lease_expired_at=later),
        SessionFilter(lease_expired_at=soon, user_id="cy"),
        SessionFilter(suspect_at_or_before=soon),
        SessionFilter(heartbeat_before=later),
        SessionFilter(paused_before=later, agent_type="tutor"),
        SessionFilter(user_id="nobody"),
    ]


def test_every_listing_path_matches_the_reference(stores: tuple[Store, Store, ManualClock]) -> None:
    memory, sqlite, clock = stores
    for where in filters(clock):
        expected = every_page(memory, where)
        assert expected or where.user_id == "nobody", f"{where} selects nothing: the test would prove nothing"
        assert every_page(sqlite, where) == expected, where
    sqlite.close()


def test_claimable_matches_the_reference(stores: tuple[Store, Store, ManualClock]) -> None:
    memory, sqlite, _ = stores
    for types in (None, frozenset({"tutor"})):
        expected = [s.session_id for s in memory.claimable(types, 100)]
        assert [s.session_id for s in sqlite.claimable(types, 100)] == expected
        assert expected  # the population has claimable sessions, or this test proves nothing
    sqlite.close()
