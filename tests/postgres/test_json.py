"""jsonb changes documents (it sorts keys, turns 1e+16 into an integer and -0.0 into 0.0, and
cannot hold NUL); Tether gives back exactly what was written anyway, on every write path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from functools import partial
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings

from tests.conftest import fresh_postgres_url
from tests.postgres.test_group_commit import Batches, eventually, in_threads, row_locked
from tests.unit.test_postgres_jsonb import documents
from tether import ManualClock, SessionManager
from tether.core.postgres_url import PoolSettings
from tether.flows.seed import new_checkpoints
from tether.stores.postgres import PostgresStore

NUL = {"text": "before\u0000after", "nested": [{"k\u0000ey": "\u0000"}], "plain": "\\u0000 is six characters"}
ORDER = {"zeta": 1, "alpha": {"b": 2, "aa": 3, "c": [{"y": 1, "x": 2}]}, "é": None, "mid": {"z": {}}}
NUMBERS = {"big": 1e16, "neg": -0.0, "huge": [-1.5e300], "order": {"b": 5e-324, "a": 2.0}}


def exactly(value: Any) -> str:
    """The document's text: key order, float spelling and sign included."""
    return json.dumps(value)


@pytest.mark.parametrize("document", [NUL, ORDER, NUMBERS], ids=["nul", "key-order", "numbers"])
def test_documents_round_trip_exactly_through_create_append_apply_and_import(
    pg_url: str, document: dict[str, Any]
) -> None:
    with closing(PostgresStore.from_url(pg_url, ManualClock())) as store:
        manager = SessionManager(store, worker_id="w")
        session = manager.create("tutor", "u1", context=document, metadata={"ok": 1})
        manager.checkpoint(session.session_id, "appended", document)
        manager.update(session.session_id, metadata=document)
        manager.fail(session.session_id, "boom", document)  # failure details and its checkpoint via apply
        imported = replace(manager.get(session.session_id), session_id="imported")
        store.create(imported, new_checkpoints(manager.checkpoints(session.session_id)))

        for sid in (session.session_id, "imported"):
            got = manager.get(sid)
            assert exactly(got.context) == exactly(got.metadata) == exactly(document)
            assert got.failure is not None and exactly(got.failure.details) == exactly(document)
            history = manager.checkpoints(sid)
            assert exactly(history[0].data) == exactly(document)
            assert exactly(history[-1].data) == exactly({"error": "boom", "details": document})
            last = manager.last_checkpoint(sid, "appended")
            assert last is not None and exactly(last.data) == exactly(document)


def test_appends_batched_into_one_statement_keep_their_documents_exactly(pg_url: str) -> None:
    with closing(PostgresStore.from_url(pg_url)) as store:
        manager = SessionManager(store, worker_id="w")
        held, target = (manager.create("tutor", "u1").session_id for _ in range(2))
        batches = Batches(store)
        with row_locked(pg_url, held):
            first, _ = in_threads([lambda: manager.checkpoint(held, "first", {})])
            eventually(lambda: store._appends._leading)
            calls: list[Callable[[], object]] = [
                partial(manager.checkpoint, target, "batched", d) for d in (NUL, ORDER, NUMBERS, {})
            ]
            threads, _ = in_threads(calls)
            eventually(lambda: len(store._appends._queue) == len(calls))
        for t in [*first, *threads]:
            t.join()
        assert batches.sizes == [1, 4]
        assert sorted(exactly(cp.data) for cp in manager.checkpoints(target)) == sorted(
            exactly(d) for d in (NUL, ORDER, NUMBERS, {})
        )


def test_the_jsonb_columns_stay_queryable_with_a_lookalike(pg_url: str) -> None:
    with closing(PostgresStore.from_url(pg_url, ManualClock())) as store:
        SessionManager(store, worker_id="w").create("tutor", "u1", session_id="s", context=NUL)
    with psycopg.connect(PoolSettings.from_url(pg_url).conninfo) as conn:
        row = conn.execute("SELECT context ->> 'text' FROM sessions WHERE session_id = 's'").fetchone()
    assert row == ("before\ufffdafter",)


@pytest.fixture(scope="module")
def shared_manager() -> Iterator[SessionManager]:
    store = PostgresStore.from_url(fresh_postgres_url())
    yield SessionManager(store, worker_id="w")
    store.close()


@settings(max_examples=60, deadline=None)
@given(document=documents)
def test_any_document_reads_back_exactly_from_the_server(
    shared_manager: SessionManager, document: Any
) -> None:
    context = {"document": document}
    sid = shared_manager.create("tutor", "u1", context=context).session_id
    shared_manager.checkpoint(sid, "any", context)
    assert exactly(shared_manager.get(sid).context) == exactly(context)
    assert exactly(shared_manager.checkpoints(sid)[0].data) == exactly(context)
