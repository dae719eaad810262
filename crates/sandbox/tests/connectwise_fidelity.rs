//! The ConnectWise Manage emulator against the reference shapes (spec
//! `psa-and-msp.md` §0-§1): discovery, auth and its error bodies, the list endpoints with
//! `conditions` / `childConditions`, paging and the `Link` header, counts, setup tables, faults
//! and the control API. Everything goes over HTTP to an in-process sandbox on 127.0.0.1:0.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use base64::Engine;
use proptest::prelude::*;
use sandbox::connectwise::conditions::{self, FieldType, Literal, Record, Scalar, Schema};
use sandbox::connectwise::{ConnectWiseConfig, CwCredentials, CwFaultKind, CwFaultRule};
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

struct Cw {
    sb: SandboxHandle,
    http: reqwest::Client,
    creds: CwCredentials,
}

async fn cw(companies: usize, contacts: usize) -> Cw {
    let mut config = SandboxConfig::for_tests();
    config.connectwise = ConnectWiseConfig::with_seed(7).sized(companies, contacts);
    let sb = sandbox::spawn(config).await.expect("sandbox starts");
    let creds = sb.connectwise.credentials();
    Cw {
        sb,
        http: reqwest::Client::new(),
        creds,
    }
}

impl Cw {
    fn site(&self) -> String {
        self.sb.connectwise_site()
    }

    fn api(&self) -> String {
        format!("{}/{}apis/3.0", self.site(), self.creds.codebase)
    }

    fn auth(&self) -> String {
        let raw = format!(
            "{}+{}:{}",
            self.creds.company_id, self.creds.public_key, self.creds.private_key
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}/{path}", self.api())
        };
        self.http
            .get(url)
            .header("Authorization", self.auth())
            .header("clientId", &self.creds.client_id)
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> (u16, Value, Option<String>) {
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let link = r
            .headers()
            .get("link")
            .map(|v| v.to_str().expect("ascii").to_string());
        let text = r.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }))
        };
        (status, v, link)
    }

    fn control(&self, path: &str) -> String {
        format!("{}/_sandbox/connectwise{path}", self.sb.base_url())
    }
}

/// `rel` → URL from a `Link` header.
fn links(h: &str) -> Vec<(String, String)> {
    h.split(", ")
        .filter(|s| !s.is_empty())
        .map(|part| {
            let (url, rel) = part.split_once(">; rel=\"").expect("link part");
            (
                rel.trim_end_matches('"').to_string(),
                url.trim_start_matches('<').to_string(),
            )
        })
        .collect()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn companyinfo_discovery_shape() {
    let c = cw(10, 20).await;
    let url = format!("{}/login/companyinfo/{}", c.site(), c.creds.company_id);
    // No auth at all.
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        keys(&v),
        [
            "CompanyName",
            "Codebase",
            "VersionCode",
            "VersionNumber",
            "CompanyID",
            "IsCloud"
        ]
    );
    assert_eq!(v["Codebase"], "v2025_1/");
    assert!(v["Codebase"].as_str().unwrap().ends_with('/'));
    assert_eq!(v["IsCloud"], "True", "IsCloud is a string");
    assert_eq!(v["VersionCode"], "v2025.1");
    // Company ids are case-insensitive.
    let upper = format!("{}/login/companyinfo/LPBRIDGE", c.site());
    assert_eq!(reqwest::get(&upper).await.unwrap().status(), 200);
    // Unknown company: 404 with an empty body (configurable).
    let r = reqwest::get(format!("{}/login/companyinfo/nobody", c.site()))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "");
    let services = c.sb.services_json();
    let s = &services["connectwise"];
    assert_eq!(s["site"], c.site());
    assert_eq!(s["company_id"], "lpbridge");
    assert_eq!(s["codebase"], "v2025_1/");
    assert_eq!(s["client_id"], c.creds.client_id);
    assert_eq!(s["api"], c.api());
    assert_eq!(s["private_key"].as_str().unwrap().len(), 16);
}

#[tokio::test]
async fn auth_failures_have_documented_bodies() {
    let c = cw(10, 20).await;
    let url = format!("{}/company/companies", c.api());
    // No Authorization header.
    let (s, v, _) = c
        .json(c.http.get(&url).header("clientId", &c.creds.client_id))
        .await;
    assert_eq!(s, 401);
    assert_eq!(
        v,
        json!({"code":"Unauthorized","message":"Incorrect public/private key"})
    );
    // Wrong private key.
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}+{}:wrong",
            c.creds.company_id, c.creds.public_key
        ))
    );
    let (s, v, _) = c
        .json(
            c.http
                .get(&url)
                .header("Authorization", bad)
                .header("clientId", &c.creds.client_id),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (401, Some("Unauthorized")));
    // Right keys, wrong company.
    let other = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "other+{}:{}",
            c.creds.public_key, c.creds.private_key
        ))
    );
    let (s, v, _) = c
        .json(
            c.http
                .get(&url)
                .header("Authorization", other)
                .header("clientId", &c.creds.client_id),
        )
        .await;
    assert_eq!(s, 401);
    assert_eq!(
        v,
        json!({"code":"ConnectWiseApi","message":"UserNotAuthenticated"})
    );
    // Missing and unknown clientId: 400 naming clientId.
    let (s, v, _) = c
        .json(c.http.get(&url).header("Authorization", c.auth()))
        .await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("clientId"));
    let (s, v, _) = c
        .json(
            c.http
                .get(&url)
                .header("Authorization", c.auth())
                .header("ClientID", "00000000-0000-0000-0000-000000000000"),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("clientId"));
    // Header names are case-insensitive.
    let (s, _, _) = c
        .json(
            c.http
                .get(&url)
                .header("authorization", c.auth())
                .header("CLIENTID", &c.creds.client_id),
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn company_shape_and_default_page_size() {
    let c = cw(60, 100).await;
    let (s, v, link) = c.json(c.get("company/companies")).await;
    assert_eq!(s, 200);
    let rows = v.as_array().expect("a bare JSON array");
    assert_eq!(rows.len(), 25, "default pageSize is 25");
    let first = &rows[0];
    for k in [
        "id",
        "identifier",
        "name",
        "status",
        "deletedFlag",
        "types",
        "site",
        "_info",
        "phoneNumber",
        "website",
    ] {
        assert!(first.get(k).is_some(), "company has {k}");
    }
    assert!(first.get("type").is_none(), "no top-level type");
    assert_eq!(keys(&first["status"]), ["id", "name", "_info"]);
    assert!(
        first["status"]["_info"]["status_href"]
            .as_str()
            .unwrap()
            .ends_with(&format!(
                "/company/companies/statuses/{}",
                first["status"]["id"]
            ))
    );
    let id = first["id"].as_u64().unwrap();
    assert_eq!(
        first["_info"]["contacts_href"],
        format!("{}/company/contacts?conditions=company/id={id}", c.api())
    );
    assert!(first["identifier"].as_str().unwrap().len() <= 30);
    let link = link.expect("Link header");
    assert_eq!(
        link,
        format!(
            "<{api}/company/companies?pageSize=25&page=2>; rel=\"next\", <{api}/company/companies?pageSize=25&page=3>; rel=\"last\"",
            api = c.api()
        )
    );
    // One company by id; a missing one is 404 NotFound.
    let (s, one, _) = c.json(c.get(&format!("company/companies/{id}"))).await;
    assert_eq!((s, &one), (200, first));
    let (s, v, _) = c.json(c.get("company/companies/1")).await;
    assert_eq!(s, 404);
    assert_eq!(
        v,
        json!({"code":"NotFound","message":"Company 1 not found"})
    );
}

#[tokio::test]
async fn link_header_keeps_the_query_and_puts_page_last() {
    let c = cw(300, 100).await;
    let cond = "status/name=\"Active\"";
    let truth: Vec<u64> = c.sb.connectwise.with_data(|d| {
        d.companies
            .values()
            .filter(|x| x.status_id == 1)
            .map(|x| x.id)
            .collect()
    });
    let size = 40;
    let mut url = format!(
        "{}/company/companies?conditions={}&pageSize={size}",
        c.api(),
        urlencode(cond)
    );
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        calls += 1;
        let (s, v, link) = c.json(c.get(&url)).await;
        assert_eq!(s, 200);
        seen.extend(
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x["id"].as_u64().unwrap()),
        );
        let Some(link) = link else { break };
        let l = links(&link);
        for (_, u) in &l {
            assert!(u.contains("conditions="), "{u} keeps the conditions");
            assert!(
                regex_like_page_last(u),
                "{u}: pageSize then page are the last parameters"
            );
        }
        match l.iter().find(|(rel, _)| rel == "next") {
            Some((_, next)) => url = next.clone(),
            None => {
                // The last page: first and prev only.
                let rels: Vec<_> = l.iter().map(|(r, _)| r.as_str()).collect();
                assert_eq!(rels, ["first", "prev"]);
                break;
            }
        }
    }
    assert_eq!(seen, truth);
    assert_eq!(calls, truth.len().div_ceil(size));
    // A page in the middle has all four rels in order.
    let (_, _, link) = c
        .json(c.get(&format!("company/companies?pageSize={size}&page=2")))
        .await;
    let rels: Vec<_> = links(&link.unwrap()).into_iter().map(|(r, _)| r).collect();
    assert_eq!(rels, ["first", "prev", "next", "last"]);
    // Everything on one page: no Link header.
    let (_, v, link) = c.json(c.get("company/companies?pageSize=1000")).await;
    assert_eq!(v.as_array().unwrap().len(), 300);
    assert!(link.is_none());
}

fn regex_like_page_last(u: &str) -> bool {
    let q = u.split_once('?').map(|x| x.1).unwrap_or("");
    let parts: Vec<&str> = q.split('&').collect();
    parts.len() >= 2
        && parts[parts.len() - 2].starts_with("pageSize=")
        && parts[parts.len() - 1].starts_with("page=")
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[tokio::test]
async fn page_size_limits() {
    let c = cw(10, 10).await;
    let (s, v, _) = c.json(c.get("company/companies?pageSize=1001")).await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!({"code":"InvalidObject","message":"pageSize object is invalid","errors":[{"code":"OutOfRange","message":"The field pageSize must be between 1 and 1000.","resource":"pageSize","field":"pageSize"}]})
    );
    let (s, _, _) = c.json(c.get("company/companies?pageSize=0")).await;
    assert_eq!(s, 400);
    let (s, _, _) = c.json(c.get("company/companies?pageSize=1000")).await;
    assert_eq!(s, 200);
    let (s, v, _) = c.json(c.get("company/companies?page=0")).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("InvalidObject")));
    // Beyond the last page: an empty array.
    let (s, v, _) = c.json(c.get("company/companies?page=50")).await;
    assert_eq!((s, v), (200, json!([])));
}

#[tokio::test]
async fn conditions_and_child_conditions_filter_for_real() {
    let c = cw(400, 100).await;
    let (s, v, _) = c
        .json(c.get("company/companies").query(&[
            ("conditions", "deletedFlag=false and status/name=\"Active\""),
            ("childConditions", "types/name=\"Client\" or types/id=4"),
            ("pageSize", "1000"),
        ]))
        .await;
    assert_eq!(s, 200);
    let got: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_u64().unwrap())
        .collect();
    let truth: Vec<u64> = c.sb.connectwise.with_data(|d| {
        d.companies
            .values()
            .filter(|x| {
                !x.deleted && x.status_id == 1 && x.type_ids.iter().any(|t| *t == 1 || *t == 4)
            })
            .map(|x| x.id)
            .collect()
    });
    assert!(!truth.is_empty());
    assert_eq!(got, truth);
    // The count endpoint applies the same filters.
    let (s, v, _) = c
        .json(c.get("company/companies/count").query(&[
            ("conditions", "deletedFlag=false and status/name=\"Active\""),
            ("childConditions", "types/name=\"Client\" or types/id=4"),
        ]))
        .await;
    assert_eq!((s, v), (200, json!({"count": truth.len()})));
    // `in`, `not in`, `like`, parentheses and orderBy.
    let (_, v, _) = c
        .json(c.get("company/companies").query(&[
            (
                "conditions",
                "(status/id in (2, 3) or name like \"Blue%\") and id not in (1)",
            ),
            ("orderBy", "name desc"),
            ("pageSize", "1000"),
        ]))
        .await;
    let rows = v.as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        let st = r["status"]["id"].as_u64().unwrap();
        assert!(st == 2 || st == 3 || r["name"].as_str().unwrap().starts_with("Blue"));
    }
    let names: Vec<String> = rows
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_lowercase())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(names, sorted);
    // `fields` gives a partial response.
    let (_, v, _) = c
        .json(c.get("company/companies?fields=id,name,status/id&pageSize=2"))
        .await;
    assert_eq!(keys(&v[0]), ["id", "name", "status"]);
    assert_eq!(keys(&v[0]["status"]), ["id"]);
    // The contact fields the client asks for: the same values as the full records, nothing else.
    let (_, full, _) = c.json(c.get("company/contacts?pageSize=50")).await;
    let (_, part, _) = c
        .json(c.get(
            "company/contacts?fields=id,firstName,lastName,company/id,inactiveFlag,communicationItems&pageSize=50",
        ))
        .await;
    let (full, part) = (full.as_array().unwrap(), part.as_array().unwrap());
    assert_eq!(full.len(), part.len());
    for (f, p) in full.iter().zip(part) {
        assert_eq!(
            keys(p),
            [
                "id",
                "firstName",
                "lastName",
                "company",
                "inactiveFlag",
                "communicationItems"
            ]
        );
        assert_eq!(p["company"], json!({"id": f["company"]["id"]}));
        for k in [
            "id",
            "firstName",
            "lastName",
            "inactiveFlag",
            "communicationItems",
        ] {
            assert_eq!(p[k], f[k], "{k}");
        }
    }
}

#[tokio::test]
async fn bad_conditions_give_api_find_condition() {
    let c = cw(10, 10).await;
    let (s, v, _) = c
        .json(
            c.get("company/companies")
                .query(&[("conditions", "typeids=1")]),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!({"code":"ApiFindCondition","message":"typeids is not a recognized name."})
    );
    for (param, bad) in [
        ("conditions", "name = Acme"),
        ("conditions", "id = 1 and"),
        ("conditions", "(id = 1"),
        ("conditions", "types/id = 1"),
        ("childConditions", "types/id in (1,2)"),
        ("childConditions", "name = \"x\""),
        ("orderBy", "nosuch asc"),
    ] {
        let (s, v, _) = c
            .json(c.get("company/companies").query(&[(param, bad)]))
            .await;
        assert_eq!(s, 400, "{param}={bad}");
        assert_eq!(v["code"], "ApiFindCondition", "{param}={bad}: {v}");
        assert!(v["message"].is_string());
    }
}

#[tokio::test]
async fn contacts_shape_filters_and_count() {
    let c = cw(50, 400).await;
    let company = c.sb.connectwise.with_data(|d| {
        *d.by_company
            .iter()
            .max_by_key(|(_, s)| s.len())
            .map(|(k, _)| k)
            .unwrap()
    });
    let (s, v, _) = c
        .json(
            c.get("company/contacts")
                .query(&[("conditions", format!("company/id={company}"))]),
        )
        .await;
    assert_eq!(s, 200);
    let rows = v.as_array().unwrap();
    let truth: Vec<u64> =
        c.sb.connectwise
            .with_data(|d| d.by_company[&company].iter().copied().collect());
    assert_eq!(
        rows.iter()
            .map(|x| x["id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        truth
    );
    let x = &rows[0];
    for k in [
        "id",
        "firstName",
        "lastName",
        "company",
        "site",
        "inactiveFlag",
        "defaultFlag",
        "communicationItems",
        "types",
        "_info",
    ] {
        assert!(x.get(k).is_some(), "contact has {k}");
    }
    assert_eq!(keys(&x["company"]), ["id", "identifier", "name", "_info"]);
    assert_eq!(x["company"]["id"], company);
    assert!(x["inactiveFlag"].is_boolean());
    // Every e-mail item has the documented fields.
    let mut saw_email = false;
    for r in rows {
        for item in r["communicationItems"].as_array().unwrap() {
            assert!(item["id"].is_u64());
            assert!(item["type"]["id"].is_u64() && item["type"]["name"].is_string());
            assert!(item["value"].is_string() && item["defaultFlag"].is_boolean());
            let kind = item["communicationType"].as_str().unwrap();
            assert!(["Email", "Phone", "Fax"].contains(&kind));
            if kind == "Email" {
                saw_email = true;
                assert_eq!(item["type"]["name"], "Email");
                if let Some(d) = item.get("domain") {
                    assert!(d.as_str().unwrap().starts_with('@'));
                }
            }
        }
    }
    assert!(saw_email);
    // The documented childconditions example: a contact by e-mail.
    let email = c.sb.connectwise.with_data(|d| {
        d.contacts
            .values()
            .flat_map(|c| c.comms.iter())
            .find(|m| m.value.contains(".com") && m.value.contains('@'))
            .unwrap()
            .value
            .clone()
    });
    let (_, v, _) = c
        .json(c.get("company/contacts").query(&[(
            "childconditions",
            format!(
                "communicationItems/value like \"{}\" AND communicationItems/communicationType=\"Email\"",
                email.to_uppercase()
            ),
        )]))
        .await;
    let hits = v.as_array().unwrap();
    assert!(!hits.is_empty());
    for h in hits {
        assert!(
            h["communicationItems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["value"].as_str().unwrap().eq_ignore_ascii_case(&email))
        );
    }
    // `in` over companies (the batched form) and counts.
    let (_, v, _) = c
        .json(c.get("company/contacts/count").query(&[(
            "conditions",
            format!("company/id in ({company}, 1) and inactiveFlag=false"),
        )]))
        .await;
    let active = c.sb.connectwise.with_data(|d| {
        d.by_company[&company]
            .iter()
            .filter(|i| !d.contacts[i].inactive)
            .count()
    });
    assert_eq!(v, json!({"count": active}));
    let (_, v, _) = c.json(c.get("company/contacts/count")).await;
    assert_eq!(v, json!({"count": 400}));
    let (_, v, _) = c.json(c.get("company/companies/count")).await;
    assert_eq!(v, json!({"count": 50}));
}

#[tokio::test]
async fn setup_tables_and_system_info() {
    let c = cw(10, 10).await;
    let (s, v, _) = c.json(c.get("company/companies/types")).await;
    assert_eq!(s, 200);
    let t = &v.as_array().unwrap()[0];
    assert_eq!(
        keys(t),
        ["id", "name", "defaultFlag", "vendorFlag", "_info"]
    );
    assert_eq!(
        (t["id"].as_u64(), t["name"].as_str()),
        (Some(1), Some("Client"))
    );
    let names: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"Prospect".to_string()) && names.contains(&"Vendor".to_string()));
    let (_, v, _) = c.json(c.get("company/companies/statuses")).await;
    let st = v.as_array().unwrap();
    assert_eq!(
        keys(&st[0]),
        [
            "id",
            "name",
            "defaultFlag",
            "inactiveFlag",
            "notifyFlag",
            "disallowSavingFlag",
            "customNoteFlag",
            "cancelOpenTracksFlag",
            "_info"
        ]
    );
    assert!(st.iter().any(|s| s["inactiveFlag"] == true));
    let (_, v, _) = c
        .json(c.get("company/companies/statuses?conditions=inactiveFlag=true"))
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (_, v, _) = c.json(c.get("company/companies/types/3")).await;
    assert_eq!(v["name"], "Vendor");
    let (s, v, _) = c.json(c.get("system/info")).await;
    assert_eq!(s, 200);
    assert_eq!(
        keys(&v),
        [
            "version",
            "isCloud",
            "serverTimeZone",
            "licenseBits",
            "cloudRegion"
        ]
    );
    assert_eq!(v["isCloud"], true, "isCloud is a bool here");
}

#[tokio::test]
async fn forward_only_paging() {
    let c = cw(130, 10).await;
    let truth: Vec<u64> =
        c.sb.connectwise
            .with_data(|d| d.companies.keys().copied().collect());
    let mut url = format!("{}/company/companies?pageSize=50", c.api());
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        calls += 1;
        let (s, v, link) = c
            .json(c.get(&url).header("pagination-type", "forward-only"))
            .await;
        assert_eq!(s, 200);
        seen.extend(
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x["id"].as_u64().unwrap()),
        );
        let link = link.expect("forward-only always sends a Link header");
        if link.is_empty() {
            break;
        }
        let l = links(&link);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].0, "next");
        assert!(
            l[0].1
                .ends_with(&format!("pageSize=50&pageId={}", seen.last().unwrap()))
        );
        url = l[0].1.clone();
    }
    assert_eq!(seen, truth);
    assert_eq!(calls, 3);
    // `page` is ignored; `pageId` acts as `id > pageId`; `orderBy` is refused.
    let (_, v, _) = c
        .json(
            c.get(&format!(
                "company/companies?pageSize=5&page=9&pageId={}",
                truth[9]
            ))
            .header("pagination-type", "forward-only"),
        )
        .await;
    assert_eq!(v[0]["id"].as_u64(), Some(truth[10]));
    let (s, _, _) = c
        .json(
            c.get("company/companies?orderBy=name")
                .header("pagination-type", "forward-only"),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn permissions_give_documented_403() {
    let c = cw(10, 30).await;
    let mut p = c.sb.connectwise.permissions();
    p.setup = false;
    c.sb.connectwise.set_permissions(p);
    let (s, v, _) = c.json(c.get("company/companies/types")).await;
    assert_eq!(s, 403);
    assert_eq!(
        v,
        json!({"code":"Security","message":"You do not have security permission to perform this action."})
    );
    let (s, _, _) = c.json(c.get("company/companies")).await;
    assert_eq!(s, 200);
    // Over the control API: contacts hidden behind blank company fields.
    let r = c
        .http
        .post(c.control("/permissions"))
        .json(&json!({"setup": true, "contact_company_visible": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v, _) = c.json(c.get("company/contacts?pageSize=3")).await;
    assert!(v[0].get("company").is_none());
}

#[tokio::test]
async fn faults_rate_limit_errors_html_truncation_delay() {
    let c = cw(10, 10).await;
    let cwh = &c.sb.connectwise;
    cwh.add_fault(
        CwFaultRule::new(CwFaultKind::RateLimit { retry_after: 7 })
            .path("company/companies")
            .count(1),
    )
    .unwrap();
    let r = c.get("company/companies").send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error":"ConnectWiseAPI","message":"Too many requests. Please try again in 7 seconds."})
    );
    // The rule had count 1: gone.
    assert_eq!(
        c.get("company/companies").send().await.unwrap().status(),
        200
    );
    assert!(cwh.faults().is_empty());

    cwh.add_fault(
        CwFaultRule::new(CwFaultKind::Status {
            status: 500,
            message: Some("String was not recognized as a valid Boolean.".into()),
        })
        .count(1),
    )
    .unwrap();
    let (s, v, _) = c.json(c.get("system/info")).await;
    assert_eq!(s, 500);
    assert_eq!(
        v,
        json!({"code":"ConnectWiseApi","message":"String was not recognized as a valid Boolean."})
    );

    cwh.add_fault(CwFaultRule::new(CwFaultKind::Html { status: 503 }).count(1))
        .unwrap();
    let r = c.get("system/info").send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().starts_with("<!DOCTYPE html>"));

    cwh.add_fault(CwFaultRule::new(CwFaultKind::Truncate).count(1))
        .unwrap();
    let r = c.get("company/companies").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "truncated JSON"
    );

    cwh.add_fault(CwFaultRule::new(CwFaultKind::Delay { ms: 150 }).count(1))
        .unwrap();
    let t = Instant::now();
    assert_eq!(c.get("system/info").send().await.unwrap().status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(150));

    // Probability 0 never fires; path filters apply.
    cwh.add_fault(
        CwFaultRule::new(CwFaultKind::Status {
            status: 502,
            message: None,
        })
        .probability(0.0),
    )
    .unwrap();
    cwh.add_fault(
        CwFaultRule::new(CwFaultKind::Status {
            status: 503,
            message: None,
        })
        .path("company/contacts"),
    )
    .unwrap();
    assert_eq!(c.get("system/info").send().await.unwrap().status(), 200);
    assert_eq!(
        c.get("company/contacts").send().await.unwrap().status(),
        503
    );
    cwh.clear_faults();
    assert!(
        cwh.add_fault(CwFaultRule::new(CwFaultKind::Truncate).probability(2.0))
            .is_err()
    );
}

#[tokio::test]
async fn codebase_change_moves_the_api() {
    let c = cw(10, 10).await;
    let old_api = c.api();
    let r = c
        .http
        .post(c.control("/codebase"))
        .json(&json!({"codebase": "v2025_2/"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"codebase": "v2025_2/", "previous": "v2025_1/"}));
    let info: Value = reqwest::get(format!("{}/login/companyinfo/lpbridge", c.site()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["Codebase"], "v2025_2/");
    let r = c
        .get(&format!("{old_api}/company/companies"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the old codebase path is gone");
    let new_api = format!("{}/v2025_2/apis/3.0", c.site());
    let r = c
        .get(&format!("{new_api}/company/companies?pageSize=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert!(link.contains("/v2025_2/apis/3.0/"));
}

/// Checklist §1.10 item 2: a cloud codebase answers the API only on the `api-` host; the UI host
/// gets the documented `Security` body (with `"errors":null`). On-premise codebases do not care.
#[tokio::test]
async fn cloud_ui_host_requires_the_api_host() {
    let c = cw(10, 10).await;
    let (status, body, _) = c
        .json(
            c.get("company/companies?pageSize=1")
                .header("Host", "na.myconnectwise.net"),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"code": "Security", "message": "SSL is required.", "errors": null})
    );
    assert_eq!(
        keys(&body),
        ["code", "message", "errors"],
        "the documented key order"
    );
    let (status, _, _) = c
        .json(
            c.get("company/companies?pageSize=1")
                .header("Host", "api-na.myconnectwise.net"),
        )
        .await;
    assert_eq!(status, 200, "the api- host is fine");
    // Discovery lives on the UI host and stays open.
    let r = c
        .http
        .get(format!("{}/login/companyinfo/lpbridge", c.site()))
        .header("Host", "na.myconnectwise.net")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c.sb.connectwise.set_codebase("v4_6_release/");
    let (status, _, _) = c
        .json(
            c.get(&format!(
                "{}/v4_6_release/apis/3.0/company/companies?pageSize=1",
                c.site()
            ))
            .header("Host", "na.myconnectwise.net"),
        )
        .await;
    assert_eq!(status, 200, "an on-premise codebase has no api- host");
}

#[tokio::test]
async fn control_api_add_rename_remove_and_stats() {
    let c = cw(10, 10).await;
    c.sb.connectwise.reset_stats();
    let r = c
        .http
        .post(c.control("/companies"))
        .json(&json!({"name": "Zeta Widgets LLC", "type_ids": [1, 4], "status_id": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let co: Value = r.json().await.unwrap();
    let id = co["id"].as_u64().unwrap();
    let r = c
        .http
        .post(c.control("/contacts"))
        .json(&json!({"company_id": id, "first_name": "Ann", "last_name": "Lee", "emails": ["ann@zeta.test", "a.lee@zeta.test"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let ct: Value = r.json().await.unwrap();
    let ct_id = ct["id"].as_u64().unwrap();
    let (_, v, _) = c
        .json(c.get(&format!("company/contacts?conditions=company/id={id}")))
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["communicationItems"][0]["value"], "ann@zeta.test");
    assert_eq!(v[0]["communicationItems"][0]["defaultFlag"], true);
    // Rename.
    let r = c
        .http
        .patch(c.control(&format!("/companies/{id}")))
        .json(&json!({"name": "Zeta Widgets Inc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v, _) = c.json(c.get(&format!("company/companies/{id}"))).await;
    assert_eq!(v["name"], "Zeta Widgets Inc");
    let r = c
        .http
        .patch(c.control(&format!("/contacts/{ct_id}")))
        .json(&json!({"last_name": "Lee-Park", "inactive": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v, _) = c.json(c.get(&format!("company/contacts/{ct_id}"))).await;
    assert_eq!(
        (v["lastName"].as_str(), v["inactiveFlag"].as_bool()),
        (Some("Lee-Park"), Some(true))
    );
    // Remove the contact, then the company.
    let r = c
        .http
        .delete(c.control(&format!("/contacts/{ct_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .http
        .delete(c.control(&format!("/companies/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, _, _) = c.json(c.get(&format!("company/companies/{id}"))).await;
    assert_eq!(s, 404);
    // Bad input: the sandbox's control error shape.
    let r = c
        .http
        .post(c.control("/companies"))
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["error"].as_str(), v["field"].as_str()),
        (Some("invalid"), Some("name"))
    );
    let r = c
        .http
        .delete(c.control("/companies/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Counters saw the API calls (not the control calls).
    let stats: Value = c
        .http
        .get(c.control("/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["by_endpoint"]["company/contacts"], 1);
    assert_eq!(stats["by_endpoint"]["company/companies/{id}"], 2);
    assert_eq!(stats["by_endpoint"]["company/contacts/{id}"], 1);
    assert_eq!(stats["total"], 4);
    assert_eq!(c.sb.connectwise.stats().total, 4);
    // Faults over HTTP.
    let r = c
        .http
        .post(c.control("/faults"))
        .json(&json!({"kind": "rate_limit", "retry_after": 0, "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert!(v["id"].is_u64());
    assert_eq!(c.get("system/info").send().await.unwrap().status(), 429);
    let r = c
        .http
        .post(c.control("/faults"))
        .json(&json!({"kind": "explode"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

// ---- the conditions language, as a property ---------------------------------------------

struct TS;
impl Schema for TS {
    fn field(&self, path: &str) -> Option<(u16, FieldType)> {
        match path {
            "id" => Some((0, FieldType::Int)),
            "name" => Some((1, FieldType::Str)),
            "flag" => Some((2, FieldType::Bool)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct TR {
    id: i64,
    name: String,
    flag: bool,
}

impl Record for TR {
    fn any(&self, id: u16, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
        match id {
            0 => f(Scalar::Int(self.id)),
            1 => f(Scalar::Str(&self.name)),
            _ => f(Scalar::Bool(self.flag)),
        }
    }
}

/// A reference expression: rendered to text, parsed, and evaluated both ways.
#[derive(Debug, Clone)]
enum E {
    IdCmp(&'static str, i64),
    IdIn(bool, Vec<i64>),
    NameEq(String),
    NameLike(String),
    Flag(bool),
    And(Box<E>, Box<E>),
    Or(Box<E>, Box<E>),
}

impl E {
    fn render(&self) -> String {
        match self {
            E::IdCmp(op, n) => format!("id {op} {n}"),
            E::IdIn(neg, v) => format!(
                "id {}in ({})",
                if *neg { "not " } else { "" },
                v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            ),
            E::NameEq(s) => format!("name = \"{s}\""),
            E::NameLike(s) => format!("NAME LIKE \"{s}%\""),
            E::Flag(b) => format!("flag = {}", if *b { "True" } else { "false" }),
            E::And(a, b) => format!("({}) AND ({})", a.render(), b.render()),
            E::Or(a, b) => format!("({}) or ({})", a.render(), b.render()),
        }
    }

    fn eval(&self, r: &TR) -> bool {
        match self {
            E::IdCmp(op, n) => match *op {
                "=" => r.id == *n,
                "!=" => r.id != *n,
                "<" => r.id < *n,
                "<=" => r.id <= *n,
                ">" => r.id > *n,
                _ => r.id >= *n,
            },
            E::IdIn(neg, v) => v.contains(&r.id) != *neg,
            E::NameEq(s) => r.name.eq_ignore_ascii_case(s),
            E::NameLike(s) => r.name.to_lowercase().starts_with(&s.to_lowercase()),
            E::Flag(b) => r.flag == *b,
            E::And(a, b) => a.eval(r) && b.eval(r),
            E::Or(a, b) => a.eval(r) || b.eval(r),
        }
    }
}

fn arb_e() -> impl Strategy<Value = E> {
    let leaf = prop_oneof![
        (
            prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]),
            -5i64..5
        )
            .prop_map(|(o, n)| E::IdCmp(o, n)),
        (any::<bool>(), prop::collection::vec(-5i64..5, 1..4)).prop_map(|(n, v)| E::IdIn(n, v)),
        "[a-c]{1,3}".prop_map(E::NameEq),
        "[a-c]{0,2}".prop_map(E::NameLike),
        any::<bool>().prop_map(E::Flag),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| E::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| E::Or(Box::new(a), Box::new(b))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(8), ..ProptestConfig::default() })]

    #[test]
    fn parsed_conditions_agree_with_the_reference(
        e in arb_e(),
        id in -6i64..6,
        name in "[a-cA-C]{1,3}",
        flag in any::<bool>(),
    ) {
        let parsed = conditions::parse(&e.render(), &TS, true).expect("valid condition");
        let r = TR { id, name, flag };
        prop_assert_eq!(conditions::eval(&parsed, &r), e.eval(&r), "{}", e.render());
    }

    #[test]
    fn the_parser_never_panics(s in "[ -~]{0,60}") {
        let _ = conditions::parse(&s, &TS, true);
    }
}

#[test]
fn literal_kinds() {
    let e = conditions::parse("name = null", &TS, true).unwrap();
    match e {
        conditions::Expr::Cmp { values, .. } => assert_eq!(values, vec![Literal::Null]),
        other => panic!("{other:?}"),
    }
    let ids: BTreeSet<u16> = ["id", "name", "flag"]
        .iter()
        .filter_map(|f| TS.field(f).map(|x| x.0))
        .collect();
    assert_eq!(ids.len(), 3);
}
