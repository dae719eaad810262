//! The SCIM 2.0 endpoints (`/scim/v2`) end to end over real HTTP on 127.0.0.1: the Okta SCIM 2.0
//! spec test (R1–R12), Entra ID's request sequences, one test per identity-provider quirk (Q1–Q13
//! of the research notes §2.5), refusals that must change nothing, discovery, tokens, `userName`
//! changes and upstream call counts.
//!
//! Each test gets its own service (a store on a temp dir, `lpbridge::http::router` served on
//! 127.0.0.1:0) over its own in-process sandbox (30 users, 3 groups, seed 42, frozen clock). The
//! LastPass side is checked in-process: `inspect_user` / `inspect_account`, and an uncounted
//! `getuserdata` through `LastPass::execute` for the user list; upstream calls through the
//! sandbox's request counters.

use std::net::IpAddr;

use lastpass::{Cid, DeleteAction, Secret};
use lp_types::ConnectionId;
use lpbridge::http::{self, App, Settings};
use lpbridge::store::scim::{ScimGroupRow, ScimUserRow};
use lpbridge::store::{NewConnection, Store};
use reqwest::Method;
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json";
const SEEDED_USERS: usize = 30;

// ---- harness ------------------------------------------------------------------------------

struct T {
    base: String,
    http: reqwest::Client,
    token: String,
    store: Store,
    conn: ConnectionId,
    settings: Settings,
    sb: SandboxHandle,
    cid: u64,
    servers: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for T {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

/// The whole service for `app`, on a free loopback port.
async fn serve(app: &App) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let router = http::router(app.clone());
    let handle = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (format!("http://{addr}"), handle)
}

async fn spawn_with(settings: Settings) -> T {
    let mut config = SandboxConfig::for_tests();
    config.lastpass.accounts[0].seed.users = SEEDED_USERS;
    let sb = sandbox::spawn(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let acct = sb.primary_account();
    let conn = ConnectionId::new("acme").unwrap();
    store
        .create_connection(
            NewConnection {
                id: conn.clone(),
                cid: Cid(acct.cid),
                endpoint: lastpass::parse_endpoint(&sb.lastpass_endpoint()).unwrap(),
                provhash: Secret::new(acct.provhash),
                time_zone: None,
            },
            false,
        )
        .await
        .unwrap();
    let (_, token) = store.create_scim_token("idp", &conn).await.unwrap();
    let app = App::new(store.clone(), settings.clone());
    let (base, server) = serve(&app).await;
    T {
        base,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        token: token.expose().to_owned(),
        store,
        conn,
        settings,
        cid: acct.cid,
        sb,
        servers: vec![server],
        _dir: dir,
    }
}

async fn spawn() -> T {
    spawn_with(Settings::default()).await
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `filter=<f>`, URL-encoded.
fn filter_q(f: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", f)
        .finish()
}

/// `filter=userName eq "<name>"`, URL-encoded.
fn by_name(name: &str) -> String {
    filter_q(&format!("userName eq \"{name}\""))
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": ops})
}

impl T {
    fn url(&self, path: &str) -> String {
        format!("{}/scim/v2{path}", self.base)
    }

    async fn request_at(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut rb = self.http.request(method, url).header("accept", SCIM_JSON);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", SCIM_JSON).body(b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    /// A request under `/scim/v2` with the SCIM token.
    async fn req(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        self.req_to(&self.base, method, path, body).await
    }

    /// A request under `/scim/v2` of the service at `base`, with the SCIM token.
    async fn req_to(&self, base: &str, method: Method, path: &str, body: Option<&Value>) -> Resp {
        let body = body.map(|b| serde_json::to_vec(b).unwrap());
        let url = format!("{base}/scim/v2{path}");
        self.request_at(method, &url, Some(&self.token), body).await
    }

    /// Another replica: a fresh App over the same store, so with no snapshot yet.
    async fn replica(&self) -> Replica<'_> {
        let app = App::new(self.store.clone(), self.settings.clone());
        let (base, server) = serve(&app).await;
        Replica {
            t: self,
            base,
            server,
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.req(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Resp {
        self.req(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: &Value) -> Resp {
        self.req(Method::PUT, path, Some(body)).await
    }

    /// PATCH with a PatchOp body made of `ops`.
    async fn patch(&self, path: &str, ops: Value) -> Resp {
        self.req(Method::PATCH, path, Some(&patch_body(ops))).await
    }

    async fn delete(&self, path: &str) -> Resp {
        self.req(Method::DELETE, path, None).await
    }

    /// The one User with this `userName` (asserts the filter finds exactly one).
    async fn user_by_name(&self, name: &str) -> Value {
        let r = self.get(&format!("/Users?{}", by_name(name))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["totalResults"], 1, "{name}: {}", r.text);
        r.body["Resources"][0].clone()
    }

    async fn user_id(&self, name: &str) -> String {
        self.user_by_name(name).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `POST /Users` of a minimal user; returns its id.
    async fn create_user(&self, name: &str) -> String {
        let r = self
            .post(
                "/Users",
                &json!({"schemas": [USER_SCHEMA], "userName": name, "active": true}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// `POST /Groups`; returns its id.
    async fn create_group(&self, name: &str, member_ids: &[&str]) -> String {
        let members: Vec<Value> = member_ids.iter().map(|id| json!({"value": id})).collect();
        let r = self
            .post(
                "/Groups",
                &json!({"schemas": [GROUP_SCHEMA], "displayName": name, "members": members}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    }

    // ---- the LastPass side (in-process, never counted) --------------------------------

    fn lp_user(&self, username: &str) -> Option<Value> {
        self.sb.lastpass.inspect_user(self.cid, username)
    }

    /// The LastPass groups of a user (empty when the user is gone).
    fn lp_groups(&self, username: &str) -> Vec<String> {
        self.lp_user(username)
            .and_then(|u| u["groups"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect()
    }

    fn lp_account(&self) -> Value {
        self.sb.lastpass.inspect_account(self.cid).unwrap()
    }

    /// Every LastPass username (directory users and pending invitees), sorted.
    fn lp_usernames(&self) -> Vec<String> {
        let acct = self.sb.primary_account();
        let req =
            json!({"cid": acct.cid, "provhash": acct.provhash, "cmd": "getuserdata", "data": {}});
        let (status, body) = self.sb.lastpass.execute(
            &serde_json::to_vec(&req).unwrap(),
            Some("application/json"),
            IpAddr::from([127, 0, 0, 1]),
        );
        assert!(status.is_success(), "{status}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        let mut names: Vec<String> = v["Users"]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|u| u["username"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names.extend(
            v["invited"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_owned)),
        );
        names.sort();
        names
    }

    /// Every stored LastPass user record, and the account's groups and pending e-mail changes.
    fn lp_state(&self) -> Value {
        let users: Vec<Value> = self
            .lp_usernames()
            .iter()
            .map(|n| self.lp_user(n).unwrap())
            .collect();
        let acct = self.lp_account();
        json!({
            "users": users,
            "groups": acct["groups"],
            "pending_email_changes": acct["pending_email_changes"],
        })
    }

    /// Seeded users LastPass shows as active, not admins, with a two-part full name and no
    /// pending e-mail change: `(username, fullname)`, by username.
    fn seeded_active(&self) -> Vec<(String, String)> {
        self.lp_usernames()
            .iter()
            .filter_map(|n| self.lp_user(n))
            .filter(|u| {
                u["state"] == "active"
                    && u["admin"] == false
                    && u["pending_email"].is_null()
                    && u["fullname"]
                        .as_str()
                        .is_some_and(|f| f.split(' ').count() == 2)
            })
            .map(|u| {
                (
                    u["username"].as_str().unwrap().to_owned(),
                    u["fullname"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn lp_requests(&self, cmd: &str) -> u64 {
        self.sb.stats().requests_for(cmd)
    }

    // ---- whole state, for "a refused request changes nothing" -------------------------

    async fn state(&self) -> State {
        let list = self.get("/Users").await;
        assert_eq!(list.status, 200, "{}", list.text);
        let groups = self.get("/Groups").await;
        assert_eq!(groups.status, 200, "{}", groups.text);
        let mut users = self.store.scim_users(&self.conn).await.unwrap();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        let mut group_rows = self.store.scim_groups(&self.conn).await.unwrap();
        group_rows.sort_by(|a, b| a.id.cmp(&b.id));
        State {
            total_users: list.body["totalResults"].as_u64().unwrap(),
            total_groups: groups.body["totalResults"].as_u64().unwrap(),
            users,
            groups: group_rows,
            lastpass: self.lp_state(),
        }
    }

    async fn assert_unchanged(&self, before: &State, what: &str) {
        let after = self.state().await;
        assert_eq!(
            before.total_users, after.total_users,
            "{what}: GET /Users totalResults"
        );
        assert_eq!(
            before.total_groups, after.total_groups,
            "{what}: GET /Groups totalResults"
        );
        assert_eq!(before.users, after.users, "{what}: SCIM user rows");
        assert_eq!(before.groups, after.groups, "{what}: SCIM group rows");
        assert_eq!(before.lastpass, after.lastpass, "{what}: LastPass state");
    }
}

/// A second service over a harness's store (see [`T::replica`]); stopped when dropped.
struct Replica<'a> {
    t: &'a T,
    base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Replica<'_> {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Replica<'_> {
    async fn get(&self, path: &str) -> Resp {
        self.t.req_to(&self.base, Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Resp {
        self.t
            .req_to(&self.base, Method::POST, path, Some(body))
            .await
    }

    async fn patch(&self, path: &str, ops: Value) -> Resp {
        self.t
            .req_to(&self.base, Method::PATCH, path, Some(&patch_body(ops)))
            .await
    }

    async fn delete(&self, path: &str) -> Resp {
        self.t.req_to(&self.base, Method::DELETE, path, None).await
    }
}

#[derive(Debug)]
struct State {
    total_users: u64,
    total_groups: u64,
    users: Vec<ScimUserRow>,
    groups: Vec<ScimGroupRow>,
    lastpass: Value,
}

// ---- assertions -----------------------------------------------------------------------------

fn assert_scim_json(r: &Resp) {
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with(SCIM_JSON), "content-type {ct:?}: {}", r.text);
}

/// An RFC 7644 §3.12 error: the status, the Error schema, `status` as a string, a non-empty
/// `detail`, and (when `types` is not empty) a `scimType` among `types`.
fn assert_scim_error(r: &Resp, status: u16, types: &[&str]) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_scim_json(r);
    assert_eq!(r.body["schemas"], json!([ERROR_SCHEMA]), "{}", r.text);
    assert_eq!(r.body["status"], json!(status.to_string()), "{}", r.text);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty()),
        "empty detail: {}",
        r.text
    );
    if !types.is_empty() {
        let t = r.body["scimType"].as_str().unwrap_or_default();
        assert!(
            types.contains(&t),
            "scimType {t:?} not in {types:?}: {}",
            r.text
        );
    }
}

/// A ListResponse with integer paging members.
fn assert_list(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_scim_json(r);
    assert_eq!(r.body["schemas"], json!([LIST_SCHEMA]), "{}", r.text);
    for k in ["totalResults", "startIndex", "itemsPerPage"] {
        assert!(r.body[k].is_u64(), "{k} is not an integer: {}", r.text);
    }
}

/// The `Resources` of a list (an absent member is an empty list).
fn resources(r: &Resp) -> Vec<Value> {
    r.body["Resources"].as_array().cloned().unwrap_or_default()
}

fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_null),
        Value::Object(m) => m.values().any(has_null),
        _ => false,
    }
}

/// Member ids of a Group resource, sorted.
fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

fn okta_user(user_name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Okta", "familyName": "Spectest"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": "Okta Spectest",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq-Secret",
        "active": true
    })
}

fn entra_user(user_name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": "adelev",
        "userName": user_name,
        "active": true,
        "displayName": "Adele Vance",
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele"},
        "roles": [],
        ENTERPRISE: {"employeeNumber": "1001", "department": "Retail"}
    })
}

// ---- 1. Okta SCIM 2.0 spec test -------------------------------------------------------------

#[tokio::test]
async fn okta_spec_test_r1_to_r12() {
    let t = spawn().await;
    let (seeded, fullname) = t.seeded_active()[0].clone();
    let (given, family) = fullname.split_once(' ').unwrap();

    // R1 as Okta sends it.
    let r = t.get("/Users?count=1&startIndex=1").await;
    assert_list(&r);
    assert_eq!(r.body["itemsPerPage"], 1, "{}", r.text);
    assert_eq!(r.body["startIndex"], 1, "{}", r.text);
    assert_eq!(
        r.body["totalResults"].as_u64(),
        t.lp_account()["users"].as_u64(),
        "every LastPass user (invitees included) is a SCIM User: {}",
        r.text
    );
    let first = &r.body["Resources"][0];
    assert!(
        first["id"].as_str().is_some_and(|s| !s.is_empty()),
        "{first}"
    );
    assert!(first["userName"].is_string(), "{first}");
    assert!(first["active"].is_boolean(), "{first}");
    assert!(first["emails"][0]["value"].is_string(), "{first}");

    // R1 on a user known to have a full name.
    let r = t
        .get(&format!("/Users?count=1&startIndex=1&{}", by_name(&seeded)))
        .await;
    assert_list(&r);
    assert_eq!(r.body["totalResults"], 1, "{}", r.text);
    assert_eq!(r.body["itemsPerPage"], 1, "{}", r.text);
    let u = &r.body["Resources"][0];
    assert_eq!(u["userName"], seeded.as_str(), "{u}");
    assert_eq!(u["active"], true, "{u}");
    assert_eq!(u["emails"][0]["value"], seeded.as_str(), "{u}");
    assert_eq!(u["name"]["givenName"], given, "{u}");
    assert_eq!(u["name"]["familyName"], family, "{u}");
    let id = u["id"].as_str().unwrap().to_owned();

    // R2
    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_scim_json(&r);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["userName"], seeded.as_str());
    assert_eq!(r.body["name"]["givenName"], given);
    assert_eq!(r.body["name"]["familyName"], family);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["emails"][0]["value"], seeded.as_str());
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.body["meta"]["location"], t.url(&format!("/Users/{id}")));

    // R3
    let r = t
        .get(&format!("/Users?{}", by_name("r3.nobody.5f1c@example.com")))
        .await;
    assert_list(&r);
    assert_eq!(r.body["totalResults"], 0, "{}", r.text);
    assert!(resources(&r).is_empty(), "{}", r.text);

    // R4
    let r = t.get("/Users/010101010101010101010101").await;
    assert_scim_error(&r, 404, &[]);

    // R5: the user R6 creates is absent (in SCIM and in LastPass).
    let new_name = "okta.spectest.7d3e9a41@example.com";
    let r = t.get(&format!("/Users?{}", by_name(new_name))).await;
    assert_list(&r);
    assert_eq!(r.body["totalResults"], 0, "{}", r.text);
    assert!(t.lp_user(new_name).is_none());

    // R6
    let r = t.post("/Users", &okta_user(new_name)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_scim_json(&r);
    let new_id = r.body["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    let location = r.body["meta"]["location"].as_str().unwrap();
    assert_eq!(r.header("location"), Some(location), "Location header");
    assert_eq!(location, t.url(&format!("/Users/{new_id}")));
    assert!(
        r.body["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(USER_SCHEMA))
    );
    assert_eq!(r.body["userName"], new_name);
    assert_eq!(r.body["name"]["givenName"], "Okta");
    assert_eq!(r.body["name"]["familyName"], "Spectest");
    assert_eq!(r.body["emails"][0]["value"], new_name);
    assert_eq!(r.body["emails"][0]["type"], "work");
    assert_eq!(r.body["emails"][0]["primary"], true);
    assert_eq!(r.body["displayName"], "Okta Spectest");
    assert_eq!(r.body["locale"], "en-US");
    assert_eq!(r.body["externalId"], "00ujl29u0le5T6Aj10h7");
    assert_eq!(r.body["active"], true);
    assert!(
        !r.text.to_lowercase().contains("password") && !r.text.contains("1mz050nq"),
        "the password is never returned: {}",
        r.text
    );
    let lp = t.lp_user(new_name).expect("the user is in LastPass");
    assert_eq!(lp["state"], "invited", "{lp}");
    assert_eq!(lp["fullname"], "Okta Spectest", "{lp}");

    // R7
    let r = t.get(&format!("/Users/{new_id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["userName"], new_name);
    assert_eq!(r.body["externalId"], "00ujl29u0le5T6Aj10h7");
    assert_eq!(r.body["displayName"], "Okta Spectest");
    assert!(!r.text.contains("1mz050nq"), "{}", r.text);

    // R8
    let users_before = t.lp_usernames();
    let r = t.post("/Users", &okta_user(new_name)).await;
    assert_scim_error(&r, 409, &["uniqueness"]);
    assert_eq!(t.lp_usernames(), users_before);

    // R9
    let r = t
        .get(&format!("/Users?{}", by_name(&new_name.to_uppercase())))
        .await;
    assert_list(&r);
    assert_eq!(r.body["totalResults"], 1, "{}", r.text);
    assert_eq!(r.body["Resources"][0]["id"], new_id.as_str());

    // R10
    let r = t.get("/Groups").await;
    assert_list(&r);
    let seeded_groups = t.lp_account()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["members"].as_array().is_some_and(|m| !m.is_empty()))
        .count();
    assert_eq!(
        r.body["totalResults"].as_u64(),
        Some(seeded_groups as u64),
        "{}",
        r.text
    );

    // R11: a wrong token, and none at all.
    let r = t
        .request_at(Method::GET, &t.url("/Users"), Some("not-a-token"), None)
        .await;
    assert_scim_error(&r, 401, &[]);
    let r = t
        .request_at(Method::GET, &t.url("/Users"), None, None)
        .await;
    assert_scim_error(&r, 401, &[]);

    // R12
    let r = t.get("/Users/ffffffff-0000-4000-8000-000000000000").await;
    assert_scim_error(&r, 404, &[]);
}

// ---- 2. Entra ID request sequences ---------------------------------------------------------

#[tokio::test]
async fn entra_test_connection_random_guid_is_an_empty_list() {
    let t = spawn().await;
    let guid = "b7a9e0a4-3b1c-4c1e-9f3e-2d6f0c1a8e55";
    for q in [
        format!("/Users?{}", by_name(guid)),
        format!("/Users?{}", filter_q(&format!("externalId eq \"{guid}\""))),
        format!(
            "/Groups?{}",
            filter_q(&format!("displayName eq \"{guid}\""))
        ),
    ] {
        let r = t.get(&q).await;
        assert_list(&r);
        assert_eq!(r.body["totalResults"], 0, "{q}: {}", r.text);
        assert!(resources(&r).is_empty(), "{q}: {}", r.text);
    }
}

#[tokio::test]
async fn entra_user_cycle_create_get_patch_disable_delete() {
    let t = spawn().await;
    let name = "adele.vance@contoso.example";

    let r = t.get(&format!("/Users?{}", by_name(name))).await;
    assert_list(&r);
    assert_eq!(r.body["totalResults"], 0, "{}", r.text);

    let r = t.post("/Users", &entra_user(name)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.body["schemas"],
        json!([USER_SCHEMA, ENTERPRISE]),
        "{}",
        r.text
    );
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "1001");
    assert_eq!(r.body["externalId"], "adelev");
    assert_eq!(r.body["name"]["formatted"], "Adele Vance");
    assert!(!has_null(&r.body), "{}", r.text);
    assert_eq!(t.lp_user(name).unwrap()["fullname"], "Adele Vance");

    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["userName"], name);

    // Entra's multi-op PATCH: PascalCase ops, a filtered path, create-on-replace (Q5) and a
    // path-less replace with dotted and URN keys (Q3).
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "displayName", "value": "Adele V."},
                {"op": "Replace", "path": "emails[type eq \"work\"].value",
                 "value": "adele.v@contoso.example"},
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value",
                 "value": "+1 555 0100"},
                {"op": "replace", "value": {
                    "name.givenName": "Adela",
                    "name.familyName": "Vance-Smith",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "2002"
                }}
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let u = &r.body;
    assert_eq!(u["displayName"], "Adele V.", "{u}");
    assert_eq!(
        u["emails"],
        json!([{"primary": true, "type": "work", "value": "adele.v@contoso.example"}]),
        "{u}"
    );
    assert_eq!(
        u["phoneNumbers"],
        json!([{"type": "mobile", "value": "+1 555 0100"}]),
        "{u}"
    );
    assert_eq!(u["name"]["givenName"], "Adela", "{u}");
    assert_eq!(u["name"]["familyName"], "Vance-Smith", "{u}");
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "2002", "{u}");
    assert_eq!(u[ENTERPRISE]["department"], "Retail", "{u}");
    assert_eq!(u["userName"], name, "{u}");
    assert_eq!(t.lp_user(name).unwrap()["fullname"], "Adele V.");

    // Soft delete with a string boolean (Q2).
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], false, "{}", r.text);
    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], false, "{}", r.text);
    assert_eq!(r.body["phoneNumbers"][0]["value"], "+1 555 0100");
    assert_eq!(t.lp_user(name).unwrap()["disabled"], true);

    let r = t.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty(), "{}", r.text);
    let r = t.get(&format!("/Users/{id}")).await;
    assert_scim_error(&r, 404, &[]);
    let r = t.get(&format!("/Users?{}", by_name(name))).await;
    assert_eq!(r.body["totalResults"], 0, "{}", r.text);
    assert!(
        t.lp_user(name).is_none(),
        "an invitation is withdrawn on DELETE"
    );
}

#[tokio::test]
async fn entra_disables_and_enables_a_seeded_user_in_lastpass() {
    let t = spawn().await;
    let (name, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&name).await;

    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], false);
    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.body["active"], false, "{}", r.text);
    let lp = t.lp_user(&name).unwrap();
    assert_eq!(lp["disabled"], true, "{lp}");

    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "TRUE"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], true);
    let lp = t.lp_user(&name).unwrap();
    assert_eq!(lp["state"], "active", "{lp}");
}

#[tokio::test]
async fn entra_group_cycle_create_filter_rename_members_delete() {
    let t = spawn().await;
    let users = t.seeded_active();
    let (a, b, c) = (&users[0].0, &users[1].0, &users[2].0);
    let (ida, idb, idc) = (t.user_id(a).await, t.user_id(b).await, t.user_id(c).await);

    let r = t
        .post(
            "/Groups",
            &json!({
                "schemas": [GROUP_SCHEMA,
                            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "SCIM Engineers",
                "meta": {"resourceType": "Group"},
                "members": []
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_scim_json(&r);
    let gid = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["displayName"], "SCIM Engineers");
    assert_eq!(r.header("location"), r.body["meta"]["location"].as_str());

    let r = t
        .get(&format!(
            "/Groups?excludedAttributes=members&{}",
            filter_q("displayName eq \"SCIM Engineers\"")
        ))
        .await;
    assert_list(&r);
    assert_eq!(r.body["totalResults"], 1, "{}", r.text);
    assert_eq!(r.body["Resources"][0]["id"], gid.as_str());
    assert!(
        r.body["Resources"][0].get("members").is_none(),
        "{}",
        r.text
    );

    let path = format!("/Groups/{gid}");
    let r = t
        .patch(
            &path,
            json!([{"op": "Replace", "path": "displayName", "value": "SCIM Platform"}]),
        )
        .await;
    assert!(matches!(r.status, 200 | 204), "{}", r.text);
    let r = t.get(&path).await;
    assert_eq!(r.body["displayName"], "SCIM Platform", "{}", r.text);

    let r = t
        .patch(
            &path,
            json!([{"op": "Add", "path": "members",
                    "value": [{"value": ida}, {"value": idb}, {"value": idc}]}]),
        )
        .await;
    assert!(matches!(r.status, 200 | 204), "{}", r.text);
    for u in [a, b, c] {
        assert!(
            t.lp_groups(u).contains(&"SCIM Platform".to_owned()),
            "{u}: {:?}",
            t.lp_groups(u)
        );
    }

    // Q4, default form: the value selects the members to remove.
    let r = t
        .patch(
            &path,
            json!([{"op": "Remove", "path": "members", "value": [{"value": ida}]}]),
        )
        .await;
    assert!(matches!(r.status, 200 | 204), "{}", r.text);
    assert!(!t.lp_groups(a).contains(&"SCIM Platform".to_owned()));
    assert!(t.lp_groups(b).contains(&"SCIM Platform".to_owned()));

    // Q4, flag form: a value filter in the path.
    let r = t
        .patch(
            &path,
            json!([{"op": "remove", "path": format!("members[value eq \"{idb}\"]")}]),
        )
        .await;
    assert!(matches!(r.status, 200 | 204), "{}", r.text);
    assert!(!t.lp_groups(b).contains(&"SCIM Platform".to_owned()));
    assert!(t.lp_groups(c).contains(&"SCIM Platform".to_owned()));
    let r = t.get(&path).await;
    assert_eq!(member_ids(&r.body), vec![idc.clone()], "{}", r.text);

    let r = t.delete(&path).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(!t.lp_groups(c).contains(&"SCIM Platform".to_owned()));
    assert_scim_error(&t.get(&path).await, 404, &[]);
    let r = t
        .get(&format!(
            "/Groups?{}",
            filter_q("displayName eq \"SCIM Platform\"")
        ))
        .await;
    assert_eq!(r.body["totalResults"], 0, "{}", r.text);
}

// ---- 3. identity-provider quirks -----------------------------------------------------------

#[tokio::test]
async fn q1_op_is_matched_case_insensitively() {
    let t = spawn().await;
    let (name, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&name).await;
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "REPLACE", "path": "title", "value": "Boss"},
                {"op": "Add", "path": "nickName", "value": "Bo"},
                {"op": "add", "path": "userType", "value": "Employee"},
                {"op": "rEmOvE", "path": "nickName"}
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["title"], "Boss");
    assert_eq!(r.body["userType"], "Employee");
    assert!(r.body.get("nickName").is_none(), "{}", r.text);
    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.body["title"], "Boss", "{}", r.text);

    let before = t.state().await;
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Upsert", "path": "title", "value": "x"}]),
        )
        .await;
    assert_scim_error(&r, 400, &["invalidSyntax"]);
    t.assert_unchanged(&before, "an unknown op").await;
}

#[tokio::test]
async fn q2_string_booleans_in_any_case() {
    let t = spawn().await;
    let (name, _) = t.seeded_active()[1].clone();
    let id = t.user_id(&name).await;
    for (value, active) in [("False", false), ("true", true), ("FALSE", false)] {
        let r = t
            .patch(
                &format!("/Users/{id}"),
                json!([{"op": "Replace", "path": "active", "value": value}]),
            )
            .await;
        assert_eq!(r.status, 200, "{value}: {}", r.text);
        assert_eq!(r.body["active"], active, "{value}: {}", r.text);
        assert_eq!(t.lp_user(&name).unwrap()["disabled"], !active, "{value}");
    }
    // A string that is no boolean is refused.
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "nope"}]),
        )
        .await;
    assert_scim_error(&r, 400, &["invalidValue"]);
    assert_eq!(t.lp_user(&name).unwrap()["disabled"], true);
}

#[tokio::test]
async fn q3_pathless_replace_with_dotted_and_urn_keys() {
    let t = spawn().await;
    let name = "q3.dotted@example.com";
    let r = t
        .post(
            "/Users",
            &json!({"schemas": [USER_SCHEMA], "userName": name,
                    "name": {"givenName": "Quinn", "familyName": "Three"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(t.lp_user(name).unwrap()["fullname"], "Quinn Three");

    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {
                "name.givenName": "Quincy",
                "name.familyName": "Dotted",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "E-77",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Ops"
            }}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"]["givenName"], "Quincy", "{}", r.text);
    assert_eq!(r.body["name"]["familyName"], "Dotted", "{}", r.text);
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "E-77", "{}", r.text);
    assert_eq!(r.body[ENTERPRISE]["department"], "Ops", "{}", r.text);
    assert!(
        r.body["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(ENTERPRISE)),
        "{}",
        r.text
    );
    assert!(r.body.get("name.givenName").is_none(), "{}", r.text);
    assert_eq!(t.lp_user(name).unwrap()["fullname"], "Quincy Dotted");
    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "E-77", "{}", r.text);
}

#[tokio::test]
async fn q4_both_member_removal_forms_on_a_seeded_group() {
    let t = spawn().await;
    let acct = t.lp_account();
    let group = acct["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["members"].as_array().is_some_and(|m| m.len() >= 3))
        .expect("a seeded group with 3 members")
        .clone();
    let gname = group["name"].as_str().unwrap().to_owned();
    let members: Vec<String> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    let r = t
        .get(&format!(
            "/Groups?{}",
            filter_q(&format!("displayName eq \"{gname}\""))
        ))
        .await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.text);
    let gid = r.body["Resources"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        member_ids(&r.body["Resources"][0]).len(),
        members.len(),
        "{}",
        r.text
    );
    let (m0, m1, m2) = (&members[0], &members[1], &members[2]);
    let (id0, id1) = (t.user_id(m0).await, t.user_id(m1).await);

    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "Remove", "path": "members", "value": [{"value": id0, "$ref": null}]}]),
        )
        .await;
    assert!(matches!(r.status, 200 | 204), "{}", r.text);
    assert!(!t.lp_groups(m0).contains(&gname), "{m0}");
    assert!(t.lp_groups(m1).contains(&gname), "{m1}");

    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{id1}\"]")}]),
        )
        .await;
    assert!(matches!(r.status, 200 | 204), "{}", r.text);
    assert!(!t.lp_groups(m1).contains(&gname), "{m1}");
    assert!(t.lp_groups(m2).contains(&gname), "{m2}");
    let r = t.get(&format!("/Groups/{gid}")).await;
    assert_eq!(member_ids(&r.body).len(), members.len() - 2, "{}", r.text);
    assert!(!member_ids(&r.body).contains(&id0));
}

#[tokio::test]
async fn q5_replace_on_an_unmatched_filter_creates_the_entry() {
    let t = spawn().await;
    let name = "q5.noemails@example.com";
    let id = t.create_user(name).await;
    let r = t.get(&format!("/Users/{id}")).await;
    assert!(r.body.get("emails").is_none(), "{}", r.text);

    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "q5.work@example.com"},
                {"op": "Replace", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"}
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["emails"],
        json!([{"type": "work", "value": "q5.work@example.com"}]),
        "{}",
        r.text
    );
    assert_eq!(
        r.body["addresses"],
        json!([{"type": "work", "postalCode": "98052"}]),
        "{}",
        r.text
    );
    // A second replace updates the entry it created rather than adding another.
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "q5.again@example.com"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["emails"],
        json!([{"type": "work", "value": "q5.again@example.com"}]),
        "{}",
        r.text
    );
    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.body["emails"][0]["value"], "q5.again@example.com");
    assert_eq!(r.body["userName"], name, "emails do not change userName");
}

#[tokio::test]
async fn q6_one_group_patch_changes_several_members() {
    let t = spawn().await;
    let users = t.seeded_active();
    let names: Vec<&String> = users.iter().take(4).map(|(n, _)| n).collect();
    let mut ids = Vec::new();
    for n in &names {
        ids.push(t.user_id(n).await);
    }
    let gid = t.create_group("Q6 Team", &[&ids[0], &ids[1]]).await;
    for n in &names[..2] {
        assert!(t.lp_groups(n).contains(&"Q6 Team".to_owned()), "{n}");
    }

    t.sb.reset_stats();
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([
                {"op": "Remove", "path": "members", "value": [{"value": ids[0]}]},
                {"op": "Add", "path": "members", "value": [{"value": ids[2]}, {"value": ids[3]}]}
            ]),
        )
        .await;
    assert!(matches!(r.status, 200 | 204), "{}", r.text);
    let in_group = |n: &str| t.lp_groups(n).contains(&"Q6 Team".to_owned());
    assert!(!in_group(names[0]));
    assert!(in_group(names[1]) && in_group(names[2]) && in_group(names[3]));
    assert_eq!(
        t.lp_requests("batchchangegrp"),
        1,
        "one LastPass request for every member change"
    );
    let r = t.get(&format!("/Groups/{gid}")).await;
    let mut want = vec![ids[1].clone(), ids[2].clone(), ids[3].clone()];
    want.sort();
    assert_eq!(member_ids(&r.body), want, "{}", r.text);
}

#[tokio::test]
async fn q7_an_inactive_user_is_still_returned() {
    let t = spawn().await;
    let (name, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&name).await;
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(t.lp_user(&name).unwrap()["disabled"], true);

    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], false);
    assert_eq!(t.user_by_name(&name).await["active"], false);
    let r = t.get("/Users").await;
    assert_list(&r);
    let listed = resources(&r);
    let me = listed
        .iter()
        .find(|u| u["id"] == id.as_str())
        .expect("listed");
    assert_eq!(me["active"], false);
    // Users LastPass seeded as disabled are listed too.
    let disabled_in_lp = t.lp_account()["disabled"].as_u64().unwrap();
    let inactive = listed.iter().filter(|u| u["active"] == false).count() as u64;
    assert!(inactive >= disabled_in_lp, "{inactive} < {disabled_in_lp}");
}

#[tokio::test]
async fn q8_okta_pathless_active_and_group_rename_with_id() {
    let t = spawn().await;
    let users = t.seeded_active();
    let (a, b) = (&users[0].0, &users[1].0);
    let (ida, idb) = (t.user_id(a).await, t.user_id(b).await);

    let r = t
        .patch(
            &format!("/Users/{ida}"),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], false);
    assert_eq!(t.lp_user(a).unwrap()["disabled"], true);
    let r = t
        .patch(
            &format!("/Users/{ida}"),
            json!([{"op": "replace", "value": {"active": true}}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(t.lp_user(a).unwrap()["disabled"], false);

    let gid = t.create_group("Okta Pushed", &[&ida]).await;
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "replace", "value": {"id": gid, "displayName": "Okta Renamed"}}]),
        )
        .await;
    assert!(matches!(r.status, 200 | 204), "{}", r.text);
    let r = t.get(&format!("/Groups/{gid}")).await;
    assert_eq!(r.body["displayName"], "Okta Renamed", "{}", r.text);
    assert_eq!(member_ids(&r.body), vec![ida.clone()]);
    let groups = t.lp_groups(a);
    assert!(groups.contains(&"Okta Renamed".to_owned()), "{groups:?}");
    assert!(!groups.contains(&"Okta Pushed".to_owned()), "{groups:?}");

    // Okta's membership update: remove one by filter and add another, in one request.
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([
                {"op": "remove", "path": format!("members[value eq \"{ida}\"]")},
                {"op": "add", "path": "members", "value": [{"value": idb, "display": b}]}
            ]),
        )
        .await;
    assert!(matches!(r.status, 200 | 204), "{}", r.text);
    assert!(!t.lp_groups(a).contains(&"Okta Renamed".to_owned()));
    assert!(t.lp_groups(b).contains(&"Okta Renamed".to_owned()));

    // A changed id is refused.
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "replace", "value": {"id": "another-id", "displayName": "X"}}]),
        )
        .await;
    assert_scim_error(&r, 400, &["mutability"]);
    let r = t.get(&format!("/Groups/{gid}")).await;
    assert_eq!(r.body["displayName"], "Okta Renamed", "{}", r.text);
}

#[tokio::test]
async fn q9_put_of_the_whole_object_as_read() {
    let t = spawn().await;
    let (name, _) = t.seeded_active()[2].clone();
    let id = t.user_id(&name).await;
    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut body = r.body.clone();
    let emails = body["emails"].clone();
    body["displayName"] = json!("Pat Okta-Put");
    body["name"] = json!({"givenName": "Pat", "familyName": "Okta-Put"});
    body["externalId"] = json!("00u-okta-put");
    body["title"] = json!("Engineer");

    let r = t.put(&format!("/Users/{id}"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_scim_json(&r);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["userName"], name.as_str());
    assert_eq!(r.body["displayName"], "Pat Okta-Put");
    assert_eq!(r.body["externalId"], "00u-okta-put");
    assert_eq!(r.body["title"], "Engineer");
    assert_eq!(r.body["emails"], emails);
    assert_eq!(r.body["active"], true);
    assert_eq!(t.lp_user(&name).unwrap()["fullname"], "Pat Okta-Put");
    assert_eq!(t.lp_user(&name).unwrap()["disabled"], false);

    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.body["displayName"], "Pat Okta-Put", "{}", r.text);
    assert_eq!(r.body["name"]["familyName"], "Okta-Put", "{}", r.text);
    assert_eq!(r.body["title"], "Engineer", "{}", r.text);

    // PUT without `title` removes it (a PUT replaces the whole resource).
    let mut again = r.body.clone();
    again.as_object_mut().unwrap().remove("title");
    let r = t.put(&format!("/Users/{id}"), &again).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("title").is_none(), "{}", r.text);
    assert_eq!(r.body["displayName"], "Pat Okta-Put");
}

#[tokio::test]
async fn q10_jumpcloud_member_add_without_a_filter() {
    let t = spawn().await;
    let users = t.seeded_active();
    let (a, b) = (&users[0].0, &users[1].0);
    let (ida, idb) = (t.user_id(a).await, t.user_id(b).await);

    // A group that exists only in the store: the first member creates it in LastPass.
    let gid = t.create_group("JumpCloud Group", &[]).await;
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "add", "path": "members", "value": [{"value": ida}]}]),
        )
        .await;
    assert!(matches!(r.status, 200 | 204), "{}", r.text);
    assert!(t.lp_groups(a).contains(&"JumpCloud Group".to_owned()));
    // The group now exists in LastPass: the next member goes through batchchangegrp.
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "add", "path": "members", "value": [{"value": idb}]}]),
        )
        .await;
    assert!(matches!(r.status, 200 | 204), "{}", r.text);
    assert!(t.lp_groups(b).contains(&"JumpCloud Group".to_owned()));
    assert!(t.lp_groups(a).contains(&"JumpCloud Group".to_owned()));
    let r = t.get(&format!("/Groups/{gid}")).await;
    let mut want = vec![ida, idb];
    want.sort();
    assert_eq!(member_ids(&r.body), want, "{}", r.text);
}

#[tokio::test]
async fn q11_test_user_and_group_created_then_deleted() {
    let t = spawn().await;
    let name = "jumpcloud.test.user@example.com";
    let uid = t.create_user(name).await;
    let gid = t.create_group("JumpCloud Test Group", &[]).await;
    assert!(t.lp_user(name).is_some());

    let r = t.delete(&format!("/Groups/{gid}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = t.delete(&format!("/Users/{uid}")).await;
    assert_eq!(r.status, 204, "{}", r.text);

    assert_scim_error(&t.get(&format!("/Users/{uid}")).await, 404, &[]);
    assert_scim_error(&t.get(&format!("/Groups/{gid}")).await, 404, &[]);
    assert_scim_error(&t.delete(&format!("/Users/{uid}")).await, 404, &[]);
    assert_scim_error(&t.delete(&format!("/Groups/{gid}")).await, 404, &[]);
    assert!(t.lp_user(name).is_none());
    let r = t.get("/Groups").await;
    assert!(
        resources(&r).iter().all(|g| g["id"] != gid.as_str()),
        "{}",
        r.text
    );
    // The same test run again works (Test Connection is repeatable).
    let uid2 = t.create_user(name).await;
    assert_eq!(t.delete(&format!("/Users/{uid2}")).await.status, 204);
}

#[tokio::test]
async fn q12_remove_without_path_is_no_target() {
    let t = spawn().await;
    let (name, _) = t.seeded_active()[0].clone();
    let uid = t.user_id(&name).await;
    let gid = t.create_group("Q12 Group", &[&uid]).await;
    let before = t.state().await;

    let r = t
        .patch(&format!("/Users/{uid}"), json!([{"op": "Remove"}]))
        .await;
    assert_scim_error(&r, 400, &["noTarget"]);
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "Remove", "value": [{"value": uid}]}]),
        )
        .await;
    assert_scim_error(&r, 400, &["noTarget"]);
    // Atomic: a valid operation before the refused one is not applied either.
    let r = t
        .patch(
            &format!("/Users/{uid}"),
            json!([{"op": "replace", "path": "active", "value": false}, {"op": "remove"}]),
        )
        .await;
    assert_scim_error(&r, 400, &["noTarget"]);
    t.assert_unchanged(&before, "remove without path").await;
}

#[tokio::test]
async fn q13_nulls_in_a_create_body_are_accepted_and_never_returned() {
    let t = spawn().await;
    let name = "q13.nulls@example.com";
    let r = t
        .post(
            "/Users",
            &json!({
                "schemas": [USER_SCHEMA],
                "userName": name,
                "active": true,
                "nickName": null,
                "title": null,
                "name": {"givenName": "Null", "middleName": null, "familyName": "Tolerant"},
                "addresses": [{"formatted": null, "type": "work", "streetAddress": "1 Main St"}],
                "phoneNumbers": [{"value": "+1 555 0199", "type": "work", "display": null}]
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(!has_null(&r.body), "nulls in {}", r.text);
    assert!(r.body.get("nickName").is_none());
    assert!(r.body.get("title").is_none());
    assert_eq!(
        r.body["addresses"],
        json!([{"type": "work", "streetAddress": "1 Main St"}])
    );
    assert_eq!(r.body["name"]["givenName"], "Null");
    let id = r.body["id"].as_str().unwrap();
    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!has_null(&r.body), "nulls in {}", r.text);
    assert_eq!(r.body["phoneNumbers"][0]["value"], "+1 555 0199");
    assert_eq!(t.lp_user(name).unwrap()["fullname"], "Null Tolerant");
}

// ---- 4. bad input: the RFC error, and nothing changed ------------------------------------

#[tokio::test]
async fn bad_missing_user_name_is_invalid_value() {
    let t = spawn().await;
    let before = t.state().await;
    let r = t
        .post(
            "/Users",
            &json!({"schemas": [USER_SCHEMA], "name": {"givenName": "No", "familyName": "Name"},
                    "emails": [{"value": "no.name@example.com", "type": "work", "primary": true}],
                    "active": true}),
        )
        .await;
    assert_scim_error(&r, 400, &["invalidValue"]);
    assert!(
        r.body["detail"].as_str().unwrap().contains("userName"),
        "{}",
        r.text
    );
    let r = t
        .post(
            "/Users",
            &json!({"schemas": [USER_SCHEMA], "userName": "   ", "active": true}),
        )
        .await;
    assert_scim_error(&r, 400, &["invalidValue"]);
    t.assert_unchanged(&before, "missing userName").await;
    assert!(t.lp_user("no.name@example.com").is_none());
}

#[tokio::test]
async fn bad_duplicate_user_name_is_409_uniqueness() {
    let t = spawn().await;
    let name = "dup.user@example.com";
    t.create_user(name).await;
    let (seeded, _) = t.seeded_active()[0].clone();
    let before = t.state().await;
    for user_name in [name.to_owned(), name.to_uppercase(), seeded.clone()] {
        let r = t.post("/Users", &okta_user(&user_name)).await;
        assert_scim_error(&r, 409, &["uniqueness"]);
    }
    t.assert_unchanged(&before, "duplicate userName").await;
}

#[tokio::test]
async fn bad_unknown_core_schema_is_refused() {
    let t = spawn().await;
    let before = t.state().await;
    let mut body = okta_user("unknown.schema@example.com");
    body["schemas"] = json!(["urn:x:unknown"]);
    let r = t.post("/Users", &body).await;
    assert_scim_error(&r, 400, &["invalidSyntax", "invalidValue"]);
    let r = t
        .post(
            "/Groups",
            &json!({"schemas": ["urn:x:unknown"], "displayName": "Unknown Schema"}),
        )
        .await;
    assert_scim_error(&r, 400, &["invalidSyntax", "invalidValue"]);
    // A PATCH body must carry the PatchOp schema when it names one.
    let (seeded, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&seeded).await;
    let r = t
        .req(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(&json!({"schemas": ["urn:x:unknown"],
                         "Operations": [{"op": "replace", "path": "active", "value": false}]})),
        )
        .await;
    assert_scim_error(&r, 400, &["invalidSyntax", "invalidValue"]);
    t.assert_unchanged(&before, "unknown schema").await;
}

#[tokio::test]
async fn bad_patch_path_is_invalid_path() {
    let t = spawn().await;
    let (seeded, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&seeded).await;
    let gid = t.create_group("Bad Path Group", &[&id]).await;
    let before = t.state().await;
    for path in [
        "emails[type eq \"work\"",
        "emails[type zz \"work\"].value",
        "name..givenName",
        "favoriteColor",
    ] {
        let r = t
            .patch(
                &format!("/Users/{id}"),
                json!([{"op": "replace", "path": path, "value": "x"}]),
            )
            .await;
        assert_scim_error(&r, 400, &["invalidPath"]);
        assert!(
            r.body["detail"].as_str().unwrap().contains("Operations[0]"),
            "{path}: {}",
            r.text
        );
    }
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "remove", "path": "members[value eq"}]),
        )
        .await;
    assert_scim_error(&r, 400, &["invalidPath"]);
    t.assert_unchanged(&before, "malformed PATCH path").await;
}

#[tokio::test]
async fn bad_oversized_body_is_413() {
    let t = spawn_with(Settings {
        max_body_bytes: 4096,
        ..Settings::default()
    })
    .await;
    assert_eq!(t.settings.max_body_bytes, 4096);
    let before = t.state().await;
    let mut body = okta_user("oversized@example.com");
    body["title"] = json!("x".repeat(5000));
    let r = t.post("/Users", &body).await;
    assert_scim_error(&r, 413, &[]);
    // Just under the limit is fine.
    let mut small = okta_user("small.enough@example.com");
    small["title"] = json!("x".repeat(3000));
    assert!(serde_json::to_vec(&small).unwrap().len() < 4096);
    let r = t.post("/Users", &small).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(t.lp_user("oversized@example.com").is_none());
    let after = t.state().await;
    assert_eq!(after.total_users, before.total_users + 1);
}

#[tokio::test]
async fn bad_wrong_token_is_401_and_writes_nothing() {
    let t = spawn().await;
    let (seeded, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&seeded).await;
    let before = t.state().await;
    let wrong = Some("lpb_wrong_token");
    let name = "wrong.token@example.com";
    let body = serde_json::to_vec(&okta_user(name)).unwrap();
    let r = t
        .request_at(Method::POST, &t.url("/Users"), wrong, Some(body))
        .await;
    assert_scim_error(&r, 401, &[]);
    let patch = serde_json::to_vec(&patch_body(json!([
        {"op": "replace", "path": "active", "value": false}
    ])))
    .unwrap();
    let r = t
        .request_at(
            Method::PATCH,
            &t.url(&format!("/Users/{id}")),
            wrong,
            Some(patch),
        )
        .await;
    assert_scim_error(&r, 401, &[]);
    let r = t
        .request_at(Method::DELETE, &t.url(&format!("/Users/{id}")), wrong, None)
        .await;
    assert_scim_error(&r, 401, &[]);
    // Not a bearer token at all.
    let r = t
        .http
        .get(t.url("/Users"))
        .basic_auth(&t.token, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    t.assert_unchanged(&before, "wrong token").await;
    assert!(t.lp_user(name).is_none());
}

#[tokio::test]
async fn bad_json_is_invalid_syntax() {
    let t = spawn().await;
    let (seeded, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&seeded).await;
    let before = t.state().await;
    let cases: [(Method, String, &[u8]); 4] = [
        (
            Method::POST,
            "/Users".into(),
            b"{\"userName\": \"bad.json@example.com\",",
        ),
        (Method::POST, "/Groups".into(), b"not json"),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            b"{\"Operations\": [{\"op\": \"replace\" \"path\": \"active\"}]}",
        ),
        (Method::PUT, format!("/Users/{id}"), b""),
    ];
    for (method, path, body) in cases {
        let r = t
            .request_at(method, &t.url(&path), Some(&t.token), Some(body.to_vec()))
            .await;
        assert_scim_error(&r, 400, &["invalidSyntax"]);
    }
    // Valid JSON of the wrong shape.
    let r = t.post("/Users", &json!(["userName"])).await;
    assert_scim_error(&r, 400, &["invalidSyntax"]);
    let r = t
        .req(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(&json!({"schemas": [PATCH_SCHEMA]})),
        )
        .await;
    assert_scim_error(&r, 400, &["invalidSyntax"]);
    t.assert_unchanged(&before, "invalid JSON").await;
}

#[tokio::test]
async fn bad_filter_is_invalid_filter() {
    let t = spawn().await;
    let before = t.state().await;
    for f in [
        "userName eq",
        "userName zz \"a@example.com\"",
        "(userName eq \"a@example.com\"",
        "userName eq \"a@example.com\" and",
    ] {
        let r = t.get(&format!("/Users?{}", filter_q(f))).await;
        assert_scim_error(&r, 400, &["invalidFilter"]);
        let r = t.get(&format!("/Groups?{}", filter_q(f))).await;
        assert_scim_error(&r, 400, &["invalidFilter"]);
    }
    let r = t
        .post(
            "/Users/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": "userName eq"}),
        )
        .await;
    assert_scim_error(&r, 400, &["invalidFilter"]);
    t.assert_unchanged(&before, "invalid filter").await;
}

// ---- 5. discovery --------------------------------------------------------------------------

#[tokio::test]
async fn discovery_service_provider_config() {
    let t = spawn().await;
    let r = t.get("/ServiceProviderConfig").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_scim_json(&r);
    let c = &r.body;
    assert_eq!(
        c["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(c["patch"]["supported"], true);
    assert_eq!(c["bulk"]["supported"], false);
    assert_eq!(c["filter"]["supported"], true);
    assert!(
        c["filter"]["maxResults"].as_u64().is_some_and(|n| n > 0),
        "{c}"
    );
    for k in ["changePassword", "sort", "etag"] {
        assert!(c[k]["supported"].is_boolean(), "{k}: {c}");
    }
    let schemes = c["authenticationSchemes"].as_array().unwrap();
    assert_eq!(schemes[0]["type"], "oauthbearertoken");
    assert!(schemes[0]["name"].is_string() && schemes[0]["description"].is_string());
    assert_eq!(c["meta"]["location"], t.url("/ServiceProviderConfig"));
}

#[tokio::test]
async fn discovery_resource_types_and_schemas() {
    let t = spawn().await;
    let r = t.get("/ResourceTypes").await;
    assert_list(&r);
    let types = resources(&r);
    let ids: Vec<&str> = types.iter().filter_map(|x| x["id"].as_str()).collect();
    assert_eq!(ids, vec!["User", "Group"], "{}", r.text);
    assert_eq!(types[0]["endpoint"], "/Users");
    assert_eq!(types[0]["schema"], USER_SCHEMA);
    assert_eq!(types[0]["schemaExtensions"][0]["schema"], ENTERPRISE);
    assert_eq!(types[1]["endpoint"], "/Groups");
    assert_eq!(types[1]["schema"], GROUP_SCHEMA);
    let r = t.get("/ResourceTypes/User").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], "User");
    assert_scim_error(&t.get("/ResourceTypes/Device").await, 404, &[]);

    let r = t.get("/Schemas").await;
    assert_list(&r);
    let mut ids: Vec<String> = resources(&r)
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    let mut want = vec![
        USER_SCHEMA.to_owned(),
        GROUP_SCHEMA.to_owned(),
        ENTERPRISE.to_owned(),
    ];
    want.sort();
    assert_eq!(ids, want, "{}", r.text);
    assert_eq!(r.body["totalResults"], 3);
    let r = t.get(&format!("/Schemas/{USER_SCHEMA}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let user_name = r.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "userName")
        .expect("userName attribute")
        .clone();
    assert_eq!(user_name["required"], true, "{user_name}");
    assert_eq!(user_name["caseExact"], false, "{user_name}");
    assert_eq!(user_name["uniqueness"], "server", "{user_name}");
    assert!(!has_null(&r.body), "{}", r.text);
    assert_scim_error(&t.get("/Schemas/urn:x:unknown").await, 404, &[]);
}

#[tokio::test]
async fn discovery_writes_are_405_and_unknown_paths_404() {
    let t = spawn().await;
    let body = json!({"schemas": [USER_SCHEMA]});
    for (method, path) in [
        (Method::POST, "/ServiceProviderConfig".to_owned()),
        (Method::PUT, "/ServiceProviderConfig".to_owned()),
        (Method::PATCH, "/ResourceTypes".to_owned()),
        (Method::DELETE, "/ResourceTypes/User".to_owned()),
        (Method::POST, "/Schemas".to_owned()),
        (Method::PUT, format!("/Schemas/{USER_SCHEMA}")),
        (Method::DELETE, format!("/Schemas/{USER_SCHEMA}")),
    ] {
        let send = (method != Method::DELETE).then_some(&body);
        let r = t.req(method.clone(), &path, send).await;
        assert_scim_error(&r, 405, &[]);
        assert!(r.status == 405, "{method} {path}");
    }
    for path in ["/Foo", "/Users/x/y", "/users2"] {
        let r = t.get(path).await;
        assert_scim_error(&r, 404, &[]);
    }
    // A 405 or 404 is no way around authentication.
    let r = t
        .request_at(Method::POST, &t.url("/Schemas"), None, None)
        .await;
    assert_scim_error(&r, 401, &[]);
}

#[tokio::test]
async fn discovery_count_zero_and_projections() {
    let t = spawn().await;
    let r = t.get("/Users?count=0").await;
    assert_list(&r);
    assert_eq!(
        r.body["totalResults"].as_u64(),
        t.lp_account()["users"].as_u64(),
        "{}",
        r.text
    );
    assert_eq!(r.body["itemsPerPage"], 0, "{}", r.text);
    assert!(resources(&r).is_empty(), "{}", r.text);

    // Stable paging: pages of 7 cover everyone exactly once.
    let total = r.body["totalResults"].as_u64().unwrap() as usize;
    let mut seen = Vec::new();
    let mut start = 1;
    while start <= total {
        let r = t.get(&format!("/Users?startIndex={start}&count=7")).await;
        assert_list(&r);
        assert_eq!(r.body["startIndex"], start, "{}", r.text);
        let page = resources(&r);
        assert!(!page.is_empty() && page.len() <= 7, "{}", r.text);
        seen.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        start += 7;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), total);
    assert_eq!(seen.len(), total);

    let r = t.get("/Users?attributes=userName&count=5").await;
    assert_list(&r);
    for u in resources(&r) {
        assert!(u["id"].is_string(), "{u}");
        assert!(u["userName"].is_string(), "{u}");
        for gone in ["emails", "name", "active", "displayName", "groups"] {
            assert!(u.get(gone).is_none(), "{gone} in {u}");
        }
    }
    let (seeded, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&seeded).await;
    let r = t
        .get(&format!("/Users/{id}?attributes=emails,name.givenName"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
    assert!(r.body["emails"].is_array(), "{}", r.text);
    assert!(r.body["name"]["givenName"].is_string(), "{}", r.text);
    assert!(r.body["name"].get("familyName").is_none(), "{}", r.text);
    assert!(r.body.get("userName").is_none(), "{}", r.text);

    let r = t.get("/Groups").await;
    assert!(
        resources(&r)
            .iter()
            .any(|g| g["members"].as_array().is_some_and(|m| !m.is_empty())),
        "seeded groups have members: {}",
        r.text
    );
    let gid = resources(&r)[0]["id"].as_str().unwrap().to_owned();
    let r = t.get("/Groups?excludedAttributes=members").await;
    assert_list(&r);
    assert!(!resources(&r).is_empty());
    for g in resources(&r) {
        assert!(g.get("members").is_none(), "{g}");
        assert!(g["id"].is_string() && g["displayName"].is_string(), "{g}");
    }
    let r = t
        .get(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("members").is_none(), "{}", r.text);
    assert_eq!(r.body["id"], gid.as_str());
}

// ---- 6. tokens ----------------------------------------------------------------------------

#[tokio::test]
async fn tokens_api_keys_and_scim_tokens_do_not_cross() {
    let t = spawn().await;
    let (_, api_key) = t.store.create_api_key("rest", false).await.unwrap();
    let api_key = api_key.expose().to_owned();

    let r = t
        .request_at(Method::GET, &t.url("/Users"), Some(&api_key), None)
        .await;
    assert_scim_error(&r, 401, &[]);
    let iam = format!("{}/unified/iam/users", t.base);
    let r = t.request_at(Method::GET, &iam, Some(&t.token), None).await;
    assert_eq!(r.status, 401, "{}", r.text);

    // A REST key limited to this very connection is still no SCIM token.
    let (_, scoped) = t
        .store
        .create_api_key_for("scoped", false, Some(std::slice::from_ref(&t.conn)))
        .await
        .unwrap();
    let r = t
        .request_at(Method::GET, &t.url("/Users"), Some(scoped.expose()), None)
        .await;
    assert_scim_error(&r, 401, &[]);

    // Each works where it belongs.
    let r = t.request_at(Method::GET, &iam, Some(&api_key), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_list(&t.get("/Users?count=1").await);

    // A revoked SCIM token stops working.
    let (info, other) = t.store.create_scim_token("other", &t.conn).await.unwrap();
    let other = other.expose().to_owned();
    let r = t
        .request_at(Method::GET, &t.url("/Users?count=1"), Some(&other), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(t.store.revoke_api_key(&info.id).await.unwrap());
    let r = t
        .request_at(Method::GET, &t.url("/Users?count=1"), Some(&other), None)
        .await;
    assert_scim_error(&r, 401, &[]);
}

// ---- 7. userName changes ------------------------------------------------------------------

#[tokio::test]
async fn user_name_change_of_an_active_user_requests_an_email_change() {
    let t = spawn().await;
    let (old, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&old).await;
    let new = "renamed.person@example.com";
    assert!(t.lp_user(new).is_none());

    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "userName", "value": new}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["userName"], new, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.body["userName"], new, "{}", r.text);
    assert_eq!(t.user_id(new).await, id);

    let lp = t.lp_user(&old).unwrap();
    assert_eq!(lp["pending_email"], new, "{lp}");
    let pending = t.lp_account()["pending_email_changes"].clone();
    assert!(
        pending
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["username"] == old.as_str() && p["newemail"] == new),
        "{pending}"
    );
    assert_eq!(t.lp_requests("updateemail"), 1);

    // The user logs in, LastPass completes the change: the same id, the new name.
    assert!(t.sb.lastpass.simulate_login(t.cid, &old).unwrap());
    assert!(t.lp_user(new).is_some());
    let r = t.replica().await.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["userName"], new, "{}", r.text);
}

#[tokio::test]
async fn user_name_change_of_an_invitee_is_mutability() {
    let t = spawn().await;
    let name = "invitee.rename@example.com";
    let id = t.create_user(name).await;
    let before = t.state().await;
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "userName", "value": "invitee.renamed@example.com"}]),
        )
        .await;
    assert_scim_error(&r, 400, &["mutability"]);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("invitation"), "{detail}");
    let mut put = t.get(&format!("/Users/{id}")).await.body;
    put["userName"] = json!("invitee.renamed@example.com");
    let r = t.put(&format!("/Users/{id}"), &put).await;
    assert_scim_error(&r, 400, &["mutability"]);
    t.assert_unchanged(&before, "invitee rename").await;
    assert_eq!(t.lp_requests("updateemail"), 0);
    assert!(t.lp_user("invitee.renamed@example.com").is_none());
    assert_eq!(t.user_by_name(name).await["id"], id.as_str());
}

// ---- 8. upstream call counts ----------------------------------------------------------------

#[tokio::test]
async fn upstream_user_name_lookup_costs_one_call_cold_and_none_warm() {
    let t = spawn().await;
    let (seeded, _) = t.seeded_active()[0].clone();
    let filter = format!("/Users?{}", by_name(&seeded));

    // No snapshot yet: exactly one getuserdata.
    t.sb.reset_stats();
    let r = t.get(&filter).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.text);
    assert_eq!(t.lp_requests("getuserdata"), 1);
    let id = r.body["Resources"][0]["id"].as_str().unwrap().to_owned();
    t.sb.reset_stats();
    let r = t.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(t.lp_requests("getuserdata"), 1);

    // A listing sweeps the directory; lookups are then free.
    let r = t.get("/Users").await;
    assert_list(&r);
    t.sb.reset_stats();
    for q in [
        filter.clone(),
        format!("/Users?{}", by_name("nobody.here@example.com")),
        format!("/Users/{id}"),
    ] {
        let r = t.get(&q).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
    }
    assert_eq!(t.sb.stats().total.requests, 0, "{:?}", t.sb.stats());

    // A fresh App (same store) has no snapshot: one call again.
    let r = t.replica().await.get(&filter).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.text);
    assert_eq!(r.body["Resources"][0]["id"], id.as_str());
    assert_eq!(t.lp_requests("getuserdata"), 1);
}

// ---- settings -------------------------------------------------------------------------------

#[tokio::test]
async fn settings_email_domain_gives_a_login_name_an_email() {
    let t = spawn_with(Settings {
        scim_email_domain: Some("example.org".into()),
        ..Settings::default()
    })
    .await;
    let r = t
        .post(
            "/Users",
            &json!({"schemas": [USER_SCHEMA], "userName": "jdoe", "active": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["userName"], "jdoe");
    assert!(t.lp_user("jdoe@example.org").is_some());
    assert_eq!(t.user_by_name("JDOE").await["id"], r.body["id"]);

    // Without a domain the same body is refused, naming the setting.
    let t2 = spawn().await;
    let before = t2.state().await;
    let r = t2
        .post(
            "/Users",
            &json!({"schemas": [USER_SCHEMA], "userName": "jdoe", "active": true}),
        )
        .await;
    assert_scim_error(&r, 400, &["invalidValue"]);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("scim_email_domain")
    );
    t2.assert_unchanged(&before, "login name without a domain")
        .await;
}

#[tokio::test]
async fn settings_delete_action_for_an_active_user() {
    // Default: deactivate in LastPass, gone for SCIM.
    let t = spawn().await;
    let (name, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&name).await;
    let r = t.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(t.lp_user(&name).unwrap()["disabled"], true);
    assert_scim_error(&t.get(&format!("/Users/{id}")).await, 404, &[]);
    assert_eq!(
        t.get(&format!("/Users?{}", by_name(&name))).await.body["totalResults"],
        0
    );

    // `Delete`: the account is gone from LastPass.
    let t = spawn_with(Settings {
        scim_delete_action: DeleteAction::Delete,
        ..Settings::default()
    })
    .await;
    let (name, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&name).await;
    let r = t.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(t.lp_user(&name).is_none());
    assert_scim_error(&t.get(&format!("/Users/{id}")).await, 404, &[]);
}

// ---- more scenarios ---------------------------------------------------------------------------

#[tokio::test]
async fn invitee_membership_follows_group_writes() {
    let t = spawn().await;
    let name = "invitee.member@example.com";
    let uid = t.create_user(name).await;
    let gid = t.create_group("Invitee Group", &[&uid]).await;
    assert!(
        t.lp_groups(name).contains(&"Invitee Group".to_owned()),
        "{:?}",
        t.lp_user(name)
    );
    let r = t.get(&format!("/Groups/{gid}")).await;
    assert_eq!(member_ids(&r.body), vec![uid.clone()], "{}", r.text);
    let r = t.get(&format!("/Users/{uid}")).await;
    assert_eq!(r.body["groups"][0]["value"], gid.as_str(), "{}", r.text);
    assert_eq!(
        r.body["groups"][0]["display"], "Invitee Group",
        "{}",
        r.text
    );

    // A fresh App (no snapshot) sees the same.
    let fresh = t.replica().await;
    let g = fresh.get(&format!("/Groups/{gid}")).await;
    let u = fresh.get(&format!("/Users/{uid}")).await;
    drop(fresh);
    assert_eq!(member_ids(&g.body), vec![uid.clone()], "{}", g.text);
    assert_eq!(u.body["groups"][0]["value"], gid.as_str(), "{}", u.text);

    let r = t.delete(&format!("/Users/{uid}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = t.get(&format!("/Groups/{gid}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(member_ids(&r.body).is_empty(), "{}", r.text);
}

#[tokio::test]
async fn concurrent_creates_of_one_user_name_give_one_201() {
    let t = spawn().await;
    let name = "race.user@example.com";
    let body = okta_user(name);
    let (a, b) = tokio::join!(t.post("/Users", &body), t.post("/Users", &body));
    let mut statuses = vec![a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, vec![201, 409], "{} / {}", a.text, b.text);
    let r = t.get(&format!("/Users?{}", by_name(name))).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.text);
    assert_eq!(t.lp_usernames().iter().filter(|n| *n == name).count(), 1);
}

#[tokio::test]
async fn group_name_conflicts_are_409() {
    let t = spawn().await;
    let seeded_group = t.lp_account()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["members"].as_array().is_some_and(|m| !m.is_empty()))
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let gid = t.create_group("Conflict Group", &[]).await;
    let before = t.state().await;
    for name in [seeded_group.to_uppercase(), "conflict group".to_owned()] {
        let r = t
            .post(
                "/Groups",
                &json!({"schemas": [GROUP_SCHEMA], "displayName": name}),
            )
            .await;
        assert_scim_error(&r, 409, &["uniqueness"]);
    }
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "replace", "path": "displayName", "value": seeded_group}]),
        )
        .await;
    assert_scim_error(&r, 409, &["uniqueness"]);
    t.assert_unchanged(&before, "group name conflicts").await;
}

#[tokio::test]
async fn user_name_change_to_a_taken_email_is_409() {
    let t = spawn().await;
    let users = t.seeded_active();
    let (a, b) = (&users[0].0, &users[1].0);
    let id = t.user_id(a).await;
    t.user_id(b).await;
    let before = t.state().await;
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "userName", "value": b.to_uppercase()}]),
        )
        .await;
    assert_scim_error(&r, 409, &["uniqueness"]);
    t.assert_unchanged(&before, "rename to a taken e-mail")
        .await;
    assert_eq!(t.lp_requests("updateemail"), 0);
}

#[tokio::test]
async fn recreate_after_delete_keeps_the_id_and_reactivates() {
    let t = spawn().await;
    let (name, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&name).await;
    assert_eq!(t.delete(&format!("/Users/{id}")).await.status, 204);
    assert_eq!(t.lp_user(&name).unwrap()["disabled"], true);
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "title", "value": "x"}]),
        )
        .await;
    assert_scim_error(&r, 404, &[]);

    let r = t.post("/Users", &okta_user(&name)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str(), "the id is kept");
    assert_eq!(r.body["active"], true);
    let lp = t.lp_user(&name).unwrap();
    assert_eq!(lp["disabled"], false, "{lp}");
    assert_eq!(lp["fullname"], "Okta Spectest", "{lp}");
}

#[tokio::test]
async fn general_filters_find_seeded_and_created_users() {
    let t = spawn().await;
    let (seeded, fullname) = t.seeded_active()[0].clone();
    let (_, family) = fullname.split_once(' ').unwrap();
    let id = t.user_id(&seeded).await;
    for f in [
        format!("emails[type eq \"work\"].value eq \"{seeded}\""),
        format!("userName eq \"{seeded}\" and active eq true"),
        format!(
            "name.familyName eq \"{family}\" and userName sw \"{}\"",
            &seeded[..3]
        ),
    ] {
        let r = t.get(&format!("/Users?{}", filter_q(&f))).await;
        assert_list(&r);
        let found = resources(&r).iter().any(|u| u["id"] == id.as_str());
        assert!(found, "{f}: {}", r.text);
    }
    let r = t.post("/Users", &entra_user("filter.me@example.com")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = t
        .get(&format!("/Users?{}", filter_q("externalId eq \"adelev\"")))
        .await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.text);
    assert_eq!(r.body["Resources"][0]["userName"], "filter.me@example.com");
    let r = t
        .post(
            "/Users/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": "externalId eq \"adelev\"", "attributes": ["userName"]}),
        )
        .await;
    assert_list(&r);
    assert_eq!(r.body["totalResults"], 1, "{}", r.text);
    assert!(
        r.body["Resources"][0].get("externalId").is_none(),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn etag_header_is_meta_version_and_changes_with_the_resource() {
    let t = spawn().await;
    let (seeded, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&seeded).await;
    let r = t.get(&format!("/Users/{id}")).await;
    let v1 = r.body["meta"]["version"].as_str().unwrap().to_owned();
    assert_eq!(r.header("etag"), Some(v1.as_str()));
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "title", "value": "CTO"}]),
        )
        .await;
    let v2 = r.body["meta"]["version"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);
    assert_eq!(r.header("etag"), Some(v2.as_str()));
}

#[tokio::test]
async fn create_inactive_user_is_disabled_in_lastpass() {
    let t = spawn().await;
    let name = "born.inactive@example.com";
    let mut body = okta_user(name);
    body["active"] = json!(false);
    let r = t.post("/Users", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["active"], false);
    assert_eq!(t.lp_user(name).unwrap()["disabled"], true);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(t.get(&format!("/Users/{id}")).await.body["active"], false);
}

#[tokio::test]
async fn group_put_replaces_members() {
    let t = spawn().await;
    let users = t.seeded_active();
    let (a, b, c) = (&users[0].0, &users[1].0, &users[2].0);
    let (ida, idb, idc) = (t.user_id(a).await, t.user_id(b).await, t.user_id(c).await);
    let gid = t.create_group("Put Group", &[&ida, &idb]).await;
    let mut g = t.get(&format!("/Groups/{gid}")).await.body;
    g["members"] = json!([{"value": idb}, {"value": idc}]);
    let r = t.put(&format!("/Groups/{gid}"), &g).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut want = vec![idb.clone(), idc.clone()];
    want.sort();
    assert_eq!(member_ids(&r.body), want, "{}", r.text);
    assert!(!t.lp_groups(a).contains(&"Put Group".to_owned()));
    assert!(t.lp_groups(b).contains(&"Put Group".to_owned()));
    assert!(t.lp_groups(c).contains(&"Put Group".to_owned()));
    let r = t.get(&format!("/Users/{idc}")).await;
    assert!(
        r.body["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["value"] == gid.as_str()),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn read_only_and_required_attributes_and_paging_limits() {
    let t = spawn().await;
    let (name, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&name).await;
    let gid = t.create_group("Read Only", &[&id]).await;
    let before = t.state().await;
    for (op, want) in [
        (
            json!({"op": "replace", "path": "groups", "value": [{"value": gid}]}),
            "mutability",
        ),
        (
            json!({"op": "replace", "path": "id", "value": "another"}),
            "mutability",
        ),
        (json!({"op": "remove", "path": "userName"}), "mutability"),
        (
            json!({"op": "replace", "path": "active", "value": 7}),
            "invalidValue",
        ),
    ] {
        let r = t.patch(&format!("/Users/{id}"), json!([op])).await;
        assert_scim_error(&r, 400, &[want]);
    }
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "add", "path": "members", "value": [{"value": id, "type": "Group"}]}]),
        )
        .await;
    assert_scim_error(&r, 400, &["invalidValue"]);
    let r = t.get("/Users?count=abc").await;
    assert_scim_error(&r, 400, &["invalidValue"]);
    t.assert_unchanged(&before, "read-only attributes").await;

    // An unknown member id is skipped, not refused (identity providers replay stale lists).
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(member_ids(&r.body), vec![id.clone()], "{}", r.text);

    let r = t.get("/Users?startIndex=1000&count=5").await;
    assert_list(&r);
    assert_eq!(r.body["startIndex"], 1000);
    assert_eq!(r.body["itemsPerPage"], 0);
    assert_eq!(r.body["totalResults"].as_u64(), Some(before.total_users));
    assert!(resources(&r).is_empty());

    // `attributes` applies to write responses too.
    let r = t
        .patch(
            &format!("/Users/{id}?attributes=userName"),
            json!([{"op": "replace", "path": "title", "value": "Lead"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["userName"], name.as_str());
    assert!(r.body.get("title").is_none(), "{}", r.text);
    assert_eq!(t.get(&format!("/Users/{id}")).await.body["title"], "Lead");
}

#[tokio::test]
async fn seeded_group_delete_and_rename_with_an_invitee() {
    let t = spawn().await;
    // Deleting a group LastPass seeded removes every membership; it is not listed again.
    let acct = t.lp_account();
    let group = acct["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["members"].as_array().is_some_and(|m| m.len() >= 2))
        .unwrap()
        .clone();
    let gname = group["name"].as_str().unwrap().to_owned();
    let r = t
        .get(&format!(
            "/Groups?{}",
            filter_q(&format!("displayName eq \"{}\"", gname.to_lowercase()))
        ))
        .await;
    assert_eq!(
        r.body["totalResults"], 1,
        "displayName is caseExact false: {}",
        r.text
    );
    let gid = r.body["Resources"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(t.delete(&format!("/Groups/{gid}")).await.status, 204);
    for m in group["members"].as_array().unwrap() {
        let m = m.as_str().unwrap();
        assert!(!t.lp_groups(m).contains(&gname), "{m}");
    }
    let listed = |r: &Resp| {
        resources(r)
            .iter()
            .any(|g| g["displayName"] == gname.as_str())
    };
    assert!(!listed(&t.get("/Groups").await));
    let r = t.replica().await.get("/Groups").await;
    assert!(!listed(&r), "{}", r.text);

    // A rename moves an invitee's membership as well as an active user's.
    let (a, _) = t.seeded_active()[0].clone();
    let ida = t.user_id(&a).await;
    let inv = "mixed.invitee@example.com";
    let idi = t.create_user(inv).await;
    let g = t.create_group("Mixed", &[&ida, &idi]).await;
    assert_eq!(t.lp_groups(inv), vec!["Mixed".to_owned()]);
    let r = t
        .patch(
            &format!("/Groups/{g}"),
            json!([{"op": "replace", "path": "displayName", "value": "Mixed Renamed"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(member_ids(&r.body).len(), 2, "{}", r.text);
    assert_eq!(t.lp_groups(inv), vec!["Mixed Renamed".to_owned()]);
    assert!(t.lp_groups(&a).contains(&"Mixed Renamed".to_owned()));
    assert!(!t.lp_groups(&a).contains(&"Mixed".to_owned()));
    let r = t
        .post(
            "/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": "displayName eq \"Mixed Renamed\""}),
        )
        .await;
    assert_list(&r);
    assert_eq!(r.body["totalResults"], 1, "{}", r.text);
    assert_eq!(r.body["Resources"][0]["id"], g.as_str());
}

// ---- bugs found (ignored until fixed) -------------------------------------------------------

#[tokio::test]
async fn group_case_only_rename_keeps_members() {
    let t = spawn().await;
    let (a, _) = t.seeded_active()[0].clone();
    let ida = t.user_id(&a).await;
    let gid = t.create_group("Case Team", &[&ida]).await;
    assert!(t.lp_groups(&a).contains(&"Case Team".to_owned()));
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "replace", "path": "displayName", "value": "CASE TEAM"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["displayName"], "CASE TEAM", "{}", r.text);
    assert_eq!(member_ids(&r.body), vec![ida.clone()], "{}", r.text);
    let groups = t.lp_groups(&a);
    assert!(
        groups.iter().any(|g| g.eq_ignore_ascii_case("case team")),
        "the member lost the group in LastPass: {groups:?}"
    );
}

#[tokio::test]
async fn group_delete_after_a_member_was_deleted_does_not_resurrect_it() {
    let t = spawn().await;
    let users = t.seeded_active();
    let (a, b) = (&users[0].0, &users[1].0);
    let (ida, idb) = (t.user_id(a).await, t.user_id(b).await);
    let gid = t.create_group("Doomed", &[&ida, &idb]).await;
    assert_eq!(t.delete(&format!("/Users/{ida}")).await.status, 204);
    let r = t.delete(&format!("/Groups/{gid}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = t.get("/Groups").await;
    assert!(
        resources(&r).iter().all(|g| g["displayName"] != "Doomed"),
        "a deleted group is listed again: {}",
        r.text
    );
    assert!(!t.lp_groups(a).contains(&"Doomed".to_owned()));
}

#[tokio::test]
async fn group_rename_after_a_member_was_deleted_does_not_resurrect_the_old_name() {
    let t = spawn().await;
    let users = t.seeded_active();
    let (a, b) = (&users[0].0, &users[1].0);
    let (ida, idb) = (t.user_id(a).await, t.user_id(b).await);
    let gid = t.create_group("Old Name", &[&ida, &idb]).await;
    assert_eq!(t.delete(&format!("/Users/{ida}")).await.status, 204);
    let r = t
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "replace", "path": "displayName", "value": "New Name"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = t.get("/Groups").await;
    let names: Vec<Value> = resources(&r)
        .iter()
        .map(|g| g["displayName"].clone())
        .collect();
    assert!(
        !names.contains(&json!("Old Name")),
        "the old name is listed again: {names:?}"
    );
}

// ---- regressions --------------------------------------------------------------------------

#[tokio::test]
async fn recreate_after_delete_reports_the_created_time_it_keeps() {
    let t = spawn().await;
    let (name, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&name).await;
    assert_eq!(t.delete(&format!("/Users/{id}")).await.status, 204);
    let r = t.post("/Users", &okta_user(&name)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
    let got = t.get(&format!("/Users/{id}")).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(
        got.body["meta"]["created"], r.body["meta"]["created"],
        "POST said one creation time, GET another"
    );
    assert_eq!(got.body["meta"]["version"], r.body["meta"]["version"]);
}

#[tokio::test]
async fn refused_create_keeps_the_row_of_a_deleted_login_name() {
    let t = spawn_with(Settings {
        scim_email_domain: Some("example.org".into()),
        ..Settings::default()
    })
    .await;
    let body = json!({"schemas": [USER_SCHEMA], "userName": "jdoe", "active": true});
    let r = t.post("/Users", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // The invitation is accepted, so a delete keeps the (deactivated) account and the row.
    assert!(
        t.sb.lastpass
            .simulate_login(t.cid, "jdoe@example.org")
            .unwrap()
    );
    let r = t.replica().await.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(t.lp_user("jdoe@example.org").unwrap()["disabled"], true);

    // The same login name with the e-mail of another user: 409, and nothing changes.
    let (taken, _) = t.seeded_active()[0].clone();
    let before = t.state().await;
    let mut clash = body.clone();
    clash["emails"] = json!([{"value": taken, "primary": true}]);
    let r = t.post("/Users", &clash).await;
    assert_scim_error(&r, 409, &["uniqueness"]);
    t.assert_unchanged(&before, "create clashing with a LastPass user")
        .await;

    // So the identity provider that re-creates the user still finds its id.
    let r = t.post("/Users", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
}

#[tokio::test]
async fn group_writes_follow_a_completed_email_change() {
    let t = spawn().await;
    let (old, _) = t.seeded_active()[0].clone();
    let id = t.user_id(&old).await;
    let new = "moved.person@example.com";
    let r = t
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "userName", "value": new}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(t.sb.lastpass.simulate_login(t.cid, &old).unwrap());

    // Another replica (its snapshot sees the new e-mail) adds the user to a new group.
    let other = t.replica().await;
    let r = other
        .post(
            "/Groups",
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "Movers", "members": []}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let gid = r.body["id"].as_str().unwrap().to_owned();
    let r = other
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(member_ids(&r.body), vec![id.clone()], "{}", r.text);
    assert!(
        t.lp_user(&old).is_none(),
        "the old e-mail was invited anew: {:?}",
        t.lp_user(&old)
    );
    assert!(t.lp_groups(new).contains(&"Movers".to_owned()));
    let r = other.get(&format!("/Groups/{gid}")).await;
    assert_eq!(member_ids(&r.body), vec![id.clone()], "{}", r.text);
}
