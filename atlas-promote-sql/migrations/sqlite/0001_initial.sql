-- The store's tables (DESIGN §8). Times used in comparisons are microseconds
-- since the Unix epoch (`*_us`); times handed back exactly are RFC 3339 text.

-- Named values: the audit head (`audit_head_seq`, `audit_head_hash`) and the
-- last verified checkpoint (`checkpoint_seq`, `checkpoint_hash`, `checkpoint_commit`),
-- and the seqs of audit breaks an operator accepted (`accepted_breaks`).
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (name, value) VALUES
    ('audit_head_seq', '0'),
    ('audit_head_hash', '0000000000000000000000000000000000000000000000000000000000000000'),
    ('checkpoint_seq', '0'),
    ('checkpoint_hash', '0000000000000000000000000000000000000000000000000000000000000000'),
    ('checkpoint_commit', '0'),
    ('accepted_breaks', '');

-- One row per key ever written. `value` is NULL once the key is deleted: the
-- row stays so the key's versions keep counting up.
CREATE TABLE documents (
    key     TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    value   TEXT
);

-- The audit log: one hash chain, numbered from 1 without gaps.
CREATE TABLE audit (
    seq     INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
);

-- Every commit that wrote documents: the keys and the versions it left, as a
-- JSON list of [key, version]. Opening the store checks the documents against
-- the commits since the checkpoint, so that state older than the log is
-- reported as lost rather than served.
CREATE TABLE commits (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    audit_seq INTEGER NOT NULL,
    writes    TEXT NOT NULL
);

-- Which instance drives which promotion until when; `token` grows by one
-- each time a lease changes hands.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_us INTEGER NOT NULL,
    token    INTEGER NOT NULL
);

-- Webhook deliveries seen, pruned after a retention time.
CREATE TABLE deliveries (
    source TEXT NOT NULL,
    id     TEXT NOT NULL,
    at_us  INTEGER NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX deliveries_by_time ON deliveries (at_us);

-- Notifications written with the commit that caused them (DESIGN §10).
CREATE TABLE outbox (
    pos             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    created_us      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_us INTEGER NOT NULL,
    last_error      TEXT,
    delivered       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (delivered, next_attempt_us, created_us, pos);
