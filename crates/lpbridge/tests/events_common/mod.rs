//! Fixtures of the event tests: a store on either backend, the in-process sandbox with a stored
//! connection to it, watchers tied to the sandbox's virtual clock, the sandbox's own event list
//! with lpbridge's ids, and a scriptable webhook receiver. Everything on 127.0.0.1.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use lastpass::{Cid, Client, ClientConfig, Credentials, EventQuery, Secret};
use lp_types::ConnectionId;
use lpbridge::events::Sequencer;
use lpbridge::events::time::utc_to_local;
use lpbridge::events::watcher::{WatchClock, WatchEnd, WatchOptions, WatchStats, Watcher};
use lpbridge::store::{DatabaseUrl, NewConnection, Store, StoreConfig};
use parking_lot::Mutex;
use sandbox::{SandboxConfig, SandboxHandle};
use tokio::sync::{Notify, watch};

use super::common::PgDatabase;

/// Runs each named `async fn(&Fixture)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let fx = super::events_common::Fixture::sqlite();
                super::$name(&fx).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(fx) = super::events_common::Fixture::postgres().await else {
                    return;
                };
                super::$name(&fx).await;
            }
        }
    )*};
}

/// A fresh database on one backend.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub url: Option<DatabaseUrl>,
    _pg: Option<PgDatabase>,
}

impl Fixture {
    pub fn sqlite() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            url: None,
            _pg: None,
        }
    }

    /// `None` (after printing why) when PostgreSQL is not reachable.
    pub async fn postgres() -> Option<Self> {
        let pg = PgDatabase::create().await?;
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            url: Some(DatabaseUrl::parse(&pg.url).unwrap()),
            _pg: Some(pg),
        })
    }

    pub fn config(&self) -> StoreConfig {
        StoreConfig {
            database_url: self.url.clone(),
            data_dir: self.dir.path().join("data"),
            key: lpbridge::crypto::KeySource::File(self.dir.path().join("data").join("master.key")),
            max_connections: None,
        }
    }

    pub async fn open(&self) -> Store {
        Store::open_with(self.config()).await.expect("store opens")
    }
}

/// The sandbox, a store with the connection `acme` to it, and a client.
pub struct Env {
    pub sb: SandboxHandle,
    pub store: Store,
    pub conn: ConnectionId,
    pub client: Client,
    pub cid: u64,
    pub tz: Tz,
}

/// The account's zone (the sandbox's default).
pub const TZ: Tz = chrono_tz::US::Eastern;

pub fn client_for(sb: &SandboxHandle) -> Client {
    let acct = sb.primary_account();
    let mut cfg = ClientConfig::new(Credentials {
        cid: Cid(acct.cid),
        provhash: Secret::new(acct.provhash),
    })
    .with_endpoint(lastpass::parse_endpoint(&sb.lastpass_endpoint()).unwrap());
    // Faulted tests: quick retries.
    cfg.retry.base_delay = Duration::from_millis(5);
    cfg.retry.max_delay = Duration::from_millis(50);
    Client::new(cfg).unwrap()
}

/// A sandbox frozen at `sandbox::server::TEST_EPOCH_US` with `events` seeded events.
pub async fn env(fx: &Fixture, events: usize) -> Env {
    let mut cfg = SandboxConfig::for_tests();
    cfg.lastpass.accounts[0].seed.events = events;
    env_with(fx, cfg).await
}

pub async fn env_with(fx: &Fixture, cfg: SandboxConfig) -> Env {
    let sb = sandbox::spawn(cfg).await.expect("sandbox starts");
    let store = fx.open().await;
    let acct = sb.primary_account();
    let conn = ConnectionId::new("acme").unwrap();
    store
        .create_connection(
            NewConnection {
                id: conn.clone(),
                cid: Cid(acct.cid),
                endpoint: lastpass::parse_endpoint(&sb.lastpass_endpoint()).unwrap(),
                provhash: Secret::new(acct.provhash.clone()),
                time_zone: Some(TZ),
            },
            false,
        )
        .await
        .unwrap();
    Env {
        client: client_for(&sb),
        cid: acct.cid,
        sb,
        store,
        conn,
        tz: TZ,
    }
}

impl Env {
    /// The sandbox's virtual now.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.sb.clock.now_us()).unwrap()
    }

    /// Watcher options on the sandbox's clock: quick retries, a short lease.
    pub fn options(&self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> WatchOptions {
        let clock = self.sb.clock.clone();
        WatchOptions {
            from,
            to,
            once: true,
            interval: Duration::from_millis(200),
            lease_ttl: Duration::from_secs(2),
            time_zone: self.tz,
            clock: WatchClock::new(move || {
                DateTime::from_timestamp_micros(clock.now_us()).unwrap()
            }),
            ..WatchOptions::default()
        }
    }

    pub fn watcher(&self, opts: WatchOptions, owner: &str) -> Watcher {
        Watcher::new(
            self.store.clone(),
            self.client.clone(),
            self.conn.clone(),
            opts,
            owner,
        )
        .unwrap()
    }

    /// Runs a `once` watcher to its end; returns its counters.
    pub async fn run_once(&self, opts: WatchOptions, owner: &str) -> Arc<WatchStats> {
        let w = self.watcher(opts, owner);
        let (_tx, rx) = watch::channel(false);
        let end = tokio::time::timeout(Duration::from_secs(120), w.run(rx))
            .await
            .expect("watcher finished in time")
            .expect("watcher ran");
        assert!(
            matches!(end, WatchEnd::Done | WatchEnd::CaughtUp),
            "{end:?}"
        );
        w.stats()
    }

    /// Ids of the stored events in `seq` order.
    pub async fn stored_ids(&self) -> Vec<String> {
        self.store
            .events_after(&self.conn, 0, 10_000_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.record.id.to_string())
            .collect()
    }

    /// The sandbox's own events of the account-zone window `[from, to]`, with lpbridge's ids
    /// computed over one walk (its `reporting` call logs an event at the sandbox's now).
    pub async fn upstream_ids(&self, from: NaiveDateTime, to: NaiveDateTime) -> Vec<String> {
        upstream_ids(&self.client, self.tz, from, to).await
    }

    pub fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        utc_to_local(t, self.tz)
    }
}

/// Every event of `[from, to]` (account zone) through `client`, with ids from one walk.
pub async fn upstream_ids(
    client: &Client,
    tz: Tz,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Vec<String> {
    let q = EventQuery {
        from,
        to,
        search: None,
        user: None,
        admin_only: false,
    };
    let mut seq = Sequencer::new();
    let mut next = None;
    let mut out = Vec::new();
    loop {
        let page = client.events_page(&q, next).await.expect("reporting page");
        out.extend(
            seq.page(page.events, tz)
                .into_iter()
                .map(|r| r.id.to_string()),
        );
        match page.next {
            Some(n) => next = Some(n),
            None => return out,
        }
    }
}

/// Asserts `ids` has no duplicate and equals `expected` as a set.
pub fn assert_same_once(what: &str, ids: &[String], expected: &[String]) {
    let mut a = ids.to_vec();
    a.sort();
    let before = a.len();
    a.dedup();
    assert_eq!(before, a.len(), "{what}: {} duplicate(s)", before - a.len());
    let mut b = expected.to_vec();
    b.sort();
    b.dedup();
    let missing: Vec<&String> = b.iter().filter(|x| a.binary_search(x).is_err()).collect();
    let extra: Vec<&String> = a.iter().filter(|x| b.binary_search(x).is_err()).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} missing (e.g. {:?}), {} extra (e.g. {:?}) of {} expected",
        missing.len(),
        missing.first(),
        extra.len(),
        extra.first(),
        b.len()
    );
}

/// Polls `f` until it yields `true`, failing after `deadline` (no fixed sleeps).
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Ids of the records in a JSON Lines file.
pub fn file_ids(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a whole JSON line");
            v["id"].as_str().expect("id").to_owned()
        })
        .collect()
}

// ---- webhook receiver -------------------------------------------------------------------------

/// How the receiver answers.
pub const FAIL: u8 = 0;
pub const OK: u8 = 1;
/// Holds every request until released.
pub const HOLD: u8 = 2;

pub struct Receiver {
    pub mode: AtomicU8,
    pub release: Notify,
    /// Event ids of the accepted batches, in order.
    pub accepted: Mutex<Vec<String>>,
    pub requests: Mutex<VecDeque<Instant>>,
}

impl Receiver {
    pub fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        if mode != HOLD {
            self.release.notify_waiters();
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().len()
    }
}

async fn receive(State(rx): State<Arc<Receiver>>, body: Bytes) -> StatusCode {
    rx.requests.lock().push_back(Instant::now());
    loop {
        let released = rx.release.notified();
        match rx.mode.load(Ordering::SeqCst) {
            HOLD => released.await,
            OK => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let ids = v["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_str().unwrap().to_owned());
                rx.accepted.lock().extend(ids);
                return StatusCode::OK;
            }
            _ => return StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A receiver on 127.0.0.1 in `mode`; returns its URL.
pub async fn receiver(mode: u8) -> (String, Arc<Receiver>) {
    let rx = Arc::new(Receiver {
        mode: AtomicU8::new(mode),
        release: Notify::new(),
        accepted: Mutex::default(),
        requests: Mutex::default(),
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::clone(&rx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), rx)
}

/// A port on 127.0.0.1 that nothing listens on.
pub async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}
