-- Web console (issue 10). Keep in step with the other dialect's 0008_console.sql.

-- Console users: people who log in to the console with a name and a password (the other way
-- in is an API key). `password_hash` is an Argon2id PHC string; the password is never stored.
CREATE TABLE console_users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    read_only     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER
);

-- Console sessions, kept in the store so that every replica serving the console knows them.
-- `id_hash` is the SHA-256 of the cookie's secret (the cookie itself is never stored).
-- `principal_kind` is 'key' (logged in with an API key: `principal_id` is the key id) or
-- 'user' (a console user: `principal_id` is the username). `csrf` is the token every form and
-- htmx request of the session must carry. Sessions end at `expires_at`, which each request
-- moves forward (sliding, at most once a minute per session).
CREATE TABLE console_sessions (
    id_hash        TEXT PRIMARY KEY,
    principal_kind TEXT NOT NULL,
    principal_id   TEXT NOT NULL,
    csrf           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX console_sessions_principal ON console_sessions (principal_kind, principal_id);
