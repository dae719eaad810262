//! Leases: one row per leased resource (a connection's event watcher, an MSP import lock), with
//! an owner and an expiry on the database clock. Every operation is one conditional statement,
//! so it is atomic on SQLite (one process or several sharing the file) and on PostgreSQL (many
//! replicas) alike.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lp_types::InvalidValue;

use super::{Result, Store, duration_micros, from_micros, with_pool};

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub owner: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    owner: String,
    expires_at: i64,
}

fn ttl_micros(ttl: Duration) -> Result<i64> {
    if ttl.is_zero() {
        return Err(InvalidValue::new("ttl", "0s", "a lease needs a positive time to live").into());
    }
    Ok(duration_micros(ttl))
}

impl Store {
    /// Takes the lease `name` for `owner` for `ttl` when it is free, expired, or already held by
    /// `owner` (then it is extended). `false` while another owner holds it.
    pub async fn try_acquire_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let ttl = ttl_micros(ttl)?;
        let now = self.backend().now_sql();
        let sql = format!(
            "INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, {now} + $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
             expires_at = excluded.expires_at \
             WHERE leases.expires_at <= {now} OR leases.owner = excluded.owner \
             RETURNING owner"
        );
        let got: Option<String> = with_pool!(self, p => sqlx::query_scalar(&sql)
            .bind(name)
            .bind(owner)
            .bind(ttl)
            .fetch_optional(p)
            .await)?;
        Ok(got.is_some())
    }

    /// Extends a lease `owner` still holds; `false` when it expired or another owner has it
    /// (the caller must then stop the leased work).
    pub async fn renew_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let ttl = ttl_micros(ttl)?;
        let now = self.backend().now_sql();
        let sql = format!(
            "UPDATE leases SET expires_at = {now} + $3 \
             WHERE name = $1 AND owner = $2 AND expires_at > {now}"
        );
        let n = with_pool!(self, p => sqlx::query(&sql)
            .bind(name)
            .bind(owner)
            .bind(ttl)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Gives a lease up; `false` when `owner` did not hold it.
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<bool> {
        let n = with_pool!(self, p => sqlx::query(
            "DELETE FROM leases WHERE name = $1 AND owner = $2",
        )
        .bind(name)
        .bind(owner)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// The current holder of `name`, if its lease has not expired.
    pub async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        let now = self.backend().now_sql();
        let sql = format!(
            "SELECT name, owner, expires_at FROM leases WHERE name = $1 AND expires_at > {now}"
        );
        let row = with_pool!(self, p => sqlx::query_as::<_, Row>(&sql)
            .bind(name)
            .fetch_optional(p)
            .await)?;
        row.map(|r| {
            Ok(Lease {
                expires_at: from_micros("lease expires_at", r.expires_at)?,
                name: r.name,
                owner: r.owner,
            })
        })
        .transpose()
    }
}
