//! Event collection inside `lpbridge serve`: one watcher task per connection with watching on
//! (`events_watch`, set through `PATCH /events/watcher` or, for the embedded sandbox, at
//! start), and one dispatcher task per (connection, sink): the sinks of the config file for
//! every watched connection, and each enabled webhook subscription of any connection.
//!
//! A supervisor re-reads the store every poll interval and starts, restarts (new credentials,
//! a changed subscription) or stops tasks to match. Every task holds its lease, so on several
//! replicas exactly one polls a connection and one delivers to a sink (see [`super::lease`]
//! for the takeover bound); the others wait and take over when its lease lapses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lastpass::{Client, ClientConfig, Credentials, RetryPolicy};
use lp_types::ConnectionId;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::dispatch::{DispatchOptions, Dispatcher, SinkTarget};
use super::lease::owner_id;
use super::sinks::{self, Sink, SinkConfig, SinkError};
use super::watcher::{self, WatchEnd, WatchOptions, Watcher, sleep_or_stop};
use crate::store::{Connection, Store, StoreError};

/// What `serve` configures for events.
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// Poll interval of every watcher (and how often the supervisor re-reads the store).
    pub poll: Duration,
    /// Sinks fed from every watched connection.
    pub sinks: Vec<SinkConfig>,
    /// LastPass client per watcher.
    pub timeout: Duration,
    pub attempts: u32,
    pub lease_ttl: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            poll: watcher::DEFAULT_INTERVAL,
            sinks: Vec::new(),
            timeout: Duration::from_secs(30),
            attempts: 4,
            lease_ttl: watcher::DEFAULT_LEASE_TTL,
        }
    }
}

/// The running supervisor; [`EventService::shutdown`] stops every task and releases leases.
pub struct EventService {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl EventService {
    /// Builds the configured sinks (a refused one is an error now, not later) and starts the
    /// supervisor.
    pub async fn start(store: Store, settings: EventSettings) -> Result<Self, SinkError> {
        SinkConfig::validate_all(&settings.sinks)?;
        let mut shared = Vec::new();
        for c in &settings.sinks {
            // Built once and shared by every connection: a file has one writer.
            shared.push(Arc::<dyn Sink>::from(sinks::build(c).await?));
        }
        let (stop, rx) = watch::channel(false);
        let sup = Supervisor {
            store,
            settings,
            shared,
            owner: owner_id(),
            watchers: HashMap::new(),
            dispatchers: HashMap::new(),
            notifies: HashMap::new(),
        };
        let task = tokio::spawn(sup.run(rx));
        Ok(Self { stop, task })
    }

    /// Stops every watcher and dispatcher (each releases its lease) and waits for them, at
    /// most `grace`.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!("event tasks did not stop in time");
        }
    }
}

/// One running task and how to stop it.
struct Task {
    /// What it was started from; a different value restarts it.
    fingerprint: String,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Task {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

struct Supervisor {
    store: Store,
    settings: EventSettings,
    shared: Vec<Arc<dyn Sink>>,
    owner: String,
    watchers: HashMap<ConnectionId, Task>,
    dispatchers: HashMap<(ConnectionId, String), Task>,
    notifies: HashMap<ConnectionId, Arc<Notify>>,
}

impl Supervisor {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.reconcile().await {
                tracing::warn!(error = %e, "event service: could not read the store; retrying");
            }
            if sleep_or_stop(self.settings.poll, &mut stop).await {
                break;
            }
        }
        let tasks: Vec<Task> = self
            .watchers
            .drain()
            .map(|(_, t)| t)
            .chain(self.dispatchers.drain().map(|(_, t)| t))
            .collect();
        for t in &tasks {
            let _ = t.stop.send(true);
        }
        for t in tasks {
            let _ = t.handle.await;
        }
    }

    fn notify(&mut self, conn: &ConnectionId) -> Arc<Notify> {
        self.notifies.entry(conn.clone()).or_default().clone()
    }

    async fn reconcile(&mut self) -> Result<(), StoreError> {
        let watched = self.store.events_watch_connections().await?;
        // Watchers: one per watched connection, restarted when the connection changes.
        let mut wanted = HashMap::new();
        for id in &watched {
            if let Some(c) = self.store.get_connection(id).await? {
                wanted.insert(id.clone(), c);
            }
        }
        let gone: Vec<ConnectionId> = self
            .watchers
            .iter()
            .filter(|(id, t)| {
                wanted
                    .get(*id)
                    .is_none_or(|c| t.fingerprint != c.updated_at.to_rfc3339())
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(t) = self.watchers.remove(&id) {
                t.stop().await;
            }
        }
        for (id, c) in wanted {
            if !self.watchers.contains_key(&id) {
                let notify = self.notify(&id);
                match self.spawn_watcher(c, notify) {
                    Ok(t) => {
                        self.watchers.insert(id, t);
                    }
                    Err(e) => {
                        tracing::warn!(connection = %id, error = %e, "cannot start the event watcher");
                    }
                }
            }
        }
        // Dispatchers: config sinks of watched connections, and enabled subscriptions.
        let mut targets: HashMap<(ConnectionId, String), (String, Option<SinkTarget>)> =
            HashMap::new();
        for id in &watched {
            for s in &self.shared {
                let target = SinkTarget::new(s.clone());
                targets.insert(
                    (id.clone(), s.name().to_owned()),
                    ("config".into(), Some(target)),
                );
            }
        }
        for w in self.store.list_webhooks(None).await? {
            let Ok(conn) = ConnectionId::new(w.connection_id.clone()) else {
                continue;
            };
            if !w.enabled {
                continue;
            }
            let key = (conn, w.sink_name());
            let fingerprint = w.updated_at.to_rfc3339();
            // Built (its secret decrypted) only when it is new or changed.
            let running = self
                .dispatchers
                .get(&key)
                .is_some_and(|t| t.fingerprint == fingerprint);
            let target = if running {
                None
            } else {
                self.webhook_target(&w.id).await?
            };
            targets.insert(key, (fingerprint, target));
        }
        let stale: Vec<(ConnectionId, String)> = self
            .dispatchers
            .iter()
            .filter(|(k, t)| targets.get(*k).is_none_or(|(f, _)| *f != t.fingerprint))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            if let Some(t) = self.dispatchers.remove(&k) {
                t.stop().await;
            }
        }
        for (key, (fingerprint, target)) in targets {
            if self.dispatchers.contains_key(&key) {
                continue;
            }
            let Some(target) = target else { continue };
            let notify = self.notify(&key.0);
            let mut opts = DispatchOptions::new(self.owner.clone());
            opts.lease_ttl = self.settings.lease_ttl;
            opts.poll = self.settings.poll.min(Duration::from_secs(5));
            let d = Dispatcher::new(self.store.clone(), key.0.clone(), target, opts, notify);
            let (stop, rx) = watch::channel(false);
            let (_drain_tx, drain) = watch::channel(None);
            let handle = tokio::spawn(async move {
                // The drain sender lives as long as the task: `None` means never drain.
                let _keep = _drain_tx;
                d.run(rx, drain).await;
            });
            self.dispatchers.insert(
                key,
                Task {
                    fingerprint,
                    stop,
                    handle,
                },
            );
        }
        Ok(())
    }

    /// The sink of subscription `id`, or `None` (logged) when it cannot be built.
    async fn webhook_target(&self, id: &str) -> Result<Option<SinkTarget>, StoreError> {
        let Some(w) = self.store.get_webhook(id).await? else {
            return Ok(None);
        };
        match sinks::build(&w.sink_config()).await {
            Ok(sink) => Ok(Some(SinkTarget {
                sink: Arc::from(sink),
                webhook_id: Some(w.summary.id.clone()),
                categories: w.summary.categories.clone(),
            })),
            Err(e) => {
                tracing::warn!(webhook = %id, error = %e, "cannot build the webhook sink");
                Ok(None)
            }
        }
    }

    fn spawn_watcher(&self, c: Connection, notify: Arc<Notify>) -> Result<Task, String> {
        let mut cfg = ClientConfig::new(Credentials {
            cid: c.cid,
            provhash: c.provhash.clone(),
        })
        .with_endpoint(c.endpoint.clone());
        cfg.timeout = self.settings.timeout;
        cfg.retry = RetryPolicy {
            max_attempts: self.settings.attempts.max(1),
            ..cfg.retry
        };
        let client = Client::new(cfg).map_err(|e| e.to_string())?;
        let opts = WatchOptions {
            interval: self.settings.poll,
            time_zone: c.time_zone.unwrap_or(chrono_tz::US::Eastern),
            lease_ttl: self.settings.lease_ttl,
            ..WatchOptions::default()
        };
        let w = Watcher::new(
            self.store.clone(),
            client,
            c.id.clone(),
            opts,
            self.owner.clone(),
        )
        .map_err(|e| e.to_string())?
        .with_notify(notify);
        let (stop, mut rx) = watch::channel(false);
        let poll = self.settings.poll;
        let id = c.id.clone();
        let handle = tokio::spawn(async move {
            loop {
                match w.run(rx.clone()).await {
                    Ok(WatchEnd::Stopped) => break,
                    Ok(end) => tracing::debug!(connection = %id, ?end, "event watcher ended"),
                    Err(e) => {
                        tracing::error!(connection = %id, error = %e, "event watcher failed; retrying")
                    }
                }
                if sleep_or_stop(poll, &mut rx).await {
                    break;
                }
            }
        });
        Ok(Task {
            fingerprint: c.updated_at.to_rfc3339(),
            stop,
            handle,
        })
    }
}
