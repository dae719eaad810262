//! Service benchmark (the two figures), all on 127.0.0.1 in one process:
//!
//! 1. Unified `GET /unified/iam/users?page_size=25`, walking `next` cursors, against a
//!    100,000-user sandbox with 64 concurrent clients: requests/s, p50/p99, and upstream
//!    `getuserdata` calls per 1,000 requests.
//! 2. The latency lpbridge adds over calling the sandbox directly, as a ratio: one page of 25
//!    users through lpbridge (warm snapshot) and through `POST /unified/proxy`, against the same
//!    page fetched from the sandbox with `getuserdata` (pagesize 25), one request at a time.
//!
//! `cargo bench -p lpbridge --bench service`; knobs: `BENCH_USERS` (100000), `BENCH_CLIENTS`
//! (64), `BENCH_REQUESTS` (20000), `BENCH_SEQUENTIAL` (500).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lastpass::{Cid, Secret};
use lp_types::ConnectionId;
use lpbridge::http::{self, App, Settings};
use lpbridge::store::{NewConnection, Store};
use serde_json::{Value, json};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// One page of 25 users, after the cursor `next` when there is one.
fn users_url(base: &str, next: Option<&str>) -> String {
    let mut url = format!("{base}/unified/iam/users?page_size=25");
    if let Some(n) = next {
        url.push_str("&next=");
        url.push_str(n);
    }
    url
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let users = env_usize("BENCH_USERS", 100_000);
    let clients = env_usize("BENCH_CLIENTS", 64);
    let requests = env_usize("BENCH_REQUESTS", 20_000);
    let sequential = env_usize("BENCH_SEQUENTIAL", 500);

    let t0 = Instant::now();
    let sb = sandbox::spawn(sandbox::SandboxConfig::with_seed(
        sandbox::lastpass::SeedOptions {
            users,
            groups: 50,
            folders: 20,
            events: 0,
            seed: 7,
        },
    ))
    .await
    .expect("sandbox");
    eprintln!("sandbox with {users} users seeded in {:.2?}", t0.elapsed());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(None, dir.path()).await.expect("store");
    let acct = sb.primary_account();
    store
        .create_connection(
            NewConnection {
                id: ConnectionId::new("bench").expect("id"),
                cid: Cid(acct.cid),
                endpoint: lastpass::parse_endpoint(&sb.lastpass_endpoint()).expect("endpoint"),
                provhash: Secret::new(acct.provhash.clone()),
                time_zone: None,
            },
            false,
        )
        .await
        .expect("connection");
    let (_, key) = store.create_api_key("bench", false).await.expect("key");
    let key = key.expose().to_owned();
    let app = App::new(
        store,
        Settings {
            // Long enough that the whole run is served from one sweep.
            snapshot_ttl: Duration::from_secs(3600),
            ..Settings::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = http::router(app);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");

    // ---- 1. concurrent cursor walks --------------------------------------------------------
    sb.reset_stats();
    let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(requests));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, base, key, remaining) =
            (http.clone(), base.clone(), key.clone(), remaining.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut next: Option<String> = None;
            while remaining
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                let url = users_url(&base, next.as_deref());
                let t = Instant::now();
                let resp = http.get(&url).bearer_auth(&key).send().await.expect("send");
                assert_eq!(resp.status(), 200);
                let body: Value = resp.json().await.expect("json");
                lat.push(t.elapsed());
                assert!(body["data"].as_array().is_some_and(|d| !d.is_empty()));
                next = body["next"].as_str().map(str::to_owned);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    let elapsed = started.elapsed();
    lat.sort();
    let upstream: u64 = sb
        .stats()
        .by_cmd
        .get("getuserdata")
        .map_or(0, |c| c.requests);
    println!("## 1. unified GET /users, page_size 25, {clients} clients, {users} users");
    println!(
        "requests {}  wall {:.2?}  throughput {:.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
        lat.len(),
        elapsed,
        lat.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
    println!(
        "upstream getuserdata calls {upstream} ({:.2} per 1,000 requests; one sweep = ceil({users}/2000) = {} pages, + 1 group map with invitees)",
        upstream as f64 * 1000.0 / lat.len() as f64,
        users.div_ceil(2000)
    );

    // ---- 2. added latency ---------------------------------------------------------------------
    let direct_body = |i: usize| {
        json!({"cid": acct.cid, "provhash": acct.provhash, "cmd": "getuserdata",
               "data": {"pagesize": 25, "pageindex": i % 100}})
    };
    let mut direct = Vec::new();
    let mut unified = Vec::new();
    let mut proxied = Vec::new();
    let mut next: Option<String> = None;
    for i in 0..sequential {
        let t = Instant::now();
        let r = http
            .post(sb.lastpass_endpoint())
            .json(&direct_body(i))
            .send()
            .await
            .expect("direct");
        let _ = r.bytes().await.expect("body");
        direct.push(t.elapsed());

        let url = users_url(&base, next.as_deref());
        let t = Instant::now();
        let body: Value = http
            .get(&url)
            .bearer_auth(&key)
            .send()
            .await
            .expect("unified")
            .json()
            .await
            .expect("json");
        unified.push(t.elapsed());
        next = body["next"].as_str().map(str::to_owned);

        let t = Instant::now();
        let r = http
            .post(format!("{base}/unified/proxy"))
            .bearer_auth(&key)
            .json(&json!({"method": "post", "body": {"cmd": "getuserdata", "data": {"pagesize": 25, "pageindex": i % 100}}}))
            .send()
            .await
            .expect("proxy");
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await.expect("body");
        proxied.push(t.elapsed());
    }
    for v in [&mut direct, &mut unified, &mut proxied] {
        v.sort();
    }
    let (d50, u50, p50) = (
        percentile(&direct, 0.5),
        percentile(&unified, 0.5),
        percentile(&proxied, 0.5),
    );
    println!("## 2. one page of 25 users, sequential, {sequential} requests each");
    println!(
        "direct sandbox getuserdata p50 {:.3} ms p99 {:.3} ms",
        ms(d50),
        ms(percentile(&direct, 0.99))
    );
    println!(
        "lpbridge unified (warm snapshot) p50 {:.3} ms p99 {:.3} ms  ratio {:.2}x",
        ms(u50),
        ms(percentile(&unified, 0.99)),
        u50.as_secs_f64() / d50.as_secs_f64()
    );
    println!(
        "lpbridge /unified/proxy (pass-through) p50 {:.3} ms p99 {:.3} ms  ratio {:.2}x  (+{:.3} ms)",
        ms(p50),
        ms(percentile(&proxied, 0.99)),
        p50.as_secs_f64() / d50.as_secs_f64(),
        ms(p50.saturating_sub(d50))
    );
}
