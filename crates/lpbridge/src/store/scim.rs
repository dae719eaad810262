//! SCIM rows: lpbridge's stable ids for LastPass users and groups, and the parts of a SCIM
//! resource LastPass cannot hold (`externalId`, name parts, e-mails, enterprise attributes, …).
//! LastPass stays the truth for what it holds (username, full name, status, memberships); the
//! `scim` module merges both.

use chrono::{DateTime, Utc};
use lp_types::ConnectionId;
use rand::RngCore as _;
use serde_json::Value;

use super::{
    Result, Store, StoreError, from_micros, is_unique_violation, now_micros, opt_from_micros,
    with_pool,
};

/// One SCIM user.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimUserRow {
    pub id: String,
    /// The SCIM `userName`, lower-cased (unique per connection).
    pub user_name: String,
    /// The LastPass username, lower-cased.
    pub username: String,
    /// An e-mail change requested through `updateemail`, lower-cased, until LastPass lists it.
    pub pending_username: Option<String>,
    pub external_id: Option<String>,
    /// The LastPass full name as last written or seen.
    pub fullname: Option<String>,
    /// `active` as SCIM last set it (LastPass does not show an invitee's status).
    pub active: bool,
    /// The stored part of the resource (a JSON object).
    pub attributes: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl ScimUserRow {
    /// A new row for a LastPass user, with a fresh id.
    pub fn new(username: &str) -> Self {
        let now = Utc::now();
        ScimUserRow {
            id: new_id(),
            user_name: username.to_lowercase(),
            username: username.to_lowercase(),
            pending_username: None,
            external_id: None,
            fullname: None,
            active: true,
            attributes: Value::Object(serde_json::Map::new()),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        }
    }
}

/// One SCIM group.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimGroupRow {
    pub id: String,
    /// The LastPass group name, as the client sent it.
    pub display_name: String,
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ScimGroupRow {
    pub fn new(display_name: &str) -> Self {
        let now = Utc::now();
        ScimGroupRow {
            id: new_id(),
            display_name: display_name.to_owned(),
            external_id: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A random (version 4) UUID: SCIM ids are opaque, stable and never reused.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    user_name: String,
    username: String,
    pending_username: Option<String>,
    external_id: Option<String>,
    fullname: Option<String>,
    active: bool,
    attributes: String,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
}

impl UserRow {
    fn into_row(self) -> Result<ScimUserRow> {
        Ok(ScimUserRow {
            attributes: serde_json::from_str(&self.attributes).map_err(|e| {
                StoreError::Corrupt {
                    field: "scim user attributes",
                    reason: e.to_string(),
                }
            })?,
            created_at: from_micros("scim user created_at", self.created_at)?,
            updated_at: from_micros("scim user updated_at", self.updated_at)?,
            deleted_at: opt_from_micros("scim user deleted_at", self.deleted_at)?,
            id: self.id,
            user_name: self.user_name,
            username: self.username,
            pending_username: self.pending_username,
            external_id: self.external_id,
            fullname: self.fullname,
            active: self.active,
        })
    }
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: String,
    display_name: String,
    external_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl GroupRow {
    fn into_row(self) -> Result<ScimGroupRow> {
        Ok(ScimGroupRow {
            created_at: from_micros("scim group created_at", self.created_at)?,
            updated_at: from_micros("scim group updated_at", self.updated_at)?,
            id: self.id,
            display_name: self.display_name,
            external_id: self.external_id,
        })
    }
}

const USER_COLUMNS: &str = "id, user_name, username, pending_username, external_id, fullname, active, \
                            attributes, created_at, updated_at, deleted_at";
const GROUP_COLUMNS: &str = "id, display_name, external_id, created_at, updated_at";

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// An INSERT or UPDATE's outcome: `false` when it hit a unique index or (an UPDATE) no row.
fn unique_write(res: std::result::Result<u64, sqlx::Error>) -> Result<bool> {
    match res {
        Ok(n) => Ok(n > 0),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

impl Store {
    /// Every SCIM user row of a connection (deleted ones too).
    pub async fn scim_users(&self, conn: &ConnectionId) -> Result<Vec<ScimUserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM scim_users WHERE connection_id = $1");
        let rows = with_pool!(self, p => sqlx::query_as::<_, UserRow>(&sql)
            .bind(conn.as_str())
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(UserRow::into_row).collect()
    }

    pub async fn scim_user(&self, conn: &ConnectionId, id: &str) -> Result<Option<ScimUserRow>> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM scim_users WHERE connection_id = $1 AND id = $2");
        let row = with_pool!(self, p => sqlx::query_as::<_, UserRow>(&sql)
            .bind(conn.as_str())
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(UserRow::into_row).transpose()
    }

    /// The row whose SCIM `userName` is `user_name` (case-insensitive).
    pub async fn scim_user_by_user_name(
        &self,
        conn: &ConnectionId,
        user_name: &str,
    ) -> Result<Option<ScimUserRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM scim_users WHERE connection_id = $1 AND user_name = $2"
        );
        let row = with_pool!(self, p => sqlx::query_as::<_, UserRow>(&sql)
            .bind(conn.as_str())
            .bind(user_name.to_lowercase())
            .fetch_optional(p)
            .await)?;
        row.map(UserRow::into_row).transpose()
    }

    /// The row whose LastPass username, or pending new username, is `username`
    /// (case-insensitive).
    pub async fn scim_user_by_lastpass_name(
        &self,
        conn: &ConnectionId,
        username: &str,
    ) -> Result<Option<ScimUserRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM scim_users WHERE connection_id = $1 \
             AND (username = $2 OR pending_username = $2)"
        );
        let rows = with_pool!(self, p => sqlx::query_as::<_, UserRow>(&sql)
            .bind(conn.as_str())
            .bind(username.to_lowercase())
            .fetch_all(p)
            .await)?;
        let name = username.to_lowercase();
        let mut rows: Vec<ScimUserRow> = rows
            .into_iter()
            .map(UserRow::into_row)
            .collect::<Result<_>>()?;
        rows.sort_by_key(|r| r.username != name);
        Ok(rows.into_iter().next())
    }

    /// Inserts a new row; `false` when its id or username is taken.
    pub async fn insert_scim_user(&self, conn: &ConnectionId, r: &ScimUserRow) -> Result<bool> {
        let attributes = r.attributes.to_string();
        let res = with_pool!(self, p => sqlx::query(
            "INSERT INTO scim_users (connection_id, id, username, pending_username, external_id, \
             fullname, active, attributes, created_at, updated_at, deleted_at, user_name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(conn.as_str())
        .bind(&r.id)
        .bind(&r.username)
        .bind(&r.pending_username)
        .bind(&r.external_id)
        .bind(&r.fullname)
        .bind(r.active)
        .bind(&attributes)
        .bind(micros(r.created_at))
        .bind(micros(r.updated_at))
        .bind(r.deleted_at.map(micros))
        .bind(&r.user_name)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        unique_write(res)
    }

    /// Rows for LastPass users that have none yet (one transaction; an existing row wins).
    pub async fn ensure_scim_users(&self, conn: &ConnectionId, usernames: &[String]) -> Result<()> {
        if usernames.is_empty() {
            return Ok(());
        }
        let now = now_micros();
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            for name in usernames {
                sqlx::query(
                    "INSERT INTO scim_users (connection_id, id, user_name, username, active, \
                     attributes, created_at, updated_at) VALUES ($1, $2, $3, $3, TRUE, '{}', $4, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(conn.as_str())
                .bind(new_id())
                .bind(name.to_lowercase())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// Writes every column of an existing row (`created_at` too: a user created again after a
    /// delete keeps its id but starts anew); `false` when it is gone, or its new username is
    /// another row's.
    pub async fn update_scim_user(&self, conn: &ConnectionId, r: &ScimUserRow) -> Result<bool> {
        let attributes = r.attributes.to_string();
        let res = with_pool!(self, p => sqlx::query(
            "UPDATE scim_users SET username = $3, pending_username = $4, external_id = $5, \
             fullname = $6, active = $7, attributes = $8, updated_at = $9, deleted_at = $10, \
             user_name = $11, created_at = $12 WHERE connection_id = $1 AND id = $2",
        )
        .bind(conn.as_str())
        .bind(&r.id)
        .bind(&r.username)
        .bind(&r.pending_username)
        .bind(&r.external_id)
        .bind(&r.fullname)
        .bind(r.active)
        .bind(&attributes)
        .bind(micros(r.updated_at))
        .bind(r.deleted_at.map(micros))
        .bind(&r.user_name)
        .bind(micros(r.created_at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        unique_write(res)
    }

    pub async fn delete_scim_user(&self, conn: &ConnectionId, id: &str) -> Result<bool> {
        let n = with_pool!(self, p => sqlx::query(
            "DELETE FROM scim_users WHERE connection_id = $1 AND id = $2",
        )
        .bind(conn.as_str())
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Every SCIM group row of a connection.
    pub async fn scim_groups(&self, conn: &ConnectionId) -> Result<Vec<ScimGroupRow>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM scim_groups WHERE connection_id = $1");
        let rows = with_pool!(self, p => sqlx::query_as::<_, GroupRow>(&sql)
            .bind(conn.as_str())
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(GroupRow::into_row).collect()
    }

    pub async fn scim_group(&self, conn: &ConnectionId, id: &str) -> Result<Option<ScimGroupRow>> {
        let sql =
            format!("SELECT {GROUP_COLUMNS} FROM scim_groups WHERE connection_id = $1 AND id = $2");
        let row = with_pool!(self, p => sqlx::query_as::<_, GroupRow>(&sql)
            .bind(conn.as_str())
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(GroupRow::into_row).transpose()
    }

    /// Inserts a new group row; `false` when its id or name (case-insensitive) is taken.
    pub async fn insert_scim_group(&self, conn: &ConnectionId, r: &ScimGroupRow) -> Result<bool> {
        let res = with_pool!(self, p => sqlx::query(
            "INSERT INTO scim_groups (connection_id, id, display_name, name_key, external_id, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(conn.as_str())
        .bind(&r.id)
        .bind(&r.display_name)
        .bind(r.display_name.to_lowercase())
        .bind(&r.external_id)
        .bind(micros(r.created_at))
        .bind(micros(r.updated_at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        unique_write(res)
    }

    /// Rows for LastPass groups that have none yet (one transaction; an existing row wins).
    pub async fn ensure_scim_groups(&self, conn: &ConnectionId, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let now = now_micros();
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            for name in names {
                sqlx::query(
                    "INSERT INTO scim_groups (connection_id, id, display_name, name_key, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(conn.as_str())
                .bind(new_id())
                .bind(name)
                .bind(name.to_lowercase())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// Writes an existing group row; `false` when it is gone or its new name is taken.
    pub async fn update_scim_group(&self, conn: &ConnectionId, r: &ScimGroupRow) -> Result<bool> {
        let res = with_pool!(self, p => sqlx::query(
            "UPDATE scim_groups SET display_name = $3, name_key = $4, external_id = $5, \
             updated_at = $6 WHERE connection_id = $1 AND id = $2",
        )
        .bind(conn.as_str())
        .bind(&r.id)
        .bind(&r.display_name)
        .bind(r.display_name.to_lowercase())
        .bind(&r.external_id)
        .bind(micros(r.updated_at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        unique_write(res)
    }

    pub async fn delete_scim_group(&self, conn: &ConnectionId, id: &str) -> Result<bool> {
        let n = with_pool!(self, p => sqlx::query(
            "DELETE FROM scim_groups WHERE connection_id = $1 AND id = $2",
        )
        .bind(conn.as_str())
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}
