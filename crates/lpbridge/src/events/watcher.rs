//! The event watcher: polls one connection's `reporting` log and commits every event exactly
//! once into the store's outbox (the `events` table), from which the dispatcher feeds the sinks
//! and `GET /events` reads.
//!
//! # The loop
//!
//! ```text
//! take the lease; load the cursor's DedupState (or start one)
//! loop {
//!     window = state.plan(now − settle, zone, overlap)            // resumes an unfinished one
//!     for each page of reporting(window, filters), walking `next` { // newest first
//!         new = state.observe(page)
//!         commit { events += new; cursor = state }                 // one transaction, fenced
//!     }                                                            // by the lease
//!     (the last page's commit also completes the window)
//!     sleep the poll interval
//! }
//! ```
//!
//! Pages are streamed: one page (≤ 10,000 events) is held at a time, so memory does not grow
//! with the backlog. After a failure (LastPass, network, database, a lost lease) the state is
//! reloaded from the store, so events observed but not committed are read again; a crash at
//! any point resumes from the last commit. See [`super::dedup`] for why no event is lost or
//! repeated, and [`super::lease`] for the takeover bound between replicas.
//!
//! # Cursors
//!
//! - **`live`** (no `--from`): starts [`DEFAULT_LOOKBACK`] before the first run and follows
//!   the present. Changing the filters later keeps its position.
//! - **`backfill:<hash>`** (`--from` [`--to`]): one cursor per range and filters, so running the
//!   same backfill again resumes it (or does nothing when it is done), while the live cursor
//!   and other backfills go on independently. Without `--to` it follows the present after
//!   reaching it.
//!
//! Whatever the cursor, the `events` table stores each event id once per connection, so two
//! cursors reading the same events deliver them once.
//!
//! # Timing
//!
//! - Poll interval: [`DEFAULT_INTERVAL`] (30 s).
//! - Each window re-reads the last [`DEFAULT_OVERLAP`] (2 min) of the previous one: events that
//!   LastPass lists late (up to that much) are still collected once.
//! - A window ends [`DEFAULT_SETTLE`] (5 s) before now: the newest seconds are left to the next
//!   poll, when their events have all been written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lastpass::{Client, EventQuery};
use lp_types::{ConnectionId, InvalidValue};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};

use super::dedup::{DedupError, DedupState, Window};
use super::lease::Held;
use super::time::{fold_safe_to, local_to_utc};
use crate::store::{Store, StoreError};

/// Default poll interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Longest poll interval accepted.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Default overlap of consecutive windows (the lateness tolerated).
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(120);
/// Default age below which events are left to the next poll.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(5);
/// Default time to live of the watcher's lease.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// Where a new live cursor starts: this long before its first run.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);
/// The cursor that follows the present.
pub const LIVE_CURSOR: &str = "live";

/// First and longest wait after a failed cycle.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// `reporting` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// One user's events (`None`: all users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub admin_only: bool,
}

/// Where a watcher reads "now" (the system clock; tests tie it to the sandbox's virtual one).
#[derive(Clone)]
pub struct WatchClock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl WatchClock {
    pub fn new(f: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for WatchClock {
    fn default() -> Self {
        Self::new(Utc::now)
    }
}

impl std::fmt::Debug for WatchClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchClock")
    }
}

/// How a watcher runs.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub filters: Filters,
    /// Backfill from (a backfill cursor); `None`: the live cursor.
    pub from: Option<DateTime<Utc>>,
    /// Backfill to, inclusive (needs `from`).
    pub to: Option<DateTime<Utc>>,
    /// Stop a cycle after this many events (rounded up to a whole page); the rest follows on
    /// the next cycle.
    pub limit_per_cycle: Option<u64>,
    pub interval: Duration,
    pub overlap: Duration,
    pub settle: Duration,
    /// The account's time zone (LastPass's `Time` and window bounds).
    pub time_zone: Tz,
    pub lease_ttl: Duration,
    /// Return once the backfill is done, or the window up to the start time is read.
    pub once: bool,
    pub clock: WatchClock,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            filters: Filters::default(),
            from: None,
            to: None,
            limit_per_cycle: None,
            interval: DEFAULT_INTERVAL,
            overlap: DEFAULT_OVERLAP,
            settle: DEFAULT_SETTLE,
            time_zone: chrono_tz::US::Eastern,
            lease_ttl: DEFAULT_LEASE_TTL,
            once: false,
            clock: WatchClock::default(),
        }
    }
}

/// What a cursor's state was made for (stored beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CursorOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<DateTime<Utc>>,
    #[serde(flatten)]
    filters: Filters,
}

impl WatchOptions {
    /// Refuses values that cannot work, naming the option.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.interval.is_zero() || self.interval > MAX_INTERVAL {
            return Err(InvalidValue::new(
                "interval",
                format!("{}s", self.interval.as_secs_f64()),
                format!("must be from 1 to {} seconds", MAX_INTERVAL.as_secs()),
            ));
        }
        if self.lease_ttl < Duration::from_secs(1) {
            return Err(InvalidValue::new(
                "lease ttl",
                format!("{}s", self.lease_ttl.as_secs_f64()),
                "must be at least 1 second",
            ));
        }
        if self.limit_per_cycle == Some(0) {
            return Err(InvalidValue::new(
                "limit-per-cycle",
                "0",
                "must be at least 1",
            ));
        }
        match (self.from, self.to) {
            (None, Some(to)) => Err(InvalidValue::new(
                "to",
                to.to_rfc3339(),
                "needs --from: a backfill reads from --from to --to",
            )),
            (Some(from), Some(to)) if from > to => Err(InvalidValue::new(
                "from",
                from.to_rfc3339(),
                format!("is after --to ({})", to.to_rfc3339()),
            )),
            _ => Ok(()),
        }
        .and_then(|()| match &self.filters.user {
            Some(u) if u.trim().is_empty() => Err(InvalidValue::new(
                "user",
                u.clone(),
                "must not be empty (leave it unset for all users)",
            )),
            _ => Ok(()),
        })
    }

    fn cursor_options(&self) -> CursorOptions {
        CursorOptions {
            from: self.from,
            to: self.to,
            filters: self.filters.clone(),
        }
    }

    /// The cursor these options read with: `live`, or `backfill:<16 hex digits>` of the range
    /// and filters.
    pub fn cursor(&self) -> String {
        if self.from.is_none() {
            return LIVE_CURSOR.to_owned();
        }
        let canonical = serde_json::to_string(&self.cursor_options()).unwrap_or_default();
        let digest = Sha256::digest(canonical.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("backfill:{hex}")
    }

    /// The lease of `cursor` on `conn`: `events:<conn>` for the live cursor,
    /// `events:<conn>:<cursor>` for a backfill.
    pub fn lease_name(conn: &ConnectionId, cursor: &str) -> String {
        if cursor == LIVE_CURSOR {
            format!("events:{}", conn.as_str())
        } else {
            format!("events:{}:{cursor}", conn.as_str())
        }
    }

    fn query(&self, w: Window) -> EventQuery {
        EventQuery {
            from: w.from,
            to: w.to,
            search: self.filters.search.clone(),
            user: self.filters.user.clone(),
            admin_only: self.filters.admin_only,
        }
    }
}

/// Why [`Watcher::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// A backfill read its whole range.
    Done,
    /// `once`: everything up to the start time is read.
    CaughtUp,
    /// The stop signal.
    Stopped,
}

/// A failure the watcher does not retry.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The saved cursor cannot be read by this version.
    #[error("the saved event cursor {cursor:?} of connection {connection:?}: {source}")]
    State {
        connection: String,
        cursor: String,
        #[source]
        source: DedupError,
    },
    /// LastPass refused the request itself (credentials, a filter): retrying cannot help.
    #[error(transparent)]
    LastPass(#[from] lastpass::Error),
    /// `once`: another live process holds the cursor's lease (e.g. `serve` watching the
    /// connection) beyond the takeover bound.
    #[error(
        "the event cursor {cursor:?} of connection {connection:?} is being read by {owner} \
         (lease {lease:?}); a backfill with --from/--to uses a cursor of its own"
    )]
    Busy {
        connection: String,
        cursor: String,
        lease: String,
        owner: String,
    },
}

/// Counters of one watcher (cheap to read while it runs).
#[derive(Debug, Default)]
pub struct WatchStats {
    /// `reporting` calls that answered (retries made by the client are not counted).
    pub pages: AtomicU64,
    /// Events LastPass returned.
    pub events_read: AtomicU64,
    /// Events inserted into the outbox.
    pub events_new: AtomicU64,
    /// Events read again (overlap, resumed walks).
    pub duplicates: AtomicU64,
    /// Windows read to their end.
    pub windows: AtomicU64,
    /// Cycles that failed and were retried.
    pub failures: AtomicU64,
}

impl WatchStats {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// One connection's watcher for one cursor.
pub struct Watcher {
    store: Store,
    client: Client,
    conn: ConnectionId,
    opts: WatchOptions,
    cursor: String,
    lease: Held,
    notify: Arc<Notify>,
    stats: Arc<WatchStats>,
}

/// How a cycle ended without an error.
enum Cycle {
    /// The window was read to its end.
    Complete(Window),
    /// The per-cycle limit stopped it.
    Limited,
    /// Nothing to read now.
    Idle,
}

/// How a cycle failed.
enum Failure {
    /// Retry after a backoff (the state is reloaded first).
    Retry(String),
    /// Another owner has the lease: wait for it.
    LeaseLost,
    Fatal(WatchError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        // The database may be back in a moment; the outbox commit rolled back as a whole.
        Failure::Retry(format!("store: {e}"))
    }
}

impl Watcher {
    /// A watcher of `conn` through `client`, owned by `owner` (see [`super::lease::owner_id`]).
    pub fn new(
        store: Store,
        client: Client,
        conn: ConnectionId,
        opts: WatchOptions,
        owner: impl Into<String>,
    ) -> Result<Self, WatchError> {
        opts.validate()?;
        let cursor = opts.cursor();
        let lease = Held::new(
            store.clone(),
            WatchOptions::lease_name(&conn, &cursor),
            owner,
            opts.lease_ttl,
        );
        Ok(Self {
            store,
            client,
            conn,
            opts,
            cursor,
            lease,
            notify: Arc::new(Notify::new()),
            stats: Arc::new(WatchStats::default()),
        })
    }

    /// Woken after every commit that stored new events (share it with dispatchers).
    pub fn with_notify(mut self, notify: Arc<Notify>) -> Self {
        self.notify = notify;
        self
    }

    pub fn notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    pub fn stats(&self) -> Arc<WatchStats> {
        self.stats.clone()
    }

    pub fn cursor(&self) -> &str {
        &self.cursor
    }

    /// Runs until a backfill is done, `once` is satisfied, `stop` turns true, or a failure that
    /// retrying cannot mend. Transient failures are logged and retried with backoff.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<WatchEnd, WatchError> {
        let tz = self.opts.time_zone;
        // `once`: read up to the window a cycle starting now would end at.
        let target = fold_safe_to(
            self.opts.clock.now() - self.opts.settle - chrono_secs(1),
            tz,
        );
        let mut backoff = BACKOFF_MIN;
        let mut waiting_since: Option<std::time::Instant> = None;
        let out = loop {
            if *stop.borrow() {
                break WatchEnd::Stopped;
            }
            let pages_before = WatchStats::get(&self.stats.pages);
            let result = self.session(&mut stop, target).await;
            if WatchStats::get(&self.stats.pages) > pages_before {
                // It got somewhere: a new failure starts the backoff afresh.
                backoff = BACKOFF_MIN;
            }
            match result {
                Ok(end) => break end,
                Err(Failure::Fatal(e)) => {
                    self.lease.release().await;
                    return Err(e);
                }
                Err(Failure::LeaseLost) => {
                    tracing::debug!(connection = %self.conn, cursor = %self.cursor, "lease held elsewhere; waiting");
                    backoff = BACKOFF_MIN;
                    // `once` waits out one takeover bound, then says who holds the cursor.
                    let since = *waiting_since.get_or_insert_with(std::time::Instant::now);
                    if self.opts.once
                        && since.elapsed()
                            > self.opts.lease_ttl + self.opts.interval + Duration::from_secs(1)
                    {
                        let owner = match self.store.lease(self.lease.name()).await {
                            Ok(Some(l)) => l.owner,
                            _ => "another process".to_owned(),
                        };
                        return Err(WatchError::Busy {
                            connection: self.conn.as_str().to_owned(),
                            cursor: self.cursor.clone(),
                            lease: self.lease.name().to_owned(),
                            owner,
                        });
                    }
                    let wait = self.opts.interval.min(self.opts.lease_ttl);
                    if sleep_or_stop(wait, &mut stop).await {
                        break WatchEnd::Stopped;
                    }
                }
                Err(Failure::Retry(why)) => {
                    // It held the lease: a later wait for it starts afresh.
                    waiting_since = None;
                    WatchStats::add(&self.stats.failures, 1);
                    tracing::warn!(connection = %self.conn, cursor = %self.cursor, error = %why,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "event watcher cycle failed; retrying from the last commit");
                    if sleep_or_stop(backoff, &mut stop).await {
                        break WatchEnd::Stopped;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        };
        self.lease.release().await;
        Ok(out)
    }

    /// Holds the lease and runs cycles from the saved state until the end or a failure.
    async fn session(
        &self,
        stop: &mut watch::Receiver<bool>,
        target: chrono::NaiveDateTime,
    ) -> Result<WatchEnd, Failure> {
        if !self.lease.ensure().await? {
            return Err(Failure::LeaseLost);
        }
        let mut state = self.load_state().await?;
        loop {
            if *stop.borrow() {
                return Ok(WatchEnd::Stopped);
            }
            let cycle = self.cycle(&mut state).await?;
            if state.is_done() {
                tracing::info!(connection = %self.conn, cursor = %self.cursor, "backfill done");
                return Ok(WatchEnd::Done);
            }
            let follows_present = self.opts.to.is_none();
            let behind = match cycle {
                Cycle::Complete(w) if self.opts.once && follows_present && w.to >= target => {
                    return Ok(WatchEnd::CaughtUp);
                }
                Cycle::Idle if self.opts.once && follows_present => {
                    return Ok(WatchEnd::CaughtUp);
                }
                // A resumed or long-delayed window ended more than an interval ago: read on
                // at once instead of waiting.
                Cycle::Complete(w) => {
                    let interval = chrono::Duration::from_std(self.opts.interval)
                        .unwrap_or_else(|_| chrono_secs(30));
                    let fresh =
                        self.opts.clock.now() - self.opts.settle - interval - chrono_secs(1);
                    w.to < fold_safe_to(fresh, self.opts.time_zone)
                }
                Cycle::Limited | Cycle::Idle => false,
            };
            if behind {
                continue;
            }
            if sleep_or_stop(self.next_wait(), stop).await {
                return Ok(WatchEnd::Stopped);
            }
        }
    }

    /// The poll interval, or less when a backfill's end becomes readable sooner.
    fn next_wait(&self) -> Duration {
        let Some(to) = self.opts.to else {
            return self.opts.interval;
        };
        let readable =
            to + chrono::Duration::from_std(self.opts.settle).unwrap_or_default() + chrono_secs(1);
        (readable - self.opts.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(100), self.opts.interval)
    }

    /// The cursor's saved state, or a new one (saved at once).
    async fn load_state(&self) -> Result<DedupState, Failure> {
        let wanted = self.opts.cursor_options();
        let options = serde_json::to_string(&wanted).unwrap_or_default();
        let saved = self.store.load_watcher(&self.conn, &self.cursor).await?;
        let state = match saved {
            Some(row) => {
                let state = DedupState::from_json(&row.state).map_err(|source| {
                    Failure::Fatal(WatchError::State {
                        connection: self.conn.as_str().to_owned(),
                        cursor: self.cursor.clone(),
                        source,
                    })
                })?;
                if row.options == options {
                    return Ok(state);
                }
                // Only the live cursor's filters can change under the same cursor name.
                tracing::info!(connection = %self.conn, cursor = %self.cursor, "event filters changed; the cursor keeps its position");
                state
            }
            None => {
                let tz = self.opts.time_zone;
                let start = self.opts.from.unwrap_or_else(|| {
                    self.opts.clock.now()
                        - chrono::Duration::from_std(DEFAULT_LOOKBACK).unwrap_or_default()
                });
                tracing::info!(connection = %self.conn, cursor = %self.cursor, start = %start.to_rfc3339(), "starting a new event cursor");
                match self.opts.to {
                    Some(to) => DedupState::backfill(start, to, tz),
                    None => DedupState::starting_at(start, tz),
                }
            }
        };
        if !self
            .store
            .save_watcher(
                &self.conn,
                &self.cursor,
                self.lease.fence(),
                &state.to_json(),
                &options,
            )
            .await?
        {
            return Err(Failure::LeaseLost);
        }
        Ok(state)
    }

    /// Plans a window and walks it, one committed page at a time.
    async fn cycle(&self, state: &mut DedupState) -> Result<Cycle, Failure> {
        let tz = self.opts.time_zone;
        let now = self.opts.clock.now() - self.opts.settle;
        let overlap = chrono::Duration::from_std(self.opts.overlap).unwrap_or_default();
        let Some(window) = state.plan(now, tz, overlap) else {
            return Ok(Cycle::Idle);
        };
        tracing::debug!(connection = %self.conn, cursor = %self.cursor, from = %window.from, to = %window.to, "reading a window");
        let query = self.opts.query(window);
        let mut next: Option<i64> = None;
        let mut read: u64 = 0;
        loop {
            // Renewed before every page; a commit after losing it is refused anyway.
            if !self.lease.ensure().await? {
                return Err(Failure::LeaseLost);
            }
            let page = match self.client.events_page(&query, next).await {
                Ok(p) => p,
                Err(e) => return Err(upstream_failure(e, self.opts.once)),
            };
            WatchStats::add(&self.stats.pages, 1);
            let n = page.events.len() as u64;
            read += n;
            WatchStats::add(&self.stats.events_read, n);
            let observed = state.observe(page.events, tz).map_err(|source| {
                Failure::Fatal(WatchError::State {
                    connection: self.conn.as_str().to_owned(),
                    cursor: self.cursor.clone(),
                    source,
                })
            })?;
            let complete = match (page.next, next) {
                (None, _) => true,
                (Some(c), Some(prev)) if c >= prev => {
                    return Err(Failure::Retry(format!(
                        "reporting: the cursor did not advance ({prev} → {c})"
                    )));
                }
                (Some(c), _) => {
                    next = Some(c);
                    false
                }
            };
            if complete {
                state.complete();
            }
            // Renewed again: a slow page must not leave the commit without the lease.
            if !self.lease.ensure().await? {
                return Err(Failure::LeaseLost);
            }
            let inserted = self
                .store
                .commit_events(
                    &self.conn,
                    &self.cursor,
                    self.lease.fence(),
                    &observed.new,
                    &state.to_json(),
                )
                .await?
                .ok_or(Failure::LeaseLost)?;
            WatchStats::add(&self.stats.events_new, inserted);
            WatchStats::add(&self.stats.duplicates, n.saturating_sub(inserted));
            if observed.below_floor > 0 {
                tracing::warn!(connection = %self.conn, events = observed.below_floor, "events older than the window were listed and skipped");
            }
            if inserted > 0 {
                self.notify.notify_waiters();
            }
            if complete {
                WatchStats::add(&self.stats.windows, 1);
                tracing::debug!(connection = %self.conn, cursor = %self.cursor,
                    to = %local_to_utc(window.to, tz).to_rfc3339(), "window read");
                return Ok(Cycle::Complete(window));
            }
            if self.opts.limit_per_cycle.is_some_and(|l| read >= l) {
                return Ok(Cycle::Limited);
            }
        }
    }
}

/// A LastPass failure: worth another cycle unless it is LastPass refusing the request itself;
/// outside `once`, everything is retried (the operator may fix the connection meanwhile).
fn upstream_failure(e: lastpass::Error, once: bool) -> Failure {
    use lastpass::Error as E;
    let permanent = matches!(
        e,
        E::Auth
            | E::Failed { .. }
            | E::InvalidInput(_)
            | E::Config(_)
            | E::UnknownUser { .. }
            | E::Partial { .. }
    );
    if permanent && once {
        Failure::Fatal(WatchError::LastPass(e))
    } else {
        Failure::Retry(e.to_string())
    }
}

fn chrono_secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

/// Sleeps `d`; `true` when `stop` turned true (or its sender is gone) first.
pub(crate) async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_leases_are_named_by_range_and_filters() {
        let live = WatchOptions::default();
        assert_eq!(live.cursor(), "live");
        let conn = ConnectionId::new("acme").unwrap();
        assert_eq!(WatchOptions::lease_name(&conn, "live"), "events:acme");
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let a = WatchOptions {
            from: Some(t("2026-01-01T00:00:00Z")),
            to: Some(t("2026-01-02T00:00:00Z")),
            ..WatchOptions::default()
        };
        let mut b = a.clone();
        assert_eq!(a.cursor(), b.cursor());
        assert!(a.cursor().starts_with("backfill:") && a.cursor().len() == 25);
        b.filters.admin_only = true;
        assert_ne!(a.cursor(), b.cursor());
        assert_eq!(
            WatchOptions::lease_name(&conn, &a.cursor()),
            format!("events:acme:{}", a.cursor())
        );
    }

    #[test]
    fn bad_options_name_the_option() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let cases = [
            (
                WatchOptions {
                    to: Some(t("2026-01-01T00:00:00Z")),
                    ..WatchOptions::default()
                },
                "to",
            ),
            (
                WatchOptions {
                    from: Some(t("2026-01-02T00:00:00Z")),
                    to: Some(t("2026-01-01T00:00:00Z")),
                    ..WatchOptions::default()
                },
                "from",
            ),
            (
                WatchOptions {
                    interval: Duration::ZERO,
                    ..WatchOptions::default()
                },
                "interval",
            ),
            (
                WatchOptions {
                    limit_per_cycle: Some(0),
                    ..WatchOptions::default()
                },
                "limit-per-cycle",
            ),
        ];
        for (o, field) in cases {
            assert_eq!(o.validate().unwrap_err().field, field);
        }
    }
}
