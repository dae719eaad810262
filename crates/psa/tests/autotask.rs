//! The Autotask client against the in-process emulator: listings and paging (POST
//! continuation), push-down filters, the thread limit, retries, one test per error category,
//! and control-API changes seen by the client.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use proptest::prelude::*;
use psa::autotask::{AutotaskClient, AutotaskConfig, RetryPolicy};
use psa::{CompanyFilter, ErrorKind, PsaDirectory};
use sandbox::autotask::{AutotaskConfig as EmuConfig, FaultKind, FaultRule};
use sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

const COMPANIES: usize = 600;
const CONTACTS: usize = 2400;

async fn emulator(cfg: EmuConfig) -> SandboxHandle {
    sandbox::spawn(SandboxConfig {
        autotask: cfg,
        ..SandboxConfig::for_tests()
    })
    .await
    .expect("sandbox")
}

async fn small() -> SandboxHandle {
    emulator(EmuConfig::seeded(21).with_counts(COMPANIES, CONTACTS)).await
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(5),
        max_wait: Duration::from_millis(50),
    }
}

fn config(sb: &SandboxHandle) -> AutotaskConfig {
    let c = sb.autotask.credentials();
    AutotaskConfig::new(c.username, c.secret, c.integration_code)
        .with_discovery_url(format!("{}/atservicesrest", sb.autotask_base()))
        .with_retry(fast_retry())
}

fn client(sb: &SandboxHandle) -> AutotaskClient {
    AutotaskClient::new(config(sb)).expect("client")
}

async fn err_kind<T: std::fmt::Debug>(
    f: impl std::future::Future<Output = psa::Result<T>>,
) -> psa::Error {
    f.await.expect_err("an error")
}

async fn ctl(sb: &SandboxHandle, method: reqwest::Method, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .request(method, format!("{}/autotask{path}", sb.control_url()))
        .json(&body)
        .send()
        .await
        .expect("control");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.expect("json")
}

#[tokio::test]
async fn credentials_missing_before_any_call() {
    for (cfg, field) in [
        (AutotaskConfig::new("", "s", "c"), "username"),
        (AutotaskConfig::new("u", "", "c"), "secret"),
        (AutotaskConfig::new("u", "s", ""), "integration_code"),
    ] {
        let e = AutotaskClient::new(cfg).expect_err("refused");
        assert_eq!(e.kind, ErrorKind::CredentialsMissing);
        assert!(e.detail.contains(field), "{e}");
        assert_eq!(e.kind.user_message(), "Credentials are required");
    }
}

#[tokio::test]
async fn lists_companies_with_pushed_down_filters() {
    let sb = small().await;
    let c = client(&sb);
    c.check().await.expect("check");
    let attrs = c.attributes().await.expect("attributes");
    let names: Vec<&str> = attrs.types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
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
    assert_eq!(attrs.types[0].id, "1");
    let statuses: Vec<&str> = attrs.statuses.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(statuses, ["active", "inactive"]);

    sb.autotask.reset_stats();
    let before = c.calls();
    let all: Vec<_> = c
        .companies(&CompanyFilter::default())
        .try_collect()
        .await
        .expect("companies");
    // The local organisation (id 0) is skipped; every other company once, in id order.
    assert_eq!(all.len(), COMPANIES);
    assert!(all.iter().all(|c| c.id != "0"));
    // Page-size minimum: ceil(600 / 500) = 2, continued by POST (a GET would get 405).
    assert_eq!(c.calls() - before, 2);
    let st = sb.autotask.stats();
    assert_eq!(
        (st.get("Companies/query"), st.get("Companies/query/next")),
        (1, 1)
    );
    let customer = all
        .iter()
        .find(|c| c.company_type.as_ref().is_some_and(|t| t.id == "1"));
    assert_eq!(
        customer
            .and_then(|c| c.company_type.as_ref())
            .map(|t| t.name.as_str()),
        Some("Customer")
    );

    let filter = CompanyFilter {
        types: vec!["1".into(), "8".into()],
        statuses: vec!["active".into()],
    };
    let got: Vec<_> = c.companies(&filter).try_collect().await.expect("filtered");
    let want: Vec<String> = sb.autotask.read(|db| {
        db.companies
            .values()
            .filter(|c| c.id > 0 && matches!(c.company_type, 1 | 8) && c.is_active)
            .map(|c| c.id.to_string())
            .collect()
    });
    assert_eq!(got.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), want);
    assert!(
        got.iter()
            .all(|c| c.active && c.status.as_ref().is_some_and(|s| s.id == "active"))
    );
    assert_eq!(
        c.count_companies(&filter).await.expect("count"),
        want.len() as u64
    );
    // The zone is discovered once.
    assert_eq!(sb.autotask.stats().get("ZoneInformation"), 0);
}

#[tokio::test]
async fn company_by_id_and_contacts_with_emails() {
    let sb = small().await;
    let c = client(&sb);
    let (company, expected) = sb.autotask.read(|db| {
        let (id, set) = db
            .by_company
            .iter()
            .filter(|(_, s)| s.len() >= 3)
            .min_by_key(|(k, _)| **k)
            .expect("a company with contacts");
        (
            *id,
            set.iter()
                .map(|i| db.contacts[i].clone())
                .collect::<Vec<_>>(),
        )
    });
    let got = c
        .company(&company.to_string())
        .await
        .expect("company")
        .expect("exists");
    assert_eq!(got.id, company.to_string());
    assert_eq!(c.company("99999999").await.expect("missing"), None);
    assert_eq!(c.company("not-a-number").await.expect("missing"), None);

    let contacts: Vec<_> = c
        .contacts(&company.to_string())
        .try_collect()
        .await
        .expect("contacts");
    assert_eq!(contacts.len(), expected.len());
    for (k, e) in contacts.iter().zip(&expected) {
        assert_eq!(k.id, e.id.to_string());
        assert_eq!(k.company_id, company.to_string());
        assert_eq!(k.active, e.is_active);
        assert_eq!(k.first_name, e.first);
        let n = e.emails.iter().flatten().count();
        assert!(k.emails.len() + k.invalid_emails.len() <= n);
    }
    // Across the tenant: contacts with none, one and several e-mails, inactive ones, invalid values.
    let all: Vec<_> = c.all_contacts().try_collect().await.expect("all");
    assert_eq!(all.len(), CONTACTS);
    assert!(all.iter().any(|k| k.emails.is_empty()));
    assert!(all.iter().any(|k| k.emails.len() >= 2));
    assert!(all.iter().any(|k| !k.active));
    assert!(all.iter().any(|k| !k.invalid_emails.is_empty()));
    let mut seen = BTreeSet::new();
    assert!(
        all.iter()
            .flat_map(|k| k.emails.iter())
            .any(|e| !seen.insert(e.folded().to_string())),
        "some address is shared by two contacts"
    );
}

#[tokio::test]
async fn batched_contacts_reach_the_page_minimum() {
    let sb = small().await;
    let c = client(&sb);
    let ids: Vec<String> = c
        .companies(&CompanyFilter::default())
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .expect("ids");
    sb.autotask.reset_stats();
    let before = c.calls();
    let n = c
        .contacts_of_companies(&ids)
        .try_fold(0usize, |n, _| async move { Ok(n + 1) })
        .await
        .expect("contacts");
    assert_eq!(n, CONTACTS);
    let calls = c.calls() - before;
    // Two chunks of companies (500 + 100): at most ceil(n/500) + 1 pages.
    assert!(calls <= (CONTACTS as u64).div_ceil(500) + 1, "{calls}");
    let before = c.calls();
    let m = c.all_contacts().count().await;
    assert_eq!(m, CONTACTS);
    assert_eq!(c.calls() - before, (CONTACTS as u64).div_ceil(500));
}

#[tokio::test]
async fn thread_limit_is_respected_under_concurrency() {
    let sb = small().await;
    sb.autotask.add_fault(FaultRule::new(
        "Contacts",
        FaultKind::Latency {
            min_ms: 60,
            max_ms: None,
        },
    ));
    let c = client(&sb);
    let ids: Vec<String> = sb.autotask.read(|db| {
        db.by_company
            .keys()
            .take(10)
            .map(|i| i.to_string())
            .collect()
    });
    let results =
        futures::future::join_all(ids.iter().map(|id| c.contacts(id).try_collect::<Vec<_>>()))
            .await;
    assert!(results.iter().all(Result::is_ok));
    let st = sb.autotask.stats();
    assert_eq!(st.thread_limited, 0);
    // Never more than the limit; usually exactly 3 (timing on a loaded machine may give less).
    let max = st.max_in_flight.get("Contacts").copied().unwrap_or(0);
    assert!((1..=3).contains(&max), "{max}");
}

#[tokio::test]
async fn retries_honour_retry_after_and_recover() {
    let sb = small().await;
    let c = client(&sb);
    c.check().await.expect("warm");
    sb.autotask.add_fault(
        FaultRule::new(
            "Companies",
            FaultKind::Status {
                status: 429,
                message: None,
                retry_after: Some(0),
            },
        )
        .count(2),
    );
    let before = c.calls();
    c.check().await.expect("recovers after two 429s");
    assert_eq!(c.calls() - before, 3);
    sb.autotask
        .add_fault(FaultRule::new("Companies", FaultKind::ThreadLimit).count(1));
    sb.autotask
        .add_fault(FaultRule::new("Companies", FaultKind::Html { status: 503 }).count(1));
    c.check()
        .await
        .expect("recovers from a thread error and a 503");
    // Page 2 fails once with a 500: the listing still completes, without duplicates.
    sb.autotask.add_fault(
        FaultRule::new(
            "Companies",
            FaultKind::Status {
                status: 500,
                message: None,
                retry_after: None,
            },
        )
        .op("next")
        .count(1),
    );
    let n = c.companies(&CompanyFilter::default()).count().await;
    assert_eq!(n, COMPANIES);
    // A Retry-After beyond the maximum wait ends the retries at once.
    sb.autotask.add_fault(
        FaultRule::new(
            "Companies",
            FaultKind::Status {
                status: 429,
                message: None,
                retry_after: Some(3600),
            },
        )
        .count(1),
    );
    let t = Instant::now();
    let e = err_kind(c.check()).await;
    assert_eq!(e.kind, ErrorKind::ServerError);
    assert!(t.elapsed() < Duration::from_secs(2));
}

// ---- one test per error category ----

#[tokio::test]
async fn category_authentication() {
    let sb = small().await;
    let good = config(&sb);
    let mut bad_secret = good.clone();
    bad_secret.secret = "wrong-secret-value".into();
    let c = AutotaskClient::new(bad_secret).expect("client");
    let e = err_kind(c.check()).await;
    assert_eq!((e.kind, e.status), (ErrorKind::Authentication, Some(401)));
    assert!(!e.detail.contains("wrong-secret-value"));
    assert!(!format!("{e:?}").contains("wrong-secret-value"));

    let mut bad_code = good.clone();
    bad_code.integration_code = "NOTTHECODE".into();
    let e = err_kind(AutotaskClient::new(bad_code).expect("c").check()).await;
    assert_eq!((e.kind, e.status), (ErrorKind::Authentication, Some(500)));
    assert!(e.detail.contains("IntegrationCode is invalid."), "{e}");

    let mut bad_user = good.clone();
    bad_user.username = "nobody@else.example".into();
    let e = err_kind(AutotaskClient::new(bad_user).expect("c").check()).await;
    assert_eq!(e.kind, ErrorKind::Authentication);
    assert!(
        e.detail
            .contains("Zone information could not be determined"),
        "{e}"
    );

    ctl(&sb, reqwest::Method::POST, "/user", json!({"locked": true})).await;
    let e = err_kind(client(&sb).check()).await;
    assert_eq!(e.kind, ErrorKind::Authentication);
    assert!(e.detail.contains("locked"));
}

#[tokio::test]
async fn category_forbidden() {
    let sb = small().await;
    let c = client(&sb);
    for status in [403, 500] {
        ctl(
            &sb,
            reqwest::Method::POST,
            "/user",
            json!({"can_read_contacts": false, "forbidden_status": status}),
        )
        .await;
        let e = c
            .contacts("174")
            .try_collect::<Vec<_>>()
            .await
            .expect_err("forbidden");
        assert_eq!((e.kind, e.status), (ErrorKind::Forbidden, Some(status)));
    }
}

#[tokio::test]
async fn category_server_error() {
    let sb = small().await;
    let c = client(&sb);
    c.check().await.expect("warm");
    let id = sb.autotask.add_fault(FaultRule::new(
        "Companies",
        FaultKind::Status {
            status: 502,
            message: None,
            retry_after: None,
        },
    ));
    let before = c.calls();
    let e = err_kind(c.check()).await;
    assert_eq!((e.kind, e.status), (ErrorKind::ServerError, Some(502)));
    assert_eq!(c.calls() - before, 3, "bounded retries");
    sb.autotask.faults().remove(id);
    // The hourly threshold that does not clear is a server error too.
    sb.autotask
        .add_fault(FaultRule::new("Companies", FaultKind::Threshold));
    let e = err_kind(c.check()).await;
    assert_eq!((e.kind, e.status), (ErrorKind::ServerError, Some(429)));
    sb.autotask.clear_faults();
    sb.autotask
        .add_fault(FaultRule::new("Companies", FaultKind::ThreadLimit));
    let e = err_kind(c.check()).await;
    assert_eq!(e.kind, ErrorKind::ServerError);
}

#[tokio::test]
async fn category_invalid_response() {
    let sb = small().await;
    let c = client(&sb);
    c.attributes().await.expect("warm");
    for kind in [
        FaultKind::Truncate,
        FaultKind::ErrorsIn200 { message: None },
    ] {
        sb.autotask.add_fault(
            FaultRule::new("Companies", kind.clone())
                .op("query")
                .count(1),
        );
        let e = c
            .companies(&CompanyFilter::default())
            .try_collect::<Vec<_>>()
            .await
            .expect_err("invalid");
        assert_eq!(e.kind, ErrorKind::InvalidResponse, "{kind:?}: {e}");
    }
    // Truncating page 2 fails the listing after the first 500 rows.
    sb.autotask.add_fault(
        FaultRule::new("Companies", FaultKind::Truncate)
            .op("next")
            .count(1),
    );
    let any = CompanyFilter::default();
    let mut s = c.companies(&any);
    let mut ok = 0;
    let mut err = None;
    while let Some(r) = s.next().await {
        match r {
            Ok(_) => ok += 1,
            Err(e) => err = Some(e),
        }
    }
    assert_eq!(ok, 500);
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::InvalidResponse));
}

#[tokio::test]
async fn category_unknown() {
    // A port that was free a moment ago: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let cfg = AutotaskConfig::new("u@x.example", "s", "c")
        .with_discovery_url(format!("http://127.0.0.1:{port}/atservicesrest"))
        .with_retry(fast_retry());
    let c = AutotaskClient::new(cfg).expect("client");
    let e = err_kind(c.check()).await;
    assert_eq!(e.kind, ErrorKind::Unknown);
    assert_eq!(e.status, None);
    assert_eq!(
        c.calls(),
        3,
        "network failures are retried a bounded number of times"
    );
    // Any other unexpected status is unknown too (a 409 from the emulator).
    let sb = small().await;
    let c = client(&sb);
    sb.autotask.add_fault(FaultRule::new(
        "Companies",
        FaultKind::Status {
            status: 409,
            message: Some("Conflict".into()),
            retry_after: None,
        },
    ));
    let e = err_kind(c.check()).await;
    assert_eq!((e.kind, e.status), (ErrorKind::Unknown, Some(409)));
    // A company id that is not an Autotask id is refused locally, as unknown.
    let e = c
        .contacts_of_companies(&["x".to_string()])
        .try_collect::<Vec<_>>()
        .await
        .expect_err("not an id");
    assert_eq!(e.kind, ErrorKind::Unknown);
}

#[tokio::test]
async fn control_api_changes_are_visible() {
    let sb = small().await;
    let c = client(&sb);
    let added = ctl(
        &sb,
        reqwest::Method::POST,
        "/companies",
        json!({"companyName": "Delta New Co", "companyType": 8}),
    )
    .await;
    let id = added["id"].as_i64().expect("id").to_string();
    ctl(
        &sb,
        reqwest::Method::POST,
        "/contacts",
        json!({"companyID": added["id"], "firstName": "Dee", "lastName": "Ng",
               "emailAddress": "dee@delta.example", "emailAddress2": "DEE@delta.example",
               "emailAddress3": "none"}),
    )
    .await;
    let partners: Vec<_> = c
        .companies(&CompanyFilter {
            types: vec!["8".into()],
            statuses: vec![],
        })
        .try_collect()
        .await
        .expect("partners");
    let found = partners
        .iter()
        .find(|p| p.id == id)
        .expect("added company listed");
    assert_eq!(found.name, "Delta New Co");
    assert_eq!(
        found.company_type.as_ref().map(|t| t.name.as_str()),
        Some("Partner")
    );
    let ks: Vec<_> = c.contacts(&id).try_collect().await.expect("contacts");
    assert_eq!(ks.len(), 1);
    assert_eq!(ks[0].emails.len(), 1, "case-insensitive duplicate dropped");
    assert_eq!(ks[0].invalid_emails, vec!["none".to_string()]);
    ctl(
        &sb,
        reqwest::Method::PATCH,
        &format!("/companies/{id}"),
        json!({"companyName": "Delta Renamed Co"}),
    )
    .await;
    let got = c.company(&id).await.expect("get").expect("exists");
    assert_eq!(got.name, "Delta Renamed Co");
    ctl(
        &sb,
        reqwest::Method::DELETE,
        &format!("/companies/{id}"),
        json!({}),
    )
    .await;
    assert_eq!(c.company(&id).await.expect("get"), None);
    assert_eq!(c.contacts(&id).count().await, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, rng_seed: proptest::test_runner::RngSeed::Fixed(3), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn company_filters_match_the_data(
        types in prop::sample::subsequence(vec![1i64, 2, 3, 4, 6, 7, 8], 0..4),
        statuses in prop::sample::subsequence(vec!["active", "inactive"], 0..=2),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            let sb = emulator(EmuConfig::seeded(5).with_counts(300, 10)).await;
            let c = client(&sb);
            let filter = CompanyFilter {
                types: types.iter().map(|t| t.to_string()).collect(),
                statuses: statuses.iter().map(|s| s.to_string()).collect(),
            };
            let got: Vec<String> = c.companies(&filter).map_ok(|c| c.id).try_collect().await.expect("list");
            let want: Vec<String> = sb.autotask.read(|db| db.companies.values()
                .filter(|c| c.id > 0)
                .filter(|c| types.is_empty() || types.contains(&c.company_type))
                .filter(|c| statuses.len() != 1 || (statuses[0] == "active") == c.is_active)
                .map(|c| c.id.to_string())
                .collect());
            assert_eq!(got, want);
        });
    }
}

#[tokio::test]
async fn category_invalid_response_for_the_405_trap() {
    // What a client that GETs a POSTed query's nextPageUrl receives, classified.
    let sb = small().await;
    let cr = sb.autotask.credentials();
    let http = reqwest::Client::new();
    let authed = |rb: reqwest::RequestBuilder| {
        rb.header("ApiIntegrationCode", &cr.integration_code)
            .header("UserName", &cr.username)
            .header("Secret", &cr.secret)
    };
    let zone = format!("{}/ATServicesRest/V1.0", sb.autotask_base());
    let first: Value = authed(http.post(format!("{zone}/Companies/query")))
        .json(&json!({"filter": [], "MaxRecords": 500}))
        .send()
        .await
        .expect("first page")
        .json()
        .await
        .expect("json");
    let next = first["pageDetails"]["nextPageUrl"].as_str().expect("next");
    let r = authed(http.get(next)).send().await.expect("get next");
    let status = r.status().as_u16();
    let body = r.bytes().await.expect("body");
    assert_eq!(status, 405);
    match psa::autotask::classify("Companies/query/next", status, None, body, false) {
        psa::autotask::Verdict::Fail(e) => assert_eq!(e.kind, ErrorKind::InvalidResponse),
        other => panic!("{other:?}"),
    }
}
