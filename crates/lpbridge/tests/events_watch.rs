//! The event watcher, the outbox and the dispatcher against the in-process sandbox, on SQLite
//! and PostgreSQL (`both!`): exactly once across overlapping windows and identical events,
//! resume after a crash between pages, one poller per connection with takeover after the
//! holder stops renewing, dead letters and replay, sinks that never wait on each other, and the
//! `events watch` command's refusals of bad input.
//!
//! The watchers run on the sandbox's virtual clock (frozen; tests move it), so windows and
//! late events are deterministic. No fixed sleeps: waits poll with a deadline.
#![cfg(feature = "sandbox")]

mod common;
mod events_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use events_common::{
    Env, FAIL, Fixture, HOLD, OK, assert_same_once, closed_port, env, eventually, file_ids,
    receiver,
};
use lastpass::Email;
use lp_types::Secret;
use lpbridge::events::dispatch::{
    self, DispatchOptions, DispatchStats, Dispatcher, SinkResolver, SinkTarget,
};
use lpbridge::events::sinks::{self, FileConfig, Sink, SinkConfig, WebhookConfig};
use lpbridge::events::watcher::WatchStats;
use lpbridge::store::DeadLetterQuery;
use sandbox::faults::{FaultKind, FaultRule};
use tokio::sync::{Notify, watch};

both!(
    exactly_once_across_overlapping_windows_and_identical_events,
    a_crash_between_pages_resumes_without_duplicates_or_gaps,
    one_watcher_polls_and_another_takes_over_when_it_stops_renewing,
    a_webhook_dead_letters_while_the_file_sink_delivers_and_replay_sends_it,
);

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

/// Seven weeks before the sandbox's now: before every seeded event.
fn seed_start(e: &Env) -> DateTime<Utc> {
    e.now() - chrono::Duration::weeks(7)
}

async fn identical_calls(e: &Env, n: usize) {
    let who = Email::parse("nobody@example.com").unwrap();
    for _ in 0..n {
        // Each call logs the same `Get User Data` event in the same (frozen) second.
        e.client.get_user(&who).await.unwrap();
    }
}

async fn exactly_once_across_overlapping_windows_and_identical_events(fx: &Fixture) {
    let e = env(fx, 3000).await;
    let start = seed_start(&e);
    // Recent events, which the next window's overlap reads again.
    let now_us = e.sb.clock.now_us();
    e.sb.lastpass
        .simulate_activity(
            e.cid,
            now_us - 110_000_000,
            now_us - 50_000_000,
            36_000.0,
            3,
        )
        .unwrap();
    // A cursor that follows the present, polled three times as the clock moves.
    let opts = e.options(Some(start), None);
    let first = e.run_once(opts.clone(), "w1").await;
    assert!(WatchStats::get(&first.events_new) >= 3000);

    // Identical events, and late ones: written after the first window was read, at times it
    // covered, but inside the next window's overlap.
    e.sb.clock.advance_us(30_000_000);
    identical_calls(&e, 3).await;
    let now_us = e.sb.clock.now_us();
    let late =
        e.sb.lastpass
            .simulate_activity(
                e.cid,
                now_us - 100_000_000,
                now_us - 40_000_000,
                36_000.0,
                7,
            )
            .unwrap();
    assert!(late > 0);
    e.sb.clock.advance_us(60_000_000);
    let second = e.run_once(opts.clone(), "w2").await;
    assert!(
        WatchStats::get(&second.duplicates) > 0,
        "the second window re-read the overlap"
    );

    e.sb.clock.advance_us(30_000_000);
    identical_calls(&e, 4).await;
    e.sb.clock.advance_us(60_000_000);
    e.run_once(opts.clone(), "w3").await;

    // What LastPass holds for everything the cursor has read, against the outbox.
    let end = e.local(e.now() - secs(5) - secs(1));
    let upstream = e.upstream_ids(e.local(start), end).await;
    let stored = e.stored_ids().await;
    assert_same_once("outbox", &stored, &upstream);
    // The identical events got consecutive occurrences, whatever window read them.
    let occurrences = |n: usize| {
        stored
            .iter()
            .filter(|id| id.ends_with(&format!("-{n}")))
            .count()
    };
    assert!(occurrences(2) >= 2 && occurrences(3) >= 1, "{stored:?}");

    // A file sink fed from the outbox holds the same, once.
    let path = fx.dir.path().join("events.jsonl");
    let sink = sinks::build(&SinkConfig::File(FileConfig::new(&path)))
        .await
        .unwrap();
    drain(&e, vec![SinkTarget::new(Arc::from(sink))]).await;
    assert_same_once("file sink", &file_ids(&path), &upstream);
}

/// Runs one dispatcher per target until each has every stored event.
async fn drain(e: &Env, targets: Vec<SinkTarget>) -> Vec<Arc<DispatchStats>> {
    let last = e.store.max_event_seq(&e.conn).await.unwrap();
    let (_stop_tx, stop) = watch::channel(false);
    let (_drain_tx, drain) = watch::channel(Some(last));
    let mut tasks = Vec::new();
    let mut stats = Vec::new();
    for t in targets {
        let mut o = DispatchOptions::new("test");
        o.lease_ttl = Duration::from_secs(2);
        let d = Dispatcher::new(
            e.store.clone(),
            e.conn.clone(),
            t,
            o,
            Arc::new(Notify::new()),
        );
        stats.push(d.stats());
        let (s, dr) = (stop.clone(), drain.clone());
        tasks.push(tokio::spawn(async move { d.run(s, dr).await }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("dispatcher drained in time")
            .unwrap();
    }
    stats
}

async fn a_crash_between_pages_resumes_without_duplicates_or_gaps(fx: &Fixture) {
    let e = env(fx, 25_000).await;
    let start = seed_start(&e);
    let to = e.now() - secs(60);
    let opts = e.options(Some(start), Some(to));
    // Slow pages, so the crash lands while the walk is between pages.
    let slow = e.sb.faults.add(FaultRule::new(
        "reporting",
        FaultKind::Latency {
            min_ms: 300,
            max_ms: None,
        },
    ));
    let w = e.watcher(opts.clone(), "crashing");
    let (_tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move { w.run(rx).await });
    eventually(
        "the first page committed",
        Duration::from_secs(60),
        || async { e.store.event_count(&e.conn).await.unwrap() >= 10_000 },
    )
    .await;
    // The crash: the watcher's future is dropped wherever it is (its lease is not released).
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let at_crash = e.store.event_count(&e.conn).await.unwrap();
    assert!(at_crash < 25_000, "the walk was cut short ({at_crash})");
    e.sb.faults.remove(slow);

    let resumed = e.run_once(opts, "restarted").await;
    assert!(
        WatchStats::get(&resumed.pages) <= 3,
        "the resumed walk re-read only the unfinished part"
    );
    let upstream = e.upstream_ids(e.local(start), e.local(to)).await;
    assert_same_once("outbox after a crash", &e.stored_ids().await, &upstream);
    assert!(upstream.len() > 20_000);
}

async fn one_watcher_polls_and_another_takes_over_when_it_stops_renewing(fx: &Fixture) {
    let e = env(fx, 500).await;
    let mut opts = e.options(Some(e.now() - secs(3600)), None);
    opts.once = false;
    let ttl = opts.lease_ttl;
    let a = Arc::new(e.watcher(opts.clone(), "replica-a"));
    let b = Arc::new(e.watcher(opts.clone(), "replica-b"));
    let (stop_tx, stop) = watch::channel(false);
    let ta = tokio::spawn({
        let (a, s) = (a.clone(), stop.clone());
        async move { a.run(s).await }
    });
    let tb = tokio::spawn({
        let (b, s) = (b.clone(), stop.clone());
        async move { b.run(s).await }
    });
    let pages = |w: &Arc<lpbridge::events::watcher::Watcher>| WatchStats::get(&w.stats().pages);
    eventually("several polls", Duration::from_secs(30), || async {
        pages(&a) + pages(&b) >= 6
    })
    .await;
    assert!(
        (pages(&a) == 0) != (pages(&b) == 0),
        "exactly one replica polls (a: {}, b: {})",
        pages(&a),
        pages(&b)
    );
    // The holder stops renewing (dies without releasing); the other takes over once the
    // lease lapses: within ttl + retry interval.
    let (holder, other, other_task) = if pages(&a) > 0 {
        (ta, b.clone(), tb)
    } else {
        (tb, a.clone(), ta)
    };
    holder.abort();
    let _ = holder.await;
    let stopped = Instant::now();
    eventually("the takeover", Duration::from_secs(30), || async {
        pages(&other) > 0
    })
    .await;
    let bound = ttl + opts.interval.min(ttl) + Duration::from_secs(3);
    assert!(
        stopped.elapsed() <= bound,
        "takeover took {:?} (bound {bound:?})",
        stopped.elapsed()
    );
    stop_tx.send(true).unwrap();
    other_task.await.unwrap().unwrap();
    // Both read the same cursor: still no event twice.
    let stored = e.stored_ids().await;
    let mut dedup = stored.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), stored.len());
}

fn webhook(url: &str, attempts: u32) -> WebhookConfig {
    let mut c = WebhookConfig::new(url, Secret::new("whsec-test-0123"));
    c.name = Some("hook".into());
    c.max_attempts = attempts;
    c.backoff_base_ms = 1;
    c.backoff_max_ms = 2;
    c.timeout_secs = 30;
    c
}

async fn a_webhook_dead_letters_while_the_file_sink_delivers_and_replay_sends_it(fx: &Fixture) {
    let e = env(fx, 2500).await;
    let start = seed_start(&e);
    let to = e.now() - secs(60);
    e.run_once(e.options(Some(start), Some(to)), "w").await;
    let total = e.store.event_count(&e.conn).await.unwrap() as usize;

    let (url, rx) = receiver(FAIL).await;
    let hook_cfg = SinkConfig::Webhook(webhook(&url, 2));
    let hook: Arc<dyn Sink> = Arc::from(sinks::build(&hook_cfg).await.unwrap());
    let path = fx.dir.path().join("file.jsonl");
    let file: Arc<dyn Sink> = Arc::from(
        sinks::build(&SinkConfig::File(FileConfig::new(&path)))
            .await
            .unwrap(),
    );
    let stats = drain(&e, vec![SinkTarget::new(hook), SinkTarget::new(file)]).await;
    // Three batches of at most 1000, each given up after 2 attempts.
    assert_eq!(DispatchStats::get(&stats[0].dead_letters), 3);
    assert_eq!(rx.request_count(), 6);
    assert_eq!(file_ids(&path).len(), total, "the file sink got everything");
    let letters = e
        .store
        .list_dead_letters(&DeadLetterQuery {
            sink: Some("hook".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(letters.len(), 3);
    assert!(
        letters[0].error.contains("HTTP 500"),
        "{}",
        letters[0].error
    );
    assert!(!letters[0].error.contains("whsec"));
    assert_eq!(
        e.store.sink_position(&e.conn, "hook").await.unwrap(),
        Some(e.store.max_event_seq(&e.conn).await.unwrap()),
        "the position moved past the dead letters"
    );

    // The receiver recovers; replay delivers every dead letter once.
    rx.set(OK);
    let mut resolver = SinkResolver::new(e.store.clone(), vec![hook_cfg]);
    let out = dispatch::replay(
        &e.store,
        &DeadLetterQuery {
            connection: Some(e.conn.clone()),
            ..Default::default()
        },
        &mut resolver,
    )
    .await
    .unwrap();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|r| r.error.is_none()), "{out:?}");
    let stored = e.stored_ids().await;
    assert_same_once("replayed", &rx.accepted.lock(), &stored);
    let waiting = e
        .store
        .list_dead_letters(&DeadLetterQuery::default())
        .await
        .unwrap();
    assert!(waiting.is_empty(), "replayed dead letters are done");
    let again = dispatch::replay(&e.store, &DeadLetterQuery::default(), &mut resolver)
        .await
        .unwrap();
    assert!(again.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_never_answers_never_holds_up_the_file_sink() {
    let fx = Fixture::sqlite();
    let e = env(&fx, 1500).await;
    e.run_once(
        e.options(Some(seed_start(&e)), Some(e.now() - secs(60))),
        "w",
    )
    .await;
    let last = e.store.max_event_seq(&e.conn).await.unwrap();
    let (url, rx) = receiver(HOLD).await;
    let path = fx.dir.path().join("f.jsonl");
    let (stop_tx, stop) = watch::channel(false);
    let (_d, drain) = watch::channel(None);
    let mut tasks = Vec::new();
    for cfg in [
        SinkConfig::Webhook(webhook(&url, 1)),
        SinkConfig::File(FileConfig::new(&path)),
    ] {
        let d = Dispatcher::new(
            e.store.clone(),
            e.conn.clone(),
            SinkTarget::new(Arc::from(sinks::build(&cfg).await.unwrap())),
            DispatchOptions::new("t"),
            Arc::new(Notify::new()),
        );
        let (s, dr) = (stop.clone(), drain.clone());
        tasks.push(tokio::spawn(async move { d.run(s, dr).await }));
    }
    let file_name = SinkConfig::File(FileConfig::new(&path)).name();
    eventually(
        "the file sink caught up",
        Duration::from_secs(30),
        || async { e.store.sink_position(&e.conn, &file_name).await.unwrap() == Some(last) },
    )
    .await;
    // Meanwhile the webhook's first request is still unanswered.
    assert_eq!(rx.request_count(), 1);
    assert_eq!(e.store.sink_position(&e.conn, "hook").await.unwrap(), None);
    rx.set(OK);
    eventually("the webhook caught up", Duration::from_secs(30), || async {
        e.store.sink_position(&e.conn, "hook").await.unwrap() == Some(last)
    })
    .await;
    stop_tx.send(true).unwrap();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_webhook_is_a_dead_letter_naming_its_origin_only() {
    let fx = Fixture::sqlite();
    let e = env(&fx, 200).await;
    e.run_once(
        e.options(Some(seed_start(&e)), Some(e.now() - secs(60))),
        "w",
    )
    .await;
    let port = closed_port().await;
    let url = format!("http://127.0.0.1:{port}/hook?token=t0ps3cret");
    let path = fx.dir.path().join("f.jsonl");
    let stats = drain(
        &e,
        vec![
            SinkTarget::new(Arc::from(
                sinks::build(&SinkConfig::Webhook(webhook(&url, 2)))
                    .await
                    .unwrap(),
            )),
            SinkTarget::new(Arc::from(
                sinks::build(&SinkConfig::File(FileConfig::new(&path)))
                    .await
                    .unwrap(),
            )),
        ],
    )
    .await;
    assert_eq!(DispatchStats::get(&stats[0].dead_letters), 1);
    assert_eq!(file_ids(&path).len(), e.stored_ids().await.len());
    let letters = e
        .store
        .list_dead_letters(&DeadLetterQuery::default())
        .await
        .unwrap();
    let err = &letters[0].error;
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(
        !err.contains("t0ps3cret") && !err.contains("whsec"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sink_that_got_a_batch_before_a_crash_does_not_get_it_twice() {
    let fx = Fixture::sqlite();
    let e = env(&fx, 1200).await;
    e.run_once(
        e.options(Some(seed_start(&e)), Some(e.now() - secs(60))),
        "w",
    )
    .await;
    let path = fx.dir.path().join("f.jsonl");
    let cfg = SinkConfig::File(FileConfig::new(&path));
    // Delivered, but the process died before saving the position.
    let first: Vec<_> = e
        .store
        .events_after(&e.conn, 0, 700)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.record)
        .collect();
    sinks::build(&cfg)
        .await
        .unwrap()
        .deliver(&first)
        .await
        .unwrap();
    let stats = drain(
        &e,
        vec![SinkTarget::new(Arc::from(
            sinks::build(&cfg).await.unwrap(),
        ))],
    )
    .await;
    assert_eq!(DispatchStats::get(&stats[0].skipped), 700);
    assert_same_once("file", &file_ids(&path), &e.stored_ids().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_filters_by_category() {
    let fx = Fixture::sqlite();
    let e = env(&fx, 1000).await;
    e.run_once(
        e.options(Some(seed_start(&e)), Some(e.now() - secs(60))),
        "w",
    )
    .await;
    let (url, rx) = receiver(OK).await;
    let sink: Arc<dyn Sink> = Arc::from(
        sinks::build(&SinkConfig::Webhook(webhook(&url, 1)))
            .await
            .unwrap(),
    );
    let target = SinkTarget {
        sink,
        webhook_id: None,
        categories: Some(vec![lpbridge::events::Category::Authentication]),
    };
    drain(&e, vec![target]).await;
    let auth: Vec<String> = e
        .store
        .events_after(&e.conn, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.record.category == lpbridge::events::Category::Authentication)
        .map(|s| s.record.id.to_string())
        .collect();
    assert!(!auth.is_empty());
    assert_same_once("authentication only", &rx.accepted.lock(), &auth);
}

// ---- the command line ---------------------------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_lpbridge");

/// `lpbridge events watch ARGS` with no credentials and an empty data dir.
async fn watch_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("events")
        .arg("watch")
        .args(args)
        .env_clear()
        .env("LPBRIDGE_DATA_DIR", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("exits in time")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn bad_input_is_refused_at_start_naming_the_field_and_value() {
    for (args, env, needles) in [
        (
            vec!["--from", "last tuesday"],
            vec![],
            vec!["--from", "\"last tuesday\"", "RFC 3339"],
        ),
        (
            vec!["--from", "2026-01-01", "--to", "soonish"],
            vec![],
            vec!["--to", "\"soonish\""],
        ),
        (
            vec!["--sink", "kafka:events"],
            vec![],
            vec!["--sink", "\"kafka:events\"", "unknown sink type \"kafka\""],
        ),
        (
            vec!["--time-zone", "Mars/Olympus_Mons"],
            vec![],
            vec!["--time-zone", "\"Mars/Olympus_Mons\"", "IANA"],
        ),
        (
            vec!["--sink", "webhook:https://siem.example.com/in"],
            vec![],
            vec!["LPBRIDGE_WEBHOOK_SECRET"],
        ),
        (
            vec!["--sink", "webhook:ftp://siem.example.com/in"],
            vec![("LPBRIDGE_WEBHOOK_SECRET", "s3cr3t-value")],
            vec!["webhook url", "ftp://siem.example.com/in"],
        ),
        (
            vec!["--to", "2026-01-01"],
            vec![],
            vec!["--to needs --from"],
        ),
        (
            vec!["--from", "2026-02-01", "--to", "2026-01-01"],
            vec![],
            vec!["--from", "is after --to"],
        ),
    ] {
        let (code, stderr) = watch_cli(&args, &env).await;
        assert_eq!(code, 2, "{args:?}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{args:?}: {n:?} not in {stderr}");
        }
        assert!(!stderr.contains("s3cr3t-value"), "{stderr}");
    }
}

#[tokio::test]
async fn a_sinks_config_file_with_an_unknown_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lpbridge.toml");
    std::fs::write(&path, "[[sinks]]\ntype = \"carrier-pigeon\"\n").unwrap();
    let (code, stderr) = watch_cli(&["--config", path.to_str().unwrap()], &[]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("\"carrier-pigeon\""), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_once_backfills_into_a_file_and_a_second_run_adds_nothing() {
    let fx = Fixture::sqlite();
    let e = env(&fx, 12_000).await;
    let acct = e.sb.primary_account();
    let out = fx.dir.path().join("cli.jsonl");
    let from = seed_start(&e).to_rfc3339();
    let to = (e.now() - secs(60)).to_rfc3339();
    let sink = format!("file:{}", out.display());
    let run = || {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args([
            "events", "watch", "--from", &from, "--to", &to, "--sink", &sink, "--once",
        ])
        .env("LPBRIDGE_DATA_DIR", fx.dir.path().join("cli-data"))
        .env("LPBRIDGE_ENDPOINT", e.sb.lastpass_endpoint())
        .env("LPBRIDGE_CID", acct.cid.to_string())
        .env("LPBRIDGE_PROVHASH", &acct.provhash)
        .env_remove("LPBRIDGE_CONFIG")
        .env_remove("LPBRIDGE_DATABASE_URL");
        cmd
    };
    let first = run().output().await.unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let upstream = e
        .upstream_ids(e.local(seed_start(&e)), e.local(e.now() - secs(60)))
        .await;
    assert_same_once("cli file", &file_ids(&out), &upstream);
    let calls = e.sb.stats().by_cmd["reporting"].requests;
    let second = run().output().await.unwrap();
    assert!(second.status.success());
    assert_eq!(file_ids(&out).len(), upstream.len());
    assert_eq!(
        e.sb.stats().by_cmd["reporting"].requests,
        calls,
        "a finished backfill is not read again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_names_the_process_that_holds_the_cursor() {
    let fx = Fixture::sqlite();
    let e = env(&fx, 100).await;
    let mut opts = e.options(None, None);
    opts.lease_ttl = Duration::from_secs(1);
    let lease = lpbridge::events::watcher::WatchOptions::lease_name(&e.conn, "live");
    assert!(
        e.store
            .try_acquire_lease(&lease, "serve-on-otherhost/1/ab", Duration::from_secs(120))
            .await
            .unwrap()
    );
    let (_tx, rx) = watch::channel(false);
    let err = e.watcher(opts, "cli").run(rx).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("serve-on-otherhost/1/ab"), "{msg}");
    assert!(msg.contains("--from"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_with_a_sinks_config_dead_letters_and_replay_delivers() {
    let fx = Fixture::sqlite();
    let e = env(&fx, 2500).await;
    let acct = e.sb.primary_account();
    let (url, rx) = receiver(FAIL).await;
    let file = fx.dir.path().join("all.jsonl");
    let config = fx.dir.path().join("lpbridge.toml");
    std::fs::write(
        &config,
        format!(
            "events_poll_secs = 1\n\n[[sinks]]\ntype = \"webhook\"\nname = \"siem\"\nurl = \
             \"{url}\"\nsecret = \"whsec-from-config-5150\"\nmax_attempts = 1\n\n[[sinks]]\n\
             type = \"file\"\npath = \"{}\"\n",
            file.display()
        ),
    )
    .unwrap();
    let data = fx.dir.path().join("cli-data");
    let cli = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(args)
            .env("LPBRIDGE_DATA_DIR", &data)
            .env("LPBRIDGE_ENDPOINT", e.sb.lastpass_endpoint())
            .env("LPBRIDGE_CID", acct.cid.to_string())
            .env("LPBRIDGE_PROVHASH", &acct.provhash)
            .env_remove("LPBRIDGE_CONFIG")
            .env_remove("LPBRIDGE_DATABASE_URL");
        cmd
    };
    let from = seed_start(&e).to_rfc3339();
    let to = (e.now() - secs(60)).to_rfc3339();
    let cfg = config.to_str().unwrap();
    let out = cli(&[
        "events", "watch", "--from", &from, "--to", &to, "--config", cfg, "--once",
    ])
    .output()
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("whsec-from-config"), "{stderr}");
    let total = file_ids(&file).len();
    assert!(total >= 2400, "{total}");
    assert_eq!(rx.request_count(), 3, "one attempt per batch of 1000");

    rx.set(OK);
    let out = cli(&[
        "--format", "json", "events", "replay", "--sink", "siem", "--config", cfg,
    ])
    .output()
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["status"] == "delivered"), "{report}");
    assert_same_once("replayed", &rx.accepted.lock(), &file_ids(&file));
    // Nothing is left to replay; an unknown id is an error.
    let out = cli(&["events", "replay", "--id", "999"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("999"));
}
