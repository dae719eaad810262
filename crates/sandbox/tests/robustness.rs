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
        ("getuserdata", json!({"pagesize": i64::MAX, "pageindex": i64::MAX})),
        ("getuserdata", json!({"pagesize": 1e300, "pageindex": -1e300})),
        ("getuserdata", json!({"pagesize": "9223372036854775807", "pageindex": "9223372036854775807"})),
        ("getsfdata", json!({"pagesize": i64::MAX, "pageindex": i64::MAX})),
        ("getdetailedsfdata", json!({"pagesize": i64::MIN, "pageindex": i64::MIN})),
        ("expiredmasterpwlist", json!({"limit": i64::MIN, "continuation_token": u64::MAX.to_string()})),
        ("expiredmasterpwlist", json!({"limit": i64::MAX, "continuation_token": i64::MAX})),
        ("reporting", json!({"from": "262143-12-31 23:59:59", "to": "262143-12-31 23:59:59"})),
        ("reporting", json!({"from": "-262143-01-01 00:00:00", "to": "-262143-01-01"})),
        ("reporting", json!({"from": "+262143-12-31T23:59:59", "to": "9999-12-31T23:59:59+14:00"})),
        ("reporting", json!({"from": "0000-01-01", "to": "0000-01-01 00:00"})),
        ("reporting", json!({"next": i64::MIN})),
        ("reporting", json!({"next": i64::MAX})),
        ("reporting", json!({"next": "-9223372036854775808"})),
        ("deluser", json!({"username": "x@y.io", "deleteaction": i64::MAX})),
        ("batchadd", json!([{"username": "é@ü.io", "groups": ["ü", "é"], "attribs": {"ß": 1e300}}])),
        ("pushsitestousers", json!({"users": "all", "url": "https://x", "name": "🙂".repeat(100)})),
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
