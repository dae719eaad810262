//! Event triggers' storage (issue 7): the collected events (the outbox and the source of
//! `GET /events`), each connection's watcher state, each sink's delivery position, dead
//! letters, webhook subscriptions (secrets sealed with the master key) and the per-connection
//! `events_watch` switch.
//!
//! # The outbox
//!
//! [`Store::commit_events`] writes one page of new events **and** the watcher's cursor and
//! de-duplication state in one transaction, fenced by the watcher's lease: a watcher that lost
//! its lease commits nothing. `events.event_id` is unique per connection, so a page read again
//! (a resumed walk, a new cursor, another replica taking over) inserts only what is missing:
//! the table itself is the last line of the exactly-once guarantee.
//!
//! `seq` orders rows by commit within a connection: a commit first takes a transaction lock
//! on the connection (PostgreSQL's `pg_advisory_xact_lock`; SQLite has one writer anyway), so
//! commits of one connection's cursors run one at a time and a sink that has seen `seq` N never
//! later finds a row below N committed after it.

use chrono::{DateTime, Utc};
use lp_types::{ConnectionId, InvalidValue, Secret};
use serde::Serialize;

use super::{Result, Store, StoreError, from_micros, now_micros, opt_from_micros, with_pool};
use crate::crypto::Sealed;
use crate::events::sinks::{SinkConfig, WebhookConfig};
use crate::events::{Category, EventRecord};

/// Rows per multi-row `INSERT` (9 bound values each: well under SQLite's 32,766 and
/// PostgreSQL's 65,535 parameters).
const INSERT_CHUNK: usize = 500;

/// The lease that must still be held for a write to go through.
#[derive(Debug, Clone, Copy)]
pub struct Fence<'a> {
    pub lease: &'a str,
    pub owner: &'a str,
}

/// One stored event: its commit order and the record.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub record: EventRecord,
}

/// A connection's saved watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherRow {
    /// [`crate::events::DedupState`] as JSON.
    pub state: String,
    /// The options the state was made for, as JSON (the watcher's own format).
    pub options: String,
    pub updated_at: DateTime<Utc>,
}

/// Filters and paging of [`Store::list_events`].
#[derive(Debug, Clone, Default)]
pub struct EventListQuery {
    /// The username, any case.
    pub user: Option<String>,
    pub category: Option<Category>,
    /// The `Action`, any case.
    pub action: Option<String>,
    /// `time_utc` at or after.
    pub from: Option<DateTime<Utc>>,
    /// `time_utc` at or before.
    pub to: Option<DateTime<Utc>>,
    /// Keyset: the `(time_utc µs, seq)` of the last row served.
    pub after: Option<(i64, i64)>,
    /// Oldest first instead of newest first.
    pub ascending: bool,
    pub limit: usize,
}

/// A batch a sink gave up on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub connection_id: String,
    pub sink: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    pub first_seq: i64,
    pub last_seq: i64,
    pub event_count: i64,
    /// The last delivery error (never holds the webhook secret).
    pub error: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub replayed_at: Option<DateTime<Utc>>,
}

/// Which dead letters to list.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterQuery {
    pub connection: Option<ConnectionId>,
    pub sink: Option<String>,
    pub webhook_id: Option<String>,
    pub id: Option<i64>,
    /// Include the ones already replayed.
    pub include_replayed: bool,
}

/// A webhook subscription to create. The secret is write-only: it is sealed and never
/// returned by any read.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub connection_id: ConnectionId,
    pub url: String,
    pub secret: Secret,
    /// `None`: every event.
    pub categories: Option<Vec<Category>>,
    pub enabled: bool,
}

/// A subscription without its secret (listings, API responses).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookSummary {
    pub id: String,
    pub connection_id: String,
    pub url: String,
    pub categories: Option<Vec<Category>>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookSummary {
    /// The name its delivery position and dead letters are kept under.
    pub fn sink_name(&self) -> String {
        webhook_sink_name(&self.id)
    }
}

/// The sink name of subscription `id`: `webhook:<id>`.
pub fn webhook_sink_name(id: &str) -> String {
    format!("webhook:{id}")
}

/// A subscription with its decrypted secret (a redacting [`Secret`]).
#[derive(Debug, Clone)]
pub struct Webhook {
    pub summary: WebhookSummary,
    pub secret: Secret,
}

impl Webhook {
    /// The sink configuration that delivers to it (default retry policy).
    pub fn sink_config(&self) -> SinkConfig {
        let mut c = WebhookConfig::new(self.summary.url.clone(), self.secret.clone());
        c.name = Some(self.summary.sink_name());
        SinkConfig::Webhook(c)
    }
}

/// Changes to a subscription; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub secret: Option<Secret>,
    /// `Some(None)`: every event.
    pub categories: Option<Option<Vec<Category>>>,
    pub enabled: Option<bool>,
}

impl WebhookPatch {
    pub fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.secret.is_none()
            && self.categories.is_none()
            && self.enabled.is_none()
    }
}

/// What `serve` shows about a connection's watcher.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatcherStatus {
    pub connection_id: String,
    pub events_watch: bool,
    /// Events stored for the connection.
    pub events: i64,
    pub last_seq: i64,
    /// When the watcher last committed.
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    record: String,
}

impl EventRow {
    fn into_stored(self) -> Result<StoredEvent> {
        let record = serde_json::from_str(&self.record).map_err(|e| StoreError::Corrupt {
            field: "event record",
            reason: format!("seq {}: {e}", self.seq),
        })?;
        Ok(StoredEvent {
            seq: self.seq,
            record,
        })
    }
}

#[derive(sqlx::FromRow)]
struct WatcherDbRow {
    state: String,
    options: String,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct DeadLetterRow {
    id: i64,
    connection_id: String,
    sink: String,
    webhook_id: Option<String>,
    first_seq: i64,
    last_seq: i64,
    event_count: i64,
    error: String,
    attempts: i64,
    created_at: i64,
    replayed_at: Option<i64>,
}

const DEAD_LETTER_COLUMNS: &str = "id, connection_id, sink, webhook_id, first_seq, last_seq, \
     event_count, error, attempts, created_at, replayed_at";

impl DeadLetterRow {
    fn into_dead_letter(self) -> Result<DeadLetter> {
        Ok(DeadLetter {
            id: self.id,
            connection_id: self.connection_id,
            sink: self.sink,
            webhook_id: self.webhook_id,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            event_count: self.event_count,
            error: self.error,
            attempts: self.attempts,
            created_at: from_micros("dead letter created_at", self.created_at)?,
            replayed_at: opt_from_micros("dead letter replayed_at", self.replayed_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: String,
    connection_id: String,
    url: String,
    categories: Option<String>,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct WebhookFullRow {
    #[sqlx(flatten)]
    summary: WebhookRow,
    secret_ciphertext: Vec<u8>,
    secret_nonce: Vec<u8>,
}

const WEBHOOK_COLUMNS: &str = "id, connection_id, url, categories, enabled, created_at, updated_at";

impl WebhookRow {
    fn into_summary(self) -> Result<WebhookSummary> {
        let categories = self
            .categories
            .map(|c| {
                serde_json::from_str::<Vec<Category>>(&c).map_err(|e| StoreError::Corrupt {
                    field: "webhook categories",
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        Ok(WebhookSummary {
            id: self.id,
            connection_id: self.connection_id,
            url: self.url,
            categories,
            enabled: self.enabled,
            created_at: from_micros("webhook created_at", self.created_at)?,
            updated_at: from_micros("webhook updated_at", self.updated_at)?,
        })
    }
}

/// The associated data that binds a sealed webhook secret to its row.
fn webhook_aad(id: &str) -> Vec<u8> {
    format!("lpbridge/webhooks/secret/{id}").into_bytes()
}

fn webhook_what(id: &str) -> String {
    format!("the secret of webhook {id:?}")
}

/// `wh_` and 16 random lower-case letters and digits.
fn new_webhook_id() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..16)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("wh_{tail}")
}

/// Checks a subscription's URL and secret with the webhook sink's own rules.
fn validate_webhook(url: &str, secret: &Secret) -> Result<(), InvalidValue> {
    use crate::events::sinks::SinkConfigError;
    match SinkConfig::Webhook(WebhookConfig::new(url, secret.clone())).validate() {
        Ok(()) => Ok(()),
        Err(SinkConfigError::Invalid(v)) => Err(v),
        Err(other) => Err(InvalidValue::new("url", url, other.to_string())),
    }
}

fn categories_json(c: &Option<Vec<Category>>) -> Option<String> {
    c.as_ref()
        .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into()))
}

fn encode_record(r: &EventRecord) -> Result<String> {
    serde_json::to_string(r).map_err(|e| StoreError::Corrupt {
        field: "event record",
        reason: e.to_string(),
    })
}

/// LastPass's wall-clock `Time` as µs (read as if UTC): the `local_time` column.
fn local_micros(t: chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

/// The SQL condition "`$lease` is held by `$owner`" on the database clock.
fn lease_held(store: &Store, lease: &str, owner: &str) -> String {
    let now = store.backend().now_sql();
    format!(
        "EXISTS (SELECT 1 FROM leases WHERE name = {lease} AND owner = {owner} \
         AND expires_at > {now})"
    )
}

impl Store {
    // ---- watcher state --------------------------------------------------------------------

    /// A saved watcher cursor of a connection, if any.
    pub async fn load_watcher(
        &self,
        conn: &ConnectionId,
        cursor: &str,
    ) -> Result<Option<WatcherRow>> {
        let row = with_pool!(self, p => sqlx::query_as::<_, WatcherDbRow>(
            "SELECT state, options, updated_at FROM event_watchers \
             WHERE connection_id = $1 AND cursor_name = $2",
        )
        .bind(conn.as_str())
        .bind(cursor)
        .fetch_optional(p)
        .await)?;
        row.map(|r| {
            Ok(WatcherRow {
                state: r.state,
                options: r.options,
                updated_at: from_micros("watcher updated_at", r.updated_at)?,
            })
        })
        .transpose()
    }

    /// Saves (creates or replaces) a watcher cursor's state and options while `fence` is
    /// held; `false` when it is not.
    pub async fn save_watcher(
        &self,
        conn: &ConnectionId,
        cursor: &str,
        fence: Fence<'_>,
        state: &str,
        options: &str,
    ) -> Result<bool> {
        let held = lease_held(self, "$5", "$6");
        let sql = format!(
            "INSERT INTO event_watchers (connection_id, cursor_name, state, options, updated_at) \
             SELECT $1, $7, $2, $3, $4 WHERE {held} \
             ON CONFLICT (connection_id, cursor_name) DO UPDATE SET state = excluded.state, \
             options = excluded.options, updated_at = excluded.updated_at"
        );
        let n = with_pool!(self, p => sqlx::query(&sql)
            .bind(conn.as_str())
            .bind(state)
            .bind(options)
            .bind(now_micros())
            .bind(fence.lease)
            .bind(fence.owner)
            .bind(cursor)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// The outbox commit: `records` (those already stored are skipped) and the watcher
    /// cursor's new `state`, in one transaction, while `fence` is held. The cursor's row must
    /// exist ([`Store::save_watcher`]). `None` when the lease is lost (nothing is written);
    /// otherwise the number of events inserted.
    pub async fn commit_events(
        &self,
        conn: &ConnectionId,
        cursor: &str,
        fence: Fence<'_>,
        records: &[EventRecord],
        state: &str,
    ) -> Result<Option<u64>> {
        let held = lease_held(self, "$4", "$5");
        // The per-connection lock that makes `seq` follow commit order (module docs).
        let lock = match self.backend() {
            super::Backend::Postgres => {
                Some("SELECT pg_advisory_xact_lock(hashtext('lpbridge/events/' || $1))")
            }
            super::Backend::Sqlite => None,
        };
        let update = format!(
            "UPDATE event_watchers SET state = $2, updated_at = $3 \
             WHERE connection_id = $1 AND cursor_name = $6 AND {held}"
        );
        let now = now_micros();
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            rows.push((
                r.id.to_string(),
                local_micros(r.time),
                r.time_utc.timestamp_micros(),
                r.category.as_str(),
                r.username.to_lowercase(),
                r.action.to_lowercase(),
                encode_record(r)?,
            ));
        }
        let inserted = with_pool!(self, p => {
            let mut tx = p.begin().await?;
            if let Some(lock) = lock {
                sqlx::query(lock).bind(conn.as_str()).execute(&mut *tx).await?;
            }
            let fenced = sqlx::query(&update)
                .bind(conn.as_str())
                .bind(state)
                .bind(now)
                .bind(fence.lease)
                .bind(fence.owner)
                .bind(cursor)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if fenced == 0 {
                tx.rollback().await?;
                Ok::<_, sqlx::Error>(None)
            } else {
                let mut inserted = 0u64;
                for chunk in rows.chunks(INSERT_CHUNK) {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO events (connection_id, event_id, local_time, time_utc, \
                         category, username, action, record, collected_at) ",
                    );
                    q.push_values(chunk, |mut b, row| {
                        b.push_bind(conn.as_str())
                            .push_bind(&row.0)
                            .push_bind(row.1)
                            .push_bind(row.2)
                            .push_bind(row.3)
                            .push_bind(&row.4)
                            .push_bind(&row.5)
                            .push_bind(&row.6)
                            .push_bind(now);
                    });
                    q.push(" ON CONFLICT (connection_id, local_time, event_id) DO NOTHING");
                    inserted += q.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(Some(inserted))
            }
        })?;
        Ok(inserted)
    }

    // ---- reading events ---------------------------------------------------------------------

    /// Up to `limit` events of a connection with `seq > after`, in `seq` order.
    pub async fn events_after(
        &self,
        conn: &ConnectionId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = with_pool!(self, p => sqlx::query_as::<_, EventRow>(
            "SELECT seq, record FROM events WHERE connection_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(conn.as_str())
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(EventRow::into_stored).collect()
    }

    /// The `seq` of a stored event (found by its id and its `time`).
    pub async fn event_seq(
        &self,
        conn: &ConnectionId,
        record: &EventRecord,
    ) -> Result<Option<i64>> {
        let v = with_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "SELECT seq FROM events WHERE connection_id = $1 AND local_time = $2 \
             AND event_id = $3",
        )
        .bind(conn.as_str())
        .bind(local_micros(record.time))
        .bind(record.id.to_string())
        .fetch_optional(p)
        .await)?;
        Ok(v)
    }

    /// The highest `seq` of a connection (0 when it has no events).
    pub async fn max_event_seq(&self, conn: &ConnectionId) -> Result<i64> {
        let v: Option<i64> = with_pool!(self, p => sqlx::query_scalar(
            "SELECT MAX(seq) FROM events WHERE connection_id = $1",
        )
        .bind(conn.as_str())
        .fetch_one(p)
        .await)?;
        Ok(v.unwrap_or(0))
    }

    /// How many events a connection has stored.
    pub async fn event_count(&self, conn: &ConnectionId) -> Result<i64> {
        let n: i64 = with_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE connection_id = $1",
        )
        .bind(conn.as_str())
        .fetch_one(p)
        .await)?;
        Ok(n)
    }

    /// One page of a connection's events, newest first (or oldest first), filtered; keyset
    /// paging on `(time_utc, seq)`.
    pub async fn list_events(
        &self,
        conn: &ConnectionId,
        q: &EventListQuery,
    ) -> Result<Vec<StoredEvent>> {
        let (cmp, order) = if q.ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        let sql = format!(
            "SELECT seq, record FROM events WHERE connection_id = $1 \
             AND ($2 IS NULL OR username = $2) AND ($3 IS NULL OR category = $3) \
             AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR time_utc >= $5) \
             AND ($6 IS NULL OR time_utc <= $6) \
             AND ($7 IS NULL OR time_utc {cmp} $7 OR (time_utc = $7 AND seq {cmp} $8)) \
             ORDER BY time_utc {order}, seq {order} LIMIT $9"
        );
        let user = q.user.as_ref().map(|u| u.trim().to_lowercase());
        let action = q.action.as_ref().map(|a| a.trim().to_lowercase());
        let category = q.category.map(Category::as_str);
        let from = q.from.map(|t| t.timestamp_micros());
        let to = q.to.map(|t| t.timestamp_micros());
        let (after_t, after_seq) = match q.after {
            Some((t, s)) => (Some(t), s),
            None => (None, 0),
        };
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let rows = with_pool!(self, p => sqlx::query_as::<_, EventRow>(&sql)
            .bind(conn.as_str())
            .bind(&user)
            .bind(category)
            .bind(&action)
            .bind(from)
            .bind(to)
            .bind(after_t)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(EventRow::into_stored).collect()
    }

    /// Counts of the events `q` selects (its user, category, action and time range; not its
    /// paging), per `bucket_micros`-wide bucket from `start_micros` and per category: one
    /// grouped query, however many events there are (the console's chart).
    pub async fn count_events(
        &self,
        conn: &ConnectionId,
        q: &EventListQuery,
        start_micros: i64,
        bucket_micros: i64,
    ) -> Result<Vec<(i64, String, i64)>> {
        let sql = "SELECT (time_utc - CAST($7 AS BIGINT)) / CAST($8 AS BIGINT) AS bucket, category, \
                   COUNT(*) AS n FROM events WHERE connection_id = $1 \
                   AND ($2 IS NULL OR username = $2) AND ($3 IS NULL OR category = $3) \
                   AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR time_utc >= $5) \
                   AND ($6 IS NULL OR time_utc <= $6) AND time_utc >= $7 \
                   GROUP BY bucket, category";
        let user = q.user.as_ref().map(|u| u.trim().to_lowercase());
        let action = q.action.as_ref().map(|a| a.trim().to_lowercase());
        let rows = with_pool!(self, p => sqlx::query_as::<_, (i64, String, i64)>(sql)
            .bind(conn.as_str())
            .bind(&user)
            .bind(q.category.map(Category::as_str))
            .bind(&action)
            .bind(q.from.map(|t| t.timestamp_micros()))
            .bind(q.to.map(|t| t.timestamp_micros()))
            .bind(start_micros)
            .bind(bucket_micros.max(1))
            .fetch_all(p)
            .await)?;
        Ok(rows)
    }

    // ---- sinks ----------------------------------------------------------------------------

    /// The last `seq` the sink delivered, `None` when it never delivered anything.
    pub async fn sink_position(&self, conn: &ConnectionId, sink: &str) -> Result<Option<i64>> {
        let v = with_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "SELECT position FROM event_sink_positions WHERE connection_id = $1 AND sink = $2",
        )
        .bind(conn.as_str())
        .bind(sink)
        .fetch_optional(p)
        .await)?;
        Ok(v)
    }

    /// When the sink's position last moved (a delivery, or events its filter left out); `None`
    /// when it never delivered anything.
    pub async fn sink_moved_at(
        &self,
        conn: &ConnectionId,
        sink: &str,
    ) -> Result<Option<DateTime<Utc>>> {
        let v = with_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "SELECT updated_at FROM event_sink_positions WHERE connection_id = $1 AND sink = $2",
        )
        .bind(conn.as_str())
        .bind(sink)
        .fetch_optional(p)
        .await)?;
        v.map(|t| from_micros("sink position updated_at", t))
            .transpose()
    }

    /// Moves a sink's position forward to `seq` (never back).
    pub async fn advance_sink(&self, conn: &ConnectionId, sink: &str, seq: i64) -> Result<()> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO event_sink_positions (connection_id, sink, position, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (connection_id, sink) DO UPDATE SET \
             position = excluded.position, updated_at = excluded.updated_at \
             WHERE event_sink_positions.position < excluded.position",
        )
        .bind(conn.as_str())
        .bind(sink)
        .bind(seq)
        .bind(now_micros())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Stores `batch` as a dead letter of `sink` and moves the sink's position past it, in one
    /// transaction. Returns the dead letter's id.
    #[allow(clippy::too_many_arguments)]
    pub async fn dead_letter(
        &self,
        conn: &ConnectionId,
        sink: &str,
        webhook_id: Option<&str>,
        batch: &[StoredEvent],
        error: &str,
        attempts: u32,
        advance_to: i64,
    ) -> Result<i64> {
        let first = batch.first().map_or(advance_to, |e| e.seq);
        let last = batch.last().map_or(advance_to, |e| e.seq);
        let records: Vec<&EventRecord> = batch.iter().map(|e| &e.record).collect();
        let payload = serde_json::to_string(&records).map_err(|e| StoreError::Corrupt {
            field: "dead letter payload",
            reason: e.to_string(),
        })?;
        let count = i64::try_from(batch.len()).unwrap_or(i64::MAX);
        let now = now_micros();
        let id = with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO event_dead_letters (connection_id, sink, webhook_id, first_seq, \
                 last_seq, event_count, payload, error, attempts, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(conn.as_str())
            .bind(sink)
            .bind(webhook_id)
            .bind(first)
            .bind(last)
            .bind(count)
            .bind(&payload)
            .bind(error)
            .bind(i64::from(attempts))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO event_sink_positions (connection_id, sink, position, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (connection_id, sink) DO UPDATE SET \
                 position = excluded.position, updated_at = excluded.updated_at \
                 WHERE event_sink_positions.position < excluded.position",
            )
            .bind(conn.as_str())
            .bind(sink)
            .bind(advance_to)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(id)
        })?;
        Ok(id)
    }

    /// Dead letters, oldest first.
    pub async fn list_dead_letters(&self, q: &DeadLetterQuery) -> Result<Vec<DeadLetter>> {
        let sql = format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM event_dead_letters \
             WHERE ($1 IS NULL OR connection_id = $1) AND ($2 IS NULL OR sink = $2) \
             AND ($3 IS NULL OR webhook_id = $3) AND ($4 IS NULL OR id = $4) \
             AND ($5 OR replayed_at IS NULL) ORDER BY id"
        );
        let rows = with_pool!(self, p => sqlx::query_as::<_, DeadLetterRow>(&sql)
            .bind(q.connection.as_ref().map(ConnectionId::as_str))
            .bind(q.sink.as_deref())
            .bind(q.webhook_id.as_deref())
            .bind(q.id)
            .bind(q.include_replayed)
            .fetch_all(p)
            .await)?;
        rows.into_iter()
            .map(DeadLetterRow::into_dead_letter)
            .collect()
    }

    /// The records of a dead letter, as they were to be delivered.
    pub async fn dead_letter_payload(&self, id: i64) -> Result<Vec<EventRecord>> {
        let payload: Option<String> = with_pool!(self, p => sqlx::query_scalar(
            "SELECT payload FROM event_dead_letters WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        let payload = payload.ok_or_else(|| StoreError::NotFound {
            what: format!("dead letter {id}"),
        })?;
        serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt {
            field: "dead letter payload",
            reason: format!("dead letter {id}: {e}"),
        })
    }

    /// Records the outcome of a replay: delivered (`error` `None`), or the new error.
    pub async fn finish_replay(&self, id: i64, error: Option<&str>, attempts: u32) -> Result<()> {
        let now = now_micros();
        with_pool!(self, p => sqlx::query(
            "UPDATE event_dead_letters SET attempts = attempts + $2, \
             error = COALESCE($3, error), \
             replayed_at = CASE WHEN $3 IS NULL THEN $4 ELSE replayed_at END WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(attempts))
        .bind(error)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    // ---- watching switch -------------------------------------------------------------------

    /// Turns `serve`'s watcher of a connection on or off; `false` when there is no such
    /// connection.
    pub async fn set_events_watch(&self, conn: &ConnectionId, on: bool) -> Result<bool> {
        let n = with_pool!(self, p => sqlx::query(
            "UPDATE connections SET events_watch = $2 WHERE id = $1",
        )
        .bind(conn.as_str())
        .bind(on)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// The connections with watching on, by id.
    pub async fn events_watch_connections(&self) -> Result<Vec<ConnectionId>> {
        let ids: Vec<String> = with_pool!(self, p => sqlx::query_scalar(
            "SELECT id FROM connections WHERE events_watch ORDER BY id",
        )
        .fetch_all(p)
        .await)?;
        ids.into_iter()
            .map(|id| {
                ConnectionId::new(id).map_err(|e| StoreError::Corrupt {
                    field: "connection id",
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Watching switch, stored events and last commit of a connection; `None` when there is no
    /// such connection.
    pub async fn watcher_status(&self, conn: &ConnectionId) -> Result<Option<WatcherStatus>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            events_watch: bool,
            updated_at: Option<i64>,
        }
        let row = with_pool!(self, p => sqlx::query_as::<_, Row>(
            "SELECT c.events_watch, w.updated_at FROM connections c \
             LEFT JOIN (SELECT connection_id, MAX(updated_at) AS updated_at FROM event_watchers \
             GROUP BY connection_id) w ON w.connection_id = c.id WHERE c.id = $1",
        )
        .bind(conn.as_str())
        .fetch_optional(p)
        .await)?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(WatcherStatus {
            connection_id: conn.as_str().to_owned(),
            events_watch: row.events_watch,
            events: self.event_count(conn).await?,
            last_seq: self.max_event_seq(conn).await?,
            updated_at: opt_from_micros("watcher updated_at", row.updated_at)?,
        }))
    }

    /// The owner of the lease row `name`, expired or not.
    pub async fn lease_owner(&self, name: &str) -> Result<Option<String>> {
        let v = with_pool!(self, p => sqlx::query_scalar::<_, String>(
            "SELECT owner FROM leases WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(p)
        .await)?;
        Ok(v)
    }

    // ---- webhook subscriptions -------------------------------------------------------------

    /// Creates a subscription. Its delivery position starts at the connection's newest event:
    /// it receives what is collected from now on.
    pub async fn create_webhook(&self, new: NewWebhook) -> Result<WebhookSummary> {
        super::validate_connection_id(&new.connection_id)?;
        validate_webhook(&new.url, &new.secret)?;
        let id = new_webhook_id();
        let sealed = self
            .key_for_write()
            .await?
            .seal(&webhook_aad(&id), new.secret.expose().as_bytes())?;
        let now = now_micros();
        let sql = format!(
            "INSERT INTO webhooks (id, connection_id, url, secret_ciphertext, secret_nonce, \
             categories, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {WEBHOOK_COLUMNS}"
        );
        let categories = categories_json(&new.categories);
        let sink = webhook_sink_name(&id);
        let row = with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let row = sqlx::query_as::<_, WebhookRow>(&sql)
                .bind(&id)
                .bind(new.connection_id.as_str())
                .bind(&new.url)
                .bind(&sealed.ciphertext)
                .bind(&sealed.nonce)
                .bind(&categories)
                .bind(new.enabled)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO event_sink_positions (connection_id, sink, position, updated_at) \
                 SELECT $1, $2, COALESCE(MAX(seq), 0), $3 FROM events WHERE connection_id = $1 \
                 ON CONFLICT (connection_id, sink) DO NOTHING",
            )
            .bind(new.connection_id.as_str())
            .bind(&sink)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(row)
        })?;
        row.into_summary()
    }

    /// One subscription without its secret.
    pub async fn webhook_summary(&self, id: &str) -> Result<Option<WebhookSummary>> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1");
        let row = with_pool!(self, p => sqlx::query_as::<_, WebhookRow>(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(WebhookRow::into_summary).transpose()
    }

    /// One subscription with its secret decrypted.
    pub async fn get_webhook(&self, id: &str) -> Result<Option<Webhook>> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS}, secret_ciphertext, secret_nonce FROM webhooks WHERE id = $1"
        );
        let row = with_pool!(self, p => sqlx::query_as::<_, WebhookFullRow>(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed = Sealed {
            nonce: row.secret_nonce,
            ciphertext: row.secret_ciphertext,
        };
        let summary = row.summary.into_summary()?;
        let plain = self
            .open_sealed(
                &webhook_what(&summary.id),
                &webhook_aad(&summary.id),
                &sealed,
            )
            .await?;
        let secret = String::from_utf8(plain).map_err(|_| StoreError::Corrupt {
            field: "webhook secret",
            reason: "not UTF-8".into(),
        })?;
        Ok(Some(Webhook {
            summary,
            secret: Secret::new(secret),
        }))
    }

    /// Subscriptions, by connection and id (all connections when `conn` is `None`).
    pub async fn list_webhooks(&self, conn: Option<&ConnectionId>) -> Result<Vec<WebhookSummary>> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE ($1 IS NULL OR connection_id = $1) \
             ORDER BY connection_id, id"
        );
        let rows = with_pool!(self, p => sqlx::query_as::<_, WebhookRow>(&sql)
            .bind(conn.map(ConnectionId::as_str))
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(WebhookRow::into_summary).collect()
    }

    /// Changes a subscription; [`StoreError::NotFound`] when there is none with this id. A new
    /// URL without a new secret keeps the old secret.
    pub async fn update_webhook(&self, id: &str, patch: WebhookPatch) -> Result<WebhookSummary> {
        let current = self
            .webhook_summary(id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("webhook {id:?}"),
            })?;
        if let Some(url) = &patch.url {
            // The stored secret is not needed to check the URL: any non-empty one will do.
            let probe = patch.secret.clone().unwrap_or_else(|| Secret::new("x"));
            validate_webhook(url, &probe)?;
        }
        if let Some(s) = &patch.secret {
            validate_webhook(patch.url.as_deref().unwrap_or(&current.url), s)?;
        }
        let sealed = match &patch.secret {
            Some(s) => Some(
                self.key_for_write()
                    .await?
                    .seal(&webhook_aad(id), s.expose().as_bytes())?,
            ),
            None => None,
        };
        let (set_categories, categories) = match &patch.categories {
            Some(c) => (true, categories_json(c)),
            None => (false, None),
        };
        let sql = format!(
            "UPDATE webhooks SET url = COALESCE($2, url), \
             secret_ciphertext = COALESCE($3, secret_ciphertext), \
             secret_nonce = COALESCE($4, secret_nonce), \
             categories = CASE WHEN $5 THEN $6 ELSE categories END, \
             enabled = COALESCE($7, enabled), updated_at = $8 \
             WHERE id = $1 RETURNING {WEBHOOK_COLUMNS}"
        );
        let ct = sealed.as_ref().map(|s| s.ciphertext.as_slice());
        let nonce = sealed.as_ref().map(|s| s.nonce.as_slice());
        let row = with_pool!(self, p => sqlx::query_as::<_, WebhookRow>(&sql)
            .bind(id)
            .bind(patch.url.as_deref())
            .bind(ct)
            .bind(nonce)
            .bind(set_categories)
            .bind(&categories)
            .bind(patch.enabled)
            .bind(now_micros())
            .fetch_optional(p)
            .await)?;
        match row {
            Some(r) => r.into_summary(),
            None => Err(StoreError::NotFound {
                what: format!("webhook {id:?}"),
            }),
        }
    }

    /// Deletes a subscription with its position and dead letters; `false` when there was none.
    pub async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let sink = webhook_sink_name(id);
        let n = with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query("DELETE FROM webhooks WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM event_sink_positions WHERE sink = $1")
                .bind(&sink)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM event_dead_letters WHERE webhook_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_ids_are_prefixed_and_distinct() {
        let a = new_webhook_id();
        assert!(a.starts_with("wh_") && a.len() == 19, "{a}");
        assert_ne!(a, new_webhook_id());
    }

    #[test]
    fn webhook_urls_are_checked_without_showing_the_secret() {
        let s = Secret::new("hunter2-secret");
        let e = validate_webhook("ftp://x", &s).unwrap_err();
        assert_eq!(e.field, "webhook url");
        assert!(!e.to_string().contains("hunter2"));
        let e = validate_webhook("https://x.example", &Secret::new("")).unwrap_err();
        assert_eq!(e.field, "webhook secret");
        validate_webhook("https://x.example/hook", &s).unwrap();
    }
}
