//! End to end against the real sandbox emulator (over HTTP on 127.0.0.1): every command
//! round-trips, and under injected 429/5xx/malformed/truncated answers the client retries
//! without duplicating writes.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use lastpass::*;
use sandbox::faults::{FaultKind, FaultRule};
use sandbox::{SandboxConfig, SandboxHandle};

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

async fn start() -> (SandboxHandle, Client) {
    let sb = sandbox::spawn(SandboxConfig::for_tests()).await.unwrap();
    let acct = sb.primary_account();
    let mut cfg = ClientConfig::new(Credentials {
        cid: Cid(acct.cid),
        provhash: Secret::new(acct.provhash),
    })
    .with_endpoint(parse_endpoint(&sb.lastpass_endpoint()).unwrap());
    cfg.retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
    };
    (sb, Client::new(cfg).unwrap())
}

/// Queues one-shot faults for `cmd`, answered in this order.
fn faults_once(sb: &SandboxHandle, cmd: &str, kinds: impl IntoIterator<Item = FaultKind>) {
    for kind in kinds {
        sb.faults.add(FaultRule::new(cmd, kind).count(1));
    }
}

fn window() -> EventQuery {
    let p = |s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
    EventQuery {
        from: p("2000-01-01 00:00:00"),
        to: p("2035-01-01 00:00:00"),
        search: None,
        user: None,
        admin_only: false,
    }
}

#[tokio::test]
async fn every_command_round_trips() {
    let (sb, c) = start().await;

    // Reads.
    let all = c.all_users().await.unwrap();
    assert!(!all.users.is_empty());
    let total = all.total;
    let streamed: Vec<User> = c
        .users(UserQuery::default(), 7)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.len() as u64, total);
    let distinct: HashSet<_> = streamed.iter().map(|u| u.id.clone()).collect();
    assert_eq!(distinct.len(), streamed.len());
    let pages = total.div_ceil(7);
    assert_eq!(c.stats().by_cmd["getuserdata"], 1 + pages);

    let someone = email(&all.users[0].username);
    let got = c.get_user(&someone).await.unwrap().unwrap();
    assert_eq!(got.username, all.users[0].username);
    assert_eq!(
        c.get_user(&email("nobody@nowhere.example")).await.unwrap(),
        None
    );

    // Writes.
    let new: Vec<NewUser> = ["e2e1@example.com", "e2e2@example.com"]
        .iter()
        .map(|n| {
            let mut u = NewUser::new(email(n));
            u.fullname = Some("E2E".into());
            u.password = Some(Secret::new("Temp-Passw0rd!"));
            u
        })
        .collect();
    c.batch_add(&new).await.unwrap();
    let e1 = email("e2e1@example.com");
    assert!(c.get_user(&e1).await.unwrap().is_some());

    c.update_user(&UserUpdate {
        username: e1.clone(),
        fullname: Some("Renamed".into()),
        duo_username: None,
        securid_username: None,
    })
    .await
    .unwrap();
    assert_eq!(c.get_user(&e1).await.unwrap().unwrap().fullname, "Renamed");

    // The emulator does not create groups on the fly (WARN "group … does not exist").
    let group = all.groups.keys().next().expect("seeded groups").clone();
    c.change_groups(&[GroupChange {
        username: e1.clone(),
        add: vec![GroupName::new(group.clone()).unwrap()],
        del: vec![],
    }])
    .await
    .unwrap();
    let g = c.get_user(&e1).await.unwrap().unwrap().groups;
    assert!(g.contains(&group), "{g:?}");
    assert!(matches!(
        c.change_groups(&[GroupChange {
            username: e1.clone(),
            add: vec![GroupName::new("No Such Group").unwrap()],
            del: vec![],
        }])
        .await,
        Err(Error::Partial { .. })
    ));

    let out = c.disable_users(std::slice::from_ref(&e1)).await.unwrap();
    assert_eq!(out.changed.len() + out.unchanged.len(), 1);
    assert!(c.get_user(&e1).await.unwrap().unwrap().disabled);
    c.enable_users(std::slice::from_ref(&e1)).await.unwrap();
    assert!(!c.get_user(&e1).await.unwrap().unwrap().disabled);

    c.require_password_change(&e1).await.unwrap();
    c.disable_multifactor(&e1).await.unwrap();
    assert!(matches!(
        c.reinvite_user(&e1).await,
        Err(Error::Failed { .. })
    ));
    let invitee = email("e2e3@example.com");
    c.batch_add(&[NewUser::new(invitee.clone())]).await.unwrap();
    assert_eq!(
        c.get_user(&invitee).await.unwrap(),
        None,
        "invitees are not in Users"
    );
    c.reinvite_user(&invitee).await.unwrap();
    c.delete_user(&invitee, DeleteAction::Uninvite)
        .await
        .unwrap();
    c.reset_password(&e1).await.unwrap();
    c.update_email(&e1, &email("e2e1.new@example.com"))
        .await
        .unwrap();

    let e2 = email("e2e2@example.com");
    c.delete_user(&e2, DeleteAction::Deactivate).await.unwrap();
    assert!(c.get_user(&e2).await.unwrap().unwrap().disabled);
    c.delete_user(&e2, DeleteAction::Delete).await.unwrap();
    assert_eq!(c.get_user(&e2).await.unwrap(), None);

    let ghost = email("ghost@example.com");
    assert!(matches!(
        c.delete_user(&ghost, DeleteAction::Remove).await,
        Err(Error::UnknownUser { .. })
    ));
    assert!(matches!(
        c.reset_password(&ghost).await,
        Err(Error::UnknownUser { .. })
    ));

    // Folders.
    let sf = c.shared_folders().await.unwrap();
    assert!(!sf.is_empty());
    let dsf = c.detailed_shared_folders().await.unwrap();
    assert_eq!(dsf.len(), sf.len());
    let paged: Vec<SharedFolder> = c
        .detailed_shared_folders_paged(3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(paged.len(), sf.len());
    assert!(
        paged
            .iter()
            .all(|f| f.users.iter().all(|m| m.sites.is_some()))
    );

    // Events, expired passwords, pushes, raw.
    let ev: Vec<Event> = c.events(window()).try_collect().await.unwrap();
    assert!(!ev.is_empty());
    assert!(
        ev.windows(2).all(|w| w[0].time >= w[1].time),
        "newest first"
    );
    let _expired: Vec<ExpiredPassword> = c.expired_passwords(500).try_collect().await.unwrap();
    let psid = c
        .push_site(&common::example_site(UsernameType::Email))
        .await
        .unwrap();
    assert!(!psid.is_empty());
    let raw = c
        .raw("getuserdata", Some(serde_json::json!({"pagesize": 1})))
        .await
        .unwrap();
    assert_eq!(raw.status, 200);
    assert!(raw.body.starts_with(b"{"));

    // Our counters agree with the sandbox's.
    assert_eq!(sb.stats().total.requests, c.stats().requests);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrong_provhash_is_auth() {
    let (sb, _) = start().await;
    let cfg = ClientConfig::new(Credentials {
        cid: Cid(sb.primary_account().cid),
        provhash: Secret::new("0".repeat(64)),
    })
    .with_endpoint(parse_endpoint(&sb.lastpass_endpoint()).unwrap());
    let c = Client::new(cfg).unwrap();
    assert!(matches!(c.all_users().await, Err(Error::Auth)));
    assert_eq!(c.stats().requests, 1);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn reads_survive_injected_faults() {
    let (sb, c) = start().await;
    faults_once(
        &sb,
        "getuserdata",
        [
            FaultKind::Status { status: 429 },
            FaultKind::Status { status: 500 },
            FaultKind::Malformed,
            FaultKind::Truncate,
        ],
    );
    let page = c.all_users().await.unwrap();
    assert!(!page.users.is_empty());
    let st = c.stats();
    assert_eq!(st.retries, 4);
    assert_eq!(st.requests, 5);
    assert_eq!(sb.stats().requests_for("getuserdata"), 5);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn bulk_import_under_faults_creates_no_duplicates() {
    let (sb, c) = start().await;
    let start_page = c.all_users().await.unwrap();
    let (before, before_invited) = (start_page.total, start_page.invited.len());
    // The first batchadd is applied but its answer torn; the next is refused with a 500
    // before reaching the emulator; then one 429.
    faults_once(&sb, "batchadd", [FaultKind::Truncate]);
    let names: Vec<String> = (0..30)
        .map(|i| format!("import{i:02}@example.com"))
        .collect();
    let batch1: Vec<NewUser> = names[..15].iter().map(|n| NewUser::new(email(n))).collect();
    c.batch_add(&batch1).await.unwrap();
    assert_eq!(c.stats().by_cmd["batchadd"], 1, "verified, not re-sent");

    faults_once(
        &sb,
        "batchadd",
        [
            FaultKind::Status { status: 500 },
            FaultKind::Status { status: 429 },
            FaultKind::Drop,
        ],
    );
    let batch2: Vec<NewUser> = names[15..].iter().map(|n| NewUser::new(email(n))).collect();
    c.batch_add(&batch2).await.unwrap();

    // Users without a password are invited: listed under `invited`, not `Users`.
    let after = c.all_users().await.unwrap();
    let listed: Vec<String> = after
        .users
        .iter()
        .map(|u| u.username.to_lowercase())
        .chain(after.invited.iter().map(|i| i.to_lowercase()))
        .collect();
    let distinct: HashSet<&String> = listed.iter().collect();
    assert_eq!(distinct.len(), listed.len(), "no duplicate usernames");
    for n in &names {
        assert_eq!(listed.iter().filter(|l| *l == n).count(), 1, "{n}");
    }
    assert_eq!(after.invited.len(), before_invited + 30);
    assert_eq!(after.total, before);
    assert_eq!(
        sb.stats().requests_for("batchadd"),
        c.stats().by_cmd["batchadd"]
    );
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn unsafe_write_not_retried_after_ambiguous_failure() {
    let (sb, c) = start().await;
    let someone = email(&c.all_users().await.unwrap().users[0].username);
    faults_once(&sb, "resetpassword", [FaultKind::Truncate]);
    assert!(c.reset_password(&someone).await.is_err());
    faults_once(&sb, "resetpassword", [FaultKind::Status { status: 502 }]);
    assert!(matches!(
        c.reset_password(&someone).await,
        Err(Error::Upstream { status: 502, .. })
    ));
    assert_eq!(sb.stats().requests_for("resetpassword"), 2);
    // 503 is a refusal: retried.
    faults_once(&sb, "resetpassword", [FaultKind::Status { status: 503 }]);
    c.reset_password(&someone).await.unwrap();
    assert_eq!(sb.stats().requests_for("resetpassword"), 4);
    sb.shutdown().await.unwrap();
}

/// `tapped()` records each exchange of that clone only, with the provisioning hash and
/// passwords redacted from the request and the answer kept as JSON.
#[tokio::test]
async fn tapped_client_records_redacted_exchanges() {
    let (sb, c) = start().await;
    let provhash = sb.primary_account().provhash;
    let (t, tap) = c.tapped();
    t.get_user(&email("nobody@example.com")).await.unwrap();
    let mut new = NewUser::new(email("tapped@example.com"));
    new.password = Some(Secret::new("Sup3r-Secret-Pw!"));
    t.batch_add(&[new]).await.unwrap();
    // The untapped original records nothing into this tap.
    c.get_user(&email("tapped@example.com")).await.unwrap();
    let calls = tap.take();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let all = serde_json::to_string(&calls).unwrap();
    assert!(!all.contains(&provhash), "provhash leaked: {all}");
    assert!(!all.contains("Sup3r-Secret-Pw!"), "password leaked: {all}");
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].url, sb.lastpass_endpoint());
    assert_eq!(calls[0].body["cmd"], "getuserdata");
    assert_eq!(calls[0].body["provhash"], "***");
    assert_eq!(calls[0].response, serde_json::json!({"Users": []}));
    assert_eq!(calls[1].body["data"][0]["password"], "***");
    assert_eq!(calls[1].status, Some(200));
    assert!(tap.take().is_empty(), "take() clears");
}
