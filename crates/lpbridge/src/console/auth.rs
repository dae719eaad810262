//! Who is using the console: login with an API key or a console user, sessions, CSRF.
//!
//! - A session is a random cookie (`lpbridge_session`, `HttpOnly`, `SameSite=Lax`, `Secure`
//!   behind an HTTPS proxy) whose SHA-256 is stored ([`crate::store::console`]), so every
//!   replica knows it and a leaked database holds no usable cookie. It expires after
//!   [`SESSION_TTL`] without a request.
//! - A session made with an API key has that key's permissions (read-only, limited to some
//!   connections) and ends when the key is revoked. A console user is a full admin unless it
//!   was created read-only.
//! - Every state-changing request carries the session's CSRF token (a hidden `_csrf` field or
//!   htmx's `X-CSRF-Token` header) and, when the browser sends one, an `Origin` of this host.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use lp_types::Secret;
use maud::html;
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::ui::{self, FormData, Input, Problems};
use crate::error::Error;
use crate::http::App;
use crate::store::console::Principal;
use crate::store::{ApiKeyInfo, KeyPurpose};

pub const SESSION_COOKIE: &str = "lpbridge_session";
pub const FLASH_COOKIE: &str = "lpbridge_flash";
/// A session ends after this long without a request.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The CSRF form field.
pub const CSRF_FIELD: &str = "_csrf";

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The permissions: the API key's, or a console user's as an unrestricted key
    /// (`id` = `user:<name>`).
    pub key: ApiKeyInfo,
    /// What the header shows: `alice`, or `API key k1 (ci)`.
    pub label: String,
    pub csrf: String,
    pub flash: Option<ui::Flash>,
    /// The request came from htmx (answer with fragments and `HX-Redirect`).
    pub htmx: bool,
    user: Option<String>,
}

impl Session {
    /// The id under which this principal owns things (an MSP wizard): the key id, or
    /// `user:<name>`.
    pub fn actor_id(&self) -> &str {
        &self.key.id
    }

    /// How other admins see this principal (the lock message names it).
    pub fn actor_label(&self) -> String {
        match &self.user {
            Some(u) => format!("console user {u}"),
            None => format!("API key {} ({})", self.key.id, self.key.name),
        }
    }

    /// The console user's name, when signed in as one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Refuses a change to a read-only principal.
    pub fn require_write(&self) -> Result<(), Error> {
        crate::http::require_write(&self.key, &self.label)
    }

    /// Refuses connection management to a principal limited to some connections.
    pub fn require_admin(&self) -> Result<(), Error> {
        crate::http::require_admin(&self.key, &self.label)
    }

    pub(crate) async fn from_cookie(app: &App, headers: &HeaderMap) -> Result<Option<Self>, Error> {
        let Some(secret) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let Some(s) = app.store.console_session(&secret, SESSION_TTL).await? else {
            return Ok(None);
        };
        let (key, label, user) = match &s.principal {
            Principal::Key(id) => {
                let Some(k) = app.store.api_key_info(id).await? else {
                    return Ok(None);
                };
                if k.is_revoked() || k.purpose != KeyPurpose::Api {
                    // A revoked key ends its sessions at once.
                    app.store.end_sessions_of(&s.principal).await?;
                    return Ok(None);
                }
                let label = format!("API key {} ({})", k.id, k.name);
                (k, label, None)
            }
            Principal::User(name) => {
                let Some(u) = app.store.console_user(name).await? else {
                    return Ok(None);
                };
                (user_key(&u), u.username.clone(), Some(u.username))
            }
        };
        Ok(Some(Session {
            key,
            label,
            csrf: s.csrf,
            flash: cookie(headers, FLASH_COOKIE).and_then(|v| ui::Flash::decode(&v)),
            htmx: headers.contains_key("hx-request"),
            user,
        }))
    }
}

/// A console user's permissions, in the shape every handler checks.
fn user_key(u: &crate::store::console::ConsoleUser) -> ApiKeyInfo {
    ApiKeyInfo {
        id: format!("user:{}", u.username),
        name: u.username.clone(),
        read_only: u.read_only,
        created_at: u.created_at,
        last_used_at: Some(Utc::now()),
        revoked_at: None,
        connections: None,
        purpose: KeyPurpose::Api,
    }
}

/// A cookie's value.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// `Set-Cookie` attributes: `Secure` when the request reached a proxy over HTTPS.
pub fn cookie_attrs(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if https {
        "; Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Lax"
    }
}

/// Not signed in: to the login page (htmx: a full-page redirect), back here afterwards.
pub struct LoginRequired {
    next: String,
    htmx: bool,
}

impl IntoResponse for LoginRequired {
    fn into_response(self) -> Response {
        let to = format!(
            "{}/login?next={}",
            super::PREFIX,
            url::form_urlencoded::byte_serialize(self.next.as_bytes()).collect::<String>()
        );
        ui::redirect_to(self.htmx, &to)
    }
}

impl FromRequestParts<App> for Session {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        if let Some(s) = parts.extensions.get::<Session>() {
            return Ok(s.clone());
        }
        let htmx = parts.headers.contains_key("hx-request");
        match Session::from_cookie(app, &parts.headers).await {
            Ok(Some(s)) => {
                parts.extensions.insert(s.clone());
                Ok(s)
            }
            Ok(None) => {
                // After an htmx request, return to the page it came from.
                let next = parts
                    .headers
                    .get("hx-current-url")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|u| url::Url::parse(u).ok())
                    .map(|u| match u.query() {
                        Some(q) => format!("{}?{q}", u.path()),
                        None => u.path().to_owned(),
                    })
                    .unwrap_or_else(|| {
                        // The path before `nest` stripped the console's prefix.
                        let uri = parts
                            .extensions
                            .get::<axum::extract::OriginalUri>()
                            .map_or(&parts.uri, |o| &o.0);
                        uri.path_and_query()
                            .map_or_else(|| super::HOME.to_owned(), |p| p.as_str().to_owned())
                    });
                let next = if parts.method == Method::GET {
                    next
                } else {
                    super::HOME.to_owned()
                };
                Err(LoginRequired { next, htmx }.into_response())
            }
            Err(e) => Err(ui::error_page(None, &e)),
        }
    }
}

/// A form posted by a signed-in browser, its CSRF token checked.
pub struct Posted {
    pub session: Session,
    pub form: FormData,
}

impl FromRequest<App> for Posted {
    type Rejection = Response;
    async fn from_request(req: Request, app: &App) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, app).await?;
        let limit = app.settings.max_body_bytes;
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| ui::error_page(Some(&session), &Error::TooLarge { limit }))?;
        let form = FormData::parse(&bytes);
        let presented = form
            .one(CSRF_FIELD)
            .map(str::to_owned)
            .or_else(|| {
                parts
                    .headers
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(session.csrf.as_bytes())) {
            return Err(ui::error_page(
                Some(&session),
                &Error::Forbidden(
                    "this form has expired or did not come from this console; reload the page \
                     and try again (nothing was changed)"
                        .into(),
                ),
            ));
        }
        Ok(Posted { session, form })
    }
}

/// Every console response: security headers; a cross-site `Origin` on a change is refused.
pub async fn guard(req: Request, next: Next) -> Response {
    let cross_site = req.method() != Method::GET
        && req.method() != Method::HEAD
        && match (
            req.headers().get(header::ORIGIN),
            req.headers().get(header::HOST),
        ) {
            (Some(o), Some(h)) => {
                let origin_host = o
                    .to_str()
                    .ok()
                    .and_then(|o| url::Url::parse(o).ok())
                    .map(|u| match u.port() {
                        Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
                        None => u.host_str().unwrap_or_default().to_owned(),
                    });
                origin_host.as_deref() != h.to_str().ok()
            }
            _ => false,
        };
    let mut resp = if cross_site {
        (
            StatusCode::FORBIDDEN,
            "cross-site request refused (Origin does not match Host); nothing was changed",
        )
            .into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Only a path of this console is a place to go back to (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with(super::PREFIX)
                && !n.starts_with("//")
                && !n.contains("://")
                && !n.contains('\\')
                && !n.starts_with(&format!("{}/login", super::PREFIX)) =>
        {
            n.to_owned()
        }
        _ => super::HOME.to_owned(),
    }
}

/// `GET /console/login`.
pub async fn login_page(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    if let Ok(Some(_)) = Session::from_cookie(&app, &headers).await {
        return ui::redirect_to(false, &safe_next(q.next.as_deref()));
    }
    login_form(
        StatusCode::OK,
        &safe_next(q.next.as_deref()),
        "",
        &Problems::default(),
    )
}

fn login_form(status: StatusCode, next: &str, username: &str, p: &Problems) -> Response {
    let body = html! {
        div.login {
            h1 { "Sign in to lpbridge" }
            (ui::error_summary(p))
            section.panel aria-labelledby="user-login" {
                h2 #user-login { "Sign in as a console user" }
                form.stack method="post" action="/console/login" {
                    input type="hidden" name="method" value="user";
                    input type="hidden" name="next" value=(next);
                    (Input::new("username", "Username").value(username).autocomplete("username").required().render(p))
                    (Input::new("password", "Password").kind("password").autocomplete("current-password").required().render(p))
                    div.actions { button type="submit" { "Sign in" } }
                }
            }
            section.panel aria-labelledby="key-login" {
                h2 #key-login { "Sign in with an API key" }
                form.stack method="post" action="/console/login" {
                    input type="hidden" name="method" value="key";
                    input type="hidden" name="next" value=(next);
                    (Input::new("api_key", "API key").kind("password").autocomplete("off")
                        .help("lpk_…: printed by the first `lpbridge serve`, or made with `lpbridge apikey create`")
                        .required().render(p))
                    div.actions { button type="submit" { "Sign in with API key" } }
                }
            }
            p.muted { "No console user yet? Create one with " code { "lpbridge console user add <name>" } "." }
        }
    };
    ui::bare_page(status, "Sign in", body)
}

/// `POST /console/login`: no session yet, so no CSRF token; the `Origin` check and the
/// `SameSite` cookie stand in.
pub async fn login(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    let next = safe_next(form.one("next"));
    let mut p = Problems::default();
    let username = form.one("username").unwrap_or_default().trim().to_owned();
    let principal = match form.one("method") {
        Some("key") => {
            let key = form.one("api_key").unwrap_or_default().trim();
            if key.is_empty() {
                p.field("api_key", "Enter an API key");
                None
            } else {
                match app.store.verify_api_key(key).await {
                    Ok(Some(k)) if k.purpose == KeyPurpose::Api => Some(Principal::Key(k.id)),
                    Ok(Some(k)) => {
                        p.field(
                            "api_key",
                            format!("key {} is a SCIM token: it works only under /scim/v2", k.id),
                        );
                        None
                    }
                    Ok(None) => {
                        p.field("api_key", "This API key is unknown or revoked");
                        None
                    }
                    Err(e) => return ui::error_page(None, &e.into()),
                }
            }
        }
        _ => {
            let password = Secret::new(form.one("password").unwrap_or_default());
            if username.is_empty() {
                p.field("username", "Enter your username");
            }
            if password.is_empty() {
                p.field("password", "Enter your password");
            }
            if !p.is_empty() {
                None
            } else if let Some(wait) = throttle::wait(&username) {
                // Not even checked: a guesser learns nothing while it waits.
                p.field(
                    "password",
                    format!(
                        "Too many failed sign-ins for this username: try again in {} s",
                        wait.as_secs().max(1)
                    ),
                );
                return login_form(StatusCode::TOO_MANY_REQUESTS, &next, &username, &p);
            } else {
                match app.store.verify_console_user(&username, &password).await {
                    Ok(Some(u)) => {
                        throttle::succeeded(&username);
                        Some(Principal::User(u.username))
                    }
                    Ok(None) => {
                        throttle::failed(&username);
                        // One message for both: which half was wrong is not told.
                        p.field("password", "The username or the password is wrong");
                        None
                    }
                    Err(e) => return ui::error_page(None, &e.into()),
                }
            }
        }
    };
    let Some(principal) = principal else {
        tracing::info!(target: "lpbridge::console", "console login refused");
        return login_form(StatusCode::UNPROCESSABLE_ENTITY, &next, &username, &p);
    };
    let (_, secret) = match app
        .store
        .create_console_session(&principal, SESSION_TTL)
        .await
    {
        Ok(x) => x,
        Err(e) => return ui::error_page(None, &e.into()),
    };
    tracing::info!(target: "lpbridge::console", principal = ?principal, "console login");
    let mut resp = ui::redirect_to(false, &next);
    let value = format!(
        "{SESSION_COOKIE}={}{}; Max-Age={}",
        secret.expose(),
        cookie_attrs(&headers),
        SESSION_TTL.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /console/logout`.
pub async fn logout(State(app): State<App>, headers: HeaderMap, posted: Posted) -> Response {
    if let Some(c) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = app.store.end_console_session(&c).await
    {
        return ui::error_page(Some(&posted.session), &e.into());
    }
    let mut resp = ui::redirect_to(posted.session.htmx, &format!("{}/login", super::PREFIX));
    let value = format!("{SESSION_COOKIE}={}; Max-Age=0", cookie_attrs(&headers));
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Password guessing: after [`FREE_FAILURES`] failed sign-ins in a row for one username, each
/// further attempt waits twice as long as the one before (2 s, 4 s, … at most 15 min) since the
/// last failure. A success resets it. Kept per process (a replica throttles what it sees);
/// API keys need none (their secrets are 256-bit random).
mod throttle {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use parking_lot::Mutex;

    pub const FREE_FAILURES: u32 = 5;
    const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
    /// Entries idle this long are forgotten (bounds the map under a spray of names).
    const FORGET: Duration = Duration::from_secs(3600);

    fn failures() -> &'static Mutex<HashMap<String, (u32, Instant)>> {
        static F: OnceLock<Mutex<HashMap<String, (u32, Instant)>>> = OnceLock::new();
        F.get_or_init(|| Mutex::new(HashMap::new()))
    }

    fn key(username: &str) -> String {
        username.trim().to_lowercase()
    }

    fn delay(n: u32) -> Duration {
        if n < FREE_FAILURES {
            return Duration::ZERO;
        }
        let exp = (n - FREE_FAILURES + 1).min(20);
        Duration::from_secs(1u64 << exp).min(MAX_WAIT)
    }

    /// How long this username must still wait, if at all.
    pub fn wait(username: &str) -> Option<Duration> {
        let map = failures().lock();
        let (n, last) = map.get(&key(username))?;
        delay(*n)
            .checked_sub(last.elapsed())
            .filter(|d| !d.is_zero())
    }

    pub fn failed(username: &str) {
        let mut map = failures().lock();
        if map.len() > 10_000 {
            map.retain(|_, (_, last)| last.elapsed() < FORGET);
        }
        let e = map.entry(key(username)).or_insert((0, Instant::now()));
        e.0 = e.0.saturating_add(1);
        e.1 = Instant::now();
    }

    pub fn succeeded(username: &str) {
        failures().lock().remove(&key(username));
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_delay_doubles_after_the_free_failures_and_is_capped() {
            assert_eq!(delay(0), Duration::ZERO);
            assert_eq!(delay(FREE_FAILURES - 1), Duration::ZERO);
            assert_eq!(delay(FREE_FAILURES), Duration::from_secs(2));
            assert_eq!(delay(FREE_FAILURES + 1), Duration::from_secs(4));
            assert_eq!(delay(u32::MAX), MAX_WAIT);
        }
    }
}
