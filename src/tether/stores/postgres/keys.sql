-- API keys and session counts, for `tether serve` (tables: migrations/0005_api_keys.sql).

-- name: insert_api_key
INSERT INTO api_keys (key_id, user_id, admin, secret_hash, created_at)
VALUES (%(key_id)s, %(user_id)s, %(admin)s, %(secret_hash)s, %(created_at)s)
ON CONFLICT (key_id) DO NOTHING
RETURNING key_id;

-- name: get_api_key
SELECT key_id, user_id, admin, secret_hash, created_at, revoked_at FROM api_keys WHERE key_id = %(key_id)s;

-- name: list_api_keys
SELECT key_id, user_id, admin, secret_hash, created_at, revoked_at FROM api_keys ORDER BY created_at, key_id;

-- name: revoke_api_key
UPDATE api_keys SET revoked_at = %(at)s WHERE key_id = %(key_id)s AND revoked_at IS NULL RETURNING key_id;

-- name: count_sessions
-- Liveness as Session.liveness computes it: dead once the lease expired, suspect past the soft
-- deadline, for live states only.
SELECT state, agent_type,
       CASE
           WHEN state NOT IN ('active', 'paused') THEN NULL
           WHEN lease_expires_at IS NOT NULL AND lease_expires_at <= %(now)s THEN 'dead'
           WHEN suspect_at IS NOT NULL AND suspect_at <= %(now)s THEN 'suspect'
           ELSE 'healthy'
       END AS liveness,
       count(*), min(last_heartbeat)
FROM sessions
WHERE %(user_id)s::text IS NULL OR user_id = %(user_id)s
GROUP BY 1, 2, 3;
