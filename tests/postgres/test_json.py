"""jsonb cannot hold the NUL character; Tether keeps such values exactly anyway, on every write path."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace

import psycopg

from tether import ManualClock, SessionManager
from tether.seed import new_checkpoints
from tether.stores.postgres import PostgresStore
from tether.stores.postgres.connection import PoolSettings

NUL = {"text": "before\u0000after", "nested": [{"k\u0000ey": "\u0000"}], "plain": "\\u0000 is six characters"}


def test_values_with_nul_round_trip_through_create_append_and_apply(pg_url: str) -> None:
    with closing(PostgresStore.from_url(pg_url, ManualClock())) as store:
        manager = SessionManager(store, worker_id="w")
        session = manager.create("tutor", "u1", context=NUL, metadata={"ok": 1})
        manager.checkpoint(session.session_id, "appended", NUL)
        manager.update(session.session_id, metadata=NUL)
        manager.fail(session.session_id, "boom", NUL)  # failure details and its checkpoint via apply
        imported = replace(manager.get(session.session_id), session_id="imported")
        store.create(imported, new_checkpoints(manager.checkpoints(session.session_id)))

        for sid in (session.session_id, "imported"):
            got = manager.get(sid)
            assert (got.context, got.metadata) == (NUL, NUL)
            assert got.failure is not None and got.failure.details == NUL
            history = manager.checkpoints(sid)
            assert history[0].data == NUL and history[-1].data == {"error": "boom", "details": NUL}
            assert manager.last_checkpoint(sid, "appended") == replace(history[0], session_id=sid)


def test_the_jsonb_columns_stay_queryable_with_a_lookalike(pg_url: str) -> None:
    with closing(PostgresStore.from_url(pg_url, ManualClock())) as store:
        SessionManager(store, worker_id="w").create("tutor", "u1", session_id="s", context=NUL)
    with psycopg.connect(PoolSettings.from_url(pg_url).conninfo) as conn:
        row = conn.execute("SELECT context ->> 'text' FROM sessions WHERE session_id = 's'").fetchone()
    assert row == ("before\ufffdafter",)
