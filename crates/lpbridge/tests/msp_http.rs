//! The MSP import wizard over HTTP (`/msp/…`), against the in-process emulators: every step
//! (credentials, integrations, filters, fetch, choices, users, apply with progress, result,
//! lock status, delete), the lock between two admins, bad input refused with the field and
//! value (nothing changed), a stale plan, and read-only keys. The router is called directly.
#![cfg(feature = "sandbox")]

mod msp_common;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use lpbridge::http::{self, App, Settings};
use msp_common::{CW, Fx};
use serde_json::{Value, json};
use tower::ServiceExt;

struct T {
    fx: Fx,
    router: Router,
    a: String,
    b: String,
    ro: String,
}

struct Resp {
    status: u16,
    body: Value,
    text: String,
}

async fn spawn() -> T {
    let fx = Fx::new(false).await.unwrap();
    let (_, a) = fx.store.create_api_key("alice", false).await.unwrap();
    let (_, b) = fx.store.create_api_key("bob", false).await.unwrap();
    let (_, ro) = fx.store.create_api_key("viewer", true).await.unwrap();
    // One attempt per PSA call: fault tests need no retries.
    let settings = Settings {
        client: http::ClientSettings {
            attempts: 1,
            ..http::ClientSettings::default()
        },
        ..Settings::default()
    };
    let app = App::new(fx.store.clone(), settings);
    T {
        router: http::router(app),
        fx,
        a: a.expose().to_owned(),
        b: b.expose().to_owned(),
        ro: ro.expose().to_owned(),
    }
}

impl T {
    async fn call(&self, method: Method, uri: &str, key: &str, body: Option<Value>) -> Resp {
        let b = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {key}"));
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&v).unwrap()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Resp {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    async fn get(&self, uri: &str) -> Resp {
        self.call(Method::GET, uri, &self.a, None).await
    }
}

fn expect(r: &Resp, status: u16) -> &Value {
    assert_eq!(r.status, status, "{}", r.text);
    &r.body["data"]
}

fn error_starts(r: &Resp, status: u16, message: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    let m = r.body["message"].as_str().unwrap_or_default();
    assert!(
        m.starts_with(message),
        "{message:?} not at the start of {m:?}"
    );
}

#[tokio::test]
async fn the_wizard_step_by_step() {
    let t = spawn().await;
    // Credentials: the sandbox's, never the key; an empty key is "Credentials are required".
    let c = t.get("/msp/credentials").await;
    assert!(
        expect(&c, 200)["base_url"]
            .as_str()
            .unwrap()
            .contains("/business/v1")
    );
    assert!(!c.text.contains("lpkey_"), "{}", c.text);
    let r = t
        .call(
            Method::PUT,
            "/msp/credentials",
            &t.a,
            Some(json!({"api_key": ""})),
        )
        .await;
    error_starts(&r, 400, "Credentials are required");
    let key = t.fx.sb.msp.credentials().api_key;
    let r = t
        .call(
            Method::PUT,
            "/msp/credentials",
            &t.a,
            Some(json!({"api_key": key, "base_url": t.fx.sb.msp_base_url()})),
        )
        .await;
    assert!(!r.text.contains(&key));
    expect(&r, 200);

    // Integrations, filters, lock status.
    let r = t.get("/msp/integrations").await;
    assert_eq!(expect(&r, 200).as_array().unwrap().len(), 2);
    let r = t.get(&format!("/msp/integrations/{CW}/attributes")).await;
    let types = expect(&r, 200)["types"].as_array().unwrap().clone();
    assert!(types.iter().any(|t| t["name"] == "Client"), "{types:?}");
    let r = t.get(&format!("/msp/integrations/{CW}/lock")).await;
    assert_eq!(expect(&r, 200)["locked"], false);

    // Fetch: both lists; the lock is taken.
    let r = t
        .call(
            Method::POST,
            "/msp/imports",
            &t.a,
            Some(json!({"psa": CW, "filter": {"types": ["1"], "statuses": ["1"]}})),
        )
        .await;
    let w = expect(&r, 201).clone();
    let id = w["id"].as_str().unwrap().to_owned();
    let rows = w["lists"]["companies_in_psa"].as_array().unwrap().clone();
    assert!(rows.iter().any(|r| r["import_status"] == "Unmapped"));
    assert!(
        rows.iter()
            .any(|r| r["import_status"] == "Unmapped \u{2013} potential duplicate")
    );
    assert_eq!(w["lists"]["psa_name"], "ConnectWise Manage");
    assert_eq!(w["lock"]["locked"], true);

    // Another admin: locked out, with the product's words.
    let r = t
        .call(Method::POST, "/msp/imports", &t.b, Some(json!({"psa": CW})))
        .await;
    error_starts(
        &r,
        409,
        "Another admin is already working with this integration",
    );
    let r = t
        .call(
            Method::PATCH,
            &format!("/msp/imports/{id}/companies"),
            &t.b,
            Some(json!({"choices": []})),
        )
        .await;
    error_starts(
        &r,
        409,
        "Another admin is already working with this integration",
    );
    let r = t.get(&format!("/msp/integrations/{CW}/lock")).await;
    assert!(
        expect(&r, 200)["holder"]
            .as_str()
            .unwrap()
            .contains("alice")
    );
    // A read-only key may look, not change.
    let r = t
        .call(
            Method::POST,
            "/msp/imports",
            &t.ro,
            Some(json!({"psa": CW})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = t
        .call(Method::GET, &format!("/msp/imports/{id}"), &t.ro, None)
        .await;
    expect(&r, 200);

    // Choices: keep two unmapped companies, leave the rest out.
    let unmapped: Vec<Value> = rows
        .iter()
        .filter(|r| r["import_status"] == "Unmapped" && r["contacts"].as_u64().unwrap() >= 2)
        .cloned()
        .collect();
    let (c1, c2) = (
        unmapped[0]["psa_company_id"].as_str().unwrap().to_owned(),
        unmapped[1]["psa_company_id"].as_str().unwrap().to_owned(),
    );
    let choices: Vec<Value> = rows
        .iter()
        .map(|r| {
            let cid = r["psa_company_id"].as_str().unwrap();
            json!({"company": cid, "import": cid == c1 || cid == c2})
        })
        .collect();
    let r = t
        .call(
            Method::PATCH,
            &format!("/msp/imports/{id}/companies"),
            &t.a,
            Some(json!({"choices": choices})),
        )
        .await;
    expect(&r, 200);
    // Bad choices are refused naming field and value; the wizard is unchanged.
    let before = t.get(&format!("/msp/imports/{id}/plan")).await.body;
    let r = t
        .call(
            Method::PATCH,
            &format!("/msp/imports/{id}/companies"),
            &t.a,
            Some(json!({"choices": [{"company": c1, "action": "map", "managed_company_id": "99999999"}]})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("99999999") && r.text.contains("unknown id"),
        "{}",
        r.text
    );
    let target =
        t.fx.sb
            .msp
            .with_tenant(|t| t.companies.keys().next().unwrap().to_string());
    let r = t
        .call(
            Method::PATCH,
            &format!("/msp/imports/{id}/companies"),
            &t.a,
            Some(json!({"choices": [
                {"company": c1, "action": "map", "managed_company_id": target},
                {"company": c2, "action": "map", "managed_company_id": target}]})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("two PSA companies"), "{}", r.text);
    let r = t
        .call(
            Method::PATCH,
            &format!("/msp/imports/{id}/companies"),
            &t.a,
            Some(json!({"choices": [{"company": "no-such-company", "import": true}]})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("no-such-company"), "{}", r.text);
    assert_eq!(t.get(&format!("/msp/imports/{id}/plan")).await.body, before);

    // Users: select two e-mails of c1.
    let r = t
        .get(&format!("/msp/imports/{id}/companies/{c1}/users"))
        .await;
    let u = expect(&r, 200).clone();
    let emails: Vec<String> = u["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["active"] == true)
        .filter_map(|c| c["email"].as_str().map(str::to_owned))
        .take(2)
        .collect();
    assert!(
        u["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["selected"] == false)
    );
    let r = t
        .call(
            Method::PATCH,
            &format!("/msp/imports/{id}/companies/{c1}/users"),
            &t.a,
            Some(json!({"emails": ["not-an-email"]})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("not-an-email"), "{}", r.text);
    let r = t
        .call(
            Method::PATCH,
            &format!("/msp/imports/{id}/companies/{c1}/users"),
            &t.a,
            Some(json!({"emails": ["stranger@nowhere.example"]})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("unknown contact"), "{}", r.text);
    let r = t
        .call(
            Method::PATCH,
            &format!("/msp/imports/{id}/companies/{c1}/users"),
            &t.a,
            Some(json!({"emails": emails})),
        )
        .await;
    let u = expect(&r, 200);
    assert_eq!(
        u["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["selected"] == true)
            .count(),
        2
    );

    // Apply: 202, then the result (polled: the run is recorded before the 202).
    t.fx.sb.msp.reset_stats();
    let r = t
        .call(
            Method::POST,
            &format!("/msp/imports/{id}/apply"),
            &t.a,
            None,
        )
        .await;
    let a = expect(&r, 202).clone();
    assert_eq!(a["status"], "running");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let result = loop {
        let r = t.get(&format!("/msp/imports/{id}/result")).await;
        let v = expect(&r, 200).clone();
        if v["status"] != "running" {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::task::yield_now().await;
    };
    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["companies_imported"], 2);
    assert_eq!(result["companies"]["created"], 2);
    assert_eq!(result["users_imported"], 2);
    assert_eq!(result["errors"], json!([]));
    assert_eq!(result["progress"], json!({"done": 4, "total": 4}));
    assert_eq!(t.fx.rest_calls().get("users.add").copied(), Some(2));
    // The lock is released with the import.
    let r = t.get(&format!("/msp/integrations/{CW}/lock")).await;
    assert_eq!(expect(&r, 200)["locked"], false);
    let r = t.get(&format!("/msp/imports/{id}")).await;
    assert_eq!(expect(&r, 200)["run"]["status"], "succeeded");

    // Bob's turn; a change in the PSA after the fetch makes his plan stale.
    let r = t
        .call(
            Method::POST,
            "/msp/imports",
            &t.b,
            Some(json!({"psa": CW, "filter": {"types": ["1"], "statuses": ["1"]}})),
        )
        .await;
    let w2 = expect(&r, 201).clone();
    let id2 = w2["id"].as_str().unwrap();
    let mapped = w2["lists"]["companies_in_psa"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["import_status"] == "Mapped")
        .count();
    assert_eq!(mapped, 2);
    t.fx.rename_company(CW, &c2, "Renamed While Bob Looked")
        .await;
    t.fx.sb.msp.reset_stats();
    let r = t
        .call(
            Method::POST,
            &format!("/msp/imports/{id2}/apply"),
            &t.b,
            None,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(
        r.text.contains("stale") && r.text.contains("Renamed While Bob Looked"),
        "{}",
        r.text
    );
    assert_eq!(t.fx.rest_writes(), 0);
    // Bob still holds the lock until he ends the wizard.
    let r = t
        .call(Method::POST, "/msp/imports", &t.a, Some(json!({"psa": CW})))
        .await;
    error_starts(
        &r,
        409,
        "Another admin is already working with this integration",
    );
    let r = t
        .call(Method::DELETE, &format!("/msp/imports/{id2}"), &t.b, None)
        .await;
    expect(&r, 200);
    let r = t.get(&format!("/msp/integrations/{CW}/lock")).await;
    assert_eq!(expect(&r, 200)["locked"], false);
    let r = t.get(&format!("/msp/imports/{id2}")).await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn psa_failures_use_the_products_messages() {
    let t = spawn().await;
    t.fx.psa_fault(
        CW,
        json!({"kind": "status", "status": 500, "path": "company/companies"}),
    )
    .await;
    let r = t
        .call(Method::POST, "/msp/imports", &t.a, Some(json!({"psa": CW})))
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("We received a server error from your PSA provider"),
        "{}",
        r.text
    );
    // The failed fetch released the lock.
    let r = t.get(&format!("/msp/integrations/{CW}/lock")).await;
    assert_eq!(expect(&r, 200)["locked"], false);
    let r = t.get("/msp/integrations/nope/attributes").await;
    assert_eq!(r.status, 404, "{}", r.text);
}
