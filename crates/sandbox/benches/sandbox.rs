//! Sandbox benchmark (not a timed test): memory with a large seeded account, and throughput of
//! `getuserdata` and `reporting` pages over loopback HTTP.
//!
//! ```sh
//! cargo bench -p sandbox --bench sandbox                      # 100,000 users, 1,000,000 events
//! SANDBOX_BENCH_QUICK=1 cargo bench -p sandbox --bench sandbox  # 5,000 users, 50,000 events
//! ```
//!
//! Tunables (env): `SANDBOX_BENCH_USERS`, `SANDBOX_BENCH_EVENTS`, `SANDBOX_BENCH_CLIENTS`
//! (concurrent clients, default 4), `SANDBOX_BENCH_SECS` (seconds per throughput phase).
//! Clients and server share the machine, so the figures are a floor for the server alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sandbox::lastpass::SeedOptions;
use sandbox::{Clock, SandboxConfig};
use serde_json::{Value, json};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (VmRSS, VmHWM) in MiB from /proc/self/status (0 where unavailable).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct Phase {
    name: String,
    requests: u64,
    bytes: u64,
    errors: u64,
    elapsed: Duration,
    items_per_request: f64,
}

/// Runs `clients` loops for `secs`, each posting `body(i)` and counting bytes.
async fn load(
    name: &str,
    endpoint: &str,
    clients: usize,
    secs: f64,
    body: Arc<dyn Fn(u64) -> Value + Send + Sync>,
    items: Arc<dyn Fn(&Value) -> usize + Send + Sync>,
) -> Phase {
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let items_total = Arc::new(AtomicU64::new(0));
    let sampled = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (requests, bytes, errors, items_total, sampled) = (
            requests.clone(),
            bytes.clone(),
            errors.clone(),
            items_total.clone(),
            sampled.clone(),
        );
        let (endpoint, body, items) = (endpoint.to_string(), body.clone(), items.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = c as u64;
            while Instant::now() < deadline {
                let payload = serde_json::to_vec(&body(i)).unwrap();
                i += clients as u64;
                match client
                    .post(&endpoint)
                    .header("content-type", "application/json")
                    .body(payload)
                    .send()
                    .await
                {
                    Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                        Ok(b) => {
                            bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                            let n = requests.fetch_add(1, Ordering::Relaxed);
                            // Parse one answer in 16 to check it and count items (parsing every
                            // answer would make the benchmark measure the client).
                            if n % 16 == 0 {
                                sampled.fetch_add(1, Ordering::Relaxed);
                                let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                                items_total.fetch_add(items(&v) as u64, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let reqs = requests.load(Ordering::Relaxed);
    let sampled = sampled.load(Ordering::Relaxed).max(1) as f64;
    Phase {
        name: name.to_string(),
        requests: reqs,
        bytes: bytes.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        items_per_request: items_total.load(Ordering::Relaxed) as f64 / sampled,
    }
}

/// Calls the emulator's router directly (no TCP, no hyper, no fault layer) for `secs`, one
/// request at a time: what the emulator alone costs per page.
async fn in_process(name: &str, router: axum::Router, secs: f64, body: Value) -> Phase {
    use tower::ServiceExt;
    let payload = serde_json::to_vec(&body).unwrap();
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let (mut requests, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        let mut req = axum::http::Request::post("/enterpriseapi.php")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(payload.clone()))
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let resp = router.clone().oneshot(req).await.unwrap();
        if !resp.status().is_success() {
            errors += 1;
        }
        let b = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        bytes += b.len() as u64;
        requests += 1;
    }
    Phase {
        name: name.to_string(),
        requests,
        bytes,
        errors,
        elapsed: start.elapsed(),
        items_per_request: f64::NAN,
    }
}

fn count_object(v: &Value, key: &str) -> usize {
    match &v[key] {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let quick = std::env::var("SANDBOX_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
    let users = env_usize("SANDBOX_BENCH_USERS", if quick { 5_000 } else { 100_000 });
    let events = env_usize(
        "SANDBOX_BENCH_EVENTS",
        if quick { 50_000 } else { 1_000_000 },
    );
    let clients = env_usize("SANDBOX_BENCH_CLIENTS", 4);
    let secs: f64 = std::env::var("SANDBOX_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 2.0 } else { 10.0 });
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (rss0, _) = memory_mib();
        let seed = SeedOptions {
            users,
            groups: (users / 200).max(5),
            folders: (users / 100).max(10),
            events,
            seed: 1,
        };
        let mut config = SandboxConfig::with_seed(seed.clone());
        config.clock = Clock::frozen(sandbox::server::TEST_EPOCH_US);
        let started = Instant::now();
        let sb = sandbox::spawn(config).await.expect("spawn");
        let seed_time = started.elapsed();
        let (rss1, hwm1) = memory_mib();
        let info = sb.lastpass.accounts()[0].clone();
        let endpoint = sb.lastpass_endpoint();
        let acct = sb.primary_account();

        println!();
        println!(
            "sandbox benchmark{} — {} CPU(s), {} concurrent clients, {:.0} s per phase",
            if quick { " (quick)" } else { "" },
            workers,
            clients,
            secs
        );
        println!();
        println!("| seed                                   | value |");
        println!("|----------------------------------------|------:|");
        println!(
            "| users / groups / folders / events      | {} / {} / {} / {} |",
            info.users, info.groups, info.folders, info.events
        );
        println!(
            "| seed time                              | {:.2} s |",
            seed_time.as_secs_f64()
        );
        println!("| VmRSS before seeding                   | {rss0:.1} MiB |");
        println!("| VmRSS after seeding                    | {rss1:.1} MiB |");
        println!("| VmHWM (peak) after seeding             | {hwm1:.1} MiB |");
        println!(
            "| RSS growth per user+10 events          | {:.2} KiB |",
            (rss1 - rss0) * 1024.0 / users.max(1) as f64
        );

        let pages = users.div_ceil(2000).max(1) as u64;
        let (cid, provhash) = (acct.cid, acct.provhash.clone());
        let ph = provhash.clone();
        let users_phase = load(
            "getuserdata, pagesize 2000",
            &endpoint,
            clients,
            secs,
            Arc::new(move |i| {
                json!({"cid": cid, "provhash": ph, "cmd": "getuserdata",
                       "data": {"pagesize": 2000, "pageindex": i % pages}})
            }),
            Arc::new(|v| count_object(v, "Users")),
        )
        .await;

        // Every event, newest 10,000 first.
        let all_events = json!({"from": "2000-01-01 00:00:00", "to": "2100-01-01 00:00:00", "user": "allusers"});
        let (ph, everything) = (provhash.clone(), all_events.clone());
        let reporting_phase = load(
            "reporting, 10,000 events/page",
            &endpoint,
            clients,
            secs,
            Arc::new(move |_| {
                json!({"cid": cid, "provhash": ph, "cmd": "reporting", "data": everything})
            }),
            Arc::new(|v| count_object(v, "data")),
        )
        .await;
        let ph = provhash.clone();
        let direct_users = in_process(
            "getuserdata, in-process, 1 at a time",
            sb.lastpass.router(),
            secs / 2.0,
            json!({"cid": cid, "provhash": ph, "cmd": "getuserdata",
                   "data": {"pagesize": 2000, "pageindex": pages / 2}}),
        )
        .await;
        let ph = provhash.clone();
        let direct_reporting = in_process(
            "reporting, in-process, 1 at a time",
            sb.lastpass.router(),
            secs / 2.0,
            json!({"cid": cid, "provhash": ph, "cmd": "reporting", "data": all_events}),
        )
        .await;
        let (rss2, hwm2) = memory_mib();

        println!();
        println!(
            "| phase                                  | requests | req/s   | MB/s   | items/req | errors |"
        );
        println!(
            "|----------------------------------------|---------:|--------:|-------:|----------:|-------:|"
        );
        for p in [&users_phase, &reporting_phase, &direct_users, &direct_reporting] {
            let s = p.elapsed.as_secs_f64();
            println!(
                "| {:<38} | {:>8} | {:>7.1} | {:>6.1} | {:>9} | {:>6} |",
                p.name,
                p.requests,
                p.requests as f64 / s,
                p.bytes as f64 / s / 1e6,
                if p.items_per_request.is_nan() {
                    "-".to_string()
                } else {
                    format!("{:.0}", p.items_per_request)
                },
                p.errors
            );
        }
        println!();
        println!("(HTTP phases: concurrent reqwest clients over loopback through the fault layer;");
        println!(" in-process phases: the emulator's router alone, no TCP, one request at a time.)");
        println!(
            "VmRSS after load: {rss2:.1} MiB, VmHWM: {hwm2:.1} MiB; server counted {} requests",
            sb.stats().total.requests
        );
        sb.shutdown().await.unwrap();
    });
}
