//! The LastPass REST API (managed companies) emulator against the reference shapes
//! (`psa-and-msp.md` §3.1, §3.3): `api-key` auth, ProblemDetails, paging tokens, sort and filters,
//! the asynchronous 202 + poll flow, users and their account statuses, the licence pool running
//! out, detach without admins, names shared with the PSA seeds, faults and the control API.
//! Everything goes over HTTP to an in-process sandbox on 127.0.0.1:0; the clock is frozen and
//! requests complete after a number of polls, so nothing sleeps.

use std::collections::{BTreeSet, HashSet};

use reqwest::Method;
use sandbox::autotask::AutotaskConfig;
use sandbox::connectwise::ConnectWiseConfig;
use sandbox::msp::MspConfig;
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

struct T {
    sb: SandboxHandle,
    http: reqwest::Client,
    key: String,
}

struct Resp {
    status: u16,
    body: Value,
    content_type: String,
    headers: reqwest::header::HeaderMap,
}

fn config() -> SandboxConfig {
    let mut c = SandboxConfig::for_tests();
    c.connectwise = ConnectWiseConfig::with_seed(11).sized(80, 320);
    c.autotask = AutotaskConfig::seeded(21).with_counts(80, 320);
    let mut m = MspConfig::with_seed(3).sized(30, 3);
    m.psa_duplicates = 8;
    m.complete_after_secs = None;
    c.msp = m;
    c
}

async fn spawn_with(config: SandboxConfig) -> T {
    let sb = sandbox::spawn(config).await.expect("sandbox starts");
    let key = sb.msp.credentials().api_key;
    T {
        sb,
        http: reqwest::Client::new(),
        key,
    }
}

async fn spawn() -> T {
    spawn_with(config()).await
}

impl T {
    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.sb.msp_base_url())
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("Authorization", format!("api-key {}", self.key));
        if let Some(b) = body {
            req = req.json(&b);
        }
        resp(req.send().await.expect("request")).await
    }

    async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/msp{path}", self.sb.control_url()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = resp(req.send().await.expect("control request")).await;
        (r.status, r.body)
    }

    /// Every item of a list, following `nextPageToken`; also the number of pages.
    async fn all(&self, path: &str) -> (Vec<Value>, usize) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut pages = 0;
        let mut token: Option<String> = None;
        loop {
            let url = match &token {
                Some(t) => format!("{path}{sep}page-token={t}"),
                None => path.to_string(),
            };
            let r = self.get(&url).await;
            assert_eq!(r.status, 200, "{url}: {}", r.body);
            pages += 1;
            items.extend(r.body["items"].as_array().expect("items").iter().cloned());
            match r.body["nextPageToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => {
                    assert!(r.body["nextPageToken"].is_null());
                    break;
                }
            }
        }
        (items, pages)
    }

    /// POSTs a company and polls its request to the end; answers the final request.
    async fn create(&self, body: Value) -> Value {
        let r = self
            .call(Method::POST, "/managed-companies", Some(body))
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        self.poll(r.body["url"].as_str().expect("url")).await
    }

    async fn poll(&self, url: &str) -> Value {
        for _ in 0..20 {
            let r = self.get(url).await;
            assert_eq!(r.status, 200, "{}", r.body);
            if r.body["status"] != "pending" {
                return r.body;
            }
        }
        panic!("request {url} still pending after 20 polls");
    }
}

async fn resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = r.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }))
    };
    Resp {
        status,
        body,
        content_type,
        headers,
    }
}

/// A ProblemDetails with this status, the mandatory members and the right content type.
fn assert_problem(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.body);
    assert_eq!(r.body["status"], status, "{}", r.body);
    assert!(r.body["title"].is_string(), "{}", r.body);
    assert!(r.body["detail"].is_string(), "{}", r.body);
    assert!(
        r.body["instance"]
            .as_str()
            .is_some_and(|i| i.starts_with("/business/v1/")),
        "{}",
        r.body
    );
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect()
}

#[tokio::test]
async fn services_json_names_the_rest_api_and_its_key() {
    let t = spawn().await;
    let v = t.sb.services_json();
    let rest = &v["lastpass_rest"];
    assert_eq!(rest["base_url"], t.sb.msp_base_url());
    assert!(rest["base_url"].as_str().unwrap().ends_with("/business/v1"));
    let key = rest["api_key"].as_str().unwrap();
    assert_eq!(key, t.key);
    let parts: Vec<&str> = key.split('_').collect();
    assert_eq!(parts.len(), 3, "{key}");
    assert_eq!(parts[0], "lpkey");
    assert_eq!(parts[1].len(), 12);
    assert!(parts[2].len() >= 32);
    assert_eq!(rest["cid"], 8_771_312);
    assert!(rest["control"].as_str().unwrap().ends_with("/_sandbox/msp"));
    // The key never shows in Debug output.
    assert!(!format!("{:?}", t.sb.msp.credentials()).contains(&t.key));
    assert!(!format!("{:?}", config().msp).contains(&t.key));
}

#[tokio::test]
async fn missing_or_wrong_keys_answer_401_problem_details() {
    let t = spawn().await;
    let url = t.url("/managed-companies");
    for auth in [
        None,
        Some("api-key lpkey_nope_nope".to_string()),
        Some(format!("Bearer {}", t.key)),
        Some("api-key".to_string()),
    ] {
        let mut req = t.http.get(&url);
        if let Some(a) = &auth {
            req = req.header("Authorization", a);
        }
        let r = resp(req.send().await.unwrap()).await;
        assert_problem(&r, 401);
        assert_eq!(r.body["title"], "Unauthorized");
        assert_eq!(r.body["instance"], "/business/v1/managed-companies");
        assert_eq!(r.headers["www-authenticate"], "api-key");
        assert!(!r.body.to_string().contains(&t.key));
    }
    // The scheme is case-insensitive.
    let r = resp(
        t.http
            .get(&url)
            .header("Authorization", format!("API-Key {}", t.key))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    // A rotated key: the old one stops working.
    let (s, _) = t
        .control(
            Method::POST,
            "/key",
            Some(json!({"api_key": "lpkey_AAAAAAAAAAAA_new"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_problem(&t.get("/managed-companies").await, 401);
}

#[tokio::test]
async fn paging_follows_tokens_without_gaps_or_repeats() {
    let t = spawn().await;
    let (_, all) = t.control(Method::GET, "/companies", None).await;
    let total = all.as_array().unwrap().len();
    assert_eq!(total, 30);
    // Default page size 10.
    let first = t.get("/managed-companies").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.content_type, "application/json; charset=utf-8");
    assert_eq!(first.body["items"].as_array().unwrap().len(), 10);
    assert!(first.body["nextPageToken"].is_string());
    let (items, pages) = t.all("/managed-companies?max-results=7").await;
    assert_eq!(items.len(), total);
    assert_eq!(pages, total.div_ceil(7));
    let ids: Vec<u64> = items.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "default order is by id");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), total);
    // One page holding everything has no next token.
    let r = t.get("/managed-companies?max-results=500").await;
    assert!(r.body["nextPageToken"].is_null());
    assert_eq!(r.body["items"].as_array().unwrap().len(), total);
    // Company shape.
    let c = &items[0];
    for k in [
        "id",
        "name",
        "status",
        "type",
        "licenseLimit",
        "licensesUsed",
        "addons",
        "parentId",
        "createdAt",
    ] {
        assert!(c.get(k).is_some(), "{k} missing in {c}");
    }
    // Bounds of max-results.
    for bad in ["0", "501", "ten", "-1"] {
        let r = t
            .get(&format!("/managed-companies?max-results={bad}"))
            .await;
        assert_problem(&r, 400);
        assert_eq!(
            r.body["errors"][0]["parameter"], "max-results",
            "{}",
            r.body
        );
    }
    // A garbled token, and a token reused with another filter.
    let r = t.get("/managed-companies?page-token=garbage!").await;
    assert_problem(&r, 400);
    assert_eq!(r.body["errors"][0]["parameter"], "page-token");
    let tok = first.body["nextPageToken"].as_str().unwrap();
    let r = t
        .get(&format!(
            "/managed-companies?page-token={tok}&status=active"
        ))
        .await;
    assert_problem(&r, 400);
    // A page size change between pages is fine.
    let r = t
        .get(&format!(
            "/managed-companies?page-token={tok}&max-results=3"
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["items"][0]["id"].as_u64().unwrap(), ids[10]);
    // Unknown parameters are refused, naming them.
    let r = t.get("/managed-companies?colour=blue").await;
    assert_problem(&r, 400);
    assert_eq!(r.body["errors"][0]["parameter"], "colour");
}

#[tokio::test]
async fn sort_and_filters() {
    let t = spawn().await;
    let (asc, _) = t
        .all("/managed-companies?sort=name:asc&max-results=4")
        .await;
    let n = names(&asc);
    let mut sorted = n.clone();
    sorted.sort_by_key(|s| s.to_lowercase());
    assert_eq!(n, sorted);
    let (desc, _) = t.all("/managed-companies?sort=name:desc").await;
    let mut rev = names(&desc);
    rev.reverse();
    assert_eq!(rev, n);
    assert_problem(&t.get("/managed-companies?sort=size:asc").await, 400);
    assert_problem(&t.get("/managed-companies?sort=name:up").await, 400);

    // Exact name (case-insensitive) and `%` wildcards.
    let name = n[3].clone();
    let (hit, _) = t
        .all(&format!(
            "/managed-companies?name={}",
            urlencode(&name.to_uppercase())
        ))
        .await;
    assert!(!hit.is_empty());
    assert!(names(&hit).iter().all(|x| x.eq_ignore_ascii_case(&name)));
    let prefix: String = name.chars().take(3).collect();
    let (pre, _) = t
        .all(&format!(
            "/managed-companies?name={}%25",
            urlencode(&prefix)
        ))
        .await;
    assert!(
        names(&pre)
            .iter()
            .all(|x| x.to_lowercase().starts_with(&prefix.to_lowercase()))
    );
    assert!(pre.len() >= hit.len());
    let (any, _) = t.all("/managed-companies?name=%25").await;
    assert_eq!(any.len(), 30);

    // Status, type, parent, addon, license-limit.
    let (all, _) = t.all("/managed-companies?max-results=500").await;
    let count = |f: &dyn Fn(&Value) -> bool| all.iter().filter(|c| f(c)).count();
    let (s, _) = t.all("/managed-companies?status=suspended").await;
    assert_eq!(s.len(), count(&|c| c["status"] == "suspended"));
    let (s, _) = t.all("/managed-companies?status=active,suspended").await;
    assert_eq!(s.len(), 30);
    let (s, _) = t
        .all("/managed-companies?status=active&status=suspended")
        .await;
    assert_eq!(s.len(), 30);
    let (msps, _) = t.all("/managed-companies?type=managed-msp").await;
    assert_eq!(msps.len(), 1, "seed has one managed-msp company");
    let msp_id = msps[0]["id"].as_u64().unwrap();
    let (children, _) = t
        .all(&format!("/managed-companies?parent-id={msp_id}"))
        .await;
    assert_eq!(children.len(), 2);
    let (direct, _) = t.all("/managed-companies?parent-id=8771312").await;
    assert_eq!(direct.len(), 28);
    let (s, _) = t.all("/managed-companies?type=msp,managed").await;
    assert_eq!(s.len(), 29);
    let (s, _) = t.all("/managed-companies?addon=sso").await;
    assert_eq!(
        s.len(),
        count(&|c| c["addons"].as_array().unwrap().contains(&json!("sso")))
    );
    let limit = all[0]["licenseLimit"].as_u64().unwrap();
    let (s, _) = t
        .all(&format!("/managed-companies?license-limit={limit}"))
        .await;
    assert_eq!(s.len(), count(&|c| c["licenseLimit"] == limit));
    let r = t.get("/managed-companies?status=paused&type=big").await;
    assert_problem(&r, 400);
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 2, "{}", r.body);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn seeded_names_collide_with_both_psa_seeds_deterministically() {
    let t = spawn().await;
    let (items, _) = t.all("/managed-companies?max-results=500").await;
    let msp: BTreeSet<String> = names(&items).into_iter().collect();
    let cw: BTreeSet<String> =
        t.sb.connectwise
            .with_data(|d| d.companies.values().map(|c| c.name.clone()).collect());
    let at: BTreeSet<String> =
        t.sb.autotask
            .read(|d| d.companies.values().map(|c| c.name.clone()).collect());
    let in_cw = msp.intersection(&cw).count();
    let in_at = msp.intersection(&at).count();
    assert!(in_cw >= 4, "{in_cw} names shared with ConnectWise");
    assert!(in_at >= 4, "{in_at} names shared with Autotask");
    // The duplicates are active clients / active customers.
    let (_, control) = t.control(Method::GET, "/companies", None).await;
    let from_psa: Vec<&Value> = control
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["origin"]["kind"] == "psa_name")
        .collect();
    assert_eq!(from_psa.len(), 8);
    // Same config, same data.
    let again = spawn().await;
    let (items2, _) = again.all("/managed-companies?max-results=500").await;
    assert_eq!(items, items2);
    assert_eq!(t.key, again.key);
}

#[tokio::test]
async fn create_answers_202_and_the_company_appears_after_polling() {
    let t = spawn().await;
    let before = t.sb.msp.licenses();
    let r = t
        .call(
            Method::POST,
            "/managed-companies",
            Some(json!({"name": "  Brand New Co  ", "licenseLimit": 5, "type": "managed", "addons": ["sso", "mfa", "mfa"]})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let obj = r.body.as_object().unwrap();
    assert_eq!(
        obj.keys().cloned().collect::<BTreeSet<_>>(),
        ["id", "url"].iter().map(|s| s.to_string()).collect()
    );
    let id = r.body["id"].as_str().unwrap().to_string();
    let url = r.body["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{}/requests/{id}", t.sb.msp_base_url()));
    assert_eq!(r.headers["location"].to_str().unwrap(), url);
    // Not there yet.
    let (found, _) = t.all("/managed-companies?name=Brand%20New%20Co").await;
    assert!(found.is_empty());
    // First poll: pending; second: completed with the company.
    let p1 = t.get(&url).await;
    assert_eq!(p1.status, 200);
    assert_eq!(p1.body["status"], "pending");
    assert_eq!(p1.body["operation"], "create-managed-company");
    assert!(p1.body["resourceId"].is_null());
    let p2 = t.get(&url).await;
    assert_eq!(p2.body["status"], "completed", "{}", p2.body);
    let cid = p2.body["resourceId"].as_u64().unwrap();
    assert_eq!(
        p2.body["resourceUrl"],
        format!("{}/managed-companies/{cid}", t.sb.msp_base_url())
    );
    assert!(p2.body["error"].is_null());
    // Later polls keep answering the same.
    assert_eq!(t.get(&url).await.body["status"], "completed");
    let c = t.get(&format!("/managed-companies/{cid}")).await;
    assert_eq!(c.status, 200);
    assert_eq!(c.body["name"], "Brand New Co");
    assert_eq!(c.body["licenseLimit"], 5);
    assert_eq!(c.body["licensesUsed"], 0);
    assert_eq!(c.body["addons"], json!(["mfa", "sso"]));
    assert_eq!(c.body["status"], "active");
    assert_eq!(c.body["parentId"], 8_771_312);
    let (found, _) = t.all("/managed-companies?name=brand%20new%20co").await;
    assert_eq!(found.len(), 1);
    assert_eq!(t.sb.msp.licenses().unallocated, before.unallocated - 5);
    // Unknown request and company ids.
    assert_problem(&t.get("/requests/nope").await, 404);
    assert_problem(&t.get("/managed-companies/1").await, 404);
    assert_problem(&t.get("/managed-companies/abc").await, 404);
}

#[tokio::test]
async fn create_validation_points_at_the_members() {
    let t = spawn().await;
    let r = t
        .call(
            Method::POST,
            "/managed-companies",
            Some(json!({"licenseLimit": -1, "type": "msp", "addons": ["vpn"], "colour": 1, "parentId": 5})),
        )
        .await;
    assert_problem(&r, 400);
    let pointers: BTreeSet<String> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["detail"].is_string());
            e["pointer"].as_str().unwrap().to_string()
        })
        .collect();
    for p in [
        "#/name",
        "#/licenseLimit",
        "#/type",
        "#/addons/0",
        "#/colour",
        "#/parentId",
    ] {
        assert!(pointers.contains(p), "{p} not in {pointers:?}");
    }
    let r = t
        .http
        .post(t.url("/managed-companies"))
        .header("Authorization", format!("api-key {}", t.key))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(&resp(r).await, 400);
    let r = t
        .call(Method::POST, "/managed-companies", Some(json!([1, 2])))
        .await;
    assert_problem(&r, 400);
    // A child of the managed-msp company is fine.
    let (msps, _) = t.all("/managed-companies?type=managed-msp").await;
    let parent = msps[0]["id"].as_u64().unwrap();
    let done = t
        .create(json!({"name": "Child Co", "parentId": parent.to_string()}))
        .await;
    assert_eq!(done["status"], "completed");
}

#[tokio::test]
async fn failed_requests_carry_a_problem() {
    let t = spawn().await;
    // More licences than the pool has left: the request fails when it runs.
    let free = t.sb.msp.licenses().unallocated;
    let done = t
        .create(json!({"name": "Too Big", "licenseLimit": free + 1}))
        .await;
    assert_eq!(done["status"], "failed", "{done}");
    let e = &done["error"];
    assert_eq!(e["status"], 409);
    assert_eq!(e["title"], "Not enough licenses");
    assert!(e["detail"].as_str().unwrap().contains("no more licenses"));
    assert!(done["resourceId"].is_null());
    let (found, _) = t.all("/managed-companies?name=Too%20Big").await;
    assert!(found.is_empty());
    // Forced failures from the control API.
    let (s, _) = t
        .control(
            Method::POST,
            "/requests/fail-next",
            Some(json!({"status": 500, "detail": "backend down"})),
        )
        .await;
    assert_eq!(s, 200);
    let done = t.create(json!({"name": "Unlucky"})).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"]["status"], 500);
    assert_eq!(done["error"]["detail"], "backend down");
    // The next one works again.
    assert_eq!(
        t.create(json!({"name": "Lucky"})).await["status"],
        "completed"
    );
    let (s, reqs) = t.control(Method::GET, "/requests", None).await;
    assert_eq!(s, 200);
    assert_eq!(reqs.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn requests_complete_on_virtual_time_or_polls() {
    let mut c = config();
    c.msp.complete_after_polls = 1000;
    c.msp.complete_after_secs = Some(30.0);
    let t = spawn_with(c).await;
    let r = t
        .call(
            Method::POST,
            "/managed-companies",
            Some(json!({"name": "Slow Co"})),
        )
        .await;
    let url = r.body["url"].as_str().unwrap().to_string();
    assert_eq!(t.get(&url).await.body["status"], "pending");
    t.sb.clock.advance_us(29_000_000);
    assert_eq!(t.get(&url).await.body["status"], "pending");
    t.sb.clock.advance_us(1_000_000);
    // Listing settles due requests too, without a poll.
    let (found, _) = t.all("/managed-companies?name=Slow%20Co").await;
    assert_eq!(found.len(), 1);
    assert_eq!(t.get(&url).await.body["status"], "completed");
    // Control: polls only, 0 polls.
    let (s, cfg) = t
        .control(
            Method::POST,
            "/config",
            Some(json!({"complete_after_polls": 0, "complete_after_secs": null})),
        )
        .await;
    assert_eq!(s, 200, "{cfg}");
    assert!(cfg["complete_after_secs"].is_null());
    let r = t
        .call(
            Method::POST,
            "/managed-companies",
            Some(json!({"name": "Fast Co"})),
        )
        .await;
    assert_eq!(
        t.get(r.body["url"].as_str().unwrap()).await.body["status"],
        "completed"
    );
}

#[tokio::test]
async fn update_is_asynchronous_and_checks_the_pool() {
    let t = spawn().await;
    let done = t.create(json!({"name": "Upd Co", "licenseLimit": 2})).await;
    let id = done["resourceId"].as_u64().unwrap();
    let r = t
        .call(
            Method::PUT,
            &format!("/managed-companies/{id}"),
            Some(json!({"licenseLimit": 4, "status": "suspended", "addons": ["mfa"]})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let url = r.body["url"].as_str().unwrap().to_string();
    // Unchanged until the request completes.
    let c = t.get(&format!("/managed-companies/{id}")).await;
    assert_eq!(c.body["licenseLimit"], 2);
    let p = t.poll(&url).await;
    assert_eq!(p["status"], "completed");
    assert_eq!(p["operation"], "update-managed-company");
    assert_eq!(p["resourceId"], id);
    let c = t.get(&format!("/managed-companies/{id}")).await;
    assert_eq!(c.body["licenseLimit"], 4);
    assert_eq!(c.body["status"], "suspended");
    assert_eq!(c.body["addons"], json!(["mfa"]));
    // Growing beyond the pool fails in the request.
    let free = t.sb.msp.licenses().unallocated;
    let r = t
        .call(
            Method::PUT,
            &format!("/managed-companies/{id}"),
            Some(json!({"licenseLimit": 4 + free + 1})),
        )
        .await;
    let p = t.poll(r.body["url"].as_str().unwrap()).await;
    assert_eq!(p["status"], "failed");
    assert_eq!(p["error"]["title"], "Not enough licenses");
    // Bad bodies and ids answer at once.
    let r = t
        .call(
            Method::PUT,
            &format!("/managed-companies/{id}"),
            Some(json!({})),
        )
        .await;
    assert_problem(&r, 400);
    let r = t
        .call(
            Method::PUT,
            &format!("/managed-companies/{id}"),
            Some(json!({"status": "paused", "name": "x"})),
        )
        .await;
    assert_problem(&r, 400);
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 2);
    let r = t
        .call(
            Method::PUT,
            "/managed-companies/99",
            Some(json!({"status": "active"})),
        )
        .await;
    assert_problem(&r, 404);
    // Wrong method on a known path.
    let r = t
        .call(Method::PATCH, &format!("/managed-companies/{id}"), None)
        .await;
    assert_problem(&r, 405);
    assert_eq!(r.headers["allow"], "GET, PUT, DELETE");
    assert_problem(&t.get("/nothing-here").await, 404);
}

#[tokio::test]
async fn users_invite_stage_and_statuses() {
    let t = spawn().await;
    let done = t
        .create(json!({"name": "Users Co", "licenseLimit": 3}))
        .await;
    let id = done["resourceId"].as_u64().unwrap();
    let base = format!("/managed-companies/{id}/users");
    let r = t
        .call(
            Method::POST,
            &base,
            Some(json!({"email": "Ann@Users.example", "name": "Ann", "creationAccountAction": "invite"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let obj = r.body.as_object().unwrap();
    assert_eq!(
        obj.keys().cloned().collect::<BTreeSet<_>>(),
        ["accountStatus", "email", "id", "name"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert_eq!(r.body["accountStatus"], "pending-invitation");
    assert_eq!(r.body["email"], "Ann@Users.example");
    let uid = r.body["id"].as_u64().unwrap();
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("{base}/{uid}"))
    );
    let r = t
        .call(
            Method::POST,
            &base,
            Some(json!({"email": "bob@users.example", "creationAccountAction": "stage"})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["accountStatus"], "staged");
    assert!(r.body["name"].is_null());
    // The same e-mail again (any case): 409.
    let r = t
        .call(
            Method::POST,
            &base,
            Some(json!({"email": "ann@users.example", "creationAccountAction": "invite"})),
        )
        .await;
    assert_problem(&r, 409);
    assert_eq!(r.body["title"], "Conflict");
    // Validation.
    let r = t
        .call(
            Method::POST,
            &base,
            Some(json!({"email": "not-an-email", "creationAccountAction": "hire"})),
        )
        .await;
    assert_problem(&r, 400);
    let pointers: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["#/email", "#/creationAccountAction"]);
    let r = t
        .call(
            Method::POST,
            "/managed-companies/99/users",
            Some(json!({"email": "a@b.example", "creationAccountAction": "invite"})),
        )
        .await;
    assert_problem(&r, 404);
    // Read back.
    let r = t.get(&format!("{base}/{uid}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["accountStatus"], "pending-invitation");
    assert_problem(&t.get(&format!("{base}/1")).await, 404);
    let (users, _) = t.all(&format!("{base}?sort=email:asc")).await;
    assert_eq!(
        users
            .iter()
            .map(|u| u["email"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["Ann@Users.example", "bob@users.example"]
    );
    let (staged, _) = t.all(&format!("{base}?account-status=staged")).await;
    assert_eq!(staged.len(), 1);
    let (ann, _) = t.all(&format!("{base}?email=ANN%40users.example")).await;
    assert_eq!(ann.len(), 1);
    let (b, _) = t.all(&format!("{base}?email=b%25")).await;
    assert_eq!(b.len(), 1);
    // An invitation expires after 90 days (virtual time).
    t.sb.clock.advance_us(91 * 86_400 * 1_000_000);
    let r = t.get(&format!("{base}/{uid}")).await;
    assert_eq!(r.body["accountStatus"], "expired-invitation");
    // Seeded companies have users in every status.
    let mut seen = BTreeSet::new();
    let (companies, _) = t.all("/managed-companies?max-results=500").await;
    for c in &companies {
        let (us, _) = t
            .all(&format!(
                "/managed-companies/{}/users?max-results=500",
                c["id"]
            ))
            .await;
        for u in us {
            seen.insert(u["accountStatus"].as_str().unwrap().to_string());
        }
    }
    for s in [
        "enrolled",
        "pending-invitation",
        "expired-invitation",
        "staged",
        "disabled",
    ] {
        assert!(seen.contains(s), "no {s} user in {seen:?}");
    }
}

#[tokio::test]
async fn adding_invited_users_runs_out_of_licences() {
    let t = spawn().await;
    let done = t
        .create(json!({"name": "Full Co", "licenseLimit": 2}))
        .await;
    let id = done["resourceId"].as_u64().unwrap();
    // Spend the rest of the pool: the pool becomes exactly what is allocated or used.
    let l = t.sb.msp.licenses();
    let (s, v) = t
        .control(
            Method::POST,
            "/licenses",
            Some(json!({"total": l.total - l.unallocated})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["unallocated"], 0);
    let base = format!("/managed-companies/{id}/users");
    let add = |email: String, action: &'static str| {
        let t = &t;
        let base = base.clone();
        async move {
            t.call(
                Method::POST,
                &base,
                Some(json!({"email": email, "creationAccountAction": action})),
            )
            .await
        }
    };
    assert_eq!(add("u1@full.example".into(), "invite").await.status, 201);
    assert_eq!(add("u2@full.example".into(), "invite").await.status, 201);
    let r = add("u3@full.example".into(), "invite").await;
    assert_problem(&r, 409);
    assert_eq!(r.body["title"], "Not enough licenses");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("no more licenses to distribute")
    );
    // Staged users hold no licence.
    assert_eq!(add("u4@full.example".into(), "stage").await.status, 201);
    // One more licence in the pool: one more user, drawn from the pool beyond the allocation.
    t.control(
        Method::POST,
        "/licenses",
        Some(json!({"total": l.total - l.unallocated + 1})),
    )
    .await;
    assert_eq!(add("u3@full.example".into(), "invite").await.status, 201);
    let c = t.get(&format!("/managed-companies/{id}")).await;
    assert_eq!(c.body["licensesUsed"], 3);
    assert_eq!(c.body["licenseLimit"], 2);
    let (_, v) = t.control(Method::GET, "/licenses", None).await;
    assert_eq!(v["unallocated"], 0);
    assert!(v["overage"].as_u64().unwrap() >= 1);
    assert_problem(&add("u5@full.example".into(), "invite").await, 409);
    // Disabling a user gives the licence back.
    let (_, users) = t
        .control(Method::GET, &format!("/companies/{id}"), None)
        .await;
    let u1 = users["users"][0]["id"].as_u64().unwrap();
    let (s, _) = t
        .control(
            Method::PATCH,
            &format!("/companies/{id}/users/{u1}"),
            Some(json!({"accountStatus": "disabled"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(add("u5@full.example".into(), "invite").await.status, 201);
}

#[tokio::test]
async fn detach_needs_an_admin() {
    let t = spawn().await;
    let (_, companies) = t.control(Method::GET, "/companies", None).await;
    let no_admin = companies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["admins"] == 0 && c["type"] == "managed" && !c["users"].as_array().unwrap().is_empty()
        })
        .expect("a seeded company without admins")
        .clone();
    let id = no_admin["id"].as_u64().unwrap();
    let before = t.sb.msp.licenses();
    let r = t
        .call(Method::DELETE, &format!("/managed-companies/{id}"), None)
        .await;
    assert_problem(&r, 409);
    assert_eq!(r.body["detail"], "Can't detach without admins.");
    // Make a user an admin, then detach.
    let uid = no_admin["users"][0]["id"].as_u64().unwrap();
    let (s, u) = t
        .control(
            Method::PATCH,
            &format!("/companies/{id}/users/{uid}"),
            Some(json!({"admin": true})),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["admin"], true);
    let r = t
        .call(Method::DELETE, &format!("/managed-companies/{id}"), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(r.body.is_null());
    assert_problem(&t.get(&format!("/managed-companies/{id}")).await, 404);
    assert_problem(
        &t.call(Method::DELETE, &format!("/managed-companies/{id}"), None)
            .await,
        404,
    );
    let footprint = no_admin["licenseLimit"]
        .as_u64()
        .unwrap()
        .max(no_admin["licensesUsed"].as_u64().unwrap()) as u32;
    assert_eq!(
        t.sb.msp.licenses().unallocated,
        before.unallocated + footprint
    );
    let (_, detached) = t.control(Method::GET, "/detached", None).await;
    assert_eq!(detached[0]["id"], id);
    // A managed-msp company with children cannot go first.
    let (msps, _) = t.all("/managed-companies?type=managed-msp").await;
    let mid = msps[0]["id"].as_u64().unwrap();
    let (_, m) = t
        .control(Method::GET, &format!("/companies/{mid}"), None)
        .await;
    if m["admins"].as_u64().unwrap() > 0 {
        let r = t
            .call(Method::DELETE, &format!("/managed-companies/{mid}"), None)
            .await;
        assert_problem(&r, 409);
    }
}

#[tokio::test]
async fn faults_rate_limit_and_counters_by_operation() {
    let t = spawn().await;
    let (s, rule) = t
        .control(
            Method::POST,
            "/faults",
            Some(json!({"spec": "users.add:429:1:1"})),
        )
        .await;
    assert_eq!(s, 201, "{rule}");
    let (s, _) = t
        .control(
            Method::POST,
            "/faults",
            Some(json!({"spec": "getuserdata:500"})),
        )
        .await;
    assert_eq!(s, 400, "LastPass commands are not REST operations");
    t.control(
        Method::POST,
        "/config",
        Some(json!({"retry_after_secs": 7})),
    )
    .await;
    let (companies, _) = t.all("/managed-companies?max-results=500").await;
    let id = companies[0]["id"].as_u64().unwrap();
    let add = json!({"email": "x@y.example", "creationAccountAction": "stage"});
    let r = t
        .call(
            Method::POST,
            &format!("/managed-companies/{id}/users"),
            Some(add.clone()),
        )
        .await;
    assert_problem(&r, 429);
    assert_eq!(r.headers["retry-after"], "7");
    let r = t
        .call(
            Method::POST,
            &format!("/managed-companies/{id}/users"),
            Some(add.clone()),
        )
        .await;
    assert_eq!(r.status, 201, "the rule fired once");
    // A rule object, 503 on every list.
    t.control(
        Method::POST,
        "/faults",
        Some(json!({"cmd": "companies.list", "kind": "status", "status": 503, "count": 2})),
    )
    .await;
    let r = t.get("/managed-companies").await;
    assert_problem(&r, 503);
    assert_eq!(r.headers["retry-after"], "7");
    assert_problem(&t.get("/managed-companies").await, 503);
    assert_eq!(t.get("/managed-companies").await.status, 200);
    // Truncate, malformed, drop.
    t.control(
        Method::POST,
        "/faults",
        Some(json!({"spec": "companies.get:truncate:1:1"})),
    )
    .await;
    let r = t.get(&format!("/managed-companies/{id}")).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.get("raw").is_some(),
        "a cut body is not JSON: {}",
        r.body
    );
    t.control(
        Method::POST,
        "/faults",
        Some(json!({"spec": "companies.get:malformed:1:1"})),
    )
    .await;
    let r = t
        .http
        .get(t.url(&format!("/managed-companies/{id}")))
        .header("Authorization", format!("api-key {}", t.key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err());
    t.control(Method::POST, "/faults", Some(json!({"spec": "*:drop:1:1"})))
        .await;
    let e = t
        .http
        .get(t.url("/managed-companies"))
        .header("Authorization", format!("api-key {}", t.key))
        .send()
        .await;
    let dropped = match e {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(dropped);
    // Counters by operation (the control API is not counted).
    let stats = t.sb.msp.stats();
    assert_eq!(stats.requests_for("users.add"), 2);
    assert!(stats.requests_for("companies.list") >= 4);
    assert_eq!(stats.requests_for("companies.get"), 2);
    assert_eq!(stats.by_cmd["users.add"].faulted, 1);
    let (_, v) = t.control(Method::GET, "/stats", None).await;
    assert_eq!(v["by_cmd"]["users.add"]["requests"], 2);
    t.control(Method::DELETE, "/stats", None).await;
    assert_eq!(t.sb.msp.stats().total.requests, 0);
    // The account's request-rate limit.
    t.control(Method::POST, "/rate-limit", Some(json!({"rps": 1.0})))
        .await;
    let a = t.get("/managed-companies").await.status;
    let b = t.get("/managed-companies").await;
    assert_eq!(a, 200);
    assert_problem(&b, 429);
    assert_eq!(t.sb.msp.stats().by_cmd["companies.list"].rate_limited, 1);
    t.control(Method::POST, "/rate-limit", Some(json!({"rps": null})))
        .await;
    // The Enterprise API's counters never see REST requests.
    assert_eq!(t.sb.stats().total.requests, 0);
}

#[tokio::test]
async fn read_only_key_and_reset() {
    let t = spawn().await;
    let (s, _) = t
        .control(Method::POST, "/key", Some(json!({"read_only": true})))
        .await;
    assert_eq!(s, 200);
    assert_eq!(t.get("/managed-companies").await.status, 200);
    let r = t
        .call(
            Method::POST,
            "/managed-companies",
            Some(json!({"name": "X"})),
        )
        .await;
    assert_problem(&r, 403);
    assert_eq!(r.body["title"], "Forbidden");
    t.control(Method::POST, "/key", Some(json!({"read_only": false})))
        .await;
    let (before, _) = t.all("/managed-companies?max-results=500").await;
    t.create(json!({"name": "Temp"})).await;
    t.control(Method::POST, "/licenses", Some(json!({"total": 1})))
        .await;
    let (s, v) = t
        .control(Method::POST, "/reset", Some(json!({"stats": true})))
        .await;
    assert_eq!(s, 200, "{v}");
    let (after, _) = t.all("/managed-companies?max-results=500").await;
    assert_eq!(before, after);
    assert_eq!(t.sb.msp.licenses().total, 500);
    let (s, v) = t.control(Method::GET, "", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["companies"], 30);
    let (s, v) = t.control(Method::GET, "/no-such", None).await;
    assert_eq!(s, 404);
    assert_eq!(v["error"], "not_found");
    // A company added by hand through the control API is there at once.
    let (s, c) = t
        .control(
            Method::POST,
            "/companies",
            Some(json!({"name": "Hand Made", "licenseLimit": 1})),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let (s, u) = t
        .control(
            Method::POST,
            &format!("/companies/{}/users", c["id"]),
            Some(json!({"email": "boss@hand.example", "admin": true})),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    assert_eq!(u["accountStatus"], "enrolled");
    let (s, e) = t
        .control(
            Method::POST,
            "/companies",
            Some(json!({"name": "Greedy", "licenseLimit": 100000})),
        )
        .await;
    assert_eq!(s, 409, "{e}");
    assert_eq!(e["error"], "conflict");
}
