//! The web console's users (Argon2id password hashes) and sessions (SHA-256 of the cookie's
//! secret). Sessions live in the store so that any replica serving the console knows them.

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use lp_types::{InvalidValue, Secret};
use rand::Rng as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{
    Result, Store, StoreError, duration_micros, from_micros, is_unique_violation, now_micros,
    opt_from_micros, with_pool,
};

/// A console user, without the password hash.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleUser {
    pub username: String,
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Logged in with an API key (its id).
    Key(String),
    /// A console user (the username).
    User(String),
}

impl Principal {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            Principal::Key(id) => ("key", id),
            Principal::User(u) => ("user", u),
        }
    }
}

/// A live session.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub principal: Principal,
    /// The token every state-changing request of the session carries.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The cookie value's prefix: a session secret is recognisable in a leaked log.
pub const SESSION_PREFIX: &str = "lpbs_";
const MAX_USERNAME_LEN: usize = 64;
/// Long enough to resist guessing offline should the hashes leak; no composition rules (NIST
/// SP 800-63B).
pub const MIN_PASSWORD_LEN: usize = 12;
const MAX_PASSWORD_LEN: usize = 1024;
/// A sliding expiry is moved forward at most this often per session.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

fn random_token(len: usize) -> String {
    rand::rngs::OsRng
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn digest_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A console username: 1-64 of letters, digits, `.`, `_`, `-` and `@` (an e-mail works).
pub fn validate_username(raw: &str) -> std::result::Result<String, InvalidValue> {
    let name = raw.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_USERNAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(name.to_lowercase())
    } else {
        Err(InvalidValue::new(
            "username",
            raw,
            format!("use 1-{MAX_USERNAME_LEN} letters, digits, '.', '_', '-' or '@'"),
        ))
    }
}

/// A new password: at least [`MIN_PASSWORD_LEN`] characters.
pub fn validate_password(p: &Secret) -> std::result::Result<(), InvalidValue> {
    let n = p.expose().chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&n) {
        return Err(InvalidValue::new(
            "password",
            "***",
            format!("must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters long"),
        ));
    }
    Ok(())
}

fn hash_password(p: &Secret) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(p.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Corrupt {
            field: "console password hash",
            reason: e.to_string(),
        })
}

/// A hash checked when the user does not exist, so that an unknown name takes as long as a
/// wrong password (no user enumeration by timing).
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password(&Secret::new("not a password of anyone")).unwrap_or_default())
}

fn verify_password(p: &Secret, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(p.expose().as_bytes(), &h)
            .is_ok()
    })
}

#[derive(sqlx::FromRow)]
struct UserRow {
    username: String,
    password_hash: String,
    read_only: bool,
    created_at: i64,
    last_login_at: Option<i64>,
}

impl UserRow {
    fn user(&self) -> Result<ConsoleUser> {
        Ok(ConsoleUser {
            username: self.username.clone(),
            read_only: self.read_only,
            created_at: from_micros("console user created_at", self.created_at)?,
            last_login_at: opt_from_micros("console user last_login_at", self.last_login_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    principal_kind: String,
    principal_id: String,
    csrf: String,
    created_at: i64,
    expires_at: i64,
}

const USER_COLUMNS: &str = "username, password_hash, read_only, created_at, last_login_at";

impl Store {
    /// Adds a console user (409 when the name is taken).
    pub async fn create_console_user(
        &self,
        username: &str,
        password: &Secret,
        read_only: bool,
    ) -> Result<ConsoleUser> {
        let username = validate_username(username)?;
        validate_password(password)?;
        let hash = hash_password(password)?;
        let now = now_micros();
        let r = with_pool!(self, p => sqlx::query(
            "INSERT INTO console_users (username, password_hash, read_only, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&username)
        .bind(&hash)
        .bind(read_only)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()));
        match r {
            Ok(_) => Ok(ConsoleUser {
                username,
                read_only,
                created_at: from_micros("console user created_at", now)?,
                last_login_at: None,
            }),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                what: format!("console user {username:?} (it exists already)"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a console user's password and ends their sessions; `false` when unknown.
    pub async fn set_console_password(&self, username: &str, password: &Secret) -> Result<bool> {
        let username = validate_username(username)?;
        validate_password(password)?;
        let hash = hash_password(password)?;
        let n = with_pool!(self, p => sqlx::query(
            "UPDATE console_users SET password_hash = $1 WHERE username = $2",
        )
        .bind(&hash)
        .bind(&username)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        self.end_sessions_of(&Principal::User(username)).await?;
        Ok(n > 0)
    }

    pub async fn list_console_users(&self) -> Result<Vec<ConsoleUser>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM console_users ORDER BY username");
        let rows = with_pool!(self, p => sqlx::query_as::<_, UserRow>(&sql).fetch_all(p).await)?;
        rows.iter().map(UserRow::user).collect()
    }

    pub async fn console_user(&self, username: &str) -> Result<Option<ConsoleUser>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM console_users WHERE username = $1");
        let row = with_pool!(self, p => sqlx::query_as::<_, UserRow>(&sql)
            .bind(username.trim().to_lowercase())
            .fetch_optional(p)
            .await)?;
        row.as_ref().map(UserRow::user).transpose()
    }

    /// Removes a console user and ends their sessions; `false` when unknown.
    pub async fn delete_console_user(&self, username: &str) -> Result<bool> {
        let username = username.trim().to_lowercase();
        let n = with_pool!(self, p => sqlx::query("DELETE FROM console_users WHERE username = $1")
            .bind(&username)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        self.end_sessions_of(&Principal::User(username)).await?;
        Ok(n > 0)
    }

    /// The user when the password is right; `None` for an unknown name or a wrong password
    /// (the same answer and about the same time for both).
    pub async fn verify_console_user(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<Option<ConsoleUser>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM console_users WHERE username = $1");
        let row = with_pool!(self, p => sqlx::query_as::<_, UserRow>(&sql)
            .bind(username.trim().to_lowercase())
            .fetch_optional(p)
            .await)?;
        let hash = row
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |r| r.password_hash.clone());
        let pw = password.clone();
        // Argon2 takes tens of milliseconds of CPU: off the async workers.
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
            .await
            .unwrap_or(false);
        let Some(row) = row.filter(|_| ok) else {
            return Ok(None);
        };
        let now = now_micros();
        with_pool!(self, p => sqlx::query(
            "UPDATE console_users SET last_login_at = $1 WHERE username = $2",
        )
        .bind(now)
        .bind(&row.username)
        .execute(p)
        .await
        .map(|_| ()))?;
        let mut user = row.user()?;
        user.last_login_at = Some(from_micros("console user last_login_at", now)?);
        Ok(Some(user))
    }

    /// Starts a session; returns it and the cookie value (shown once, stored as a digest).
    pub async fn create_console_session(
        &self,
        principal: &Principal,
        ttl: Duration,
    ) -> Result<(ConsoleSession, Secret)> {
        let secret = format!("{SESSION_PREFIX}{}", random_token(43));
        let csrf = random_token(32);
        let now = now_micros();
        let expires = now.saturating_add(duration_micros(ttl));
        let (kind, id) = principal.parts();
        with_pool!(self, p => sqlx::query(
            "INSERT INTO console_sessions (id_hash, principal_kind, principal_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(digest_hex(&secret))
        .bind(kind)
        .bind(id)
        .bind(&csrf)
        .bind(now)
        .bind(expires)
        .execute(p)
        .await
        .map(|_| ()))?;
        // Expired sessions of anyone are swept now and then, on logins (cheap: indexed by key).
        let _ = with_pool!(self, p => sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(p)
            .await
            .map(|_| ()));
        Ok((
            ConsoleSession {
                principal: principal.clone(),
                csrf,
                created_at: from_micros("console session created_at", now)?,
                expires_at: from_micros("console session expires_at", expires)?,
            },
            Secret::new(secret),
        ))
    }

    /// The live session a cookie names, its expiry moved forward to `now + ttl` (at most once
    /// a minute); `None` when unknown or expired.
    pub async fn console_session(
        &self,
        cookie: &str,
        ttl: Duration,
    ) -> Result<Option<ConsoleSession>> {
        if !cookie.starts_with(SESSION_PREFIX) || cookie.len() > 128 {
            return Ok(None);
        }
        let id_hash = digest_hex(cookie);
        let row = with_pool!(self, p => sqlx::query_as::<_, SessionRow>(
            "SELECT principal_kind, principal_id, csrf, created_at, expires_at \
             FROM console_sessions WHERE id_hash = $1",
        )
        .bind(&id_hash)
        .fetch_optional(p)
        .await)?;
        let now = now_micros();
        let Some(row) = row.filter(|r| r.expires_at > now) else {
            return Ok(None);
        };
        let principal = match row.principal_kind.as_str() {
            "key" => Principal::Key(row.principal_id.clone()),
            "user" => Principal::User(row.principal_id.clone()),
            other => {
                return Err(StoreError::Corrupt {
                    field: "console session principal_kind",
                    reason: format!("unknown kind {other:?}"),
                });
            }
        };
        let mut expires = row.expires_at;
        let wanted = now.saturating_add(duration_micros(ttl));
        if wanted - expires > duration_micros(TOUCH_EVERY) {
            with_pool!(self, p => sqlx::query(
                "UPDATE console_sessions SET expires_at = $1 WHERE id_hash = $2",
            )
            .bind(wanted)
            .bind(&id_hash)
            .execute(p)
            .await
            .map(|_| ()))?;
            expires = wanted;
        }
        Ok(Some(ConsoleSession {
            principal,
            csrf: row.csrf,
            created_at: from_micros("console session created_at", row.created_at)?,
            expires_at: from_micros("console session expires_at", expires)?,
        }))
    }

    /// Ends the session a cookie names (logout).
    pub async fn end_console_session(&self, cookie: &str) -> Result<()> {
        with_pool!(self, p => sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(digest_hex(cookie))
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Ends every session of a principal (a removed user, a new password, a revoked key).
    pub async fn end_sessions_of(&self, principal: &Principal) -> Result<u64> {
        let (kind, id) = principal.parts();
        let n = with_pool!(self, p => sqlx::query(
            "DELETE FROM console_sessions WHERE principal_kind = $1 AND principal_id = $2",
        )
        .bind(kind)
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n)
    }
}
