-- Every statement the PostgreSQL store runs, once; the sync and the async store execute the same text.
-- Writes are single statements (data-modifying CTEs), so each is atomic and one round trip in
-- autocommit. `%(now)s` is NULL when the store runs on the system clock: lease arithmetic then
-- uses the database clock, immune to client clock skew; tests inject a manual clock instead.

-- name: clock
SELECT COALESCE(%(now)s::timestamptz, now()) AS now

-- name: get_session
SELECT * FROM sessions WHERE session_id = %(session_id)s

-- name: sessions_by_ids
SELECT * FROM sessions WHERE session_id = ANY(%(session_ids)s::text[])

-- name: query_sessions
-- Planned per call with the values in place (never a generic plan), so the unset filters fold
-- away and the index that leads with the set one serves the keyset order.
SELECT * FROM sessions
WHERE (%(user_id)s::text IS NULL OR user_id = %(user_id)s)
  AND (%(agent_type)s::text IS NULL OR agent_type = %(agent_type)s)
  AND (%(agent_types)s::text[] IS NULL OR agent_type = ANY(%(agent_types)s::text[]))
  AND (%(state)s::text IS NULL OR state = %(state)s)
  AND (%(parent_session_id)s::text IS NULL OR parent_session_id = %(parent_session_id)s)
  AND (%(heartbeat_before)s::timestamptz IS NULL
       OR (state IN ('active', 'paused') AND last_heartbeat < %(heartbeat_before)s))
  AND (%(paused_before)s::timestamptz IS NULL
       OR (state = 'paused' AND COALESCE(state_since, created_at) < %(paused_before)s))
  AND (%(suspect_at_or_before)s::timestamptz IS NULL
       OR (state = 'active' AND suspect_at <= %(suspect_at_or_before)s))
  AND (%(lease_expired_at)s::timestamptz IS NULL
       OR (state = 'active' AND lease_expires_at <= %(lease_expired_at)s))
  AND (%(after_created_at)s::timestamptz IS NULL
       OR (created_at, session_id) < (%(after_created_at)s::timestamptz, %(after_session_id)s::text))
ORDER BY created_at DESC, session_id DESC
LIMIT %(limit)s

-- name: checkpoints
-- The checkpoint reads go straight to an index of checkpoints, as a hand-written SELECT would;
-- only when they find nothing does the store ask whether the session exists (session_exists),
-- so "no checkpoints" and "no session" differ.
SELECT seq, name, created_at, data FROM checkpoints
WHERE session_id = %(session_id)s AND seq > %(after_seq)s
ORDER BY seq LIMIT %(limit)s

-- name: checkpoints_named
SELECT seq, name, created_at, data FROM checkpoints
WHERE session_id = %(session_id)s AND name = %(name)s AND seq > %(after_seq)s
ORDER BY seq LIMIT %(limit)s

-- name: newest_checkpoints
SELECT seq, name, created_at, data FROM checkpoints
WHERE session_id = %(session_id)s AND seq <= %(through_seq)s
ORDER BY seq DESC LIMIT %(limit)s

-- name: last_checkpoint
SELECT seq, name, created_at, data FROM checkpoints
WHERE session_id = %(session_id)s ORDER BY seq DESC LIMIT 1

-- name: last_checkpoint_named
SELECT seq, name, created_at, data FROM checkpoints
WHERE session_id = %(session_id)s AND name = %(name)s ORDER BY seq DESC LIMIT 1

-- name: last_checkpoint_of
-- The newest of each name from its index (checkpoints_by_name), then the newest of those.
SELECT c.seq, c.name, c.created_at, c.data
FROM unnest(%(names)s::text[]) AS n (name)
CROSS JOIN LATERAL (
    SELECT seq, name, created_at, data FROM checkpoints
    WHERE session_id = %(session_id)s AND name = n.name
    ORDER BY seq DESC LIMIT 1
) AS c
ORDER BY c.seq DESC LIMIT 1

-- name: session_exists
SELECT 1 FROM sessions WHERE session_id = %(session_id)s

-- name: claimable
-- Expired leases and recoverable failures, each from its partial index, longest-waiting first.
SELECT * FROM (
    (SELECT * FROM sessions
     WHERE state = 'active' AND lease_expires_at <= COALESCE(%(now)s::timestamptz, now())
       AND (%(agent_types)s::text[] IS NULL OR agent_type = ANY(%(agent_types)s::text[]))
     ORDER BY lease_expires_at, session_id LIMIT %(limit)s)
    UNION ALL
    (SELECT * FROM sessions
     WHERE state = 'failed' AND failure_error IS NOT NULL AND NOT failure_final
       AND (%(agent_types)s::text[] IS NULL OR agent_type = ANY(%(agent_types)s::text[]))
     ORDER BY COALESCE(lease_expires_at, state_since, created_at), session_id LIMIT %(limit)s)
) AS candidates
ORDER BY COALESCE(lease_expires_at, state_since, created_at), session_id
LIMIT %(limit)s

-- name: create_session
WITH s AS (
    INSERT INTO sessions (
        session_id, agent_type, user_id, state, created_at, last_heartbeat, state_since, context,
        metadata, parent_session_id, version, owner, epoch, heartbeat_timeout, suspect_after,
        lease_expires_at, suspect_at, phase, recoveries, ended_at, failure_error, failure_details,
        failure_final, last_seq)
    VALUES (
        %(session_id)s, %(agent_type)s, %(user_id)s, %(state)s, %(created_at)s, %(last_heartbeat)s,
        %(state_since)s, %(context)s::json, %(metadata)s::json, %(parent_session_id)s, %(version)s,
        %(owner)s, %(epoch)s, %(heartbeat_timeout)s, %(suspect_after)s, %(lease_expires_at)s,
        %(suspect_at)s, %(phase)s, %(recoveries)s, %(ended_at)s, %(failure_error)s,
        %(failure_details)s::json, %(failure_final)s, cardinality(%(cp_names)s::text[]))
    ON CONFLICT (session_id) DO NOTHING
    RETURNING *
), c AS (
    INSERT INTO checkpoints (session_id, seq, name, created_at, data)
    SELECT s.session_id, cp.seq, cp.name, cp.created_at, cp.data
    FROM s, unnest(%(cp_names)s::text[], %(cp_times)s::timestamptz[], %(cp_data)s::json[])
        WITH ORDINALITY AS cp (name, created_at, data, seq)
)
SELECT * FROM s

-- name: append_checkpoint
-- The row lock taken by the UPDATE serialises appenders of one session across processes, so
-- seq never repeats or skips; the fence (active, epoch) is re-checked on the locked row.
-- Appends leave the session's version alone. The state is tested inside a CASE here and in
-- `heartbeat`, so the planner never takes it for an index condition (`state = 'active'` would
-- match the liveness indexes and sessions_by_state): the primary key is the only way to the
-- row, whatever the table's statistics say, even on a new, empty schema.
WITH s AS (
    UPDATE sessions SET last_seq = last_seq + 1
    WHERE session_id = %(session_id)s
      AND CASE state WHEN 'active' THEN %(epoch)s::bigint IS NULL OR epoch = %(epoch)s::bigint ELSE false END
    RETURNING session_id, last_seq
)
INSERT INTO checkpoints (session_id, seq, name, created_at, data)
SELECT s.session_id, s.last_seq, %(name)s, %(created_at)s, %(data)s::json
FROM s
RETURNING seq, created_at

-- name: append_checkpoints
-- append_checkpoint for many appends at once, so concurrent appenders of one process share one
-- statement and one commit (the group commit in store.py). The batch never waits on a row lock:
-- a session whose row another transaction holds is skipped (`locked` is false for its appends,
-- which their callers then run alone), so one locked session never stalls the others. Each append
-- is checked against its fence on its locked row; a session's last_seq moves by the number of its
-- accepted appends, which take the seqs after the old value in batch order. One row per append, in
-- batch order: seq and created_at when stored, seq NULL when its fence refused it. The arrays
-- travel in binary format: escaping a text array literal of 1 KB documents costs the client more
-- than the statement costs the server.
WITH batch AS (
    SELECT * FROM unnest(%(session_ids)b::text[], %(epochs)b::bigint[], %(names)b::text[],
                         %(times)b::timestamptz[], %(data)b::text[]::json[])
        WITH ORDINALITY AS b (session_id, epoch, name, created_at, data, position)
), locked AS MATERIALIZED (
    SELECT session_id, state, epoch FROM sessions
    WHERE session_id = ANY(%(session_ids)b::text[])
    FOR UPDATE SKIP LOCKED
), accepted AS MATERIALIZED (
    SELECT b.*, row_number() OVER (PARTITION BY b.session_id ORDER BY b.position) AS n
    FROM batch b JOIN locked l ON l.session_id = b.session_id
    WHERE l.state = 'active' AND (b.epoch IS NULL OR b.epoch = l.epoch)
), bumped AS (
    UPDATE sessions s SET last_seq = s.last_seq + c.appended
    FROM (SELECT session_id, count(*) AS appended FROM accepted GROUP BY session_id) c
    WHERE s.session_id = c.session_id
    RETURNING s.session_id, s.last_seq - c.appended AS before
), stored AS (
    INSERT INTO checkpoints (session_id, seq, name, created_at, data)
    SELECT a.session_id, u.before + a.n, a.name, a.created_at, a.data
    FROM accepted a JOIN bumped u ON u.session_id = a.session_id
)
SELECT b.position, l.session_id IS NOT NULL AS locked, u.before + a.n AS seq, b.created_at
FROM batch b
LEFT JOIN locked l ON l.session_id = b.session_id
LEFT JOIN accepted a ON a.position = b.position
LEFT JOIN bumped u ON u.session_id = a.session_id
ORDER BY b.position

-- name: apply_write
-- Compare-and-set on the version. Liveness columns change only when the write renews the
-- lease, so a lifecycle write never undoes a heartbeat that landed after it was decided.
WITH s AS (
    UPDATE sessions SET
        agent_type = %(agent_type)s, user_id = %(user_id)s, state = %(state)s,
        created_at = %(created_at)s, state_since = %(state_since)s, context = %(context)s::json,
        metadata = %(metadata)s::json, parent_session_id = %(parent_session_id)s,
        version = %(version)s, owner = %(owner)s, epoch = %(epoch)s, recoveries = %(recoveries)s,
        ended_at = %(ended_at)s, failure_error = %(failure_error)s,
        failure_details = %(failure_details)s::json, failure_final = %(failure_final)s,
        last_heartbeat = CASE WHEN %(renews_lease)s THEN %(last_heartbeat)s ELSE last_heartbeat END,
        lease_expires_at = CASE WHEN %(renews_lease)s THEN %(lease_expires_at)s ELSE lease_expires_at END,
        suspect_at = CASE WHEN %(renews_lease)s THEN %(suspect_at)s ELSE suspect_at END,
        phase = CASE WHEN %(renews_lease)s THEN %(phase)s ELSE phase END,
        heartbeat_timeout = CASE WHEN %(renews_lease)s THEN %(heartbeat_timeout)s ELSE heartbeat_timeout END,
        suspect_after = CASE WHEN %(renews_lease)s THEN %(suspect_after)s ELSE suspect_after END,
        last_seq = last_seq + CASE WHEN %(cp_name)s::text IS NULL THEN 0 ELSE 1 END
    WHERE session_id = %(session_id)s AND version = %(expected_version)s
      AND (%(expected_last_seq)s::bigint IS NULL OR last_seq = %(expected_last_seq)s::bigint)
    RETURNING *
), c AS (
    INSERT INTO checkpoints (session_id, seq, name, created_at, data)
    SELECT s.session_id, s.last_seq, %(cp_name)s, %(cp_time)s, %(cp_data)s::json
    FROM s WHERE %(cp_name)s::text IS NOT NULL
)
SELECT * FROM s

-- name: heartbeat
-- A batch of beats (each session at most once) in one statement. Mirrors
-- tether.lifecycle.heartbeat_accepted and tether.lifecycle.deadlines: suspect after the soft
-- deadline (or the announced silence), expiry a grace of timeout - suspect_after later, in whole
-- microseconds as floor(x * 1e6 + 0.5) in the same double arithmetic and order.
WITH clock AS (SELECT COALESCE(%(now)s::timestamptz, now()) AS now),
beat AS (
    SELECT * FROM unnest(%(session_ids)s::text[], %(epochs)s::bigint[], %(phases)s::text[],
                         %(silences)s::float8[]) AS b (session_id, epoch, phase, silence)
)
UPDATE sessions s SET
    last_heartbeat = clock.now,
    phase = beat.phase,
    suspect_at = clock.now
        + floor(COALESCE(beat.silence, s.suspect_after) * 1000000 + 0.5::float8) * interval '1 microsecond',
    lease_expires_at = clock.now
        + floor((COALESCE(beat.silence, s.suspect_after) + (s.heartbeat_timeout - s.suspect_after)) * 1000000
                + 0.5::float8) * interval '1 microsecond'
FROM beat, clock
WHERE s.session_id = beat.session_id
  AND (beat.epoch IS NULL OR beat.epoch = s.epoch)
  AND CASE s.state WHEN 'paused' THEN true
                   WHEN 'active' THEN s.lease_expires_at IS NULL OR clock.now < s.lease_expires_at
                   ELSE false END
RETURNING s.session_id

-- Deleting sessions: first lock the rows to delete (an append updates its session's row, so it
-- waits for that lock and then finds the row gone), then, in the same transaction, remove those
-- sessions with all their checkpoints (delete_sessions). Checkpoints have no foreign key (0003).

-- name: lock_session
SELECT session_id FROM sessions WHERE session_id = %(session_id)s FOR UPDATE

-- name: lock_purgeable
SELECT session_id FROM sessions
WHERE state = ANY(%(states)s::text[]) AND COALESCE(ended_at, last_heartbeat) < %(before)s
FOR UPDATE

-- name: retirable
-- Sessions a retention rule covers (tether.stores.memory.covers), oldest first along the state
-- index: what a retention pass would remove (a dry run).
SELECT s.session_id FROM sessions AS s
WHERE s.state = %(state)s AND s.ended_at < %(before)s
  AND (s.agent_type = %(agent_type)s::text
       OR (%(agent_type)s::text IS NULL AND NOT (s.agent_type = ANY(%(other_types)s::text[]))))
  AND NOT EXISTS (
      SELECT 1 FROM sessions AS c
      WHERE c.parent_session_id = s.session_id AND c.state IN ('active', 'paused'))
ORDER BY s.created_at, s.session_id
LIMIT %(limit)s

-- name: lock_retirable
-- retirable, locked for deletion. SKIP LOCKED: rows another supervisor is removing right now are
-- its batch, not this one's, so concurrent passes never wait on each other nor count a session twice.
{retirable}
FOR UPDATE OF s SKIP LOCKED

-- name: lock_fork_source
-- A fork reads its source's history under a share lock, so a concurrent delete waits for the copy.
SELECT session_id FROM sessions WHERE session_id = %(source_id)s FOR SHARE

-- name: fork_checkpoints
-- A fork's history: the source's first checkpoints, copied row for row inside the database, and
-- the new session's last_seq set to the last one copied.
WITH copied AS (
    INSERT INTO checkpoints (session_id, seq, name, created_at, data)
    SELECT %(session_id)s, seq, name, created_at, data FROM checkpoints
    WHERE session_id = %(source_id)s AND seq <= %(at_seq)s
    RETURNING seq
)
UPDATE sessions SET last_seq = (SELECT COALESCE(max(seq), 0) FROM copied)
WHERE session_id = %(session_id)s
RETURNING *

-- name: lock_user_sessions
SELECT session_id FROM sessions WHERE user_id = %(user_id)s FOR UPDATE

-- name: delete_sessions
WITH gone AS (
    DELETE FROM sessions WHERE session_id = ANY(%(session_ids)s::text[]) RETURNING session_id
), checkpoints_gone AS (
    DELETE FROM checkpoints WHERE session_id IN (SELECT session_id FROM gone)
)
SELECT count(*) AS removed FROM gone

-- name: migration_lock
-- One migrator per schema at a time; the others wait, then find nothing left to do.
SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.tether_schema'))

-- name: create_version_table
CREATE TABLE IF NOT EXISTS tether_schema (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: schema_version
SELECT COALESCE(max(version), 0) AS version FROM tether_schema

-- name: record_migration
INSERT INTO tether_schema (version, name) VALUES (%(version)s, %(name)s)
