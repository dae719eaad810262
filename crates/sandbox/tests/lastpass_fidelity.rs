//! Wire fidelity of the LastPass Enterprise API emulator: one test per command, holding the
//! emulator's bytes and shapes against the reference samples (reference §1–§3 and §10).

mod common;

use common::T0;
use sandbox::Clock;
use sandbox::lastpass::{FlagStyle, LastPass, SeedOptions};
use serde_json::{Value, json};

// T0 = 2024-03-10 12:00:00 UTC = 08:00:00 US/Eastern (EDT started that morning).
const CID: u64 = 8_771_312;
const HASH: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

struct Env {
    lp: LastPass,
    url: String,
    http: reqwest::Client,
}

fn empty_seed() -> SeedOptions {
    common::seed(0, 0, 0, 0, 1)
}

fn small_seed() -> SeedOptions {
    common::seed(40, 4, 6, 300, 7)
}

async fn start(seed: SeedOptions) -> Env {
    let lp = common::emulator(
        vec![common::account(
            CID,
            HASH,
            "Example Inc",
            "US/Eastern",
            seed,
        )],
        Some(3),
        Clock::frozen(T0),
    );
    let addr = common::serve(lp.router()).await;
    Env {
        lp,
        url: common::endpoint(addr),
        http: reqwest::Client::new(),
    }
}

/// An emulator with no seeded data but the `users` added through `batchadd`.
async fn start_with(users: Value) -> Env {
    let env = start(empty_seed()).await;
    env.add(users).await;
    env
}

impl Env {
    async fn raw(&self, body: Value) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self.http.post(&self.url).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    /// Body of a successful-transport call (HTTP 200 asserted).
    async fn cmd(&self, cmd: &str, data: Value) -> String {
        let (status, headers, body) = self
            .raw(json!({"cid": CID, "provhash": HASH, "cmd": cmd, "data": data}))
            .await;
        assert_eq!(status, 200, "{cmd}: {body}");
        assert_eq!(headers["content-type"], "text/xml;charset=UTF-8");
        body
    }

    async fn json(&self, cmd: &str, data: Value) -> Value {
        let body = self.cmd(cmd, data).await;
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{cmd}: {e}: {body}"))
    }

    /// Asserts the exact body `cmd` answers (over HTTP 200).
    async fn expect(&self, cmd: &str, data: Value, want: &str) {
        let shown = data.to_string();
        assert_eq!(self.cmd(cmd, data).await, want, "{cmd} {shown}");
    }

    /// `cmd` for user1@lastpass.com answers OK; for `other` it answers `fail`.
    async fn expect_single_user(&self, cmd: &str, other: &str, fail: &str) {
        self.expect(
            cmd,
            json!({"username": "user1@lastpass.com"}),
            r#"{"status":"OK"}"#,
        )
        .await;
        self.expect(cmd, json!({"username": other}), fail).await;
    }

    async fn add(&self, users: Value) {
        assert_eq!(self.cmd("batchadd", users).await, r#"{"status":"OK"}"#);
    }
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn auth_error_is_the_76_byte_xml_with_text_xml() {
    let env = start(empty_seed()).await;
    let expected =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<lastpass rc=\"Authorization Error\"/>\n";
    assert_eq!(expected.len(), 76);
    for body in [
        json!({"cid": CID, "provhash": "wrong", "cmd": "getuserdata"}),
        json!({"cid": 1, "provhash": HASH, "cmd": "getuserdata"}),
        json!({"provhash": HASH, "cmd": "getuserdata"}),
        json!({"cid": CID, "cmd": "getuserdata"}),
        json!({"cid": "not-a-number", "provhash": HASH, "cmd": "getuserdata"}),
    ] {
        let (status, headers, text) = env.raw(body).await;
        assert_eq!(status, 200);
        assert_eq!(text, expected);
        assert_eq!(headers["content-type"], "text/xml;charset=UTF-8");
        assert_eq!(headers["content-length"], "76");
        assert_eq!(headers["server"], "LastPass");
        assert_eq!(
            headers["cache-control"],
            "no-cache,private,no-store,max-age=0,s-maxage=0,must-revalidate,proxy-revalidate"
        );
        assert_eq!(headers["x-frame-options"], "SAMEORIGIN");
    }
    // A GET (no body) is just an unauthenticated request.
    let r = env.http.get(&env.url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/xml;charset=UTF-8");
    assert_eq!(r.text().await.unwrap(), expected);
    // Malformed JSON gets a FAIL envelope naming the problem (still HTTP 200, still text/xml).
    let r = env
        .http
        .post(&env.url)
        .header("content-type", "application/json")
        .body("{\"cid\": 8771312, \"provhash\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/xml;charset=UTF-8");
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"status":"FAIL","error":"Invalid request: the body is not a JSON object or form data"}"#
    );
    // cid as a string is accepted; the JSON answer is still served as text/xml.
    let (status, headers, text) = env
        .raw(json!({"cid": CID.to_string(), "provhash": HASH, "cmd": "getuserdata", "data": {"username": "nobody@example.com"}}))
        .await;
    assert_eq!((status, text.as_str()), (200, r#"{"Users":[]}"#));
    assert_eq!(headers["content-type"], "text/xml;charset=UTF-8");
    // The json_content_type switch.
    env.lp.set_json_content_type(true);
    let (_, headers, _) = env
        .raw(json!({"cid": CID, "provhash": HASH, "cmd": "getuserdata"}))
        .await;
    assert_eq!(headers["content-type"], "application/json");
}

#[tokio::test]
async fn getuserdata_matches_the_recorded_shapes() {
    let env = start(empty_seed()).await;
    // Empty account: Users and Groups are PHP-style empty arrays.
    env.expect(
        "getuserdata",
        json!("all"),
        r#"{"total":0,"count":0,"Users":[],"Groups":[]}"#,
    )
    .await;
    env.add(json!([
        {"username": "user-c@example.com", "fullname": "User C", "password": "Temp-Pass-1", "groups": ["Integration Development"]},
        {"username": "user-a@example.com", "password": "Temp-Pass-2", "password_reset_required": false},
    ]))
    .await;
    // Never-logged-in user: null counters, "" last_login, null totalscore, string mpstrength,
    // duousername null, and the key order of the real recording.
    let body = env
        .cmd("getuserdata", json!({"username": "user-c@example.com"}))
        .await;
    let id_c = env.lp.inspect_user(CID, "user-c@example.com").unwrap()["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        body,
        format!(
            concat!(
                r#"{{"total":1,"count":1,"Users":{{"{id}":{{"username":"user-c@example.com","fullname":"User C","#,
                r#""mpstrength":"0","created":"2024-03-10 08:00:00","last_pw_change":"2024-03-10 08:00:00","#,
                r#""last_login":"","neverloggedin":true,"disabled":false,"admin":false,"totalscore":null,"#,
                r#""duousername":null,"sites":null,"notes":null,"formfills":null,"applications":null,"#,
                r#""attachments":null,"password_reset_required":true,"groups":["Integration Development"]}}}},"#,
                r#""Groups":{{"Integration Development":["user-c@example.com"]}}}}"#
            ),
            id = id_c
        )
    );
    // After a login: counters are numbers, last_login set, no groups key without groups.
    env.lp.clock().advance_us(3_600_000_000);
    assert!(env.lp.simulate_login(CID, "user-a@example.com").unwrap());
    let v = env.json("getuserdata", json!(null)).await;
    assert_eq!(keys(&v), ["total", "count", "Users", "Groups"]);
    assert_eq!(
        (v["total"].as_u64(), v["count"].as_u64()),
        (Some(2), Some(2))
    );
    let users = v["Users"].as_object().unwrap();
    let ids: Vec<u64> = users.keys().map(|k| k.parse().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ascending ids: {ids:?}"
    );
    let a = users
        .values()
        .find(|u| u["username"] == "user-a@example.com")
        .unwrap();
    assert_eq!(
        keys(a),
        [
            "username",
            "fullname",
            "mpstrength",
            "created",
            "last_pw_change",
            "last_login",
            "neverloggedin",
            "disabled",
            "admin",
            "totalscore",
            "duousername",
            "sites",
            "notes",
            "formfills",
            "applications",
            "attachments",
            "password_reset_required"
        ]
    );
    assert_eq!(a["last_login"], "2024-03-10 09:00:00");
    assert_eq!(a["neverloggedin"], false);
    assert_eq!(a["sites"], 0);
    assert!(a["mpstrength"].is_string() && a["totalscore"].is_string());
    assert_eq!(a["password_reset_required"], false);
    // Paged answer: total/count, no Groups key (the pagesize-1 recording).
    let p = env.json("getuserdata", json!({"pagesize": 1})).await;
    assert_eq!(keys(&p), ["total", "count", "Users"]);
    assert_eq!(
        (p["total"].as_u64(), p["count"].as_u64()),
        (Some(2), Some(1))
    );
    let p2 = env
        .json("getuserdata", json!({"pagesize": "1", "pageindex": "1"}))
        .await;
    assert_eq!(p2["count"], 1);
    assert_ne!(p["Users"], p2["Users"]);
    let p3 = env
        .json("getuserdata", json!({"pagesize": 1, "pageindex": 5}))
        .await;
    assert_eq!(p3["Users"], json!([]));
    // Unknown user: exactly {"Users":[]}.
    env.expect(
        "getuserdata",
        json!({"username": "nobody@example.com"}),
        r#"{"Users":[]}"#,
    )
    .await;
    // Pending invitees are listed under `invited`, not under Users.
    env.add(json!([{"username": "invitee@example.com"}])).await;
    let v = env.json("getuserdata", json!("all")).await;
    assert_eq!(v["invited"], json!(["invitee@example.com"]));
    assert_eq!(v["total"], 2);
    // Filters: disabled / admin.
    env.cmd("disableuser", json!(["user-a@example.com"])).await;
    let d = env.json("getuserdata", json!({"disabled": "1"})).await;
    assert_eq!(d["total"], 1);
    let d0 = env.json("getuserdata", json!({"disabled": 0})).await;
    assert_eq!(d0["total"], 1);
    assert!(d0.get("invited").is_none());
    let ad = env.json("getuserdata", json!({"admin": 1})).await;
    assert_eq!(ad["Users"], json!([]));
    // Form-encoded request with data=all.
    let r = env
        .http
        .post(&env.url)
        .form(&[
            ("cid", CID.to_string()),
            ("provhash", HASH.to_string()),
            ("cmd", "getuserdata".to_string()),
            ("data", "all".to_string()),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["total"], 2);
    // Form-encoded with JSON text in data.
    let r = env
        .http
        .post(&env.url)
        .form(&[
            ("cid", CID.to_string()),
            ("provhash", HASH.to_string()),
            ("cmd", "getuserdata".to_string()),
            ("data", r#"{"pagesize":1}"#.to_string()),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["count"], 1);
    // PHP-style nested form fields.
    let r = env
        .http
        .post(&env.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "cid={CID}&provhash={HASH}&cmd=getuserdata&data%5Busername%5D=user-a%40example.com"
        ))
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["total"], 1);
    // A JSON body mislabelled as a form is still read as JSON.
    let r = env
        .http
        .post(&env.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(json!({"cid": CID, "provhash": HASH, "cmd": "getuserdata"}).to_string())
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["total"], 2);
    // Wrong data type.
    env.expect(
        "getuserdata",
        json!([1, 2]),
        r#"{"status":"FAIL","error":"Invalid data: expected an object, got [1,2]"}"#,
    )
    .await;
}

#[tokio::test]
async fn batchadd_envelopes() {
    let env = start(empty_seed()).await;
    env.expect("batchadd", json!([{"username": "user0@lastpass.com"}, {"username": "user1@lastpass.com", "fullname": "John Doe"}]), r#"{"status":"OK"}"#).await;
    env.expect(
        "batchadd",
        json!([{"username": "ok@lastpass.com"}, {"username": "not-an-email"}]),
        r#"{"status":"FAIL","error":"Invalid email address: not-an-email"}"#,
    )
    .await;
    assert!(
        env.lp.inspect_user(CID, "ok@lastpass.com").is_none(),
        "nothing half-applied"
    );
    for (data, want) in [
        (
            json!([{"username": "dup@lastpass.com"}, {"username": "DUP@lastpass.com"}]),
            r#"{"status":"FAIL","error":"Duplicate username in batch: DUP@lastpass.com"}"#,
        ),
        (
            json!("user@lastpass.com"),
            r#"{"status":"FAIL","error":"Invalid data: expected an array of users"}"#,
        ),
        (
            json!([{"fullname": "No Name"}]),
            r#"{"status":"FAIL","error":"Missing username"}"#,
        ),
    ] {
        env.expect("batchadd", data, want).await;
    }
}

#[tokio::test]
async fn updateuser_envelopes() {
    let env = start_with(json!([{"username": "user1@lastpass.com", "password": "x"}])).await;
    env.expect(
        "updateuser",
        json!({"username": "user1@lastpass.com", "fullname": "New Name", "duousername": "u1"}),
        r#"{"status":"OK"}"#,
    )
    .await;
    let u = env.lp.inspect_user(CID, "user1@lastpass.com").unwrap();
    assert_eq!(
        (u["fullname"].as_str(), u["duousername"].as_str()),
        (Some("New Name"), Some("u1"))
    );
    env.expect(
        "updateuser",
        json!({"username": "someone@example.com", "fullname": "X"}),
        r#"{"status":"FAIL","error":"No such user: someone@example.com"}"#,
    )
    .await;
    env.expect(
        "updateuser",
        json!({"fullname": "X"}),
        r#"{"status":"FAIL","error":"Missing username"}"#,
    )
    .await;
}

#[tokio::test]
async fn deluser_envelopes() {
    let env = start_with(json!([{"username": "user1@lastpass.com", "password": "x"}])).await;
    for (data, want) in [
        (
            json!({"username": "someone@example.com", "deleteaction": 0}),
            r#"{"status":"FAIL","error":"No such user: someone@example.com"}"#,
        ),
        (
            json!({"username": "user1@lastpass.com", "deleteaction": 7}),
            r#"{"status":"FAIL","error":"Invalid deleteaction: 7"}"#,
        ),
        (
            json!({"username": "user1@lastpass.com", "deleteaction": 3}),
            r#"{"status":"FAIL","error":"User is not invited: user1@lastpass.com"}"#,
        ),
        (
            json!({"username": "user1@lastpass.com", "deleteaction": "0"}),
            r#"{"status":"OK"}"#,
        ),
    ] {
        env.expect("deluser", data, want).await;
    }
}

#[tokio::test]
async fn disableuser_answers_lowercase_success() {
    let env = start_with(json!([{"username": "user1@lastpass.com", "password": "x"}, {"username": "user2@lastpass.com", "password": "x"}])).await;
    for (data, want) in [
        (
            json!(["user1@lastpass.com", "user2@lastpass.com"]),
            r#"{"status":"success","disabled_users":["user1@lastpass.com","user2@lastpass.com"]}"#,
        ),
        (
            json!(["user1@lastpass.com", "ghost@lastpass.com"]),
            r#"{"status":"success","disabled_users":[],"unchanged_users":["user1@lastpass.com"],"error":"No such user: ghost@lastpass.com"}"#,
        ),
        (
            json!({"username": "user1@lastpass.com"}),
            r#"{"status":"FAIL","error":"Invalid data: expected an array of usernames"}"#,
        ),
    ] {
        env.expect("disableuser", data, want).await;
    }
}

#[tokio::test]
async fn enableuser_answers_lowercase_success() {
    let env = start_with(json!([{"username": "user1@lastpass.com", "password": "x"}, {"username": "user2@lastpass.com", "password": "x"}])).await;
    env.cmd("disableuser", json!(["user1@lastpass.com"])).await;
    env.expect("enableuser", json!(["user1@lastpass.com", "user2@lastpass.com"]), r#"{"status":"success","enabled_users":["user1@lastpass.com"],"unchanged_users":["user2@lastpass.com"]}"#).await;
}

#[tokio::test]
async fn batchchangegrp_ok_and_warn() {
    let env = start_with(json!([{"username": "user1@lastpass.com", "password": "x", "groups": ["Group1", "Group2", "Group3"]}])).await;
    for (data, want) in [
        (
            json!([{"username": "user1@lastpass.com", "add": ["Group1"], "del": ["Group2"]}]),
            r#"{"status":"OK"}"#,
        ),
        (
            json!([
                {"username": "user1@lastpass.com", "add": ["Group2"]},
                {"username": "user2@lastpass.com", "add": ["Group1"], "del": ["Group2", "Group3"]}
            ]),
            r#"{"status":"WARN","errors":["user2@lastpass.com does not exist"]}"#,
        ),
        (
            json!([{"username": "user1@lastpass.com", "add": ["Nope"]}]),
            r#"{"status":"WARN","errors":["group Nope does not exist"]}"#,
        ),
        (
            json!({"data": 1}),
            r#"{"status":"FAIL","error":"Missing username"}"#,
        ),
    ] {
        env.expect("batchchangegrp", data, want).await;
    }
}

#[tokio::test]
async fn reinviteuser_envelopes() {
    let env = start_with(json!([{"username": "user1@lastpass.com"}, {"username": "active@lastpass.com", "password": "x"}])).await;
    for (data, want) in [
        (
            json!({"username": "user1@lastpass.com"}),
            r#"{"status":"OK"}"#,
        ),
        (
            json!({"username": "ghost@lastpass.com"}),
            r#"{"status":"FAIL","error":"No such user: ghost@lastpass.com"}"#,
        ),
        (
            json!({"username": "active@lastpass.com"}),
            r#"{"status":"FAIL","error":"User has already accepted the invitation: active@lastpass.com"}"#,
        ),
    ] {
        env.expect("reinviteuser", data, want).await;
    }
}

#[tokio::test]
async fn resetpassword_fails_with_an_error_array() {
    let env = start_with(json!([{"username": "user1@lastpass.com", "password": "x"}])).await;
    env.expect_single_user(
        "resetpassword",
        "someone@example.com",
        r#"{"status":"FAIL","error":["user not found: someone@example.com"]}"#,
    )
    .await;
}

#[tokio::test]
async fn requiremasterpasswordchange_envelopes() {
    let env = start_with(json!([{"username": "user1@lastpass.com", "password": "x", "password_reset_required": false}])).await;
    env.expect_single_user(
        "requiremasterpasswordchange",
        "x@example.com",
        r#"{"status":"FAIL","error":"No such user: x@example.com"}"#,
    )
    .await;
}

#[tokio::test]
async fn disablemultifactor_envelopes() {
    let env = start_with(json!([{"username": "user1@lastpass.com", "password": "x"}])).await;
    env.expect_single_user(
        "disablemultifactor",
        "x@example.com",
        r#"{"status":"FAIL","error":"No such user: x@example.com"}"#,
    )
    .await;
}

#[tokio::test]
async fn updateemail_envelopes_and_rate_limit() {
    let env = start_with(json!([{"username": "user1@lastpass.com", "password": "x"}, {"username": "pending@lastpass.com"}])).await;
    for (data, want) in [
        (
            json!({"oldemail": "user1@lastpass.com", "newemail": "newemail@lastpass.com"}),
            r#"{"status":"OK"}"#,
        ),
        (
            json!({"oldemail": "user1@lastpass.com", "newemail": "bad email"}),
            r#"{"status":"FAIL","error":"Invalid email address: bad email"}"#,
        ),
        (
            json!({"oldemail": "ghost@lastpass.com", "newemail": "g2@lastpass.com"}),
            r#"{"status":"FAIL","error":"No such user: ghost@lastpass.com"}"#,
        ),
        (
            json!({"oldemail": "pending@lastpass.com", "newemail": "p2@lastpass.com"}),
            r#"{"status":"FAIL","error":"User account is not activated: pending@lastpass.com"}"#,
        ),
    ] {
        env.expect("updateemail", data, want).await;
    }
    // 4 requests so far from 127.0.0.1 in this (frozen) second; 6 more pass, the 11th is 429.
    for i in 0..6 {
        let body = env
            .cmd(
                "updateemail",
                json!({"oldemail": format!("o{i}@lastpass.com"), "newemail": "n@lastpass.com"}),
            )
            .await;
        assert!(body.contains("FAIL"), "{body}");
    }
    let (status, headers, body) = env
        .raw(json!({"cid": CID, "provhash": HASH, "cmd": "updateemail", "data": {"oldemail": "user1@lastpass.com", "newemail": "z@lastpass.com"}}))
        .await;
    assert_eq!(status, 429);
    assert_eq!(headers["content-type"], "text/xml;charset=UTF-8");
    assert_eq!(
        body,
        r#"{"status":"FAIL","error":"Too many requests: updateemail is limited to 10 per second per IP address and per oldemail"}"#
    );
    // A second later the window is clear again.
    env.lp.clock().advance_us(1_000_001);
    env.expect(
        "updateemail",
        json!({"oldemail": "user1@lastpass.com", "newemail": "newer@lastpass.com"}),
        r#"{"status":"OK"}"#,
    )
    .await;
}

#[tokio::test]
async fn getsfdata_has_no_status_and_string_flags() {
    let env = start(small_seed()).await;
    let body = env.cmd("getsfdata", json!("all")).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v.get("status").is_none());
    let folders = v.as_object().unwrap();
    assert_eq!(folders.len(), 6);
    for (id, f) in folders {
        assert!(id.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(keys(f), ["sharedfoldername", "deleted", "score", "users"]);
        assert!(f["deleted"].is_boolean() && f["score"].is_u64());
        for u in f["users"].as_array().unwrap() {
            assert_eq!(
                keys(u),
                [
                    "username",
                    "readonly",
                    "give",
                    "can_administer",
                    "superadmin"
                ]
            );
            for flag in ["readonly", "give", "can_administer"] {
                assert!(u[flag] == "0" || u[flag] == "1", "{u}");
            }
            assert!(u["superadmin"].is_boolean());
        }
    }
    env.lp.set_flag_style(FlagStyle::Int);
    let v = env.json("getsfdata", json!(null)).await;
    let u = &v.as_object().unwrap().values().next().unwrap()["users"][0];
    assert!(u["readonly"].is_u64());
    env.lp.set_flag_style(FlagStyle::Bool);
    let v = env.json("getsfdata", json!(null)).await;
    let u = &v.as_object().unwrap().values().next().unwrap()["users"][0];
    assert!(u["readonly"].is_boolean());
    // An account without folders answers [] (PHP-style empty map).
    let empty = start(empty_seed()).await;
    assert_eq!(empty.cmd("getsfdata", json!("all")).await, "[]");
}

#[tokio::test]
async fn getdetailedsfdata_sites_paging_and_429() {
    let env = start(small_seed()).await;
    // Unpaged over the configured limit (3 folders here): HTTP 429.
    let (status, headers, _) = env
        .raw(json!({"cid": CID, "provhash": HASH, "cmd": "getdetailedsfdata", "data": "all"}))
        .await;
    assert_eq!(status, 429);
    assert_eq!(headers["content-type"], "text/xml;charset=UTF-8");
    // Paged (strings, as Elastic sends): pages of 4 then 2, disjoint ids.
    let p0 = env
        .json(
            "getdetailedsfdata",
            json!({"data": "all", "pagesize": "4", "pageindex": "0"}),
        )
        .await;
    let p1 = env
        .json(
            "getdetailedsfdata",
            json!({"data": "all", "pagesize": 4, "pageindex": 1}),
        )
        .await;
    assert_eq!(p0.as_object().unwrap().len(), 4);
    assert_eq!(p1.as_object().unwrap().len(), 2);
    for f in p0.as_object().unwrap().values() {
        assert!(p1.get(f.as_str().unwrap_or("")).is_none());
        for u in f["users"].as_array().unwrap() {
            assert_eq!(
                keys(u),
                [
                    "username",
                    "readonly",
                    "give",
                    "can_administer",
                    "superadmin",
                    "sites"
                ]
            );
            assert!(u["sites"].is_array());
        }
    }
    let p9 = env
        .cmd(
            "getdetailedsfdata",
            json!({"data": "all", "pagesize": 4, "pageindex": 9}),
        )
        .await;
    assert_eq!(p9, "[]");
    // Unlimited: the unpaged form answers everything.
    env.lp.set_detailed_sf_unpaged_limit(None);
    let all = env.json("getdetailedsfdata", json!("all")).await;
    assert_eq!(all.as_object().unwrap().len(), 6);
}

#[tokio::test]
async fn reporting_envelope_and_event_shape() {
    let env = start(empty_seed()).await;
    // Nothing yet in the window: "data":[].
    env.expect(
        "reporting",
        json!({"from": "2024-03-01 00:00:00", "to": "2024-03-02 00:00:00"}),
        r#"{"status":"OK","next":null,"data":[]}"#,
    )
    .await;
    env.add(json!([{"username": "j.user@example.com", "password": "x"}]))
        .await;
    env.lp.clock().advance_us(5_000_000);
    env.lp.simulate_login(CID, "j.user@example.com").unwrap();
    let v = env
        .json(
            "reporting",
            json!({"from": "2024-03-10 08:00:00", "to": "2024-03-10 08:00:05", "user": "allusers"}),
        )
        .await;
    assert_eq!(keys(&v), ["status", "next", "data"]);
    assert_eq!(v["status"], "OK");
    assert_eq!(v["next"], Value::Null);
    let data = v["data"].as_object().unwrap();
    let names: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(names[0], "Event1");
    // Newest first: the login (08:00:05) precedes the creation (08:00:00) and the first
    // reporting call.
    assert_eq!(data["Event1"]["Action"], "Log in");
    assert_eq!(data["Event1"]["Time"], "2024-03-10 08:00:05");
    assert_eq!(
        keys(&data["Event1"]),
        ["Time", "Username", "IP_Address", "Action", "Data"]
    );
    // Oldest: the first (empty) reporting call, then the account creation, 1 µs later.
    assert_eq!(data[names[names.len() - 1]]["Action"], "Reporting");
    let last = &data[names[names.len() - 2]];
    assert_eq!(last["Action"], "Employee Account Created");
    assert_eq!(last["Username"], "API");
    assert_eq!(last["IP_Address"], "127.0.0.1");
    assert_eq!(last["Data"], "j.user@example.com");
    // The reporting call logged itself after computing its answer.
    let again = env
        .json("reporting", json!({"from": "2024-03-10 08:00:00", "to": "2024-03-10 08:00:05", "search": "Reporting"}))
        .await;
    assert_eq!(again["data"]["Event1"]["Action"], "Reporting");
    assert_eq!(again["data"]["Event1"]["Data"], "Initiated by API");
    // user at top level, invalid user.
    let (_, _, body) = env
        .raw(json!({"cid": CID, "provhash": HASH, "cmd": "reporting", "user": "api", "data": {"from": "2024-03-10 00:00:00", "to": "2024-03-11 00:00:00"}}))
        .await;
    assert_eq!(
        body,
        r#"{"status":"FAIL","error":"Please select a valid user."}"#
    );
    // format: siem
    let (_, _, body) = env
        .raw(json!({"cid": CID, "provhash": HASH, "cmd": "reporting", "format": "siem", "apiuser": "splunk.collector", "data": {"from": "2024-03-10 00:00:00", "to": "2024-03-11 00:00:00", "user": "j.user@example.com"}}))
        .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(keys(&v), ["status", "next", "events"]);
    assert_eq!(v["events"][0]["Action"], "Log in");
    assert!(v["events"][0]["ID"].is_string());
    // apiuser shows up as the actor of the request's own event.
    let v = env
        .json(
            "reporting",
            json!({"from": "2024-03-10 00:00:00", "search": "splunk.collector"}),
        )
        .await;
    assert_eq!(v["data"]["Event1"]["Username"], "API: splunk.collector");
    env.expect(
        "reporting",
        json!({"from": "yesterday"}),
        r#"{"status":"FAIL","error":"Invalid from date: yesterday"}"#,
    )
    .await;
}

#[tokio::test]
async fn expiredmasterpwlist_answers_capital_success() {
    let env = start_with(json!([
        {"username": "user1@lastpass.com", "password": "x"},
        {"username": "user2@lastpass.com", "password": "x"},
        {"username": "user3@lastpass.com", "password": "x"},
        {"username": "invitee@lastpass.com"}
    ]))
    .await;
    // Nothing expired yet.
    env.expect(
        "expiredmasterpwlist",
        json!(null),
        r#"{"status":"Success","continuation":{"remaining_item_count":0},"items":[]}"#,
    )
    .await;
    env.lp.clock().advance_us(91 * 86_400 * 1_000_000);
    let v = env.json("expiredmasterpwlist", json!({"limit": 2})).await;
    assert_eq!(keys(&v), ["status", "continuation", "items"]);
    assert_eq!(v["status"], "Success");
    assert_eq!(v["continuation"]["remaining_item_count"], 1);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(keys(&items[0]), ["user_id", "user_name", "last_pw_change"]);
    assert!(items[0]["user_id"].is_u64());
    assert_eq!(items[0]["user_name"], "user1@lastpass.com");
    assert_eq!(items[0]["last_pw_change"], "2024-03-10 08:00:00");
    let token = v["continuation"]["token"].as_str().unwrap().to_owned();
    assert_eq!(token, items[1]["user_id"].to_string());
    let v2 = env
        .json(
            "expiredmasterpwlist",
            json!({"limit": 2, "continuation_token": token}),
        )
        .await;
    assert_eq!(v2["items"].as_array().unwrap().len(), 1);
    assert_eq!(v2["items"][0]["user_name"], "user3@lastpass.com");
    assert!(v2["continuation"].get("token").is_none());
    env.expect(
        "expiredmasterpwlist",
        json!({"continuation_token": "abc"}),
        r#"{"status":"Failure","error":"Invalid continuation token: abc"}"#,
    )
    .await;
}

#[tokio::test]
async fn pushsitestousers_answers_string_psid() {
    let env = start_with(
        json!([{"username": "user1@lastpass.com", "password": "x", "groups": ["Support Group"]}]),
    )
    .await;
    let push = |users: &str| {
        json!({"users": users, "persistent": "1", "url": "https://example.com", "name": "Example",
               "group": "Pushed", "usernametype": "email", "username": "", "password": "", "notes": "",
               "fav": "", "decryptid": "0"})
    };
    for (users, want) in [
        ("all", r#"{"status":"OK","psid":"1"}"#),
        ("Support Group", r#"{"status":"OK","psid":"2"}"#),
        ("user1@lastpass.com", r#"{"status":"OK","psid":"3"}"#),
        (
            "Nobody Group",
            r#"{"status":"FAIL","error":"Invalid users: Nobody Group"}"#,
        ),
    ] {
        env.expect("pushsitestousers", push(users), want).await;
    }
}

#[tokio::test]
async fn unknown_and_missing_commands_fail() {
    let env = start(empty_seed()).await;
    env.expect(
        "getserdata",
        json!({"pagesize": 1}),
        r#"{"status":"FAIL","error":"Unknown command: getserdata"}"#,
    )
    .await;
    let (status, _, body) = env.raw(json!({"cid": CID, "provhash": HASH})).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"status":"FAIL","error":"No command specified"}"#)
    );
}
