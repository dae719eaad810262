//! The service's event endpoints: `GET /events` (keyset pages, filters, refusals naming the
//! parameter), `/events/watcher`, `/webhooks` CRUD with a write-only secret, dead letters and
//! replay, called on the router in process; and `lpbridge serve` watching a connection and
//! delivering to a subscription over real sockets. The LastPass side is the sandbox on
//! 127.0.0.1:0.
#![cfg(feature = "sandbox")]

mod common;
mod events_common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use events_common::{Env, Fixture, OK, env, env_with, eventually, receiver};
use lpbridge::http::{self, App, Settings};
use lpbridge::serve::{SandboxMode, ServeOptions};
use serde_json::{Value, json};
use tower::ServiceExt;

const SECRET: &str = "whsec-never-shown-7781";

struct T {
    e: Env,
    router: Router,
    rw: String,
    ro: String,
    _fx: Fixture,
}

async fn spawn(events: usize) -> T {
    let fx = Fixture::sqlite();
    let e = env(&fx, events).await;
    let (_, rw) = e.store.create_api_key("rw", false).await.unwrap();
    let (_, ro) = e.store.create_api_key("ro", true).await.unwrap();
    let app = App::new(e.store.clone(), Settings::default());
    T {
        router: http::router(app),
        rw: rw.expose().to_owned(),
        ro: ro.expose().to_owned(),
        e,
        _fx: fx,
    }
}

impl T {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value, String) {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {key}"));
        let req = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                b.body(Body::from(serde_json::to_vec(&v).unwrap())).unwrap()
            }
            None => b.body(Body::empty()).unwrap(),
        };
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        )
    }

    async fn get(&self, uri: &str) -> (u16, Value, String) {
        self.call(Method::GET, uri, &self.rw, None).await
    }

    /// Fills the outbox with a backfill of the seeded events.
    async fn collect(&self) {
        let e = &self.e;
        let start = e.now() - chrono::Duration::weeks(7);
        let to = e.now() - chrono::Duration::seconds(60);
        e.run_once(e.options(Some(start), Some(to)), "w").await;
    }
}

fn assert_400(r: &(u16, Value, String), field: &str) {
    assert_eq!(r.0, 400, "{}", r.2);
    let m = r.1["message"].as_str().unwrap_or_default();
    assert!(m.contains(field), "{field:?} not in {m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_paged_newest_first_and_filtered() {
    let t = spawn(1500).await;
    t.collect().await;
    let total = t.e.store.event_count(&t.e.conn).await.unwrap() as usize;
    // A walk of `next` cursors sees every event once, newest first.
    let mut uri = "/events?page_size=200".to_owned();
    let mut ids = Vec::new();
    let mut times = Vec::new();
    loop {
        let (s, body, text) = t.call(Method::GET, &uri, &t.ro, None).await;
        assert_eq!(s, 200, "{text}");
        for ev in body["data"].as_array().unwrap() {
            ids.push(ev["id"].as_str().unwrap().to_owned());
            times.push(ev["time_utc"].as_str().unwrap().to_owned());
            assert!(ev["category"].is_string() && ev["time"].is_string());
        }
        match body["next"].as_str() {
            Some(n) => uri = format!("/events?page_size=200&next={n}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), total);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), total);
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // Filters, checked against the store's records.
    let all = t.e.store.events_after(&t.e.conn, 0, 100_000).await.unwrap();
    let some = &all[all.len() / 2].record;
    let (_, body, _) = t
        .get(&format!(
            "/events?page_size=1000&user={}",
            some.username.to_uppercase().replace('@', "%40")
        ))
        .await;
    let expected = all
        .iter()
        .filter(|e| e.record.username.eq_ignore_ascii_case(&some.username))
        .count();
    assert_eq!(body["data"].as_array().unwrap().len(), expected);
    let (_, body, _) = t
        .get("/events?page_size=1000&category=authentication")
        .await;
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["category"] == "authentication")
    );
    let (_, body, _) = t
        .get(&format!(
            "/events?page_size=1000&filter[action]={}",
            some.action.replace(' ', "%20")
        ))
        .await;
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] == some.action.as_str())
    );
    let from = all.iter().map(|e| e.record.time_utc).min().unwrap();
    let (_, body, _) = t
        .get(&format!(
            "/events?page_size=1000&order=asc&from={}&to={}",
            from.to_rfc3339().replace('+', "%2B"),
            from.to_rfc3339().replace('+', "%2B")
        ))
        .await;
    let first = body["data"].as_array().unwrap();
    assert!(!first.is_empty());
    assert!(first.iter().all(|e| e["time_utc"] == first[0]["time_utc"]));

    // Refusals name the parameter.
    assert_400(&t.get("/events?page_size=0").await, "page_size");
    assert_400(&t.get("/events?category=gossip").await, "category");
    assert_400(&t.get("/events?from=whenever").await, "from");
    assert_400(&t.get("/events?sort=up").await, "sort");
    assert_400(&t.get("/events?next=bm9wZQ").await, "next");
    let (_, body, _) = t.get("/events?page_size=1").await;
    let desc_cursor = body["next"].as_str().unwrap().to_owned();
    assert_400(
        &t.get(&format!("/events?order=asc&next={desc_cursor}"))
            .await,
        "next",
    );
    // No key, unknown connection.
    let (s, _, _) = t.call(Method::GET, "/events", "lpb_nope_nope", None).await;
    assert_eq!(s, 401);
    let req = Request::builder()
        .uri("/events")
        .header("authorization", format!("Bearer {}", t.rw))
        .header("x-account-id", "globex")
        .body(Body::empty())
        .unwrap();
    assert_eq!(t.router.clone().oneshot(req).await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_crud_never_returns_the_secret() {
    let t = spawn(100).await;
    let (s, created, text) = t
        .call(
            Method::POST,
            "/webhooks",
            &t.rw,
            Some(
                json!({"url": "https://siem.example.com/in", "secret": SECRET,
                        "categories": ["authentication", "admin"]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{text}");
    assert!(!text.contains(SECRET));
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["connection_id"], "acme");
    assert_eq!(created["data"]["enabled"], true);
    assert!(created["data"].get("secret").is_none());

    let (s, list, text) = t.call(Method::GET, "/webhooks", &t.ro, None).await;
    assert_eq!(s, 200);
    assert!(!text.contains(SECRET));
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (s, one, text) = t.get(&format!("/webhooks/{id}")).await;
    assert_eq!(s, 200);
    assert!(!text.contains(SECRET));
    assert_eq!(
        one["data"]["categories"],
        json!(["authentication", "admin"])
    );

    let (s, patched, text) = t
        .call(
            Method::PATCH,
            &format!("/webhooks/{id}"),
            &t.rw,
            Some(json!({"secret": "another-secret-99", "categories": null, "enabled": false})),
        )
        .await;
    assert_eq!(s, 200, "{text}");
    assert!(!text.contains("another-secret-99"));
    assert_eq!(patched["data"]["categories"], Value::Null);
    assert_eq!(patched["data"]["enabled"], false);
    let stored = t.e.store.get_webhook(&id).await.unwrap().unwrap();
    assert_eq!(stored.secret.expose(), "another-secret-99");

    // Refusals: by field, read-only keys, unknown ids.
    let r = t
        .call(
            Method::POST,
            "/webhooks",
            &t.rw,
            Some(json!({"url": "https://x.example", "secret": SECRET, "categories": ["gossip"]})),
        )
        .await;
    assert_400(&r, "categories");
    assert!(!r.2.contains(SECRET));
    let r = t
        .call(
            Method::POST,
            "/webhooks",
            &t.rw,
            Some(json!({"url": "ftp://x.example", "secret": SECRET})),
        )
        .await;
    assert_400(&r, "ftp://x.example");
    assert!(!r.2.contains(SECRET));
    assert_400(
        &t.call(
            Method::POST,
            "/webhooks",
            &t.rw,
            Some(json!({"url": "https://x.example"})),
        )
        .await,
        "secret",
    );
    assert_400(
        &t.call(
            Method::PATCH,
            &format!("/webhooks/{id}"),
            &t.rw,
            Some(json!({})),
        )
        .await,
        "body",
    );
    let (s, _, _) = t
        .call(
            Method::POST,
            "/webhooks",
            &t.ro,
            Some(json!({"url": "https://x.example", "secret": SECRET})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _, _) = t
        .call(Method::DELETE, &format!("/webhooks/{id}"), &t.ro, None)
        .await;
    assert_eq!(s, 403);
    assert_eq!(t.get("/webhooks/wh_nothing").await.0, 404);

    // A key limited to another connection sees none of it.
    let other = lp_types::ConnectionId::new("globex").unwrap();
    t.e.store
        .create_connection(
            lpbridge::store::NewConnection {
                id: other.clone(),
                cid: lastpass::Cid(1),
                endpoint: "http://127.0.0.1:1/enterpriseapi.php".parse().unwrap(),
                provhash: lastpass::Secret::new("x"),
                time_zone: None,
            },
            false,
        )
        .await
        .unwrap();
    let (_, scoped) =
        t.e.store
            .create_api_key_for("scoped", false, Some(&[other]))
            .await
            .unwrap();
    let scoped = scoped.expose().to_owned();
    assert_eq!(
        t.call(Method::GET, &format!("/webhooks/{id}"), &scoped, None)
            .await
            .0,
        403
    );
    let (_, list, _) = t.call(Method::GET, "/webhooks", &scoped, None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);

    let (s, _, _) = t
        .call(Method::DELETE, &format!("/webhooks/{id}"), &t.rw, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(t.get(&format!("/webhooks/{id}")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_replayed_through_the_api() {
    let t = spawn(300).await;
    t.collect().await;
    let (url, rx) = receiver(OK).await;
    let (_, created, _) = t
        .call(
            Method::POST,
            "/webhooks",
            &t.rw,
            Some(json!({"url": url, "secret": SECRET})),
        )
        .await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let batch = t.e.store.events_after(&t.e.conn, 0, 50).await.unwrap();
    let sink = format!("webhook:{id}");
    t.e.store
        .dead_letter(
            &t.e.conn,
            &sink,
            Some(&id),
            &batch,
            "HTTP 503",
            8,
            batch[49].seq,
        )
        .await
        .unwrap();
    let (s, letters, text) = t.get(&format!("/webhooks/{id}/dead_letters")).await;
    assert_eq!(s, 200, "{text}");
    let letters = letters["data"].as_array().unwrap().clone();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["event_count"], 50);
    assert_eq!(letters[0]["error"], "HTTP 503");
    assert_eq!(
        t.call(Method::POST, &format!("/webhooks/{id}/replay"), &t.ro, None)
            .await
            .0,
        403
    );
    let (s, out, text) = t
        .call(Method::POST, &format!("/webhooks/{id}/replay"), &t.rw, None)
        .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(out["data"]["replayed"], 1);
    assert_eq!(out["data"]["failed"], 0);
    assert_eq!(rx.accepted.lock().len(), 50);
    let (_, now, _) = t.get(&format!("/webhooks/{id}/dead_letters")).await;
    assert!(now["data"].as_array().unwrap().is_empty());
    let (_, all, _) = t
        .get(&format!(
            "/webhooks/{id}/dead_letters?include_replayed=true"
        ))
        .await;
    assert!(all["data"][0]["replayed_at"].is_string());
    let r = t
        .call(
            Method::POST,
            &format!("/webhooks/{id}/replay"),
            &t.rw,
            Some(json!({"id": 12345})),
        )
        .await;
    assert_eq!(r.0, 404, "{}", r.2);
    assert_400(
        &t.get(&format!("/webhooks/{id}/dead_letters?x=1")).await,
        "x",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_switch_is_per_connection() {
    let t = spawn(10).await;
    let (s, w, _) = t.get("/events/watcher").await;
    assert_eq!(s, 200);
    assert_eq!(w["data"]["events_watch"], false);
    assert_eq!(w["data"]["connection_id"], "acme");
    let (s, _, _) = t
        .call(
            Method::PATCH,
            "/events/watcher",
            &t.ro,
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, w, _) = t
        .call(
            Method::PATCH,
            "/events/watcher",
            &t.rw,
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(w["data"]["events_watch"], true);
    assert_eq!(
        t.e.store.events_watch_connections().await.unwrap(),
        vec![t.e.conn.clone()]
    );
    assert_400(
        &t.call(
            Method::PATCH,
            "/events/watcher",
            &t.rw,
            Some(json!({"enabled": "yes"})),
        )
        .await,
        "enabled",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_watches_a_connection_and_feeds_its_subscription() {
    let fx = Fixture::sqlite();
    // Real time and steady activity: the live cursor has something to collect.
    let cfg = sandbox::SandboxConfig::with_seed(sandbox::lastpass::SeedOptions {
        users: 30,
        groups: 3,
        folders: 4,
        events: 100,
        seed: 9,
    })
    .with_activity(sandbox::activity::ActivityConfig {
        per_hour: 36_000.0,
        tick: Duration::from_millis(200),
        seed: 5,
    });
    let e = env_with(&fx, cfg).await;
    e.store.set_events_watch(&e.conn, true).await.unwrap();
    let (url, rx) = receiver(OK).await;
    e.store
        .create_webhook(lpbridge::store::NewWebhook {
            connection_id: e.conn.clone(),
            url,
            secret: lastpass::Secret::new(SECRET),
            categories: None,
            enabled: true,
        })
        .await
        .unwrap();
    let (_, key) = e.store.create_api_key("k", true).await.unwrap();
    let opts = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: fx.dir.path().join("data"),
        database_url: None,
        sandbox: SandboxMode::Off,
        sandbox_users: 0,
        settings: Settings::default(),
        events: lpbridge::events::service::EventSettings {
            poll: Duration::from_secs(1),
            ..Default::default()
        },
    };
    let started = lpbridge::serve::start(opts).await.unwrap();
    eventually(
        "events delivered to the subscription",
        Duration::from_secs(40),
        || async { rx.accepted.lock().len() >= 20 },
    )
    .await;
    let body: Value = reqwest::Client::new()
        .get(format!("{}/events?page_size=5", started.url()))
        .bearer_auth(key.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 5, "{body}");
    started.shutdown().await.unwrap();
    // Graceful shutdown released the leases.
    assert!(e.store.lease("events:acme").await.unwrap().is_none());
    let accepted = rx.accepted.lock().clone();
    let mut unique = accepted.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), accepted.len(), "each event once");
}
