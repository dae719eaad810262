//! Persistence: connections (provisioning hashes encrypted at rest), API keys (hashed), one-shot
//! claims and leases, on embedded SQLite (the default, `<data dir>/lpbridge.db`) or PostgreSQL
//! (`postgres://…`, for several `serve` replicas on one database).
//!
//! # Design
//!
//! - **One [`Store`], an enum over two native pools** (`SqlitePool` | `PgPool`) rather than
//!   `sqlx::Any`: SQLite gets its real connect options (WAL, `busy_timeout`, foreign keys, a
//!   0600 file) instead of URL strings and `after_connect` pragmas, both drivers keep their native
//!   type mapping (booleans, `BIGINT`, `BYTEA`/`BLOB`, no Any type-compatibility surprises) and no
//!   runtime driver registry is needed. The cost is that each query is compiled once per backend:
//!   the `with_pool!` macro expands one body (one SQL text, `$1` placeholders work for both)
//!   in two match arms, so every query is still written once.
//! - **SQL is portable**: `INSERT … ON CONFLICT … DO UPDATE … WHERE … RETURNING` and plain
//!   types. The few backend differences (the database clock) go through [`Backend`].
//! - **Migrations**: `migrations/sqlite` and `migrations/postgres`, applied by
//!   `sqlx::migrate!` on open, on a dedicated connection that is closed afterwards. On PostgreSQL
//!   sqlx holds an advisory lock while migrating, so replicas starting together apply each
//!   migration once; on SQLite an exclusive lock on `<db>.lock` does the same for processes
//!   sharing the file. A later issue adds tables with a new `000N_<name>.sql` in *both*
//!   directories; an applied migration is never edited (its checksum is checked).
//! - **Timestamps** are `BIGINT` microseconds since the Unix epoch (UTC), returned as
//!   `chrono::DateTime<Utc>`. Row timestamps come from the application's clock; lease expiry is
//!   computed and compared on the *database* clock, so replicas with skewed clocks still agree
//!   on who holds a lease.
//! - **Secrets**: provisioning hashes and PSA credentials are sealed with the master key
//!   ([`crate::crypto`]) bound to the connection (or PSA integration) id; API keys are stored
//!   as SHA-256 digests. No error, log line or `Debug` output carries a secret, and database
//!   URLs are shown with their password replaced by `***`.

mod api_keys;
mod connections;
pub mod console;
mod coord;
pub mod events;
pub mod msp;
mod psa;
pub mod scim;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lp_types::InvalidValue;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Connection as _};

pub use api_keys::{API_KEY_PREFIX, ApiKeyInfo, KeyPurpose, TOUCH_INTERVAL};
pub use connections::{
    Connection, ConnectionPatch, ConnectionSummary, NewConnection, validate_connection_id,
};
pub use coord::Lease;
pub use events::{
    DeadLetter, DeadLetterQuery, EventListQuery, Fence, NewWebhook, StoredEvent, WatcherRow,
    WatcherStatus, Webhook, WebhookPatch, WebhookSummary,
};
pub use psa::{
    AutotaskSettings, ConnectWiseSettings, NewPsaIntegration, PsaIntegration,
    PsaIntegrationSummary, PsaSecrets, PsaSettings, Tuning as PsaTuning,
    directory as psa_directory, validate_psa_id,
};

use crate::crypto::{CryptoError, KeySource, MasterKey};

/// The SQLite database's file name inside the data directory.
pub const DB_FILE: &str = "lpbridge.db";
/// How long a SQLite statement waits for another writer before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a PostgreSQL pool waits for a free connection.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(15);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Everything the store reports. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The object exists already (or a uniqueness rule refused the write).
    #[error("{what} already exists")]
    Conflict { what: String },
    /// A value refused before it reached the database (names the field and the value).
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// `--database-url` / `LPBRIDGE_DATABASE_URL` is not one the store can open.
    #[error("invalid database URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The database could not be opened or reached.
    #[error("cannot open the database {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed on {target}: {reason}")]
    Migration { target: String, reason: String },
    /// The master key or a ciphertext.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The data directory or a file in it.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A stored value that this version cannot read.
    #[error("corrupt stored {field}: {reason}")]
    Corrupt { field: &'static str, reason: String },
}

impl StoreError {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// An SQL expression for "now" in microseconds since the epoch on the database's clock.
    pub(crate) fn now_sql(self) -> &'static str {
        match self {
            // Millisecond precision, on every SQLite version.
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A database URL: `postgres://…` / `postgresql://…` or `sqlite://PATH` / `sqlite:PATH`.
/// `Debug` and `Display` replace a password with `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    kind: UrlKind,
}

#[derive(Clone, PartialEq, Eq)]
enum UrlKind {
    Postgres,
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: redact_url(s),
            reason: reason.into(),
        };
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            PgConnectOptions::from_str(s).map_err(|e| invalid(&e.to_string()))?;
            return Ok(Self {
                raw: s.to_owned(),
                kind: UrlKind::Postgres,
            });
        }
        if let Some(rest) = lower.strip_prefix("sqlite:").map(|_| &s["sqlite:".len()..]) {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(invalid(
                    "no file path (e.g. sqlite:///var/lib/lpbridge/lpbridge.db)",
                ));
            }
            if path.contains('?') || path.starts_with(":memory:") {
                return Err(invalid(
                    "give a plain file path (in-memory databases and URL options are not supported)",
                ));
            }
            return Ok(Self {
                raw: s.to_owned(),
                kind: UrlKind::Sqlite(PathBuf::from(path)),
            });
        }
        Err(invalid("expected postgres://USER@HOST/DB or sqlite://PATH"))
    }

    pub fn backend(&self) -> Backend {
        match self.kind {
            UrlKind::Postgres => Backend::Postgres,
            UrlKind::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The URL itself, password included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.raw
    }
}

impl FromStr for DatabaseUrl {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.raw))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// The URL with any password replaced by `***` (and unparseable URLs cut to their scheme).
pub fn redact_url(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            // Passwords can also travel as a query parameter.
            if u.query_pairs()
                .any(|(k, _)| k.eq_ignore_ascii_case("password"))
            {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k.eq_ignore_ascii_case("password") {
                            "***".to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => match s.split_once(':') {
            Some((scheme, _)) if s.contains('@') => format!("{scheme}:…"),
            _ => lp_types::shown(s).into_owned(),
        },
    }
}

/// How to open a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `None`: SQLite at `<data_dir>/lpbridge.db`.
    pub database_url: Option<DatabaseUrl>,
    /// Holds the SQLite database (by default) and the master key file.
    pub data_dir: PathBuf,
    /// Where the master key comes from.
    pub key: KeySource,
    /// Pool size (default: 4 on SQLite, 10 on PostgreSQL).
    pub max_connections: Option<u32>,
}

impl StoreConfig {
    /// The configuration for `data_dir` with the key from `LPBRIDGE_MASTER_KEY` or
    /// `<data_dir>/master.key`.
    pub fn new(database_url: Option<DatabaseUrl>, data_dir: impl Into<PathBuf>) -> Result<Self> {
        let data_dir = data_dir.into();
        let key = KeySource::from_env(&data_dir)?;
        Ok(Self {
            database_url,
            data_dir,
            key,
            max_connections: None,
        })
    }

    /// The SQLite file this configuration opens (`None` on PostgreSQL).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match &self.database_url {
            None => Some(self.data_dir.join(DB_FILE)),
            Some(DatabaseUrl {
                kind: UrlKind::Sqlite(p),
                ..
            }) => Some(p.clone()),
            Some(_) => None,
        }
    }

    /// Where the data lives, for messages (password redacted).
    pub fn target(&self) -> String {
        match (&self.database_url, self.sqlite_path()) {
            (_, Some(p)) => format!("sqlite:{}", p.display()),
            (Some(u), None) => u.to_string(),
            (None, None) => String::new(),
        }
    }
}

/// The two pools.
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's native pool (`&SqlitePool` or `&PgPool`): one
/// query text, compiled for both backends.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.pool() {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The store: cheap to clone (one shared pool).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    backend: Backend,
    target: String,
    key: MasterKey,
    /// Set once the master key has been checked against the store's key check.
    key_checked: tokio::sync::OnceCell<()>,
    /// When this process last wrote each API key's `last_used_at`.
    touched: Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating and migrating as needed) the store: PostgreSQL or SQLite per `url`, else
    /// SQLite at `<data_dir>/lpbridge.db`. The data directory is created with mode 0700; the key
    /// comes from `LPBRIDGE_MASTER_KEY` or `<data_dir>/master.key`.
    pub async fn open(url: Option<&str>, data_dir: &Path) -> Result<Store> {
        let url = url.map(DatabaseUrl::parse).transpose()?;
        Self::open_with(StoreConfig::new(url, data_dir)?).await
    }

    /// Opens the store described by `config`, creating it when missing.
    pub async fn open_with(config: StoreConfig) -> Result<Store> {
        match config.sqlite_path() {
            Some(path) => Self::open_sqlite(&config, &path, true).await,
            None => Self::open_postgres(&config).await,
        }
    }

    /// Like [`open_with`](Self::open_with), but `None` when the SQLite file does not exist
    /// yet: a read that finds no store creates none (PostgreSQL is always opened).
    pub async fn open_existing(config: StoreConfig) -> Result<Option<Store>> {
        match config.sqlite_path() {
            Some(path) if !path.exists() => Ok(None),
            Some(path) => Self::open_sqlite(&config, &path, false).await.map(Some),
            None => Self::open_postgres(&config).await.map(Some),
        }
    }

    async fn open_sqlite(config: &StoreConfig, path: &Path, create: bool) -> Result<Store> {
        let target = config.target();
        if create {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::crypto::create_private_dir(dir)
                    .map_err(|e| StoreError::io("create", dir, e))?;
            }
            // Created 0600 here; SQLite gives its -wal and -shm files the same mode.
            crate::crypto::open_private(path).map_err(|e| StoreError::io("create", path, e))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            .disable_statement_logging();
        // Processes sharing the file migrate one at a time.
        let lock_path = {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(".lock");
            path.with_file_name(name)
        };
        let lock = tokio::task::spawn_blocking(move || -> Result<std::fs::File> {
            let file = crate::crypto::open_private(&lock_path)
                .map_err(|e| StoreError::io("open", &lock_path, e))?;
            file.lock()
                .map_err(|e| StoreError::io("lock", &lock_path, e))?;
            Ok(file)
        })
        .await
        .map_err(|e| StoreError::Migration {
            target: target.clone(),
            reason: format!("lock task failed: {e}"),
        })??;
        let migrated = async {
            let mut conn = SqliteConnection::connect_with(&options)
                .await
                .map_err(|source| StoreError::Connect {
                    target: target.clone(),
                    source,
                })?;
            let result = SQLITE_MIGRATIONS.run_direct(&mut conn).await;
            let _ = sqlx::Connection::close(conn).await;
            result.map_err(|e| migration_error(&target, e))
        }
        .await;
        drop(lock);
        migrated?;
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections.unwrap_or(4))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect {
                target: target.clone(),
                source,
            })?;
        Ok(Self::from_pool(
            Pool::Sqlite(pool),
            Backend::Sqlite,
            target,
            config,
        ))
    }

    async fn open_postgres(config: &StoreConfig) -> Result<Store> {
        let target = config.target();
        let url = config
            .database_url
            .as_ref()
            .map(DatabaseUrl::expose)
            .unwrap_or_default();
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl {
                url: target.clone(),
                reason: e.to_string(),
            })?
            .disable_statement_logging();
        // A dedicated connection, closed afterwards: should a migration fail, sqlx leaves its
        // advisory lock held by the connection, which must not go back to a pool.
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|source| StoreError::Connect {
                target: target.clone(),
                source,
            })?;
        let result = POSTGRES_MIGRATIONS.run_direct(&mut conn).await;
        let _ = sqlx::Connection::close(conn).await;
        result.map_err(|e| migration_error(&target, e))?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.unwrap_or(10))
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect {
                target: target.clone(),
                source,
            })?;
        Ok(Self::from_pool(
            Pool::Postgres(pool),
            Backend::Postgres,
            target,
            config,
        ))
    }

    fn from_pool(pool: Pool, backend: Backend, target: String, config: &StoreConfig) -> Store {
        Store {
            inner: Arc::new(Inner {
                pool,
                backend,
                target,
                key: MasterKey::new(config.key.clone()),
                key_checked: tokio::sync::OnceCell::new(),
                touched: Mutex::new(Default::default()),
            }),
        }
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Where the data lives (`sqlite:/path/lpbridge.db` or the PostgreSQL URL with its password
    /// redacted), for logs and messages.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Readiness: one round trip to the database.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Closes the pool (waits for connections in use to be returned).
    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }

    /// Claims `name` once for the lifetime of the database: exactly one caller ever gets `true`,
    /// across processes and replicas (e.g. "print the bootstrap API key").
    pub async fn claim_once(&self, name: &str) -> Result<bool> {
        let key = format!("claim:{name}");
        let done = with_pool!(self, p => sqlx::query(
            "INSERT INTO meta (name, value, created_at) VALUES ($1, NULL, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&key)
        .bind(now_micros())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Whether `name` was claimed by [`claim_once`](Self::claim_once).
    pub async fn is_claimed(&self, name: &str) -> Result<bool> {
        let key = format!("claim:{name}");
        let n: i64 = with_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM meta WHERE name = $1",
        )
        .bind(&key)
        .fetch_one(p)
        .await)?;
        Ok(n > 0)
    }

    /// The master key, checked against the store's key check (written with the first key ever
    /// used, so a second key is refused instead of sealing rows nobody else can read).
    pub(crate) async fn key_for_write(&self) -> Result<&MasterKey> {
        self.inner
            .key_checked
            .get_or_try_init(|| async { self.check_key(true).await.map(|_| ()) })
            .await?;
        Ok(&self.inner.key)
    }

    /// Checks the key against the stored key check; with `create`, writes the check when there
    /// is none yet (generating the key file if needed). `Ok(false)`: no check stored (and
    /// `create` was false).
    async fn check_key(&self, create: bool) -> Result<bool> {
        const NAME: &str = "master_key_check";
        const AAD: &[u8] = b"lpbridge/meta/master_key_check";
        const PLAIN: &[u8] = b"lpbridge master key check v1";
        let what = "the store's key check";
        for _ in 0..2 {
            let stored: Option<Option<String>> = with_pool!(self, p => sqlx::query_scalar(
                "SELECT value FROM meta WHERE name = $1",
            )
            .bind(NAME)
            .fetch_optional(p)
            .await)?;
            match stored {
                Some(value) => {
                    let sealed = value.as_deref().and_then(decode_sealed).ok_or_else(|| {
                        StoreError::Corrupt {
                            field: "master key check",
                            reason: "not nonce.ciphertext in base64".into(),
                        }
                    })?;
                    let plain = self.inner.key.open(what, AAD, &sealed)?;
                    if plain != PLAIN {
                        return Err(StoreError::Corrupt {
                            field: "master key check",
                            reason: "unexpected content".into(),
                        });
                    }
                    return Ok(true);
                }
                None if !create => return Ok(false),
                None => {
                    let sealed = self.inner.key.seal(AAD, PLAIN)?;
                    with_pool!(self, p => sqlx::query(
                        "INSERT INTO meta (name, value, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(NAME)
                    .bind(encode_sealed(&sealed))
                    .bind(now_micros())
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected()))?;
                    // Read it back: another replica may have written its check first.
                }
            }
        }
        Ok(false)
    }

    /// Decrypts a secret read from a row (`what` names it in errors). A failed decryption is
    /// refined: with a key that passes the key check the ciphertext itself is at fault
    /// (altered, or copied from another row).
    pub(crate) async fn open_sealed(
        &self,
        what: &str,
        aad: &[u8],
        sealed: &crate::crypto::Sealed,
    ) -> Result<Vec<u8>> {
        match self.inner.key.open(what, aad, sealed) {
            Ok(plain) => Ok(plain),
            Err(e) => Err(self.explain_open_failure(e).await),
        }
    }

    async fn explain_open_failure(&self, err: CryptoError) -> StoreError {
        match err {
            CryptoError::WrongKey { what, origin } => match self.check_key(false).await {
                Ok(true) => CryptoError::Tampered { what }.into(),
                _ => CryptoError::WrongKey { what, origin }.into(),
            },
            other => other.into(),
        }
    }

    pub(crate) fn touched(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, std::time::Instant>> {
        // The map only rate-limits writes; a poisoned lock still holds usable data.
        self.inner
            .touched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn migration_error(target: &str, e: sqlx::migrate::MigrateError) -> StoreError {
    use sqlx::migrate::MigrateError;
    let reason = match &e {
        MigrateError::VersionMissing(v) => format!(
            "the database was migrated by a newer lpbridge (migration {v} is unknown to this \
             version); upgrade lpbridge"
        ),
        MigrateError::VersionMismatch(v) => format!(
            "migration {v} differs from the one applied to this database (a modified lpbridge \
             build?)"
        ),
        MigrateError::Dirty(v) => format!(
            "migration {v} was interrupted earlier and left the database partly migrated; \
             restore a backup or fix it by hand"
        ),
        other => other.to_string(),
    };
    StoreError::Migration {
        target: target.into(),
        reason,
    }
}

/// Now, in microseconds since the epoch (the application's clock).
pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// A stored timestamp.
pub(crate) fn from_micros(field: &'static str, v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| StoreError::Corrupt {
        field,
        reason: format!("timestamp {v} out of range"),
    })
}

pub(crate) fn opt_from_micros(
    field: &'static str,
    v: Option<i64>,
) -> Result<Option<DateTime<Utc>>> {
    v.map(|v| from_micros(field, v)).transpose()
}

/// A duration in microseconds, for SQL arithmetic (saturating).
pub(crate) fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}

/// Whether an error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn encode_sealed(s: &crate::crypto::Sealed) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    format!("{}.{}", B64.encode(&s.nonce), B64.encode(&s.ciphertext))
}

fn decode_sealed(v: &str) -> Option<crate::crypto::Sealed> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    let (n, c) = v.split_once('.')?;
    Some(crate::crypto::Sealed {
        nonce: B64.decode(n).ok()?,
        ciphertext: B64.decode(c).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_parsed_and_redacted() {
        let u = DatabaseUrl::parse("postgres://lp:hunter2@db.internal:5432/lpbridge").unwrap();
        assert_eq!(u.backend(), Backend::Postgres);
        assert!(!u.to_string().contains("hunter2"), "{u}");
        assert!(!format!("{u:?}").contains("hunter2"));
        assert!(u.to_string().contains("db.internal"));
        let u = DatabaseUrl::parse("postgresql://h/db?password=hunter2&sslmode=disable").unwrap();
        assert!(!u.to_string().contains("hunter2"), "{u}");
        let s = DatabaseUrl::parse("sqlite:///var/lib/lpbridge/x.db").unwrap();
        assert_eq!(s.backend(), Backend::Sqlite);
        let cfg = StoreConfig {
            database_url: Some(s),
            data_dir: "/data".into(),
            key: KeySource::File("/data/master.key".into()),
            max_connections: None,
        };
        assert_eq!(
            cfg.sqlite_path().unwrap(),
            PathBuf::from("/var/lib/lpbridge/x.db")
        );
        let rel = DatabaseUrl::parse("sqlite:rel.db").unwrap();
        assert!(matches!(rel.kind, UrlKind::Sqlite(ref p) if p == Path::new("rel.db")));
        for bad in [
            "mysql://u:hunter2@h/db",
            "sqlite://",
            "sqlite::memory:",
            "nonsense",
        ] {
            let e = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid database URL"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn the_default_database_lives_in_the_data_dir() {
        let cfg = StoreConfig {
            database_url: None,
            data_dir: "/data".into(),
            key: KeySource::File("/data/master.key".into()),
            max_connections: None,
        };
        assert_eq!(
            cfg.sqlite_path().unwrap(),
            PathBuf::from("/data/lpbridge.db")
        );
        assert_eq!(cfg.target(), "sqlite:/data/lpbridge.db");
    }

    #[test]
    fn sealed_values_round_trip_through_text() {
        let s = crate::crypto::Sealed {
            nonce: vec![1; 12],
            ciphertext: vec![2; 40],
        };
        assert_eq!(decode_sealed(&encode_sealed(&s)), Some(s));
        assert_eq!(decode_sealed("nodot"), None);
    }

    /// Every public future is `Send` for any borrow (axum handlers and `tokio::spawn` need it).
    #[allow(dead_code)]
    fn futures_are_send(s: Store, id: lp_types::ConnectionId) {
        fn spawn<F: std::future::Future + Send + 'static>(_: F) {}
        spawn(async move {
            let _ = s.ping().await;
            let _ = s.get_connection(&id).await;
            let _ = s.connection_summary(&id).await;
            let _ = s.list_connections().await;
            let _ = s.update_connection(&id, ConnectionPatch::default()).await;
            let _ = s.delete_connection(&id).await;
            let _ = s.connection_count().await;
            let _ = s.verify_api_key("x").await;
            let _ = s.create_api_key("x", true).await;
            let _ = s.list_api_keys().await;
            let _ = s.revoke_api_key("x").await;
            let _ = s.claim_once("x").await;
            let _ = s.try_acquire_lease("x", "o", Duration::from_secs(1)).await;
            let _ = s.renew_lease("x", "o", Duration::from_secs(1)).await;
            let _ = s.release_lease("x", "o").await;
            let _ = s.lease("x").await;
            let _ = s.get_psa_integration(&id).await;
            let _ = s.psa_integration_summary(&id).await;
            let _ = s.list_psa_integrations().await;
            let _ = s.delete_psa_integration(&id).await;
            let _ = Store::open(None, Path::new("/x")).await;
            s.close().await;
        });
    }
}
