-- API keys of `tether serve`: the secret only as a SHA-256, looked up by key id.
CREATE TABLE api_keys (
    key_id      text COLLATE "C" PRIMARY KEY,
    user_id     text COLLATE "C" NOT NULL,
    admin       boolean NOT NULL,
    secret_hash text NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
