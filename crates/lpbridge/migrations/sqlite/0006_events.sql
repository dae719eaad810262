-- Event triggers (issue 7). Keep in step with the other dialect's 0006_events.sql.

-- Whether `lpbridge serve` runs an event watcher for the connection.
ALTER TABLE connections ADD COLUMN events_watch BOOLEAN NOT NULL DEFAULT FALSE;

-- The outbox and the source of `GET /events`: every collected event once per connection.
-- `seq` orders a connection's rows by commit (its commits are serialised: one writer on SQLite,
-- a per-connection transaction lock on PostgreSQL), so a sink's position is the last `seq` it has. `event_id` is
-- lpbridge's derived id (`<content hash>-<occurrence>`); `username` and `action` are
-- lower-cased for filters; `record` is the EventRecord as JSON.
CREATE TABLE events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    local_time    INTEGER NOT NULL,
    time_utc      INTEGER NOT NULL,
    category      TEXT NOT NULL,
    username      TEXT NOT NULL,
    action        TEXT NOT NULL,
    record        TEXT NOT NULL,
    collected_at  INTEGER NOT NULL
);
-- `local_time` (LastPass's `Time`, µs as if UTC) is determined by the id (its hash covers the
-- `Time` text), so this is uniqueness per (connection, id); led by the time, so the inserts of
-- a page land together in the index instead of at random places.
CREATE UNIQUE INDEX events_event_id ON events (connection_id, local_time, event_id);
CREATE INDEX events_seq ON events (connection_id, seq);
CREATE INDEX events_time ON events (connection_id, time_utc, seq);

-- Watcher cursors: per connection, `live` (follows the present) and one per backfill
-- (`backfill:<hash of its range and filters>`), each with its de-duplication state
-- (DedupState JSON) and options; written in the same transaction as the events of each page.
CREATE TABLE event_watchers (
    connection_id TEXT NOT NULL,
    cursor_name   TEXT NOT NULL,
    state         TEXT NOT NULL,
    options       TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (connection_id, cursor_name)
);

-- The last `seq` each sink of a connection has delivered.
CREATE TABLE event_sink_positions (
    connection_id TEXT NOT NULL,
    sink          TEXT NOT NULL,
    position      INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (connection_id, sink)
);

-- Batches a webhook gave up on: the records as delivered (`payload`, a JSON array), the
-- `seq` range, the last error; `replayed_at` once `lpbridge events replay` (or
-- `POST /webhooks/{id}/replay`) delivered them. `webhook_id`: the subscription, if any.
CREATE TABLE event_dead_letters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id TEXT NOT NULL,
    sink          TEXT NOT NULL,
    webhook_id    TEXT,
    first_seq     INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL,
    event_count   INTEGER NOT NULL,
    payload       TEXT NOT NULL,
    error         TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    replayed_at   INTEGER
);
CREATE INDEX event_dead_letters_sink ON event_dead_letters (connection_id, sink, id);
CREATE INDEX event_dead_letters_webhook ON event_dead_letters (webhook_id, id);

-- Webhook subscriptions (`/webhooks`): the HMAC secret sealed with the master key, bound to
-- the row's id; `categories` a JSON array of category names, NULL for every event.
CREATE TABLE webhooks (
    id                TEXT PRIMARY KEY NOT NULL,
    connection_id     TEXT NOT NULL,
    url               TEXT NOT NULL,
    secret_ciphertext BLOB NOT NULL,
    secret_nonce      BLOB NOT NULL,
    categories        TEXT,
    enabled           BOOLEAN NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX webhooks_connection ON webhooks (connection_id, id);
