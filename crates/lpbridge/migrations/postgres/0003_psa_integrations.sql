-- PSA integrations (ConnectWise Manage, Datto Autotask) for the MSP import. `settings` is the
-- non-secret JSON (site, company id, public key, client id; or username, discovery URL); the
-- secrets (JSON) are sealed with the master key, bound to `kind` and `id`.
-- Keep in step with ../sqlite/0003_psa_integrations.sql.
CREATE TABLE psa_integrations (
    id                 TEXT PRIMARY KEY NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('connectwise', 'autotask')),
    settings           TEXT NOT NULL,
    secrets_ciphertext BYTEA NOT NULL,
    secrets_nonce      BYTEA NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
