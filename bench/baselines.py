"""What Tether is measured against, in the same run: raw sqlite3 loops with the same settings, the
seed's persist-the-whole-session design, and LangGraph's SqliteSaver (when installed)."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED_RELATIVE = Path("shared/seed/session_models.py")
# shared/ lies beside the repository (../shared locally; a copy next to the clone in CI).
SEED_CANDIDATES = [parent / SEED_RELATIVE for parent in Path(__file__).resolve().parents[1:]]
SEED_MODULE = next((c for c in SEED_CANDIDATES if c.is_file()), SEED_CANDIDATES[0])


def raw_table_ddl(table: str, indexed: bool) -> tuple[str, ...]:
    """A checkpoint table for the raw floor. Indexed: the same primary key and name index as
    Tether's checkpoints (migrations/0001_initial.sql), so the floor writes the same pages per
    commit. Not indexed: a bare table, the absolute floor."""
    if not indexed:
        return (f"CREATE TABLE {table} (session_id TEXT, seq INTEGER, name TEXT, ts_us INTEGER, data TEXT)",)
    return (
        f"CREATE TABLE {table} (session_id TEXT NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL,"
        " ts_us INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (session_id, seq))",
        f"CREATE INDEX {table}_by_name ON {table} (session_id, name, seq)",
    )


LAST = "SELECT seq, name, ts_us, data FROM checkpoints WHERE session_id = ? ORDER BY seq DESC LIMIT 1"
LAST_BY_NAME = (
    "SELECT seq, name, ts_us, data FROM checkpoints WHERE session_id = ? AND name = ?"
    " ORDER BY seq DESC LIMIT 1"
)
USER_SESSIONS = "SELECT * FROM sessions WHERE user_id = ? ORDER BY created_us DESC, session_id DESC LIMIT ?"
USER_SESSIONS_WITH_LAST_SEQ = (
    "SELECT s.*, (SELECT MAX(c.seq) FROM checkpoints AS c WHERE c.session_id = s.session_id)"
    " FROM sessions AS s WHERE s.user_id = ? ORDER BY s.created_us DESC, s.session_id DESC LIMIT ?"
)
JSON_COLUMNS = ("context", "metadata", "failure_details")

Append = Callable[[], None]


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """Autocommit, WAL, the given synchronous level: each statement is its own durable commit."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(f"PRAGMA fullfsync = {int(synchronous.upper() == 'FULL')}")  # as Tether (macOS only)
    return conn


def raw_appender(
    path: Path,
    synchronous: str,
    payload: dict[str, Any],
    *,
    table: str = "raw_checkpoints",
    indexed: bool = True,
) -> Append:
    """The floor: json.dumps + one INSERT (its own transaction and commit) per append, into its
    own table — in Tether's own database file when given that path, so both sync the same WAL."""
    conn = connect(path, synchronous)
    for statement in raw_table_ddl(table, indexed):
        conn.execute(statement)
    insert = f"INSERT INTO {table} (session_id, seq, name, ts_us, data) VALUES (?, ?, ?, ?, ?)"
    seq = 0

    def append() -> None:
        nonlocal seq
        seq += 1
        conn.execute(insert, ("raw", seq, "step", time.time_ns() // 1000, json.dumps(payload)))

    return append


def raw_lister(path: Path, user_id: str, limit: int) -> Callable[[], object]:
    """The floor of `manager.list(user_id=..., limit=...)`: the same rows (each session with its
    newest checkpoint's seq, one row more than the page, as Tether asks for) read by a raw sqlite3
    loop, the page's JSON columns decoded with orjson, and nothing else built."""
    import orjson

    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    names = [column[0] for column in conn.execute(USER_SESSIONS, ("", 0)).description]
    documents = [names.index(name) for name in JSON_COLUMNS]

    def list_page() -> object:
        rows = conn.execute(USER_SESSIONS_WITH_LAST_SEQ, (user_id, limit + 1)).fetchall()
        return [[orjson.loads(row[i]) for i in documents if row[i] is not None] for row in rows[:limit]]

    return list_page


def seed_saver(path: Path, payload: dict[str, Any], existing: int) -> Append | str:
    """The seed's design persisted naively: `AgentSession.checkpoint` then the whole `to_dict()`
    re-serialised and written as one row per save. Returns a reason string if the seed is absent."""
    if not SEED_MODULE.exists():
        return f"seed module not found beside the repository ({SEED_RELATIVE} in a parent folder)"
    spec = importlib.util.spec_from_file_location("seed_session_models", SEED_MODULE)
    assert spec is not None and spec.loader is not None
    seed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed)
    conn = connect(path, "FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS seed_sessions (session_id TEXT PRIMARY KEY, doc TEXT)")
    session = seed.AgentSession(agent_type="bench", user_id="u")
    for _ in range(existing):
        session.checkpoint("step", payload)

    def save() -> None:
        session.checkpoint("step", payload)
        doc = json.dumps(session.to_dict())
        conn.execute("INSERT OR REPLACE INTO seed_sessions VALUES (?, ?)", (session.session_id, doc))

    save()
    return save


def langgraph_putter(path: Path, payload: dict[str, Any]) -> Append | str:
    """LangGraph's SqliteSaver.put of a checkpoint carrying the payload, WAL + synchronous=FULL.
    Returns a reason string if langgraph-checkpoint-sqlite is not installed."""
    try:
        from langgraph.checkpoint.base import empty_checkpoint
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError as exc:
        return f"langgraph-checkpoint-sqlite not installed ({exc}); pip install 'tether[bench]'"
    conn = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    conn.execute("PRAGMA synchronous = FULL")
    config: dict[str, Any] = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}

    def put() -> None:
        nonlocal config
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"data": payload}
        config = saver.put(config, checkpoint, {"source": "loop", "step": 1}, {})  # type: ignore[arg-type]

    return put
