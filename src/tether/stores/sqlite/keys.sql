-- API keys and session counts, for `tether serve` (tables: migrations/0002_api_keys.sql).

-- name: insert_api_key
INSERT INTO api_keys (key_id, user_id, admin, secret_hash, created_us, revoked_us)
VALUES (?, ?, ?, ?, ?, ?);

-- name: get_api_key
SELECT key_id, user_id, admin, secret_hash, created_us, revoked_us FROM api_keys WHERE key_id = ?;

-- name: list_api_keys
SELECT key_id, user_id, admin, secret_hash, created_us, revoked_us FROM api_keys
ORDER BY created_us, key_id;

-- name: revoke_api_key
UPDATE api_keys SET revoked_us = ? WHERE key_id = ? AND revoked_us IS NULL;

-- name: count_sessions
-- Liveness as Session.liveness computes it: dead once the lease expired, suspect past the soft
-- deadline, for live states only.
SELECT state, agent_type,
       CASE
           WHEN state NOT IN ('active', 'paused') THEN NULL
           WHEN lease_us IS NOT NULL AND lease_us <= :now_us THEN 'dead'
           WHEN suspect_us IS NOT NULL AND suspect_us <= :now_us THEN 'suspect'
           ELSE 'healthy'
       END AS liveness,
       count(*), min(last_heartbeat_us)
FROM sessions
WHERE :user_id IS NULL OR user_id = :user_id
GROUP BY 1, 2, 3;
