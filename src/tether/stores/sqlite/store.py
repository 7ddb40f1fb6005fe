"""`sqlite:///path/tether.db`: the embedded default. WAL mode, durable commits, group commit.

Reads run on one connection per thread (WAL readers run concurrently with each other and with
the writer). Every write goes through one `SQLiteWrites`: concurrent writers share a transaction
and its sync. Each write checks the conditions its call carries (state, epoch, version) with
named statements from queries.sql inside the BEGIN IMMEDIATE transaction that applies it, so
the check and the write are atomic, also against other processes using the same file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tether.core.clock import Clock
from tether.core.errors import ConflictError, NotFound, SchemaMismatch, StoreUnavailable, TetherError
from tether.core.keys import ApiKey
from tether.core.model import (
    Checkpoint,
    Liveness,
    NewCheckpoint,
    Page,
    Session,
    SessionCount,
    SessionFilter,
    State,
)
from tether.core.retention import RetentionRule
from tether.core.validation import MAX_COUNTER
from tether.lifecycle import Write
from tether.stores.base import (
    Beat,
    Store,
    decode_cursor,
    encode_cursor,
    explain_rejected_append,
    explain_rejected_beat,
    from_micros,
    to_micros,
)
from tether.stores.sql_files import load_migrations, load_queries
from tether.stores.sqlite.connections import Readers, SQLiteSettings, connect, unavailable
from tether.stores.sqlite.group_commit import SQLiteWrites
from tether.stores.sqlite.rows import (
    checkpoint_from_row,
    micros_or_none,
    session_from_row,
    session_to_row,
    write_params,
)
from tether.stores.sqlite.schema import migrate, schema_version

PACKAGE = "tether.stores.sqlite"
Q = load_queries(PACKAGE)
KEYS = load_queries(PACKAGE, "keys.sql")
MIGRATIONS = load_migrations(PACKAGE)
SCHEMA_VERSION = MIGRATIONS[-1].version
_NEWEST = (2**63 - 1, "")  # keyset position before the first page
_FENCE = Q["append_fence"]
_FENCES = Q["append_fences"]
_INSERT_CHECKPOINT = Q["insert_checkpoint"]
_GET = Q["get_session"]
_LAST = Q["last_checkpoint"]
_LAST_BY_NAME = Q["last_checkpoint_by_name"]
_NEWEST_CHECKPOINTS = Q["newest_checkpoints"]
_PRAGMAS = ("journal_mode", "synchronous", "fullfsync", "busy_timeout")


class SQLiteStore(Store):
    def __init__(self, settings: SQLiteSettings, clock: Clock | None = None, url: str | None = None) -> None:
        super().__init__(clock)
        self.settings = settings
        self.url = url or f"sqlite:///{settings.path}"
        self._closed = False
        found = self._connect()
        _OPEN_STORES.add(self)
        if found > SCHEMA_VERSION:
            self.close()
            raise SchemaMismatch(found, SCHEMA_VERSION)
        if found < SCHEMA_VERSION:  # only then the write lock: an up-to-date store opens beside a writer
            try:
                self.migrate()
            except BaseException:
                self.close()
                raise

    @classmethod
    def from_url(cls, url: str, clock: Clock | None = None) -> SQLiteStore:
        return cls(SQLiteSettings.from_url(url), clock, url)

    def _connect(self) -> int:
        """Open the connections; returns the schema version found, read before the write connection
        switches the file to WAL (so a foreign file is refused untouched)."""
        self._readers = Readers(self.settings, Q)
        try:
            found = schema_version(self._readers.get(), Q, self.settings.path)
            writer = connect(self.settings, Q, reader=False)
        except sqlite3.Error as exc:
            self._readers.close()
            raise self._unavailable(exc) from exc
        except BaseException:
            self._readers.close()
            raise
        self._writes = SQLiteWrites(writer, self._unavailable)
        return found

    def _reconnect_in_forked_child(self) -> None:
        """SQLite connections must not be used across fork() (e.g. a pre-forking server that
        created the manager at import): the child opens its own and drops the inherited ones."""
        if not self._closed:
            self._connect()

    # -- reads -------------------------------------------------------------------------------
    def get(self, session_id: str) -> Session:
        row = self._fetchone(_GET, (session_id,))
        if row is None:
            raise NotFound(session_id)
        return session_from_row(row)

    def query(self, where: SessionFilter, limit: int, cursor: str | None = None) -> Page[Session]:
        after_us, after_id = _NEWEST if cursor is None else decode_cursor(cursor)
        params: dict[str, Any] = {
            "user_id": where.user_id,
            "agent_type": where.agent_type,
            "agent_types": _json_list(where.agent_types),
            "state": _state_param(where),
            "parent_session_id": where.parent_session_id,
            "heartbeat_before": micros_or_none(where.heartbeat_before),
            "paused_before": micros_or_none(where.paused_before),
            "suspect_at": micros_or_none(where.suspect_at_or_before),
            "lease_expired_at": micros_or_none(where.lease_expired_at),
            "after_us": after_us,
            "after_id": after_id,
            "limit": limit + 1,
        }
        rows = self._fetchall(Q[_listing(where)], params)
        sessions = [session_from_row(row) for row in rows[:limit]]
        return Page(sessions, encode_cursor(sessions[-1]) if len(rows) > limit else None)

    def checkpoints(
        self, session_id: str, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> list[Checkpoint]:
        if name is None:
            return self._checkpoints(session_id, Q["checkpoints_after"], (session_id, after_seq, limit))
        params = (session_id, name, after_seq, limit)
        return self._checkpoints(session_id, Q["checkpoints_after_by_name"], params)

    def newest_checkpoints(
        self, session_id: str, limit: int, before_seq: int | None = None
    ) -> list[Checkpoint]:
        through = MAX_COUNTER if before_seq is None else before_seq - 1
        return self._checkpoints(session_id, _NEWEST_CHECKPOINTS, (session_id, through, limit))

    def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        if name is None:
            return self._last(session_id, self._fetchone(_LAST, (session_id,)))
        return self._last(session_id, self._fetchone(_LAST_BY_NAME, (session_id, name)))

    def last_checkpoint_of(self, session_id: str, names: Sequence[str]) -> Checkpoint | None:
        """One indexed statement per name. Seqs are committed in order, so the newest row found
        was the newest of all those names when it was committed (or when the first ran)."""
        rows = [self._fetchone(_LAST_BY_NAME, (session_id, name)) for name in dict.fromkeys(names)]
        return self._last(session_id, max(filter(None, rows), key=_seq_of, default=None))

    def claimable(self, agent_types: frozenset[str] | None, limit: int) -> list[Session]:
        params = {"now_us": to_micros(self.now()), "agent_types": _json_list(agent_types), "limit": limit}
        return [session_from_row(row) for row in self._fetchall(Q["claimable"], params)]

    # -- writes ------------------------------------------------------------------------------
    def create(self, session: Session, checkpoints: Sequence[NewCheckpoint] = ()) -> Session:
        sid = session.session_id
        row = session_to_row(session)
        history = [
            (sid, seq, cp.name, to_micros(cp.timestamp), cp.data_json)
            for seq, cp in enumerate(checkpoints, 1)
        ]

        def work(conn: sqlite3.Connection) -> Any:
            try:
                conn.execute(Q["insert_session"], row)
            except sqlite3.IntegrityError:
                raise ConflictError(sid, f"session {sid!r} exists") from None
            conn.executemany(Q["insert_checkpoint"], history)
            return conn.execute(_GET, (sid,)).fetchone()

        return session_from_row(self._writes.run(work))

    def append(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        seq: int = self._writes.run_many(_append_many, _append_item(session_id, checkpoint, epoch))
        return _appended(session_id, checkpoint, seq)

    async def append_async(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        """`append` for a coroutine: it joins the same group commit without a thread of its own
        (the writer thread leads), so the event loop never waits on the disk."""
        seq: int = await self._writes.run_many_async(
            _append_many, _append_item(session_id, checkpoint, epoch)
        )
        return _appended(session_id, checkpoint, seq)

    def apply(self, write: Write) -> Session:
        sid = write.before.session_id
        params = write_params(write)
        new = write.checkpoint
        cp = None if new is None else (new.name, to_micros(new.timestamp), new.data_json, sid)

        def work(conn: sqlite3.Connection) -> Any:
            if conn.execute(Q["apply_write"], params).rowcount == 0:
                current = _session_in(conn, sid)
                if current is None:
                    raise NotFound(sid)
                raise ConflictError(
                    sid, expected_version=write.before.version, actual_version=current.version
                )
            if cp is not None:
                conn.execute(Q["append_unfenced"], cp).fetchall()
            return conn.execute(_GET, (sid,)).fetchone()

        return session_from_row(self._writes.run(work))

    def heartbeat(self, beats: Sequence[Beat]) -> list[TetherError | None]:
        """All beats in one transaction, one sync: one executemany, or beat by beat to explain refusals."""
        now = self.now()
        now_us = to_micros(now)
        sql = Q["heartbeat"]
        params = [(b.session_id, b.epoch, b.phase, b.expect_silence, now_us) for b in beats]

        def work(conn: sqlite3.Connection) -> list[TetherError | None]:
            # The common case in one executemany: every UPDATE touches at most its one row, so
            # the summed row count says whether all applied. If not, undo and go beat by beat.
            conn.execute("SAVEPOINT tether_beats")
            if conn.executemany(sql, params).rowcount == len(params):
                conn.execute("RELEASE tether_beats")
                return [None] * len(params)
            conn.execute("ROLLBACK TO tether_beats")
            conn.execute("RELEASE tether_beats")
            results: list[TetherError | None] = []
            for beat, values in zip(beats, params, strict=True):
                if conn.execute(sql, values).rowcount == 1:
                    results.append(None)
                else:
                    results.append(explain_rejected_beat(_session_in(conn, beat.session_id), beat, now))
            return results

        return self._writes.run(work) if beats else []

    def delete(self, session_id: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(Q["delete_checkpoints"], (session_id,))
            if conn.execute(Q["delete_session"], (session_id,)).rowcount == 0:
                raise NotFound(session_id)

        self._writes.run(work)

    def purge(self, ended_before: datetime, states: frozenset[State]) -> int:
        params = {
            "states": _json_list(frozenset(s.value for s in states)),
            "before_us": to_micros(ended_before),
        }

        def work(conn: sqlite3.Connection) -> int:
            conn.execute(Q["purge_checkpoints"], params)
            count: int = conn.execute(Q["purge_sessions"], params).rowcount
            return count

        return self._writes.run(work)

    def fork(self, session: Session, source_id: str, at_seq: int) -> Session:
        sid = session.session_id
        row = session_to_row(session)
        copy = {"session_id": sid, "source_id": source_id, "at_seq": at_seq}

        def work(conn: sqlite3.Connection) -> Any:
            if conn.execute(Q["session_exists"], (source_id,)).fetchone() is None:
                raise NotFound(source_id)
            try:
                conn.execute(Q["insert_session"], row)
            except sqlite3.IntegrityError:
                raise ConflictError(sid, f"session {sid!r} exists") from None
            conn.execute(Q["fork_checkpoints"], copy)
            return conn.execute(_GET, (sid,)).fetchone()

        return session_from_row(self._writes.run(work))

    def retirable(self, rule: RetentionRule, limit: int) -> list[str]:
        return [row[0] for row in self._fetchall(Q["retirable"], _rule_params(rule, limit))]

    def retire(self, rule: RetentionRule, limit: int) -> list[str]:
        params = _rule_params(rule, limit)

        def work(conn: sqlite3.Connection) -> list[str]:
            doomed = [row[0] for row in conn.execute(Q["retirable"], params)]
            ids = json.dumps(doomed)
            conn.execute(Q["delete_checkpoints_of"], (ids,))
            conn.execute(Q["delete_sessions_of"], (ids,))
            return doomed

        return self._writes.run(work)

    def erase_user(self, user_id: str) -> int:
        def work(conn: sqlite3.Connection) -> int:
            conn.execute(Q["erase_user_checkpoints"], (user_id,))
            count: int = conn.execute(Q["erase_user_sessions"], (user_id,)).rowcount
            return count

        return self._writes.run(work)

    # -- API keys and counts ----------------------------------------------------------------
    def add_api_key(self, key: ApiKey) -> None:
        row = (key.key_id, key.user_id, int(key.admin), key.secret_hash, to_micros(key.created_at), None)

        def work(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(KEYS["insert_api_key"], row)
            except sqlite3.IntegrityError:
                raise ConflictError(key.key_id, f"API key {key.key_id!r} exists") from None

        self._writes.run(work)

    def get_api_key(self, key_id: str) -> ApiKey | None:
        row = self._fetchone(KEYS["get_api_key"], (key_id,))
        return None if row is None else _api_key(row)

    def list_api_keys(self) -> list[ApiKey]:
        return [_api_key(row) for row in self._fetchall(KEYS["list_api_keys"], ())]

    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            return conn.execute(KEYS["revoke_api_key"], (to_micros(at), key_id)).rowcount == 1

        return self._writes.run(work)

    def count_sessions(self, now: datetime, user_id: str | None = None) -> list[SessionCount]:
        rows = self._fetchall(KEYS["count_sessions"], {"now_us": to_micros(now), "user_id": user_id})
        return [
            SessionCount(
                State(state), agent_type, None if live is None else Liveness(live), n, from_micros(us)
            )
            for state, agent_type, live, n, us in rows
        ]

    # -- lifecycle of the store itself ------------------------------------------------------
    def migrate(self) -> int:
        return self._writes.run(lambda conn: migrate(conn, Q, MIGRATIONS))

    def pragmas(self) -> dict[str, Any]:
        """The write connection's journal mode, synchronous level (0 off, 1 normal, 2 full),
        fullfsync and busy timeout in ms, as SQLite reports them: the durability it really has."""

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            return {name: conn.execute(Q[f"pragma_{name}"]).fetchone()[0] for name in _PRAGMAS}

        return self._writes.run(read)

    def close(self) -> None:
        self._closed = True
        self._writes.close()
        self._readers.close()

    # -- internals ---------------------------------------------------------------------------
    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return unavailable(self.settings.path, exc)

    def _fetchone(self, sql: str, params: Any) -> Any:
        try:
            return self._readers.get().execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    def _fetchall(self, sql: str, params: Any) -> list[Any]:
        try:
            return self._readers.get().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    def _checkpoints(self, session_id: str, sql: str, params: Any) -> list[Checkpoint]:
        """A checkpoint read; only when it finds none is the session's existence asked."""
        rows = self._fetchall(sql, params)
        if not rows:
            self._require(session_id)
        return [checkpoint_from_row(session_id, row) for row in rows]

    def _last(self, session_id: str, row: Any) -> Checkpoint | None:
        """The checkpoint of a point read; when it found none, whether the session exists."""
        if row is None:
            self._require(session_id)
            return None
        return checkpoint_from_row(session_id, row)

    def _require(self, session_id: str) -> None:
        if self._fetchone(Q["session_exists"], (session_id,)) is None:
            raise NotFound(session_id)


_OPEN_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


def _reconnect_after_fork() -> None:
    for store in list(_OPEN_STORES):
        store._reconnect_in_forked_child()


os.register_at_fork(after_in_child=_reconnect_after_fork)


Append = tuple[str, str, int, str, int | None]  # session_id, name, ts_us, data, epoch


def _append_item(session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Append:
    return (session_id, checkpoint.name, to_micros(checkpoint.timestamp), checkpoint.data_json, epoch)


def _appended(session_id: str, checkpoint: NewCheckpoint, seq: int) -> Checkpoint:
    """The stored checkpoint: its timestamp in UTC, as a read returns it."""
    ts = checkpoint.timestamp
    timestamp = ts if ts.tzinfo is UTC else from_micros(to_micros(ts))
    return Checkpoint(session_id, seq, checkpoint.name, timestamp, checkpoint.data)


def _append_many(conn: sqlite3.Connection, appends: list[Append]) -> list[int | TetherError]:
    """Concurrent appends in one go: one query reads every session's fence (state, epoch) and
    newest seq, under the write lock of the batch's transaction; one executemany inserts the
    accepted ones. Appends to the same session get consecutive seqs in queue order."""
    if len(appends) == 1:  # a lone writer: the same, with less to build
        session_id, name, ts_us, data, epoch = appends[0]
        found = conn.execute(_FENCE, (session_id,)).fetchone()
        if found is None or found[1] != "active" or (epoch is not None and epoch != found[2]):
            return [explain_rejected_append(_session_in(conn, session_id), session_id, epoch)]
        seq: int = (found[3] or 0) + 1
        conn.execute(_INSERT_CHECKPOINT, (session_id, seq, name, ts_us, data))
        return [seq]
    fences = conn.execute(_FENCES, (json.dumps(list({append[0] for append in appends})),)).fetchall()
    fence = {row[0]: row for row in fences}
    last_seq: dict[str, int] = {}
    outcomes: list[int | TetherError] = []
    rows = []
    for session_id, name, ts_us, data, epoch in appends:
        found = fence.get(session_id)
        if found is None or found[1] != "active" or (epoch is not None and epoch != found[2]):
            outcomes.append(explain_rejected_append(_session_in(conn, session_id), session_id, epoch))
            continue
        seq = last_seq.get(session_id, found[3] or 0) + 1
        last_seq[session_id] = seq
        rows.append((session_id, seq, name, ts_us, data))
        outcomes.append(seq)
    conn.executemany(_INSERT_CHECKPOINT, rows)
    return outcomes


def _seq_of(row: Any) -> int:
    seq: int = row[0]
    return seq


def _api_key(row: Any) -> ApiKey:
    key_id, user_id, admin, secret_hash, created_us, revoked_us = row
    revoked = None if revoked_us is None else from_micros(revoked_us)
    return ApiKey(key_id, user_id, bool(admin), secret_hash, from_micros(created_us), revoked)


def _session_in(conn: sqlite3.Connection, session_id: str) -> Session | None:
    """The session as the write transaction sees it, to explain a rejected write."""
    row = conn.execute(_GET, (session_id,)).fetchone()
    return None if row is None else session_from_row(row)


def _state_param(where: SessionFilter) -> str | None:
    """`paused_before` implies state paused, which lets it use the state index."""
    if where.state is not None:
        return where.state.value
    return State.PAUSED.value if where.paused_before is not None else None


def _rule_params(rule: RetentionRule, limit: int) -> dict[str, Any]:
    return {
        "state": rule.state.value,
        "before_us": to_micros(rule.ended_before),
        "agent_type": rule.agent_type,
        "other_types": _json_list(rule.other_types),
        "limit": limit,
    }


def _json_list(values: frozenset[str] | None) -> str | None:
    return None if values is None else json.dumps(sorted(values))


def _listing(where: SessionFilter) -> str:
    """The query whose index narrows the listing most; the others' conditions are filters.
    Stale-session filters come first: the supervisor sweeps with them, and their sets are small."""
    if where.parent_session_id is not None:
        return "list_by_parent"
    if where.lease_expired_at is not None:
        return "list_lease_expired"
    if where.suspect_at_or_before is not None:
        return "list_suspect"
    if where.heartbeat_before is not None:
        return "list_silent"
    if where.user_id is not None:
        return "list_by_user"
    if where.agent_type is not None:
        return "list_by_type"
    if where.state is not None or where.paused_before is not None:
        return "list_by_state"
    return "list_all"
