//! API keys: `lpb_<12-char id>_<40-char base62 secret>`. The id is the row's primary key (one
//! indexed lookup per request); only the SHA-256 digest of the secret part is stored and it is
//! compared in constant time.
//!
//! A plain (unsalted, fast) SHA-256 is the right tool here: the secret is 40 random base62
//! characters (~238 bits) drawn from the OS, so neither brute force nor precomputed tables are
//! feasible, and a slow password hash would only cost latency on every request. Verification
//! reads the database on every call (no cache), so a key revoked on one replica is refused by
//! every replica on its next request.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lp_types::{ConnectionId, InvalidValue, Secret};
use rand::Rng as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{
    Result, Store, StoreError, from_micros, is_unique_violation, now_micros, opt_from_micros,
    with_pool,
};
use crate::crypto::constant_time_eq;

/// Every key starts with this.
pub const API_KEY_PREFIX: &str = "lpb_";
/// At most one `last_used_at` write per key and process in this interval.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 40;
const MAX_NAME_LEN: usize = 100;
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// An API key's record (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The connections this key may use; `None`: every connection (and it may manage them).
    pub connections: Option<Vec<ConnectionId>>,
    /// What the key is for: the REST API, or SCIM provisioning of one connection.
    pub purpose: KeyPurpose,
}

/// What a key opens. The REST API refuses SCIM tokens and `/scim/v2` refuses REST API keys, so
/// a token handed to an identity provider cannot drive the rest of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyPurpose {
    Api,
    Scim,
}

impl KeyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Api => "api",
            KeyPurpose::Scim => "scim",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "api" => Ok(KeyPurpose::Api),
            "scim" => Ok(KeyPurpose::Scim),
            other => Err(StoreError::Corrupt {
                field: "api key purpose",
                reason: format!("unknown purpose {other:?}"),
            }),
        }
    }
}

impl ApiKeyInfo {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// Whether this key may use the connection.
    pub fn may_use(&self, id: &ConnectionId) -> bool {
        self.connections.as_ref().is_none_or(|c| c.contains(id))
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    read_only: bool,
    hash: Vec<u8>,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
    connections: Option<String>,
    purpose: String,
}

impl Row {
    fn info(&self) -> Result<ApiKeyInfo> {
        Ok(ApiKeyInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            read_only: self.read_only,
            created_at: from_micros("api key created_at", self.created_at)?,
            last_used_at: opt_from_micros("api key last_used_at", self.last_used_at)?,
            revoked_at: opt_from_micros("api key revoked_at", self.revoked_at)?,
            connections: self
                .connections
                .as_deref()
                .map(|c| {
                    serde_json::from_str::<Vec<ConnectionId>>(c).map_err(|e| StoreError::Corrupt {
                        field: "api key connections",
                        reason: e.to_string(),
                    })
                })
                .transpose()?,
            purpose: KeyPurpose::parse(&self.purpose)?,
        })
    }
}

const COLUMNS: &str =
    "id, name, read_only, hash, created_at, last_used_at, revoked_at, connections, purpose";

/// Splits a presented key into its id and secret; `None` when it does not have the shape of
/// a key (nothing is looked up then).
fn split_key(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == ID_LEN && id.bytes().all(|b| ID_ALPHABET.contains(&b));
    let secret_ok =
        (32..=128).contains(&secret.len()) && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    (id_ok && secret_ok).then_some((id, secret))
}

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn random_id() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..ID_LEN)
        .map(|_| char::from(ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())]))
        .collect()
}

fn random_secret() -> String {
    rand::rngs::OsRng
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(SECRET_LEN)
        .map(char::from)
        .collect()
}

impl Store {
    /// Creates a key for every connection; returns its record and the full key, which is never
    /// retrievable again.
    pub async fn create_api_key(
        &self,
        name: &str,
        read_only: bool,
    ) -> Result<(ApiKeyInfo, Secret)> {
        self.create_api_key_for(name, read_only, None).await
    }

    /// Creates a key limited to `connections` (`None`: every connection). The connections need
    /// not exist yet.
    pub async fn create_api_key_for(
        &self,
        name: &str,
        read_only: bool,
        connections: Option<&[ConnectionId]>,
    ) -> Result<(ApiKeyInfo, Secret)> {
        self.create_key(name, read_only, connections, KeyPurpose::Api)
            .await
    }

    /// Creates a SCIM bearer token for one connection (read-write, refused by the REST API).
    pub async fn create_scim_token(
        &self,
        name: &str,
        connection: &ConnectionId,
    ) -> Result<(ApiKeyInfo, Secret)> {
        self.create_key(
            name,
            false,
            Some(std::slice::from_ref(connection)),
            KeyPurpose::Scim,
        )
        .await
    }

    async fn create_key(
        &self,
        name: &str,
        read_only: bool,
        connections: Option<&[ConnectionId]>,
        purpose: KeyPurpose,
    ) -> Result<(ApiKeyInfo, Secret)> {
        if connections.is_some_and(<[ConnectionId]>::is_empty) {
            return Err(InvalidValue::new(
                "connections",
                "[]",
                "name at least one connection (or none, for every connection)",
            )
            .into());
        }
        let scope = connections.map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into()));
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_LEN
            || name.chars().any(char::is_control)
        {
            return Err(InvalidValue::new(
                "name",
                name,
                format!("use 1-{MAX_NAME_LEN} printable characters"),
            )
            .into());
        }
        let secret = Secret::new(random_secret());
        let hash = digest(secret.expose());
        let now = now_micros();
        // A 62-bit id collides with negligible probability; retry anyway rather than fail.
        for _ in 0..3 {
            let id = random_id();
            let inserted = with_pool!(self, p => sqlx::query(
                "INSERT INTO api_keys (id, name, read_only, hash, created_at, connections, purpose) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&id)
            .bind(name)
            .bind(read_only)
            .bind(&hash)
            .bind(now)
            .bind(&scope)
            .bind(purpose.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()));
            match inserted {
                Ok(_) => {
                    let info = ApiKeyInfo {
                        id: id.clone(),
                        name: name.to_owned(),
                        read_only,
                        created_at: from_micros("api key created_at", now)?,
                        last_used_at: None,
                        revoked_at: None,
                        connections: connections.map(<[ConnectionId]>::to_vec),
                        purpose,
                    };
                    let key = Secret::new(format!("{API_KEY_PREFIX}{id}_{}", secret.expose()));
                    return Ok((info, key));
                }
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict {
            what: "a freshly drawn API key id".into(),
        })
    }

    /// The key's record when `presented` is a known, unrevoked key; `None` otherwise
    /// (malformed, unknown id, wrong secret, revoked). One indexed read; `last_used_at` is
    /// written at most once per [`TOUCH_INTERVAL`] per key and process, best effort.
    pub async fn verify_api_key(&self, presented: &str) -> Result<Option<ApiKeyInfo>> {
        let Some((id, secret)) = split_key(presented) else {
            return Ok(None);
        };
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1");
        let row = with_pool!(self, p => sqlx::query_as::<_, Row>(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        let Some(row) = row else {
            return Ok(None);
        };
        if !constant_time_eq(&digest(secret), &row.hash) || row.revoked_at.is_some() {
            return Ok(None);
        }
        let mut info = row.info()?;
        if let Some(at) = self.touch_api_key(&info.id).await {
            info.last_used_at = Some(at);
        }
        Ok(Some(info))
    }

    /// Writes `last_used_at` unless this process did so for this key within
    /// [`TOUCH_INTERVAL`]; the write itself is skipped by the database when another replica
    /// touched the key meanwhile. Returns the time written. Failures are logged, not returned:
    /// a busy database must not refuse an authenticated request.
    async fn touch_api_key(&self, id: &str) -> Option<DateTime<Utc>> {
        let now = Instant::now();
        {
            let mut touched = self.touched();
            if touched
                .get(id)
                .is_some_and(|t| now.duration_since(*t) < TOUCH_INTERVAL)
            {
                return None;
            }
            touched.insert(id.to_owned(), now);
        }
        let at = now_micros();
        let interval = super::duration_micros(TOUCH_INTERVAL);
        let written = with_pool!(self, p => sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(id)
        .bind(at)
        .bind(at - interval)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        match written {
            Ok(n) if n > 0 => from_micros("api key last_used_at", at).ok(),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(api_key = id, "cannot record the API key's last use: {e}");
                None
            }
        }
    }

    /// Every key (revoked ones too), oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id");
        let rows = with_pool!(self, p => sqlx::query_as::<_, Row>(&sql).fetch_all(p).await)?;
        rows.iter().map(Row::info).collect()
    }

    /// The key with this id, revoked or not (a console session made with a key checks it on
    /// every request).
    pub async fn api_key_info(&self, id: &str) -> Result<Option<ApiKeyInfo>> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1");
        let row = with_pool!(self, p => sqlx::query_as::<_, Row>(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.as_ref().map(Row::info).transpose()
    }

    /// Revokes a key; `false` when there is no such key or it was revoked already.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool> {
        let n = with_pool!(self, p => sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now_micros())
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
    fn keys_have_the_documented_shape() {
        let id = random_id();
        let secret = random_secret();
        let key = format!("{API_KEY_PREFIX}{id}_{secret}");
        assert_eq!(split_key(&key), Some((id.as_str(), secret.as_str())));
        assert_eq!(key.len(), 4 + ID_LEN + 1 + SECRET_LEN);
        assert_ne!(random_secret(), secret);
        for bad in [
            "",
            "lpb_",
            "Bearer lpb_x",
            &format!("lpb_{id}"),
            &format!("lpb_{id}_short"),
            &format!("lpb_{}_{secret}", id.to_uppercase()),
            &format!("xyz_{id}_{secret}"),
            &format!("lpb_{id}_{secret}!"),
        ] {
            assert_eq!(split_key(bad), None, "{bad}");
        }
    }
}
