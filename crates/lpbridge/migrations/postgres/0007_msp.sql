-- MSP import (issue 9): the LastPass REST API credentials of the MSP account, PSA company and
-- contact mappings, import runs and the per-step journal. Keep in step with
-- ../sqlite/0007_msp.sql.

-- The MSP account's LastPass REST API settings (one row, `default`): the API key sealed with the
-- master key, bound to the row's name.
CREATE TABLE msp_settings (
    name           TEXT PRIMARY KEY NOT NULL,
    base_url       TEXT NOT NULL,
    key_ciphertext BYTEA NOT NULL,
    key_nonce      BYTEA NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- PSA company → managed company, per PSA integration. A managed company is mapped at most once
-- per integration (two PSA companies never share one).
CREATE TABLE msp_company_maps (
    integration_id       TEXT NOT NULL,
    psa_company_id       TEXT NOT NULL,
    psa_company_name     TEXT NOT NULL,
    managed_company_id   TEXT NOT NULL,
    managed_company_name TEXT NOT NULL,
    last_import_at       BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    PRIMARY KEY (integration_id, psa_company_id)
);
CREATE UNIQUE INDEX msp_company_maps_managed ON msp_company_maps (integration_id, managed_company_id);

-- A contact e-mail (lower-cased) of a PSA company → the LastPass user of its managed company.
-- `selected`: granted access at the last import (preselected next time).
CREATE TABLE msp_contact_maps (
    integration_id     TEXT NOT NULL,
    psa_company_id     TEXT NOT NULL,
    email              TEXT NOT NULL,
    psa_contact_id     TEXT NOT NULL,
    managed_company_id TEXT NOT NULL,
    lastpass_user_id   TEXT NOT NULL,
    selected           BOOLEAN NOT NULL,
    last_import_at     BIGINT NOT NULL,
    PRIMARY KEY (integration_id, psa_company_id, email)
);

-- One row per `apply`: its plan, owner, progress, counts (JSON) and errors (JSON array).
-- `status`: running, succeeded, partial, failed (a run whose process died stays `running`
-- until its lease expires; readers show it as interrupted).
CREATE TABLE msp_import_runs (
    id             TEXT PRIMARY KEY NOT NULL,
    integration_id TEXT NOT NULL,
    plan_id        TEXT NOT NULL,
    plan_hash      TEXT NOT NULL,
    owner          TEXT NOT NULL,
    status         TEXT NOT NULL,
    total_steps    BIGINT NOT NULL,
    done_steps     BIGINT NOT NULL,
    counts         TEXT NOT NULL,
    errors         TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    finished_at    BIGINT,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX msp_import_runs_integration ON msp_import_runs (integration_id, started_at);

-- The write-ahead journal of apply: one row per step (`company:<psa id>`,
-- `user:<psa id>:<email>`), written before each LastPass write (`intent`), after the 202
-- (`requested`, with the request to poll) and when done (`done`, with the created id), so a
-- re-run after a crash resumes instead of creating twice.
CREATE TABLE msp_journal (
    integration_id TEXT NOT NULL,
    step           TEXT NOT NULL,
    plan_id        TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    state          TEXT NOT NULL,
    request_id     TEXT,
    request_url    TEXT,
    result_id      TEXT,
    intent_at      BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (integration_id, step)
);

-- The service's import wizards: the plan being edited (JSON) and its last run.
CREATE TABLE msp_wizards (
    id             TEXT PRIMARY KEY NOT NULL,
    integration_id TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    plan           TEXT NOT NULL,
    run_id         TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
