-- Housekeeping and recovery without scans: `purge` selects ended sessions by end time, and
-- `claimable` finds recoverable failures (every supervisor sweep asks for them).

CREATE INDEX sessions_ended ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX sessions_recoverable ON sessions ((COALESCE(lease_expires_at, state_since, created_at)), session_id)
    WHERE state = 'failed' AND failure_error IS NOT NULL AND NOT failure_final;
