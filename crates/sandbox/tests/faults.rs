//! Fault injection and the per-account rate limit, observed from a real HTTP client.
//!
//! Most tests put the fault layer in front of a trivial echo handler, so they exercise the
//! middleware alone; the last ones go through the full sandbox.

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::routing::post;
use sandbox::faults::{self, FaultConfig, FaultKind, FaultRule, Faults};
use serde_json::{Value, json};

const XML: &str = "text/xml;charset=UTF-8";

async fn echo(body: Bytes) -> impl IntoResponse {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let out = json!({"status": "OK", "echo": v, "padding": "x".repeat(200)});
    ([("content-type", XML)], out.to_string())
}

struct Echo {
    url: String,
    faults: Faults,
    client: reqwest::Client,
}

async fn echo_server(config: FaultConfig) -> Echo {
    let faults = Faults::new(config);
    let router = faults::layer(
        Router::new().route("/enterpriseapi.php", post(echo)),
        faults.clone(),
    );
    Echo {
        url: common::endpoint(common::serve(router).await),
        faults,
        client: reqwest::Client::new(),
    }
}

fn rules(rules: Vec<FaultRule>) -> FaultConfig {
    FaultConfig {
        rules,
        seed: 11,
        rate_limit_rps: None,
    }
}

impl Echo {
    async fn call(&self, cid: u64, cmd: &str) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(&self.url)
            .json(&json!({"cid": cid, "provhash": "p", "cmd": cmd, "data": {"pagesize": 1}}))
            .send()
            .await
    }

    async fn status(&self, cid: u64, cmd: &str) -> u16 {
        self.call(cid, cmd).await.unwrap().status().as_u16()
    }
}

#[tokio::test]
async fn status_faults_answer_with_the_status_and_lastpass_content_type() {
    for status in [429u16, 500, 503] {
        let s = echo_server(rules(vec![FaultRule::new(
            "getuserdata",
            FaultKind::Status { status },
        )]))
        .await;
        let resp = s.call(1, "getuserdata").await.unwrap();
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(resp.headers()["content-type"], XML);
        let body = resp.text().await.unwrap();
        assert!(body.starts_with("<?xml"), "{body}");
        // Other commands pass.
        assert_eq!(s.status(1, "reporting").await, 200);
    }
}

#[tokio::test]
async fn dropped_connection_is_a_client_error() {
    let s = echo_server(rules(vec![FaultRule::new("getsfdata", FaultKind::Drop)])).await;
    // No status line reaches the client: the request itself fails (hyper: IncompleteMessage).
    let err = s
        .call(1, "getsfdata")
        .await
        .expect_err("a dropped connection must not yield a response");
    assert!(err.is_request() && err.status().is_none(), "{err:?}");
    // The server keeps serving other requests.
    assert_eq!(s.status(1, "getuserdata").await, 200);
    assert_eq!(s.faults.stats().by_cmd["getsfdata"].faulted, 1);
}

#[tokio::test]
async fn latency_delays_matching_requests() {
    let s = echo_server(rules(vec![FaultRule::new(
        "reporting",
        FaultKind::Latency {
            min_ms: 150,
            max_ms: Some(250),
        },
    )]))
    .await;
    let started = Instant::now();
    assert_eq!(s.status(1, "reporting").await, 200);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert_eq!(s.faults.stats().delayed, 1);
    // Latency alone is not a fault: the real answer comes back.
    assert_eq!(s.faults.stats().total.faulted, 0);
}

#[tokio::test]
async fn fixed_latency_via_spec() {
    let s = echo_server(rules(vec!["*:latency=120ms".parse().unwrap()])).await;
    let started = Instant::now();
    assert_eq!(s.status(1, "anything").await, 200);
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn truncated_body_is_a_cut_real_answer() {
    let s = echo_server(rules(vec![
        FaultRule::new("getuserdata", FaultKind::Truncate).count(1),
    ]))
    .await;
    let cut = s.call(1, "getuserdata").await.unwrap();
    assert_eq!(cut.status().as_u16(), 200);
    assert_eq!(cut.headers()["content-type"], XML);
    let cut = cut.bytes().await.unwrap();
    let full = s
        .call(1, "getuserdata")
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&full).is_ok());
    assert!(serde_json::from_slice::<Value>(&cut).is_err());
    assert!(!cut.is_empty() && cut.len() < full.len());
    assert!(full.starts_with(&cut));
}

#[tokio::test]
async fn malformed_body_is_not_json() {
    let s = echo_server(rules(vec![FaultRule::new("*", FaultKind::Malformed)])).await;
    let resp = s.call(1, "getuserdata").await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], XML);
    let body = resp.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}

#[tokio::test]
async fn count_exhausts_and_the_rule_disappears() {
    let s = echo_server(rules(vec!["getuserdata:503:1:2".parse().unwrap()])).await;
    assert_eq!(s.status(1, "getuserdata").await, 503);
    assert_eq!(s.faults.rules()[0].rule.count, Some(1));
    assert_eq!(s.status(1, "getuserdata").await, 503);
    assert_eq!(s.status(1, "getuserdata").await, 200);
    assert!(s.faults.rules().is_empty());
}

#[tokio::test]
async fn targets_one_account_including_form_bodies_and_string_cids() {
    let s = echo_server(rules(vec!["getuserdata@42:500".parse().unwrap()])).await;
    assert_eq!(s.status(41, "getuserdata").await, 200);
    assert_eq!(s.status(42, "getuserdata").await, 500);
    let form = s
        .client
        .post(&s.url)
        .form(&[("cid", "42"), ("provhash", "p"), ("cmd", "getuserdata")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 500);
    let string_cid = s
        .client
        .post(&s.url)
        .json(&json!({"cid": "42", "provhash": "p", "cmd": "getuserdata"}))
        .send()
        .await
        .unwrap();
    assert_eq!(string_cid.status().as_u16(), 500);
    // The request body reaches the handler intact.
    let ok: Value = s
        .call(41, "getuserdata")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["echo"]["data"]["pagesize"], 1);
}

#[tokio::test]
async fn probability_follows_the_seed() {
    async fn pattern() -> Vec<u16> {
        let s = echo_server(rules(vec!["getuserdata:429:0.3".parse().unwrap()])).await;
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(s.status(1, "getuserdata").await);
        }
        out
    }
    let a = pattern().await;
    assert_eq!(a, pattern().await, "same seed, same faults");
    let hits = a.iter().filter(|s| **s == 429).count();
    assert!((3..=24).contains(&hits), "{hits} of 40 at p=0.3");
}

#[tokio::test]
async fn per_account_rate_limit_answers_429() {
    let s = echo_server(FaultConfig {
        rate_limit_rps: Some(1.0),
        ..FaultConfig::default()
    })
    .await;
    assert_eq!(s.status(7, "getuserdata").await, 200);
    let mut limited = 0;
    for _ in 0..3 {
        let resp = s.call(7, "getuserdata").await.unwrap();
        if resp.status().as_u16() == 429 {
            assert_eq!(resp.headers()["content-type"], XML);
            limited += 1;
        }
    }
    assert!(limited >= 2, "{limited}");
    // Another account has its own bucket.
    assert_eq!(s.status(8, "getuserdata").await, 200);
    let st = s.faults.stats();
    assert_eq!(st.by_cid[&7].rate_limited, limited);
    assert_eq!(st.by_cid[&8].rate_limited, 0);
    s.faults.set_rate_limit(None);
    assert_eq!(s.status(7, "getuserdata").await, 200);
}

#[tokio::test]
async fn stats_count_requests_per_cid_and_cmd_and_reset() {
    let s = echo_server(rules(vec!["reporting:500:1:1".parse().unwrap()])).await;
    for _ in 0..3 {
        s.status(5, "getuserdata").await;
    }
    s.status(6, "reporting").await;
    s.status(6, "reporting").await;
    let st = s.faults.stats();
    assert_eq!(st.total.requests, 5);
    assert_eq!(st.total.faulted, 1);
    assert_eq!(st.requests_for("getuserdata"), 3);
    assert_eq!(st.by_cmd["reporting"].faulted, 1);
    assert_eq!(st.by_cid[&5].requests, 3);
    assert_eq!(st.by_cid[&6].requests, 2);
    s.faults.reset_stats();
    assert_eq!(s.faults.stats().total.requests, 0);
}

#[tokio::test]
async fn first_matching_rule_wins_and_latency_adds_up() {
    let s = echo_server(rules(vec![
        "*:latency=60ms".parse().unwrap(),
        "getuserdata:503".parse().unwrap(),
        "getuserdata:500".parse().unwrap(),
    ]))
    .await;
    let started = Instant::now();
    assert_eq!(s.status(1, "getuserdata").await, 503);
    assert!(started.elapsed() >= Duration::from_millis(60));
    let r = s.faults.rules();
    assert_eq!((r[0].fired, r[1].fired, r[2].fired), (1, 1, 0));
}

// ---- through the whole sandbox (needs the LastPass emulator) ----

async fn post_bytes(client: &reqwest::Client, url: &str, body: &Value) -> Bytes {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

#[tokio::test]
async fn sandbox_faults_wrap_the_emulator() {
    let mut config = sandbox::SandboxConfig::for_tests();
    config.faults.rules = vec!["getuserdata:truncate:1:1".parse().unwrap()];
    let sb = sandbox::spawn(config).await.unwrap();
    let acct = sb.primary_account();
    let client = reqwest::Client::new();
    let body = json!({"cid": acct.cid, "provhash": acct.provhash, "cmd": "getuserdata", "data": {"pagesize": 5}});
    let cut = post_bytes(&client, &sb.lastpass_endpoint(), &body).await;
    let full = post_bytes(&client, &sb.lastpass_endpoint(), &body).await;
    let v: Value = serde_json::from_slice(&full).unwrap();
    assert_eq!(v["count"], 5);
    assert!(serde_json::from_slice::<Value>(&cut).is_err());
    assert!(full.starts_with(&cut));
    assert_eq!(sb.stats().requests_for("getuserdata"), 2);
    assert_eq!(sb.stats().by_cid[&acct.cid].faulted, 1);
    sb.shutdown().await.unwrap();
}
