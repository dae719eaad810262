//! Spawning, the first-line JSON, state files and the background activity generator.

mod common;

use std::time::{Duration, Instant};

use sandbox::activity::ActivityConfig;
use sandbox::lastpass::SeedOptions;
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

async fn api(sb: &SandboxHandle, cmd: &str, data: Value) -> Value {
    let a = sb.primary_account();
    let resp =
        common::api_request(&reqwest::Client::new(), sb, a.cid, &a.provhash, cmd, data).await;
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.bytes().await.unwrap();
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{cmd}: {e}: {}", String::from_utf8_lossy(&body)))
}

fn events_of(sb: &SandboxHandle) -> usize {
    let cid = sb.primary_account().cid;
    sb.lastpass
        .accounts()
        .into_iter()
        .find(|a| a.cid == cid)
        .unwrap()
        .events
}

#[tokio::test]
async fn spawns_on_a_free_loopback_port_and_describes_itself() {
    let sb = sandbox::spawn(SandboxConfig::for_tests().add_accounts(1))
        .await
        .unwrap();
    assert!(sb.addr.ip().is_loopback());
    assert_ne!(sb.addr.port(), 0);
    let port = sb.addr.port();
    assert_eq!(sb.base_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(
        sb.lastpass_endpoint(),
        format!("http://127.0.0.1:{port}/enterpriseapi.php")
    );

    let j = sb.services_json();
    // One line when serialised, as `lpbridge sandbox` prints it.
    assert!(!serde_json::to_string(&j).unwrap().contains('\n'));
    let lp = &j["lastpass"];
    assert_eq!(lp["endpoint"], sb.lastpass_endpoint());
    assert_eq!(lp["cid"], 8771312);
    let provhash = lp["provhash"].as_str().unwrap();
    assert_eq!(provhash.len(), 64);
    assert!(provhash.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(lp["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(lp["accounts"][0]["name"], "Acme Corp");
    assert_eq!(lp["accounts"][1]["cid"], 8771313);
    assert_ne!(lp["accounts"][1]["provhash"], lp["provhash"]);
    assert_eq!(j["control"], format!("http://127.0.0.1:{port}/_sandbox"));
    assert_eq!(sb.primary_account().provhash, provhash);

    // The advertised credentials work; others get the XML authorization error.
    let users = api(&sb, "getuserdata", json!({"pagesize": 1})).await;
    let total = users["total"].as_u64().unwrap();
    assert!((1..=20).contains(&total), "{users}");
    let bad = reqwest::Client::new()
        .post(sb.lastpass_endpoint())
        .json(&json!({"cid": 8771312, "provhash": "0".repeat(64), "cmd": "getuserdata"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.headers()["content-type"], "text/xml;charset=UTF-8");
    assert!(bad.text().await.unwrap().contains("Authorization Error"));
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn same_seed_same_credentials() {
    let a = sandbox::spawn(SandboxConfig::for_tests()).await.unwrap();
    let b = sandbox::spawn(SandboxConfig::for_tests()).await.unwrap();
    assert_eq!(a.primary_account(), b.primary_account());
    assert_ne!(a.addr, b.addr);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sb = sandbox::spawn(SandboxConfig::for_tests()).await.unwrap();
    let url = sb.lastpass_endpoint();
    sb.shutdown().await.unwrap();
    let err = reqwest::Client::new()
        .post(url)
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let sb = sandbox::spawn(SandboxConfig::for_tests().with_state_file(&path))
        .await
        .unwrap();
    let added = api(
        &sb,
        "batchadd",
        json!([{"username": "kept@example.com", "fullname": "Kept Person", "password": "Correct-Horse-9"}]),
    )
    .await;
    assert_eq!(added["status"], "OK", "{added}");
    let cid = sb.primary_account().cid;
    assert!(sb.lastpass.inspect_user(cid, "kept@example.com").is_some());
    let creds = sb.primary_account();
    let total = api(&sb, "getuserdata", json!({"pagesize": 1})).await["total"].clone();
    sb.shutdown().await.unwrap();
    assert!(path.exists());
    #[cfg(unix)]
    {
        // It holds the accounts' provisioning hashes: owner-only.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "state file mode {mode:o}");
    }

    // A different seed in the config is ignored: the file wins.
    let mut config = SandboxConfig::with_seed(SeedOptions {
        users: 3,
        groups: 1,
        folders: 1,
        events: 1,
        seed: 99,
    })
    .with_state_file(&path);
    config.clock = sandbox::Clock::frozen(sandbox::server::TEST_EPOCH_US);
    let sb = sandbox::spawn(config).await.unwrap();
    assert_eq!(sb.primary_account(), creds);
    let user = sb.lastpass.inspect_user(cid, "kept@example.com");
    assert!(user.is_some());
    let users = api(&sb, "getuserdata", json!({"pagesize": 1})).await;
    assert_eq!(users["total"], total);
    sb.shutdown().await.unwrap();
}

/// Waits (polling, with a deadline) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn activity_config() -> SandboxConfig {
    SandboxConfig::for_tests().with_activity(ActivityConfig {
        per_hour: 600.0,
        tick: Duration::from_millis(20),
        seed: 5,
    })
}

#[tokio::test]
async fn activity_fills_windows_skipped_by_hand_deterministically() {
    let mut counts = Vec::new();
    for _ in 0..2 {
        let sb = sandbox::spawn(activity_config()).await.unwrap();
        let before = events_of(&sb);
        // A frozen, unmoved clock generates nothing; moving it fills the window at once.
        sb.clock.advance_us(3_600_000_000);
        eventually("activity for the skipped hour", || events_of(&sb) > before).await;
        let after = events_of(&sb);
        assert!(after - before > 100, "{} events for 600/h", after - before);
        counts.push((
            after - before,
            sb.lastpass.inspect_account(8771312).unwrap(),
        ));
        sb.shutdown().await.unwrap();
    }
    assert_eq!(counts[0], counts[1], "same seed and steps, same activity");
}

#[tokio::test]
async fn activity_follows_a_running_clock_and_stops_on_shutdown() {
    let mut config = activity_config();
    config.clock = sandbox::Clock::system();
    config.activity.as_mut().unwrap().per_hour = 3_600_000.0; // ~1,000 per real second
    let sb = sandbox::spawn(config).await.unwrap();
    let before = events_of(&sb);
    eventually("activity from a running clock", || events_of(&sb) > before).await;
    let lp = sb.lastpass.clone();
    let cid = sb.primary_account().cid;
    sb.shutdown().await.unwrap();
    // Once shutdown returned, the generator is gone: the count no longer changes.
    let n = lp
        .accounts()
        .into_iter()
        .find(|a| a.cid == cid)
        .unwrap()
        .events;
    tokio::task::yield_now().await;
    assert_eq!(
        lp.accounts()
            .into_iter()
            .find(|a| a.cid == cid)
            .unwrap()
            .events,
        n
    );
}

#[tokio::test]
async fn a_taken_port_is_refused_with_a_clear_message() {
    let first = sandbox::spawn(SandboxConfig::for_tests()).await.unwrap();
    let mut cfg = SandboxConfig::for_tests();
    cfg.listen = first.addr;
    let err = match sandbox::spawn(cfg).await {
        Ok(_) => panic!("a second sandbox bound the same port"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with(&format!("cannot listen on {}: ", first.addr)),
        "{err}"
    );
}

/// `lpbridge sandbox --psa-…`: the first stdout line carries both PSA emulators' URLs and
/// credentials, sized and seeded by the flags, and those credentials work.
#[tokio::test]
async fn the_first_line_describes_the_psa_emulators_and_their_credentials_work() {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: sandbox::cli::SandboxArgs,
    }
    let args = Cli::try_parse_from([
        "sandbox",
        "--listen",
        "127.0.0.1:0",
        "--users",
        "3",
        "--events",
        "0",
        "--frozen-clock",
        "--psa-companies",
        "30",
        "--psa-contacts",
        "90",
        "--psa-seed",
        "11",
        "--autotask-hourly-limit",
        "50",
    ])
    .unwrap()
    .args;
    let (line_tx, line_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sandbox::cli::run_until(
        args,
        move |h| {
            // Exactly what `print_services` writes.
            let _ = line_tx.send(serde_json::to_string(&h.services_json()).unwrap());
            Ok(())
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let line = line_rx.await.unwrap();
    assert!(!line.contains('\n'));
    let j: Value = serde_json::from_str(&line).unwrap();
    let root = j["control"].as_str().unwrap().trim_end_matches("/_sandbox");
    assert!(root.starts_with("http://127.0.0.1:"), "{j}");

    // ConnectWise: the site, the keys derived from --psa-seed, the API under the codebase.
    let cw = &j["connectwise"];
    let expected = sandbox::connectwise::ConnectWiseConfig::with_seed(11);
    assert_eq!(cw["site"], format!("{root}/cw"));
    assert_eq!(cw["company_id"], expected.company_id);
    assert_eq!(cw["public_key"], expected.public_key);
    assert_eq!(cw["private_key"], expected.private_key);
    assert_eq!(cw["client_id"], expected.client_id);
    assert_eq!(cw["control"], format!("{root}/_sandbox/connectwise"));
    let api = cw["api"].as_str().unwrap();
    assert!(api.starts_with(&format!("{root}/cw/")), "{api}");
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{api}/company/companies/count"))
        .basic_auth(
            format!(
                "{}+{}",
                cw["company_id"].as_str().unwrap(),
                cw["public_key"].as_str().unwrap()
            ),
            cw["private_key"].as_str(),
        )
        .header("clientId", cw["client_id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["count"], 30);

    // Autotask: discovery and zone URLs back to the emulator, credentials from --psa-seed.
    let at = &j["autotask"];
    assert_eq!(at["base_url"], format!("{root}/autotask"));
    assert_eq!(
        at["discovery_url"],
        format!("{root}/autotask/atservicesrest")
    );
    assert_eq!(at["username"], sandbox::autotask::DEFAULT_USERNAME);
    assert_eq!(at["secret"], sandbox::autotask::secret_for(11));
    assert_eq!(
        at["integration_code"],
        sandbox::autotask::integration_code_for(11)
    );
    assert_eq!(at["control"], format!("{root}/_sandbox/autotask"));
    let zone = at["zone_url"].as_str().unwrap();
    let r = http
        .post(format!("{zone}V1.0/Companies/query/count"))
        .header("UserName", at["username"].as_str().unwrap())
        .header("Secret", at["secret"].as_str().unwrap())
        .header(
            "ApiIntegrationCode",
            at["integration_code"].as_str().unwrap(),
        )
        .json(&json!({"filter": [{"op": "gt", "field": "id", "value": 0}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["queryCount"], 30);
    // --autotask-hourly-limit reached the emulator.
    let limits: Value = http
        .get(format!("{root}/_sandbox/autotask/limits"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(limits["hourly_limit"], 50, "{limits}");

    stop_tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}
