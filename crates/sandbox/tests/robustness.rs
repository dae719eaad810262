//! Hostile input to the emulator and the control API: out-of-range numbers, dates at the edge
//! of chrono's range, huge sizes, extreme clock settings. Each case once panicked or could have;
//! the answer must be a clean JSON envelope (or a 4xx naming the field).

use std::net::{IpAddr, Ipv4Addr};

use sandbox::Clock;
use sandbox::lastpass::{AccountSpec, FlagStyle, LastPass, LastPassConfig, SeedOptions};
use serde_json::{Value, json};

const T0: i64 = 1_710_072_000_000_000;
const CID: u64 = 12_345_678;
const HASH: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

fn seed(users: usize, groups: usize, folders: usize, events: usize) -> SeedOptions {
    SeedOptions {
        users,
        groups,
        folders,
        events,
        seed: 7,
    }
}

fn spec(s: SeedOptions) -> AccountSpec {
    AccountSpec {
        cid: CID,
        provhash: HASH.into(),
        name: "Acme Corp".into(),
        time_zone: "US/Eastern".into(),
        seed: s,
    }
}

fn emulator_at(clock: Clock) -> LastPass {
    LastPass::new(
        LastPassConfig {
            accounts: vec![spec(seed(12, 2, 3, 50))],
            flag_style: FlagStyle::String,
            max_pagesize: 2000,
            detailed_sf_unpaged_limit: None,
            json_content_type: false,
        },
        clock,
    )
    .unwrap()
}

fn call(lp: &LastPass, cmd: &str, data: Value) -> Value {
    let body = json!({"cid": CID, "provhash": HASH, "cmd": cmd, "data": data});
    let (status, bytes) = lp.execute(body.to_string().as_bytes(), None, PEER);
    assert!(
        status.as_u16() == 200 || status.as_u16() == 429,
        "{body}: {status}"
    );
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("{body}: {}", String::from_utf8_lossy(&bytes)))
}

#[test]
fn extreme_numbers_and_dates() {
    let lp = emulator_at(Clock::frozen(T0));
    let cases = [
        (
            "getuserdata",
            json!({"pagesize": i64::MAX, "pageindex": i64::MAX}),
        ),
        (
            "getuserdata",
            json!({"pagesize": 1e300, "pageindex": -1e300}),
        ),
        (
            "getuserdata",
            json!({"pagesize": "9223372036854775807", "pageindex": "9223372036854775807"}),
        ),
        (
            "getsfdata",
            json!({"pagesize": i64::MAX, "pageindex": i64::MAX}),
        ),
        (
            "getdetailedsfdata",
            json!({"pagesize": i64::MIN, "pageindex": i64::MIN}),
        ),
        (
            "expiredmasterpwlist",
            json!({"limit": i64::MIN, "continuation_token": u64::MAX.to_string()}),
        ),
        (
            "expiredmasterpwlist",
            json!({"limit": i64::MAX, "continuation_token": i64::MAX}),
        ),
        (
            "reporting",
            json!({"from": "262143-12-31 23:59:59", "to": "262143-12-31 23:59:59"}),
        ),
        (
            "reporting",
            json!({"from": "-262143-01-01 00:00:00", "to": "-262143-01-01"}),
        ),
        (
            "reporting",
            json!({"from": "+262143-12-31T23:59:59", "to": "9999-12-31T23:59:59+14:00"}),
        ),
        (
            "reporting",
            json!({"from": "0000-01-01", "to": "0000-01-01 00:00"}),
        ),
        ("reporting", json!({"next": i64::MIN})),
        ("reporting", json!({"next": i64::MAX})),
        ("reporting", json!({"next": "-9223372036854775808"})),
        (
            "deluser",
            json!({"username": "x@y.io", "deleteaction": i64::MAX}),
        ),
        (
            "batchadd",
            json!([{"username": "é@ü.io", "groups": ["ü", "é"], "attribs": {"ß": 1e300}}]),
        ),
        (
            "pushsitestousers",
            json!({"users": "all", "url": "https://x", "name": "🙂".repeat(100)}),
        ),
        ("updateemail", json!({"oldemail": "ü", "newemail": "🙂@🙂"})),
    ];
    for (cmd, data) in cases {
        let v = call(&lp, cmd, data.clone());
        assert!(v.is_object() || v.is_array(), "{cmd} {data}: {v}");
    }
}

/// The clock can be set anywhere the control API accepts; the emulator keeps answering.
#[test]
fn clock_extremes_do_not_panic() {
    for at in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
        let clock = Clock::frozen(T0);
        let lp = emulator_at(clock.clone());
        clock.set_us(at);
        clock.advance_us(i64::MAX);
        clock.resume();
        clock.freeze();
        let _ = call(&lp, "batchadd", json!([{"username": "new@acmecorp.com"}]));
        let _ = call(&lp, "getuserdata", json!({}));
        let _ = call(&lp, "reporting", json!({}));
        let _ = call(&lp, "expiredmasterpwlist", json!({}));
        lp.reset();
        let now = clock.now_us();
        let _ = lp.simulate_activity(CID, now.saturating_sub(3_600_000_000), now, 100.0, 1);
        let _ = call(&lp, "reporting", json!({}));
    }
}

/// `simulate_activity` is public: any bounds are accepted without overflow.
#[test]
fn activity_over_any_window() {
    let lp = emulator_at(Clock::frozen(T0));
    for (from, to) in [
        (i64::MIN, i64::MAX),
        (i64::MIN, i64::MIN + 1),
        (T0, i64::MAX),
    ] {
        let n = lp.simulate_activity(CID, from, to, 1e-12, 1).unwrap();
        assert!(n <= 20_000_000);
    }
    assert_eq!(
        lp.simulate_activity(CID, 0, 3_600_000_000, f64::NAN, 1)
            .unwrap(),
        0
    );
}

/// Sizes that would exhaust memory are refused, naming the field and the value.
#[test]
fn huge_seed_sizes_are_refused() {
    let lp = emulator_at(Clock::frozen(T0));
    for (field, s) in [
        ("users", seed(usize::MAX, 0, 0, 0)),
        ("groups", seed(0, SeedOptions::MAX_GROUPS + 1, 0, 0)),
        ("folders", seed(0, 0, usize::MAX / 2, 0)),
        ("events", seed(0, 0, 0, SeedOptions::MAX_EVENTS + 1)),
    ] {
        let e = lp.reseed(CID, s).unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
    // The account is untouched by a refused reseed.
    assert_eq!(lp.accounts()[0].users, 12);
}

/// A state file whose event log is inconsistent is refused instead of panicking later.
#[test]
fn inconsistent_state_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    emulator_at(Clock::frozen(T0)).save(&path).unwrap();
    let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["accounts"][0]["events"]["recs"] = json!([]);
    std::fs::write(&path, v.to_string()).unwrap();
    let e = LastPass::load(&path, Clock::frozen(T0))
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("events"), "{e}");
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = http.post(url).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Control-API inputs that used to overflow or allocate without bound answer 400.
#[tokio::test]
async fn control_api_refuses_out_of_range_values() {
    let sb = sandbox::spawn(sandbox::SandboxConfig::for_tests())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let c = sb.control_url();
    for us in [i64::MIN, i64::MAX] {
        let (s, v) = post(&http, format!("{c}/clock"), json!({"set": us})).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["field"], "set");
        assert_eq!(v["value"], us.to_string());
    }
    let (s, v) = post(
        &http,
        format!("{c}/accounts"),
        json!({"cid": 1, "seed": {"users": 1_000_000_000_000u64}}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["field"], "users");
    assert_eq!(v["value"], "1000000000000");
    let cid = sb.primary_account().cid;
    let (s, v) = post(
        &http,
        format!("{c}/accounts/{cid}/seed"),
        json!({"events": u64::MAX}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["field"], "events");
    // The clock saturates at year 9999 instead of overflowing.
    for _ in 0..3 {
        let (s, _) = post(
            &http,
            format!("{c}/clock/advance"),
            json!({"seconds": 1e11}),
        )
        .await;
        assert_eq!(s, 200);
    }
    assert_eq!(sb.clock.now_us(), sandbox::clock::MAX_US);
    let a = sb.primary_account();
    let r = http
        .post(sb.lastpass_endpoint())
        .json(&json!({"cid": a.cid, "provhash": a.provhash, "cmd": "reporting"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    sb.shutdown().await.unwrap();
}

/// A sandbox without accounts cannot be spawned (`primary_account` relies on one).
#[tokio::test]
async fn spawn_needs_an_account() {
    let mut cfg = sandbox::SandboxConfig::for_tests();
    cfg.lastpass.accounts.clear();
    let e = sandbox::spawn(cfg)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("accounts"), "{e}");
}
