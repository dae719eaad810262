//! The MSP control API under `/_sandbox/msp/`: inspect the account, its licence pool, companies,
//! users and asynchronous requests; set the pool size; add companies and users by hand; make a
//! user an admin or change their status; make the next requests fail; the API key and its
//! permission; fault rules, rate limit and request counters; reset. JSON in and out; errors are
//! `{"error":CODE,"field":FIELD,"value":VALUE,"message":TEXT}` like the rest of `/_sandbox`
//! (documented in `crates/sandbox/MSP.md`). Never faulted, rate limited or counted.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::data::{AccountStatus, Addon, CompanyStatus, CompanyType, NewCompany, Origin, Problem};
use super::{Msp, MspSettings};
use crate::faults::FaultRule;

/// A control-API refusal.
#[derive(Debug, Clone, PartialEq)]
pub struct MspControlError {
    pub status: StatusCode,
    pub code: &'static str,
    pub field: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

impl MspControlError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            field: Some(field.to_string()),
            value: None,
            message: message.into(),
        }
    }

    fn not_found(field: &str, value: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            field: Some(field.to_string()),
            value: Some(value.into()),
            message: message.into(),
        }
    }

    /// A tenant refusal: 404 stays `not_found`, anything else (licences, duplicates) is a
    /// `conflict`.
    fn from_problem(field: &str, p: Problem) -> Self {
        let (status, code) = match p.status {
            404 => (StatusCode::NOT_FOUND, "not_found"),
            400 => (StatusCode::BAD_REQUEST, "invalid"),
            _ => (StatusCode::CONFLICT, "conflict"),
        };
        Self {
            status,
            code,
            field: Some(field.to_string()),
            value: None,
            message: format!("{}: {}", p.title, p.detail),
        }
    }
}

impl std::fmt::Display for MspControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for MspControlError {}

impl IntoResponse for MspControlError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.code,
            "field": self.field,
            "value": self.value,
            "message": self.message,
        });
        (self.status, Json(body)).into_response()
    }
}

type R<T> = Result<T, MspControlError>;

/// A JSON body; empty means `{}`.
fn body<T: DeserializeOwned>(b: &Bytes) -> R<T> {
    let b: &[u8] = if b.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        b
    };
    serde_json::from_slice(b).map_err(|e| MspControlError::invalid("body", e.to_string()))
}

fn parse_id(field: &str, s: &str) -> R<u64> {
    s.parse()
        .map_err(|_| MspControlError::invalid(field, format!("{s} is not an id")))
}

/// The `/_sandbox/msp` routes.
pub fn router(msp: Msp) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/account", get(account))
        .route("/licenses", get(get_licenses).post(set_licenses))
        .route("/companies", get(list_companies).post(add_company))
        .route("/companies/{id}", get(get_company).delete(remove_company))
        .route("/companies/{id}/users", post(add_user))
        .route("/companies/{id}/users/{uid}", patch(patch_user))
        .route("/detached", get(detached))
        .route("/requests", get(list_requests))
        .route("/requests/fail-next", post(fail_next))
        .route("/requests/{id}/complete", post(complete_request))
        .route("/config", get(get_config).post(set_config))
        .route("/key", get(get_key).post(set_key))
        .route(
            "/faults",
            get(get_faults).post(add_fault).delete(clear_faults),
        )
        .route("/faults/{id}", delete(delete_fault))
        .route("/rate-limit", get(get_rate_limit).post(set_rate_limit))
        .route("/stats", get(get_stats).delete(reset_stats))
        .route("/reset", post(reset))
        .fallback(fallback)
        .with_state(msp)
}

async fn fallback(uri: axum::http::Uri) -> MspControlError {
    MspControlError::not_found(
        "path",
        uri.path(),
        format!(
            "{}: no such control endpoint (see crates/sandbox/MSP.md)",
            uri.path()
        ),
    )
}

async fn index(State(msp): State<Msp>) -> Json<Value> {
    let (companies, users, pending) = msp.with_tenant(|t| {
        (
            t.companies.len(),
            t.companies.values().map(|c| c.users().len()).sum::<usize>(),
            t.requests
                .values()
                .filter(|r| r.state == super::data::RequestState::Pending)
                .count(),
        )
    });
    Json(json!({
        "cid": msp.config().cid,
        "companies": companies,
        "users": users,
        "pending_requests": pending,
        "licenses": msp.licenses(),
        "endpoints": [
            "GET /account", "GET|POST /licenses", "GET|POST /companies",
            "GET|DELETE /companies/{id}", "POST /companies/{id}/users",
            "PATCH /companies/{id}/users/{uid}", "GET /detached", "GET /requests",
            "POST /requests/fail-next", "POST /requests/{id}/complete", "GET|POST /config",
            "GET|POST /key", "GET|POST|DELETE /faults", "DELETE /faults/{id}",
            "GET|POST /rate-limit", "GET|DELETE /stats", "POST /reset"
        ],
    }))
}

async fn account(State(msp): State<Msp>) -> Json<Value> {
    let c = msp.credentials();
    Json(json!({
        "cid": c.cid,
        "name": msp.config().name,
        "api_key": c.api_key,
        "read_only": msp.settings().read_only,
        "licenses": msp.licenses(),
    }))
}

async fn get_licenses(State(msp): State<Msp>) -> Json<Value> {
    let by_company = msp.with_tenant(|t| {
        t.companies
            .values()
            .map(|c| {
                json!({
                    "id": c.id,
                    "name": c.name,
                    "licenseLimit": c.license_limit,
                    "licensesUsed": c.used(),
                    "available": c.license_limit.saturating_sub(c.used()),
                })
            })
            .collect::<Vec<_>>()
    });
    let mut v = json!(msp.licenses());
    v["by_company"] = json!(by_company);
    Json(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicensesBody {
    total: u32,
}

async fn set_licenses(State(msp): State<Msp>, b: Bytes) -> R<Json<Value>> {
    let l: LicensesBody = body(&b)?;
    Ok(Json(json!(msp.set_licenses(l.total))))
}

/// A company with its users, admin flags and origin (what the API never shows).
fn company_view(c: &super::Company, now_us: i64) -> Value {
    let mut v = c.to_json();
    v["admins"] = json!(c.admins());
    v["origin"] = json!(c.origin);
    v["users"] = c
        .users()
        .values()
        .map(|u| {
            let mut j = u.to_json(now_us);
            j["admin"] = json!(u.admin);
            j
        })
        .collect();
    v
}

async fn list_companies(State(msp): State<Msp>) -> Json<Value> {
    let now = msp.now_us();
    Json(msp.with_tenant(|t| {
        t.companies
            .values()
            .map(|c| company_view(c, now))
            .collect::<Value>()
    }))
}

async fn get_company(State(msp): State<Msp>, Path(id): Path<String>) -> R<Json<Value>> {
    let id = parse_id("id", &id)?;
    let now = msp.now_us();
    msp.with_tenant(|t| {
        t.companies
            .get(&id)
            .map(|c| Json(company_view(c, now)))
            .ok_or_else(|| {
                MspControlError::not_found("id", id.to_string(), format!("no company {id}"))
            })
    })
}

async fn remove_company(State(msp): State<Msp>, Path(id): Path<String>) -> R<Json<Value>> {
    let id = parse_id("id", &id)?;
    msp.with_tenant(|t| match t.companies.remove(&id) {
        Some(c) => Ok(Json(
            json!({"removed": id, "users_removed": c.users().len()}),
        )),
        None => Err(MspControlError::not_found(
            "id",
            id.to_string(),
            format!("no company {id}"),
        )),
    })
}

/// A company created by hand (as in the Admin Console): at once, no request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewCompanyBody {
    name: String,
    #[serde(default)]
    license_limit: u32,
    #[serde(default, rename = "type")]
    kind: Option<CompanyType>,
    #[serde(default)]
    status: Option<CompanyStatus>,
    #[serde(default)]
    addons: Vec<Addon>,
    #[serde(default)]
    parent_id: Option<u64>,
}

async fn add_company(State(msp): State<Msp>, b: Bytes) -> R<(StatusCode, Json<Value>)> {
    let n: NewCompanyBody = body(&b)?;
    if n.name.trim().is_empty() {
        return Err(MspControlError::invalid("name", "name is empty"));
    }
    let now = msp.now_us();
    msp.with_tenant(|t| {
        let mut addons = n.addons;
        addons.sort();
        addons.dedup();
        let new = NewCompany {
            name: n.name.trim().to_string(),
            license_limit: n.license_limit,
            kind: n.kind.unwrap_or(CompanyType::Managed),
            addons,
            parent_id: n.parent_id.unwrap_or(t.cid),
            status: n.status.unwrap_or(CompanyStatus::Active),
        };
        let id = t
            .insert_company(new, Origin::Control, now)
            .map_err(|p| MspControlError::from_problem("company", p))?;
        let v = t
            .companies
            .get(&id)
            .map_or(Value::Null, |c| company_view(c, now));
        Ok((StatusCode::CREATED, Json(v)))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewUserBody {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    account_status: Option<AccountStatus>,
    #[serde(default)]
    admin: bool,
}

async fn add_user(
    State(msp): State<Msp>,
    Path(id): Path<String>,
    b: Bytes,
) -> R<(StatusCode, Json<Value>)> {
    let id = parse_id("id", &id)?;
    let n: NewUserBody = body(&b)?;
    let email = lp_types::Email::parse(&n.email)
        .map_err(|e| MspControlError::invalid("email", e.to_string()))?;
    let now = msp.now_us();
    let status = n.account_status.unwrap_or(AccountStatus::Enrolled);
    msp.with_tenant(|t| {
        let uid = t
            .add_user(id, email.as_str(), n.name, status, n.admin, now)
            .map_err(|p| MspControlError::from_problem("user", p))?;
        let v = t
            .companies
            .get(&id)
            .and_then(|c| c.users().get(&uid))
            .map_or(Value::Null, |u| {
                let mut j = u.to_json(now);
                j["admin"] = json!(u.admin);
                j
            });
        Ok((StatusCode::CREATED, Json(v)))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UserPatchBody {
    #[serde(default)]
    admin: Option<bool>,
    #[serde(default)]
    account_status: Option<AccountStatus>,
    #[serde(default)]
    name: Option<String>,
}

async fn patch_user(
    State(msp): State<Msp>,
    Path((id, uid)): Path<(String, String)>,
    b: Bytes,
) -> R<Json<Value>> {
    let id = parse_id("id", &id)?;
    let uid = parse_id("uid", &uid)?;
    let p: UserPatchBody = body(&b)?;
    let now = msp.now_us();
    msp.with_tenant(|t| {
        t.set_user(id, uid, p.account_status, p.admin, p.name.map(Some), now)
            .map_err(|e| MspControlError::from_problem("user", e))?;
        let v = t
            .companies
            .get(&id)
            .and_then(|c| c.users().get(&uid))
            .map_or(Value::Null, |u| {
                let mut j = u.to_json(now);
                j["admin"] = json!(u.admin);
                j
            });
        Ok(Json(v))
    })
}

async fn detached(State(msp): State<Msp>) -> Json<Value> {
    let now = msp.now_us();
    Json(msp.with_tenant(|t| {
        t.detached
            .values()
            .map(|c| company_view(c, now))
            .collect::<Value>()
    }))
}

async fn list_requests(State(msp): State<Msp>) -> Json<Value> {
    Json(msp.with_tenant(|t| json!(t.requests.values().collect::<Vec<_>>())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNextBody {
    #[serde(default = "one")]
    count: usize,
    #[serde(default = "server_error")]
    status: u16,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

fn one() -> usize {
    1
}

fn server_error() -> u16 {
    500
}

async fn fail_next(State(msp): State<Msp>, b: Bytes) -> R<Json<Value>> {
    let f: FailNextBody = body(&b)?;
    if !(400..=599).contains(&f.status) {
        return Err(MspControlError::invalid(
            "status",
            "must be an HTTP error status (400-599)",
        ));
    }
    if f.count > 10_000 {
        return Err(MspControlError::invalid("count", "at most 10000"));
    }
    let reason = StatusCode::from_u16(f.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let p = Problem::new(
        f.status,
        f.title.as_deref().unwrap_or(reason),
        f.detail
            .unwrap_or_else(|| "The request could not be completed.".to_string()),
    );
    msp.fail_next(p.clone(), f.count);
    Ok(Json(json!({"count": f.count, "problem": p})))
}

async fn complete_request(State(msp): State<Msp>, Path(id): Path<String>) -> R<Json<Value>> {
    let now = msp.now_us();
    msp.with_tenant(|t| {
        if !t.requests.contains_key(&id) {
            return Err(MspControlError::not_found(
                "id",
                id.clone(),
                format!("no request {id}"),
            ));
        }
        t.complete(&id, now);
        Ok(Json(json!(t.requests.get(&id))))
    })
}

async fn get_config(State(msp): State<Msp>) -> Json<Value> {
    Json(json!(msp.settings()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    #[serde(default)]
    complete_after_polls: Option<u32>,
    /// `null` is meaningful (polls only), so it is told apart from "absent".
    #[serde(default, deserialize_with = "some")]
    complete_after_secs: Option<Option<f64>>,
    #[serde(default)]
    retry_after_secs: Option<u64>,
    #[serde(default)]
    read_only: Option<bool>,
}

fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

async fn set_config(State(msp): State<Msp>, b: Bytes) -> R<Json<Value>> {
    let c: ConfigBody = body(&b)?;
    let mut s: MspSettings = msp.settings();
    if let Some(p) = c.complete_after_polls {
        s.complete_after_polls = p;
    }
    if let Some(secs) = c.complete_after_secs {
        if secs.is_some_and(|x| !x.is_finite() || x < 0.0) {
            return Err(MspControlError::invalid(
                "complete_after_secs",
                "must be a number ≥ 0 or null",
            ));
        }
        s.complete_after_secs = secs;
    }
    if let Some(r) = c.retry_after_secs {
        if r > 86_400 {
            return Err(MspControlError::invalid(
                "retry_after_secs",
                "at most 86400",
            ));
        }
        s.retry_after_secs = r;
    }
    if let Some(r) = c.read_only {
        s.read_only = r;
    }
    msp.set_settings(s);
    Ok(Json(json!(msp.settings())))
}

async fn get_key(State(msp): State<Msp>) -> Json<Value> {
    Json(json!({"api_key": msp.credentials().api_key, "read_only": msp.settings().read_only}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    read_only: Option<bool>,
}

async fn set_key(State(msp): State<Msp>, b: Bytes) -> R<Json<Value>> {
    let k: KeyBody = body(&b)?;
    if let Some(key) = &k.api_key {
        if key.trim().is_empty() || key.contains(char::is_whitespace) {
            return Err(MspControlError::invalid(
                "api_key",
                "must be non-empty without whitespace",
            ));
        }
        msp.set_api_key(key);
    }
    if let Some(r) = k.read_only {
        let mut s = msp.settings();
        s.read_only = r;
        msp.set_settings(s);
    }
    Ok(get_key(State(msp)).await)
}

async fn get_faults(State(msp): State<Msp>) -> Json<Value> {
    let f = msp.faults();
    Json(json!({"rules": f.rules(), "rate_limit_rps": f.rate_limit(), "seed": f.seed()}))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FaultBody {
    Spec { spec: String },
    Rule(FaultRule),
}

async fn add_fault(State(msp): State<Msp>, b: Bytes) -> R<(StatusCode, Json<Value>)> {
    let rule = match body::<FaultBody>(&b)? {
        FaultBody::Spec { spec } => spec
            .parse::<FaultRule>()
            .map_err(|e| MspControlError::invalid("spec", e.to_string()))?,
        FaultBody::Rule(r) => r,
    };
    rule.validate()
        .map_err(|e| MspControlError::invalid("rule", e.to_string()))?;
    if let Some(op) = rule.cmd.as_deref()
        && op != "*"
        && !super::api::Op::ALL.iter().any(|o| o.key() == op)
    {
        return Err(MspControlError::invalid(
            "cmd",
            format!(
                "{op:?} is not an operation; expected * or one of {}",
                super::api::Op::ALL
                    .iter()
                    .map(|o| o.key())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let id = msp.faults().add(rule.clone());
    let mut v = json!(rule);
    v["id"] = json!(id);
    Ok((StatusCode::CREATED, Json(v)))
}

async fn clear_faults(State(msp): State<Msp>) -> Json<Value> {
    msp.faults().clear();
    Json(json!({"rules": []}))
}

async fn delete_fault(State(msp): State<Msp>, Path(id): Path<String>) -> R<Json<Value>> {
    let id = parse_id("id", &id)?;
    if msp.faults().remove(id) {
        Ok(Json(json!({"removed": id})))
    } else {
        Err(MspControlError::not_found(
            "id",
            id.to_string(),
            format!("no fault rule {id}"),
        ))
    }
}

async fn get_rate_limit(State(msp): State<Msp>) -> Json<Value> {
    Json(json!({"rps": msp.faults().rate_limit()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateBody {
    rps: Option<f64>,
}

async fn set_rate_limit(State(msp): State<Msp>, b: Bytes) -> R<Json<Value>> {
    let r: RateBody = body(&b)?;
    if let Some(x) = r.rps
        && (!x.is_finite() || x <= 0.0)
    {
        return Err(MspControlError::invalid(
            "rps",
            "must be a positive number or null",
        ));
    }
    msp.faults().set_rate_limit(r.rps);
    Ok(Json(json!({"rps": msp.faults().rate_limit()})))
}

async fn get_stats(State(msp): State<Msp>) -> Json<Value> {
    Json(json!(msp.stats()))
}

async fn reset_stats(State(msp): State<Msp>) -> Json<Value> {
    msp.reset_stats();
    Json(json!(msp.stats()))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    #[serde(default)]
    stats: bool,
    #[serde(default)]
    faults: bool,
}

async fn reset(State(msp): State<Msp>, b: Bytes) -> R<Json<Value>> {
    let r: ResetBody = body(&b)?;
    msp.reset();
    if r.stats {
        msp.reset_stats();
    }
    if r.faults {
        msp.faults().clear();
    }
    Ok(index(State(msp)).await)
}
