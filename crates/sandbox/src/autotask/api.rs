//! The Autotask HTTP surface: discovery (`versioninformation`, `zoneInformation`), header auth,
//! `{Entity}/query[/next|/count]`, `GET {Entity}/{id}`, `Companies/{id}/Contacts`,
//! `entityInformation/fields`, `ThresholdInformation`, the thread and hourly limits and the fault
//! rules, in that order of evaluation for every request.
//!
//! Paging cursors are stateless: `paging` holds the start id of the next page, the page size, the
//! method the query came with and a fingerprint of the query, so any replica (and a restarted
//! emulator) can continue a listing, and a continuation with another query is refused.

// `Err` here is the finished HTTP answer, built once per refused request: its size is irrelevant.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::data::{
    Company, Contact, Db, Entity, EntityKind, Rendered, field_index, fields_json, render,
};
use super::faults::FaultKind;
use super::filter::{Query, QueryError, parse_query};
use super::{Autotask, Settings};

pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// 500 for an unknown or blank username at zone lookup [AT5][AT7].
pub const ZONE_ERROR: &str = "Zone information could not be determined";
/// 500 for valid credentials with a bad integration code [AT5][AT7: apigrate#19].
pub const INTEGRATION_CODE_ERROR: &str = "IntegrationCode is invalid.";
/// 401 for a bad secret (test mocks use it: weak).
pub const AUTH_FAILED: &str = "Authentication failed";
/// 401 for a locked user (SOAP-era text [AT7: Sample-Code#2]).
pub const LOCKED_MESSAGE: &str =
    "The user account has been locked. Please see your Autotask Administrator for details.";
/// Permission refusals, as 403 or 500 [AT4].
pub const PERMISSION_MESSAGE: &str =
    "The logged in Resource does not have the adequate permissions to query this entity type.";

/// The thread-limit message [AT7: n8n-nodes-autotask PR#107] for `limit` threads.
pub fn thread_limit_message(limit: usize) -> String {
    format!(
        "Thread Threshold Exceeded — The Autotask API thread threshold of {limit} threads has been exceeded."
    )
}

/// The hourly threshold message (**GUESS**: the wording is not documented).
pub fn threshold_message(limit: u64) -> String {
    format!(
        "Request threshold exceeded: the database has made {limit} or more requests in the last 60 minutes. API access is suspended until usage drops."
    )
}

/// The Web API's 405 body [AT7: autotask-mcp PR#170].
pub fn method_not_allowed_message(method: &Method) -> String {
    format!("The requested resource does not support http method '{method}'.")
}

/// The IIS error page served by `html` faults.
fn html_page(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!(
        "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\r\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"/>\r\n<title>{status} - {reason}</title>\r\n</head>\r\n<body>\r\n<div id=\"header\"><h1>Server Error</h1></div>\r\n<div id=\"content\">\r\n <div class=\"content-container\"><fieldset>\r\n  <h2>{status} - {reason}</h2>\r\n  <h3>The page cannot be displayed because an internal server error has occurred.</h3>\r\n </fieldset></div>\r\n</div>\r\n</body>\r\n</html>\r\n"
    )
}

fn respond(status: StatusCode, body: Vec<u8>, content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    respond(
        status,
        serde_json::to_vec(v).unwrap_or_default(),
        JSON_CONTENT_TYPE,
    )
}

/// `{"errors":[message]}` with `status`.
pub fn errors(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "errors": [message] }))
}

fn web_api_message(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "Message": message }))
}

fn with_retry_after(mut r: Response, secs: Option<u64>) -> Response {
    if let Some(s) = secs {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// A 429 `{"errors":[message]}`, with `Retry-After` when configured.
fn too_many(message: &str, retry_after: Option<u64>) -> Response {
    with_retry_after(errors(StatusCode::TOO_MANY_REQUESTS, message), retry_after)
}

/// Which operation a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Versions,
    Zone,
    Threshold,
    Query(EntityKind),
    Next(EntityKind),
    Count(EntityKind),
    Fields(EntityKind),
    ById(EntityKind, i64),
    Children(i64),
    NotFound,
}

impl Route {
    /// Parses a path below the mount point, case-insensitively.
    pub fn parse(path: &str) -> Route {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let is = |s: &str, want: &str| s.eq_ignore_ascii_case(want);
        let Some((first, rest)) = segs.split_first() else {
            return Route::NotFound;
        };
        if !is(first, "atservicesrest") {
            return Route::NotFound;
        }
        match rest {
            [v] if is(v, "versioninformation") => Route::Versions,
            [ver, tail @ ..] if is(ver, "v1.0") => match tail {
                [z] if is(z, "zoneinformation") => Route::Zone,
                [t] if is(t, "thresholdinformation") => Route::Threshold,
                [e, rest @ ..] => {
                    let Some(kind) = EntityKind::from_segment(e) else {
                        return Route::NotFound;
                    };
                    match rest {
                        [q] if is(q, "query") => Route::Query(kind),
                        [q, n] if is(q, "query") && is(n, "next") => Route::Next(kind),
                        [q, c] if is(q, "query") && is(c, "count") => Route::Count(kind),
                        [i, f] if is(i, "entityinformation") && is(f, "fields") => {
                            Route::Fields(kind)
                        }
                        [id] => id
                            .parse()
                            .map_or(Route::NotFound, |id| Route::ById(kind, id)),
                        [id, c] if kind == EntityKind::Companies && is(c, "contacts") => {
                            id.parse().map_or(Route::NotFound, Route::Children)
                        }
                        _ => Route::NotFound,
                    }
                }
                _ => Route::NotFound,
            },
            _ => Route::NotFound,
        }
    }

    /// `(endpoint, op)`: the thread-limit key and the fault-matching labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Route::Versions => ("VersionInformation", "versions"),
            Route::Zone => ("ZoneInformation", "zone"),
            Route::Threshold => ("ThresholdInformation", "threshold"),
            Route::Query(k) => (k.path(), "query"),
            Route::Next(k) => (k.path(), "next"),
            Route::Count(k) => (k.path(), "count"),
            Route::Fields(k) => (k.path(), "fields"),
            Route::ById(k, _) => (k.path(), "get"),
            Route::Children(_) => ("Companies", "children"),
            Route::NotFound => ("(unknown)", "unknown"),
        }
    }

    /// The counter key, e.g. `Companies/query/next`.
    pub fn counter_key(self) -> String {
        match self {
            Route::Versions => "VersionInformation".into(),
            Route::Zone => "ZoneInformation".into(),
            Route::Threshold => "ThresholdInformation".into(),
            Route::Query(k) => format!("{}/query", k.path()),
            Route::Next(k) => format!("{}/query/next", k.path()),
            Route::Count(k) => format!("{}/query/count", k.path()),
            Route::Fields(k) => format!("{}/entityInformation/fields", k.path()),
            Route::ById(k, _) => format!("{}/{{id}}", k.path()),
            Route::Children(_) => "Companies/{id}/Contacts".into(),
            Route::NotFound => "(unknown)".into(),
        }
    }

    fn allows(self, m: &Method) -> bool {
        match self {
            Route::Query(_) | Route::Count(_) | Route::Next(_) => {
                *m == Method::GET || *m == Method::POST
            }
            _ => *m == Method::GET,
        }
    }
}

/// Where the emulator is reached, for the URLs it hands out.
struct Site {
    /// `http://host/autotask`
    base: String,
}

impl Site {
    fn zone(&self) -> String {
        format!("{}/ATServicesRest", self.base)
    }
}

fn site(headers: &HeaderMap, orig: &Uri, uri: &Uri) -> Site {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let prefix = orig
        .path()
        .strip_suffix(uri.path())
        .unwrap_or("")
        .trim_end_matches('/');
    Site {
        base: format!("http://{host}{prefix}"),
    }
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query()?).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The header check: username, then secret (401), then integration code (500) [AT5][AT7].
fn authenticate(at: &Autotask, headers: &HeaderMap, settings: &Settings) -> Result<(), Response> {
    let creds = &at.shared.config;
    let unauthorized = |s: &Settings| {
        at.faults().note(|st| st.auth_failed += 1);
        if s.empty_401_body {
            respond(StatusCode::UNAUTHORIZED, Vec::new(), JSON_CONTENT_TYPE)
        } else {
            errors(StatusCode::UNAUTHORIZED, AUTH_FAILED)
        }
    };
    let user = header_str(headers, "UserName").unwrap_or("");
    if !user.eq_ignore_ascii_case(&creds.username) {
        return Err(unauthorized(settings));
    }
    if settings.locked {
        at.faults().note(|st| st.auth_failed += 1);
        return Err(errors(StatusCode::UNAUTHORIZED, LOCKED_MESSAGE));
    }
    if header_str(headers, "Secret") != Some(creds.secret.as_str()) {
        let locked_now = at.update_settings(|s| {
            s.failed_logins += 1;
            if s.lock_after_failures.is_some_and(|n| s.failed_logins >= n) {
                s.locked = true;
            }
            s.locked
        });
        if locked_now {
            at.faults().note(|st| st.auth_failed += 1);
            return Err(errors(StatusCode::UNAUTHORIZED, LOCKED_MESSAGE));
        }
        return Err(unauthorized(settings));
    }
    at.update_settings(|s| s.failed_logins = 0);
    if header_str(headers, "ApiIntegrationCode") != Some(creds.integration_code.as_str()) {
        at.faults().note(|st| st.auth_failed += 1);
        return Err(errors(
            StatusCode::INTERNAL_SERVER_ERROR,
            INTEGRATION_CODE_ERROR,
        ));
    }
    Ok(())
}

fn forbidden(status: u16) -> Response {
    let s = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    errors(s, PERMISSION_MESSAGE)
}

/// The one handler behind [`super::router`].
pub async fn dispatch(
    State(at): State<Autotask>,
    OriginalUri(orig): OriginalUri,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let route = Route::parse(uri.path());
    at.faults().count(&route.counter_key());
    let site = site(&headers, &orig, &uri);
    if route == Route::NotFound {
        return web_api_message(
            StatusCode::NOT_FOUND,
            &format!(
                "No HTTP resource was found that matches the request URI '{}{}'.",
                site.base,
                uri.path_and_query().map_or("", |p| p.as_str())
            ),
        );
    }
    if !route.allows(&method) {
        return web_api_message(
            StatusCode::METHOD_NOT_ALLOWED,
            &method_not_allowed_message(&method),
        );
    }
    let settings = at.settings();
    let (endpoint, op) = route.labels();
    // Discovery is unauthenticated and exempt from the limits [AT6].
    let _slot = if matches!(route, Route::Versions | Route::Zone) {
        None
    } else {
        if let Err(r) = authenticate(&at, &headers, &settings) {
            return r;
        }
        let denied = match route {
            Route::Children(_) => !settings.can_read_companies || !settings.can_read_contacts,
            Route::Query(k) | Route::Next(k) | Route::Count(k) | Route::ById(k, _) => match k {
                EntityKind::Companies => !settings.can_read_companies,
                EntityKind::Contacts => !settings.can_read_contacts,
            },
            _ => false,
        };
        if denied {
            return forbidden(settings.forbidden_status);
        }
        if !at.faults().take_hourly(settings.hourly_limit) {
            let limit = settings.hourly_limit.unwrap_or(0);
            return too_many(&threshold_message(limit), settings.limit_retry_after);
        }
        let Some(slot) = at.faults().enter(endpoint, settings.thread_limit) else {
            return too_many(
                &thread_limit_message(settings.thread_limit),
                settings.limit_retry_after,
            );
        };
        if settings.usage_latency
            && let Some(limit) = settings.hourly_limit.filter(|l| *l > 0)
        {
            let ratio = at.faults().usage() as f64 / limit as f64;
            let ms = if ratio >= 0.75 {
                1000
            } else if ratio >= 0.5 {
                500
            } else {
                0
            };
            if ms > 0 {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
        Some(slot)
    };
    let decision = at.faults().decide(endpoint, op);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let mut truncate = false;
    if let Some(fault) = decision.fault {
        match fault {
            FaultKind::Status {
                status,
                message,
                retry_after,
            } => {
                let s = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let msg = message.unwrap_or_else(|| default_message(s));
                return with_retry_after(errors(s, &msg), retry_after);
            }
            FaultKind::Html { status } => {
                let s = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                return respond(s, html_page(status).into_bytes(), "text/html");
            }
            FaultKind::ErrorsIn200 { message } => {
                let msg = message.unwrap_or_else(|| {
                    "An unexpected error has occurred. Please try again.".into()
                });
                return errors(StatusCode::OK, &msg);
            }
            FaultKind::ThreadLimit => {
                return too_many(
                    &thread_limit_message(settings.thread_limit),
                    settings.limit_retry_after,
                );
            }
            FaultKind::Threshold => {
                return too_many(
                    &threshold_message(settings.hourly_limit.unwrap_or(10_000)),
                    settings.limit_retry_after,
                );
            }
            FaultKind::Permission { status } => return forbidden(status),
            FaultKind::Locked => return errors(StatusCode::UNAUTHORIZED, LOCKED_MESSAGE),
            FaultKind::Truncate => truncate = true,
            FaultKind::Latency { .. } => {}
        }
    }
    let resp = handle(&at, route, &method, &uri, &body, &site, &settings);
    if truncate {
        return truncated(resp).await;
    }
    resp
}

fn default_message(s: StatusCode) -> String {
    match s.as_u16() {
        429 => "Too many requests.".into(),
        500 => "An unexpected error has occurred.".into(),
        502 => "Bad Gateway".into(),
        503 => "The service is unavailable.".into(),
        504 => "Gateway Timeout".into(),
        _ => s.canonical_reason().unwrap_or("Error").into(),
    }
}

async fn truncated(resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let cut = bytes.len() / 2;
    let mut r = Response::from_parts(parts, Body::from(bytes.slice(..cut)));
    r.headers_mut().remove(header::CONTENT_LENGTH);
    r
}

fn handle(
    at: &Autotask,
    route: Route,
    method: &Method,
    uri: &Uri,
    body: &Bytes,
    site: &Site,
    settings: &Settings,
) -> Response {
    match route {
        Route::Versions => json_response(StatusCode::OK, &json!({"apiVersions": ["v1.0"]})),
        Route::Zone => zone(at, uri, site),
        Route::Threshold => json_response(
            StatusCode::OK,
            &json!({
                "externalRequestThreshold": settings.hourly_limit.unwrap_or(0),
                "requestThresholdTimeframe": 60,
                "currentTimeframeRequestCount": at.faults().usage(),
            }),
        ),
        Route::Fields(EntityKind::Companies) => {
            json_response(StatusCode::OK, &fields_json::<Company>())
        }
        Route::Fields(EntityKind::Contacts) => {
            json_response(StatusCode::OK, &fields_json::<Contact>())
        }
        Route::Query(k) | Route::Next(k) | Route::Count(k) => {
            let r = match k {
                EntityKind::Companies => at
                    .read(|db| query::<Company>(&db.companies, db, route, method, uri, body, site)),
                EntityKind::Contacts => {
                    at.read(|db| query::<Contact>(&db.contacts, db, route, method, uri, body, site))
                }
            };
            r.unwrap_or_else(|e| e)
        }
        Route::ById(k, id) => {
            let item = at.read(|db| match k {
                EntityKind::Companies => db.companies.get(&id).map(|c| render(c, None)),
                EntityKind::Contacts => db.contacts.get(&id).map(|c| render(c, None)),
            });
            match item {
                None if settings.missing_item_404 => web_api_message(
                    StatusCode::NOT_FOUND,
                    &format!("No {} found with id {id}.", k.singular()),
                ),
                item => json_response(StatusCode::OK, &json!({ "item": item })),
            }
        }
        Route::Children(company) => at
            .read(|db| children(db, company, uri, site))
            .unwrap_or_else(|e| e),
        Route::NotFound => web_api_message(StatusCode::NOT_FOUND, "Not found."),
    }
}

fn zone(at: &Autotask, uri: &Uri, site: &Site) -> Response {
    let user = query_param(uri, "user").unwrap_or_default();
    let c = &at.shared.config;
    if user.trim().is_empty() || !user.trim().eq_ignore_ascii_case(&c.username) {
        return errors(StatusCode::INTERNAL_SERVER_ERROR, ZONE_ERROR);
    }
    json_response(
        StatusCode::OK,
        &json!({
            "zoneName": c.zone_name,
            "url": format!("{}/", site.zone()),
            "webUrl": format!("{}/", site.base),
            "ci": c.ci,
        }),
    )
}

/// The `paging` parameter of a `nextPageUrl` / `prevPageUrl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    pub page_size: u64,
    /// The first id of the page this cursor points at.
    pub next_ids: Vec<i64>,
    /// `POST` or `GET`: how the query came, and so how it must be continued.
    pub origin: String,
    /// Fingerprint of the query (hex).
    pub query: String,
}

fn bad_request(e: QueryError) -> Response {
    errors(StatusCode::BAD_REQUEST, &e.0)
}

fn page_url(site: &Site, path: &str, cursor: &Cursor, search: Option<&str>) -> String {
    let paging = serde_json::to_string(cursor).unwrap_or_default();
    let mut q = vec![("paging", paging.as_str())];
    if let Some(s) = search {
        q.push(("search", s));
    }
    let qs = serde_urlencoded::to_string(&q).unwrap_or_default();
    format!("{}/V1.0/{path}?{qs}", site.zone())
}

type Answer = Result<Response, Response>;

/// Reads the query of a request: the body of a POST, `?search=` of a GET.
fn read_query<T: Entity>(
    method: &Method,
    uri: &Uri,
    body: &Bytes,
) -> Result<(Query, Option<String>), Response> {
    let (value, search) = if *method == Method::POST {
        let v: Value = serde_json::from_slice(body).map_err(|_| {
            bad_request(QueryError("The request body is not a valid query.".into()))
        })?;
        (v, None)
    } else {
        let Some(s) = query_param(uri, "search") else {
            return Err(bad_request(QueryError(
                "The search parameter is required.".into(),
            )));
        };
        let v: Value = serde_json::from_str(&s).map_err(|_| {
            bad_request(QueryError(
                "The search parameter is not a valid query.".into(),
            ))
        })?;
        (v, Some(s))
    };
    let q = parse_query::<T>(&value).map_err(bad_request)?;
    Ok((q, search))
}

fn query<T: Entity>(
    rows: &BTreeMap<i64, T>,
    db: &Db,
    route: Route,
    method: &Method,
    uri: &Uri,
    body: &Bytes,
    site: &Site,
) -> Answer {
    let origin = method.as_str().to_string();
    let (q, search, start) = match route {
        Route::Next(_) => {
            let cursor: Cursor = query_param(uri, "paging")
                .and_then(|p| serde_json::from_str(&p).ok())
                .ok_or_else(|| {
                    bad_request(QueryError("The paging parameter is not valid.".into()))
                })?;
            // The trap of reference §2.7: a POSTed query continues only with POST.
            if cursor.origin == "POST" && *method != Method::POST {
                return Err(web_api_message(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &method_not_allowed_message(method),
                ));
            }
            let (q, search) = read_query::<T>(method, uri, body)?;
            if format!("{:016x}", q.fingerprint) != cursor.query
                || q.max_records != cursor.page_size
            {
                return Err(bad_request(QueryError(
                    "The query does not match the paging cursor.".into(),
                )));
            }
            let start = cursor.next_ids.first().copied().unwrap_or(i64::MIN);
            (q, search, start)
        }
        _ => {
            let (q, search) = read_query::<T>(method, uri, body)?;
            (q, search, i64::MIN)
        }
    };
    let candidates = pinned::<T>(db, &q);
    let matches = |r: &T| q.filter.matches(r);
    if let Route::Count(_) = route {
        let n = match &candidates {
            Some(ids) => ids
                .iter()
                .filter_map(|id| rows.get(id))
                .filter(|r| matches(r))
                .count(),
            None => rows.values().filter(|r| matches(r)).count(),
        };
        return Ok(json_response(StatusCode::OK, &json!({ "queryCount": n })));
    }
    let limit = q.max_records as usize;
    let forward: Box<dyn Iterator<Item = &T>> = match &candidates {
        Some(ids) => {
            let from = ids.partition_point(|id| *id < start);
            Box::new(ids[from..].iter().filter_map(|id| rows.get(id)))
        }
        None => Box::new(rows.range(start..).map(|(_, r)| r)),
    };
    let mut page: Vec<&T> = Vec::with_capacity(limit.min(rows.len()));
    let mut next = None;
    for r in forward.filter(|r| matches(r)) {
        if page.len() == limit {
            next = Some(r.id());
            break;
        }
        page.push(r);
    }
    // [AT6]: past 500 rows, `IncludeFields` must hold `id` (counted only when it matters).
    let over_500 = || match &candidates {
        Some(ids) => {
            ids.iter()
                .filter_map(|id| rows.get(id))
                .filter(|r| matches(r))
                .count()
                > 500
        }
        None => rows.values().filter(|r| matches(r)).count() > 500,
    };
    if next.is_some() && !q.includes_id && over_500() {
        return Err(bad_request(QueryError(
            "IncludeFields must include id when the query returns more than 500 records.".into(),
        )));
    }
    // The previous page's start: walk back `limit` matches from this page's first row.
    let prev = if start == i64::MIN {
        None
    } else {
        let backward: Box<dyn Iterator<Item = &T>> = match &candidates {
            Some(ids) => {
                let to = ids.partition_point(|id| *id < start);
                Box::new(ids[..to].iter().rev().filter_map(|id| rows.get(id)))
            }
            None => Box::new(rows.range(..start).rev().map(|(_, r)| r)),
        };
        backward
            .filter(|r| matches(r))
            .take(limit)
            .last()
            .map(|r| r.id())
    };
    let path = format!("{}/query/next", T::KIND.path());
    let mk = |id: i64| {
        let c = Cursor {
            page_size: q.max_records,
            next_ids: vec![id],
            origin: origin.clone(),
            query: format!("{:016x}", q.fingerprint),
        };
        page_url(site, &path, &c, search.as_deref())
    };
    let count = page.len();
    let out = PageOut {
        items: page
            .into_iter()
            .map(|row| Rendered {
                row,
                include: q.include.as_ref(),
            })
            .collect(),
        page_details: PageDetails {
            count,
            request_count: q.max_records,
            prev_page_url: prev.map(mk),
            next_page_url: next.map(mk),
        },
    };
    Ok(respond(
        StatusCode::OK,
        serde_json::to_vec(&out).unwrap_or_default(),
        JSON_CONTENT_TYPE,
    ))
}

/// `{"items":[…],"pageDetails":{…}}`, serialized without building a `Value`.
#[derive(Serialize)]
#[serde(bound = "")]
struct PageOut<'a, T: Entity> {
    items: Vec<Rendered<'a, T>>,
    #[serde(rename = "pageDetails")]
    page_details: PageDetails,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageDetails {
    count: usize,
    request_count: u64,
    prev_page_url: Option<String>,
    next_page_url: Option<String>,
}

/// Sorted candidate ids when a contact query pins `companyID` (eq / in) at its top level.
fn pinned<T: Entity>(db: &Db, q: &Query) -> Option<Vec<i64>> {
    if T::KIND != EntityKind::Contacts {
        return None;
    }
    let field = field_index::<Contact>("companyID")?;
    let companies = q.filter.pinned_ids(field)?;
    let mut ids: Vec<i64> = companies
        .iter()
        .filter_map(|c| db.by_company.get(c))
        .flat_map(|s| s.iter().copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Some(ids)
}

/// `GET Companies/{id}/Contacts`: **GUESS** `{items, pageDetails}`, 500 per page, continued by
/// GET of `nextPageUrl` (same path with `?paging=`).
fn children(db: &Db, company: i64, uri: &Uri, site: &Site) -> Answer {
    let start = match query_param(uri, "paging") {
        None => i64::MIN,
        Some(p) => serde_json::from_str::<Cursor>(&p)
            .ok()
            .and_then(|c| c.next_ids.first().copied())
            .ok_or_else(|| bad_request(QueryError("The paging parameter is not valid.".into())))?,
    };
    let ids: Vec<i64> = db
        .by_company
        .get(&company)
        .map(|s| s.range(start..).copied().take(501).collect())
        .unwrap_or_default();
    let limit = 500;
    let next = ids.get(limit).copied();
    let items: Vec<Value> = ids
        .iter()
        .take(limit)
        .filter_map(|id| db.contacts.get(id))
        .map(|c| render(c, None))
        .collect();
    let mk = |id: i64| {
        let c = Cursor {
            page_size: limit as u64,
            next_ids: vec![id],
            origin: "GET".into(),
            query: "children".into(),
        };
        page_url(site, &format!("Companies/{company}/Contacts"), &c, None)
    };
    let prev = (start != i64::MIN)
        .then(|| {
            db.by_company
                .get(&company)
                .and_then(|s| s.range(..start).rev().take(limit).last().copied())
        })
        .flatten();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "items": items,
            "pageDetails": {
                "count": items.len(),
                "requestCount": limit,
                "prevPageUrl": prev.map(mk),
                "nextPageUrl": next.map(mk),
            }
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_case_insensitive() {
        assert_eq!(
            Route::parse("/atservicesrest/versioninformation"),
            Route::Versions
        );
        assert_eq!(
            Route::parse("/ATServicesRest/V1.0/ZoneInformation"),
            Route::Zone
        );
        assert_eq!(
            Route::parse("/ATServicesRest/V1.0/Companies/query"),
            Route::Query(EntityKind::Companies)
        );
        assert_eq!(
            Route::parse("/atservicesrest/v1.0/contacts/QUERY/next"),
            Route::Next(EntityKind::Contacts)
        );
        assert_eq!(
            Route::parse("/ATServicesRest/V1.0/Companies/174"),
            Route::ById(EntityKind::Companies, 174)
        );
        assert_eq!(
            Route::parse("/ATServicesRest/V1.0/Companies/174/Contacts"),
            Route::Children(174)
        );
        assert_eq!(
            Route::parse("/ATServicesRest/V1.0/Tickets/query"),
            Route::NotFound
        );
        assert_eq!(Route::parse("/other"), Route::NotFound);
    }
}
