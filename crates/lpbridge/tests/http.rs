//! In-process router tests of the service: every endpoint, the StackOne wire shapes, and every
//! refusal (401/403/404/400/413) naming the field. The LastPass side is the sandbox on
//! 127.0.0.1:0; the router is called directly (no socket).

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine as _;
use lastpass::{Cid, Secret};
use lp_types::ConnectionId;
use lpbridge::http::{self, App, Settings};
use lpbridge::store::{NewConnection, Store};
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{Value, json};
use tower::ServiceExt;

struct T {
    router: Router,
    app: App,
    sb: SandboxHandle,
    rw: String,
    ro: String,
    _dir: tempfile::TempDir,
}

async fn spawn_with(config: SandboxConfig, settings: Settings) -> T {
    let sb = sandbox::spawn(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let acct = sb.primary_account();
    store
        .create_connection(
            NewConnection {
                id: ConnectionId::new("acme").unwrap(),
                cid: Cid(acct.cid),
                endpoint: lastpass::parse_endpoint(&sb.lastpass_endpoint()).unwrap(),
                provhash: Secret::new(acct.provhash),
                time_zone: None,
            },
            false,
        )
        .await
        .unwrap();
    let (_, rw) = store.create_api_key("rw", false).await.unwrap();
    let (_, ro) = store.create_api_key("ro", true).await.unwrap();
    let app = App::new(store, settings);
    T {
        router: http::router(app.clone()),
        app,
        sb,
        rw: rw.expose().to_owned(),
        ro: ro.expose().to_owned(),
        _dir: dir,
    }
}

async fn spawn() -> T {
    spawn_with(SandboxConfig::for_tests(), Settings::default()).await
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl T {
    async fn req(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(bytes) => b
                .header("content-type", "application/json")
                .body(Body::from(bytes))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    async fn get(&self, uri: &str) -> Resp {
        self.req(Method::GET, uri, Some(&self.rw), &[], None).await
    }

    async fn send(&self, method: Method, uri: &str, body: Value) -> Resp {
        self.req(
            method,
            uri,
            Some(&self.rw),
            &[],
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
    }

    /// `DELETE uri` with a read-write key.
    async fn delete(&self, uri: &str) -> Resp {
        self.req(Method::DELETE, uri, Some(&self.rw), &[], None)
            .await
    }

    /// `PATCH /unified/iam/users/{id}` with a read-write key.
    async fn patch_user(&self, id: &str, body: Value) -> Resp {
        self.send(Method::PATCH, &format!("/unified/iam/users/{id}"), body)
            .await
    }

    /// The sandbox's view of a user (through a plain client).
    async fn upstream_user(&self, email: &str) -> Option<lastpass::User> {
        let acct = self.sb.primary_account();
        let c = lastpass::Client::new(
            lastpass::ClientConfig::new(lastpass::Credentials {
                cid: Cid(acct.cid),
                provhash: Secret::new(acct.provhash),
            })
            .with_endpoint(lastpass::parse_endpoint(&self.sb.lastpass_endpoint()).unwrap()),
        )
        .unwrap();
        c.get_user(&lastpass::Email::parse(email).unwrap())
            .await
            .unwrap()
    }
}

/// `getuserdata` requests the sandbox has seen.
/// `getuserdata` calls of one sweep of this seed: its 20 users fit one page, and it has pending
/// invitees, whose memberships only the unpaged group map shows.
const SWEEP: u64 = 2;

/// `getuserdata` calls so far.
fn sweeps(t: &T) -> Option<u64> {
    t.sb.stats().by_cmd.get("getuserdata").map(|c| c.requests)
}

/// A StackOne error body with this status, whose message contains `needle`.
fn assert_error(r: &Resp, status: u16, needle: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.body["statusCode"], status, "{}", r.text);
    let msg = r.body["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(needle),
        "message {msg:?} lacks {needle:?}: {}",
        r.text
    );
    assert!(r.body["timestamp"].is_string(), "{}", r.text);
    assert!(r.body["provider_errors"].is_array(), "{}", r.text);
}

async fn all_users(t: &T, page_size: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut uri = format!("/unified/iam/users?page_size={page_size}");
    loop {
        let r = t.get(&uri).await;
        assert_eq!(r.status, 200, "{}", r.text);
        out.extend(r.body["data"].as_array().unwrap().iter().cloned());
        match r.body["next"].as_str() {
            Some(n) => {
                uri = format!("/unified/iam/users?page_size={page_size}&next={n}");
            }
            None => break,
        }
    }
    out
}

/// The id (e-mail) of an enabled user.
async fn an_enabled_user(t: &T) -> String {
    let users = all_users(t, 100).await;
    users
        .iter()
        .find(|u| u["status"]["value"] == "enabled")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn users_list_is_stackone_shaped_and_cursor_walk_sees_everyone_once() {
    let t = spawn().await;
    let users = all_users(&t, 7).await;
    let all = all_users(&t, 1000).await;
    assert_eq!(users, all);
    let emails: Vec<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
    let mut sorted = emails.clone();
    sorted.sort_by_key(|e| e.to_lowercase());
    sorted.dedup();
    assert_eq!(emails, sorted, "sorted and without duplicates");
    // 20 directory users plus the pending invitees.
    assert!(users.len() >= 20, "{}", users.len());
    for u in &users {
        assert_eq!(u["primary_email_address"], u["id"]);
        assert!(matches!(
            u["status"]["value"].as_str(),
            Some("enabled" | "disabled" | "pending")
        ));
        assert!(u["status"]["source_value"].is_string());
        let role = u["roles"][0]["id"].as_str().unwrap();
        assert!(role == "admin" || role == "basic");
        assert_eq!(u["roles"][0]["type"]["value"], role);
        assert_eq!(u["is_bot_user"], false);
        assert!(u["groups"].is_array());
        assert!(u.get("last_login_at").is_some() && u.get("created_at").is_some());
    }
    let statuses: std::collections::HashSet<&str> = users
        .iter()
        .map(|u| u["status"]["value"].as_str().unwrap())
        .collect();
    assert!(statuses.contains("pending"), "{statuses:?}");
    assert!(statuses.contains("enabled"), "{statuses:?}");
    // Timestamps are UTC RFC 3339.
    let created = users.iter().find_map(|u| u["created_at"].as_str()).unwrap();
    assert!(created.ends_with('Z'), "{created}");
    // N concurrent readers and the walks above: one sweep.
    assert_eq!(sweeps(&t), Some(SWEEP));
}

#[tokio::test]
async fn concurrent_cold_lists_share_one_upstream_sweep() {
    let t = spawn().await;
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let router = t.router.clone();
        let key = t.rw.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::get("/unified/iam/users?page_size=5")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(sweeps(&t), Some(SWEEP));
}

#[tokio::test]
async fn fields_filter_and_raw() {
    let t = spawn().await;
    let r = t
        .get("/unified/iam/users?fields=id,status&page_size=3")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for u in r.body["data"].as_array().unwrap() {
        let keys: Vec<&String> = u.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "{u}");
    }
    let first = r.body["data"][0]["id"].as_str().unwrap().to_uppercase();
    let r = t
        .get(&format!("/unified/iam/users?filter%5Bemail%5D={first}"))
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{}", r.text);
    let r = t.get("/unified/iam/users?raw=true&page_size=2").await;
    assert_eq!(r.status, 200);
    let raw = r.body["raw"].as_array().unwrap();
    assert_eq!(raw[0]["body"]["cmd"], "getuserdata");
    assert_eq!(raw[0]["body"]["provhash"], "***");
    assert!(!r.text.contains(&t.sb.primary_account().provhash));
    for (q, field) in [
        ("fields=nope", "fields"),
        ("page_size=0", "page_size"),
        ("page_size=1001", "page_size"),
        ("next=garbage", "next"),
        ("expand=policies", "expand"),
        ("filter%5Bupdated_after%5D=yesterday", "updated_after"),
        ("colour=red", "colour"),
    ] {
        let r = t.get(&format!("/unified/iam/users?{q}")).await;
        assert_error(&r, 400, field);
    }
    // A cursor of another endpoint is refused too.
    let g = t.get("/unified/iam/groups?page_size=1").await;
    if let Some(n) = g.body["next"].as_str() {
        assert_error(
            &t.get(&format!("/unified/iam/users?next={n}")).await,
            400,
            "next",
        );
    }
}

#[tokio::test]
async fn get_patch_and_delete_a_user() {
    let t = spawn().await;
    let users = all_users(&t, 100).await;
    let u = users
        .iter()
        .find(|u| u["status"]["value"] == "enabled" && u["roles"][0]["id"] == "basic")
        .unwrap();
    let id = u["id"].as_str().unwrap();
    let r = t.get(&format!("/unified/iam/users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["id"], id);
    // By LastPass numeric id too.
    let r2 = t
        .get(&format!(
            "/unified/iam/users/{}",
            u["remote_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r2.body["data"]["id"], id, "{}", r2.text);

    let r = t
        .patch_user(
            id,
            json!({"name": "Renamed Person", "status": {"value": "disabled"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["statusCode"], 200);
    let up = t.upstream_user(id).await.unwrap();
    assert!(up.disabled);
    assert_eq!(up.fullname, "Renamed Person");
    // The snapshot was patched, not swept again.
    let calls = sweeps(&t);
    let r = t.get(&format!("/unified/iam/users/{id}")).await;
    assert_eq!(r.body["data"]["status"]["value"], "disabled");
    assert_eq!(r.body["data"]["first_name"], "Renamed");
    assert_eq!(sweeps(&t), calls);
    let r = t.patch_user(id, json!({"status": "enabled"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!t.upstream_user(id).await.unwrap().disabled);

    for (body, field) in [
        (json!({"status": {"value": "pending"}}), "status.value"),
        (json!({"name": 5}), "name"),
        (
            json!({"primary_email_address": "x@y.com"}),
            "primary_email_address",
        ),
        (json!({}), "body"),
        (json!([1]), "body"),
    ] {
        assert_error(&t.patch_user(id, body).await, 400, field);
    }
    assert_error(
        &t.patch_user("nobody@example.com", json!({"name": "x"}))
            .await,
        404,
        "nobody@example.com",
    );

    // DELETE: deactivate by default, then a real delete.
    let r = t.delete(&format!("/unified/iam/users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(t.upstream_user(id).await.unwrap().disabled);
    let r = t
        .delete(&format!("/unified/iam/users/{id}?delete_action=delete"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(t.upstream_user(id).await.is_none());
    assert_error(&t.get(&format!("/unified/iam/users/{id}")).await, 404, id);
    assert_error(
        &t.delete("/unified/iam/users/a@b.com?delete_action=nuke")
            .await,
        400,
        "delete_action",
    );
    assert_error(&t.get("/unified/iam/users/not-an-email").await, 400, "id");
}

#[tokio::test]
async fn groups_roles_orgs_me_resources() {
    let t = spawn().await;
    let r = t.get("/unified/iam/groups?page_size=100").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let groups = r.body["data"].as_array().unwrap();
    assert!(!groups.is_empty());
    let g = &groups[0];
    assert_eq!(g["id"], g["name"]);
    assert_eq!(g["type"]["value"], "group");
    assert!(!g["users"].as_array().unwrap().is_empty());
    let name = g["id"].as_str().unwrap();
    let r = t
        .get(&format!(
            "/unified/iam/groups/{}?expand=users",
            urlencode(name)
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["data"]["users"][0]["status"].is_object());
    assert_error(
        &t.get("/unified/iam/groups/NoSuchGroup").await,
        404,
        "NoSuchGroup",
    );

    let r = t.get("/unified/iam/roles").await;
    let ids: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["admin", "basic"]);
    assert_eq!(
        t.get("/unified/iam/roles/admin").await.body["data"]["type"]["value"],
        "admin"
    );
    assert_error(&t.get("/unified/iam/roles/editor").await, 400, "editor");

    let cid = t.sb.primary_account().cid.to_string();
    let r = t.get("/unified/iam/organizations").await;
    assert_eq!(r.body["data"][0]["id"], cid.as_str());
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        t.get(&format!("/unified/iam/organizations/{cid}"))
            .await
            .body["data"]["id"],
        cid.as_str()
    );
    assert_error(&t.get("/unified/iam/organizations/42").await, 404, "42");

    let r = t.get("/unified/iam/me").await;
    assert_eq!(r.body["data"]["auth_type"]["value"], "api_key");
    assert_eq!(r.body["data"]["name"], cid.as_str());
    assert_eq!(
        t.get("/unified/iam/resource_types").await.body["data"],
        json!(["shared_folder"])
    );

    let r = t.get("/unified/iam/resources?page_size=100").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let folders = r.body["data"].as_array().unwrap();
    assert!(!folders.is_empty());
    assert_eq!(folders[0]["type"]["value"], "folder");
    let fid = folders[0]["id"].as_str().unwrap();
    assert_eq!(
        t.get(&format!("/unified/iam/resources/{fid}")).await.body["data"]["id"],
        fid
    );
    let r = t
        .get(&format!(
            "/unified/iam/resource_users?resource_type=shared_folder&resource_id={fid}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for m in r.body["data"].as_array().unwrap() {
        let role = &m["roles"][0];
        assert!(matches!(
            role["remote_id"].as_str(),
            Some("admin" | "editor" | "viewer")
        ));
        assert_eq!(role["scope"]["resource_id"], fid);
    }
    assert_error(
        &t.get(&format!("/unified/iam/resource_users?resource_id={fid}"))
            .await,
        400,
        "resource_type",
    );
    assert_error(
        &t.get("/unified/iam/resource_users?resource_type=shared_folder")
            .await,
        400,
        "resource_id",
    );
    assert_error(
        &t.get("/unified/iam/resource_users?resource_type=shared_folder&resource_id=999999999")
            .await,
        404,
        "999999999",
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn authentication_and_authorisation() {
    let t = spawn().await;
    let r = t
        .req(Method::GET, "/unified/iam/users", None, &[], None)
        .await;
    assert_error(&r, 401, "API key");
    assert!(r.headers.contains_key("www-authenticate"));
    assert_error(
        &t.req(
            Method::GET,
            "/unified/iam/users",
            Some("lpb_nope_x"),
            &[],
            None,
        )
        .await,
        401,
        "unknown or revoked",
    );
    // HTTP Basic with the key as the username, as StackOne sends it.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:", t.rw));
    let r = t
        .req(
            Method::GET,
            "/unified/iam/roles",
            None,
            &[("authorization", &format!("Basic {basic}"))],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A read-only key reads but may not write.
    let r = t
        .req(Method::GET, "/unified/iam/roles", Some(&t.ro), &[], None)
        .await;
    assert_eq!(r.status, 200);
    let r = t
        .req(
            Method::PATCH,
            "/unified/iam/users/a@example.com",
            Some(&t.ro),
            &[],
            Some(br#"{"name":"x"}"#.to_vec()),
        )
        .await;
    assert_error(&r, 403, "read-only");
    // A revoked key stops working at once.
    let keys = t.app.store.list_api_keys().await.unwrap();
    let ro = keys.iter().find(|k| k.read_only).unwrap();
    assert!(t.app.store.revoke_api_key(&ro.id).await.unwrap());
    assert_error(
        &t.req(Method::GET, "/unified/iam/roles", Some(&t.ro), &[], None)
            .await,
        401,
        "revoked",
    );
}

#[tokio::test]
async fn account_header_selects_the_connection() {
    let t = spawn_with(
        SandboxConfig::for_tests().add_accounts(1),
        Settings::default(),
    )
    .await;
    // One connection: the header may be omitted; an unknown one is refused.
    assert_eq!(t.get("/unified/iam/organizations").await.status, 200);
    assert_error(
        &t.req(
            Method::GET,
            "/unified/iam/users",
            Some(&t.rw),
            &[("x-account-id", "ghost")],
            None,
        )
        .await,
        404,
        "ghost",
    );
    // A second connection through the API; now the header is required.
    let second = t.sb.lastpass.accounts()[1].clone();
    let r = t
        .send(
            Method::POST,
            "/connections",
            json!({"id": "customer-1", "cid": second.cid, "provhash": second.provhash,
                   "endpoint": t.sb.lastpass_endpoint()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        !r.text.contains(&second.provhash),
        "secret echoed: {}",
        r.text
    );
    assert_error(
        &t.get("/unified/iam/organizations").await,
        400,
        "x-account-id",
    );
    let r = t
        .req(
            Method::GET,
            "/unified/iam/organizations",
            Some(&t.rw),
            &[("x-account-id", "customer-1")],
            None,
        )
        .await;
    assert_eq!(r.body["data"][0]["id"], second.cid.to_string());
    // Connection CRUD.
    let r = t.get("/connections").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    assert!(!r.text.contains("provhash"), "{}", r.text);
    let r = t
        .send(
            Method::PATCH,
            "/connections/customer-1",
            json!({"time_zone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(r.body["data"]["time_zone"], "Europe/Berlin", "{}", r.text);
    assert_error(
        &t.send(
            Method::PATCH,
            "/connections/customer-1",
            json!({"time_zone": "Mars/Base"}),
        )
        .await,
        400,
        "time_zone",
    );
    assert_error(
        &t.send(
            Method::POST,
            "/connections",
            json!({"id": "x", "cid": 1, "provhash": "p", "endpoint": "http://example.com/enterpriseapi.php"}),
        )
        .await,
        400,
        "endpoint",
    );
    assert_error(
        &t.send(
            Method::POST,
            "/connections",
            json!({"id": "y", "cid": "abc", "provhash": "p"}),
        )
        .await,
        400,
        "cid",
    );
    let r = t.delete("/connections/customer-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(t.get("/unified/iam/organizations").await.status, 200);
}

#[tokio::test]
async fn bad_credentials_surface_as_401_with_provider_errors() {
    let t = spawn().await;
    let r = t
        .send(
            Method::PATCH,
            "/connections/acme",
            json!({"provhash": "wrong"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = t.get("/unified/iam/me").await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["provider_errors"][0]["status"], 200);
    assert!(!r.text.contains("wrong"));
}

#[tokio::test]
async fn bodies_are_limited_and_validated() {
    let t = spawn_with(
        SandboxConfig::for_tests(),
        Settings {
            max_body_bytes: 2048,
            ..Settings::default()
        },
    )
    .await;
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(4096));
    let r = t
        .req(
            Method::PATCH,
            "/unified/iam/users/a@example.com",
            Some(&t.rw),
            &[],
            Some(big.into_bytes()),
        )
        .await;
    assert_error(&r, 413, "2048");
    let r = t
        .req(
            Method::PATCH,
            "/unified/iam/users/a@example.com",
            Some(&t.rw),
            &[],
            Some(b"{\"name\":".to_vec()),
        )
        .await;
    assert_error(&r, 400, "not valid JSON");
    let r = t
        .req(
            Method::POST,
            "/actions/lastpass_reinvite_user",
            Some(&t.rw),
            &[],
            Some(vec![b'x'; 4096]),
        )
        .await;
    assert_error(&r, 413, "2048");
}

#[tokio::test]
async fn actions_catalogue_and_runs() {
    let t = spawn().await;
    let r = t.get("/actions").await;
    assert_eq!(r.status, 200);
    let list = r.body["data"].as_array().unwrap();
    assert!(list.len() >= 30, "{}", list.len());
    for a in list {
        let name = a["name"].as_str().unwrap();
        assert!(name.starts_with("lastpass_"), "{name}");
        assert_eq!(a["input_schema"]["type"], "object", "{name}");
    }
    assert_error(&t.get("/actions/lastpass_fly").await, 404, "lastpass_fly");
    assert_error(
        &t.send(Method::POST, "/actions/lastpass_fly", json!({}))
            .await,
        404,
        "lastpass_fly",
    );
    // A unified action, routed to the unified module.
    let r = t
        .send(
            Method::POST,
            "/actions/lastpass_unified_list_roles",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    // A write with a read-only key.
    let r = t
        .req(
            Method::POST,
            "/actions/lastpass_disable_mfa",
            Some(&t.ro),
            &[],
            Some(br#"{"email":"a@example.com"}"#.to_vec()),
        )
        .await;
    assert_error(&r, 403, "read-only");
    // Invalid input names the field.
    let r = t
        .send(
            Method::POST,
            "/actions/lastpass_get_user",
            json!({"email": 12}),
        )
        .await;
    assert_error(&r, 400, "email");
}

#[tokio::test]
async fn proxy_reaches_only_the_connection_endpoint() {
    let t = spawn().await;
    let r = t
        .send(
            Method::POST,
            "/unified/proxy",
            json!({"method": "post", "body": {"cmd": "getuserdata", "data": {"pagesize": 1, "pageindex": 0}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.text.contains(&t.sb.primary_account().provhash));
    let r = t
        .send(
            Method::POST,
            "/unified/proxy",
            json!({"url": "http://169.254.169.254/latest", "body": {"cmd": "getuserdata"}}),
        )
        .await;
    assert_error(&r, 400, "url");
}

#[tokio::test]
async fn operations_endpoints_and_openapi_cover_every_route() {
    let t = spawn().await;
    assert_eq!(
        t.req(Method::GET, "/healthz", None, &[], None).await.status,
        200
    );
    let r = t.req(Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(r.body["store"], "sqlite", "{}", r.text);
    let doc = t
        .req(Method::GET, "/openapi.json", None, &[], None)
        .await
        .body;
    assert_eq!(doc["openapi"], "3.1.0");
    // Every documented operation is routed (never the 404 fallback or a 405).
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let uri = path
                .replace("{id}", "probe@example.com")
                .replace("{name}", "lastpass_unified_list_roles");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = t.req(m, &uri, Some(&t.rw), &[], Some(b"{}".to_vec())).await;
            assert_ne!(r.status, 405, "{method} {path}: {}", r.text);
            assert!(
                !r.text.contains("no such endpoint"),
                "{method} {path} is documented but not routed"
            );
        }
    }
    // Every component reference resolves.
    let text = doc.to_string();
    for cap in text.split("#/components/schemas/").skip(1) {
        let name: String = cap.chars().take_while(|c| *c != '"').collect();
        assert!(doc["components"]["schemas"].get(&name).is_some(), "{name}");
    }
    assert_error(
        &t.get("/unified/iam/nothing").await,
        404,
        "no such endpoint",
    );
    let r = t.req(Method::PUT, "/healthz", None, &[], None).await;
    assert_eq!(r.status, 405);
    let m = t.req(Method::GET, "/metrics", None, &[], None).await.text;
    assert!(
        m.contains("lpbridge_http_requests_total{method=\"GET\",route=\"/unified/iam/users/{id}\""),
        "{m}"
    );
    assert!(m.contains("lpbridge_upstream_requests_total{connection=\"acme\",command=\"getuserdata\",outcome=\"ok\"}"), "{m}");
}

#[tokio::test]
async fn read_commands_through_the_proxy_keep_the_snapshot_and_allow_read_only_keys() {
    let t = spawn().await;
    assert_eq!(t.get("/unified/iam/users?page_size=1").await.status, 200);
    let before = sweeps(&t);
    let body = br#"{"method":"post","body":{"cmd":"getsfdata","data":"all"}}"#.to_vec();
    let r = t
        .req(Method::POST, "/unified/proxy", Some(&t.ro), &[], Some(body))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(t.get("/unified/iam/users?page_size=1").await.status, 200);
    assert_eq!(
        sweeps(&t),
        before,
        "a read must not invalidate the snapshot"
    );
    // A write command needs a read-write key, and invalidates.
    let w = br#"{"method":"post","body":{"cmd":"reinviteuser","data":{"username":"nobody@example.com"}}}"#;
    let r = t
        .req(
            Method::POST,
            "/unified/proxy",
            Some(&t.ro),
            &[],
            Some(w.to_vec()),
        )
        .await;
    assert_error(&r, 403, "read-only");
    let _ = t
        .req(
            Method::POST,
            "/unified/proxy",
            Some(&t.rw),
            &[],
            Some(w.to_vec()),
        )
        .await;
    assert_eq!(t.get("/unified/iam/users?page_size=1").await.status, 200);
    assert_eq!(sweeps(&t), before.map(|n| n + SWEEP), "a write invalidates");
}

#[tokio::test]
async fn a_key_limited_to_some_connections_is_forbidden_elsewhere() {
    let t = spawn_with(
        SandboxConfig::for_tests().add_accounts(1),
        Settings::default(),
    )
    .await;
    let second = t.sb.lastpass.accounts()[1].clone();
    let r = t
        .send(
            Method::POST,
            "/connections",
            json!({"id": "other", "cid": second.cid, "provhash": second.provhash,
                   "endpoint": t.sb.lastpass_endpoint()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let acme = ConnectionId::new("acme").unwrap();
    let (_, scoped) = t
        .app
        .store
        .create_api_key_for("acme-only", false, Some(std::slice::from_ref(&acme)))
        .await
        .unwrap();
    let k = scoped.expose();
    // Its only connection may be implied; the other is forbidden, by name.
    let r = t
        .req(
            Method::GET,
            "/unified/iam/organizations",
            Some(k),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = t
        .req(
            Method::GET,
            "/unified/iam/users",
            Some(k),
            &[("x-account-id", "other")],
            None,
        )
        .await;
    assert_error(&r, 403, "other");
    let r = t.req(Method::GET, "/connections", Some(k), &[], None).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{}", r.text);
    assert_error(
        &t.req(Method::GET, "/connections/other", Some(k), &[], None)
            .await,
        403,
        "other",
    );
    let r = t
        .req(Method::DELETE, "/connections/acme", Some(k), &[], None)
        .await;
    assert_error(&r, 403, "cannot manage connections");
    let r = t
        .req(
            Method::POST,
            "/actions/lastpass_unified_list_roles",
            Some(k),
            &[("x-account-id", "other")],
            None,
        )
        .await;
    assert_error(&r, 403, "other");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_never_quoted_back() {
    let t = spawn().await;
    // Cut short: the provisioning hash must not come back in the 400.
    let body = br#"{"id":"leaky","cid":1,"provhash":"S3cret-Provhash-Value""#.to_vec();
    let r = t
        .req(Method::POST, "/connections", Some(&t.rw), &[], Some(body))
        .await;
    assert_error(&r, 400, "not valid JSON");
    assert!(!r.text.contains("S3cret-Provhash-Value"), "{}", r.text);
    let body = br#"{"email":"a@example.com","default_password":"Hunter2-Passw0rd"#.to_vec();
    let r = t
        .req(
            Method::POST,
            "/actions/lastpass_invite_user",
            Some(&t.rw),
            &[],
            Some(body),
        )
        .await;
    assert_error(&r, 400, "not valid JSON");
    assert!(!r.text.contains("Hunter2"), "{}", r.text);
}

#[tokio::test]
async fn key_and_action_are_checked_before_the_body() {
    let t = spawn_with(
        SandboxConfig::for_tests(),
        Settings {
            max_body_bytes: 2048,
            ..Settings::default()
        },
    )
    .await;
    let big = vec![b'x'; 4096];
    let bad = b"{".to_vec();
    // A read-only key on a write is a 403, whatever the body.
    for (method, uri) in [
        (Method::PATCH, "/unified/iam/users/a@example.com"),
        (Method::POST, "/actions/lastpass_disable_mfa"),
        (Method::POST, "/connections"),
        (Method::PATCH, "/connections/acme"),
    ] {
        for body in [&big, &bad] {
            let r = t
                .req(method.clone(), uri, Some(&t.ro), &[], Some(body.clone()))
                .await;
            assert_error(&r, 403, "read-only");
        }
    }
    let r = t
        .req(
            Method::DELETE,
            "/unified/iam/users/a@example.com",
            Some(&t.ro),
            &[("x-account-id", "ghost")],
            None,
        )
        .await;
    assert_error(&r, 403, "read-only");
    // An unknown action is a 404, whatever the body.
    for body in [&big, &bad] {
        let r = t
            .req(
                Method::POST,
                "/actions/lastpass_fly",
                Some(&t.rw),
                &[],
                Some(body.clone()),
            )
            .await;
        assert_error(&r, 404, "lastpass_fly");
    }
}

#[tokio::test]
async fn patch_keeps_the_half_of_the_name_not_sent_and_unknown_ids_are_404() {
    let t = spawn().await;
    let id = &an_enabled_user(&t).await;
    // Each PATCH, then the full name upstream (when checked).
    for (body, fullname) in [
        (json!({"name": "Ada Lovelace"}), None),
        (json!({"last_name": "Byron"}), Some("Ada Byron")),
        (json!({"first_name": "Augusta"}), Some("Augusta Byron")),
    ] {
        let r = t.patch_user(id, body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if let Some(fullname) = fullname {
            assert_eq!(t.upstream_user(id).await.unwrap().fullname, fullname);
        }
    }
    // A refused field is named as itself.
    let r = t
        .patch_user(id, json!({"password": "Hunter2-Passw0rd"}))
        .await;
    assert_error(&r, 400, "invalid password");
    assert!(!r.text.contains("Hunter2"), "{}", r.text);
    // A LastPass numeric id that does not exist is a 404, not a 400.
    assert_error(
        &t.get("/unified/iam/users/999999999").await,
        404,
        "999999999",
    );
    // `fields=` is checked even when the page is empty.
    assert_error(
        &t.get("/unified/iam/users?filter%5Bemail%5D=nobody%40example.com&fields=nope")
            .await,
        400,
        "fields",
    );
}

#[tokio::test]
async fn a_patch_that_fails_half_way_drops_the_snapshot() {
    use sandbox::faults::{FaultKind, FaultRule};
    let t = spawn_with(
        SandboxConfig::for_tests(),
        Settings {
            client: http::ClientSettings {
                attempts: 1,
                ..http::ClientSettings::default()
            },
            ..Settings::default()
        },
    )
    .await;
    let id = &an_enabled_user(&t).await;
    let rule = t.sb.faults.add(FaultRule::new(
        "disableuser",
        FaultKind::Status { status: 500 },
    ));
    let r = t
        .patch_user(id, json!({"name": "Half Applied", "status": "disabled"}))
        .await;
    assert!(r.status.is_server_error(), "{}", r.text);
    t.sb.faults.remove(rule);
    // The name was changed upstream; the snapshot must not keep the old one.
    assert_eq!(t.upstream_user(id).await.unwrap().fullname, "Half Applied");
    let r = t.get(&format!("/unified/iam/users/{id}")).await;
    assert_eq!(r.body["data"]["name"], "Half Applied", "{}", r.text);
}

#[tokio::test]
async fn folder_members_do_not_cost_a_directory_sweep() {
    let t = spawn().await;
    let r = t.get("/unified/iam/resources?page_size=1").await;
    let fid = r.body["data"][0]["id"].as_str().unwrap().to_owned();
    let r = t
        .get(&format!(
            "/unified/iam/resource_users?resource_type=shared_folder&resource_id={fid}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        sweeps(&t).unwrap_or(0),
        0,
        "a cold snapshot is not swept for names"
    );
}

#[tokio::test]
async fn metrics_keep_one_series_per_standard_method() {
    let t = spawn().await;
    for m in ["FOO", "BAR"] {
        let r = t
            .req(
                Method::from_bytes(m.as_bytes()).unwrap(),
                "/healthz",
                None,
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, 405);
    }
    let m = t.req(Method::GET, "/metrics", None, &[], None).await.text;
    assert!(!m.contains("FOO") && !m.contains("BAR"), "{m}");
    assert!(m.contains("method=\"OTHER\""), "{m}");
}

#[tokio::test]
async fn unified_actions_refuse_a_filter_that_is_not_an_object() {
    let t = spawn().await;
    let r = t
        .send(
            Method::POST,
            "/actions/lastpass_unified_list_users",
            json!({"filter": "a@example.com"}),
        )
        .await;
    assert_error(&r, 400, "filter");
    let r = t
        .send(
            Method::POST,
            "/actions/lastpass_unified_list_users",
            json!({"filter": {"email": "nobody@example.com"}, "page_size": 5}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"], json!([]), "{}", r.text);
}

/// A rate limit that refused the whole call reaches the caller as 429 with `Retry-After`, not
/// as a success listing failed addresses.
#[tokio::test]
async fn a_rate_limited_toggle_action_answers_429() {
    let t = spawn().await;
    let id = an_enabled_user(&t).await;
    let rule = t.sb.faults.add(sandbox::faults::FaultRule::new(
        "disableuser",
        sandbox::faults::FaultKind::Status { status: 429 },
    ));
    let r = t
        .send(
            Method::POST,
            "/actions/lastpass_disable_user",
            json!({"email": id}),
        )
        .await;
    t.sb.faults.remove(rule);
    assert_error(&r, 429, "rate limited");
    assert!(r.headers.contains_key("retry-after"), "{:?}", r.headers);
    assert!(!t.upstream_user(&id).await.unwrap().disabled);
}
