-- Sessions and their checkpoints. Ids sort in "C" collation so keyset pages order exactly as
-- every other store (code point order), whatever the database's default collation is.

CREATE TABLE sessions (
    session_id        text COLLATE "C" PRIMARY KEY,
    agent_type        text COLLATE "C" NOT NULL,
    user_id           text COLLATE "C" NOT NULL,
    state             text NOT NULL CHECK (state IN ('active', 'paused', 'completed', 'failed')),
    created_at        timestamptz NOT NULL,
    last_heartbeat    timestamptz NOT NULL,
    state_since       timestamptz,
    context           jsonb NOT NULL,
    metadata          jsonb NOT NULL,
    parent_session_id text COLLATE "C",
    version           bigint NOT NULL,
    owner             text,
    epoch             bigint NOT NULL,
    heartbeat_timeout double precision NOT NULL,
    suspect_after     double precision NOT NULL,
    lease_expires_at  timestamptz,
    suspect_at        timestamptz,
    phase             text,
    recoveries        integer NOT NULL,
    ended_at          timestamptz,
    failure_error     text,
    failure_details   jsonb,
    failure_final     boolean,
    -- jsonb cannot hold the NUL character, which JSON (and the seed format) allow. A JSON column
    -- whose text has one is stored here exactly, by column name, and as a lookalike in jsonb.
    json_exact        json,
    -- Seq allocation: an append increments this under the row lock, so concurrent appenders
    -- (in any process) serialise on the session and never duplicate or skip a seq.
    last_seq          bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 80);  -- room for HOT updates: appends rewrite the row without touching indexes

CREATE TABLE checkpoints (
    session_id text COLLATE "C" NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    name       text COLLATE "C" NOT NULL,
    created_at timestamptz NOT NULL,
    data       jsonb NOT NULL,
    data_exact json,  -- the exact text when `data` has a NUL character (see sessions.json_exact)
    PRIMARY KEY (session_id, seq)
);

-- The last checkpoint of a given name is one index probe at any history length.
CREATE INDEX checkpoints_by_name ON checkpoints (session_id, name, seq DESC);

-- One index per listing the API offers, each ending in the keyset order (newest first).
CREATE INDEX sessions_newest ON sessions (created_at DESC, session_id DESC);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at DESC, session_id DESC);
CREATE INDEX sessions_by_agent_type ON sessions (agent_type, created_at DESC, session_id DESC);
CREATE INDEX sessions_by_state ON sessions (state, created_at DESC, session_id DESC);
CREATE INDEX sessions_by_parent ON sessions (parent_session_id, created_at DESC, session_id DESC)
    WHERE parent_session_id IS NOT NULL;

-- Liveness: what the supervisor and the stale-session queries ask for.
CREATE INDEX sessions_lease_expiry ON sessions (lease_expires_at) WHERE state = 'active';
CREATE INDEX sessions_suspect ON sessions (suspect_at) WHERE state = 'active';
CREATE INDEX sessions_last_heartbeat ON sessions (last_heartbeat) WHERE state IN ('active', 'paused');
