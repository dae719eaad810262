//! Fidelity of the Autotask emulator against the reference shapes (psa-and-msp.md §0, §2):
//! discovery, header auth and its 500-vs-401 split, the query envelope and paging (with the
//! POST-continuation trap), count, get-by-id, picklists, the thread and hourly limits, faults,
//! the control API, and the filter language (table tests plus a proptest against a model).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use proptest::prelude::*;
use reqwest::{Method, RequestBuilder, StatusCode};
use sandbox::autotask::{AutotaskConfig, Credentials, FaultKind, FaultRule};
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

const COMPANIES: usize = 600;
const CONTACTS: usize = 2400;

struct At {
    sb: SandboxHandle,
    http: reqwest::Client,
    creds: Credentials,
}

async fn start(config: AutotaskConfig) -> At {
    let sb = sandbox::spawn(SandboxConfig {
        autotask: config,
        ..SandboxConfig::for_tests()
    })
    .await
    .expect("sandbox starts");
    let creds = sb.autotask.credentials();
    At {
        sb,
        http: reqwest::Client::new(),
        creds,
    }
}

async fn small() -> At {
    start(AutotaskConfig::seeded(11).with_counts(COMPANIES, CONTACTS)).await
}

impl At {
    fn base(&self) -> String {
        self.sb.autotask_base()
    }

    fn zone(&self) -> String {
        format!("{}/ATServicesRest/V1.0", self.base())
    }

    fn control(&self) -> String {
        format!("{}/_sandbox/autotask", self.sb.base_url())
    }

    fn authed(&self, method: Method, url: &str) -> RequestBuilder {
        self.http
            .request(method, url)
            .header("ApiIntegrationCode", &self.creds.integration_code)
            .header("UserName", &self.creds.username)
            .header("Secret", &self.creds.secret)
            .header("Content-Type", "application/json")
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .authed(Method::POST, &format!("{}/{path}", self.zone()))
            .json(body)
            .send()
            .await
            .expect("request");
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, url: &str) -> (StatusCode, Value) {
        let r = self.authed(Method::GET, url).send().await.expect("request");
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn ctl(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.control()));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("control request");
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Every item of a POSTed query, following `nextPageUrl` with POST of the same body.
    async fn all(&self, entity: &str, body: &Value) -> Vec<Value> {
        let (s, mut page) = self.post(&format!("{entity}/query"), body).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let mut items = Vec::new();
        loop {
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            let Some(next) = page["pageDetails"]["nextPageUrl"].as_str() else {
                return items;
            };
            let r = self
                .authed(Method::POST, next)
                .json(body)
                .send()
                .await
                .expect("next page");
            assert_eq!(r.status(), StatusCode::OK);
            page = r.json().await.expect("json page");
        }
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(ks: &[&str]) -> BTreeSet<String> {
    ks.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn discovery_versions_and_zone() {
    let at = small().await;
    let v: Value = at
        .http
        .get(format!("{}/atservicesrest/versioninformation", at.base()))
        .send()
        .await
        .expect("versions")
        .json()
        .await
        .expect("json");
    assert_eq!(v, json!({"apiVersions": ["v1.0"]}));
    for path in [
        "atservicesrest/v1.0/zoneInformation",
        "ATServicesRest/V1.0/ZoneInformation",
    ] {
        let r = at
            .http
            .get(format!("{}/{path}", at.base()))
            .query(&[("user", at.creds.username.to_uppercase())])
            .send()
            .await
            .expect("zone");
        assert_eq!(r.status(), StatusCode::OK);
        let z: Value = r.json().await.expect("json");
        assert_eq!(keys(&z), set(&["zoneName", "url", "webUrl", "ci"]));
        assert_eq!(z["url"], json!(format!("{}/ATServicesRest/", at.base())));
        assert!(z["ci"].is_i64());
    }
    for user in ["nobody@example.com", ""] {
        let r = at
            .http
            .get(format!("{}/atservicesrest/v1.0/zoneInformation", at.base()))
            .query(&[("user", user)])
            .send()
            .await
            .expect("zone");
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let b: Value = r.json().await.expect("json");
        assert_eq!(
            b,
            json!({"errors": ["Zone information could not be determined"]})
        );
    }
    let sj = at.sb.services_json();
    assert_eq!(sj["autotask"]["username"], json!(at.creds.username));
    assert_eq!(
        sj["autotask"]["discovery_url"],
        json!(format!("{}/atservicesrest", at.base()))
    );
    // Zone lookups are exempt from the limits but counted.
    assert_eq!(at.sb.autotask.stats().get("ZoneInformation"), 4);
}

#[tokio::test]
async fn header_auth_split_500_vs_401() {
    let at = small().await;
    let url = format!("{}/Companies/query", at.zone());
    let body = json!({"filter": [{"op": "eq", "field": "id", "value": 0}]});
    let send = |code: &str, user: &str, secret: &str| {
        at.http
            .post(&url)
            .header("ApiIntegrationCode", code)
            .header("UserName", user)
            .header("Secret", secret)
            .json(&body)
            .send()
    };
    let c = &at.creds;
    let r = send(&c.integration_code, &c.username, "wrong")
        .await
        .expect("r");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"errors": ["Authentication failed"]})
    );
    let r = send("BADCODE", &c.username, &c.secret).await.expect("r");
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"errors": ["IntegrationCode is invalid."]})
    );
    let r = send(&c.integration_code, "stranger@x.example", &c.secret)
        .await
        .expect("r");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Locked user (control API), then unlocked.
    let (s, _) = at
        .ctl(Method::POST, "/user", Some(json!({"locked": true})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = send(&c.integration_code, &c.username, &c.secret)
        .await
        .expect("r");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let b: Value = r.json().await.expect("json");
    assert!(
        b["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("has been locked")
    );
    at.ctl(Method::POST, "/user", Some(json!({"locked": false})))
        .await;
    let r = send(&c.integration_code, &c.username, &c.secret)
        .await
        .expect("r");
    assert_eq!(r.status(), StatusCode::OK);
    // Missing permission: 403, or 500 with the "adequate permissions" text.
    for status in [403u16, 500] {
        at.ctl(
            Method::POST,
            "/user",
            Some(json!({"can_read_contacts": false, "forbidden_status": status})),
        )
        .await;
        let (s, b) = at.post("Contacts/query", &json!({"filter": []})).await;
        assert_eq!(s.as_u16(), status);
        assert!(
            b["errors"][0]
                .as_str()
                .unwrap_or("")
                .contains("does not have the adequate permissions")
        );
    }
    assert!(at.sb.autotask.stats().auth_failed >= 3);
}

#[tokio::test]
async fn lockout_after_repeated_bad_secrets() {
    let mut cfg = AutotaskConfig::seeded(11).with_counts(10, 10);
    cfg.lock_after_failures = Some(3);
    let at = start(cfg).await;
    let url = format!("{}/ThresholdInformation", at.zone());
    let mut last = String::new();
    for _ in 0..3 {
        let r = at
            .http
            .get(&url)
            .header("ApiIntegrationCode", &at.creds.integration_code)
            .header("UserName", &at.creds.username)
            .header("Secret", "nope")
            .send()
            .await
            .expect("r");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        last = r.text().await.expect("text");
    }
    assert!(last.contains("has been locked"), "{last}");
    let (s, _) = at.get(&url).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "locked even with the right secret"
    );
}

#[tokio::test]
async fn query_envelope_and_types() {
    let at = small().await;
    let (s, page) = at
        .post(
            "Companies/query",
            &json!({"filter": [{"op": "gte", "field": "id", "value": 0}], "MaxRecords": 500}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys(&page), set(&["items", "pageDetails"]));
    let pd = &page["pageDetails"];
    assert_eq!(
        keys(pd),
        set(&["count", "requestCount", "prevPageUrl", "nextPageUrl"])
    );
    assert_eq!(pd["count"], json!(500));
    assert_eq!(pd["requestCount"], json!(500));
    assert_eq!(pd["prevPageUrl"], Value::Null);
    let next = pd["nextPageUrl"].as_str().expect("next url");
    assert!(
        next.starts_with(&format!("{}/Companies/query/next?paging=", at.zone())),
        "{next}"
    );
    let items = page["items"].as_array().expect("items");
    let local = &items[0];
    assert_eq!(local["id"], json!(0), "the local organisation is id 0");
    for c in items {
        assert!(c["id"].is_i64());
        assert!(c["isActive"].is_boolean(), "company isActive is a bool");
        assert!(c["companyType"].is_i64());
        assert!(c["companyName"].is_string());
        assert!(c["userDefinedFields"].is_array());
        assert!(
            c["createDate"]
                .as_str()
                .is_some_and(|d| d.len() == 24 && d.ends_with('Z'))
        );
        for k in [
            "companyNumber",
            "phone",
            "webAddress",
            "ownerResourceID",
            "parentCompanyID",
        ] {
            assert!(c.get(k).is_some(), "missing {k}");
        }
    }
    let (_, contacts) = at
        .post("Contacts/query", &json!({"filter": [], "MaxRecords": 50}))
        .await;
    let first = &contacts["items"][0];
    assert!(first["isActive"].is_i64(), "contact isActive is an int");
    for k in [
        "id",
        "companyID",
        "firstName",
        "lastName",
        "emailAddress",
        "emailAddress2",
        "emailAddress3",
        "isActive",
        "primaryContact",
        "lastModifiedDate",
    ] {
        assert!(first.get(k).is_some(), "missing {k}");
    }
    assert_eq!(contacts["pageDetails"]["requestCount"], json!(50));
}

#[tokio::test]
async fn post_continuation_trap_and_paging() {
    let at = small().await;
    let body = json!({"filter": [{"op": "gte", "field": "id", "value": 0}], "MaxRecords": 200});
    let (_, first) = at.post("Companies/query", &body).await;
    let next = first["pageDetails"]["nextPageUrl"]
        .as_str()
        .expect("next")
        .to_string();
    // The trap: a GET on a POSTed query's next page is refused with the Web API's 405.
    let (s, b) = at.get(&next).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        b,
        json!({"Message": "The requested resource does not support http method 'GET'."})
    );
    // A POST with another body is refused too.
    let other = json!({"filter": [{"op": "gte", "field": "id", "value": 1}], "MaxRecords": 200});
    let r = at
        .authed(Method::POST, &next)
        .json(&other)
        .send()
        .await
        .expect("r");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // POST of the same body continues; prevPageUrl leads back to page 1.
    let r = at
        .authed(Method::POST, &next)
        .json(&body)
        .send()
        .await
        .expect("r");
    assert_eq!(r.status(), StatusCode::OK);
    let second: Value = r.json().await.expect("json");
    let prev = second["pageDetails"]["prevPageUrl"].as_str().expect("prev");
    let r = at
        .authed(Method::POST, prev)
        .json(&body)
        .send()
        .await
        .expect("r");
    let back: Value = r.json().await.expect("json");
    assert_eq!(back["items"], first["items"]);
    // The whole listing: every row once, in id order, as many rows as query/count says.
    let all = at.all("Companies", &body).await;
    let ids: Vec<i64> = all.iter().filter_map(|c| c["id"].as_i64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(ids.len(), COMPANIES + 1);
    let (_, count) = at.post("Companies/query/count", &body).await;
    assert_eq!(count, json!({"queryCount": COMPANIES + 1}));
    // Pages needed: exactly ceil(n / 200), the last one without nextPageUrl.
    at.sb.autotask.reset_stats();
    at.all("Companies", &body).await;
    let st = at.sb.autotask.stats();
    let pages = (COMPANIES as u64 + 1).div_ceil(200);
    assert_eq!(
        st.get("Companies/query") + st.get("Companies/query/next"),
        pages
    );
}

#[tokio::test]
async fn get_search_paging_continues_with_get() {
    let at = small().await;
    let search =
        json!({"filter": [{"op": "eq", "field": "isActive", "value": true}], "MaxRecords": 100});
    let url = format!("{}/Companies/query", at.zone());
    let mut r = at
        .authed(Method::GET, &url)
        .query(&[("search", search.to_string())])
        .send()
        .await
        .expect("r");
    let mut n = 0;
    loop {
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.expect("json");
        let items = page["items"].as_array().expect("items");
        assert!(items.iter().all(|c| c["isActive"] == json!(true)));
        n += items.len();
        let Some(next) = page["pageDetails"]["nextPageUrl"].as_str() else {
            break;
        };
        assert!(
            next.contains("search="),
            "GET cursors carry the search: {next}"
        );
        r = at.authed(Method::GET, next).send().await.expect("r");
    }
    let (_, count) = at.post("Companies/query/count", &search).await;
    assert_eq!(count["queryCount"].as_u64(), Some(n as u64));
}

#[tokio::test]
async fn query_refusals() {
    let at = small().await;
    for (body, needle) in [
        (json!({"filter": [], "MaxRecords": 0}), "MaxRecords"),
        (json!({"filter": [], "MaxRecords": 501}), "MaxRecords"),
        (json!({"MaxRecords": 10}), "filter"),
        (
            json!({"filter": [{"op": "eq", "field": "nosuch", "value": 1}]}),
            "Unable to find nosuch in the Company Entity.",
        ),
        (
            json!({"filter": [{"op": "in", "field": "id", "value": (0..501).collect::<Vec<_>>()}]}),
            "500 or fewer 'OR' conditions",
        ),
        (
            json!({"filter": [], "IncludeFields": ["companyName"]}),
            "must include id",
        ),
    ] {
        let (s, b) = at.post("Companies/query", &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        let msg = b["errors"][0].as_str().unwrap_or("");
        assert!(msg.contains(needle), "{body} -> {msg}");
    }
    let r = at
        .authed(Method::PUT, &format!("{}/Companies/query", at.zone()))
        .send()
        .await
        .expect("r");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (s, b) = at.get(&format!("{}/Tickets/query", at.zone())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        b["Message"]
            .as_str()
            .is_some_and(|m| m.starts_with("No HTTP resource"))
    );
}

#[tokio::test]
async fn include_fields_projects() {
    let at = small().await;
    let (s, b) = at
        .post(
            "Contacts/query",
            &json!({"filter": [], "MaxRecords": 5, "IncludeFields": ["ID", "emailAddress", "isActive"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for c in b["items"].as_array().expect("items") {
        assert_eq!(keys(c), set(&["id", "emailAddress", "isActive"]));
    }
}

#[tokio::test]
async fn get_by_id_children_and_picklists() {
    let at = small().await;
    let (company, contact_ids) = at.sb.autotask.read(|db| {
        let (cid, set) = db
            .by_company
            .iter()
            .filter(|(_, s)| s.len() >= 2)
            .min_by_key(|(k, _)| **k)
            .expect("a company with contacts");
        (*cid, set.iter().copied().collect::<Vec<_>>())
    });
    let (s, b) = at.get(&format!("{}/Companies/{company}", at.zone())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys(&b), set(&["item"]));
    assert_eq!(b["item"]["id"], json!(company));
    assert!(b["item"]["isActive"].is_boolean());
    let (s, b) = at.get(&format!("{}/Companies/99999999", at.zone())).await;
    assert_eq!((s, b), (StatusCode::OK, json!({"item": null})));
    let (_, b) = at
        .get(&format!("{}/Contacts/{}", at.zone(), contact_ids[0]))
        .await;
    assert!(b["item"]["isActive"].is_i64());
    let (_, b) = at
        .get(&format!("{}/companies/{company}/contacts", at.zone()))
        .await;
    let got: Vec<i64> = b["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert_eq!(got, contact_ids);
    assert_eq!(b["pageDetails"]["nextPageUrl"], Value::Null);
    // Switch to 404 for missing rows.
    at.ctl(
        Method::POST,
        "/user",
        Some(json!({"missing_item_404": true})),
    )
    .await;
    let (s, _) = at.get(&format!("{}/Companies/99999999", at.zone())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, f) = at
        .get(&format!("{}/Companies/entityInformation/fields", at.zone()))
        .await;
    assert_eq!(s, StatusCode::OK);
    let fields = f["fields"].as_array().expect("fields");
    let ct = fields
        .iter()
        .find(|x| x["name"] == json!("companyType"))
        .expect("companyType");
    assert_eq!(
        keys(ct),
        set(&[
            "name",
            "dataType",
            "length",
            "isRequired",
            "isReadOnly",
            "isQueryable",
            "isReference",
            "referenceEntityType",
            "isPickList",
            "picklistValues",
            "picklistParentValueField",
            "isSupportedWebhookField"
        ])
    );
    assert_eq!(ct["isPickList"], json!(true));
    let pv = ct["picklistValues"].as_array().expect("picklist");
    assert_eq!(
        pv[0],
        json!({"value":"1","label":"Customer","isDefaultValue":true,"sortOrder":1,"parentValue":"","isActive":true,"isSystem":true})
    );
    let labels: Vec<&str> = pv.iter().filter_map(|p| p["label"].as_str()).collect();
    assert_eq!(
        labels,
        [
            "Customer",
            "Lead",
            "Prospect",
            "Dead",
            "Cancelation",
            "Vendor",
            "Partner"
        ]
    );
    let (s, t) = at.get(&format!("{}/ThresholdInformation", at.zone())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        keys(&t),
        set(&[
            "externalRequestThreshold",
            "requestThresholdTimeframe",
            "currentTimeframeRequestCount"
        ])
    );
    assert_eq!(t["externalRequestThreshold"], json!(10_000));
}

#[tokio::test]
async fn thread_limit_rejects_the_fourth_concurrent_call() {
    let at = small().await;
    // Three slow calls hold the three threads; once the emulator shows them in flight (polled
    // with a deadline), two more calls are refused at once.
    at.sb.autotask.add_fault(
        FaultRule::new(
            "Companies",
            FaultKind::Latency {
                min_ms: 2000,
                max_ms: None,
            },
        )
        .count(3),
    );
    let body = json!({"filter": [{"op": "eq", "field": "id", "value": 0}]});
    let slow = futures::future::join_all((0..3).map(|_| at.post("Companies/query", &body)));
    let extra = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while at.sb.autotask.stats().max_in_flight.get("Companies") != Some(&3) {
            assert!(
                std::time::Instant::now() < deadline,
                "three calls never in flight"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let a = at.post("Companies/query", &body).await;
        let b = at.post("Companies/query", &body).await;
        vec![a, b]
    };
    let (slow, limited) = tokio::join!(slow, extra);
    assert!(slow.iter().all(|(s, _)| *s == StatusCode::OK), "{slow:?}");
    for (s, b) in &limited {
        assert_eq!(*s, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            b,
            &json!({"errors": ["Thread Threshold Exceeded — The Autotask API thread threshold of 3 threads has been exceeded."]})
        );
    }
    let st = at.sb.autotask.stats();
    assert_eq!(st.thread_limited, 2);
    assert_eq!(st.max_in_flight.get("Companies"), Some(&3));
    // The threads are free again, and another endpoint has its own.
    assert_eq!(at.post("Companies/query", &body).await.0, StatusCode::OK);
    let (s, _) = at
        .post("Contacts/query", &json!({"filter": [], "MaxRecords": 1}))
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn hourly_threshold() {
    let at = small().await;
    let (s, l) = at
        .ctl(
            Method::POST,
            "/limits",
            Some(json!({"hourly_limit": 3, "limit_retry_after": 7, "reset_usage": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(l["hourly_limit"], json!(3));
    let url = format!("{}/ThresholdInformation", at.zone());
    for _ in 0..3 {
        assert_eq!(at.get(&url).await.0, StatusCode::OK);
    }
    let r = at.authed(Method::GET, &url).send().await.expect("r");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("7")
    );
    let b: Value = r.json().await.expect("json");
    assert!(b["errors"][0].as_str().unwrap_or("").contains("threshold"));
    at.ctl(Method::POST, "/limits", Some(json!({"hourly_limit": null})))
        .await;
    assert_eq!(at.get(&url).await.0, StatusCode::OK);
}

#[tokio::test]
async fn faults_html_truncate_errors_in_200_via_control_api() {
    let at = small().await;
    let body = json!({"filter": [], "MaxRecords": 3});
    let url = format!("{}/Contacts/query", at.zone());
    let (s, r) = at
        .ctl(
            Method::POST,
            "/faults",
            Some(json!({"endpoint": "Contacts", "kind": "html", "status": 503, "count": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert!(r["id"].is_u64());
    let resp = at
        .authed(Method::POST, &url)
        .json(&body)
        .send()
        .await
        .expect("r");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/html")
    );
    assert!(resp.text().await.expect("t").contains("<html"));
    at.ctl(
        Method::POST,
        "/faults",
        Some(json!({"endpoint": "Contacts", "op": "query", "kind": "truncate", "count": 1})),
    )
    .await;
    let resp = at
        .authed(Method::POST, &url)
        .json(&body)
        .send()
        .await
        .expect("r");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.expect("t");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    at.ctl(
        Method::POST,
        "/faults",
        Some(json!({"kind": "errors_in_200", "count": 1})),
    )
    .await;
    let (s, b) = at.post("Contacts/query", &body).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b["errors"].is_array() && b.get("items").is_none(), "{b}");
    let (s, _) = at
        .ctl(
            Method::POST,
            "/faults",
            Some(json!({"kind": "status", "status": 200})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, list) = at.ctl(Method::GET, "/faults", None).await;
    assert!(list["rules"].is_array());
    at.ctl(Method::DELETE, "/faults", None).await;
    let st = at.sb.autotask.stats();
    assert!(st.faulted >= 2);
}

#[tokio::test]
async fn errors_inside_a_200() {
    let at = small().await;
    at.sb
        .autotask
        .add_fault(FaultRule::new("Companies", FaultKind::ErrorsIn200 { message: None }).count(1));
    let (s, b) = at.post("Companies/query", &json!({"filter": []})).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b["errors"].is_array() && b.get("items").is_none());
}

#[tokio::test]
async fn control_add_rename_remove() {
    let at = small().await;
    let (s, c) = at
        .ctl(
            Method::POST,
            "/companies",
            Some(json!({"companyName": "Zeta Test LLC", "companyType": 7})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_i64().expect("id");
    let (s, k) = at
        .ctl(
            Method::POST,
            "/contacts",
            Some(json!({"companyID": id, "firstName": "Ann", "lastName": "Lee", "emailAddress": "ann@zeta.example", "isActive": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    assert_eq!(k["isActive"], json!(0));
    let kid = k["id"].as_i64().expect("contact id");
    let q = json!({"filter": [{"op": "eq", "field": "companyName", "value": "zeta test llc"}]});
    let (_, b) = at.post("Companies/query", &q).await;
    assert_eq!(b["items"][0]["id"], json!(id));
    assert_eq!(b["items"][0]["companyType"], json!(7));
    let (s, _) = at
        .ctl(
            Method::PATCH,
            &format!("/companies/{id}"),
            Some(json!({"companyName": "Zeta Renamed LLC", "isActive": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = at.get(&format!("{}/Companies/{id}", at.zone())).await;
    assert_eq!(b["item"]["companyName"], json!("Zeta Renamed LLC"));
    assert_eq!(b["item"]["isActive"], json!(false));
    let (_, b) = at
        .post(
            "Contacts/query",
            &json!({"filter": [{"op": "eq", "field": "companyID", "value": id}]}),
        )
        .await;
    assert_eq!(b["items"][0]["id"], json!(kid));
    let (s, d) = at
        .ctl(Method::DELETE, &format!("/companies/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["contacts_deleted"], json!(1));
    let (_, b) = at.get(&format!("{}/Contacts/{kid}", at.zone())).await;
    assert_eq!(b, json!({"item": null}));
    // Refusals name the field.
    let (s, e) = at
        .ctl(
            Method::POST,
            "/companies",
            Some(json!({"companyName": "X", "companyType": 5})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["field"], json!("companyType"));
    let (s, e) = at
        .ctl(
            Method::POST,
            "/contacts",
            Some(json!({"companyID": 123456789})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["field"], json!("companyID"));
    let (s, e) = at
        .ctl(
            Method::POST,
            "/companies",
            Some(json!({"companyName": "X", "bogus": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _) = at.ctl(Method::DELETE, "/contacts/1", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, sum) = at
        .ctl(
            Method::POST,
            "/reset",
            Some(json!({"companies": 20, "contacts": 30, "stats": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(sum["companies"], json!(21));
    assert_eq!(sum["contacts"], json!(30));
    let (_, st) = at.ctl(Method::GET, "/stats", None).await;
    assert_eq!(st["total"], json!(0));
}

// ---- the filter language: a table of cases and a proptest against a model evaluator ----

/// Every company as the API renders it (fetched once per test binary).
async fn all_companies(at: &At) -> Vec<Value> {
    at.all("Companies", &json!({"filter": []})).await
}

fn lc(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An independent evaluator over rendered JSON (the emulator's own uses typed rows).
fn model(c: &Value, f: &Value) -> bool {
    let op = f["op"].as_str().unwrap_or("");
    match op {
        "and" => f["items"]
            .as_array()
            .is_some_and(|i| i.iter().all(|x| model(c, x))),
        "or" => f["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|x| model(c, x))),
        _ => {
            let field = f["field"].as_str().unwrap_or("");
            let v = &c[field];
            let want = &f["value"];
            let eq = |a: &Value, b: &Value| match (a, b) {
                (Value::Null, _) | (_, Value::Null) => false,
                (Value::Number(x), Value::Number(y)) => x.as_i64() == y.as_i64(),
                _ => lc(a) == lc(b),
            };
            let ord = |a: &Value, b: &Value| match (a, b) {
                (Value::Number(x), Value::Number(y)) => x.as_i64().partial_cmp(&y.as_i64()),
                (Value::String(x), Value::String(y)) => {
                    Some(x.to_lowercase().cmp(&y.to_lowercase()))
                }
                _ => None,
            };
            use std::cmp::Ordering::*;
            match op {
                "eq" => eq(v, want),
                "noteq" => !eq(v, want),
                "gt" => ord(v, want) == Some(Greater),
                "gte" => matches!(ord(v, want), Some(Greater | Equal)),
                "lt" => ord(v, want) == Some(Less),
                "lte" => matches!(ord(v, want), Some(Less | Equal)),
                "beginsWith" => lc(v).zip(lc(want)).is_some_and(|(h, n)| h.starts_with(&n)),
                "endsWith" => lc(v).zip(lc(want)).is_some_and(|(h, n)| h.ends_with(&n)),
                "contains" => lc(v).zip(lc(want)).is_some_and(|(h, n)| h.contains(&n)),
                "exist" => lc(v).is_some_and(|s| !s.is_empty()),
                "notExist" => lc(v).is_none_or(|s| s.is_empty()),
                "in" => want.as_array().is_some_and(|l| l.iter().any(|x| eq(v, x))),
                "notIn" => !want.as_array().is_some_and(|l| l.iter().any(|x| eq(v, x))),
                _ => panic!("unknown op {op}"),
            }
        }
    }
}

async fn check_filter(at: &At, all: &[Value], filter: &Value) {
    let want: Vec<i64> = all
        .iter()
        .filter(|c| model(c, filter))
        .filter_map(|c| c["id"].as_i64())
        .collect();
    let got: Vec<i64> = at
        .all("Companies", &json!({"filter": [filter], "MaxRecords": 500}))
        .await
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert_eq!(got, want, "filter {filter}");
    let (_, n) = at
        .post("Companies/query/count", &json!({"filter": [filter]}))
        .await;
    assert_eq!(
        n["queryCount"].as_u64(),
        Some(want.len() as u64),
        "count {filter}"
    );
}

#[tokio::test]
async fn filter_language_table() {
    let at = small().await;
    let all = all_companies(&at).await;
    let cases = [
        json!({"op": "eq", "field": "companyType", "value": 1}),
        json!({"op": "noteq", "field": "companyType", "value": 1}),
        json!({"op": "eq", "field": "isActive", "value": false}),
        json!({"op": "gt", "field": "id", "value": 600}),
        json!({"op": "gte", "field": "id", "value": 600}),
        json!({"op": "lt", "field": "id", "value": 300}),
        json!({"op": "lte", "field": "id", "value": 300}),
        json!({"op": "beginsWith", "field": "companyName", "value": "BLUE"}),
        json!({"op": "endsWith", "field": "companyName", "value": "llc"}),
        json!({"op": "contains", "field": "companyName", "value": "dental"}),
        json!({"op": "exist", "field": "webAddress"}),
        json!({"op": "notExist", "field": "webAddress"}),
        json!({"op": "in", "field": "companyType", "value": [2, 3]}),
        json!({"op": "notIn", "field": "companyType", "value": [1, 7, 8]}),
        json!({"op": "eq", "field": "companyName", "value": all[5]["companyName"]}),
        json!({"op": "or", "items": [
            {"op": "eq", "field": "companyType", "value": 7},
            {"op": "and", "items": [
                {"op": "eq", "field": "companyType", "value": 1},
                {"op": "eq", "field": "isActive", "value": false}
            ]}
        ]}),
    ];
    for f in &cases {
        check_filter(&at, &all, f).await;
    }
    // UDF filters use the label as field name.
    let (_, n) = at
        .post(
            "Companies/query/count",
            &json!({"filter": [{"op": "eq", "field": "Customer Tier", "udf": true, "value": "Gold"}]}),
        )
        .await;
    let want = all
        .iter()
        .filter(|c| {
            c["userDefinedFields"].as_array().is_some_and(|u| {
                u.iter()
                    .any(|x| x["name"] == json!("Customer Tier") && x["value"] == json!("Gold"))
            })
        })
        .count();
    assert_eq!(n["queryCount"].as_u64(), Some(want as u64));
    assert!(want > 0);
}

fn leaf() -> impl Strategy<Value = Value> {
    let op_num = prop::sample::select(vec!["eq", "noteq", "gt", "gte", "lt", "lte"]);
    let op_str = prop::sample::select(vec![
        "eq",
        "noteq",
        "beginsWith",
        "endsWith",
        "contains",
        "gt",
        "lt",
    ]);
    prop_oneof![
        (op_num.clone(), 150i64..1600)
            .prop_map(|(op, v)| json!({"op": op, "field": "id", "value": v})),
        (op_num, 1i64..9).prop_map(|(op, v)| json!({"op": op, "field": "companyType", "value": v})),
        (
            op_str,
            prop::sample::select(vec![
                "blue",
                "llc",
                "Dental",
                "inc.",
                "a",
                "Summit Labs",
                "z"
            ])
        )
            .prop_map(|(op, v)| json!({"op": op, "field": "companyName", "value": v})),
        any::<bool>().prop_map(|b| json!({"op": "eq", "field": "isActive", "value": b})),
        (
            prop::sample::select(vec!["in", "notIn"]),
            prop::collection::vec(1i64..9, 0..4)
        )
            .prop_map(|(op, v)| json!({"op": op, "field": "companyType", "value": v})),
        prop::sample::select(vec!["exist", "notExist"])
            .prop_map(|op| json!({"op": op, "field": "webAddress"})),
    ]
}

fn filter_tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 12, 3, |inner| {
        (
            prop::sample::select(vec!["and", "or"]),
            prop::collection::vec(inner, 1..4),
        )
            .prop_map(|(op, items)| json!({"op": op, "items": items}))
    })
}

struct Shared {
    rt: tokio::runtime::Runtime,
    at: At,
    all: Vec<Value>,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (at, all) = rt.block_on(async {
            let at = small().await;
            let all = all_companies(&at).await;
            (at, all)
        });
        Shared { rt, at, all }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, rng_seed: proptest::test_runner::RngSeed::Fixed(8), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn filters_match_the_model(filter in filter_tree()) {
        let s = shared();
        s.rt.block_on(check_filter(&s.at, &s.all, &filter));
    }
}
