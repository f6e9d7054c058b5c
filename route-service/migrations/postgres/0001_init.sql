-- Times are Unix milliseconds (BIGINT): one representation for SQLite and PostgreSQL through
-- sqlx's Any driver, which has no portable timestamp type.

-- Every API principal; ids are unique across roles, so `ApiKey <id> <key>` is unambiguous.
CREATE TABLE principals (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE stations (
    id TEXT PRIMARY KEY REFERENCES principals(id),
    registry TEXT NOT NULL,
    namespace TEXT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    approval TEXT NOT NULL,
    last_seen BIGINT,
    removed BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE creators (
    id TEXT PRIMARY KEY REFERENCES principals(id),
    registry TEXT NOT NULL,
    namespace TEXT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL
);

CREATE TABLE trains (
    id TEXT PRIMARY KEY,
    creator TEXT NOT NULL REFERENCES creators(id),
    format TEXT NOT NULL,
    route TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every manifest digest the train had, in order: a push of one of these is an older state.
CREATE TABLE train_states (
    train_id TEXT NOT NULL REFERENCES trains(id),
    seq BIGINT NOT NULL,
    digest TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (train_id, seq),
    UNIQUE (train_id, digest)
);

-- One per station stop plus the move to the creator (station NULL). The lease columns make
-- every move claimable by one worker at a time and reclaimable after a crash.
CREATE TABLE hops (
    train_id TEXT NOT NULL REFERENCES trains(id),
    idx BIGINT NOT NULL,
    station TEXT,
    state TEXT NOT NULL,
    source TEXT,
    target TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    lease_owner TEXT,
    lease_until BIGINT,
    deadline BIGINT,
    delivered_at BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (train_id, idx)
);
CREATE INDEX hops_by_state ON hops (state, next_attempt);
CREATE INDEX hops_by_station ON hops (station, state);

CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    train_id TEXT,
    station TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX events_by_train ON events (train_id, id);
CREATE INDEX events_by_station ON events (station, id);

-- Registry notifications seen, keyed as the registry identifies them, so a redelivery changes
-- nothing.
CREATE TABLE notifications (
    registry TEXT NOT NULL,
    event_key TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (registry, event_key)
);
