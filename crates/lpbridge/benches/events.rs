//! Event backfill benchmark (issue 7's figures): the watcher backfills N sandbox events into the
//! JSONL file sink (SQLite outbox, one dispatcher, as `lpbridge events watch --once` does) and
//! reports events/s, upstream `reporting` calls (against ceil(N / 10,000)) and the watcher's
//! peak RSS.
//!
//! The sandbox runs in this process; the watcher in a child process (this binary, re-executed
//! with `LPBRIDGE_EVENTS_BENCH_CHILD`), so its `VmHWM` (from `/proc/self/status`) counts the
//! watcher, the store and the sink only, not the emulator's million events.
//!
//! `cargo bench -p lpbridge --bench events`; knobs: `BENCH_EVENTS` (comma-separated sizes,
//! default `100000,1000000`), `BENCH_BATCH` (delivery batch, default 10000).

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lastpass::{Cid, Client, ClientConfig, Credentials, Secret};
use lp_types::ConnectionId;
use lpbridge::events::dispatch::{DispatchOptions, DispatchStats, Dispatcher, SinkTarget};
use lpbridge::events::sinks::{self, FileConfig, SinkConfig};
use lpbridge::events::watcher::{WatchOptions, WatchStats, Watcher};
use lpbridge::store::{NewConnection, Store};
use serde_json::{Value, json};
use tokio::sync::watch;

const CHILD: &str = "LPBRIDGE_EVENTS_BENCH_CHILD";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match std::env::var(CHILD) {
        Ok(spec) => rt.block_on(child(serde_json::from_str(&spec).expect("child spec"))),
        Err(_) => rt.block_on(parent()),
    }
}

/// `VmHWM` of this process in MiB.
fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn parent() {
    let sizes: Vec<usize> = std::env::var("BENCH_EVENTS")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let batch: usize = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!(
        "# events backfill into the JSONL file sink (SQLite outbox, delivery batch {batch}), {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| events | delivered | wall | events/s | reporting calls (ceil(N/10,000)) | watcher peak RSS |"
    );
    println!("|---|---|---|---|---|---|");
    for n in sizes {
        let seeded = Instant::now();
        // Seeded up to an hour ago (a frozen clock), so the window [now − 7 weeks, now − 1 min]
        // holds exactly the N seeded events.
        let hour_ago = Utc::now().timestamp_micros() - 3_600_000_000;
        let sb = sandbox::spawn(
            sandbox::SandboxConfig::with_seed(sandbox::lastpass::SeedOptions {
                users: 1000,
                groups: 10,
                folders: 10,
                events: n,
                seed: 7,
            })
            .with_clock(sandbox::Clock::frozen(hour_ago)),
        )
        .await
        .expect("sandbox");
        let seed_s = seeded.elapsed().as_secs_f64();
        let acct = sb.primary_account();
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc::now();
        let spec = json!({
            "endpoint": sb.lastpass_endpoint(),
            "cid": acct.cid,
            "provhash": acct.provhash,
            "dir": dir.path(),
            "from": (now - chrono::Duration::weeks(7)).to_rfc3339(),
            "to": (now - chrono::Duration::seconds(60)).to_rfc3339(),
            "batch": batch,
        });
        let before = sb.stats().by_cmd.get("reporting").map_or(0, |c| c.requests);
        let out = tokio::process::Command::new(std::env::current_exe().expect("exe"))
            .env(CHILD, spec.to_string())
            .stderr(Stdio::inherit())
            .output()
            .await
            .expect("child runs");
        assert!(out.status.success(), "the watcher child failed");
        let r: Value = serde_json::from_slice(&out.stdout).expect("child report");
        let calls = sb.stats().by_cmd.get("reporting").map_or(0, |c| c.requests) - before;
        let secs = r["seconds"].as_f64().unwrap_or(0.0);
        let delivered = r["delivered"].as_u64().unwrap_or(0);
        println!(
            "| {n} | {delivered} | {secs:.1} s | {:.0} | {calls} ({}) | {:.0} MiB |",
            delivered as f64 / secs.max(1e-9),
            n.div_ceil(10_000),
            r["peak_rss_mib"].as_f64().unwrap_or(0.0)
        );
        eprintln!(
            "  (sandbox seeded in {seed_s:.1} s; collect {:.1} s, file {:.0} MiB, pages {})",
            r["collect_seconds"].as_f64().unwrap_or(0.0),
            r["file_mib"].as_f64().unwrap_or(0.0),
            r["pages"]
        );
        sb.shutdown().await.ok();
    }
}

async fn child(spec: Value) {
    let s = |k: &str| spec[k].as_str().expect(k).to_owned();
    let dir = std::path::PathBuf::from(s("dir"));
    let store = Store::open(None, &dir.join("data")).await.expect("store");
    let conn = ConnectionId::new("bench").expect("id");
    let endpoint = lastpass::parse_endpoint(&s("endpoint")).expect("endpoint");
    let provhash = Secret::new(s("provhash"));
    let cid = Cid(spec["cid"].as_u64().expect("cid"));
    store
        .create_connection(
            NewConnection {
                id: conn.clone(),
                cid,
                endpoint: endpoint.clone(),
                provhash: provhash.clone(),
                time_zone: Some(chrono_tz::US::Eastern),
            },
            true,
        )
        .await
        .expect("connection");
    let client =
        Client::new(ClientConfig::new(Credentials { cid, provhash }).with_endpoint(endpoint))
            .expect("client");
    let t = |k: &str| {
        DateTime::parse_from_rfc3339(&s(k))
            .expect(k)
            .with_timezone(&Utc)
    };
    let opts = WatchOptions {
        from: Some(t("from")),
        to: Some(t("to")),
        once: true,
        time_zone: chrono_tz::US::Eastern,
        ..WatchOptions::default()
    };
    let start = Instant::now();
    let w = Watcher::new(store.clone(), client, conn.clone(), opts, "bench").expect("watcher");
    let path = dir.join("events.jsonl");
    let sink = sinks::build(&SinkConfig::File(FileConfig {
        max_bytes: u64::MAX,
        ..FileConfig::new(&path)
    }))
    .await
    .expect("file sink");
    let mut dopts = DispatchOptions::new("bench");
    dopts.batch_size = spec["batch"].as_u64().unwrap_or(10_000) as usize;
    let d = Dispatcher::new(
        store.clone(),
        conn.clone(),
        SinkTarget::new(Arc::from(sink)),
        dopts,
        w.notify(),
    );
    let dstats = d.stats();
    let (_stop_tx, stop) = watch::channel(false);
    let (drain_tx, drain) = watch::channel(None);
    let delivery = tokio::spawn({
        let stop = stop.clone();
        async move { d.run(stop, drain).await }
    });
    w.run(stop).await.expect("watcher");
    let collect_seconds = start.elapsed().as_secs_f64();
    let last = store.max_event_seq(&conn).await.expect("max seq");
    drain_tx.send(Some(last)).expect("drain");
    tokio::time::timeout(Duration::from_secs(3600), delivery)
        .await
        .expect("delivered in time")
        .expect("dispatcher");
    let seconds = start.elapsed().as_secs_f64();
    let ws = w.stats();
    let report = json!({
        "seconds": seconds,
        "collect_seconds": collect_seconds,
        "delivered": DispatchStats::get(&dstats.delivered),
        "pages": WatchStats::get(&ws.pages),
        "new": WatchStats::get(&ws.events_new),
        "file_mib": std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1048576.0,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{report}");
}
