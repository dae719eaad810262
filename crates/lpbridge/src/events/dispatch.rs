//! The dispatcher: feeds one sink from a connection's outbox (the store's `events` table) and
//! keeps that sink's position; and [`replay`], which re-delivers dead letters.
//!
//! Each (connection, sink) has its own [`Dispatcher`], its own task and its own lease
//! (`events-sink:<connection>:<sink>`), so a slow or failing sink never holds up another, and
//! on several replicas one process delivers to a given sink at a time.
//!
//! # Delivery
//!
//! ```text
//! loop {
//!     batch = events with seq > position, in seq order (at most batch_size)
//!     sink.deliver(batch filtered by the subscription's categories)
//!         Ok            → position = last seq of the batch
//!         DeadLetter    → store the batch as a dead letter, position = last seq (one transaction)
//!         other error   → retry the same batch after a backoff
//! }
//! ```
//!
//! Delivery is **at least once**: a crash after a delivery and before its position is saved
//! delivers that batch again; every record carries its stable `id` for receivers. A sink that
//! can tell what it holds ([`Sink::last_delivered`]: the file sink) is checked whenever the
//! dispatcher (re)starts, and its position moved past what it already holds, so it receives
//! every event exactly once.
//!
//! Positions start at 0 for a sink never seen before (it receives every stored event), except
//! webhook subscriptions, which start at the connection's newest event when created.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lp_types::ConnectionId;
use tokio::sync::{Notify, watch};

use super::lease::Held;
use super::sinks::{self, Sink, SinkConfig, SinkError};
use super::watcher::sleep_or_stop;
use super::{Category, EventRecord};
use crate::store::{DeadLetter, DeadLetterQuery, Result, Store, StoreError, StoredEvent};

/// Default events per batch.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// Largest batch accepted.
pub const MAX_BATCH_SIZE: usize = 10_000;
/// How often a dispatcher with nothing to do looks for events written by another process.
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One sink to feed, with what the dispatcher needs to know about it.
#[derive(Clone)]
pub struct SinkTarget {
    pub sink: Arc<dyn Sink>,
    /// The webhook subscription it delivers for (dead letters are filed under it).
    pub webhook_id: Option<String>,
    /// Only events of these categories (`None`: all).
    pub categories: Option<Vec<Category>>,
}

impl SinkTarget {
    pub fn new(sink: Arc<dyn Sink>) -> Self {
        Self {
            sink,
            webhook_id: None,
            categories: None,
        }
    }

    fn wants(&self, r: &EventRecord) -> bool {
        self.categories
            .as_ref()
            .is_none_or(|c| c.contains(&r.category))
    }
}

/// How a dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    pub batch_size: usize,
    /// How often to look for new events when not woken.
    pub poll: Duration,
    pub lease_ttl: Duration,
    /// The lease owner (see [`super::lease::owner_id`]).
    pub owner: String,
}

impl DispatchOptions {
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            poll: DEFAULT_POLL,
            lease_ttl: super::watcher::DEFAULT_LEASE_TTL,
            owner: owner.into(),
        }
    }
}

/// Counters of one dispatcher.
#[derive(Debug, Default)]
pub struct DispatchStats {
    /// Events delivered (filtered-out ones not counted).
    pub delivered: AtomicU64,
    pub batches: AtomicU64,
    pub dead_letters: AtomicU64,
    /// Deliveries that failed and were retried.
    pub failures: AtomicU64,
    /// Events skipped because the sink already held them (see the module docs).
    pub skipped: AtomicU64,
}

impl DispatchStats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Feeds one sink from one connection's outbox.
pub struct Dispatcher {
    store: Store,
    conn: ConnectionId,
    target: SinkTarget,
    opts: DispatchOptions,
    lease: Held,
    notify: Arc<Notify>,
    stats: Arc<DispatchStats>,
}

/// The lease of one (connection, sink).
pub fn lease_name(conn: &ConnectionId, sink: &str) -> String {
    format!("events-sink:{}:{sink}", conn.as_str())
}

impl Dispatcher {
    pub fn new(
        store: Store,
        conn: ConnectionId,
        target: SinkTarget,
        opts: DispatchOptions,
        notify: Arc<Notify>,
    ) -> Self {
        let lease = Held::new(
            store.clone(),
            lease_name(&conn, target.sink.name()),
            opts.owner.clone(),
            opts.lease_ttl,
        );
        Self {
            store,
            conn,
            target,
            opts,
            lease,
            notify,
            stats: Arc::new(DispatchStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<DispatchStats> {
        self.stats.clone()
    }

    pub fn sink_name(&self) -> &str {
        self.target.sink.name()
    }

    /// Delivers until `stop` turns true, or, once `drain` holds a `seq`, until everything up
    /// to it is delivered. Every failure is logged and retried.
    pub async fn run(
        &self,
        mut stop: watch::Receiver<bool>,
        mut drain: watch::Receiver<Option<i64>>,
    ) {
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.session(&mut stop, &mut drain).await {
                Ok(true) => break,
                Ok(false) => {
                    // Another process delivers to this sink: wait for its lease to lapse.
                    let wait = self.opts.poll.min(self.opts.lease_ttl);
                    if sleep_or_stop(wait, &mut stop).await {
                        break;
                    }
                }
                Err(e) => {
                    DispatchStats::add(&self.stats.failures);
                    tracing::warn!(connection = %self.conn, sink = %self.sink_name(), error = %e,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "event delivery failed; retrying");
                    if sleep_or_stop(backoff, &mut stop).await {
                        break;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
            backoff = BACKOFF_MIN;
        }
        self.lease.release().await;
    }

    /// Delivers while holding the lease. `Ok(true)`: finished (stopped or drained);
    /// `Ok(false)`: the lease is held elsewhere or was lost.
    async fn session(
        &self,
        stop: &mut watch::Receiver<bool>,
        drain: &mut watch::Receiver<Option<i64>>,
    ) -> Result<bool, DispatchError> {
        if !self.lease.ensure().await? {
            return Ok(false);
        }
        let sink = self.target.sink.as_ref();
        let mut pos = self.position().await?;
        loop {
            if *stop.borrow() {
                return Ok(true);
            }
            // Registered before reading, so a commit between the read and the wait wakes us.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch = self
                .store
                .events_after(&self.conn, pos, self.opts.batch_size)
                .await?;
            let Some(last) = batch.last().map(|e| e.seq) else {
                if drain.borrow().is_some_and(|t| pos >= t) {
                    return Ok(true);
                }
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep(self.opts.poll) => {}
                    r = stop.changed() => if r.is_err() { return Ok(true) },
                    _ = drain.changed() => {}
                }
                if !self.lease.ensure().await? {
                    return Ok(false);
                }
                continue;
            };
            let wanted: Vec<StoredEvent> = batch
                .into_iter()
                .filter(|e| self.target.wants(&e.record))
                .collect();
            let records: Vec<EventRecord> = wanted.iter().map(|e| e.record.clone()).collect();
            match sink.deliver(&records).await {
                Ok(()) => {
                    self.store
                        .advance_sink(&self.conn, sink.name(), last)
                        .await?;
                    self.stats
                        .delivered
                        .fetch_add(records.len() as u64, Ordering::Relaxed);
                    DispatchStats::add(&self.stats.batches);
                }
                Err(SinkError::DeadLetter {
                    attempts,
                    last_error,
                }) => {
                    let id = self
                        .store
                        .dead_letter(
                            &self.conn,
                            sink.name(),
                            self.target.webhook_id.as_deref(),
                            &wanted,
                            &last_error,
                            attempts,
                            last,
                        )
                        .await?;
                    DispatchStats::add(&self.stats.dead_letters);
                    tracing::warn!(connection = %self.conn, sink = %sink.name(), dead_letter = id,
                        events = records.len(), attempts, error = %last_error,
                        "a batch was stored as a dead letter (`lpbridge events replay` re-delivers it)");
                }
                Err(e) => return Err(DispatchError::Sink(e)),
            }
            pos = last;
            if !self.lease.ensure().await? {
                return Ok(false);
            }
        }
    }

    /// The saved position, moved past what the sink already holds (module docs).
    async fn position(&self) -> Result<i64, DispatchError> {
        let sink = self.target.sink.as_ref();
        let mut pos = self
            .store
            .sink_position(&self.conn, sink.name())
            .await?
            .unwrap_or(0);
        if let Some(held) = sink.last_delivered().await?
            && let Some(seq) = self.store.event_seq(&self.conn, &held).await?
            && seq > pos
        {
            let skipped = self
                .store
                .events_after(&self.conn, pos, MAX_BATCH_SIZE)
                .await?;
            let n = skipped.iter().take_while(|e| e.seq <= seq).count() as u64;
            tracing::info!(connection = %self.conn, sink = %sink.name(), from = pos, to = seq,
                "the sink already holds events past its saved position; skipping them");
            self.store
                .advance_sink(&self.conn, sink.name(), seq)
                .await?;
            self.stats.skipped.fetch_add(n, Ordering::Relaxed);
            pos = seq;
        }
        Ok(pos)
    }
}

impl DispatchStats {
    fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why a delivery round failed (retried by [`Dispatcher::run`]).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

// ---- replay ---------------------------------------------------------------------------------

/// What happened to one dead letter on replay.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Replayed {
    pub id: i64,
    pub connection_id: String,
    pub sink: String,
    pub events: usize,
    /// `None`: delivered; otherwise why not (the dead letter stays).
    pub error: Option<String>,
}

/// Finds the sink a dead letter belongs to: its webhook subscription (from the store), or one
/// of the configured sinks by name. Built sinks are kept for the other dead letters.
pub struct SinkResolver {
    store: Store,
    configured: HashMap<String, SinkConfig>,
    built: HashMap<String, Arc<dyn Sink>>,
    subscription_attempts: Option<u32>,
}

impl SinkResolver {
    pub fn new(store: Store, configured: Vec<SinkConfig>) -> Self {
        Self {
            store,
            configured: configured.into_iter().map(|c| (c.name(), c)).collect(),
            built: HashMap::new(),
            subscription_attempts: None,
        }
    }

    /// Caps the attempts per dead letter for webhook subscriptions (an API request should
    /// not wait out the full retry policy).
    pub fn with_subscription_attempts(mut self, attempts: u32) -> Self {
        self.subscription_attempts = Some(attempts.max(1));
        self
    }

    async fn sink_for(&mut self, d: &DeadLetter) -> Result<Arc<dyn Sink>, String> {
        if let Some(s) = self.built.get(&d.sink) {
            return Ok(s.clone());
        }
        let config = match &d.webhook_id {
            Some(id) => {
                let mut c = self
                    .store
                    .get_webhook(id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("webhook {id:?} no longer exists"))?
                    .sink_config();
                if let (SinkConfig::Webhook(w), Some(n)) = (&mut c, self.subscription_attempts) {
                    w.max_attempts = n;
                }
                c
            }
            None => self.configured.get(&d.sink).cloned().ok_or_else(|| {
                format!(
                    "sink {:?} is not configured here: give it with --sink or --config",
                    d.sink
                )
            })?,
        };
        let sink: Arc<dyn Sink> =
            Arc::from(sinks::build(&config).await.map_err(|e| e.to_string())?);
        self.built.insert(d.sink.clone(), sink.clone());
        Ok(sink)
    }
}

/// Re-delivers the dead letters `query` selects (not yet replayed ones unless it says
/// otherwise), oldest first, each as one batch. A delivered one is marked replayed; a failed one
/// keeps its place with the new error and attempt count.
pub async fn replay(
    store: &Store,
    query: &DeadLetterQuery,
    resolver: &mut SinkResolver,
) -> Result<Vec<Replayed>> {
    let mut out = Vec::new();
    for d in store.list_dead_letters(query).await? {
        let records = store.dead_letter_payload(d.id).await?;
        let result = match resolver.sink_for(&d).await {
            Ok(sink) => match sink.deliver(&records).await {
                Ok(()) => {
                    store.finish_replay(d.id, None, 1).await?;
                    Ok(())
                }
                Err(e) => {
                    let attempts = match &e {
                        SinkError::DeadLetter { attempts, .. } => *attempts,
                        _ => 1,
                    };
                    let msg = e.to_string();
                    store.finish_replay(d.id, Some(&msg), attempts).await?;
                    Err(msg)
                }
            },
            Err(msg) => Err(msg),
        };
        out.push(Replayed {
            id: d.id,
            connection_id: d.connection_id,
            sink: d.sink,
            events: records.len(),
            error: result.err(),
        });
    }
    Ok(out)
}
