//! Several `serve` replicas on one PostgreSQL database (over real sockets on 127.0.0.1):
//! concurrent first start (migrations, exactly one first-run key), connections and keys created
//! on one replica seen by the other at once, revocation honoured everywhere on the next request,
//! and a directory write through one replica visible through the other without waiting for the
//! snapshot TTL.
//!
//! Skipped, with one line saying so, when PostgreSQL is not reachable
//! (`LPBRIDGE_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`).

mod common;

use std::time::Duration;

use common::PgDatabase;
use lpbridge::http::Settings;
use lpbridge::serve::{self, SandboxMode, ServeOptions, Started};
use serde_json::{Value, json};

fn options(pg: &PgDatabase, data_dir: &std::path::Path) -> ServeOptions {
    ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        database_url: Some(pg.url.clone()),
        sandbox: SandboxMode::Off,
        sandbox_users: 0,
        settings: Settings {
            // Long: a replica must not rely on expiry to see another's write.
            snapshot_ttl: Duration::from_secs(3600),
            ..Settings::default()
        },
        events: Default::default(),
    }
}

async fn call(
    http: &reqwest::Client,
    s: &Started,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = http
        .request(method, format!("{}{path}", s.url()))
        .bearer_auth(key);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_connections_keys_and_directory_changes() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    // Replicas share the master key (here: one key file in a shared data dir).
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = tokio::join!(
        serve::start(options(&pg, dir.path())),
        serve::start(options(&pg, dir.path()))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let keys: Vec<_> = [&a, &b]
        .iter()
        .filter_map(|s| s.bootstrap_key.as_ref())
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "exactly one replica prints the first-run key"
    );
    let key = keys[0].expose().to_owned();
    let http = reqwest::Client::new();

    // A LastPass account (the sandbox) added through replica A.
    let sb = sandbox::spawn(sandbox::SandboxConfig::for_tests())
        .await
        .unwrap();
    let acct = sb.primary_account();
    let (st, body) = call(
        &http,
        &a,
        reqwest::Method::POST,
        "/connections",
        &key,
        Some(
            json!({"id": "acme", "cid": acct.cid, "provhash": acct.provhash,
                    "endpoint": sb.lastpass_endpoint()}),
        ),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    // Replica B uses it at once (and warms its snapshot).
    let (st, users) = call(
        &http,
        &b,
        reqwest::Method::GET,
        "/unified/iam/users?page_size=100",
        &key,
        None,
    )
    .await;
    assert_eq!(st, 200, "{users}");
    let target = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["status"]["value"] == "enabled")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A write through A is seen through B on its next request, long before the TTL.
    let (st, body) = call(
        &http,
        &a,
        reqwest::Method::PATCH,
        &format!("/unified/iam/users/{target}"),
        &key,
        Some(json!({"status": {"value": "disabled"}})),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (_, user) = call(
        &http,
        &b,
        reqwest::Method::GET,
        &format!("/unified/iam/users/{target}"),
        &key,
        None,
    )
    .await;
    assert_eq!(user["data"]["status"]["value"], "disabled", "{user}");

    // A key made on one replica (as `lpbridge apikey create` would) works on both; revoked
    // through B, it is refused by A on the next request.
    let (info, ro) = a.app.store.create_api_key("reader", true).await.unwrap();
    for s in [&a, &b] {
        let (st, _) = call(
            &http,
            s,
            reqwest::Method::GET,
            "/unified/iam/roles",
            ro.expose(),
            None,
        )
        .await;
        assert_eq!(st, 200);
    }
    assert!(b.app.store.revoke_api_key(&info.id).await.unwrap());
    let (st, body) = call(
        &http,
        &a,
        reqwest::Method::GET,
        "/unified/iam/roles",
        ro.expose(),
        None,
    )
    .await;
    assert_eq!(st, 401, "{body}");

    // A connection removed through B is gone for A.
    let (st, _) = call(
        &http,
        &b,
        reqwest::Method::DELETE,
        "/connections/acme",
        &key,
        None,
    )
    .await;
    assert_eq!(st, 200);
    let (st, body) = call(
        &http,
        &a,
        reqwest::Method::GET,
        "/unified/iam/users",
        &key,
        None,
    )
    .await;
    assert_eq!(st, 404, "{body}");

    // Restarting a replica prints no new key.
    a.shutdown().await.unwrap();
    let again = serve::start(options(&pg, dir.path())).await.unwrap();
    assert!(again.bootstrap_key.is_none());
    again.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
