//! `lastpass::rest::RestClient` against the sandbox's LastPass REST API emulator on
//! 127.0.0.1:0: create + poll, paging, name lookups, users until the licences run out, typed
//! errors, retries on injected 429/5xx/drops, the ambiguous-write rules, the poll deadline,
//! and the API key never showing in `Debug`, errors or logs. Fixed seeds; the sandbox's clock
//! is frozen and requests complete after a number of polls, so no test sleeps to wait.

use std::time::Duration;

use futures::TryStreamExt;
use lastpass::rest::{
    AccountStatus, CompanyId, CompanyQuery, CompanyUpdate, Credentials, Error, NewCompanyUser,
    NewManagedCompany, PollPolicy, RestClient, RestConfig, RetryPolicy, UserQuery, parse_base_url,
};
use lastpass::{Email, Secret};
use sandbox::autotask::AutotaskConfig;
use sandbox::connectwise::ConnectWiseConfig;
use sandbox::faults::FaultRule;
use sandbox::msp::{MspConfig, Origin, Problem};
use sandbox::{SandboxConfig, SandboxHandle};

fn config() -> SandboxConfig {
    let mut c = SandboxConfig::for_tests();
    c.connectwise = ConnectWiseConfig::with_seed(11).sized(80, 320);
    c.autotask = AutotaskConfig::seeded(21).with_counts(80, 320);
    let mut m = MspConfig::with_seed(3).sized(30, 3);
    m.psa_duplicates = 8;
    m.complete_after_polls = 2;
    m.complete_after_secs = None;
    m.retry_after_secs = 0;
    c.msp = m;
    c
}

async fn sandbox() -> SandboxHandle {
    sandbox::spawn(config()).await.expect("sandbox starts")
}

/// A client configured the way lpbridge would: from the sandbox's first stdout line.
fn client_with(sb: &SandboxHandle, key: &str, poll: PollPolicy) -> RestClient {
    let services = sb.services_json();
    let base = services["lastpass_rest"]["base_url"]
        .as_str()
        .expect("base_url");
    let creds = Credentials::new(Secret::new(key)).expect("key");
    RestClient::new(
        RestConfig::new(creds)
            .with_base_url(parse_base_url(base).expect("base URL"))
            .with_retry(RetryPolicy::for_tests())
            .with_poll(poll),
    )
    .expect("client")
}

fn client(sb: &SandboxHandle) -> RestClient {
    let services = sb.services_json();
    let key = services["lastpass_rest"]["api_key"]
        .as_str()
        .expect("api_key");
    client_with(sb, key, PollPolicy::for_tests())
}

fn fault(sb: &SandboxHandle, spec: &str) {
    sb.msp
        .faults()
        .add(spec.parse::<FaultRule>().expect("fault spec"));
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

/// Makes the pool exactly what is allocated or used: no licence left to distribute.
fn spend_pool(sb: &SandboxHandle) -> u32 {
    let l = sb.msp.licenses();
    sb.msp.set_licenses(l.total - l.unallocated);
    l.total - l.unallocated
}

#[tokio::test]
async fn create_company_posts_then_polls_until_completed() {
    let sb = sandbox().await;
    let c = client(&sb);
    let new = NewManagedCompany::named("Created Co").with_license_limit(4);
    let company = c.create_company(&new).await.expect("created");
    assert_eq!(company.name, "Created Co");
    assert_eq!(company.license_limit, Some(4));
    assert_eq!(company.licenses_used, Some(0));
    assert_eq!(company.parent_id, Some(CompanyId::from(8_771_312)));
    // Two polls answered pending, the third completed.
    let s = c.stats();
    assert_eq!(s.by_cmd["companies.create"], 1);
    assert_eq!(s.by_cmd["requests.get"], 3);
    assert_eq!(s.by_cmd["companies.get"], 1);
    assert_eq!(s.requests, 5);
    assert_eq!(s.retries, 0);
    assert_eq!(s.by_outcome["requests.get"]["ok"], 3);
    // The sandbox counted the same calls.
    let up = sb.msp.stats();
    assert_eq!(up.requests_for("requests.get"), 3);
    assert_eq!(up.total.requests, 5);
    // The two-step form.
    let accepted = c
        .start_create_company(&NewManagedCompany::named("Two Step"))
        .await
        .expect("202");
    let first = c.request(&accepted).await.expect("poll");
    assert!(first.status.is_pending());
    let done = c.wait("companies.create", &accepted).await.expect("done");
    let id = done.resource_id.expect("resource id");
    assert_eq!(c.get_company(&id).await.expect("get").name, "Two Step");
    // Refused before any call.
    let e = c
        .create_company(&NewManagedCompany::named("  "))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
}

#[tokio::test]
async fn lists_every_company_across_pages() {
    let sb = sandbox().await;
    let c = client(&sb);
    let total = sb.msp.with_tenant(|t| t.companies.len());
    let q = CompanyQuery {
        page_size: Some(7),
        ..CompanyQuery::default()
    };
    let all: Vec<_> = c.list_companies(&q).try_collect().await.expect("list");
    assert_eq!(all.len(), total);
    let ids: std::collections::HashSet<_> = all.iter().map(|x| x.id.clone()).collect();
    assert_eq!(ids.len(), total, "no repeats");
    assert_eq!(c.stats().by_cmd["companies.list"], total.div_ceil(7) as u64);
    // The default page size (500) takes one call.
    let all2: Vec<_> = c
        .list_companies(&CompanyQuery::default())
        .try_collect()
        .await
        .expect("list");
    assert_eq!(all2, all);
    assert_eq!(
        c.stats().by_cmd["companies.list"],
        total.div_ceil(7) as u64 + 1
    );
    // Page by page by hand.
    let p1 = c.companies_page(&q, None).await.expect("page 1");
    assert_eq!(p1.items.len(), 7);
    let p2 = c
        .companies_page(&q, p1.next_page_token.as_deref())
        .await
        .expect("page 2");
    assert_eq!(p2.items[0], all[7]);
    // Filters and sort go upstream.
    let suspended: Vec<_> = c
        .list_companies(&CompanyQuery {
            statuses: vec![lastpass::rest::CompanyStatus::Suspended],
            sort: Some(lastpass::rest::Sort::name_asc()),
            ..CompanyQuery::default()
        })
        .try_collect()
        .await
        .expect("list");
    assert!(
        suspended
            .iter()
            .all(|x| x.status == Some(lastpass::rest::CompanyStatus::Suspended))
    );
    let e = c
        .list_companies(&CompanyQuery {
            page_size: Some(501),
            ..CompanyQuery::default()
        })
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
}

#[tokio::test]
async fn finds_potential_duplicates_by_name() {
    let sb = sandbox().await;
    let c = client(&sb);
    let psa_named: Vec<String> = sb.msp.with_tenant(|t| {
        t.companies
            .values()
            .filter(|x| matches!(x.origin, Origin::PsaName { .. }))
            .map(|x| x.name.clone())
            .collect()
    });
    assert_eq!(psa_named.len(), 8);
    let cw_names: std::collections::HashSet<String> = sb
        .connectwise
        .with_data(|d| d.companies.values().map(|x| x.name.clone()).collect());
    let shared = psa_named
        .iter()
        .find(|n| cw_names.contains(*n))
        .expect("a CW name");
    let found = c.find_companies_by_name(shared).await.expect("lookup");
    assert_eq!(found.len(), 1);
    assert_eq!(&found[0].name, shared);
    let found = c
        .find_companies_by_name(&format!("  {}  ", shared.to_uppercase()))
        .await
        .expect("lookup");
    assert_eq!(found.len(), 1);
    assert!(
        c.find_companies_by_name("No Such Company Ltd")
            .await
            .expect("lookup")
            .is_empty()
    );
    // A `%` is a wildcard upstream, compared exactly here.
    let prefix: String = shared.chars().take(4).collect();
    assert!(
        c.find_companies_by_name(&format!("{prefix}%"))
            .await
            .expect("lookup")
            .is_empty()
    );
}

#[tokio::test]
async fn adding_users_until_the_licences_run_out() {
    let sb = sandbox().await;
    let c = client(&sb);
    let company = c
        .create_company(&NewManagedCompany::named("Licence Co").with_license_limit(3))
        .await
        .expect("created");
    spend_pool(&sb);
    let mut added = Vec::new();
    let err = loop {
        let n = added.len();
        let user = NewCompanyUser::invite(email(&format!("user{n}@licence.example")))
            .with_name(format!("User {n}"));
        match c.add_user(&company.id, &user).await {
            Ok(u) => added.push(u),
            Err(e) => break e,
        }
        assert!(added.len() <= 3, "the pool should have run out");
    };
    assert_eq!(added.len(), 3);
    assert!(
        added
            .iter()
            .all(|u| u.account_status == AccountStatus::PendingInvitation)
    );
    match &err {
        Error::NotEnoughLicenses { problem, .. } => {
            let p = problem.as_ref().expect("problem");
            assert_eq!(p.status, Some(409));
            assert_eq!(p.title.as_deref(), Some("Not enough licenses"));
        }
        other => panic!("expected NotEnoughLicenses, got {other:?}"),
    }
    assert!(err.to_string().contains("not enough licenses"), "{err}");
    // Not retried: a refusal is final.
    assert_eq!(sb.msp.stats().requests_for("users.add"), 4);
    // Staged users hold no licence.
    let staged = c
        .add_user(
            &company.id,
            &NewCompanyUser::stage(email("staged@licence.example")),
        )
        .await
        .expect("staged");
    assert_eq!(staged.account_status, AccountStatus::Staged);
    // The same e-mail again: a conflict.
    let e = c
        .add_user(
            &company.id,
            &NewCompanyUser::stage(email("USER0@licence.example")),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e}");
    // Reading back.
    let users: Vec<_> = c
        .list_users(&company.id, &UserQuery::default())
        .try_collect()
        .await
        .expect("users");
    assert_eq!(users.len(), 4);
    let u = c.get_user(&company.id, &added[1].id).await.expect("user");
    assert_eq!(u.email, "user1@licence.example");
    let found = c
        .find_user_by_email(&company.id, &email("User2@Licence.example"))
        .await
        .expect("lookup");
    assert_eq!(found.map(|u| u.id), Some(added[2].id.clone()));
    // A company asking for more licences than are left fails in its request.
    let e = c
        .create_company(&NewManagedCompany::named("Greedy").with_license_limit(1))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotEnoughLicenses { .. }), "{e}");
    let e = c
        .update_company(
            &company.id,
            &CompanyUpdate {
                license_limit: Some(10),
                ..CompanyUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotEnoughLicenses { .. }), "{e}");
}

#[tokio::test]
async fn update_and_detach() {
    let sb = sandbox().await;
    let c = client(&sb);
    let company = c
        .create_company(&NewManagedCompany::named("Upd Co"))
        .await
        .expect("created");
    let updated = c
        .update_company(
            &company.id,
            &CompanyUpdate {
                license_limit: Some(2),
                status: Some(lastpass::rest::CompanyStatus::Suspended),
                addons: Some(vec![lastpass::rest::Addon::Sso]),
            },
        )
        .await
        .expect("updated");
    assert_eq!(updated.license_limit, Some(2));
    assert_eq!(
        updated.status,
        Some(lastpass::rest::CompanyStatus::Suspended)
    );
    assert_eq!(updated.addons, vec![lastpass::rest::Addon::Sso]);
    // Detach without an admin: refused with LastPass's message.
    let e = c.detach_company(&company.id).await.unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e}");
    assert!(
        e.to_string().contains("Can't detach without admins."),
        "{e}"
    );
    // With an admin (made through the sandbox): detached, then gone.
    let u = c
        .add_user(
            &company.id,
            &NewCompanyUser::invite(email("boss@upd.example")),
        )
        .await
        .expect("user");
    let (cid, uid) = (
        company.id.as_str().parse::<u64>().unwrap(),
        u.id.as_str().parse::<u64>().unwrap(),
    );
    sb.msp
        .with_tenant(|t| t.set_user(cid, uid, None, Some(true), None, 0))
        .expect("admin");
    c.detach_company(&company.id).await.expect("detached");
    let e = c.get_company(&company.id).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    let e = c.detach_company(&company.id).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    let e = c
        .add_user(&company.id, &NewCompanyUser::invite(email("x@upd.example")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
}

#[tokio::test]
async fn bad_key_is_auth_and_the_key_never_shows() {
    let sb = sandbox().await;
    let wrong = "lpkey_WRONGWRONGWR_thisisnotthekeyatall0123456789";
    let c = client_with(&sb, wrong, PollPolicy::for_tests());
    let e = c.get_company(&CompanyId::from(1)).await.unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e}");
    assert!(!e.is_retryable());
    let e2 = c
        .list_companies(&CompanyQuery::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(e2, Error::Auth { .. }), "{e2}");
    // One attempt each: 401 is not retried.
    assert_eq!(c.stats().requests, 2);
    let real = sb.msp.credentials().api_key;
    let good = client(&sb);
    for text in [
        e.to_string(),
        format!("{e:?}"),
        format!("{c:?}"),
        format!("{good:?}"),
        format!("{:?}", Credentials::new(Secret::new(real.clone())).unwrap()),
    ] {
        assert!(!text.contains(wrong), "{text}");
        assert!(!text.contains("thisisnotthekey"), "{text}");
        assert!(!text.contains(&real), "{text}");
    }
    // A server echoing the key in a problem gets it scrubbed.
    sb.msp.fail_next(
        Problem::new(500, "Internal Server Error", format!("bad key {real}")),
        1,
    );
    let e = good
        .create_company(&NewManagedCompany::named("Echo"))
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(matches!(e, Error::Upstream { status: 500, .. }), "{text}");
    assert!(text.contains("bad key ***"), "{text}");
    assert!(!text.contains(&real), "{text}");
    // A read-only key: writes are forbidden.
    let mut s = sb.msp.settings();
    s.read_only = true;
    sb.msp.set_settings(s);
    let e = good
        .create_company(&NewManagedCompany::named("Nope"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e}");
}

#[tokio::test]
async fn retries_injected_429_5xx_and_drops() {
    let sb = sandbox().await;
    let c = client(&sb);
    fault(&sb, "companies.list:429:1:2");
    let all: Vec<_> = c
        .list_companies(&CompanyQuery::default())
        .try_collect()
        .await
        .expect("listed after retries");
    assert_eq!(all.len(), 30);
    assert_eq!(sb.msp.stats().requests_for("companies.list"), 3);
    assert_eq!(c.stats().retries, 2);
    assert_eq!(c.stats().by_outcome["companies.list"]["rate_limited"], 2);
    let id = all[0].id.clone();
    fault(&sb, "companies.get:503:1:1");
    fault(&sb, "companies.get:500:1:1");
    fault(&sb, "companies.get:drop:1:1");
    c.get_company(&id).await.expect("read after 503, 500, drop");
    assert_eq!(sb.msp.stats().requests_for("companies.get"), 4);
    assert_eq!(c.stats().by_outcome["companies.get"]["transport"], 1);
    // A torn body of a read is retried too.
    fault(&sb, "companies.get:truncate:1:1");
    c.get_company(&id).await.expect("read after a torn body");
    // The budget runs out: the last error, typed.
    fault(&sb, "companies.get:503:1:4");
    let e = c.get_company(&id).await.unwrap_err();
    assert!(matches!(e, Error::Upstream { status: 503, .. }), "{e}");
    assert!(e.is_retryable());
    fault(&sb, "users.list:429:1:4");
    let e = c
        .list_users(&id, &UserQuery::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e}");
    // A Retry-After longer than the client waits fails at once, carrying it.
    let mut s = sb.msp.settings();
    s.retry_after_secs = 7;
    sb.msp.set_settings(s);
    fault(&sb, "companies.get:429:1:1");
    let before = sb.msp.stats().requests_for("companies.get");
    let e = c.get_company(&id).await.unwrap_err();
    match e {
        Error::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(sb.msp.stats().requests_for("companies.get"), before + 1);
}

#[tokio::test]
async fn writes_retry_only_when_safe() {
    let sb = sandbox().await;
    let c = client(&sb);
    // Creating a company: 429 and 503 are retried (nothing was applied)…
    fault(&sb, "companies.create:429:1:1");
    fault(&sb, "companies.create:503:1:1");
    c.create_company(&NewManagedCompany::named("Safe Retry"))
        .await
        .expect("created");
    assert_eq!(sb.msp.stats().requests_for("companies.create"), 3);
    // …a 500 may have been applied: not retried, no duplicate.
    fault(&sb, "companies.create:500:1:1");
    let e = c
        .create_company(&NewManagedCompany::named("Maybe"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Upstream { status: 500, .. }), "{e}");
    assert_eq!(sb.msp.stats().requests_for("companies.create"), 4);
    // Adding a user after a 500 (not applied here): looked up, then retried.
    let company = c
        .create_company(&NewManagedCompany::named("Users Co").with_license_limit(5))
        .await
        .expect("created");
    fault(&sb, "users.add:500:1:1");
    let u = c
        .add_user(
            &company.id,
            &NewCompanyUser::invite(email("a@users.example")),
        )
        .await
        .expect("added after verification");
    assert_eq!(u.email, "a@users.example");
    let st = sb.msp.stats();
    assert_eq!(st.requests_for("users.add"), 2);
    assert_eq!(st.requests_for("users.list"), 1);
    // After a torn answer (applied upstream): found by the lookup, not added twice.
    fault(&sb, "users.add:truncate:1:1");
    let u = c
        .add_user(
            &company.id,
            &NewCompanyUser::invite(email("b@users.example")),
        )
        .await
        .expect("found after a torn answer");
    assert_eq!(u.email, "b@users.example");
    let st = sb.msp.stats();
    assert_eq!(st.requests_for("users.add"), 3);
    assert_eq!(st.requests_for("users.list"), 2);
    let n = sb.msp.with_tenant(|t| {
        t.companies
            .values()
            .find(|x| x.name == "Users Co")
            .map(|x| x.users().len())
    });
    assert_eq!(n, Some(2));
    // A detach whose first answer was lost: the retry's 404 means done.
    let company = c
        .create_company(&NewManagedCompany::named("Detach Co"))
        .await
        .expect("created");
    let cid = company.id.as_str().parse::<u64>().unwrap();
    // Applied upstream, answer lost: detached behind the client's back, then a 502.
    let admin = sandbox::msp::AccountStatus::Enrolled;
    sb.msp
        .with_tenant(|t| {
            t.add_user(cid, "admin@detach.example", None, admin, true, 0)?;
            t.detach(cid)
        })
        .expect("detached");
    fault(&sb, "companies.detach:502:1:1");
    c.detach_company(&company.id)
        .await
        .expect("a 404 after an ambiguous attempt counts as done");
    assert_eq!(sb.msp.stats().requests_for("companies.detach"), 2);
}

#[tokio::test]
async fn failed_requests_and_the_poll_deadline() {
    let sb = sandbox().await;
    let c = client(&sb);
    sb.msp.fail_next(
        Problem::new(500, "Internal Server Error", "backend unavailable"),
        1,
    );
    let e = c
        .create_company(&NewManagedCompany::named("Doomed"))
        .await
        .unwrap_err();
    match &e {
        Error::Upstream {
            status: 500,
            problem: Some(p),
            ..
        } => assert_eq!(p.detail.as_deref(), Some("backend unavailable")),
        other => panic!("expected Upstream 500, got {other:?}"),
    }
    // Never completes: the client gives up at its deadline.
    let mut s = sb.msp.settings();
    s.complete_after_polls = 1_000_000;
    sb.msp.set_settings(s);
    let key = sb.msp.credentials().api_key;
    let impatient = client_with(
        &sb,
        &key,
        PollPolicy {
            deadline: Duration::from_millis(40),
            initial_interval: Duration::from_millis(1),
            max_interval: Duration::from_millis(4),
        },
    );
    let e = impatient
        .create_company(&NewManagedCompany::named("Slow"))
        .await
        .unwrap_err();
    match &e {
        Error::Timeout {
            request_id, waited, ..
        } => {
            assert!(!request_id.is_empty());
            assert!(*waited >= Duration::from_millis(40));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(e.is_retryable());
    assert!(impatient.stats().by_cmd["requests.get"] >= 2);
}
