//! PSA integrations: one row per ConnectWise Manage or Datto Autotask tenant that the MSP import
//! reads. The non-secret settings are JSON in the clear; the secrets (the ConnectWise private
//! key; the Autotask secret and integration code) are one JSON object sealed with the master key
//! and bound to the row's kind and id (a ciphertext copied into another row does not decrypt).

use chrono::{DateTime, Utc};
use lp_types::{ConnectionId, InvalidValue, Secret};
use psa::PsaKind;
use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, from_micros, is_unique_violation, now_micros, with_pool};
use crate::crypto::Sealed;

/// ConnectWise Manage settings (none of them secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectWiseSettings {
    /// What the user types: `na.myconnectwise.net`, `https://cw.example.com`, or the sandbox's
    /// `http://127.0.0.1:PORT/cw`.
    pub site: String,
    /// The login company id.
    pub company_id: String,
    /// The API member's public key.
    pub public_key: String,
    /// The integration's registered `clientId` GUID.
    pub client_id: String,
}

/// Datto Autotask settings (none of them secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutotaskSettings {
    /// The API user's username (e-mail-like).
    pub username: String,
    /// Where `zoneInformation` lives; `None`: Autotask's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
}

/// The non-secret half of an integration, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PsaSettings {
    ConnectWise(ConnectWiseSettings),
    Autotask(AutotaskSettings),
}

impl PsaSettings {
    pub fn kind(&self) -> PsaKind {
        match self {
            PsaSettings::ConnectWise(_) => PsaKind::ConnectWise,
            PsaSettings::Autotask(_) => PsaKind::Autotask,
        }
    }
}

/// The secret half of an integration, by kind. `Debug` shows `***` for every value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsaSecrets {
    ConnectWise {
        private_key: Secret,
    },
    Autotask {
        secret: Secret,
        integration_code: Secret,
    },
}

impl PsaSecrets {
    pub fn kind(&self) -> PsaKind {
        match self {
            PsaSecrets::ConnectWise { .. } => PsaKind::ConnectWise,
            PsaSecrets::Autotask { .. } => PsaKind::Autotask,
        }
    }
}

/// An integration to create.
#[derive(Debug, Clone)]
pub struct NewPsaIntegration {
    pub id: ConnectionId,
    pub settings: PsaSettings,
    pub secrets: PsaSecrets,
}

/// A stored integration without its secrets (listings, API responses).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PsaIntegrationSummary {
    pub id: ConnectionId,
    pub kind: PsaKind,
    pub settings: PsaSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored integration with its decrypted secrets (redacting [`Secret`]s).
#[derive(Debug, Clone)]
pub struct PsaIntegration {
    pub id: ConnectionId,
    pub settings: PsaSettings,
    pub secrets: PsaSecrets,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PsaIntegration {
    pub fn kind(&self) -> PsaKind {
        self.settings.kind()
    }

    pub fn summary(&self) -> PsaIntegrationSummary {
        PsaIntegrationSummary {
            id: self.id.clone(),
            kind: self.kind(),
            settings: self.settings.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The client for this integration (no call is made; empty credential fields are refused
    /// with [`psa::ErrorKind::CredentialsMissing`]).
    pub fn directory(&self) -> psa::Result<Box<dyn psa::PsaDirectory>> {
        directory(&self.settings, &self.secrets, &Tuning::default())
    }
}

/// Optional client tuning (the CLI's `--timeout` and `--attempts`).
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    pub timeout: Option<std::time::Duration>,
    pub attempts: Option<u32>,
}

/// Builds the PSA client for `settings` and `secrets` (of the same kind). No call is made.
pub fn directory(
    settings: &PsaSettings,
    secrets: &PsaSecrets,
    tuning: &Tuning,
) -> psa::Result<Box<dyn psa::PsaDirectory>> {
    match (settings, secrets) {
        (PsaSettings::ConnectWise(s), PsaSecrets::ConnectWise { private_key }) => {
            let mut c = psa::connectwise::ConnectWiseConfig::new(
                s.site.clone(),
                s.company_id.clone(),
                s.public_key.clone(),
                private_key.clone(),
                s.client_id.clone(),
            );
            if let Some(t) = tuning.timeout {
                c.timeout = t;
            }
            if let Some(n) = tuning.attempts {
                c.retry.max_attempts = n.max(1);
            }
            Ok(Box::new(psa::connectwise::ConnectWiseClient::new(c)?))
        }
        (
            PsaSettings::Autotask(s),
            PsaSecrets::Autotask {
                secret,
                integration_code,
            },
        ) => {
            let mut c = psa::autotask::AutotaskConfig::new(
                s.username.clone(),
                secret.clone(),
                integration_code.clone(),
            );
            if let Some(u) = &s.discovery_url {
                c = c.with_discovery_url(u.clone());
            }
            if let Some(t) = tuning.timeout {
                c.timeout = t;
            }
            if let Some(n) = tuning.attempts {
                c.retry.attempts = n.max(1);
            }
            Ok(Box::new(psa::autotask::AutotaskClient::new(c)?))
        }
        _ => Err(psa::Error::new(
            psa::ErrorKind::Unknown,
            format!(
                "the settings are for {} but the secrets for {}",
                settings.kind(),
                secrets.kind()
            ),
        )),
    }
}

/// PSA integration ids follow the connection id rules: 1–64 ASCII letters, digits, `-`, `_` or
/// `.`, starting with a letter or digit.
pub fn validate_psa_id(id: &ConnectionId) -> Result<(), InvalidValue> {
    super::validate_connection_id(id)
        .map_err(|e| InvalidValue::new("psa integration", e.value, e.reason))
}

fn validate(new: &NewPsaIntegration) -> Result<(), InvalidValue> {
    validate_psa_id(&new.id)?;
    if new.settings.kind() != new.secrets.kind() {
        return Err(InvalidValue::new(
            "psa kind",
            new.secrets.kind().as_str(),
            format!("the settings are for {}", new.settings.kind()),
        ));
    }
    let required = |field: &'static str, v: &str| {
        if v.trim().is_empty() {
            Err(InvalidValue::new(field, v, "must not be empty"))
        } else {
            Ok(())
        }
    };
    match &new.settings {
        PsaSettings::ConnectWise(s) => {
            required("site", &s.site)?;
            required("company_id", &s.company_id)?;
            required("public_key", &s.public_key)?;
            required("client_id", &s.client_id)?;
        }
        PsaSettings::Autotask(s) => {
            required("username", &s.username)?;
            if let Some(u) = &s.discovery_url {
                let ok = url::Url::parse(u)
                    .ok()
                    .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
                if !ok {
                    return Err(InvalidValue::new(
                        "discovery_url",
                        u.as_str(),
                        "must be an http:// or https:// URL with a host",
                    ));
                }
            }
        }
    }
    // Secrets are checked for emptiness only; the value is never put in an error.
    let secret_required = |field: &'static str, v: &Secret| {
        if v.expose().trim().is_empty() {
            Err(InvalidValue::new(field, "", "must not be empty"))
        } else {
            Ok(())
        }
    };
    match &new.secrets {
        PsaSecrets::ConnectWise { private_key } => secret_required("private_key", private_key)?,
        PsaSecrets::Autotask {
            secret,
            integration_code,
        } => {
            secret_required("secret", secret)?;
            secret_required("integration_code", integration_code)?;
        }
    }
    Ok(())
}

/// The associated data that binds sealed secrets to their row and kind.
fn aad(kind: PsaKind, id: &str) -> Vec<u8> {
    format!("lpbridge/psa/{kind}/{id}").into_bytes()
}

fn what(id: &str) -> String {
    format!("the secrets of PSA integration {id:?}")
}

/// The sealed plaintext: a JSON object of the kind's secret fields.
#[derive(Deserialize)]
struct SecretsWire {
    #[serde(default)]
    private_key: Option<Secret>,
    #[serde(default)]
    secret: Option<Secret>,
    #[serde(default)]
    integration_code: Option<Secret>,
}

/// The plaintext to seal, zeroed when dropped.
struct Plain(Vec<u8>);

impl Drop for Plain {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

fn secrets_plaintext(s: &PsaSecrets) -> Result<Plain> {
    let v = match s {
        PsaSecrets::ConnectWise { private_key } => {
            serde_json::json!({ "private_key": private_key.expose() })
        }
        PsaSecrets::Autotask {
            secret,
            integration_code,
        } => serde_json::json!({
            "secret": secret.expose(),
            "integration_code": integration_code.expose(),
        }),
    };
    let out = serde_json::to_vec(&v)
        .map(Plain)
        .map_err(|e| StoreError::Corrupt {
            field: "psa secrets",
            reason: e.to_string(),
        });
    // The Value's strings are dropped unzeroed; the bytes actually sealed are zeroed.
    drop(v);
    out
}

fn parse_secrets(kind: PsaKind, plain: &[u8]) -> Result<PsaSecrets> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        field: "psa secrets",
        reason: reason.into(),
    };
    // serde_json's errors quote no input, so no secret reaches the message.
    let w: SecretsWire =
        serde_json::from_slice(plain).map_err(|_| corrupt("not the JSON object expected"))?;
    match kind {
        PsaKind::ConnectWise => Ok(PsaSecrets::ConnectWise {
            private_key: w
                .private_key
                .ok_or_else(|| corrupt("no ConnectWise private key"))?,
        }),
        PsaKind::Autotask => Ok(PsaSecrets::Autotask {
            secret: w.secret.ok_or_else(|| corrupt("no Autotask secret"))?,
            integration_code: w
                .integration_code
                .ok_or_else(|| corrupt("no Autotask integration code"))?,
        }),
    }
}

fn kind_from_str(s: &str) -> Result<PsaKind> {
    match s {
        "connectwise" => Ok(PsaKind::ConnectWise),
        "autotask" => Ok(PsaKind::Autotask),
        other => Err(StoreError::Corrupt {
            field: "psa kind",
            reason: format!("{other:?} is not connectwise or autotask"),
        }),
    }
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: String,
    kind: String,
    settings: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct FullRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    secrets_ciphertext: Vec<u8>,
    secrets_nonce: Vec<u8>,
}

const SUMMARY_COLUMNS: &str = "id, kind, settings, created_at, updated_at";

impl SummaryRow {
    fn into_summary(self) -> Result<PsaIntegrationSummary> {
        let corrupt = |field: &'static str, reason: String| StoreError::Corrupt { field, reason };
        let kind = kind_from_str(&self.kind)?;
        let settings = match kind {
            PsaKind::ConnectWise => {
                serde_json::from_str(&self.settings).map(PsaSettings::ConnectWise)
            }
            PsaKind::Autotask => serde_json::from_str(&self.settings).map(PsaSettings::Autotask),
        }
        .map_err(|e| corrupt("psa settings", e.to_string()))?;
        Ok(PsaIntegrationSummary {
            id: ConnectionId::new(self.id).map_err(|e| corrupt("psa id", e.to_string()))?,
            kind,
            settings,
            created_at: from_micros("psa created_at", self.created_at)?,
            updated_at: from_micros("psa updated_at", self.updated_at)?,
        })
    }
}

impl Store {
    /// Stores a PSA integration; with `overwrite`, replaces one of the same id (keeping its
    /// `created_at`, possibly changing its kind), else a [`StoreError::Conflict`].
    pub async fn create_psa_integration(
        &self,
        new: NewPsaIntegration,
        overwrite: bool,
    ) -> Result<PsaIntegrationSummary> {
        validate(&new)?;
        let id = new.id.as_str();
        let kind = new.settings.kind();
        let settings = match &new.settings {
            PsaSettings::ConnectWise(s) => serde_json::to_string(s),
            PsaSettings::Autotask(s) => serde_json::to_string(s),
        }
        .map_err(|e| StoreError::Corrupt {
            field: "psa settings",
            reason: e.to_string(),
        })?;
        let plain = secrets_plaintext(&new.secrets)?;
        let sealed = self.key_for_write().await?.seal(&aad(kind, id), &plain.0)?;
        drop(plain);
        let now = now_micros();
        let conflict = if overwrite {
            "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, settings = excluded.settings, \
             secrets_ciphertext = excluded.secrets_ciphertext, \
             secrets_nonce = excluded.secrets_nonce, updated_at = excluded.updated_at"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO psa_integrations (id, kind, settings, secrets_ciphertext, \
             secrets_nonce, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             {conflict} RETURNING {SUMMARY_COLUMNS}"
        );
        let row = with_pool!(self, p => sqlx::query_as::<_, SummaryRow>(&sql)
            .bind(id)
            .bind(kind.as_str())
            .bind(&settings)
            .bind(&sealed.ciphertext)
            .bind(&sealed.nonce)
            .bind(now)
            .fetch_one(p)
            .await);
        match row {
            Ok(row) => row.into_summary(),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                what: format!("PSA integration {id:?}"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// One integration with its secrets decrypted; `None` when there is no such id.
    pub async fn get_psa_integration(&self, id: &ConnectionId) -> Result<Option<PsaIntegration>> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, secrets_ciphertext, secrets_nonce \
             FROM psa_integrations WHERE id = $1"
        );
        let row = with_pool!(self, p => sqlx::query_as::<_, FullRow>(&sql)
            .bind(id.as_str())
            .fetch_optional(p)
            .await)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed = Sealed {
            nonce: row.secrets_nonce,
            ciphertext: row.secrets_ciphertext,
        };
        let summary = row.summary.into_summary()?;
        let plain = Plain(
            self.open_sealed(&what(id.as_str()), &aad(summary.kind, id.as_str()), &sealed)
                .await?,
        );
        let secrets = parse_secrets(summary.kind, &plain.0)?;
        drop(plain);
        Ok(Some(PsaIntegration {
            id: summary.id,
            settings: summary.settings,
            secrets,
            created_at: summary.created_at,
            updated_at: summary.updated_at,
        }))
    }

    /// One integration without its secrets (needs no key); `None` when there is no such id.
    pub async fn psa_integration_summary(
        &self,
        id: &ConnectionId,
    ) -> Result<Option<PsaIntegrationSummary>> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM psa_integrations WHERE id = $1");
        let row = with_pool!(self, p => sqlx::query_as::<_, SummaryRow>(&sql)
            .bind(id.as_str())
            .fetch_optional(p)
            .await)?;
        row.map(SummaryRow::into_summary).transpose()
    }

    /// Every integration, by id, without secrets.
    pub async fn list_psa_integrations(&self) -> Result<Vec<PsaIntegrationSummary>> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM psa_integrations ORDER BY id");
        let rows = with_pool!(self, p => sqlx::query_as::<_, SummaryRow>(&sql)
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(SummaryRow::into_summary).collect()
    }

    /// Deletes an integration; `false` when it did not exist.
    pub async fn delete_psa_integration(&self, id: &ConnectionId) -> Result<bool> {
        let n = with_pool!(self, p => sqlx::query("DELETE FROM psa_integrations WHERE id = $1")
            .bind(id.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_stay_redacted() {
        let s = PsaSecrets::Autotask {
            secret: Secret::new("s3cr3t"),
            integration_code: Secret::new("CODE"),
        };
        let plain = secrets_plaintext(&s).unwrap();
        assert_eq!(parse_secrets(PsaKind::Autotask, &plain.0).unwrap(), s);
        assert!(!format!("{s:?}").contains("s3cr3t"));
        let e = parse_secrets(PsaKind::ConnectWise, &plain.0).unwrap_err();
        assert!(e.to_string().contains("private key"), "{e}");
        let e = parse_secrets(PsaKind::Autotask, b"{\"secret\":\"s3cr3t\"").unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }

    #[test]
    fn ids_use_connection_rules_but_name_the_psa() {
        let e = validate_psa_id(&ConnectionId::new("a b").unwrap()).unwrap_err();
        assert_eq!(e.field, "psa integration");
        assert_eq!(e.value, "a b");
        validate_psa_id(&ConnectionId::new("acme-cw").unwrap()).unwrap();
    }
}
