-- Sessions and their append-only checkpoints. Times are integer microseconds since the Unix
-- epoch, UTC; JSON documents are TEXT.

CREATE TABLE sessions (
    session_id        TEXT    NOT NULL PRIMARY KEY,
    agent_type        TEXT    NOT NULL,
    user_id           TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    created_us        INTEGER NOT NULL,
    last_heartbeat_us INTEGER NOT NULL,
    state_since_us    INTEGER,
    context           TEXT    NOT NULL,
    metadata          TEXT    NOT NULL,
    parent_session_id TEXT,
    version           INTEGER NOT NULL,
    owner             TEXT,
    epoch             INTEGER NOT NULL,
    heartbeat_timeout REAL    NOT NULL,
    suspect_after     REAL    NOT NULL,
    lease_us          INTEGER,
    suspect_us        INTEGER,
    phase             TEXT,
    recoveries        INTEGER NOT NULL,
    ended_us          INTEGER,
    failure_error     TEXT,
    failure_details   TEXT,
    failure_final     INTEGER
);

-- Listings walk one of these backwards: newest first by (created_us, session_id).
CREATE INDEX sessions_by_created ON sessions (created_us, session_id);
CREATE INDEX sessions_by_user ON sessions (user_id, created_us, session_id);
CREATE INDEX sessions_by_type ON sessions (agent_type, created_us, session_id);
CREATE INDEX sessions_by_state ON sessions (state, created_us, session_id);
CREATE INDEX sessions_by_parent ON sessions (parent_session_id, created_us, session_id)
    WHERE parent_session_id IS NOT NULL;
-- Liveness: expired leases, suspects, silent sessions, recoverable failures.
CREATE INDEX sessions_by_lease ON sessions (state, lease_us);
CREATE INDEX sessions_by_suspect ON sessions (state, suspect_us);
CREATE INDEX sessions_by_heartbeat ON sessions (state, last_heartbeat_us);
CREATE INDEX sessions_recoverable ON sessions (state_since_us)
    WHERE state = 'failed' AND failure_final = 0;

-- A rowid table: a ~1 KB checkpoint fits in its leaf page (in a WITHOUT ROWID table it would
-- spill to an overflow page, one more page to sync per append). The primary key index gives
-- the next seq (MAX) and the last checkpoint; the name index gives the last one by name.
CREATE TABLE checkpoints (
    session_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    ts_us      INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX checkpoints_by_name ON checkpoints (session_id, name, seq);
