"""Listing sessions: filters, newest first, keyset pagination."""

from __future__ import annotations

import pytest

from tether import ManualClock, Session, SessionManager, State

from .conftest import MakeSession


def _all_pages(manager: SessionManager, limit: int, **filters: object) -> list[list[Session]]:
    pages: list[list[Session]] = []
    cursor = None
    while True:
        page = manager.list(limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        pages.append(list(page))
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def _newest_first(sessions: list[Session]) -> list[str]:
    return [s.session_id for s in sorted(sessions, key=lambda s: (s.created_at, s.session_id), reverse=True)]


def test_empty_store_lists_nothing(manager: SessionManager) -> None:
    page = manager.list()
    assert (list(page), page.next_cursor) == ([], None)


def test_list_is_newest_first(manager: SessionManager, clock: ManualClock) -> None:
    ids = []
    for _ in range(5):
        clock.advance(1)
        ids.append(manager.create("tutor", "user-1").session_id)
    assert [s.session_id for s in manager.list()] == ids[::-1]


def test_sessions_created_at_the_same_instant_are_ordered_by_id(
    manager: SessionManager, clock: ManualClock
) -> None:
    # The clock stands still, so all four are created at the same instant.
    for sid in ["b", "d", "a", "c"]:
        manager.create("tutor", "user-1", session_id=sid)
    assert [s.session_id for s in manager.list()] == ["d", "c", "b", "a"]


def test_list_returns_current_sessions(manager: SessionManager, in_state: MakeSession) -> None:
    session = in_state(State.PAUSED)
    assert list(manager.list()) == [manager.get(session.session_id)]


def test_list_filters_by_user_agent_type_state_and_parent(
    manager: SessionManager, in_state: MakeSession
) -> None:
    parent = manager.create("orchestrator", "alice").session_id
    a = in_state(State.ACTIVE, "tutor", user_id="alice", parent_session_id=parent).session_id
    b = in_state(State.PAUSED, "grader", user_id="alice", parent_session_id=parent).session_id
    c = in_state(State.COMPLETED, "tutor", user_id="bob").session_id
    d = in_state(State.FAILED, "grader", user_id="bob", parent_session_id=parent).session_id

    def ids(**filters: object) -> set[str]:
        return {s.session_id for s in manager.list(**filters)}  # type: ignore[arg-type]

    assert ids(user_id="alice") == {parent, a, b}
    assert ids(user_id="bob") == {c, d}
    assert ids(agent_type="tutor") == {a, c}
    assert ids(state=State.PAUSED) == {b}
    assert ids(state="failed") == {d}
    assert ids(state="active") == {parent, a}
    assert ids(parent_session_id=parent) == {a, b, d}
    assert ids(user_id="alice", agent_type="grader") == {b}
    assert ids(user_id="bob", agent_type="grader", state="failed", parent_session_id=parent) == {d}
    assert ids(user_id="carol") == set()
    assert ids(parent_session_id=a) == set()


@pytest.mark.parametrize("limit", [1, 7, 10, 57, 100])
def test_pagination_visits_every_session_once_newest_first(
    manager: SessionManager, clock: ManualClock, limit: int
) -> None:
    created = []
    for n in range(57):
        if n % 3 == 0:  # some sessions share a created_at: the id breaks the tie
            clock.advance(0.5)
        created.append(manager.create("tutor", f"user-{n % 4}"))
    pages = _all_pages(manager, limit)
    listed = [s.session_id for page in pages for s in page]
    assert listed == _newest_first(created)
    assert all(len(page) == limit for page in pages[:-1])
    assert len(pages) == -(-57 // limit)


def test_pagination_with_a_filter(manager: SessionManager, clock: ManualClock) -> None:
    created = []
    for n in range(40):
        clock.advance(0.25)
        created.append(manager.create("tutor", f"user-{n % 3}"))
    mine = [s for s in created if s.user_id == "user-1"]
    pages = _all_pages(manager, 4, user_id="user-1")
    assert [s.session_id for page in pages for s in page] == _newest_first(mine)


def test_a_full_last_page_has_no_next_cursor(manager: SessionManager) -> None:
    for _ in range(10):
        manager.create("tutor", "user-1")
    first = manager.list(limit=5)
    assert first.next_cursor is not None
    second = manager.list(limit=5, cursor=first.next_cursor)
    assert (len(second), second.next_cursor) == (5, None)


def test_sessions_created_while_paging_do_not_repeat_or_shift_pages(
    manager: SessionManager, clock: ManualClock
) -> None:
    created = []
    for _ in range(12):
        clock.advance(1)
        created.append(manager.create("tutor", "user-1"))
    first = manager.list(limit=5)
    clock.advance(1)
    manager.create("tutor", "user-1")  # newer than everything: belongs before page one
    rest = _all_pages_from(manager, 5, first.next_cursor)
    listed = [s.session_id for s in first] + rest
    assert listed == _newest_first(created)


def _all_pages_from(manager: SessionManager, limit: int, cursor: str | None) -> list[str]:
    out: list[str] = []
    while cursor is not None:
        page = manager.list(limit=limit, cursor=cursor)
        out.extend(s.session_id for s in page)
        cursor = page.next_cursor
    return out


def test_a_deleted_session_does_not_break_the_cursor(manager: SessionManager, clock: ManualClock) -> None:
    created = []
    for _ in range(6):
        clock.advance(1)
        created.append(manager.create("tutor", "user-1"))
    first = manager.list(limit=3)
    manager.delete(first.items[-1].session_id)  # the row the cursor points at
    rest = _all_pages_from(manager, 3, first.next_cursor)
    assert rest == _newest_first(created)[3:]


def test_filters_match_exactly_case_unicode_and_wildcards_included(manager: SessionManager) -> None:
    for user in ["alice", "Alice", "al%", "al_ce", "ålice", "用户"]:
        manager.create("tutor", user)
    for user in ["alice", "Alice", "al%", "al_ce", "ålice", "用户"]:
        assert [s.user_id for s in manager.list(user_id=user)] == [user]
    assert len(manager.list(user_id="ALICE")) == 0
    assert len(manager.list(user_id="al")) == 0
    assert len(manager.list(agent_type="TUTOR")) == 0
