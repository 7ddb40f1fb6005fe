-- Every statement the SQLite store runs, by name (loaded by tether.stores.sql_files).
-- Session reads return the columns in the order tether.stores.sqlite.rows.session_from_row expects,
-- last_seq (the newest checkpoint's seq, from the primary key index) last.
-- The listings' WHERE clauses mirror tether.lifecycle.matches: `suspect_us <= :suspect_at` is
-- lifecycle.suspect, `lease_us <= :lease_expired_at` (and claimable's `lease_us <= :now_us`) is
-- lifecycle.lease_expired.
-- `{name}` in a statement is the fragment of that name, put in place when the file is loaded.

-- name: session_columns
-- A fragment: a session's columns in rows.session_from_row's order, last_seq last.
s.session_id, s.agent_type, s.user_id, s.state, s.created_us, s.last_heartbeat_us, s.state_since_us,
       s.context, s.metadata, s.parent_session_id, s.version, s.owner, s.epoch, s.heartbeat_timeout,
       s.suspect_after, s.lease_us, s.suspect_us, s.phase, s.recoveries, s.ended_us, s.failure_error,
       s.failure_details, s.failure_final,
       (SELECT MAX(c.seq) FROM checkpoints AS c WHERE c.session_id = s.session_id)

-- name: listing_filters
-- A fragment: the listings' filters after the condition their index answers, and the keyset page.
  AND (:user_id IS NULL OR s.user_id = :user_id)
  AND (:agent_type IS NULL OR s.agent_type = :agent_type)
  AND (:agent_types IS NULL OR s.agent_type IN (SELECT value FROM json_each(:agent_types)))
  AND (:state IS NULL OR s.state = :state)
  AND (:parent_session_id IS NULL OR s.parent_session_id = :parent_session_id)
  AND (:heartbeat_before IS NULL
       OR (s.state IN ('active', 'paused') AND s.last_heartbeat_us < :heartbeat_before))
  AND (:paused_before IS NULL
       OR (s.state = 'paused' AND COALESCE(s.state_since_us, s.created_us) < :paused_before))
  AND (:suspect_at IS NULL OR (s.state = 'active' AND s.suspect_us <= :suspect_at))
  AND (:lease_expired_at IS NULL OR (s.state = 'active' AND s.lease_us <= :lease_expired_at))
  AND (s.created_us, s.session_id) < (:after_us, :after_id)
ORDER BY s.created_us DESC, s.session_id DESC
LIMIT :limit;


-- name: get_session
SELECT {session_columns}
FROM sessions AS s
WHERE s.session_id = ?;

-- name: session_exists
SELECT 1 FROM sessions WHERE session_id = ?;

-- name: insert_session
INSERT INTO sessions (
    session_id, agent_type, user_id, state, created_us, last_heartbeat_us, state_since_us,
    context, metadata, parent_session_id, version, owner, epoch, heartbeat_timeout,
    suspect_after, lease_us, suspect_us, phase, recoveries, ended_us, failure_error,
    failure_details, failure_final
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_checkpoint
INSERT INTO checkpoints (session_id, seq, name, ts_us, data) VALUES (?, ?, ?, ?, ?);

-- name: append_fence
-- What a fenced append checks (state, epoch) and the next seq's predecessor, read under the
-- write lock the append's BEGIN IMMEDIATE holds; the plain insert_checkpoint follows. Two cached
-- statements cost less CPU than one INSERT … SELECT … RETURNING (which materialises its result).
SELECT s.session_id, s.state, s.epoch,
       (SELECT MAX(c.seq) FROM checkpoints AS c WHERE c.session_id = s.session_id)
FROM sessions AS s
WHERE s.session_id = ?;

-- name: append_fences
-- append_fence for a batch of concurrent appends: the sessions named in a JSON array.
SELECT s.session_id, s.state, s.epoch,
       (SELECT MAX(c.seq) FROM checkpoints AS c WHERE c.session_id = s.session_id)
FROM sessions AS s
WHERE s.session_id IN (SELECT value FROM json_each(?));

-- name: append_unfenced
-- A lifecycle checkpoint, written in the same transaction as the version-checked update.
INSERT INTO checkpoints (session_id, seq, name, ts_us, data)
SELECT ?4, COALESCE(MAX(c.seq), 0) + 1, ?1, ?2, ?3
FROM checkpoints AS c
WHERE c.session_id = ?4
RETURNING seq;

-- name: apply_write
-- Compare-and-set on the version; liveness columns change only when the write renews the lease,
-- so a transition never overwrites a concurrent heartbeat.
UPDATE sessions SET
    agent_type = :agent_type, user_id = :user_id, state = :state, created_us = :created_us,
    state_since_us = :state_since_us, context = :context, metadata = :metadata,
    parent_session_id = :parent_session_id, version = :version, owner = :owner, epoch = :epoch,
    recoveries = :recoveries, ended_us = :ended_us, failure_error = :failure_error,
    failure_details = :failure_details, failure_final = :failure_final,
    last_heartbeat_us = CASE WHEN :renews_lease THEN :last_heartbeat_us ELSE last_heartbeat_us END,
    lease_us = CASE WHEN :renews_lease THEN :lease_us ELSE lease_us END,
    suspect_us = CASE WHEN :renews_lease THEN :suspect_us ELSE suspect_us END,
    phase = CASE WHEN :renews_lease THEN :phase ELSE phase END,
    heartbeat_timeout = CASE WHEN :renews_lease THEN :heartbeat_timeout ELSE heartbeat_timeout END,
    suspect_after = CASE WHEN :renews_lease THEN :suspect_after ELSE suspect_after END
WHERE session_id = :session_id AND version = :expected_version
  AND (:expected_last_seq IS NULL OR :expected_last_seq =
       COALESCE((SELECT MAX(seq) FROM checkpoints WHERE session_id = :session_id), 0));

-- name: heartbeat
-- Mirrors tether.lifecycle.heartbeat_accepted (paused, or active with the lease not yet expired,
-- at the right epoch) and lifecycle.deadlines (suspect after the soft deadline or the announced
-- silence, expiry a grace of timeout - suspect_after later; microseconds as floor(x * 1e6 + 0.5),
-- CAST truncating the positive sum, in the same double arithmetic and the same order).
-- Numbered parameters (?1 session_id, ?2 epoch, ?3 phase, ?4 expect_silence, ?5 now in µs): a batch
-- binds tuples, a quarter cheaper per beat than dicts of named ones.
UPDATE sessions SET
    last_heartbeat_us = ?5,
    phase = ?3,
    suspect_us = ?5 + CAST(COALESCE(?4, suspect_after) * 1000000 + 0.5 AS INTEGER),
    lease_us = ?5 + CAST(
        (COALESCE(?4, suspect_after) + (heartbeat_timeout - suspect_after)) * 1000000 + 0.5 AS INTEGER)
WHERE session_id = ?1
  AND (?2 IS NULL OR epoch = ?2)
  AND (state = 'paused' OR (state = 'active' AND (lease_us IS NULL OR ?5 < lease_us)));

-- name: delete_checkpoints
DELETE FROM checkpoints WHERE session_id = ?;

-- name: delete_session
DELETE FROM sessions WHERE session_id = ?;

-- name: purge_checkpoints
DELETE FROM checkpoints WHERE session_id IN (
    SELECT session_id FROM sessions
    WHERE state IN (SELECT value FROM json_each(:states))
      AND COALESCE(ended_us, last_heartbeat_us) < :before_us
);

-- name: purge_sessions
DELETE FROM sessions
WHERE state IN (SELECT value FROM json_each(:states))
  AND COALESCE(ended_us, last_heartbeat_us) < :before_us;

-- name: fork_checkpoints
-- A fork's history: the source's first checkpoints, copied row for row inside the database.
INSERT INTO checkpoints (session_id, seq, name, ts_us, data)
SELECT :session_id, seq, name, ts_us, data FROM checkpoints
WHERE session_id = :source_id AND seq <= :at_seq
ORDER BY seq;

-- name: retirable
-- Sessions a retention rule covers (tether.stores.memory.covers), oldest first along the state
-- index; one with a live child waits for it (the parent index answers that).
SELECT s.session_id FROM sessions AS s
WHERE s.state = :state AND s.ended_us < :before_us
  AND (s.agent_type = :agent_type
       OR (:agent_type IS NULL AND s.agent_type NOT IN (SELECT value FROM json_each(:other_types))))
  AND NOT EXISTS (
      SELECT 1 FROM sessions AS c
      WHERE c.parent_session_id = s.session_id AND c.state IN ('active', 'paused'))
ORDER BY s.created_us, s.session_id
LIMIT :limit;

-- name: delete_checkpoints_of
DELETE FROM checkpoints WHERE session_id IN (SELECT value FROM json_each(?));

-- name: delete_sessions_of
DELETE FROM sessions WHERE session_id IN (SELECT value FROM json_each(?));

-- name: erase_user_checkpoints
DELETE FROM checkpoints WHERE session_id IN (SELECT session_id FROM sessions WHERE user_id = ?);

-- name: erase_user_sessions
DELETE FROM sessions WHERE user_id = ?;

-- name: last_checkpoint
SELECT seq, name, ts_us, data FROM checkpoints
WHERE session_id = ?
ORDER BY seq DESC
LIMIT 1;

-- name: last_checkpoint_by_name
SELECT seq, name, ts_us, data FROM checkpoints INDEXED BY checkpoints_by_name
WHERE session_id = ? AND name = ?
ORDER BY seq DESC
LIMIT 1;

-- name: newest_checkpoints
SELECT seq, name, ts_us, data FROM checkpoints
WHERE session_id = ? AND seq <= ?
ORDER BY seq DESC
LIMIT ?;

-- name: checkpoints_after
SELECT seq, name, ts_us, data FROM checkpoints
WHERE session_id = ? AND seq > ?
ORDER BY seq
LIMIT ?;

-- name: checkpoints_after_by_name
SELECT seq, name, ts_us, data FROM checkpoints INDEXED BY checkpoints_by_name
WHERE session_id = ? AND name = ? AND seq > ?
ORDER BY seq
LIMIT ?;

-- name: claimable
-- Active sessions whose lease expired and recoverable failures; longest-waiting first (ties by id).
SELECT * FROM (
    SELECT {session_columns}, s.lease_us AS waiting_since
    FROM sessions AS s INDEXED BY sessions_by_lease
    WHERE s.state = 'active' AND s.lease_us <= :now_us
      AND (:agent_types IS NULL OR s.agent_type IN (SELECT value FROM json_each(:agent_types)))
    UNION ALL
    SELECT {session_columns}, COALESCE(s.lease_us, s.state_since_us, s.created_us) AS waiting_since
    FROM sessions AS s INDEXED BY sessions_recoverable
    WHERE s.state = 'failed' AND s.failure_final = 0
      AND (:agent_types IS NULL OR s.agent_type IN (SELECT value FROM json_each(:agent_types)))
)
ORDER BY waiting_since, session_id
LIMIT :limit;

-- name: list_by_parent
SELECT {session_columns}
FROM sessions AS s INDEXED BY sessions_by_parent
WHERE s.parent_session_id = :parent_session_id
{listing_filters}

-- name: list_by_user
SELECT {session_columns}
FROM sessions AS s INDEXED BY sessions_by_user
WHERE s.user_id = :user_id
{listing_filters}

-- name: list_by_type
SELECT {session_columns}
FROM sessions AS s INDEXED BY sessions_by_type
WHERE s.agent_type = :agent_type
{listing_filters}

-- name: list_by_state
SELECT {session_columns}
FROM sessions AS s INDEXED BY sessions_by_state
WHERE s.state = :state
{listing_filters}

-- name: list_all
SELECT {session_columns}
FROM sessions AS s INDEXED BY sessions_by_created
WHERE 1
{listing_filters}

-- name: list_lease_expired
-- The supervisor's sweep: a range of the lease index; the expired set is small, so it is sorted.
SELECT {session_columns}
FROM sessions AS s INDEXED BY sessions_by_lease
WHERE s.state = 'active' AND s.lease_us <= :lease_expired_at
{listing_filters}

-- name: list_suspect
SELECT {session_columns}
FROM sessions AS s INDEXED BY sessions_by_suspect
WHERE s.state = 'active' AND s.suspect_us <= :suspect_at
{listing_filters}

-- name: list_silent
SELECT {session_columns}
FROM sessions AS s INDEXED BY sessions_by_heartbeat
WHERE s.state IN ('active', 'paused') AND s.last_heartbeat_us < :heartbeat_before
{listing_filters}

-- name: schema_version
SELECT COALESCE(MAX(version), 0) FROM tether_schema;

-- name: user_tables
SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%';

-- name: create_schema_table
CREATE TABLE IF NOT EXISTS tether_schema (version INTEGER NOT NULL PRIMARY KEY);

-- name: record_schema_version
INSERT INTO tether_schema (version) VALUES (?);

-- name: synchronous_full
PRAGMA synchronous = FULL;

-- name: fullfsync
-- On macOS fsync() leaves data in the drive's cache; F_FULLFSYNC flushes it (ignored elsewhere).
PRAGMA fullfsync = 1;

-- name: synchronous_normal
PRAGMA synchronous = NORMAL;

-- name: journal_mode_wal
PRAGMA journal_mode = WAL;

-- name: query_only
PRAGMA query_only = 1;

-- name: pragma_journal_mode
PRAGMA journal_mode;

-- name: pragma_synchronous
PRAGMA synchronous;

-- name: pragma_fullfsync
PRAGMA fullfsync;

-- name: pragma_busy_timeout
PRAGMA busy_timeout;
