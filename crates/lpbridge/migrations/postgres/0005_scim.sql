-- SCIM 2.0 (issue 6). Keep in step with the other dialect's 0005_scim.sql.

-- An API key's purpose: 'api' (the REST API) or 'scim' (a SCIM bearer token for one connection,
-- refused by the REST API; the REST API's keys are refused by /scim/v2).
ALTER TABLE api_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'api';

-- SCIM users: lpbridge's stable id for a LastPass user, and what SCIM carries that LastPass
-- cannot hold. `user_name` is the SCIM userName, lower-cased (usually the e-mail; a client may
-- use another login name, and then the LastPass e-mail comes from `emails`). `username` is the
-- LastPass username, lower-cased; `pending_username` a requested
-- e-mail change LastPass completes at the user's next login. `fullname` is the LastPass full
-- name as last written or seen, so a change made outside SCIM is noticed. `attributes` is the
-- stored part of the resource (JSON). `deleted_at`: deleted through SCIM while LastPass keeps
-- the (deactivated) account; such a user is hidden until it is created again.
CREATE TABLE scim_users (
    connection_id    TEXT NOT NULL,
    id               TEXT NOT NULL,
    user_name        TEXT NOT NULL,
    username         TEXT NOT NULL,
    pending_username TEXT,
    external_id      TEXT,
    fullname         TEXT,
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    attributes       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    deleted_at       BIGINT,
    PRIMARY KEY (connection_id, id)
);
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (connection_id, user_name);
CREATE UNIQUE INDEX scim_users_username ON scim_users (connection_id, username);
CREATE INDEX scim_users_external_id ON scim_users (connection_id, external_id);

-- SCIM groups: a stable id for a LastPass group name (`name_key` = lower-cased display name).
-- A group without members exists only here: LastPass has no command that creates a group.
CREATE TABLE scim_groups (
    connection_id TEXT NOT NULL,
    id            TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    name_key      TEXT NOT NULL,
    external_id   TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (connection_id, id)
);
CREATE UNIQUE INDEX scim_groups_name ON scim_groups (connection_id, name_key);
