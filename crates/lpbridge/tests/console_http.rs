//! The console's front door, in-process (no socket, no browser): login with an API key or a
//! console user, session cookies, CSRF and cross-site refusals, redirects that cannot leave
//! the console, security headers, embedded assets. The pages themselves are tested in a real
//! browser (`e2e/`).

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use lp_types::Secret;
use lpbridge::http::{self, App, Settings};
use lpbridge::store::Store;
use tower::ServiceExt;

struct T {
    router: Router,
    store: Store,
    key: String,
    _dir: tempfile::TempDir,
}

async fn spawn() -> T {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let (_, key) = store.create_api_key("ops", false).await.unwrap();
    store
        .create_console_user("alice", &Secret::new("alice-long-password"), false)
        .await
        .unwrap();
    let app = App::new(store.clone(), Settings::default());
    T {
        router: http::router(app),
        store,
        key: key.expose().to_owned(),
        _dir: dir,
    }
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl T {
    async fn send(&self, req: Request<Body>) -> Resp {
        let r = self.router.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Resp {
        let mut b = Request::get(path).header(header::HOST, "console.test");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &str) -> Resp {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, "console.test")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        self.send(b.body(Body::from(form.to_owned())).unwrap())
            .await
    }

    /// Signs in; returns the `name=value` of the session cookie.
    async fn login(&self, form: &str) -> String {
        let r = self.post("/console/login", None, form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let c = r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        c.split(';').next().unwrap().to_owned()
    }

    async fn csrf(&self, cookie: &str) -> String {
        let page = self.get("/console/connections", Some(cookie)).await;
        assert_eq!(page.status, StatusCode::OK);
        let at = page.body.find("name=\"csrf-token\" content=\"").unwrap() + 27;
        page.body[at..at + 32].to_owned()
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_page_asks_for_login_and_comes_back_afterwards() {
    let t = spawn().await;
    let r = t.get("/", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/console/connections");
    let r = t.get("/console/events?category=user", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers[header::LOCATION],
        "/console/login?next=%2Fconsole%2Fevents%3Fcategory%3Duser"
    );
    // htmx gets a full-page redirect instead of a login form swapped into a fragment.
    let req = Request::get("/console/events")
        .header("hx-request", "true")
        .body(Body::empty())
        .unwrap();
    let r = t.send(req).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        r.headers["hx-redirect"]
            .to_str()
            .unwrap()
            .starts_with("/console/login?next=")
    );

    let form = format!(
        "method=key&api_key={}&next={}",
        enc(&t.key),
        enc("/console/events?category=user")
    );
    let r = t.post("/console/login", None, &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/console/events?category=user");
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
}

#[tokio::test]
async fn next_never_leaves_the_console() {
    let t = spawn().await;
    for evil in [
        "https://evil.example/",
        "//evil.example/console",
        "/console\\@evil.example",
        "/unified/iam/users",
        "/console/login",
    ] {
        let form = format!("method=key&api_key={}&next={}", enc(&t.key), enc(evil));
        let r = t.post("/console/login", None, &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers[header::LOCATION],
            "/console/connections",
            "{evil}"
        );
    }
}

#[tokio::test]
async fn bad_credentials_are_refused_next_to_their_field() {
    let t = spawn().await;
    let r = t
        .post(
            "/console/login",
            None,
            "method=user&username=alice&password=wrong-password-123",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("The username or the password is wrong"));
    assert!(r.body.contains("aria-invalid=\"true\""));
    // The password is never sent back; the username is kept.
    assert!(!r.body.contains("wrong-password-123"));
    assert!(r.body.contains("value=\"alice\""));
    assert!(r.headers.get(header::SET_COOKIE).is_none());

    let r = t
        .post("/console/login", None, "method=user&username=&password=")
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Enter your username") && r.body.contains("Enter your password"));

    let (_, scim) = t
        .store
        .create_scim_token("okta", &lp_types::ConnectionId::new("acme").unwrap())
        .await
        .unwrap();
    let r = t
        .post(
            "/console/login",
            None,
            &format!("method=key&api_key={}", enc(scim.expose())),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("is a SCIM token"), "{}", r.body);
    let r = t
        .post(
            "/console/login",
            None,
            "method=key&api_key=lpb_nothing_here",
        )
        .await;
    assert!(r.body.contains("This API key is unknown or revoked"));
}

#[tokio::test]
async fn a_session_ends_with_its_key_or_its_user() {
    let t = spawn().await;
    let (info, key) = t.store.create_api_key("temp", true).await.unwrap();
    let cookie = t
        .login(&format!("method=key&api_key={}", enc(key.expose())))
        .await;
    let page = t.get("/console/connections", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("(read-only)"), "a read-only key says so");
    t.store.revoke_api_key(&info.id).await.unwrap();
    let r = t.get("/console/connections", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "revoked key: signed out");

    let cookie = t
        .login("method=user&username=Alice&password=alice-long-password")
        .await;
    assert_eq!(
        t.get("/console/connections", Some(&cookie)).await.status,
        StatusCode::OK
    );
    t.store.delete_console_user("alice").await.unwrap();
    let r = t.get("/console/connections", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "removed user: signed out");
}

#[tokio::test]
async fn changes_need_the_csrf_token_and_a_same_site_origin() {
    let t = spawn().await;
    let cookie = t
        .login(&format!("method=key&api_key={}", enc(&t.key)))
        .await;
    let csrf = t.csrf(&cookie).await;
    // No token, a wrong token: refused, still signed in.
    for form in [String::new(), "_csrf=forged".to_owned()] {
        let r = t.post("/console/logout", Some(&cookie), &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{form}");
        assert!(r.body.contains("nothing was changed"));
    }
    // A cross-site Origin is refused before the handler runs, even with the token.
    let req = Request::post("/console/logout")
        .header(header::HOST, "console.test")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("_csrf={csrf}")))
        .unwrap();
    assert_eq!(t.send(req).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.get("/console/connections", Some(&cookie)).await.status,
        StatusCode::OK
    );
    // The htmx header carries the token as well as the field does.
    let req = Request::post("/console/logout")
        .header(header::HOST, "console.test")
        .header(header::ORIGIN, "http://console.test")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .body(Body::empty())
        .unwrap();
    assert_eq!(t.send(req).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        t.get("/console/connections", Some(&cookie)).await.status,
        StatusCode::SEE_OTHER,
        "logged out"
    );
}

#[tokio::test]
async fn the_console_cookie_does_not_open_the_json_api() {
    let t = spawn().await;
    let cookie = t
        .login(&format!("method=key&api_key={}", enc(&t.key)))
        .await;
    let r = t.get("/connections", Some(&cookie)).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the JSON API takes keys only"
    );
}

#[tokio::test]
async fn pages_carry_security_headers_and_assets_are_embedded() {
    let t = spawn().await;
    let login = t.get("/console/login", None).await;
    assert_eq!(login.status, StatusCode::OK);
    let csp = login.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(login.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(login.headers[header::CACHE_CONTROL], "no-store");
    // Every script and stylesheet comes from this server, by a content-hashed name.
    let mut assets = 0;
    for attr in ["src=\"", "href=\""] {
        for part in login.body.split(attr).skip(1) {
            let url = &part[..part.find('"').unwrap()];
            if url.starts_with('#') || url.starts_with("data:") {
                continue;
            }
            assert!(url.starts_with("/console/"), "{url}");
            if url.starts_with("/console/assets/") {
                assets += 1;
                let r = t.get(url, None).await;
                assert_eq!(r.status, StatusCode::OK, "{url}");
                assert!(
                    r.headers[header::CACHE_CONTROL]
                        .to_str()
                        .unwrap()
                        .contains("immutable")
                );
                assert!(!r.body.is_empty());
            }
        }
    }
    assert_eq!(assets, 3, "htmx, console.js, console.css");
    assert_eq!(
        t.get("/console/assets/htmx-00000000.js", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn password_guessing_is_slowed_down_per_username() {
    let t = spawn().await;
    t.store
        .create_console_user("carol", &Secret::new("carol-long-password"), false)
        .await
        .unwrap();
    for _ in 0..5 {
        let r = t
            .post(
                "/console/login",
                None,
                "method=user&username=carol&password=guess-guess-1",
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Now even the right password waits, and says for how long; nothing is checked meanwhile.
    let r = t
        .post(
            "/console/login",
            None,
            "method=user&username=CAROL&password=carol-long-password",
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(
        r.body
            .contains("Too many failed sign-ins for this username: try again in")
    );
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    // Another username is not affected.
    t.login("method=user&username=alice&password=alice-long-password")
        .await;
}

#[tokio::test]
async fn a_webhook_needs_an_existing_connection_and_a_search_error_stays_in_its_box() {
    let t = spawn().await;
    let cookie = t
        .login(&format!("method=key&api_key={}", enc(&t.key)))
        .await;
    let csrf = t.csrf(&cookie).await;
    // No connection "ghost": refused next to the field, nothing stored (a webhook made for a
    // name added later would receive that account's whole audit log).
    let r = t
        .post(
            "/console/webhooks",
            Some(&cookie),
            &format!(
                "_csrf={csrf}&conn=ghost&url={}",
                enc("https://hooks.example/x")
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("Choose a connection you may use."));
    assert!(t.store.list_webhooks(None).await.unwrap().is_empty());
    // The directory's search box asks for its results alone; a failure answers in that box,
    // not with a whole page inside it.
    let req = Request::get("/console/directory?connection=nope&q=a")
        .header(header::HOST, "console.test")
        .header(header::COOKIE, &cookie)
        .header("hx-request", "true")
        .header("hx-target", "users-results")
        .body(Body::empty())
        .unwrap();
    let r = t.send(req).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(
        r.body.starts_with("<div id=\"users-results\">"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("<nav"), "{}", r.body);
}
