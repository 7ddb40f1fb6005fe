"""Append-only checkpoints: seq 1..n per session, exact data, paged history, last look-ups."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tether import Checkpoint, InvalidTransition, ManualClock, NotFound, SessionManager, ValidationError
from tether.core.model import NewCheckpoint
from tether.flows.operations import Operations
from tether.flows.runner import Flow, run
from tether.stores import POSTGRES_SCHEMES, Store, open_async_store
from tether.stores.threaded import threaded

from .conftest import ALL_CHECKPOINTS, MakeSession


def test_append_numbers_checkpoints_one_to_n(manager: SessionManager, clock: ManualClock) -> None:
    sid = manager.create("tutor", "user-1").session_id
    appended = []
    for n in range(1, 6):
        clock.advance(1)
        appended.append(manager.checkpoint(sid, f"step-{n}", {"n": n}))
    assert [cp.seq for cp in appended] == [1, 2, 3, 4, 5]
    assert appended[2] == Checkpoint(sid, 3, "step-3", clock.now() - timedelta(seconds=2), {"n": 3})
    assert manager.checkpoints(sid) == appended
    assert manager.get(sid).last_seq == manager.get(sid).checkpoint_count == 5


def test_checkpoint_without_data_stores_an_empty_object(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    assert manager.checkpoint(sid, "started").data == {}
    assert manager.checkpoints(sid)[0].data == {}


def test_each_session_has_its_own_sequence(manager: SessionManager) -> None:
    a = manager.create("tutor", "user-1").session_id
    b = manager.create("tutor", "user-1").session_id
    manager.checkpoint(a, "x")
    manager.checkpoint(a, "x")
    assert manager.checkpoint(b, "x").seq == 1
    assert manager.checkpoint(a, "x").seq == 3


def test_appending_does_not_bump_the_version(manager: SessionManager) -> None:
    session = manager.create("tutor", "user-1")
    manager.checkpoint(session.session_id, "step")
    after = manager.get(session.session_id)
    assert after.version == session.version
    assert after.last_seq == 1


def test_appending_leaves_earlier_checkpoints_untouched(manager: SessionManager, clock: ManualClock) -> None:
    sid = manager.create("tutor", "user-1").session_id
    first = [manager.checkpoint(sid, "step", {"n": n}) for n in range(3)]
    clock.advance(5)
    manager.checkpoint(sid, "step", {"n": 99})
    manager.pause(sid)
    manager.resume(sid)
    assert manager.checkpoints(sid, limit=3) == first


SAMPLES: dict[str, dict[str, Any]] = {
    "nested": {"a": {"b": {"c": [1, [2, [3, {"d": None}]]]}}, "empty": {"list": [], "dict": {}}},
    "scalars": {"t": True, "f": False, "n": None, "i": -17, "big": 2**53 + 1, "f1": 0.1, "f2": -1.5e-300},
    "unicode": {"text": "naïve café 日本語 🚀 \u0000 \u2028", "ключ": "значение", "emoji 🔑": "✓"},
    "escapes": {
        "quote": '"',
        "backslash": "\\",
        "newline": "a\nb",
        "tab": "\t",
        "sql": "'; DROP TABLE x; --",
    },
    "many keys": {f"key-{i}": i for i in range(200)},
}


@pytest.mark.parametrize("data", SAMPLES.values(), ids=SAMPLES.keys())
def test_data_round_trips_exactly(manager: SessionManager, data: dict[str, Any]) -> None:
    sid = manager.create("tutor", "user-1", context=data, metadata=data).session_id
    manager.checkpoint(sid, "payload", data)
    assert manager.last_checkpoint(sid) is not None
    assert manager.last_checkpoint(sid).data == data  # type: ignore[union-attr]
    assert manager.checkpoints(sid)[0].data == data
    assert (manager.get(sid).context, manager.get(sid).metadata) == (data, data)


def test_stored_data_is_a_copy_of_the_caller_s_dict(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    data: dict[str, Any] = {"items": [1]}
    returned = manager.checkpoint(sid, "step", data)
    data["items"].append(2)
    returned.data["items"].append(3)
    assert manager.checkpoints(sid)[0].data == {"items": [1]}
    fetched = manager.checkpoints(sid)[0]
    fetched.data["items"].append(4)
    assert manager.last_checkpoint(sid).data == {"items": [1]}  # type: ignore[union-attr]


def test_last_checkpoint_of_a_session_without_checkpoints_is_none(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    assert manager.last_checkpoint(sid) is None
    assert manager.last_checkpoint(sid, "anything") is None
    assert manager.checkpoints(sid) == []


def test_last_checkpoint_is_the_newest_and_by_name_the_newest_of_that_name(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    for n, name in enumerate(["plan", "step", "plan", "step", "step", "review"], start=1):
        manager.checkpoint(sid, name, {"n": n})
    last = manager.last_checkpoint(sid)
    assert last is not None and (last.seq, last.name) == (6, "review")
    plan = manager.last_checkpoint(sid, "plan")
    assert plan is not None and (plan.seq, plan.data) == (3, {"n": 3})
    step = manager.last_checkpoint(sid, "step")
    assert step is not None and step.seq == 5
    assert manager.last_checkpoint(sid, "never") is None


def test_last_checkpoint_includes_lifecycle_checkpoints(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    manager.checkpoint(sid, "step")
    manager.pause(sid)
    last = manager.last_checkpoint(sid)
    assert last is not None and (last.seq, last.name) == (2, "session_paused")


def test_history_pages_by_after_seq_without_gaps(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    for n in range(1, 26):
        manager.checkpoint(sid, "step", {"n": n})
    seen: list[int] = []
    after = 0
    while page := manager.checkpoints(sid, after_seq=after, limit=7):
        assert len(page) <= 7
        seen.extend(cp.seq for cp in page)
        after = page[-1].seq
    assert seen == list(range(1, 26))
    assert [cp.seq for cp in manager.checkpoints(sid, after_seq=20)] == [21, 22, 23, 24, 25]
    assert manager.checkpoints(sid, after_seq=25) == []
    assert manager.checkpoints(sid, after_seq=1000) == []


def test_history_filters_by_name_with_paging(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    for n in range(1, 21):
        manager.checkpoint(sid, "even" if n % 2 == 0 else "odd", {"n": n})
    evens = manager.checkpoints(sid, name="even", limit=3)
    assert [cp.seq for cp in evens] == [2, 4, 6]
    assert [cp.seq for cp in manager.checkpoints(sid, name="even", after_seq=6, limit=3)] == [8, 10, 12]
    assert [cp.seq for cp in manager.checkpoints(sid, name="odd", after_seq=15)] == [17, 19]
    assert manager.checkpoints(sid, name="none") == []


@pytest.mark.parametrize("state", ["paused", "completed", "failed"])
def test_checkpoints_are_refused_unless_active(
    manager: SessionManager, in_state: MakeSession, state: str
) -> None:
    session = in_state(state)
    with pytest.raises(InvalidTransition) as caught:
        manager.checkpoint(session.session_id, "late", {"x": 1})
    assert (caught.value.session_id, caught.value.state, caught.value.action) == (
        session.session_id,
        state,
        "checkpoint",
    )
    assert manager.get(session.session_id) == session
    assert manager.get(session.session_id).last_seq == len(
        manager.checkpoints(session.session_id, limit=ALL_CHECKPOINTS)
    )


def test_many_appends_stay_contiguous(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    for n in range(300):
        manager.checkpoint(sid, f"n{n % 7}", {"n": n})
    history = manager.checkpoints(sid, limit=ALL_CHECKPOINTS)
    assert [cp.seq for cp in history] == list(range(1, 301))
    assert [cp.data["n"] for cp in history] == list(range(300))
    last_n3 = manager.last_checkpoint(sid, "n3")
    assert last_n3 is not None and last_n3.data == {"n": 297}


def test_concurrent_appenders_never_share_or_skip_a_seq(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            for n in range(25):
                manager.checkpoint(sid, "step", {"worker": worker, "n": n})
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    history = manager.checkpoints(sid, limit=ALL_CHECKPOINTS)
    assert [cp.seq for cp in history] == list(range(1, 201))
    for worker in range(8):
        assert [cp.data["n"] for cp in history if cp.data["worker"] == worker] == list(range(25))


def test_store_create_numbers_imported_checkpoints(store: Store, manager: SessionManager) -> None:
    template = manager.create("tutor", "user-1")
    manager.delete(template.session_id)
    new = [NewCheckpoint(f"c{n}", template.created_at, f'{{"n":{n}}}', {"n": n}) for n in range(1, 4)]
    created = store.create(template, new)
    assert created.last_seq == 3
    assert [(cp.seq, cp.name, cp.data) for cp in store.checkpoints(template.session_id)] == [
        (1, "c1", {"n": 1}),
        (2, "c2", {"n": 2}),
        (3, "c3", {"n": 3}),
    ]


def test_history_of_an_unknown_session_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.checkpoints("missing")
    with pytest.raises(NotFound):
        store.last_checkpoint("missing", "step")


def test_integers_beyond_64_bits_round_trip_exactly(manager: SessionManager) -> None:
    data = {"u64_max": 2**64 - 1, "past_u64": 2**64, "huge": 2**70, "below_i64": -(2**63) - 1}
    sid = manager.create("tutor", "user-1", context=data).session_id
    manager.checkpoint(sid, "wide", data)
    stored = manager.checkpoints(sid)[0].data
    assert stored == data
    assert all(type(value) is int for value in stored.values())
    assert manager.get(sid).context == data


def test_object_key_order_is_kept(manager: SessionManager) -> None:
    data = {"zeta": 1, "alpha": {"b": 2, "aa": 3, "c": [{"y": 1, "x": 2}]}, "mid": None}
    sid = manager.create("tutor", "user-1", context=data, metadata=data).session_id
    manager.checkpoint(sid, "ordered", data)
    for stored in (manager.checkpoints(sid)[0].data, manager.get(sid).context, manager.get(sid).metadata):
        assert json.dumps(stored) == json.dumps(data)


def test_object_key_order_is_kept_in_nested_objects_and_non_ascii_keys(manager: SessionManager) -> None:
    # jsonb orders keys by UTF-8 length, then bytes: "é" (2 bytes) after "zz"; "b" before "aa".
    data = {
        "é": 1,
        "zz": 2,
        "b": [{"aa": 1, "b": {"é": [], "a": {}}}, {"b": 1, "aa": 2}],
        "": {"y": 1, "x": 2},
    }
    sid = manager.create("tutor", "user-1", context=data).session_id
    manager.checkpoint(sid, "ordered", data)
    for stored in (
        manager.checkpoints(sid)[0].data,
        manager.last_checkpoint(sid).data,
        manager.get(sid).context,
    ):
        assert json.dumps(stored) == json.dumps(data)


def test_floats_keep_their_type_and_sign(manager: SessionManager) -> None:
    data = {"big": 1e16, "huge": -1.5e300, "negative_zero": -0.0, "tiny": 5e-324, "small": 1e-7, "whole": 2.0}
    sid = manager.create("tutor", "user-1", metadata=data).session_id
    manager.checkpoint(sid, "numbers", data)
    for stored in (manager.checkpoints(sid)[0].data, manager.get(sid).metadata):
        assert json.dumps(stored) == json.dumps(data)
        assert all(type(value) is float for value in stored.values())


def test_names_match_exactly_case_unicode_and_wildcards_included(manager: SessionManager) -> None:
    sid = manager.create("tutor", "user-1").session_id
    for name in ["Step", "step", "st%", "st_p", "schritt-ü", "步骤", "🚀"]:
        manager.checkpoint(sid, name, {"name": name})
    for name in ["Step", "step", "st%", "st_p", "schritt-ü", "步骤", "🚀"]:
        last = manager.last_checkpoint(sid, name)
        assert last is not None and last.data == {"name": name}
        assert [cp.data["name"] for cp in manager.checkpoints(sid, name=name)] == [name]
    assert manager.last_checkpoint(sid, "STEP") is None
    assert manager.last_checkpoint(sid, "st") is None
    assert manager.last_checkpoint(sid, "schritt-u") is None


# -- the adapters' newest-first reads, below the manager: the sync store and its async face -----
def _both_faces(store_url: str, store: Store, clock: ManualClock, read: Callable[[Any], Any]) -> Any:
    """`read(face)` on the sync store, and awaited on its async face (native for PostgreSQL, the
    thread adapter otherwise); both must give the same answer, which is returned."""

    async def on_the_async_face() -> Any:
        native = store_url.split(":", 1)[0] in POSTGRES_SCHEMES
        face = await open_async_store(store_url, clock) if native else threaded(store)
        try:
            answer = read(face)
            return await answer if inspect.isawaitable(answer) else answer
        finally:
            if native:
                await face.close()

    sync = read(store)
    assert asyncio.run(on_the_async_face()) == sync
    return sync


def _logged(store: Store, names: list[str]) -> str:
    """A session whose checkpoints 1..n carry these names and {"n": seq}."""
    manager = SessionManager(store, worker_id="worker-a")
    sid = manager.create("tutor", "user-1").session_id
    for n, name in enumerate(names, start=1):
        manager.checkpoint(sid, name, {"n": n})
    return sid


def test_newest_checkpoints_page_back_from_the_end_without_gaps(
    store_url: str, store: Store, clock: ManualClock
) -> None:
    sid = _logged(store, ["step"] * 25)

    def seqs(limit: int, before: int | None = None) -> list[int]:
        page = _both_faces(store_url, store, clock, lambda face: face.newest_checkpoints(sid, limit, before))
        assert all(cp.data == {"n": cp.seq} and cp.session_id == sid for cp in page)
        return [cp.seq for cp in page]

    assert seqs(7) == [25, 24, 23, 22, 21, 20, 19]
    assert seqs(7, 19) == [18, 17, 16, 15, 14, 13, 12]
    assert seqs(100, 4) == [3, 2, 1]
    assert seqs(3, 1) == []
    assert seqs(ALL_CHECKPOINTS) == list(range(25, 0, -1))
    assert seqs(2, 1000) == [25, 24]


def test_last_checkpoint_of_several_names_is_whichever_came_last(
    store_url: str, store: Store, clock: ManualClock
) -> None:
    sid = _logged(store, ["plan", "step", "plan", "step", "step", "review"])

    def last(*names: str) -> tuple[int, str, Any] | None:
        found = _both_faces(store_url, store, clock, lambda face: face.last_checkpoint_of(sid, list(names)))
        return None if found is None else (found.seq, found.name, found.data)

    assert last("plan", "review") == (6, "review", {"n": 6})
    assert last("plan", "step") == (5, "step", {"n": 5})
    assert last("never", "plan") == last("plan") == (3, "plan", {"n": 3})
    assert last("step", "step") == (5, "step", {"n": 5})
    assert last("never", "other") is None


def test_newest_reads_of_a_session_without_checkpoints_find_nothing(store: Store) -> None:
    sid = _logged(store, [])
    assert store.newest_checkpoints(sid, 5) == []
    assert store.last_checkpoint_of(sid, ["step", "plan"]) is None


def test_newest_reads_of_an_unknown_session_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.newest_checkpoints("missing", 5)
    with pytest.raises(NotFound):
        store.last_checkpoint_of("missing", ["step", "plan"])


@pytest.mark.parametrize(
    ("read", "field"),
    [
        (lambda ops: ops.last_checkpoint_of("s", []), "names"),
        (lambda ops: ops.last_checkpoint_of("s", "step"), "names"),
        (lambda ops: ops.last_checkpoint_of("s", ["step", " padded"]), "names"),
        (lambda ops: ops.newest_checkpoints("s", 0), "limit"),
        (lambda ops: ops.newest_checkpoints("s", 5, 0), "before_seq"),
    ],
)
def test_newest_reads_refuse_bad_arguments_before_the_store(
    store: Store, read: Callable[[Operations], Flow[Any]], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        run(read(SessionManager(store).ops), store)
    assert caught.value.field == field
