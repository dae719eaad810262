//! The control API under /_sandbox, driven over HTTP.

mod common;

use chrono::TimeZone;
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

struct T {
    sb: SandboxHandle,
    http: reqwest::Client,
}

impl T {
    async fn new() -> Self {
        Self {
            sb: sandbox::spawn(SandboxConfig::for_tests()).await.unwrap(),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sb.control_url())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        common::post_json(&self.http, &self.url(path), &body).await
    }

    async fn post_raw(&self, path: &str, body: &'static str) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        let r = self.http.delete(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A LastPass API call as the primary account (or `cid`/`provhash` given).
    async fn api_as(&self, cid: u64, provhash: &str, cmd: &str, data: Value) -> (u16, Value) {
        let r = common::api_request(&self.http, &self.sb, cid, provhash, cmd, data).await;
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&body)
                .unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned())),
        )
    }

    async fn api(&self, cmd: &str, data: Value) -> (u16, Value) {
        let a = self.sb.primary_account();
        self.api_as(a.cid, &a.provhash, cmd, data).await
    }

    async fn total_users(&self) -> u64 {
        let (_, v) = self.api("getuserdata", json!({"pagesize": 1})).await;
        v["total"].as_u64().unwrap()
    }

    /// Reporting events (up to 10,000) between two virtual instants.
    async fn events_between(&self, from_us: i64, to_us: i64) -> usize {
        let tz: chrono_tz::Tz = "US/Eastern".parse().unwrap();
        let fmt = |us: i64| {
            tz.timestamp_micros(us)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        let (status, v) = self
            .api(
                "reporting",
                json!({"from": fmt(from_us), "to": fmt(to_us), "user": "allusers"}),
            )
            .await;
        assert_eq!(status, 200);
        match &v["data"] {
            Value::Object(m) => m.values().filter(|e| e["Action"] != "Reporting").count(),
            Value::Array(a) => a.len(),
            other => panic!("unexpected reporting data {other}"),
        }
    }

    fn assert_error(&self, (status, body): (u16, Value), want_status: u16, field: &str) {
        assert_eq!(status, want_status, "{body}");
        assert!(body["error"].is_string(), "{body}");
        assert_eq!(body["field"], field, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn inspects_accounts_and_users() {
    let t = T::new().await;
    let cid = t.sb.primary_account().cid;
    let (s, accounts) = t.get("/accounts").await;
    assert_eq!(s, 200);
    assert_eq!(accounts[0]["cid"], cid);
    assert_eq!(accounts[0]["users"], 20);
    assert_eq!(accounts[0]["name"], "Acme Corp");

    let (s, account) = t.get(&format!("/accounts/{cid}")).await;
    assert_eq!(s, 200, "{account}");
    assert!(account.is_object());

    let (_, page) = t.api("getuserdata", json!({"pagesize": 1})).await;
    let username = page["Users"].as_object().unwrap().values().next().unwrap()["username"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, user) = t.get(&format!("/accounts/{cid}/users/{username}")).await;
    assert_eq!(s, 200);
    assert!(user.to_string().contains(&username));

    t.assert_error(
        t.get(&format!("/accounts/{cid}/users/nobody@nowhere.test"))
            .await,
        404,
        "username",
    );
    t.assert_error(t.get("/accounts/1").await, 404, "cid");
    t.assert_error(t.get("/accounts/abc").await, 400, "cid");
    t.assert_error(t.get("/no/such/thing").await, 404, "path");
}

#[tokio::test]
async fn reset_restores_the_seed() {
    let t = T::new().await;
    let total = t.total_users().await;
    let (_, r) = t
        .api(
            "batchadd",
            json!([{"username": "extra@example.com", "fullname": "Extra", "password": "Correct-Horse-9"}]),
        )
        .await;
    assert_eq!(r["status"], "OK", "{r}");
    assert_eq!(t.total_users().await, total + 1);
    let (s, body) = t.post("/reset", json!({})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["accounts"][0]["users"], 20);
    assert_eq!(t.total_users().await, total);
    let cid = t.sb.primary_account().cid;
    assert!(
        t.sb.lastpass
            .inspect_user(cid, "extra@example.com")
            .is_none()
    );
}

#[tokio::test]
async fn seeding_changes_counts_and_accounts_can_be_added() {
    let t = T::new().await;
    let cid = t.sb.primary_account().cid;
    let (s, info) = t
        .post(
            &format!("/accounts/{cid}/seed"),
            json!({"users": 7, "groups": 2, "folders": 1, "events": 10, "seed": 3}),
        )
        .await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["users"], 7);
    assert!((1..=7).contains(&t.total_users().await));

    let (s, added) = t
        .post(
            "/accounts",
            json!({"cid": 5550001, "name": "Other Co", "seed": {"users": 3}}),
        )
        .await;
    assert_eq!(s, 201, "{added}");
    assert_eq!(added["users"], 3);
    let provhash = added["provhash"].as_str().unwrap().to_string();
    assert_eq!(provhash.len(), 64);
    let (_, v) = t
        .api_as(5550001, &provhash, "getuserdata", json!({"pagesize": 1}))
        .await;
    assert_eq!(v["total"], 3);
    let (_, accounts) = t.get("/accounts").await;
    assert_eq!(accounts.as_array().unwrap().len(), 2);

    t.assert_error(
        t.post("/accounts", json!({"cid": 5550001})).await,
        409,
        "cid",
    );
    t.assert_error(
        t.post(&format!("/accounts/{cid}/seed"), json!({"users": -1}))
            .await,
        400,
        "users",
    );
    t.assert_error(
        t.post(
            "/accounts",
            json!({"cid": 5550002, "time_zone": "Mars/Base"}),
        )
        .await,
        400,
        "time_zone",
    );
    t.assert_error(
        t.post("/accounts", json!({"name": "no cid"})).await,
        400,
        "cid",
    );
    t.assert_error(
        t.post("/accounts/424242/seed", json!({"users": 1})).await,
        404,
        "cid",
    );
}

#[tokio::test]
async fn clock_can_be_read_advanced_set_frozen_and_resumed() {
    let t = T::new().await;
    let (s, c) = t.get("/clock").await;
    assert_eq!(s, 200);
    assert_eq!(c["frozen"], true);
    let start = c["now_us"].as_i64().unwrap();
    assert_eq!(c["now"], "2026-01-05T09:00:00.000000Z");

    let (s, c) = t.post("/clock/advance", json!({"seconds": 3600})).await;
    assert_eq!(s, 200);
    assert_eq!(c["now_us"].as_i64().unwrap(), start + 3_600_000_000);
    assert_eq!(t.sb.clock.now_us(), start + 3_600_000_000);

    let (_, c) = t
        .post("/clock", json!({"set": "2026-02-01T00:00:00Z"}))
        .await;
    assert_eq!(c["now"], "2026-02-01T00:00:00.000000Z");
    let (_, c) = t.post("/clock", json!({"resume": true})).await;
    assert_eq!(c["frozen"], false);
    let (_, c) = t
        .post("/clock", json!({"freeze": true, "set": 1_000_000}))
        .await;
    assert_eq!(c["frozen"], true);
    assert_eq!(c["now_us"], 1_000_000);

    for (body, field) in [
        (json!({"seconds": "soon"}), "seconds"),
        (json!({"seconds": -5}), "seconds"),
        (json!({}), "seconds"),
    ] {
        t.assert_error(t.post("/clock/advance", body).await, 400, field);
    }
    t.assert_error(
        t.post("/clock", json!({"set": "last tuesday"})).await,
        400,
        "set",
    );
    t.assert_error(
        t.post("/clock", json!({"freeze": true, "resume": true}))
            .await,
        400,
        "resume",
    );
    t.assert_error(t.post_raw("/clock", "{not json").await, 400, "body");
}

#[tokio::test]
async fn activity_generation_shows_up_in_reporting() {
    let t = T::new().await;
    let cid = t.sb.primary_account().cid;
    let now = t.sb.clock.now_us();
    let hour = 3_600_000_000;
    let before = t.events_between(now - hour, now + hour).await;
    let (s, r) = t
        .post(
            "/activity",
            json!({"cid": cid, "minutes": 60, "per_hour": 200, "seed": 9}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let written = r["events"].as_u64().unwrap() as usize;
    assert!(written > 50, "{written} events for 200/h");
    assert_eq!(r["to_us"], now);
    assert_eq!(r["from_us"], now - hour);
    let after = t.events_between(now - hour, now + hour).await;
    assert_eq!(after, before + written);

    t.assert_error(
        t.post("/activity", json!({"cid": cid, "minutes": 0})).await,
        400,
        "minutes",
    );
    t.assert_error(
        t.post("/activity", json!({"cid": 1, "minutes": 5})).await,
        404,
        "cid",
    );
}

#[tokio::test]
async fn stats_count_requests_and_reset() {
    let t = T::new().await;
    for _ in 0..3 {
        t.api("getuserdata", json!({"pagesize": 1})).await;
    }
    t.api("getsfdata", json!(null)).await;
    let cid = t.sb.primary_account().cid.to_string();
    let (s, st) = t.get("/stats").await;
    assert_eq!(s, 200);
    assert_eq!(st["by_cmd"]["getuserdata"]["requests"], 3);
    assert_eq!(st["by_cmd"]["getsfdata"]["requests"], 1);
    assert_eq!(st["by_cid"][&cid]["requests"], 4);
    assert_eq!(st["total"]["requests"], 4);
    // Control calls are not LastPass calls.
    assert_eq!(t.sb.stats().total.requests, 4);
    let (_, st) = t.delete("/stats").await;
    assert_eq!(st["total"]["requests"], 0);
    assert_eq!(t.sb.stats().total.requests, 0);
}

#[tokio::test]
async fn faults_and_rate_limit_via_control() {
    let t = T::new().await;
    let (s, rule) = t
        .post("/faults", json!({"spec": "getuserdata:503:1:1"}))
        .await;
    assert_eq!(s, 201, "{rule}");
    assert_eq!(rule["kind"], "status");
    let (s, _) = t.api("getuserdata", json!({"pagesize": 1})).await;
    assert_eq!(s, 503);
    let (s, _) = t.api("getuserdata", json!({"pagesize": 1})).await;
    assert_eq!(s, 200);

    let (s, rule) = t
        .post(
            "/faults",
            json!({"cmd": "getsfdata", "kind": "status", "status": 429, "probability": 1.0}),
        )
        .await;
    assert_eq!(s, 201);
    let id = rule["id"].as_u64().unwrap();
    let (_, all) = t.get("/faults").await;
    assert_eq!(all["rules"].as_array().unwrap().len(), 1);
    assert_eq!(t.api("getsfdata", json!(null)).await.0, 429);
    let (s, _) = t.delete(&format!("/faults/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(t.api("getsfdata", json!(null)).await.0, 200);
    t.assert_error(t.delete(&format!("/faults/{id}")).await, 404, "id");

    t.post("/faults", json!({"kind": "drop"})).await;
    let (_, cleared) = t.delete("/faults").await;
    assert!(cleared["rules"].as_array().unwrap().is_empty());

    for (body, field) in [
        (json!({"spec": "x:teapot"}), "spec"),
        (json!({"kind": "status", "status": 200}), "status"),
        (json!({"kind": "drop", "probabilty": 0.5}), "probabilty"),
        (json!({"kind": "explode"}), "kind"),
        (json!({"kind": "drop", "probability": 2}), "probability"),
    ] {
        t.assert_error(t.post("/faults", body).await, 400, field);
    }

    let (s, _) = t.post("/rate-limit", json!({"rps": 1})).await;
    assert_eq!(s, 200);
    let mut limited = 0;
    for _ in 0..4 {
        if t.api("getuserdata", json!({"pagesize": 1})).await.0 == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 2, "{limited}");
    t.post("/rate-limit", json!({"rps": null})).await;
    assert_eq!(t.api("getuserdata", json!({"pagesize": 1})).await.0, 200);
    t.assert_error(t.post("/rate-limit", json!({"rps": 0})).await, 400, "rps");
}

#[tokio::test]
async fn save_writes_a_loadable_state() {
    let t = T::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved.json");
    let (s, r) = t
        .post("/save", json!({"path": path.to_str().unwrap()}))
        .await;
    assert_eq!(s, 200, "{r}");
    let loaded = sandbox::lastpass::LastPass::load(&path, sandbox::Clock::frozen(0)).unwrap();
    assert_eq!(loaded.accounts()[0].users, 20);
    // Without a configured state file, a path is required.
    t.assert_error(t.post("/save", json!({})).await, 400, "path");
}

#[tokio::test]
async fn emulator_switches_and_logins_via_control() {
    let t = T::new().await;
    let (s, c) = t.get("/config").await;
    assert_eq!(s, 200);
    assert_eq!(c["flag_style"], "string");
    assert_eq!(c["json_content_type"], false);

    let (s, c) = t
        .post(
            "/config",
            json!({"flag_style": "int", "json_content_type": true, "max_pagesize": 3, "detailed_sf_unpaged_limit": null}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["flag_style"], "int");
    assert_eq!(c["max_pagesize"], 3);
    assert_eq!(c["detailed_sf_unpaged_limit"], Value::Null);
    let a = t.sb.primary_account();
    let r = t
        .http
        .post(t.sb.lastpass_endpoint())
        .json(&json!({"cid": a.cid, "provhash": a.provhash, "cmd": "getuserdata", "data": {"pagesize": 10}}))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["count"], 3);

    t.assert_error(
        t.post("/config", json!({"flag_style": "yes"})).await,
        400,
        "flag_style",
    );
    t.assert_error(
        t.post("/config", json!({"max_pagesize": 0})).await,
        400,
        "max_pagesize",
    );

    let (_, page) = t.api("getuserdata", json!({"pagesize": 1})).await;
    let username = page["Users"].as_object().unwrap().values().next().unwrap()["username"]
        .as_str()
        .unwrap()
        .to_string();
    let cid = a.cid;
    let (s, r) = t
        .post(
            &format!("/accounts/{cid}/users/{username}/login"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["logged_in"], true);
    t.assert_error(
        t.post(
            &format!("/accounts/{cid}/users/ghost@nowhere.test/login"),
            json!({}),
        )
        .await,
        404,
        "username",
    );
}
