-- lpbridge store, first schema (PostgreSQL). Timestamps: BIGINT microseconds since the Unix epoch (UTC).
-- Keep in step with ../sqlite/0001_init.sql. Never edit once released: add 000N_<name>.sql.

-- Internal singletons (the master key check) and one-shot claims (`claim:<name>`).
CREATE TABLE meta (
    name       TEXT PRIMARY KEY,
    value      TEXT,
    created_at BIGINT NOT NULL
);

-- LastPass connections; the provisioning hash is sealed with the master key, bound to `id`.
CREATE TABLE connections (
    id                  TEXT PRIMARY KEY,
    cid                 BIGINT NOT NULL,
    endpoint            TEXT NOT NULL,
    provhash_ciphertext BYTEA NOT NULL,
    provhash_nonce      BYTEA NOT NULL,
    time_zone           TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

-- API keys: `lpb_<id>_<secret>`; only the SHA-256 of the secret part is stored.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    read_only    BOOLEAN NOT NULL,
    hash         BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

-- Leases: one row per leased resource; expiry on the database clock.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
