//! `psa::connectwise::ConnectWiseClient` against the in-process ConnectWise emulator: listings
//! at the page-size minimum, filters pushed upstream, the `Link` paging trap, the codebase move,
//! control-API changes, retries, and one test per error category.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use lp_types::Secret;
use psa::connectwise::{ConnectWiseClient, ConnectWiseConfig, RetryPolicy};
use psa::{CompanyFilter, ErrorKind, PsaDirectory};
use sandbox::connectwise::data::{CommKind, Data};
use sandbox::connectwise::{ConnectWiseConfig as CwEmu, CwFaultKind, CwFaultRule};
use sandbox::{SandboxConfig, SandboxHandle};

async fn sandbox(companies: usize, contacts: usize) -> SandboxHandle {
    let mut config = SandboxConfig::for_tests();
    config.connectwise = CwEmu::with_seed(11).sized(companies, contacts);
    sandbox::spawn(config).await.expect("sandbox starts")
}

fn config(sb: &SandboxHandle) -> ConnectWiseConfig {
    let c = sb.connectwise.credentials();
    ConnectWiseConfig::new(
        sb.connectwise_site(),
        c.company_id,
        c.public_key,
        Secret::new(c.private_key),
        c.client_id,
    )
    .with_retry(RetryPolicy::for_tests())
}

fn client(sb: &SandboxHandle) -> ConnectWiseClient {
    ConnectWiseClient::new(config(sb)).expect("valid config")
}

fn truth_companies(
    d: &Data,
    keep: impl Fn(&sandbox::connectwise::data::Company) -> bool,
) -> Vec<String> {
    d.companies
        .values()
        .filter(|c| keep(c))
        .map(|c| c.id.to_string())
        .collect()
}

#[tokio::test]
async fn companies_at_the_page_size_minimum_following_link() {
    // 2,000 companies: an exact multiple of the page size. Following `Link` costs 2 pages; a
    // client that stops on a short page would make a third call for an empty one.
    let sb = sandbox(2_000, 50).await;
    let c = client(&sb);
    let got: Vec<_> = c
        .companies(&CompanyFilter::default())
        .try_collect()
        .await
        .unwrap();
    let truth = sb.connectwise.with_data(|d| truth_companies(d, |_| true));
    assert_eq!(got.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), truth);
    let stats = sb.connectwise.stats();
    assert_eq!(stats.endpoint("company/companies"), 2);
    assert_eq!(stats.endpoint("login/companyinfo"), 1);
    assert_eq!(stats.endpoint("company/companies/statuses"), 1);
    assert_eq!(c.calls(), 4, "discovery + statuses + 2 pages");
    // Active: not deleted and not an inactive status; types and statuses carried.
    sb.connectwise.with_data(|d| {
        for co in &got {
            let t = &d.companies[&co.id.parse::<u64>().unwrap()];
            assert_eq!(co.name, t.name);
            assert_eq!(co.active, !t.deleted && t.status_id != 2, "{co:?}");
            assert_eq!(co.status.as_ref().unwrap().id, t.status_id.to_string());
            assert_eq!(
                co.company_type.as_ref().map(|x| x.id.clone()),
                t.type_ids.first().map(|x| x.to_string())
            );
        }
    });
    assert!(got.iter().any(|c| !c.active));
    // A second listing reuses the discovered codebase and the statuses.
    let again = c.companies(&CompanyFilter::default()).count().await;
    assert_eq!(again, 2_000);
    assert_eq!(c.calls(), 6);
}

#[tokio::test]
async fn filters_are_pushed_upstream_and_kept_on_every_page() {
    let sb = sandbox(2_600, 20).await;
    let c = client(&sb);
    let filter = CompanyFilter {
        types: vec!["1".into(), "4".into()],
        statuses: vec!["1".into(), "5".into()],
    };
    let got: Vec<String> = c
        .companies(&filter)
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .unwrap();
    let truth = sb.connectwise.with_data(|d| {
        truth_companies(d, |c| {
            (c.status_id == 1 || c.status_id == 5) && c.type_ids.iter().any(|t| *t == 1 || *t == 4)
        })
    });
    assert!(truth.len() > 1000, "more than one page: {}", truth.len());
    assert_eq!(got, truth);
    assert_eq!(
        sb.connectwise.stats().endpoint("company/companies") as usize,
        truth.len().div_ceil(1000)
    );
    let attrs = c.attributes().await.unwrap();
    assert_eq!(attrs.types[0].name, "Client");
    assert!(attrs.statuses.iter().any(|s| s.name == "Inactive"));
    assert_eq!(c.company(&got[0]).await.unwrap().unwrap().id, got[0]);
    assert_eq!(c.company("1").await.unwrap(), None);
    assert_eq!(c.company("not-a-number").await.unwrap(), None);
}

#[tokio::test]
async fn contacts_with_emails_and_active_state() {
    let sb = sandbox(40, 600).await;
    let c = client(&sb);
    let (company, expected) = sb.connectwise.with_data(|d| {
        let (k, set) = d.by_company.iter().max_by_key(|(_, s)| s.len()).unwrap();
        (
            k.to_string(),
            set.iter()
                .map(|i| d.contacts[i].clone())
                .collect::<Vec<_>>(),
        )
    });
    let got: Vec<_> = c.contacts(&company).try_collect().await.unwrap();
    assert_eq!(got.len(), expected.len());
    for (g, t) in got.iter().zip(&expected) {
        assert_eq!(g.id, t.id.to_string());
        assert_eq!(g.company_id, company);
        assert_eq!(
            (g.first_name.as_str(), g.last_name.as_str()),
            (t.first_name.as_str(), t.last_name.as_str())
        );
        assert_eq!(g.active, !t.inactive);
        let emails: Vec<&str> = t
            .comms
            .iter()
            .filter(|m| m.kind == CommKind::Email)
            .map(|m| m.value.as_str())
            .collect();
        assert!(g.emails.len() + g.invalid_emails.len() <= emails.len());
        if let Some(def) = t
            .comms
            .iter()
            .find(|m| m.kind == CommKind::Email && m.default_flag)
            && let Some(first) = g.emails.first()
            && lp_types::Email::parse(&def.value).is_ok()
        {
            assert!(
                first.to_string().eq_ignore_ascii_case(&def.value),
                "default first"
            );
        }
    }
    // Zero, one and several e-mails all occur across the tenant.
    let all: Vec<_> = c.all_contacts().try_collect().await.unwrap();
    assert_eq!(all.len(), 600);
    assert!(all.iter().any(|x| x.emails.is_empty()));
    assert!(all.iter().any(|x| x.emails.len() == 1));
    assert!(all.iter().any(|x| x.emails.len() >= 2));
    assert!(all.iter().any(|x| !x.active));
    assert_eq!(
        sb.connectwise.stats().endpoint("company/contacts"),
        2,
        "1 + one pass of 600"
    );
    // Batched `company/id in (…)` gives the same contacts as per-company calls.
    let ids: Vec<String> = sb
        .connectwise
        .with_data(|d| d.companies.keys().map(u64::to_string).collect());
    let batched: BTreeSet<String> = c
        .contacts_of(&ids)
        .map_ok(|x| x.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(batched, all.iter().map(|x| x.id.clone()).collect());
    // A company without contacts, and a non-numeric id.
    let empty = sb.connectwise.with_data(|d| {
        d.companies
            .keys()
            .find(|k| !d.by_company.contains_key(k))
            .map(u64::to_string)
    });
    if let Some(e) = empty {
        assert_eq!(c.contacts(&e).count().await, 0);
    }
    assert_eq!(c.contacts("abc").count().await, 0);
}

#[tokio::test]
async fn control_api_changes_are_visible() {
    let sb = sandbox(30, 60).await;
    let c = client(&sb);
    let http = reqwest::Client::new();
    let ctl = format!("{}/_sandbox/connectwise", sb.base_url());
    let co: serde_json::Value = http
        .post(format!("{ctl}/companies"))
        .json(&serde_json::json!({"name": "Incremental Co", "type_ids": [1]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = co["id"].as_u64().unwrap().to_string();
    http.post(format!("{ctl}/contacts"))
        .json(&serde_json::json!({"company_id": co["id"], "first_name": "Ivy", "last_name": "New", "emails": ["ivy@inc.test"]}))
        .send()
        .await
        .unwrap();
    let found = c.company(&id).await.unwrap().unwrap();
    assert_eq!(found.name, "Incremental Co");
    let contacts: Vec<_> = c.contacts(&id).try_collect().await.unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].emails[0].to_string(), "ivy@inc.test");
    http.patch(format!("{ctl}/companies/{id}"))
        .json(&serde_json::json!({"name": "Incremental Company", "status_id": 2}))
        .send()
        .await
        .unwrap();
    let renamed = c.company(&id).await.unwrap().unwrap();
    assert_eq!(renamed.name, "Incremental Company");
    assert!(!renamed.active, "status Inactive");
    http.delete(format!("{ctl}/companies/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(c.company(&id).await.unwrap(), None);
    let all: Vec<String> = c
        .companies(&CompanyFilter::default())
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .unwrap();
    assert!(!all.contains(&id));
    assert_eq!(all.len(), 30);
}

#[tokio::test]
async fn a_moved_codebase_is_rediscovered_once() {
    let sb = sandbox(20, 20).await;
    let c = client(&sb);
    c.check().await.unwrap();
    assert_eq!(c.calls(), 2);
    sb.connectwise.set_codebase("v2025_2/");
    c.check().await.unwrap();
    // 404 at the old path, discovery, retry at the new one.
    assert_eq!(c.calls(), 5);
    assert_eq!(sb.connectwise.stats().endpoint("login/companyinfo"), 2);
    c.check().await.unwrap();
    assert_eq!(c.calls(), 6);
}

#[tokio::test]
async fn retries_clear_transient_429_5xx_and_slow_answers() {
    let sb = sandbox(20, 20).await;
    let c = client(&sb);
    c.check().await.unwrap();
    let before = c.calls();
    sb.connectwise
        .add_fault(CwFaultRule::new(CwFaultKind::RateLimit { retry_after: 0 }).count(2))
        .unwrap();
    sb.connectwise
        .add_fault(
            CwFaultRule::new(CwFaultKind::Status {
                status: 503,
                message: None,
            })
            .count(1),
        )
        .unwrap();
    let n = c
        .companies(&CompanyFilter::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len();
    assert_eq!(n, 20);
    // statuses + companies, plus 2 rate-limited and 1 failed attempts.
    assert_eq!(c.calls() - before, 2 + 3);
    // A slow answer past the client's timeout is retried.
    let mut cfg = config(&sb);
    cfg.timeout = Duration::from_millis(150);
    let slow = ConnectWiseClient::new(cfg).unwrap();
    sb.connectwise
        .add_fault(
            CwFaultRule::new(CwFaultKind::Delay { ms: 400 })
                .path("system/info")
                .count(1),
        )
        .unwrap();
    slow.check().await.unwrap();
    assert_eq!(slow.calls(), 3, "discovery, timed-out attempt, retry");
}

// ---- one test per error category ------------------------------------------------------

#[tokio::test]
async fn credentials_missing_makes_no_call() {
    let sb = sandbox(5, 5).await;
    for field in [
        "site",
        "company_id",
        "public_key",
        "private_key",
        "client_id",
    ] {
        let mut cfg = config(&sb);
        match field {
            "site" => cfg.site.clear(),
            "company_id" => cfg.company_id.clear(),
            "public_key" => cfg.public_key = "  ".into(),
            "private_key" => cfg.private_key = Secret::new(""),
            _ => cfg.client_id.clear(),
        }
        let e = ConnectWiseClient::new(cfg).unwrap_err();
        assert_eq!(e.kind, ErrorKind::CredentialsMissing);
        assert!(e.detail.contains(field));
        assert_eq!(e.kind.user_message(), "Credentials are required");
    }
    assert_eq!(sb.connectwise.stats().total, 0);
}

#[tokio::test]
async fn authentication_errors() {
    let sb = sandbox(5, 5).await;
    let secret = sb.connectwise.credentials().private_key;
    // Wrong private key: 401.
    let mut cfg = config(&sb);
    cfg.private_key = Secret::new("not-the-key");
    let e = ConnectWiseClient::new(cfg)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Authentication, Some(401)));
    // Unknown company id: companyinfo 404 (and, configured, an empty 200).
    let mut cfg = config(&sb);
    cfg.company_id = "nobody".into();
    let e = ConnectWiseClient::new(cfg.clone())
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Authentication);
    sb.connectwise
        .set_unknown_company(sandbox::connectwise::UnknownCompany::EmptyBody);
    let e = ConnectWiseClient::new(cfg)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Authentication);
    // Unknown clientId: 400 naming clientId.
    let mut cfg = config(&sb);
    cfg.client_id = "11111111-2222-3333-4444-555555555555".into();
    let e = ConnectWiseClient::new(cfg)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Authentication, Some(400)));
    // Revoked keys, mid-session.
    let c = client(&sb);
    c.check().await.unwrap();
    sb.connectwise
        .set_credentials(None, Some("rotated-private"), None);
    let e = c.check().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Authentication);
    // No secret leaks into errors or Debug.
    let shown = format!("{e} {e:?} {c:?}");
    assert!(!shown.contains(&secret), "{shown}");
    assert!(!shown.contains("rotated-private"));
}

#[tokio::test]
async fn forbidden_errors() {
    let sb = sandbox(5, 20).await;
    let c = client(&sb);
    let mut p = sb.connectwise.permissions();
    p.setup = false;
    sb.connectwise.set_permissions(p);
    let e = c.attributes().await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Forbidden, Some(403)));
    p.setup = true;
    p.contacts = false;
    sb.connectwise.set_permissions(p);
    let company = sb
        .connectwise
        .with_data(|d| d.by_company.keys().next().unwrap().to_string());
    let e = c
        .contacts(&company)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    // Rights that hide fields instead of failing (blank company on contacts).
    p.contacts = true;
    p.contact_company_visible = false;
    sb.connectwise.set_permissions(p);
    let e = c
        .contacts(&company)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
}

#[tokio::test]
async fn server_errors_after_retries() {
    let sb = sandbox(5, 5).await;
    let c = client(&sb);
    c.check().await.unwrap();
    sb.connectwise
        .add_fault(CwFaultRule::new(CwFaultKind::Status {
            status: 500,
            message: Some("String was not recognized as a valid Boolean.".into()),
        }))
        .unwrap();
    let before = c.calls();
    let e = c.check().await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::ServerError, Some(500)));
    assert!(e.detail.contains("valid Boolean"));
    assert_eq!(c.calls() - before, 4, "max_attempts");
    sb.connectwise.clear_faults();
    // HTML error pages behind a 502.
    sb.connectwise
        .add_fault(CwFaultRule::new(CwFaultKind::Html { status: 502 }))
        .unwrap();
    let e = c.check().await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::ServerError, Some(502)));
    sb.connectwise.clear_faults();
    // 429 that does not clear: its Retry-After is beyond what the client honours (1 s in tests).
    sb.connectwise
        .add_fault(CwFaultRule::new(CwFaultKind::RateLimit { retry_after: 30 }))
        .unwrap();
    let before = c.calls();
    let e = c.check().await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::ServerError, Some(429)));
    assert_eq!(c.calls() - before, 1, "no pointless waiting");
    sb.connectwise.clear_faults();
    // 429 with a short Retry-After, every time: retried max_attempts times.
    sb.connectwise
        .add_fault(CwFaultRule::new(CwFaultKind::RateLimit { retry_after: 0 }))
        .unwrap();
    let before = c.calls();
    let e = c.check().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServerError);
    assert_eq!(c.calls() - before, 4);
}

#[tokio::test]
async fn invalid_responses() {
    let sb = sandbox(5, 5).await;
    let c = client(&sb);
    c.check().await.unwrap();
    // Truncated JSON.
    sb.connectwise
        .add_fault(
            CwFaultRule::new(CwFaultKind::Truncate)
                .path("company/companies")
                .count(1),
        )
        .unwrap();
    let e = c
        .companies(&CompanyFilter::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidResponse);
    // Truncated discovery.
    let fresh = client(&sb);
    sb.connectwise
        .add_fault(
            CwFaultRule::new(CwFaultKind::Truncate)
                .path("login/companyinfo")
                .count(1),
        )
        .unwrap();
    assert_eq!(
        fresh.check().await.unwrap_err().kind,
        ErrorKind::InvalidResponse
    );
    // An HTML page with status 200.
    sb.connectwise
        .add_fault(CwFaultRule::new(CwFaultKind::Html { status: 200 }).count(1))
        .unwrap();
    let e = c.company("250").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidResponse);
    assert_eq!(
        e.kind.user_message(),
        "We received an invalid response from your PSA provider"
    );
}

#[tokio::test]
async fn unknown_errors() {
    // Nothing listens: a network failure.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = ConnectWiseConfig::new(
        format!("http://127.0.0.1:{port}/cw"),
        "acme",
        "pub",
        Secret::new("priv"),
        "guid",
    )
    .with_retry(RetryPolicy::for_tests());
    let c = ConnectWiseClient::new(cfg).unwrap();
    let e = c.check().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unknown);
    assert_eq!(c.calls(), 4);
    // A filter id ConnectWise cannot have.
    let sb = sandbox(5, 5).await;
    let c = client(&sb);
    let f = CompanyFilter {
        types: vec!["Client".into()],
        statuses: vec![],
    };
    let e = c.companies(&f).try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unknown);
    assert_eq!(c.calls(), 0);
}
