//! SCIM benchmark (issue 6's figures), all on 127.0.0.1 in one process: Entra-style provisioning
//! cycles against the sandbox, each
//!
//! 1. `GET /Users?filter=userName eq "…"` (the matching-attribute query; no match),
//! 2. `POST /Users` (Entra's create body, enterprise extension included),
//! 3. `PATCH /Users/{id}` (PascalCase `Replace` of displayName and `emails[type eq "work"].value`),
//! 4. `GET /Users/{id}`,
//!
//! reporting wall time, cycles/s and upstream LastPass calls per cycle by command, in two
//! settings: a fresh directory snapshot (the steady state of a provisioning run) and no snapshot
//! at all (TTL 0: every read is a live lookup).
//!
//! `cargo bench -p lpbridge --bench scim`; knobs: `BENCH_CYCLES` (1000), `BENCH_USERS` (2000),
//! `BENCH_CONCURRENCY` (4, Entra's documented per-tenant rate is ~25 requests/s).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lastpass::{Cid, Secret};
use lp_types::ConnectionId;
use lpbridge::http::{self, App, Settings};
use lpbridge::store::{NewConnection, Store};
use serde_json::{Value, json};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let cycles = env_usize("BENCH_CYCLES", 1000);
    let users = env_usize("BENCH_USERS", 2000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 4).max(1);
    println!(
        "# SCIM Entra-style cycles: {cycles} per setting, {concurrency} at a time, {users}-user sandbox"
    );
    for (label, ttl) in [
        ("fresh snapshot (TTL 1 h)", Duration::from_secs(3600)),
        ("no snapshot (TTL 0)", Duration::ZERO),
    ] {
        bench(label, ttl, cycles, users, concurrency).await;
    }
}

async fn bench(label: &str, ttl: Duration, cycles: usize, users: usize, concurrency: usize) {
    let sb = sandbox::spawn(sandbox::SandboxConfig::with_seed(
        sandbox::lastpass::SeedOptions {
            users,
            groups: 20,
            folders: 5,
            events: 0,
            seed: 7,
        },
    ))
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(None, dir.path()).await.expect("store");
    let acct = sb.primary_account();
    let conn = ConnectionId::new("bench").expect("id");
    store
        .create_connection(
            NewConnection {
                id: conn.clone(),
                cid: Cid(acct.cid),
                endpoint: lastpass::parse_endpoint(&sb.lastpass_endpoint()).expect("endpoint"),
                provhash: Secret::new(acct.provhash.clone()),
                time_zone: None,
            },
            false,
        )
        .await
        .expect("connection");
    let (_, token) = store
        .create_scim_token("bench", &conn)
        .await
        .expect("token");
    let token = token.expose().to_owned();
    let app = App::new(
        store,
        Settings {
            snapshot_ttl: ttl,
            ..Settings::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/scim/v2", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, http::router(app)).await });
    let client = reqwest::Client::new();

    // The steady state of a provisioning run: the directory was read once (an import, or the
    // first full query), then each cycle works on it.
    let warm = client
        .get(format!("{base}/Users?count=1"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("warm");
    assert_eq!(warm.status(), 200);
    sb.reset_stats();

    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, base, token, next) =
            (client.clone(), base.clone(), token.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= cycles {
                    break;
                }
                cycle(&client, &base, &token, i).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let elapsed = started.elapsed();
    let stats = sb.stats();
    let by_cmd: BTreeMap<String, u64> = stats
        .by_cmd
        .iter()
        .map(|(k, v)| (k.clone(), v.requests))
        .collect();
    let total: u64 = by_cmd.values().sum();
    println!("## {label}");
    println!(
        "wall {:.2?}  {:.0} cycles/s  ({:.0} SCIM requests/s)",
        elapsed,
        cycles as f64 / elapsed.as_secs_f64(),
        (cycles * 4) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "upstream calls {total} = {:.2} per cycle: {}",
        total as f64 / cycles as f64,
        by_cmd
            .iter()
            .map(|(k, v)| format!("{k} {:.2}", *v as f64 / cycles as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

async fn cycle(client: &reqwest::Client, base: &str, token: &str, i: usize) {
    let email = format!("bench.user{i}@contoso.example");
    let q = client
        .get(format!("{base}/Users"))
        .query(&[("filter", format!("userName eq \"{email}\""))])
        .bearer_auth(token)
        .send()
        .await
        .expect("query");
    assert_eq!(q.status(), 200);
    let q: Value = q.json().await.expect("json");
    assert_eq!(q["totalResults"], 0);
    let created = client
        .post(format!("{base}/Users"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .json(&json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "externalId": format!("bench{i}"),
            "userName": email,
            "active": true,
            "emails": [{"primary": true, "type": "work", "value": email}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": format!("Bench User{i}"), "familyName": format!("User{i}"), "givenName": "Bench"},
            "roles": [],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Bench"}
        }))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    let patched = client
        .patch(format!("{base}/Users/{id}"))
        .bearer_auth(token)
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "Replace", "path": "displayName", "value": format!("Bench U. {i}")},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": email}
            ]
        }))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let got = client
        .get(format!("{base}/Users/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), 200);
    let got: Value = got.json().await.expect("json");
    assert_eq!(got["displayName"], format!("Bench U. {i}"));
}
