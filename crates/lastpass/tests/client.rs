//! Client behaviour against in-process stub servers on 127.0.0.1: envelopes over HTTP,
//! retries, write ambiguity, streams, validation, rate limiting and secret hygiene.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use futures::TryStreamExt;
use lastpass::*;
use parking_lot::Mutex;
use serde_json::{Value, json};

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

// ---- request shape and auth ---------------------------------------------------------------

#[tokio::test]
async fn request_envelope_shape_and_apiuser() {
    let s = stub(|_| Reply::json(json!({"total":0,"count":0,"Users":[]}))).await;
    let mut cfg = config(&s.url);
    cfg.apiuser = Some("lpbridge".into());
    let c = Client::new(cfg).unwrap();
    c.user_page(&UserQuery::default(), 500, 2).await.unwrap();
    let r = s.requests.lock()[0].clone();
    assert_eq!(r["cid"], json!(CID), "cid is a JSON number");
    assert_eq!(r["provhash"], json!(PROVHASH));
    assert_eq!(r["cmd"], json!("getuserdata"));
    assert_eq!(r["data"], json!({"pagesize":500,"pageindex":2}));
    assert_eq!(r["apiuser"], json!("lpbridge"));
    // Without apiuser the key is absent; `all_users` omits `data`.
    let c = client(&s.url);
    c.all_users().await.unwrap();
    let r = s.requests.lock()[1].clone();
    assert!(r.get("apiuser").is_none() && r.get("data").is_none(), "{r}");
}

#[tokio::test]
async fn xml_auth_error_with_http_200_is_auth_and_not_retried() {
    let s = stub(|_| Reply::ok(AUTH_XML)).await;
    let c = client(&s.url);
    assert!(matches!(c.all_users().await, Err(Error::Auth)));
    assert!(matches!(
        c.reset_password(&email("a@x.io")).await,
        Err(Error::Auth)
    ));
    assert_eq!(c.stats().requests, 2);
    assert_eq!(c.stats().retries, 0);
    // The same body on a 403 is still Auth.
    let s = stub(|_| Reply::Respond {
        status: 403,
        headers: vec![],
        body: AUTH_XML.to_vec(),
    })
    .await;
    assert!(matches!(client(&s.url).all_users().await, Err(Error::Auth)));
}

// ---- retries ------------------------------------------------------------------------------

#[tokio::test]
async fn read_429_then_success_is_retried_and_counted() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let s = stub(move |_| {
        if n2.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(429).with_header("Retry-After", "0")
        } else {
            Reply::json(json!({"Users":{"1":user_json("a@x.io")}}))
        }
    })
    .await;
    let c = client(&s.url);
    let page = c.all_users().await.unwrap();
    assert_eq!(page.users.len(), 1);
    let st = c.stats();
    assert_eq!((st.requests, st.retries), (2, 1));
    assert_eq!(st.by_cmd["getuserdata"], 2);
}

#[tokio::test]
async fn read_500_and_malformed_bodies_are_retried() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let s = stub(move |_| match n2.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::status(500),
        1 => Reply::ok(&b"{\"total\":1,\"Us"[..]),
        2 => Reply::status(502),
        _ => Reply::json(json!({"101":{"sharedfoldername":"F","score":1,"users":[]}})),
    })
    .await;
    let c = client(&s.url);
    let f = c.shared_folders().await.unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(c.stats().retries, 3);
}

#[tokio::test]
async fn retry_budget_is_bounded() {
    let s = stub(|_| Reply::status(503)).await;
    let c = client(&s.url);
    match c.all_users().await {
        Err(Error::Upstream { status: 503, cmd }) => assert_eq!(cmd, "getuserdata"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.requests.lock().len(), 4, "max_attempts");
    let s = stub(|_| Reply::status(429)).await;
    let c = client(&s.url);
    assert!(matches!(
        c.all_users().await,
        Err(Error::RateLimited { .. })
    ));
    assert_eq!(c.stats().requests, 4);
}

#[tokio::test]
async fn very_long_retry_after_is_not_waited_for() {
    let s = stub(|_| Reply::status(429).with_header("Retry-After", "3600")).await;
    let c = client(&s.url);
    match c.all_users().await {
        Err(Error::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(3600)))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.stats().requests, 1);
}

#[tokio::test]
async fn idempotent_write_retried_after_500() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let s = stub(move |_| {
        if n2.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(500)
        } else {
            Reply::json(json!({"status":"OK"}))
        }
    })
    .await;
    let c = client(&s.url);
    c.update_user(&UserUpdate {
        username: email("a@x.io"),
        fullname: Some("A".into()),
        duo_username: None,
        securid_username: None,
    })
    .await
    .unwrap();
    assert_eq!(s.count("updateuser"), 2);
}

// ---- unsafe writes ------------------------------------------------------------------------

#[tokio::test]
async fn resetpassword_ambiguous_500_is_not_retried() {
    let s = stub(|_| Reply::status(500)).await;
    let c = client(&s.url);
    match c.reset_password(&email("a@x.io")).await {
        Err(Error::Upstream { status: 500, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(s.count("resetpassword"), 1);
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test]
async fn resetpassword_dropped_connection_is_ambiguous_and_not_retried() {
    let s = stub(|_| Reply::Drop).await;
    let c = client(&s.url);
    match c.reset_password(&email("a@x.io")).await {
        Err(Error::Transport { ambiguous, .. }) => assert!(ambiguous),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.count("resetpassword"), 1);
}

#[tokio::test]
async fn unsafe_write_timeout_after_sending_is_ambiguous() {
    let s = stub(|_| Reply::Hang).await;
    let mut cfg = config(&s.url);
    cfg.timeout = Duration::from_millis(300);
    let c = Client::new(cfg).unwrap();
    match c.reinvite_user(&email("a@x.io")).await {
        Err(Error::Transport { ambiguous, .. }) => assert!(ambiguous),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.count("reinviteuser"), 1);
}

#[tokio::test]
async fn unsafe_write_retried_on_unambiguous_refusal() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let s = stub(move |_| match n2.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::status(429),
        1 => Reply::status(503),
        _ => Reply::json(json!({"status":"OK","psid":"73"})),
    })
    .await;
    let c = client(&s.url);
    let site = PushSite {
        target: PushTarget::Group(GroupName::new("Support Group").unwrap()),
        password: Some(Secret::new("pw")),
        favorite: true,
        persistent: true,
        ..example_site(UsernameType::Email)
    };
    assert_eq!(c.push_site(&site).await.unwrap(), "73");
    assert_eq!(s.count("pushsitestousers"), 3);
    let r = s.data(2);
    assert_eq!(r["users"], "Support Group");
    assert_eq!(r["persistent"], "1");
    assert_eq!(r["fav"], "on");
    assert_eq!(r["usernametype"], "email");
    assert_eq!(r["decryptid"], "0");
}

#[tokio::test]
async fn connection_refused_is_unambiguous_and_retried() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = url::Url::parse(&format!(
        "http://{}/enterpriseapi.php",
        l.local_addr().unwrap()
    ))
    .unwrap();
    drop(l);
    let c = client(&url);
    match c.reset_password(&email("a@x.io")).await {
        Err(Error::Transport { ambiguous, .. }) => assert!(!ambiguous),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.stats().requests,
        4,
        "not applied, so retried up to the budget"
    );
}

#[tokio::test]
async fn unsafe_write_malformed_answer_is_not_retried() {
    let s = stub(|_| Reply::ok(&b"{\"status\":\"O"[..])).await;
    let c = client(&s.url);
    assert!(matches!(
        c.reset_password(&email("a@x.io")).await,
        Err(Error::Decode { .. })
    ));
    assert_eq!(s.count("resetpassword"), 1);
}

// ---- verifiable writes (batchadd, deluser, updateemail) ----------------------------------

/// A stateful stub: batchadd creates users (counting creations), getuserdata looks them up.
/// `fault(n, users)` decides, for the n-th batchadd, how many users to apply and how to fail.
struct Dir {
    created: Mutex<HashMap<String, usize>>,
}

enum Fault {
    None,
    /// Apply the first k users, then answer with this status.
    ApplyThenStatus(usize, u16),
    /// Apply the first k users, then drop the connection.
    ApplyThenDrop(usize),
    /// Apply nothing, answer this status.
    Refuse(u16),
}

async fn directory_stub(
    fault: impl Fn(usize) -> Fault + Send + Sync + 'static,
) -> (Stub, Arc<Dir>) {
    let dir = Arc::new(Dir {
        created: Mutex::new(HashMap::new()),
    });
    let d = dir.clone();
    let calls = AtomicUsize::new(0);
    let s = stub(move |req| match req["cmd"].as_str().unwrap() {
        "batchadd" => {
            let users: Vec<String> = req["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_lowercase())
                .collect();
            let (apply, reply) = match fault(calls.fetch_add(1, Ordering::SeqCst)) {
                Fault::None => (users.len(), Reply::json(json!({"status":"OK"}))),
                Fault::ApplyThenStatus(k, st) => (k, Reply::status(st)),
                Fault::ApplyThenDrop(k) => (k, Reply::Drop),
                Fault::Refuse(st) => (0, Reply::status(st)),
            };
            let mut c = d.created.lock();
            for u in users.iter().take(apply) {
                *c.entry(u.clone()).or_default() += 1;
            }
            reply
        }
        "getuserdata" => {
            let name = req["data"]["username"]
                .as_str()
                .unwrap_or("")
                .to_lowercase();
            if d.created.lock().contains_key(&name) {
                Reply::json(json!({"total":1,"count":1,"Users":{"9":user_json(&name)}}))
            } else {
                Reply::json(json!({"Users":[]}))
            }
        }
        _ => Reply::status(400),
    })
    .await;
    (s, dir)
}

fn batch(names: &[&str]) -> Vec<NewUser> {
    names.iter().map(|n| NewUser::new(email(n))).collect()
}

#[tokio::test]
async fn batchadd_ambiguous_500_verifies_and_resends_only_missing_users() {
    let (s, dir) = directory_stub(|n| {
        if n == 0 {
            Fault::ApplyThenStatus(2, 500)
        } else {
            Fault::None
        }
    })
    .await;
    let c = client(&s.url);
    let names = ["u1@x.io", "u2@x.io", "u3@x.io", "u4@x.io"];
    c.batch_add(&batch(&names)).await.unwrap();
    let created = dir.created.lock().clone();
    for n in names {
        assert_eq!(created.get(n), Some(&1), "{n} created exactly once");
    }
    assert_eq!(s.count("batchadd"), 2);
    assert_eq!(
        s.count("getuserdata"),
        4,
        "one lookup per user of the batch"
    );
    let second: Vec<String> = s
        .requests
        .lock()
        .iter()
        .filter(|r| r["cmd"] == "batchadd")
        .nth(1)
        .unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(second, vec!["u3@x.io", "u4@x.io"]);
    assert_eq!(c.stats().retries, 1);
}

#[tokio::test]
async fn batchadd_dropped_connection_after_applying_everything_is_not_resent() {
    let (s, dir) = directory_stub(|n| {
        if n == 0 {
            Fault::ApplyThenDrop(usize::MAX)
        } else {
            Fault::None
        }
    })
    .await;
    let c = client(&s.url);
    c.batch_add(&batch(&["a@x.io", "b@x.io"])).await.unwrap();
    assert_eq!(s.count("batchadd"), 1);
    assert!(dir.created.lock().values().all(|n| *n == 1));
}

#[tokio::test]
async fn batchadd_429_is_resent_whole_without_verification() {
    let (s, dir) = directory_stub(|n| {
        if n == 0 {
            Fault::Refuse(429)
        } else {
            Fault::None
        }
    })
    .await;
    let c = client(&s.url);
    c.batch_add(&batch(&["a@x.io", "b@x.io"])).await.unwrap();
    assert_eq!(s.count("batchadd"), 2);
    assert_eq!(s.count("getuserdata"), 0);
    assert_eq!(dir.created.lock().len(), 2);
}

#[tokio::test]
async fn batchadd_gives_up_when_always_ambiguous() {
    let (s, dir) = directory_stub(|_| Fault::ApplyThenStatus(1, 502)).await;
    let c = client(&s.url);
    let names = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io", "f@x.io"];
    assert!(matches!(
        c.batch_add(&batch(&names)).await,
        Err(Error::Upstream { status: 502, .. })
    ));
    assert_eq!(s.count("batchadd"), 4, "bounded by max_attempts");
    assert!(
        dir.created.lock().values().all(|n| *n == 1),
        "never duplicated"
    );
}

#[tokio::test]
async fn batchadd_validation() {
    let s = stub(|_| Reply::json(json!({"status":"OK"}))).await;
    let c = client(&s.url);
    c.batch_add(&[]).await.unwrap();
    match c.batch_add(&batch(&["a@x.io", "A@x.io"])).await {
        Err(Error::InvalidInput(v)) => assert_eq!(v.field, "username"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.stats().requests, 0);
    // Request shape of a full user.
    let mut u = NewUser::new(email("user2@lastpass.com"));
    u.fullname = Some("Mark Hunter".into());
    u.groups = vec![GroupName::new("Group1").unwrap()];
    u.attribs.insert("Department".into(), "Finance".into());
    u.password = Some(Secret::new("DefaultPassword"));
    u.password_reset_required = Some(false);
    c.batch_add(&[u]).await.unwrap();
    let d = s.data(0);
    assert_eq!(
        d,
        json!([{"username":"user2@lastpass.com","fullname":"Mark Hunter","groups":["Group1"],
                "attribs":{"Department":"Finance"},"password":"DefaultPassword",
                "password_reset_required":false}])
    );
}

#[tokio::test]
async fn deluser_ambiguous_then_verified_as_done() {
    let deleted = Arc::new(Mutex::new(false));
    let d = deleted.clone();
    let s = stub(move |req| match req["cmd"].as_str().unwrap() {
        "deluser" => {
            *d.lock() = true;
            Reply::status(504)
        }
        _ if *d.lock() => Reply::json(json!({"Users":[]})),
        _ => Reply::json(json!({"Users":{"1":user_json("a@x.io")}})),
    })
    .await;
    let c = client(&s.url);
    c.delete_user(&email("a@x.io"), DeleteAction::Delete)
        .await
        .unwrap();
    assert_eq!(s.count("deluser"), 1);
    assert_eq!(s.data(0), json!({"username":"a@x.io","deleteaction":2}));
}

#[tokio::test]
async fn deluser_deactivate_ambiguous_not_applied_is_resent() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let s = stub(move |req| match req["cmd"].as_str().unwrap() {
        "deluser" if n2.fetch_add(1, Ordering::SeqCst) == 0 => Reply::Drop,
        "deluser" => Reply::json(json!({"status":"OK"})),
        _ => Reply::json(json!({"Users":{"1":user_json("a@x.io")}})),
    })
    .await;
    let c = client(&s.url);
    c.delete_user(&email("a@x.io"), DeleteAction::Deactivate)
        .await
        .unwrap();
    assert_eq!(s.count("deluser"), 2);
    assert_eq!(s.count("getuserdata"), 1);
}

// ---- envelopes over HTTP --------------------------------------------------------------------

#[tokio::test]
async fn typed_errors_over_http() {
    let s = stub(|req| match req["cmd"].as_str().unwrap() {
        "getuserdata" => Reply::json(json!({"Users":[]})),
        "deluser" => {
            Reply::json(json!({"status":"FAIL","error":"No such user: someone@example.com"}))
        }
        "resetpassword" => {
            Reply::json(json!({"status":"FAIL","error":["user not found: someone@example.com"]}))
        }
        "batchchangegrp" => {
            Reply::json(json!({"status":"WARN","errors":["user2@lastpass.com does not exist"]}))
        }
        "disableuser" => Reply::json(
            json!({"status":"success","disabled_users":["a@x.io"],"error":"b@x.io: not allowed"}),
        ),
        _ => Reply::status(400),
    })
    .await;
    let c = client(&s.url);
    let who = email("someone@example.com");
    assert_eq!(c.get_user(&who).await.unwrap(), None);
    assert!(matches!(
        c.delete_user(&who, DeleteAction::Remove).await,
        Err(Error::UnknownUser { email }) if email == "someone@example.com"
    ));
    assert!(matches!(
        c.reset_password(&who).await,
        Err(Error::UnknownUser { .. })
    ));
    let changes = vec![GroupChange {
        username: email("user2@lastpass.com"),
        add: vec![GroupName::new("G").unwrap()],
        del: vec![],
    }];
    assert!(matches!(
        c.change_groups(&changes).await,
        Err(Error::Partial { ref errors, .. }) if errors.len() == 1
    ));
    match c.disable_users(&[email("a@x.io"), email("b@x.io")]).await {
        Err(Error::Partial { succeeded, errors }) => {
            assert_eq!(succeeded, vec!["a@x.io"]);
            assert_eq!(errors.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    // None of these is retried: they are definitive answers.
    assert_eq!(c.stats().retries, 0);
    // A 4xx other than auth is an upstream error, not retried.
    let n = c.stats().requests;
    assert!(matches!(
        c.require_password_change(&who).await,
        Err(Error::Upstream { status: 400, .. })
    ));
    assert_eq!(c.stats().requests, n + 1);
}

// ---- streams ------------------------------------------------------------------------------

/// A directory of `n` users; the server clamps pagesize to `clamp`; no `Groups` key.
async fn paged_stub(n: usize, clamp: usize) -> Stub {
    stub(move |req| {
        let size = req["data"]["pagesize"].as_u64().unwrap() as usize;
        let index = req["data"]["pageindex"].as_u64().unwrap() as usize;
        let size = size.min(clamp);
        let users: serde_json::Map<String, Value> = (0..n)
            .skip(index * size)
            .take(size)
            .map(|i| {
                let mut u = user_json(&format!("u{i}@x.io"));
                u["groups"] = json!([if i % 2 == 0 { "Even" } else { "Odd" }]);
                (format!("{}", 1000 + i), u)
            })
            .collect();
        Reply::json(json!({"total": n, "count": users.len(), "Users": users}))
    })
    .await
}

#[tokio::test]
async fn users_stream_stops_at_total_even_when_pagesize_is_clamped() {
    let s = paged_stub(5, 2).await;
    let c = client(&s.url);
    let users: Vec<User> = c
        .users(UserQuery::default(), 3)
        .try_collect()
        .await
        .unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(
        names,
        vec!["u0@x.io", "u1@x.io", "u2@x.io", "u3@x.io", "u4@x.io"]
    );
    assert_eq!(s.count("getuserdata"), 3, "pages of 2, 2, 1; no extra call");
    // Exact division: ceil(total / pagesize) calls.
    let s = paged_stub(4, 2000).await;
    let c = client(&s.url);
    let pages: Vec<UserPage> = c
        .user_pages(UserQuery::default(), 2)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(c.stats().requests, 2);
    assert_eq!(
        pages[0].groups["Even"],
        vec!["u0@x.io"],
        "groups from users' arrays"
    );
}

#[tokio::test]
async fn users_stream_stops_on_empty_page_and_refuses_big_pagesize() {
    // `total` lies (says 10) but page 1 is empty.
    let s = stub(|req| {
        if req["data"]["pageindex"] == 0 {
            Reply::json(json!({"total":10,"count":1,"Users":{"1":user_json("a@x.io")}}))
        } else {
            Reply::json(json!({"total":10,"count":0,"Users":[]}))
        }
    })
    .await;
    let c = client(&s.url);
    let users: Vec<User> = c
        .users(UserQuery::default(), 5)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(c.stats().requests, 2);

    let r: Result<Vec<User>, _> = c.users(UserQuery::default(), 2001).try_collect().await;
    match r {
        Err(Error::InvalidInput(v)) => assert_eq!(v.field, "pagesize"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.user_page(&UserQuery::default(), 0, 0).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(c.stats().requests, 2);
}

#[tokio::test]
async fn users_stream_without_total_walks_to_an_empty_page() {
    let s = stub(|req| {
        let i = req["data"]["pageindex"].as_u64().unwrap();
        if i < 2 {
            let name = format!("u{i}@x.io");
            Reply::json(json!({"count":1,"Users":{ (i + 1).to_string(): user_json(&name) }}))
        } else {
            Reply::json(json!({"count":0,"Users":[]}))
        }
    })
    .await;
    let c = client(&s.url);
    let users: Vec<User> = c
        .users(UserQuery::default(), 1)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(c.stats().requests, 3);
}

#[tokio::test]
async fn users_stream_detects_an_ignored_pageindex() {
    let s = stub(|_| Reply::json(json!({"total":10,"count":1,"Users":{"1":user_json("a@x.io")}})))
        .await;
    let c = client(&s.url);
    let r: Result<Vec<User>, _> = c.users(UserQuery::default(), 1).try_collect().await;
    assert!(matches!(r, Err(Error::Decode { .. })));
    assert_eq!(c.stats().requests, 2);
}

fn query() -> EventQuery {
    EventQuery {
        from: chrono::NaiveDateTime::parse_from_str("2024-01-01 00:00:00", "%Y-%m-%d %H:%M:%S")
            .unwrap(),
        to: chrono::NaiveDateTime::parse_from_str("2024-01-31 23:59:59", "%Y-%m-%d %H:%M:%S")
            .unwrap(),
        search: None,
        user: None,
        admin_only: true,
    }
}

fn event(i: usize) -> Value {
    json!({"Time": format!("2024-01-{:02} 10:00:00", 28 - i), "Username":"u@x.io",
           "IP_Address":"10.0.0.1","Action":format!("A{i}"),"Data":""})
}

#[tokio::test]
async fn events_stream_walks_next() {
    let s = stub(
        |req| match req["data"].get("next").and_then(Value::as_i64) {
            None => Reply::json(
                json!({"status":"OK","next":"300","data":{"Event1":event(0),"Event2":event(1)}}),
            ),
            Some(300) => Reply::json(json!({"status":"OK","next":200,"data":{"Event1":event(2)}})),
            Some(200) => Reply::json(json!({"status":"OK","next":null,"data":[]})),
            Some(_) => Reply::status(400),
        },
    )
    .await;
    let c = client(&s.url);
    let ev: Vec<Event> = c.events(query()).try_collect().await.unwrap();
    let actions: Vec<&str> = ev.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["A0", "A1", "A2"]);
    assert_eq!(s.count("reporting"), 3);
    let d = s.data(0);
    assert_eq!(d["from"], "2024-01-01 00:00:00");
    assert_eq!(d["to"], "2024-01-31 23:59:59");
    assert_eq!(d["user"], "allusers");
    assert_eq!(d["admin"], "1");
}

#[tokio::test]
async fn events_stream_refuses_a_stuck_cursor() {
    let s =
        stub(|_| Reply::json(json!({"status":"OK","next":500,"data":{"Event1":event(0)}}))).await;
    let c = client(&s.url);
    let r: Result<Vec<Event>, _> = c.events(query()).try_collect().await;
    match r {
        Err(Error::Decode { reason, .. }) => assert!(reason.contains("cursor"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.count("reporting"), 2);
}

#[tokio::test]
async fn event_query_from_after_to_is_refused() {
    let s = stub(|_| Reply::status(500)).await;
    let c = client(&s.url);
    let mut q = query();
    std::mem::swap(&mut q.from, &mut q.to);
    match c.events_page(&q, None).await {
        Err(Error::InvalidInput(v)) => assert_eq!(v.field, "from"),
        other => panic!("{other:?}"),
    }
    let r: Result<Vec<Event>, _> = c.events(q).try_collect().await;
    assert!(matches!(r, Err(Error::InvalidInput(_))));
    assert_eq!(c.stats().requests, 0);
}

#[tokio::test]
async fn expired_passwords_walk_tokens() {
    let s = stub(|req| {
        let item = |i: u64| json!({"user_id": i, "user_name": format!("u{i}@x.io"), "last_pw_change": "2022-01-13 03:30:13"});
        match req["data"].get("continuation_token").and_then(Value::as_str) {
            None => Reply::json(json!({"status":"Success","continuation":{"token":"t1","remaining_item_count":2},"items":[item(1)]})),
            Some("t1") => Reply::json(json!({"status":"Success","continuation":{"token":"t2","remaining_item_count":1},"items":[item(2)]})),
            Some("t2") => Reply::json(json!({"status":"Success","items":[item(3)]})),
            _ => Reply::status(400),
        }
    })
    .await;
    let c = client(&s.url);
    let all: Vec<ExpiredPassword> = c.expired_passwords(1).try_collect().await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.user_id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(s.data(1), json!({"limit":1,"continuation_token":"t1"}));
    assert!(matches!(
        c.expired_passwords_page(501, None).await,
        Err(Error::InvalidInput(v)) if v.field == "limit"
    ));
}

#[tokio::test]
async fn detailed_folders_paged_stops_on_short_page() {
    let s = stub(|req| {
        let d = &req["data"];
        assert_eq!(d["data"], "all");
        let size = d["pagesize"].as_u64().unwrap();
        let index = d["pageindex"].as_u64().unwrap();
        let folders: serde_json::Map<String, Value> = (0..5u64)
            .skip((index * size) as usize)
            .take(size as usize)
            .map(|i| {
                (
                    format!("{}", 101 + i),
                    json!({"sharedfoldername": format!("F{i}"), "score": "1", "users": [
                        {"username":"a@x.io","readonly":"1","give":"0","can_administer":"0","sites":["a.com"]}]}),
                )
            })
            .collect();
        Reply::json(Value::Object(folders))
    })
    .await;
    let c = client(&s.url);
    let f: Vec<SharedFolder> = c
        .detailed_shared_folders_paged(2)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(f.len(), 5);
    assert_eq!(f[4].id.as_str(), "105");
    assert_eq!(s.count("getdetailedsfdata"), 3);
}

// ---- other validation ---------------------------------------------------------------------

#[tokio::test]
async fn push_site_custom_without_username_is_refused() {
    let s = stub(|_| Reply::json(json!({"status":"OK","psid":"1"}))).await;
    let c = client(&s.url);
    let site = example_site(UsernameType::Custom);
    match c.push_site(&site).await {
        Err(Error::InvalidInput(v)) => assert_eq!(v.field, "username"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.stats().requests, 0);
    // Empty bulk calls are no-ops.
    assert_eq!(
        c.disable_users(&[]).await.unwrap(),
        ToggleOutcome::default()
    );
    c.change_groups(&[]).await.unwrap();
    assert!(matches!(
        c.update_email(&email("a@x.io"), &email("A@x.io")).await,
        Err(Error::InvalidInput(v)) if v.field == "newemail"
    ));
    assert_eq!(c.stats().requests, 0);
}

#[tokio::test]
async fn raw_returns_bodies_as_received() {
    let s = stub(|req| match req["cmd"].as_str().unwrap() {
        "getuserdata" => Reply::ok(AUTH_XML),
        _ => Reply::status(500),
    })
    .await;
    let c = client(&s.url);
    let r = c
        .raw("getuserdata", Some(json!({"pagesize":1})))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], AUTH_XML);
    assert_eq!(r.content_type.as_deref(), Some("text/xml;charset=UTF-8"));
    // A write through raw is never retried.
    let r = c
        .raw("batchadd", Some(json!([{"username":"a@x.io"}])))
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(s.count("batchadd"), 1);
    assert_eq!(s.data(0), json!({"pagesize":1}));
}

// ---- rate limiting ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updateemail_held_to_ten_per_second_over_http() {
    let s = stub(|_| Reply::json(json!({"status":"OK"}))).await;
    let mut cfg = config(&s.url);
    cfg.max_concurrency = 8;
    let c = Client::new(cfg).unwrap();
    let start = std::time::Instant::now();
    let calls = (0..25).map(|i| {
        let c = c.clone();
        async move {
            c.update_email(&email(&format!("o{i}@x.io")), &email(&format!("n{i}@x.io")))
                .await
        }
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    // 25 tokens at 10/s starting with one: at least 2.4 s.
    assert!(
        start.elapsed() >= Duration::from_millis(2350),
        "{:?}",
        start.elapsed()
    );
    let mut t = s.arrivals.lock().clone();
    t.sort();
    let max_in_window = (0..t.len())
        .map(|i| {
            t[i..]
                .iter()
                .take_while(|x| **x - t[i] < Duration::from_millis(950))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        max_in_window <= 10,
        "{max_in_window} requests within 0.95 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_rate_limit() {
    let s = stub(|_| Reply::json(json!({"Users":[]}))).await;
    let mut cfg = config(&s.url);
    cfg.rate_limit_per_sec = Some(20.0);
    let c = Client::new(cfg).unwrap();
    let start = std::time::Instant::now();
    let calls = (0..11).map(|_| {
        let c = c.clone();
        async move { c.all_users().await }
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    // 11 tokens at 20/s starting with one: at least 0.5 s.
    assert!(
        start.elapsed() >= Duration::from_millis(480),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(c.stats().requests, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_cap_holds() {
    let s = stub(|_| {
        Reply::Delayed(
            Duration::from_millis(40),
            Box::new(Reply::json(json!({"Users":[]}))),
        )
    })
    .await;
    let mut cfg = config(&s.url);
    cfg.max_concurrency = 2;
    let c = Client::new(cfg).unwrap();
    let calls = (0..8).map(|_| {
        let c = c.clone();
        async move { c.all_users().await }
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(s.peak_in_flight.load(Ordering::SeqCst), 2);
    assert!(
        Client::new(ClientConfig {
            max_concurrency: 0,
            ..config(&s.url)
        })
        .is_err()
    );
}

// ---- secrets ------------------------------------------------------------------------------

#[tokio::test]
async fn provhash_never_in_debug_display_or_errors() {
    // A server that echoes the request (including the provhash) in a broken body and in errors.
    let s = stub(|req| match req["cmd"].as_str().unwrap() {
        "getuserdata" => Reply::ok(format!("oops {} {}", PROVHASH, req)),
        "updateuser" => {
            Reply::json(json!({"status":"FAIL","error": format!("bad hash {PROVHASH}")}))
        }
        _ => Reply::ok(format!("{}{}", "x".repeat(100), PROVHASH)),
    })
    .await;
    let cfg = config(&s.url);
    let c = Client::new(cfg.clone()).unwrap();
    let mut texts = vec![
        format!("{cfg:?}"),
        format!("{c:?}"),
        format!("{:?}", cfg.credentials),
    ];
    let e1 = c.all_users().await.unwrap_err();
    let e2 = c
        .update_user(&UserUpdate {
            username: email("a@x.io"),
            fullname: Some("x".into()),
            duo_username: None,
            securid_username: None,
        })
        .await
        .unwrap_err();
    let e3 = c.reset_password(&email("a@x.io")).await.unwrap_err();
    for e in [&e1, &e2, &e3] {
        texts.push(format!("{e}"));
        texts.push(format!("{e:?}"));
    }
    assert!(matches!(e1, Error::Decode { .. }));
    assert!(matches!(e2, Error::Failed { .. }));
    for t in &texts {
        assert!(!t.contains(PROVHASH), "secret leaked: {t}");
        assert!(!t.contains(&PROVHASH[..16]), "secret prefix leaked: {t}");
    }
    if let Error::Decode { excerpt, .. } = &e1 {
        assert!(excerpt.chars().count() <= 120);
    }
}
