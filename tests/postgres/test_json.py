"""Documents read back exactly as written on every write path: key order, the spelling of numbers
(1e+16, -0.0), the NUL character; the columns are `json`, which keeps the text it was given."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import fresh_postgres_url
from tether import ManualClock, SessionManager
from tether.flows.seed import new_checkpoints
from tether.stores.postgres import PostgresStore

keys = st.text(max_size=4) | st.sampled_from(["é", "zz", "b", "aa", "", "𝄞", "\0"])
documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([-0.0, 1e16, -1.5e300, 5e-324, 9.99e15])
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
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
