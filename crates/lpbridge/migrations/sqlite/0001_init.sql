-- lpbridge store, first schema (SQLite). Timestamps: INTEGER microseconds since the Unix epoch (UTC).
-- Keep in step with ../postgres/0001_init.sql. Never edit once released: add 000N_<name>.sql.

-- Internal singletons (the master key check) and one-shot claims (`claim:<name>`).
CREATE TABLE meta (
    name       TEXT PRIMARY KEY NOT NULL,
    value      TEXT,
    created_at INTEGER NOT NULL
);

-- LastPass connections; the provisioning hash is sealed with the master key, bound to `id`.
CREATE TABLE connections (
    id                  TEXT PRIMARY KEY NOT NULL,
    cid                 INTEGER NOT NULL,
    endpoint            TEXT NOT NULL,
    provhash_ciphertext BLOB NOT NULL,
    provhash_nonce      BLOB NOT NULL,
    time_zone           TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

-- API keys: `lpb_<id>_<secret>`; only the SHA-256 of the secret part is stored.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    read_only    BOOLEAN NOT NULL,
    hash         BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Leases: one row per leased resource; expiry on the database clock.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY NOT NULL,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
