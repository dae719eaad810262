//! The REST surface under `/business`: routing a request to an operation ([`Op`]), the fault
//! engine, `Authorization: api-key …`, query parsing (`max-results`, `page-token`, `sort`,
//! filters with `%` wildcards), body validation, and every answer as JSON or as an RFC 9457
//! ProblemDetails (`application/problem+json`).

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::data::{
    AccountStatus, Addon, AsyncRequest, CompanyPatch, CompanyStatus, CompanyType, FieldError,
    NewCompany, Operation, Problem, RequestState, Tenant,
};
use super::{DEFAULT_MAX_RESULTS, MAX_RESULTS, MOUNT, Msp, VERSION};
use crate::faults::{MALFORMED_BODY, Verdict, dropped_connection};

/// The longest company or user name accepted (**GUESS**).
pub const MAX_NAME_CHARS: usize = 100;

/// One operation of the API; its [`Op::key`] names it in fault rules and request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListCompanies,
    CreateCompany,
    GetCompany,
    UpdateCompany,
    DetachCompany,
    ListUsers,
    AddUser,
    GetUser,
    GetRequest,
}

impl Op {
    pub const ALL: &'static [Op] = &[
        Op::ListCompanies,
        Op::CreateCompany,
        Op::GetCompany,
        Op::UpdateCompany,
        Op::DetachCompany,
        Op::ListUsers,
        Op::AddUser,
        Op::GetUser,
        Op::GetRequest,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Op::ListCompanies => "companies.list",
            Op::CreateCompany => "companies.create",
            Op::GetCompany => "companies.get",
            Op::UpdateCompany => "companies.update",
            Op::DetachCompany => "companies.detach",
            Op::ListUsers => "users.list",
            Op::AddUser => "users.add",
            Op::GetUser => "users.get",
            Op::GetRequest => "requests.get",
        }
    }

    /// `GET /v1/managed-companies`, …
    pub fn route(self) -> &'static str {
        match self {
            Op::ListCompanies => "GET /v1/managed-companies",
            Op::CreateCompany => "POST /v1/managed-companies",
            Op::GetCompany => "GET /v1/managed-companies/{id}",
            Op::UpdateCompany => "PUT /v1/managed-companies/{id}",
            Op::DetachCompany => "DELETE /v1/managed-companies/{id}",
            Op::ListUsers => "GET /v1/managed-companies/{id}/users",
            Op::AddUser => "POST /v1/managed-companies/{id}/users",
            Op::GetUser => "GET /v1/managed-companies/{id}/users/{user-id}",
            Op::GetRequest => "GET /v1/requests/{id}",
        }
    }

    fn writes(self) -> bool {
        matches!(
            self,
            Op::CreateCompany | Op::UpdateCompany | Op::DetachCompany | Op::AddUser
        )
    }
}

/// Where a path leads.
enum Route<'a> {
    Op(Op, Vec<&'a str>),
    /// The path exists, not with this method; the `Allow` value.
    MethodNotAllowed(&'static str),
    NotFound,
}

/// Routes a path below the mount (`/v1/managed-companies/…`). Path parameters come back in
/// order (company id, user id / request id).
fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let m = method.clone();
    let (allow, op, params): (&'static str, Option<Op>, Vec<&str>) = match segs.as_slice() {
        ["v1", "managed-companies"] => (
            "GET, POST",
            match m {
                Method::GET => Some(Op::ListCompanies),
                Method::POST => Some(Op::CreateCompany),
                _ => None,
            },
            vec![],
        ),
        ["v1", "managed-companies", id] => (
            "GET, PUT, DELETE",
            match m {
                Method::GET => Some(Op::GetCompany),
                Method::PUT => Some(Op::UpdateCompany),
                Method::DELETE => Some(Op::DetachCompany),
                _ => None,
            },
            vec![*id],
        ),
        ["v1", "managed-companies", id, "users"] => (
            "GET, POST",
            match m {
                Method::GET => Some(Op::ListUsers),
                Method::POST => Some(Op::AddUser),
                _ => None,
            },
            vec![*id],
        ),
        ["v1", "managed-companies", id, "users", uid] => (
            "GET",
            (m == Method::GET).then_some(Op::GetUser),
            vec![*id, *uid],
        ),
        ["v1", "requests", id] => (
            "GET",
            (m == Method::GET).then_some(Op::GetRequest),
            vec![*id],
        ),
        _ => return Route::NotFound,
    };
    match op {
        Some(op) => Route::Op(op, params),
        None => Route::MethodNotAllowed(allow),
    }
}

/// An answer before faults that need the real body (truncation) are applied.
struct Answer {
    status: u16,
    body: Option<Value>,
    problem: bool,
    headers: Vec<(HeaderName, String)>,
}

impl Answer {
    fn json(status: u16, v: Value) -> Self {
        Self {
            status,
            body: Some(v),
            problem: false,
            headers: Vec::new(),
        }
    }

    fn empty(status: u16) -> Self {
        Self {
            status,
            body: None,
            problem: false,
            headers: Vec::new(),
        }
    }

    fn problem(p: &Problem, instance: &str) -> Self {
        Self {
            status: p.status,
            body: Some(p.to_json(instance)),
            problem: true,
            headers: Vec::new(),
        }
    }

    fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn into_response(self, truncate: bool) -> Response {
        let mut body = match &self.body {
            // Serializing a `Value` cannot fail.
            Some(v) => serde_json::to_vec(v).unwrap_or_default(),
            None => Vec::new(),
        };
        if truncate && !body.is_empty() {
            body.truncate(body.len() / 2);
        }
        let mut r = Response::new(Body::from(body));
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if self.body.is_some() {
            let ct = if self.problem {
                "application/problem+json"
            } else {
                "application/json; charset=utf-8"
            };
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                r.headers_mut().append(k, v);
            }
        }
        r
    }
}

fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// Every request below `/business`.
pub async fn handle(
    State(msp): State<Msp>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let instance = format!("{MOUNT}{path}");
    let route = route(&method, path);
    let key = match &route {
        Route::Op(op, _) => op.key(),
        _ => "?",
    };
    let cid = msp.config().cid;
    let (latency, verdict) = msp.faults().judge(key, Some(cid));
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let retry_after = msp.settings().retry_after_secs.to_string();
    match verdict {
        Verdict::Pass | Verdict::Truncate => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            // The emulator serves plain HTTP on loopback; the real API is https.
            let api_base = format!("http://{host}{MOUNT}{VERSION}");
            let req = Req {
                method: &method,
                query: uri.query(),
                headers: &headers,
                body: &body,
                instance: &instance,
                api_base: &api_base,
            };
            serve(&msp, route, &req).into_response(verdict == Verdict::Truncate)
        }
        Verdict::RateLimited => {
            let p = Problem::new(
                429,
                "Too Many Requests",
                "The rate limit of this account was exceeded; retry after the time in Retry-After.",
            );
            Answer::problem(&p, &instance)
                .header(header::RETRY_AFTER, retry_after)
                .into_response(false)
        }
        Verdict::Status(s) => {
            let p = Problem::new(
                s,
                reason(s),
                format!("The server could not process the request (HTTP {s})."),
            );
            let a = Answer::problem(&p, &instance);
            let a = if matches!(s, 429 | 503) {
                a.header(header::RETRY_AFTER, retry_after)
            } else {
                a
            };
            a.into_response(false)
        }
        Verdict::Drop => dropped_connection(),
        Verdict::Malformed => {
            let mut r = Response::new(Body::from(MALFORMED_BODY));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            r
        }
    }
}

/// What the operations need from the request.
struct Req<'a> {
    method: &'a Method,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    body: &'a [u8],
    instance: &'a str,
    /// `http://HOST/business/v1`, for URLs in answers.
    api_base: &'a str,
}

/// Checks `Authorization: api-key <key>`.
fn authenticate(msp: &Msp, headers: &HeaderMap) -> Result<(), Problem> {
    let unauthorized = |detail: &str| Problem::new(401, "Unauthorized", detail);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "The Authorization header is missing; send `Authorization: api-key <your API key>`.",
        ));
    };
    let value = value.to_str().unwrap_or("").trim();
    let Some((scheme, key)) = value.split_once(' ') else {
        return Err(unauthorized(
            "The Authorization header must be `api-key <your API key>`.",
        ));
    };
    if !scheme.eq_ignore_ascii_case("api-key") {
        return Err(unauthorized("The Authorization scheme must be `api-key`."));
    }
    if key.trim() != msp.credentials().api_key {
        return Err(unauthorized("The API key is not valid or was revoked."));
    }
    Ok(())
}

fn serve(msp: &Msp, route: Route<'_>, req: &Req<'_>) -> Answer {
    if let Err(p) = authenticate(msp, req.headers) {
        return Answer::problem(&p, req.instance).header(header::WWW_AUTHENTICATE, "api-key");
    }
    let (op, params) = match route {
        Route::Op(op, params) => (op, params),
        Route::MethodNotAllowed(allow) => {
            let p = Problem::new(
                405,
                "Method Not Allowed",
                format!("{} is not allowed here; allowed: {allow}.", req.method),
            );
            return Answer::problem(&p, req.instance).header(header::ALLOW, allow);
        }
        Route::NotFound => {
            let p = Problem::not_found("No such resource.");
            return Answer::problem(&p, req.instance);
        }
    };
    if op.writes() && msp.settings().read_only {
        let p = Problem::new(
            403,
            "Forbidden",
            "The API key may not change managed companies (read-only permission).",
        );
        return Answer::problem(&p, req.instance);
    }
    let result = match op {
        Op::ListCompanies => list_companies(msp, req),
        Op::CreateCompany => create_company(msp, req),
        Op::GetCompany => with_company_id(&params, |id| {
            msp.with_tenant(|t| {
                t.companies
                    .get(&id)
                    .map(|c| Answer::json(200, c.to_json()))
                    .ok_or_else(|| company_not_found(id))
            })
        }),
        Op::UpdateCompany => with_company_id(&params, |id| update_company(msp, req, id)),
        Op::DetachCompany => with_company_id(&params, |id| {
            msp.with_tenant(|t| t.detach(id).map(|_| Answer::empty(204)))
        }),
        Op::ListUsers => with_company_id(&params, |id| list_users(msp, req, id)),
        Op::AddUser => with_company_id(&params, |id| add_user(msp, req, id)),
        Op::GetUser => with_company_id(&params, |id| {
            let uid = params.get(1).and_then(|s| s.parse::<u64>().ok());
            let now = msp.now_us();
            msp.with_tenant(|t| {
                let c = t.companies.get(&id).ok_or_else(|| company_not_found(id))?;
                uid.and_then(|u| c.users().get(&u))
                    .map(|u| Answer::json(200, u.to_json(now)))
                    .ok_or_else(|| {
                        Problem::not_found(format!(
                            "User {} was not found in managed company {id}.",
                            params.get(1).copied().unwrap_or("")
                        ))
                    })
            })
        }),
        Op::GetRequest => get_request(msp, req, params.first().copied().unwrap_or("")),
    };
    result.unwrap_or_else(|p| Answer::problem(&p, req.instance))
}

fn company_not_found(id: impl std::fmt::Display) -> Problem {
    Problem::not_found(format!("Managed company {id} was not found."))
}

/// Runs `f` with the company id of the path (a number; anything else is a 404).
fn with_company_id(
    params: &[&str],
    f: impl FnOnce(u64) -> Result<Answer, Problem>,
) -> Result<Answer, Problem> {
    let raw = params.first().copied().unwrap_or("");
    match raw.parse::<u64>() {
        Ok(id) => f(id),
        Err(_) => Err(company_not_found(raw)),
    }
}

// ---- queries --------------------------------------------------------------------------

/// The query string as name → value; a repeated parameter's values are joined with `,` (so
/// `status=active&status=suspended` means `status=active,suspended`). Unknown names are refused.
fn parse_query(raw: Option<&str>, allowed: &[&str]) -> Result<BTreeMap<String, String>, Problem> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| {
            Problem::new(
                400,
                "Bad Request",
                format!("The query string is not valid: {e}."),
            )
        })?;
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut errors = Vec::new();
    for (k, v) in pairs {
        if !allowed.contains(&k.as_str()) {
            errors.push(FieldError::query(
                &k,
                format!("unknown parameter; expected one of {}", allowed.join(", ")),
            ));
            continue;
        }
        out.entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Problem::validation(errors))
    }
}

/// A sort order: a field and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sort {
    field: &'static str,
    desc: bool,
}

/// Paging, sort and the filter fingerprint of a list request.
struct Listing {
    max: usize,
    sort: Sort,
    cursor: Option<(String, u64)>,
    fingerprint: String,
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Fingerprint of the filters and sort the token belongs to.
    f: String,
    /// Sort key and id of the last item served.
    k: String,
    i: u64,
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Reads `max-results`, `sort` and `page-token`; `scope` and the other parameters make the
/// fingerprint a token must match.
fn listing(
    q: &BTreeMap<String, String>,
    sort_fields: &[&'static str],
    scope: &str,
    errors: &mut Vec<FieldError>,
) -> Listing {
    let max = match q.get("max-results") {
        None => DEFAULT_MAX_RESULTS,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_RESULTS).contains(&n) => n,
            _ => {
                errors.push(FieldError::query(
                    "max-results",
                    format!("must be an integer between 1 and {MAX_RESULTS}"),
                ));
                DEFAULT_MAX_RESULTS
            }
        },
    };
    let mut sort = Sort {
        field: "id",
        desc: false,
    };
    if let Some(v) = q.get("sort") {
        let (f, dir) = v.split_once(':').unwrap_or((v.as_str(), "asc"));
        let field = sort_fields
            .iter()
            .find(|x| x.eq_ignore_ascii_case(f.trim()));
        let desc = match dir.trim().to_ascii_lowercase().as_str() {
            "asc" => Some(false),
            "desc" => Some(true),
            _ => None,
        };
        match (field, desc) {
            (Some(field), Some(desc)) => sort = Sort { field, desc },
            _ => errors.push(FieldError::query(
                "sort",
                format!(
                    "must be FIELD:asc or FIELD:desc with FIELD one of {}",
                    sort_fields.join(", ")
                ),
            )),
        }
    }
    let filters: Vec<String> = q
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "max-results" | "page-token" | "sort"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let fingerprint = format!(
        "{:016x}",
        fnv(&format!(
            "{scope}|{}:{}|{}",
            sort.field,
            sort.desc,
            filters.join("&")
        ))
    );
    let mut cursor = None;
    if let Some(t) = q.get("page-token") {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t.trim())
            .ok()
            .and_then(|b| serde_json::from_slice::<Token>(&b).ok());
        match token {
            Some(tok) if tok.f == fingerprint => cursor = Some((tok.k, tok.i)),
            Some(_) => errors.push(FieldError::query(
                "page-token",
                "the token belongs to another query (filters and sort must stay the same)",
            )),
            None => errors.push(FieldError::query("page-token", "not a valid page token")),
        }
    }
    Listing {
        max,
        sort,
        cursor,
        fingerprint,
    }
}

/// One page of `rows` (sort key, id, item) in the listing's order, after its cursor:
/// `{"nextPageToken", "items"}`. Only the page's items are turned into JSON.
fn page<T>(mut rows: Vec<(String, u64, T)>, l: &Listing, to_json: impl Fn(T) -> Value) -> Value {
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    if l.sort.desc {
        rows.reverse();
    }
    let after = |r: &(String, u64, T)| match &l.cursor {
        None => true,
        Some((k, i)) => {
            let ord = (&r.0, r.1).cmp(&(k, *i));
            if l.sort.desc {
                ord.is_lt()
            } else {
                ord.is_gt()
            }
        }
    };
    let mut rest = rows.into_iter().filter(after);
    let items: Vec<(String, u64, T)> = rest.by_ref().take(l.max).collect();
    let more = rest.next().is_some();
    let next = match (more, items.last()) {
        (true, Some((k, i, _))) => {
            let t = Token {
                f: l.fingerprint.clone(),
                k: k.clone(),
                i: *i,
            };
            // Serializing this struct cannot fail.
            let raw = serde_json::to_vec(&t).unwrap_or_default();
            Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
        }
        _ => None,
    };
    json!({
        "nextPageToken": next,
        "items": items.into_iter().map(|(_, _, v)| to_json(v)).collect::<Vec<_>>(),
    })
}

/// SQL-`LIKE`-style match with `%` as the only wildcard, case-insensitive; without `%` the
/// whole text must match.
pub fn like(pattern: &str, text: &str) -> bool {
    let p = pattern.to_lowercase();
    let t = text.to_lowercase();
    if !p.contains('%') {
        return p == t;
    }
    let parts: Vec<&str> = p.split('%').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !t.starts_with(first) || t.len() < first.len() + last.len() || !t.ends_with(last) {
        return false;
    }
    let mut rest = &t[first.len()..t.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// A csv of enum values (`parse` gives each one); an unknown value is an error naming the
/// parameter and the choices.
fn csv<T>(
    q: &BTreeMap<String, String>,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
    choices: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<T>> {
    let v = q.get(name)?;
    let mut out = Vec::new();
    for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match parse(part) {
            Some(x) => out.push(x),
            None => errors.push(FieldError::query(
                name,
                format!("{part:?} is not one of {choices}"),
            )),
        }
    }
    Some(out)
}

fn number<T: std::str::FromStr>(
    q: &BTreeMap<String, String>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let v = q.get(name)?;
    match v.trim().parse::<T>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(FieldError::query(name, "must be a whole number"));
            None
        }
    }
}

fn list_companies(msp: &Msp, req: &Req<'_>) -> Result<Answer, Problem> {
    let q = parse_query(
        req.query,
        &[
            "max-results",
            "page-token",
            "sort",
            "name",
            "parent-id",
            "license-limit",
            "status",
            "type",
            "addon",
        ],
    )?;
    let mut errors = Vec::new();
    let l = listing(&q, &["id", "name"], "companies", &mut errors);
    let parent: Option<u64> = number(&q, "parent-id", &mut errors);
    let limit: Option<u32> = number(&q, "license-limit", &mut errors);
    let statuses = csv(
        &q,
        "status",
        CompanyStatus::parse,
        &CompanyStatus::choices(),
        &mut errors,
    );
    let types = csv(
        &q,
        "type",
        CompanyType::parse,
        &CompanyType::choices(),
        &mut errors,
    );
    let addons = csv(&q, "addon", Addon::parse, &Addon::choices(), &mut errors);
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let name = q.get("name");
    msp.with_tenant(|t| {
        let rows = t
            .companies
            .values()
            .filter(|c| name.is_none_or(|n| like(n, &c.name)))
            .filter(|c| parent.is_none_or(|p| c.parent_id == p))
            .filter(|c| limit.is_none_or(|x| c.license_limit == x))
            .filter(|c| statuses.as_ref().is_none_or(|s| s.contains(&c.status)))
            .filter(|c| types.as_ref().is_none_or(|s| s.contains(&c.kind)))
            .filter(|c| {
                addons
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|a| c.addons.contains(a)))
            })
            .map(|c| {
                let key = if l.sort.field == "name" {
                    c.name.to_lowercase()
                } else {
                    String::new()
                };
                (key, c.id, c)
            })
            .collect();
        Ok(Answer::json(200, page(rows, &l, |c| c.to_json())))
    })
}

fn list_users(msp: &Msp, req: &Req<'_>, company_id: u64) -> Result<Answer, Problem> {
    let q = parse_query(
        req.query,
        &[
            "max-results",
            "page-token",
            "sort",
            "name",
            "email",
            "account-status",
        ],
    )?;
    let mut errors = Vec::new();
    let l = listing(
        &q,
        &["id", "name", "email"],
        &format!("users/{company_id}"),
        &mut errors,
    );
    let statuses = csv(
        &q,
        "account-status",
        AccountStatus::parse,
        &AccountStatus::choices(),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let (name, email) = (q.get("name"), q.get("email"));
    let now = msp.now_us();
    msp.with_tenant(|t| {
        let c = t
            .companies
            .get(&company_id)
            .ok_or_else(|| company_not_found(company_id))?;
        let rows = c
            .users()
            .values()
            .filter(|u| name.is_none_or(|n| like(n, u.name.as_deref().unwrap_or(""))))
            .filter(|u| email.is_none_or(|e| like(e, &u.email)))
            .filter(|u| {
                statuses
                    .as_ref()
                    .is_none_or(|s| s.contains(&u.status_at(now)))
            })
            .map(|u| {
                let key = match l.sort.field {
                    "name" => u.name.clone().unwrap_or_default().to_lowercase(),
                    "email" => u.email.to_lowercase(),
                    _ => String::new(),
                };
                (key, u.id, u)
            })
            .collect();
        Ok(Answer::json(200, page(rows, &l, |u| u.to_json(now))))
    })
}

// ---- bodies ---------------------------------------------------------------------------

/// The body as a JSON object (an empty body is `{}`).
fn object(body: &[u8]) -> Result<Map<String, Value>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Problem::new(
            400,
            "Bad Request",
            "The request body must be a JSON object.",
        )),
        Err(e) => Err(Problem::new(
            400,
            "Bad Request",
            format!("The request body is not valid JSON: {e}."),
        )),
    }
}

fn refuse_unknown(m: &Map<String, Value>, known: &[&str], errors: &mut Vec<FieldError>) {
    for k in m.keys() {
        if !known.contains(&k.as_str()) {
            errors.push(FieldError::body(
                k,
                format!("unknown member; expected one of {}", known.join(", ")),
            ));
        }
    }
}

fn license_limit(v: &Value, errors: &mut Vec<FieldError>) -> Option<u32> {
    match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
        Some(n) if n <= super::data::MAX_LICENSE_LIMIT => Some(n),
        _ => {
            errors.push(FieldError::body(
                "licenseLimit",
                format!(
                    "must be a whole number between 0 and {}",
                    super::data::MAX_LICENSE_LIMIT
                ),
            ));
            None
        }
    }
}

fn addons(v: &Value, errors: &mut Vec<FieldError>) -> Option<Vec<Addon>> {
    let Some(items) = v.as_array() else {
        errors.push(FieldError::body(
            "addons",
            format!("must be an array of {}", Addon::choices()),
        ));
        return None;
    };
    let mut out = Vec::new();
    for (i, x) in items.iter().enumerate() {
        match x.as_str().and_then(Addon::parse) {
            Some(a) => out.push(a),
            None => errors.push(FieldError::body(
                &format!("addons/{i}"),
                format!("must be one of {}", Addon::choices()),
            )),
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// A name: a string, trimmed, 1–[`MAX_NAME_CHARS`] characters.
fn name_of(member: &str, v: &Value, errors: &mut Vec<FieldError>) -> Option<String> {
    match v.as_str().map(str::trim) {
        Some(s) if !s.is_empty() && s.chars().count() <= MAX_NAME_CHARS => Some(s.to_string()),
        _ => {
            errors.push(FieldError::body(
                member,
                format!("must be a non-empty string of at most {MAX_NAME_CHARS} characters"),
            ));
            None
        }
    }
}

fn parse_new_company(m: &Map<String, Value>, t: &Tenant) -> Result<NewCompany, Problem> {
    let mut errors = Vec::new();
    refuse_unknown(
        m,
        &["name", "licenseLimit", "type", "addons", "parentId"],
        &mut errors,
    );
    let name = match m.get("name") {
        Some(v) => name_of("name", v, &mut errors),
        None => {
            errors.push(FieldError::body("name", "is required"));
            None
        }
    };
    let limit = match m.get("licenseLimit") {
        None | Some(Value::Null) => Some(0),
        Some(v) => license_limit(v, &mut errors),
    };
    let kind = match m.get("type") {
        None | Some(Value::Null) => Some(CompanyType::Managed),
        Some(v) => match v.as_str().and_then(CompanyType::parse) {
            Some(k @ (CompanyType::Managed | CompanyType::ManagedMsp)) => Some(k),
            _ => {
                errors.push(FieldError::body("type", "must be managed or managed-msp"));
                None
            }
        },
    };
    let addon_list = match m.get("addons") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(v) => addons(v, &mut errors),
    };
    let parent = match m.get("parentId") {
        None | Some(Value::Null) => Some(t.cid),
        Some(v) => {
            let id = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
            match id.map(|id| (id, t.check_parent(id))) {
                Some((id, Ok(()))) => Some(id),
                Some((_, Err(m))) => {
                    errors.push(FieldError::body("parentId", m));
                    None
                }
                None => {
                    errors.push(FieldError::body("parentId", "must be a company id"));
                    None
                }
            }
        }
    };
    match (name, limit, kind, addon_list, parent) {
        (Some(name), Some(license_limit), Some(kind), Some(addons), Some(parent_id))
            if errors.is_empty() =>
        {
            Ok(NewCompany {
                name,
                license_limit,
                kind,
                addons,
                parent_id,
                status: CompanyStatus::Active,
            })
        }
        _ => Err(Problem::validation(errors)),
    }
}

fn parse_patch(m: &Map<String, Value>) -> Result<CompanyPatch, Problem> {
    let mut errors = Vec::new();
    refuse_unknown(m, &["licenseLimit", "status", "addons"], &mut errors);
    let mut p = CompanyPatch::default();
    if let Some(v) = m.get("licenseLimit").filter(|v| !v.is_null()) {
        p.license_limit = license_limit(v, &mut errors);
    }
    if let Some(v) = m.get("status").filter(|v| !v.is_null()) {
        p.status = v.as_str().and_then(CompanyStatus::parse);
        if p.status.is_none() {
            errors.push(FieldError::body(
                "status",
                format!("must be one of {}", CompanyStatus::choices()),
            ));
        }
    }
    if let Some(v) = m.get("addons").filter(|v| !v.is_null()) {
        p.addons = addons(v, &mut errors);
    }
    if errors.is_empty() && p == CompanyPatch::default() {
        errors.push(FieldError::body(
            "",
            "give at least one of licenseLimit, status, addons",
        ));
    }
    if errors.is_empty() {
        Ok(p)
    } else {
        Err(Problem::validation(errors))
    }
}

/// Records an asynchronous request; answers `202 {"id","url"}` with `Location`.
fn accept(msp: &Msp, t: &mut Tenant, op: Operation, api_base: &str) -> Answer {
    let id = t.new_request_id();
    let r = AsyncRequest {
        id: id.clone(),
        op,
        created_us: msp.now_us(),
        completed_us: None,
        polls: 0,
        state: RequestState::Pending,
        forced_failure: msp.take_forced_failure(),
    };
    t.add_request(r);
    let url = format!("{api_base}/requests/{id}");
    Answer::json(202, json!({"id": id, "url": url})).header(header::LOCATION, url)
}

fn create_company(msp: &Msp, req: &Req<'_>) -> Result<Answer, Problem> {
    let m = object(req.body)?;
    msp.with_tenant(|t| {
        let n = parse_new_company(&m, t)?;
        Ok(accept(
            msp,
            t,
            Operation::CreateManagedCompany(n),
            req.api_base,
        ))
    })
}

fn update_company(msp: &Msp, req: &Req<'_>, id: u64) -> Result<Answer, Problem> {
    let m = object(req.body)?;
    msp.with_tenant(|t| {
        if !t.companies.contains_key(&id) {
            return Err(company_not_found(id));
        }
        let patch = parse_patch(&m)?;
        Ok(accept(
            msp,
            t,
            Operation::UpdateManagedCompany {
                company_id: id,
                patch,
            },
            req.api_base,
        ))
    })
}

fn add_user(msp: &Msp, req: &Req<'_>, company_id: u64) -> Result<Answer, Problem> {
    let m = object(req.body)?;
    let mut errors = Vec::new();
    refuse_unknown(&m, &["email", "name", "creationAccountAction"], &mut errors);
    let email = match m.get("email").and_then(Value::as_str) {
        Some(e) => match lp_types::Email::parse(e) {
            Ok(e) => Some(e.as_str().to_string()),
            Err(err) => {
                errors.push(FieldError::body("email", err.reason.to_string()));
                None
            }
        },
        None => {
            errors.push(FieldError::body("email", "is required (a string)"));
            None
        }
    };
    let name = match m.get("name") {
        None | Some(Value::Null) => None,
        Some(v) => name_of("name", v, &mut errors),
    };
    let status = match m.get("creationAccountAction").and_then(Value::as_str) {
        Some("invite") => Some(AccountStatus::PendingInvitation),
        Some("stage") => Some(AccountStatus::Staged),
        _ => {
            errors.push(FieldError::body(
                "creationAccountAction",
                "is required: invite or stage",
            ));
            None
        }
    };
    let now = msp.now_us();
    msp.with_tenant(|t| {
        if !t.companies.contains_key(&company_id) {
            return Err(company_not_found(company_id));
        }
        let (Some(email), Some(status)) = (email, status) else {
            return Err(Problem::validation(errors));
        };
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        let uid = t.add_user(company_id, &email, name, status, false, now)?;
        let json = t
            .companies
            .get(&company_id)
            .and_then(|c| c.users().get(&uid))
            .map_or(Value::Null, |u| u.to_json(now));
        Ok(Answer::json(201, json).header(
            header::LOCATION,
            format!(
                "{}/managed-companies/{company_id}/users/{uid}",
                req.api_base
            ),
        ))
    })
}

fn get_request(msp: &Msp, req: &Req<'_>, id: &str) -> Result<Answer, Problem> {
    let polls_needed = msp.settings().complete_after_polls;
    let now = msp.now_us();
    msp.with_tenant(|t| {
        let Some(r) = t.requests.get_mut(id) else {
            return Err(Problem::not_found(format!("Request {id} was not found.")));
        };
        r.polls = r.polls.saturating_add(1);
        if r.state == RequestState::Pending && r.polls > polls_needed {
            t.complete(id, now);
        }
        t.requests
            .get(id)
            .map(|r| Answer::json(200, r.to_json(req.api_base, req.instance)))
            .ok_or_else(|| Problem::not_found(format!("Request {id} was not found.")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_percent_wildcards_case_insensitively() {
        assert!(like("blue dental llc", "Blue Dental LLC"));
        assert!(!like("Blue", "Blue Dental LLC"));
        assert!(like("Blue%", "Blue Dental LLC"));
        assert!(like("%llc", "Blue Dental LLC"));
        assert!(like("%dent%", "Blue Dental LLC"));
        assert!(like("B%D%C", "Blue Dental LLC"));
        assert!(!like("B%X%C", "Blue Dental LLC"));
        assert!(like("%", ""));
        assert!(!like("ab%ba", "aba"));
    }

    #[test]
    fn routes_map_to_operations() {
        let r = |m: Method, p: &str| match route(&m, p) {
            Route::Op(op, params) => format!("{}{:?}", op.key(), params),
            Route::MethodNotAllowed(a) => format!("405 {a}"),
            Route::NotFound => "404".into(),
        };
        assert_eq!(r(Method::GET, "/v1/managed-companies"), "companies.list[]");
        assert_eq!(
            r(Method::GET, "/v1/managed-companies/7/users/9/"),
            "users.get[\"7\", \"9\"]"
        );
        assert_eq!(
            r(Method::PATCH, "/v1/managed-companies/7"),
            "405 GET, PUT, DELETE"
        );
        assert_eq!(r(Method::GET, "/v2/managed-companies"), "404");
    }
}
