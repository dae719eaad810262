//! Hostile input to the emulator and the control API: out-of-range numbers, dates at the edge
//! of chrono's range, huge sizes, extreme clock settings. Each case once panicked or could have;
//! the answer must be a clean JSON envelope (or a 4xx naming the field).

mod common;

use common::{CMDS, PEER, T0, post_json};
use sandbox::Clock;
use sandbox::lastpass::{LastPass, SeedOptions};
use serde_json::{Value, json};

const CID: u64 = 12_345_678;
const HASH: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

fn seed(users: usize, groups: usize, folders: usize, events: usize) -> SeedOptions {
    common::seed(users, groups, folders, events, 7)
}

fn emulator_at(clock: Clock) -> LastPass {
    common::emulator(
        vec![common::account(
            CID,
            HASH,
            "Acme Corp",
            "US/Eastern",
            seed(12, 2, 3, 50),
        )],
        None,
        clock,
    )
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

/// Control-API inputs that used to overflow or allocate without bound answer 400.
#[tokio::test]
async fn control_api_refuses_out_of_range_values() {
    let sb = sandbox::spawn(sandbox::SandboxConfig::for_tests())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let c = sb.control_url();
    for us in [i64::MIN, i64::MAX] {
        let (s, v) = post_json(&http, &format!("{c}/clock"), &json!({"set": us})).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["field"], "set");
        assert_eq!(v["value"], us.to_string());
    }
    let (s, v) = post_json(
        &http,
        &format!("{c}/accounts"),
        &json!({"cid": 1, "seed": {"users": 1_000_000_000_000u64}}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["field"], "users");
    assert_eq!(v["value"], "1000000000000");
    let cid = sb.primary_account().cid;
    let (s, v) = post_json(
        &http,
        &format!("{c}/accounts/{cid}/seed"),
        &json!({"events": u64::MAX}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["field"], "events");
    // The clock saturates at year 9999 instead of overflowing.
    for _ in 0..3 {
        let (s, _) = post_json(
            &http,
            &format!("{c}/clock/advance"),
            &json!({"seconds": 1e11}),
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
    let e = sandbox::spawn(cfg).await.expect_err("refused").to_string();
    assert!(e.contains("accounts"), "{e}");
}

/// `Debug` of everything holding a provisioning hash hides it.
#[test]
fn debug_hides_provhash() {
    let lp = emulator_at(Clock::frozen(T0));
    let shown = format!(
        "{:?} {:?} {:?}",
        lp.config(),
        lp.accounts(),
        sandbox::server::AccountCredentials {
            cid: CID,
            provhash: HASH.into()
        }
    );
    assert!(!shown.contains(HASH), "{shown}");
    assert!(shown.contains("12345678"), "{shown}");
}

/// Random JSON from a fixed seed, biased towards the values that break code: extreme numbers,
/// non-ASCII and long strings, dates at the edge of chrono's range, the fields commands read.
mod random_bodies {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use tower::ServiceExt;

    const KEYS: &[&str] = &[
        "username",
        "pagesize",
        "pageindex",
        "deleteaction",
        "groups",
        "add",
        "del",
        "from",
        "to",
        "next",
        "limit",
        "continuation_token",
        "oldemail",
        "newemail",
        "users",
        "url",
        "password",
        "attribs",
        "fullname",
        "admin",
        "disabled",
        "user",
        "search",
        "format",
        "cid",
        "minutes",
        "per_hour",
        "seed",
        "seconds",
        "set",
        "freeze",
        "resume",
        "rps",
        "kind",
        "status",
        "min_ms",
        "max_ms",
        "probability",
        "count",
        "cmd",
        "spec",
        "max_pagesize",
        "flag_style",
        "detailed_sf_unpaged_limit",
        "json_content_type",
        "events",
        "folders",
        "stats",
        "faults",
        "time_zone",
        "provhash",
        "name",
    ];
    const STRINGS: &[&str] = &[
        "",
        " ",
        "all",
        "allusers",
        "a@acmecorp.com",
        "é@ü.io",
        "🙂",
        "ß\u{301}",
        "2024-03-01 00:00:00",
        "262143-12-31 23:59:59",
        "-262143-01-01",
        "9999-12-31T23:59:59Z",
        "0000-00-00 00:00:00",
        "1",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "1e400",
        "NaN",
        "siem",
        "latency",
        "status",
        "drop",
        "int",
        "US/Eastern",
        "Mars/Olympus",
        "*:latency=1..2ms",
        "x:999999",
        "getuserdata",
    ];

    fn number(rng: &mut ChaCha8Rng) -> Value {
        match rng.gen_range(0..12) {
            0 => json!(i64::MIN),
            1 => json!(i64::MAX),
            2 => json!(u64::MAX),
            3 => json!(1e300),
            4 => json!(-1e300),
            5 => json!(1e-300),
            6 => json!(-1),
            7 => json!(0),
            8 => json!(0.5),
            _ => json!(rng.gen_range(-3..100)),
        }
    }

    pub(super) fn value(rng: &mut ChaCha8Rng, depth: u32) -> Value {
        let top = if depth == 0 { 6 } else { 8 };
        match rng.gen_range(0..top) {
            0 => Value::Null,
            1 => json!(rng.gen_bool(0.5)),
            2 | 3 => number(rng),
            4 => json!(STRINGS[rng.gen_range(0..STRINGS.len())]),
            5 => json!("ü".repeat(rng.gen_range(0..300))),
            6 => Value::Array(
                (0..rng.gen_range(0..4))
                    .map(|_| value(rng, depth - 1))
                    .collect(),
            ),
            _ => object(rng, depth - 1),
        }
    }

    pub(super) fn object(rng: &mut ChaCha8Rng, depth: u32) -> Value {
        let n = rng.gen_range(0..6);
        Value::Object(
            (0..n)
                .map(|_| {
                    (
                        KEYS[rng.gen_range(0..KEYS.len())].to_owned(),
                        value(rng, depth),
                    )
                })
                .collect(),
        )
    }

    /// Every command, random `data` and top-level fields: always a JSON answer, 200 or 429.
    #[test]
    fn emulator_answers_json_to_anything() {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
        let lp = emulator_at(Clock::frozen(T0));
        for i in 0..3000 {
            let mut body = object(&mut rng, 2);
            body["cid"] = json!(CID);
            body["provhash"] = json!(HASH);
            body["cmd"] = json!(CMDS[i % CMDS.len()]);
            if rng.gen_bool(0.8) {
                body["data"] = if rng.gen_bool(0.5) {
                    object(&mut rng, 2)
                } else {
                    value(&mut rng, 2)
                };
            }
            let (status, bytes) = lp.execute(body.to_string().as_bytes(), None, PEER);
            assert!(status == 200 || status == 429, "{body}: {status}");
            let v: Result<Value, _> = serde_json::from_slice(&bytes);
            assert!(v.is_ok(), "{body}: {}", String::from_utf8_lossy(&bytes));
        }
    }

    /// Every control endpoint, random bodies: never a 5xx, always a JSON answer.
    #[tokio::test]
    async fn control_api_answers_4xx_not_5xx() {
        let mut rng = ChaCha8Rng::seed_from_u64(0xc0de);
        let clock = Clock::frozen(T0);
        let state = sandbox::control::ControlState {
            lastpass: emulator_at(clock.clone()),
            faults: sandbox::faults::Faults::default(),
            clock,
            activity: Default::default(),
            state_file: None,
        };
        let app = sandbox::control::router(state);
        // `/save` is left out: it writes wherever `path` says.
        let paths = [
            "/accounts".to_owned(),
            format!("/accounts/{CID}/seed"),
            format!("/accounts/{CID}/users/a@acmecorp.com/login"),
            "/config".to_owned(),
            "/reset".to_owned(),
            "/faults".to_owned(),
            "/rate-limit".to_owned(),
            "/clock".to_owned(),
            "/clock/advance".to_owned(),
            "/activity".to_owned(),
        ];
        for i in 0..1500 {
            let path = &paths[i % paths.len()];
            let mut body = object(&mut rng, 2);
            // Keep generated accounts small: the seed itself is not what is under test.
            for k in ["seed", "users", "events", "folders", "groups"] {
                if let Some(v) = body.get_mut(k)
                    && v.as_u64().is_some_and(|n| n > 1000)
                    && v.as_u64() != Some(u64::MAX)
                {
                    *v = json!(10);
                }
            }
            let req = axum::http::Request::post(path.as_str())
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            let resp = app.clone().oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            assert!(
                status < 500,
                "{path} {body}: {status} {}",
                String::from_utf8_lossy(&bytes)
            );
            let v: Result<Value, _> = serde_json::from_slice(&bytes);
            assert!(
                v.is_ok(),
                "{path} {body}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

/// Refusals name the field and the value (cut to 100 characters), but never echo a password.
#[test]
fn refusals_name_field_and_value() {
    let lp = emulator_at(Clock::frozen(T0));
    let err = |cmd: &str, data: Value| call(&lp, cmd, data)["error"].to_string();
    assert_eq!(
        err("getsfdata", json!({"pagesize": "lots"})),
        r#""Invalid pagesize: lots""#
    );
    assert_eq!(
        err("getsfdata", json!({"pagesize": 5, "pageindex": [1]})),
        r#""Invalid pageindex: [1]""#
    );
    assert_eq!(
        err("getuserdata", json!([1, 2])),
        r#""Invalid data: expected an object, got [1,2]""#
    );
    let e = err("updateuser", json!({"username": "x@y.io", "fullname": 5}));
    assert_eq!(e, r#""Invalid fullname: 5""#);
    let e = err("expiredmasterpwlist", json!({"limit": "ü".repeat(500)}));
    assert!(
        e.starts_with(r#""Invalid limit: üü"#) && e.chars().count() < 130,
        "{e}"
    );
    let e = err(
        "batchadd",
        json!([{"username": "new@acmecorp.com", "password": 123456789}]),
    );
    assert_eq!(e, r#""Invalid password for new@acmecorp.com""#);
    assert!(!e.contains("123456789"));
}
