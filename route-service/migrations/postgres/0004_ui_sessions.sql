-- Dashboard sessions (issue 21). The cookie's token is stored only as its SHA-256, so a copy
-- of the database signs no one in. A session ends at `expires_at`, at sign-out, or when its
-- principal's API key changes or is removed: it is valid only while `key_hash` is the
-- principal's current one.
CREATE TABLE ui_sessions (
    token_hash TEXT PRIMARY KEY,
    principal TEXT NOT NULL REFERENCES principals(id),
    key_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ui_sessions_expiry ON ui_sessions (expires_at);
