//! Reliability acceptance of the event watcher (issue 7): the real `lpbridge events watch`
//! binary backfills 100,000 sandbox events into a JSONL file while
//!
//! - the sandbox answers `reporting` with 429, 500, 503 and truncated JSON at random (a fixed
//!   fault seed),
//! - simulated activity keeps adding events inside the backfill's window (it ends in the near
//!   future, so the watcher follows the present until then),
//! - the watcher process is killed with SIGKILL at random moments (a fixed seed) and restarted,
//!   several times;
//!
//! and at the end the file holds every event of the window exactly once: the same ids as the
//! sandbox's own list of that window, read afterwards without faults.
//!
//! Scale with `LPBRIDGE_RELIABILITY_EVENTS` (default 100000), `LPBRIDGE_RELIABILITY_KILLS`
//! (default 6) and `LPBRIDGE_RELIABILITY_SEED` (default 42). The kills are the test's random
//! moments; every other wait is on the child process or polls with a deadline.
#![cfg(feature = "sandbox")]

mod common;
mod events_common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use events_common::{assert_same_once, client_for, file_ids, upstream_ids};
use lpbridge::events::time::utc_to_local;
use rand::{Rng, SeedableRng};
use sandbox::faults::{FaultConfig, FaultKind, FaultRule};
use sandbox::lastpass::SeedOptions;
use sandbox::{SandboxConfig, activity::ActivityConfig};

const BIN: &str = env!("CARGO_BIN_EXE_lpbridge");

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_faulted_backfill_delivers_every_event_exactly_once() {
    let events = knob("LPBRIDGE_RELIABILITY_EVENTS", 100_000) as usize;
    let kills = knob("LPBRIDGE_RELIABILITY_KILLS", 6);
    let seed = knob("LPBRIDGE_RELIABILITY_SEED", 42);
    let started = Instant::now();

    let fault = |kind: FaultKind, p: f64| FaultRule::new("reporting", kind).probability(p);
    let cfg = SandboxConfig::with_seed(SeedOptions {
        users: 300,
        groups: 10,
        folders: 10,
        events,
        seed,
    })
    .with_faults(FaultConfig {
        rules: vec![
            fault(FaultKind::Status { status: 429 }, 0.05),
            fault(FaultKind::Status { status: 500 }, 0.05),
            fault(FaultKind::Status { status: 503 }, 0.03),
            fault(FaultKind::Truncate, 0.05),
        ],
        seed,
        rate_limit_rps: None,
    })
    .with_activity(ActivityConfig {
        // 10 a second: 2 per 200 ms tick (each tick writes round(hours × per_hour)).
        per_hour: 36_000.0,
        tick: Duration::from_millis(200),
        seed,
    });
    let sb = sandbox::spawn(cfg).await.expect("sandbox starts");
    let acct = sb.primary_account();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");

    // Whole seconds, so the comparison below reads exactly the watcher's window.
    let now = Utc::now();
    let from = now - chrono::Duration::weeks(7);
    let from = from - chrono::Duration::nanoseconds(i64::from(from.timestamp_subsec_nanos()));
    let to = now + chrono::Duration::seconds(20);
    let to = to - chrono::Duration::nanoseconds(i64::from(to.timestamp_subsec_nanos()));
    let (from_s, to_s) = (from.to_rfc3339(), to.to_rfc3339());
    let sink = format!("file:{}", out.display());
    let command = || {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args([
            "events",
            "watch",
            "--from",
            &from_s,
            "--to",
            &to_s,
            "--sink",
            &sink,
            "--once",
            "--interval",
            "1",
            "--lease-ttl",
            "5",
            "--batch-size",
            "2000",
        ])
        .env("LPBRIDGE_DATA_DIR", dir.path().join("data"))
        .env("LPBRIDGE_ENDPOINT", sb.lastpass_endpoint())
        .env("LPBRIDGE_CID", acct.cid.to_string())
        .env("LPBRIDGE_PROVHASH", &acct.provhash)
        .env("LPBRIDGE_ATTEMPTS", "8")
        .env_remove("LPBRIDGE_CONFIG")
        .env_remove("LPBRIDGE_DATABASE_URL")
        .env_remove("LPBRIDGE_CONNECTION")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        cmd
    };

    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..kills {
        let mut child = command().spawn().unwrap();
        let moment = Duration::from_millis(rng.gen_range(200..2500));
        // The random moment of the kill (a timer by design, not a wait for a condition).
        let early = tokio::time::timeout(moment, child.wait()).await;
        if let Ok(status) = early {
            panic!("the watcher ended before its kill: {:?}", status.unwrap());
        }
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
    }
    let last = command().output();
    let last = tokio::time::timeout(Duration::from_secs(240), last)
        .await
        .expect("the last run finished")
        .unwrap();
    let stderr = String::from_utf8_lossy(&last.stderr);
    assert!(last.status.success(), "{stderr}");

    // The sandbox's own list of the window, without faults.
    sb.faults.clear();
    let tz = chrono_tz::US::Eastern;
    let upstream = upstream_ids(
        &client_for(&sb),
        tz,
        utc_to_local(from, tz),
        utc_to_local(to, tz),
    )
    .await;
    let delivered = file_ids(&out);
    // Simulated activity wrote events inside the window while the watcher ran.
    let text = std::fs::read_to_string(&out).unwrap();
    let active = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| {
            v["action"] != "Reporting"
                && v["time_utc"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t >= now)
        })
        .count();
    assert!(active >= 50, "only {active} events of simulated activity");
    assert_eq!(
        delivered.len(),
        upstream.len(),
        "count matches the sandbox's"
    );
    assert_same_once("the file sink", &delivered, &upstream);
    let stats = sb.stats();
    println!(
        "{} events ({} seeded, {active} from activity during the run), {kills} kills, {} reporting requests ({} faulted), {:.1} s",
        upstream.len(),
        events,
        stats.by_cmd["reporting"].requests,
        stats.by_cmd["reporting"].faulted,
        started.elapsed().as_secs_f64()
    );
}
