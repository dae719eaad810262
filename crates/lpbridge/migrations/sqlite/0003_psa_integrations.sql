-- PSA integrations (ConnectWise Manage, Datto Autotask) for the MSP import. `settings` is the
-- non-secret JSON (site, company id, public key, client id; or username, discovery URL); the
-- secrets (JSON) are sealed with the master key, bound to `kind` and `id`.
-- Keep in step with ../postgres/0003_psa_integrations.sql.
CREATE TABLE psa_integrations (
    id                 TEXT PRIMARY KEY NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('connectwise', 'autotask')),
    settings           TEXT NOT NULL,
    secrets_ciphertext BLOB NOT NULL,
    secrets_nonce      BLOB NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
