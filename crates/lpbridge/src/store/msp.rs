//! The MSP import's storage (issue 9): the MSP account's LastPass REST API settings (the API
//! key sealed with the master key), the integrity key that signs import plans, PSA company and
//! contact mappings, import runs, the per-step journal that makes `apply` crash-safe, the
//! service's import wizards, and the lease take-over used for stale-lock recovery.
//!
//! # Invariants kept here
//!
//! - A managed company is mapped at most once per PSA integration (unique index): two PSA
//!   companies never share one, even when two admins race.
//! - Completing a company step writes its journal row **and** its mapping in one transaction,
//!   fenced by the import lock: a process that lost the lock commits nothing.
//! - The API key and the plan key never leave this module unsealed except as a [`Secret`] /
//!   [`PlanKey`], whose `Debug` shows nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lp_types::{InvalidValue, Secret};
use serde::Serialize;

use super::{
    Result, Store, StoreError, decode_sealed, duration_micros, encode_sealed, from_micros,
    is_unique_violation, now_micros, opt_from_micros, with_pool,
};
use crate::crypto::Sealed;

/// The one settings row's name.
const SETTINGS_ROW: &str = "default";
/// The `meta` row holding the sealed plan key.
const PLAN_KEY_META: &str = "msp_plan_key";
const PLAN_KEY_AAD: &[u8] = b"lpbridge/meta/msp_plan_key";

fn key_aad(name: &str) -> Vec<u8> {
    format!("lpbridge/msp/api_key/{name}").into_bytes()
}

/// The MSP account's LastPass REST API settings with the decrypted key.
#[derive(Debug, Clone)]
pub struct MspSettings {
    pub base_url: url::Url,
    pub api_key: Secret,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The settings without the key (listings, API answers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MspSettingsSummary {
    pub base_url: String,
    pub api_key_set: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The 32-byte key that signs import plans (HMAC-SHA256). `Debug` shows nothing.
#[derive(Clone)]
pub struct PlanKey(pub [u8; 32]);

impl std::fmt::Debug for PlanKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanKey(***)")
    }
}

/// A PSA company mapped to a managed company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanyMap {
    pub integration_id: String,
    pub psa_company_id: String,
    pub psa_company_name: String,
    pub managed_company_id: String,
    pub managed_company_name: String,
    pub last_import_at: DateTime<Utc>,
}

/// A contact e-mail of a PSA company mapped to a LastPass user of its managed company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactMap {
    pub integration_id: String,
    pub psa_company_id: String,
    /// Lower-cased.
    pub email: String,
    pub psa_contact_id: String,
    pub managed_company_id: String,
    pub lastpass_user_id: String,
    /// Granted access at the last import (preselected next time).
    pub selected: bool,
    pub last_import_at: DateTime<Utc>,
}

/// Where a journaled step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    /// About to call LastPass; whether the call was applied is unknown after a crash.
    Intent,
    /// LastPass accepted the asynchronous request (`request_id`, `request_url`).
    Requested,
    /// Finished; `result_id` is what was created.
    Done,
}

impl StepState {
    fn as_str(self) -> &'static str {
        match self {
            StepState::Intent => "intent",
            StepState::Requested => "requested",
            StepState::Done => "done",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "intent" => Ok(StepState::Intent),
            "requested" => Ok(StepState::Requested),
            "done" => Ok(StepState::Done),
            other => Err(StoreError::Corrupt {
                field: "msp journal state",
                reason: format!("{other:?}"),
            }),
        }
    }
}

/// One journal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub integration_id: String,
    /// `company:<psa id>`.
    pub step: String,
    pub plan_id: String,
    pub run_id: String,
    pub state: StepState,
    pub request_id: Option<String>,
    pub request_url: Option<String>,
    pub result_id: Option<String>,
    pub intent_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The status of an import run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
    /// Finished with errors on some items.
    Partial,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "running" => Ok(RunStatus::Running),
            "succeeded" => Ok(RunStatus::Succeeded),
            "partial" => Ok(RunStatus::Partial),
            "failed" => Ok(RunStatus::Failed),
            other => Err(StoreError::Corrupt {
                field: "msp run status",
                reason: format!("{other:?}"),
            }),
        }
    }
}

/// One `apply`, as stored. `counts` and `errors` are JSON written by the import engine.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRunRow {
    pub id: String,
    pub integration_id: String,
    pub plan_id: String,
    pub plan_hash: String,
    pub owner: String,
    pub status: RunStatus,
    pub total_steps: i64,
    pub done_steps: i64,
    pub counts: serde_json::Value,
    pub errors: serde_json::Value,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A service import wizard: the plan being edited and its last run.
#[derive(Debug, Clone, PartialEq)]
pub struct WizardRow {
    pub id: String,
    pub integration_id: String,
    pub created_by: String,
    /// The plan, as JSON.
    pub plan: String,
    pub run_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The lease a fenced write must still hold.
#[derive(Debug, Clone, Copy)]
pub struct LockFence<'a> {
    pub lease: &'a str,
    pub owner: &'a str,
}

#[derive(sqlx::FromRow)]
struct SettingsRow {
    base_url: String,
    key_ciphertext: Vec<u8>,
    key_nonce: Vec<u8>,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct CompanyMapRow {
    integration_id: String,
    psa_company_id: String,
    psa_company_name: String,
    managed_company_id: String,
    managed_company_name: String,
    last_import_at: i64,
}

impl CompanyMapRow {
    fn into_map(self) -> Result<CompanyMap> {
        Ok(CompanyMap {
            last_import_at: from_micros("msp company last_import_at", self.last_import_at)?,
            integration_id: self.integration_id,
            psa_company_id: self.psa_company_id,
            psa_company_name: self.psa_company_name,
            managed_company_id: self.managed_company_id,
            managed_company_name: self.managed_company_name,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ContactMapRow {
    integration_id: String,
    psa_company_id: String,
    email: String,
    psa_contact_id: String,
    managed_company_id: String,
    lastpass_user_id: String,
    selected: bool,
    last_import_at: i64,
}

impl ContactMapRow {
    fn into_map(self) -> Result<ContactMap> {
        Ok(ContactMap {
            last_import_at: from_micros("msp contact last_import_at", self.last_import_at)?,
            integration_id: self.integration_id,
            psa_company_id: self.psa_company_id,
            email: self.email,
            psa_contact_id: self.psa_contact_id,
            managed_company_id: self.managed_company_id,
            lastpass_user_id: self.lastpass_user_id,
            selected: self.selected,
        })
    }
}

#[derive(sqlx::FromRow)]
struct JournalRow {
    integration_id: String,
    step: String,
    plan_id: String,
    run_id: String,
    state: String,
    request_id: Option<String>,
    request_url: Option<String>,
    result_id: Option<String>,
    intent_at: i64,
    updated_at: i64,
}

impl JournalRow {
    fn into_entry(self) -> Result<JournalEntry> {
        Ok(JournalEntry {
            state: StepState::parse(&self.state)?,
            intent_at: from_micros("msp journal intent_at", self.intent_at)?,
            updated_at: from_micros("msp journal updated_at", self.updated_at)?,
            integration_id: self.integration_id,
            step: self.step,
            plan_id: self.plan_id,
            run_id: self.run_id,
            request_id: self.request_id,
            request_url: self.request_url,
            result_id: self.result_id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: String,
    integration_id: String,
    plan_id: String,
    plan_hash: String,
    owner: String,
    status: String,
    total_steps: i64,
    done_steps: i64,
    counts: String,
    errors: String,
    started_at: i64,
    finished_at: Option<i64>,
    updated_at: i64,
}

impl RunRow {
    fn into_row(self) -> Result<ImportRunRow> {
        let json = |field: &'static str, s: &str| {
            serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
                field,
                reason: e.to_string(),
            })
        };
        Ok(ImportRunRow {
            status: RunStatus::parse(&self.status)?,
            counts: json("msp run counts", &self.counts)?,
            errors: json("msp run errors", &self.errors)?,
            started_at: from_micros("msp run started_at", self.started_at)?,
            finished_at: opt_from_micros("msp run finished_at", self.finished_at)?,
            updated_at: from_micros("msp run updated_at", self.updated_at)?,
            id: self.id,
            integration_id: self.integration_id,
            plan_id: self.plan_id,
            plan_hash: self.plan_hash,
            owner: self.owner,
            total_steps: self.total_steps,
            done_steps: self.done_steps,
        })
    }
}

#[derive(sqlx::FromRow)]
struct WizRow {
    id: String,
    integration_id: String,
    created_by: String,
    plan: String,
    run_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl WizRow {
    fn into_row(self) -> Result<WizardRow> {
        Ok(WizardRow {
            created_at: from_micros("msp wizard created_at", self.created_at)?,
            updated_at: from_micros("msp wizard updated_at", self.updated_at)?,
            id: self.id,
            integration_id: self.integration_id,
            created_by: self.created_by,
            plan: self.plan,
            run_id: self.run_id,
        })
    }
}

const COMPANY_COLUMNS: &str = "integration_id, psa_company_id, psa_company_name, \
    managed_company_id, managed_company_name, last_import_at";
const CONTACT_COLUMNS: &str = "integration_id, psa_company_id, email, psa_contact_id, \
    managed_company_id, lastpass_user_id, selected, last_import_at";
const JOURNAL_COLUMNS: &str = "integration_id, step, plan_id, run_id, state, request_id, \
    request_url, result_id, intent_at, updated_at";
const RUN_COLUMNS: &str = "id, integration_id, plan_id, plan_hash, owner, status, total_steps, \
    done_steps, counts, errors, started_at, finished_at, updated_at";
const WIZARD_COLUMNS: &str = "id, integration_id, created_by, plan, run_id, created_at, updated_at";

/// `EXISTS (lease $a held by owner $b)` on the database clock.
fn held(store: &Store, lease: &str, owner: &str) -> String {
    let now = store.backend().now_sql();
    format!(
        "EXISTS (SELECT 1 FROM leases WHERE name = {lease} AND owner = {owner} \
         AND expires_at > {now})"
    )
}

/// The first statement of a fenced transaction: a no-op write to the lease row that matches
/// only while `$2` holds lease `$1`. Writing first takes SQLite's write lock at once (a
/// transaction that reads first and writes later fails with `SQLITE_BUSY` when another
/// writer got in between, whatever the busy timeout), and on PostgreSQL it locks the lease
/// row, so the lease cannot be taken over while the transaction runs.
fn claim_sql(store: &Store) -> String {
    let now = store.backend().now_sql();
    format!("UPDATE leases SET owner = owner WHERE name = $1 AND owner = $2 AND expires_at > {now}")
}

/// The error when a fenced write finds the lock gone ("… not found").
fn lock_lost(lease: &str) -> StoreError {
    StoreError::NotFound {
        what: format!(
            "the import lock {lease:?} of this run (it expired or was taken over, so nothing was \
             written)"
        ),
    }
}

impl Store {
    // ---- settings ---------------------------------------------------------------------------

    /// Stores (or replaces) the MSP account's LastPass REST API base URL and key (sealed).
    pub async fn set_msp_settings(
        &self,
        base_url: &url::Url,
        api_key: &Secret,
    ) -> Result<MspSettingsSummary> {
        if !matches!(base_url.scheme(), "http" | "https") || base_url.host_str().is_none() {
            return Err(InvalidValue::new(
                "base_url",
                base_url.as_str(),
                "must be an http:// or https:// URL with a host",
            )
            .into());
        }
        if api_key.expose().trim().is_empty() {
            return Err(InvalidValue::new("api_key", "", "must not be empty").into());
        }
        let sealed = self
            .key_for_write()
            .await?
            .seal(&key_aad(SETTINGS_ROW), api_key.expose().as_bytes())?;
        let now = now_micros();
        let (created, updated): (i64, i64) = with_pool!(self, p => sqlx::query_as(
            "INSERT INTO msp_settings (name, base_url, key_ciphertext, key_nonce, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (name) DO UPDATE SET base_url = excluded.base_url, \
             key_ciphertext = excluded.key_ciphertext, key_nonce = excluded.key_nonce, \
             updated_at = excluded.updated_at \
             RETURNING created_at, updated_at",
        )
        .bind(SETTINGS_ROW)
        .bind(base_url.as_str())
        .bind(&sealed.ciphertext)
        .bind(&sealed.nonce)
        .bind(now)
        .fetch_one(p)
        .await)?;
        Ok(MspSettingsSummary {
            base_url: base_url.to_string(),
            api_key_set: true,
            created_at: from_micros("msp settings created_at", created)?,
            updated_at: from_micros("msp settings updated_at", updated)?,
        })
    }

    async fn msp_settings_row(&self) -> Result<Option<SettingsRow>> {
        Ok(with_pool!(self, p => sqlx::query_as::<_, SettingsRow>(
            "SELECT base_url, key_ciphertext, key_nonce, created_at, updated_at \
             FROM msp_settings WHERE name = $1",
        )
        .bind(SETTINGS_ROW)
        .fetch_optional(p)
        .await)?)
    }

    /// The settings with the key decrypted; `None` when none are stored.
    pub async fn msp_settings(&self) -> Result<Option<MspSettings>> {
        let Some(row) = self.msp_settings_row().await? else {
            return Ok(None);
        };
        let sealed = Sealed {
            nonce: row.key_nonce,
            ciphertext: row.key_ciphertext,
        };
        let mut plain = self
            .open_sealed(
                "the MSP LastPass REST API key",
                &key_aad(SETTINGS_ROW),
                &sealed,
            )
            .await?;
        let key = String::from_utf8(plain.clone()).map_err(|_| StoreError::Corrupt {
            field: "msp api key",
            reason: "not UTF-8".into(),
        });
        plain.iter_mut().for_each(|b| *b = 0);
        let base_url = url::Url::parse(&row.base_url).map_err(|e| StoreError::Corrupt {
            field: "msp base_url",
            reason: e.to_string(),
        })?;
        Ok(Some(MspSettings {
            base_url,
            api_key: Secret::new(key?),
            created_at: from_micros("msp settings created_at", row.created_at)?,
            updated_at: from_micros("msp settings updated_at", row.updated_at)?,
        }))
    }

    /// The settings without the key (needs no master key).
    pub async fn msp_settings_summary(&self) -> Result<Option<MspSettingsSummary>> {
        let Some(row) = self.msp_settings_row().await? else {
            return Ok(None);
        };
        Ok(Some(MspSettingsSummary {
            base_url: row.base_url,
            api_key_set: !row.key_ciphertext.is_empty(),
            created_at: from_micros("msp settings created_at", row.created_at)?,
            updated_at: from_micros("msp settings updated_at", row.updated_at)?,
        }))
    }

    /// Removes the settings; `false` when there were none.
    pub async fn delete_msp_settings(&self) -> Result<bool> {
        let n = with_pool!(self, p => sqlx::query("DELETE FROM msp_settings WHERE name = $1")
            .bind(SETTINGS_ROW)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// The key that signs import plans: 32 random bytes made on first use, sealed in `meta`
    /// (every replica on the database reads the same key; another store has another one).
    pub async fn msp_plan_key(&self) -> Result<PlanKey> {
        for _ in 0..2 {
            let stored: Option<Option<String>> = with_pool!(self, p => sqlx::query_scalar(
                "SELECT value FROM meta WHERE name = $1",
            )
            .bind(PLAN_KEY_META)
            .fetch_optional(p)
            .await)?;
            match stored {
                Some(v) => {
                    let sealed = v.as_deref().and_then(decode_sealed).ok_or_else(|| {
                        StoreError::Corrupt {
                            field: "msp plan key",
                            reason: "not nonce.ciphertext in base64".into(),
                        }
                    })?;
                    let mut plain = self
                        .open_sealed("the MSP plan key", PLAN_KEY_AAD, &sealed)
                        .await?;
                    let key: Option<[u8; 32]> = plain.as_slice().try_into().ok();
                    plain.iter_mut().for_each(|b| *b = 0);
                    return key.map(PlanKey).ok_or_else(|| StoreError::Corrupt {
                        field: "msp plan key",
                        reason: "not 32 bytes".into(),
                    });
                }
                None => {
                    let mut fresh = [0u8; 32];
                    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
                    let sealed = self.key_for_write().await?.seal(PLAN_KEY_AAD, &fresh)?;
                    fresh.iter_mut().for_each(|b| *b = 0);
                    with_pool!(self, p => sqlx::query(
                        "INSERT INTO meta (name, value, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(PLAN_KEY_META)
                    .bind(encode_sealed(&sealed))
                    .bind(now_micros())
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected()))?;
                    // Read it back: another process may have written its key first.
                }
            }
        }
        Err(StoreError::Corrupt {
            field: "msp plan key",
            reason: "could not be created".into(),
        })
    }

    // ---- mappings ---------------------------------------------------------------------------

    /// Every company mapping of an integration, by PSA company id.
    pub async fn msp_company_maps(&self, integration: &str) -> Result<Vec<CompanyMap>> {
        let sql = format!(
            "SELECT {COMPANY_COLUMNS} FROM msp_company_maps WHERE integration_id = $1 \
             ORDER BY psa_company_id"
        );
        let rows = with_pool!(self, p => sqlx::query_as::<_, CompanyMapRow>(&sql)
            .bind(integration)
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(CompanyMapRow::into_map).collect()
    }

    /// Every contact mapping of an integration.
    pub async fn msp_contact_maps(&self, integration: &str) -> Result<Vec<ContactMap>> {
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM msp_contact_maps WHERE integration_id = $1 \
             ORDER BY psa_company_id, email"
        );
        let rows = with_pool!(self, p => sqlx::query_as::<_, ContactMapRow>(&sql)
            .bind(integration)
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(ContactMapRow::into_map).collect()
    }

    /// Maps a PSA company (replacing its previous mapping), fenced by the import lock. A
    /// managed company already mapped to another PSA company of the integration is a
    /// [`StoreError::Conflict`].
    pub async fn put_msp_company_map(&self, m: &CompanyMap, fence: LockFence<'_>) -> Result<()> {
        let sql = format!(
            "INSERT INTO msp_company_maps ({COMPANY_COLUMNS}, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $6 WHERE {} \
             ON CONFLICT (integration_id, psa_company_id) DO UPDATE SET \
             psa_company_name = excluded.psa_company_name, \
             managed_company_id = excluded.managed_company_id, \
             managed_company_name = excluded.managed_company_name, \
             last_import_at = excluded.last_import_at",
            held(self, "$7", "$8")
        );
        let done = with_pool!(self, p => sqlx::query(&sql)
            .bind(&m.integration_id)
            .bind(&m.psa_company_id)
            .bind(&m.psa_company_name)
            .bind(&m.managed_company_id)
            .bind(&m.managed_company_name)
            .bind(m.last_import_at.timestamp_micros())
            .bind(fence.lease)
            .bind(fence.owner)
            .execute(p)
            .await
            .map(|r| r.rows_affected()));
        match done {
            Ok(0) => Err(lock_lost(fence.lease)),
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                what: format!(
                    "a mapping to managed company {} for another PSA company",
                    m.managed_company_id
                ),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Records contact mappings (insert or replace), fenced by the import lock, in one
    /// transaction.
    pub async fn put_msp_contact_maps(
        &self,
        maps: &[ContactMap],
        fence: LockFence<'_>,
    ) -> Result<()> {
        if maps.is_empty() {
            return Ok(());
        }
        let check = claim_sql(self);
        let sql = format!(
            "INSERT INTO msp_contact_maps ({CONTACT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, \
             $7, $8) ON CONFLICT (integration_id, psa_company_id, email) DO UPDATE SET \
             psa_contact_id = excluded.psa_contact_id, \
             managed_company_id = excluded.managed_company_id, \
             lastpass_user_id = excluded.lastpass_user_id, selected = excluded.selected, \
             last_import_at = excluded.last_import_at"
        );
        let ok = with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let held = sqlx::query(&check)
                .bind(fence.lease)
                .bind(fence.owner)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if held {
                for m in maps {
                    sqlx::query(&sql)
                        .bind(&m.integration_id)
                        .bind(&m.psa_company_id)
                        .bind(&m.email)
                        .bind(&m.psa_contact_id)
                        .bind(&m.managed_company_id)
                        .bind(&m.lastpass_user_id)
                        .bind(m.selected)
                        .bind(m.last_import_at.timestamp_micros())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok::<_, sqlx::Error>(held)
        })?;
        if ok {
            Ok(())
        } else {
            Err(lock_lost(fence.lease))
        }
    }

    // ---- journal ----------------------------------------------------------------------------

    /// Every journal row of an integration.
    pub async fn msp_journal(&self, integration: &str) -> Result<Vec<JournalEntry>> {
        let sql = format!(
            "SELECT {JOURNAL_COLUMNS} FROM msp_journal WHERE integration_id = $1 ORDER BY step"
        );
        let rows = with_pool!(self, p => sqlx::query_as::<_, JournalRow>(&sql)
            .bind(integration)
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(JournalRow::into_entry).collect()
    }

    /// Writes a journal row (insert or replace), fenced by the import lock.
    pub async fn put_msp_journal(&self, e: &JournalEntry, fence: LockFence<'_>) -> Result<()> {
        let sql = format!(
            "INSERT INTO msp_journal ({JOURNAL_COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE {} \
             ON CONFLICT (integration_id, step) DO UPDATE SET plan_id = excluded.plan_id, \
             run_id = excluded.run_id, state = excluded.state, \
             request_id = excluded.request_id, request_url = excluded.request_url, \
             result_id = excluded.result_id, intent_at = excluded.intent_at, \
             updated_at = excluded.updated_at",
            held(self, "$11", "$12")
        );
        let n = with_pool!(self, p => sqlx::query(&sql)
            .bind(&e.integration_id)
            .bind(&e.step)
            .bind(&e.plan_id)
            .bind(&e.run_id)
            .bind(e.state.as_str())
            .bind(&e.request_id)
            .bind(&e.request_url)
            .bind(&e.result_id)
            .bind(e.intent_at.timestamp_micros())
            .bind(e.updated_at.timestamp_micros())
            .bind(fence.lease)
            .bind(fence.owner)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if n == 0 {
            return Err(lock_lost(fence.lease));
        }
        Ok(())
    }

    /// Marks a company step done and maps the company, in one transaction fenced by the lock.
    pub async fn complete_msp_company(
        &self,
        e: &JournalEntry,
        m: &CompanyMap,
        fence: LockFence<'_>,
    ) -> Result<()> {
        let check = claim_sql(self);
        let journal = format!(
            "INSERT INTO msp_journal ({JOURNAL_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (integration_id, step) DO UPDATE SET plan_id = excluded.plan_id, \
             run_id = excluded.run_id, state = excluded.state, \
             request_id = excluded.request_id, request_url = excluded.request_url, \
             result_id = excluded.result_id, updated_at = excluded.updated_at"
        );
        let map = format!(
            "INSERT INTO msp_company_maps ({COMPANY_COLUMNS}, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (integration_id, psa_company_id) DO UPDATE SET \
             psa_company_name = excluded.psa_company_name, \
             managed_company_id = excluded.managed_company_id, \
             managed_company_name = excluded.managed_company_name, \
             last_import_at = excluded.last_import_at"
        );
        let out = with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let held = sqlx::query(&check)
                .bind(fence.lease)
                .bind(fence.owner)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if !held {
                tx.rollback().await?;
                Ok::<_, sqlx::Error>(false)
            } else {
                sqlx::query(&journal)
                    .bind(&e.integration_id)
                    .bind(&e.step)
                    .bind(&e.plan_id)
                    .bind(&e.run_id)
                    .bind(e.state.as_str())
                    .bind(&e.request_id)
                    .bind(&e.request_url)
                    .bind(&e.result_id)
                    .bind(e.intent_at.timestamp_micros())
                    .bind(e.updated_at.timestamp_micros())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&map)
                    .bind(&m.integration_id)
                    .bind(&m.psa_company_id)
                    .bind(&m.psa_company_name)
                    .bind(&m.managed_company_id)
                    .bind(&m.managed_company_name)
                    .bind(m.last_import_at.timestamp_micros())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
        });
        match out {
            Ok(true) => Ok(()),
            Ok(false) => Err(lock_lost(fence.lease)),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                what: format!(
                    "a mapping to managed company {} for another PSA company",
                    m.managed_company_id
                ),
            }),
            Err(e) => Err(e.into()),
        }
    }

    // ---- runs -------------------------------------------------------------------------------

    /// Records a new run (status `running`).
    pub async fn create_msp_run(&self, r: &ImportRunRow) -> Result<()> {
        let sql = format!(
            "INSERT INTO msp_import_runs ({RUN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        with_pool!(self, p => sqlx::query(&sql)
            .bind(&r.id)
            .bind(&r.integration_id)
            .bind(&r.plan_id)
            .bind(&r.plan_hash)
            .bind(&r.owner)
            .bind(r.status.as_str())
            .bind(r.total_steps)
            .bind(r.done_steps)
            .bind(r.counts.to_string())
            .bind(r.errors.to_string())
            .bind(r.started_at.timestamp_micros())
            .bind(r.finished_at.map(|t| t.timestamp_micros()))
            .bind(r.updated_at.timestamp_micros())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Progress of a running run.
    pub async fn update_msp_run_progress(
        &self,
        id: &str,
        done_steps: i64,
        counts: &serde_json::Value,
        errors: &serde_json::Value,
    ) -> Result<()> {
        with_pool!(self, p => sqlx::query(
            "UPDATE msp_import_runs SET done_steps = $2, counts = $3, errors = $4, \
             updated_at = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(done_steps)
        .bind(counts.to_string())
        .bind(errors.to_string())
        .bind(now_micros())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends a run with its status, counts and errors.
    pub async fn finish_msp_run(
        &self,
        id: &str,
        status: RunStatus,
        done_steps: i64,
        counts: &serde_json::Value,
        errors: &serde_json::Value,
    ) -> Result<()> {
        let now = now_micros();
        with_pool!(self, p => sqlx::query(
            "UPDATE msp_import_runs SET status = $2, done_steps = $3, counts = $4, errors = $5, \
             finished_at = $6, updated_at = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(done_steps)
        .bind(counts.to_string())
        .bind(errors.to_string())
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// One run; `None` when unknown.
    pub async fn msp_run(&self, id: &str) -> Result<Option<ImportRunRow>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM msp_import_runs WHERE id = $1");
        let row = with_pool!(self, p => sqlx::query_as::<_, RunRow>(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(RunRow::into_row).transpose()
    }

    /// The latest runs of an integration, newest first.
    pub async fn msp_runs(&self, integration: &str, limit: u32) -> Result<Vec<ImportRunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM msp_import_runs WHERE integration_id = $1 \
             ORDER BY started_at DESC, id DESC LIMIT $2"
        );
        let rows = with_pool!(self, p => sqlx::query_as::<_, RunRow>(&sql)
            .bind(integration)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(RunRow::into_row).collect()
    }

    // ---- wizards ----------------------------------------------------------------------------

    pub async fn create_msp_wizard(&self, w: &WizardRow) -> Result<()> {
        let sql = format!(
            "INSERT INTO msp_wizards ({WIZARD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        );
        with_pool!(self, p => sqlx::query(&sql)
            .bind(&w.id)
            .bind(&w.integration_id)
            .bind(&w.created_by)
            .bind(&w.plan)
            .bind(&w.run_id)
            .bind(w.created_at.timestamp_micros())
            .bind(w.updated_at.timestamp_micros())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn msp_wizard(&self, id: &str) -> Result<Option<WizardRow>> {
        let sql = format!("SELECT {WIZARD_COLUMNS} FROM msp_wizards WHERE id = $1");
        let row = with_pool!(self, p => sqlx::query_as::<_, WizRow>(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(WizRow::into_row).transpose()
    }

    /// The newest wizard `created_by` left open on an integration (its lock may have lapsed).
    pub async fn latest_msp_wizard_of(
        &self,
        created_by: &str,
        integration_id: &str,
    ) -> Result<Option<WizardRow>> {
        let sql = format!(
            "SELECT {WIZARD_COLUMNS} FROM msp_wizards WHERE created_by = $1 AND integration_id = $2 \
             ORDER BY updated_at DESC LIMIT 1"
        );
        let row = with_pool!(self, p => sqlx::query_as::<_, WizRow>(&sql)
            .bind(created_by)
            .bind(integration_id)
            .fetch_optional(p)
            .await)?;
        row.map(WizRow::into_row).transpose()
    }

    /// Replaces a wizard's plan and run id.
    pub async fn update_msp_wizard(
        &self,
        id: &str,
        plan: &str,
        run_id: Option<&str>,
    ) -> Result<bool> {
        let n = with_pool!(self, p => sqlx::query(
            "UPDATE msp_wizards SET plan = $2, run_id = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(plan)
        .bind(run_id)
        .bind(now_micros())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn delete_msp_wizard(&self, id: &str) -> Result<bool> {
        let n = with_pool!(self, p => sqlx::query("DELETE FROM msp_wizards WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    // ---- locks ------------------------------------------------------------------------------

    /// The lease row of `name` whether or not it expired (`owner`, `expires_at`).
    pub async fn lease_row(&self, name: &str) -> Result<Option<(String, DateTime<Utc>, bool)>> {
        let now = self.backend().now_sql();
        let sql = format!(
            "SELECT owner, expires_at, CASE WHEN expires_at > {now} THEN 1 ELSE 0 END \
             FROM leases WHERE name = $1"
        );
        let row: Option<(String, i64, i32)> = with_pool!(self, p => sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(p)
            .await)?;
        row.map(|(o, e, live)| Ok((o, from_micros("lease expires_at", e)?, live == 1)))
            .transpose()
    }

    /// Hands the lease `name` from `old_owner` (known to be gone: stale-lock recovery) to
    /// `new_owner`; `false` when `old_owner` no longer holds the row (someone else was faster).
    pub async fn take_over_lease(
        &self,
        name: &str,
        old_owner: &str,
        new_owner: &str,
        ttl: Duration,
    ) -> Result<bool> {
        if ttl.is_zero() {
            return Err(
                InvalidValue::new("ttl", "0s", "a lease needs a positive time to live").into(),
            );
        }
        let now = self.backend().now_sql();
        let sql = format!(
            "UPDATE leases SET owner = $3, expires_at = {now} + $4 WHERE name = $1 AND owner = $2"
        );
        let n = with_pool!(self, p => sqlx::query(&sql)
            .bind(name)
            .bind(old_owner)
            .bind(new_owner)
            .bind(duration_micros(ttl))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}
