//! Connections: one row per LastPass account, the provisioning hash sealed with the master key
//! and bound to the row's id (a ciphertext copied into another row does not decrypt).

use chrono::{DateTime, Utc};
use lp_types::{Cid, ConnectionId, InvalidValue, Secret};
use serde::Serialize;

use super::{Result, Store, StoreError, from_micros, is_unique_violation, now_micros, with_pool};
use crate::crypto::Sealed;

/// Longest connection id accepted on creation.
const MAX_ID_LEN: usize = 64;

/// A connection to create.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub id: ConnectionId,
    pub cid: Cid,
    pub endpoint: url::Url,
    pub provhash: Secret,
    /// The account's time zone (for event times), when known.
    pub time_zone: Option<chrono_tz::Tz>,
}

/// A stored connection with its decrypted provisioning hash (a redacting [`Secret`]).
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: ConnectionId,
    pub cid: Cid,
    pub endpoint: url::Url,
    pub provhash: Secret,
    pub time_zone: Option<chrono_tz::Tz>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by directory writes made through lpbridge (see `bump_directory_version`).
    pub directory_version: i64,
}

/// A stored connection without its secret (listings, API responses).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionSummary {
    pub id: ConnectionId,
    pub cid: Cid,
    pub endpoint: url::Url,
    pub time_zone: Option<chrono_tz::Tz>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Connection {
    pub fn summary(&self) -> ConnectionSummary {
        ConnectionSummary {
            id: self.id.clone(),
            cid: self.cid,
            endpoint: self.endpoint.clone(),
            time_zone: self.time_zone,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Changes to a connection; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ConnectionPatch {
    pub endpoint: Option<url::Url>,
    pub provhash: Option<Secret>,
    /// `Some(None)` clears the time zone.
    pub time_zone: Option<Option<chrono_tz::Tz>>,
}

impl ConnectionPatch {
    pub fn is_empty(&self) -> bool {
        self.endpoint.is_none() && self.provhash.is_none() && self.time_zone.is_none()
    }
}

/// Connection ids travel in URLs and the `x-account-id` header: 1–64 ASCII letters, digits,
/// `-`, `_` or `.`, starting with a letter or digit.
pub fn validate_connection_id(id: &ConnectionId) -> Result<(), InvalidValue> {
    let s = id.as_str();
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if s.len() > MAX_ID_LEN
        || !s.chars().all(ok_char)
        || !s.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(InvalidValue::new(
            "connection",
            s,
            format!(
                "use 1-{MAX_ID_LEN} ASCII letters, digits, '-', '_' or '.', starting with a \
                 letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Only http(s) endpoints are stored.
fn validate_endpoint(endpoint: &url::Url) -> Result<(), InvalidValue> {
    if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
        return Err(InvalidValue::new(
            "endpoint",
            endpoint.as_str(),
            "must be an http:// or https:// URL with a host",
        ));
    }
    Ok(())
}

/// The associated data that binds a sealed provisioning hash to its row.
fn aad(id: &str) -> Vec<u8> {
    format!("lpbridge/connections/provhash/{id}").into_bytes()
}

fn what(id: &str) -> String {
    format!("the provisioning hash of connection {id:?}")
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: String,
    cid: i64,
    endpoint: String,
    time_zone: Option<String>,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct FullRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    provhash_ciphertext: Vec<u8>,
    provhash_nonce: Vec<u8>,
    directory_version: i64,
}

const SUMMARY_COLUMNS: &str = "id, cid, endpoint, time_zone, created_at, updated_at";

impl SummaryRow {
    fn into_summary(self) -> Result<ConnectionSummary> {
        let corrupt = |field: &'static str, reason: String| StoreError::Corrupt { field, reason };
        Ok(ConnectionSummary {
            id: ConnectionId::new(self.id).map_err(|e| corrupt("connection id", e.to_string()))?,
            cid: u64::try_from(self.cid)
                .ok()
                .filter(|c| *c > 0)
                .map(Cid)
                .ok_or_else(|| {
                    corrupt(
                        "connection cid",
                        format!("{} is not an account number", self.cid),
                    )
                })?,
            endpoint: url::Url::parse(&self.endpoint)
                .map_err(|e| corrupt("connection endpoint", e.to_string()))?,
            time_zone: self
                .time_zone
                .map(|tz| {
                    tz.parse::<chrono_tz::Tz>()
                        .map_err(|_| corrupt("connection time zone", format!("{tz:?}")))
                })
                .transpose()?,
            created_at: from_micros("connection created_at", self.created_at)?,
            updated_at: from_micros("connection updated_at", self.updated_at)?,
        })
    }
}

fn cid_i64(cid: Cid) -> Result<i64> {
    i64::try_from(cid.0).map_err(|_| {
        InvalidValue::new("cid", cid.to_string(), "too large for an account number").into()
    })
}

impl Store {
    /// Stores a connection; with `overwrite`, replaces one of the same id (keeping its
    /// `created_at`), else a [`StoreError::Conflict`].
    pub async fn create_connection(
        &self,
        new: NewConnection,
        overwrite: bool,
    ) -> Result<ConnectionSummary> {
        validate_connection_id(&new.id)?;
        validate_endpoint(&new.endpoint)?;
        let cid = cid_i64(new.cid)?;
        let id = new.id.as_str();
        let sealed = self
            .key_for_write()
            .await?
            .seal(&aad(id), new.provhash.expose().as_bytes())?;
        let now = now_micros();
        let conflict = if overwrite {
            "ON CONFLICT (id) DO UPDATE SET cid = excluded.cid, endpoint = excluded.endpoint, \
             provhash_ciphertext = excluded.provhash_ciphertext, \
             provhash_nonce = excluded.provhash_nonce, time_zone = excluded.time_zone, \
             updated_at = excluded.updated_at"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO connections (id, cid, endpoint, provhash_ciphertext, provhash_nonce, \
             time_zone, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             {conflict} RETURNING {SUMMARY_COLUMNS}"
        );
        let tz = new.time_zone.map(|t| t.name().to_owned());
        let row = with_pool!(self, p => sqlx::query_as::<_, SummaryRow>(&sql)
            .bind(id)
            .bind(cid)
            .bind(new.endpoint.as_str())
            .bind(&sealed.ciphertext)
            .bind(&sealed.nonce)
            .bind(&tz)
            .bind(now)
            .fetch_one(p)
            .await);
        match row {
            Ok(row) => row.into_summary(),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                what: format!("connection {id:?}"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// One connection with its provisioning hash decrypted; `None` when there is no such id.
    pub async fn get_connection(&self, id: &ConnectionId) -> Result<Option<Connection>> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, provhash_ciphertext, provhash_nonce, directory_version \
             FROM connections WHERE id = $1"
        );
        let row = with_pool!(self, p => sqlx::query_as::<_, FullRow>(&sql)
            .bind(id.as_str())
            .fetch_optional(p)
            .await)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed = Sealed {
            nonce: row.provhash_nonce,
            ciphertext: row.provhash_ciphertext,
        };
        let directory_version = row.directory_version;
        let summary = row.summary.into_summary()?;
        let plain = self
            .open_sealed(&what(id.as_str()), &aad(id.as_str()), &sealed)
            .await?;
        let provhash = String::from_utf8(plain).map_err(|_| StoreError::Corrupt {
            field: "connection provisioning hash",
            reason: "not UTF-8".into(),
        })?;
        Ok(Some(Connection {
            id: summary.id,
            cid: summary.cid,
            endpoint: summary.endpoint,
            provhash: Secret::new(provhash),
            time_zone: summary.time_zone,
            created_at: summary.created_at,
            updated_at: summary.updated_at,
            directory_version,
        }))
    }

    /// Records that lpbridge changed the connection's directory (users, groups) and returns the
    /// new version; `None` when there is no such connection. Every replica compares the version
    /// with its snapshot's on the next request and sweeps again when they differ.
    pub async fn bump_directory_version(&self, id: &ConnectionId) -> Result<Option<i64>> {
        let v = with_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "UPDATE connections SET directory_version = directory_version + 1 WHERE id = $1 \
             RETURNING directory_version",
        )
        .bind(id.as_str())
        .fetch_optional(p)
        .await)?;
        Ok(v)
    }

    /// One connection without its secret (needs no key); `None` when there is no such id.
    pub async fn connection_summary(&self, id: &ConnectionId) -> Result<Option<ConnectionSummary>> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM connections WHERE id = $1");
        let row = with_pool!(self, p => sqlx::query_as::<_, SummaryRow>(&sql)
            .bind(id.as_str())
            .fetch_optional(p)
            .await)?;
        row.map(SummaryRow::into_summary).transpose()
    }

    /// Every connection, by id, without secrets.
    pub async fn list_connections(&self) -> Result<Vec<ConnectionSummary>> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM connections ORDER BY id");
        let rows = with_pool!(self, p => sqlx::query_as::<_, SummaryRow>(&sql)
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(SummaryRow::into_summary).collect()
    }

    /// Changes the endpoint, provisioning hash and/or time zone in one statement;
    /// [`StoreError::NotFound`] when there is no such connection.
    pub async fn update_connection(
        &self,
        id: &ConnectionId,
        patch: ConnectionPatch,
    ) -> Result<ConnectionSummary> {
        if let Some(e) = &patch.endpoint {
            validate_endpoint(e)?;
        }
        let sealed = match &patch.provhash {
            Some(p) => Some(
                self.key_for_write()
                    .await?
                    .seal(&aad(id.as_str()), p.expose().as_bytes())?,
            ),
            None => None,
        };
        let (set_tz, tz) = match &patch.time_zone {
            Some(tz) => (true, tz.map(|t| t.name().to_owned())),
            None => (false, None),
        };
        let sql = format!(
            "UPDATE connections SET endpoint = COALESCE($2, endpoint), \
             provhash_ciphertext = COALESCE($3, provhash_ciphertext), \
             provhash_nonce = COALESCE($4, provhash_nonce), \
             time_zone = CASE WHEN $5 THEN $6 ELSE time_zone END, updated_at = $7 \
             WHERE id = $1 RETURNING {SUMMARY_COLUMNS}"
        );
        let endpoint = patch.endpoint.as_ref().map(url::Url::as_str);
        let ct = sealed.as_ref().map(|s| s.ciphertext.as_slice());
        let nonce = sealed.as_ref().map(|s| s.nonce.as_slice());
        let row = with_pool!(self, p => sqlx::query_as::<_, SummaryRow>(&sql)
            .bind(id.as_str())
            .bind(endpoint)
            .bind(ct)
            .bind(nonce)
            .bind(set_tz)
            .bind(&tz)
            .bind(now_micros())
            .fetch_optional(p)
            .await)?;
        match row {
            Some(row) => row.into_summary(),
            None => Err(StoreError::NotFound {
                what: format!("connection {:?}", id.as_str()),
            }),
        }
    }

    /// Deletes a connection; `false` when it did not exist.
    pub async fn delete_connection(&self, id: &ConnectionId) -> Result<bool> {
        let n = with_pool!(self, p => sqlx::query("DELETE FROM connections WHERE id = $1")
            .bind(id.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn connection_count(&self) -> Result<u64> {
        let n: i64 = with_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM connections")
            .fetch_one(p)
            .await)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_header_safe() {
        for ok in ["prod", "acme-eu.2", "A_b", "x"] {
            validate_connection_id(&ConnectionId::new(ok).unwrap()).unwrap();
        }
        for bad in ["-x", "a b", "é", "a/b", &"x".repeat(65)] {
            let e = validate_connection_id(&ConnectionId::new(bad).unwrap()).unwrap_err();
            assert_eq!(e.field, "connection");
            assert_eq!(e.value, bad);
        }
    }

    #[test]
    fn endpoints_must_be_http() {
        validate_endpoint(&"https://lastpass.com/enterpriseapi.php".parse().unwrap()).unwrap();
        let e = validate_endpoint(&"file:///etc/passwd".parse().unwrap()).unwrap_err();
        assert_eq!(e.field, "endpoint");
    }
}
