-- API keys of `tether serve`: the secret only as a SHA-256, looked up by key id.
CREATE TABLE api_keys (
    key_id      TEXT    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL,
    admin       INTEGER NOT NULL,
    secret_hash TEXT    NOT NULL,
    created_us  INTEGER NOT NULL,
    revoked_us  INTEGER
);
