//! The Autotask control API under `/_sandbox/autotask`: add, rename (update) and remove
//! companies and contacts; fault rules; limits and quirks; request counters; reseeding. JSON in
//! and out, errors shaped like the rest of the sandbox control API
//! (`{"error","field","value","message"}`). Never faulted, limited or counted.

// `Err` is the refusal sent back at once, one per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::data::{COMPANY_TYPES, Company, Contact, SeedSpec, render, summary};
use super::faults::FaultRule;
use super::{Autotask, Settings};

/// A control-API refusal.
#[derive(Debug, Clone, PartialEq)]
pub struct CtlError {
    pub status: StatusCode,
    pub code: &'static str,
    pub field: Option<String>,
    pub value: Option<Value>,
    pub message: String,
}

impl CtlError {
    fn invalid(field: &str, value: Option<Value>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            field: Some(field.into()),
            value,
            message: message.into(),
        }
    }

    fn not_found(field: &str, value: i64) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            field: Some(field.into()),
            value: Some(json!(value)),
            message: format!("no such {field}: {value}"),
        }
    }

    fn conflict(field: &str, value: i64) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "conflict",
            field: Some(field.into()),
            value: Some(json!(value)),
            message: format!("{field} {value} already exists"),
        }
    }
}

impl IntoResponse for CtlError {
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

type Result<T, E = CtlError> = std::result::Result<T, E>;

/// Parses a JSON body (empty means `{}`), naming the offending field.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T> {
    let bytes: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        CtlError::invalid(&field, None, e.inner().to_string())
    })
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn check_type(t: i64) -> Result<()> {
    if COMPANY_TYPES.iter().any(|(v, _)| *v == t) {
        Ok(())
    } else {
        Err(CtlError::invalid(
            "companyType",
            Some(json!(t)),
            "not a companyType picklist value (1, 2, 3, 4, 6, 7, 8)",
        ))
    }
}

fn check_name(field: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        Err(CtlError::invalid(
            field,
            Some(json!(v)),
            "must not be empty",
        ))
    } else {
        Ok(())
    }
}

/// A contact's `isActive` as the control API accepts it: 1/0 or true/false.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Int(u8),
}

impl Flag {
    fn get(self) -> bool {
        match self {
            Flag::Bool(b) => b,
            Flag::Int(i) => i != 0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewCompany {
    id: Option<i64>,
    company_name: String,
    company_type: Option<i64>,
    is_active: Option<bool>,
    company_number: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CompanyPatch {
    company_name: Option<String>,
    company_type: Option<i64>,
    is_active: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewContact {
    id: Option<i64>,
    #[serde(rename = "companyID")]
    company_id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    email_address: Option<String>,
    email_address2: Option<String>,
    email_address3: Option<String>,
    is_active: Option<Flag>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ContactPatch {
    #[serde(rename = "companyID")]
    company_id: Option<i64>,
    first_name: Option<String>,
    last_name: Option<String>,
    email_address: Option<String>,
    email_address2: Option<String>,
    email_address3: Option<String>,
    is_active: Option<Flag>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsPatch {
    thread_limit: Option<usize>,
    #[serde(default, deserialize_with = "double_option")]
    hourly_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    limit_retry_after: Option<Option<u64>>,
    usage_latency: Option<bool>,
    #[serde(default)]
    reset_usage: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    locked: Option<bool>,
    can_read_companies: Option<bool>,
    can_read_contacts: Option<bool>,
    forbidden_status: Option<u16>,
    #[serde(default, deserialize_with = "double_option")]
    lock_after_failures: Option<Option<u32>>,
    empty_401_body: Option<bool>,
    missing_item_404: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    companies: Option<usize>,
    contacts: Option<usize>,
    seed: Option<u64>,
    #[serde(default)]
    stats: bool,
    #[serde(default)]
    faults: bool,
}

/// `null` → `Some(None)`, absent → `None` (so `null` can lift a limit).
fn double_option<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn settings_json(s: &Settings) -> Value {
    serde_json::to_value(s).unwrap_or_default()
}

async fn index(State(at): State<Autotask>) -> Json<Value> {
    Json(json!({
        "endpoints": [
            "GET /", "GET /summary", "POST /reset",
            "POST /companies", "GET|PATCH|DELETE /companies/{id}",
            "POST /contacts", "GET|PATCH|DELETE /contacts/{id}",
            "GET|POST|DELETE /faults", "DELETE /faults/{id}",
            "GET|DELETE /stats", "GET|POST /limits", "GET|POST /user",
        ],
        "username": at.config().username,
    }))
}

async fn get_summary(State(at): State<Autotask>) -> Json<Value> {
    Json(at.read(summary))
}

async fn reset(State(at): State<Autotask>, body: Bytes) -> Result<Json<Value>> {
    let b: ResetBody = parse(&body)?;
    let c = at.config();
    for (field, n, max) in [
        ("companies", b.companies, 1_000_000),
        ("contacts", b.contacts, 10_000_000),
    ] {
        if let Some(n) = n.filter(|&n| n > max) {
            return Err(CtlError::invalid(
                field,
                Some(json!(n)),
                format!("at most {max}"),
            ));
        }
    }
    let spec = SeedSpec {
        companies: b.companies.unwrap_or(c.companies),
        contacts: b.contacts.unwrap_or(c.contacts),
        seed: b.seed.unwrap_or(c.seed),
    };
    let at2 = at.clone();
    tokio::task::spawn_blocking(move || at2.reseed(spec))
        .await
        .map_err(|e| CtlError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            field: None,
            value: None,
            message: e.to_string(),
        })?;
    if b.stats {
        at.reset_stats();
    }
    if b.faults {
        at.clear_faults();
    }
    Ok(Json(at.read(summary)))
}

async fn add_company(State(at): State<Autotask>, body: Bytes) -> Result<(StatusCode, Json<Value>)> {
    let b: NewCompany = parse(&body)?;
    check_name("companyName", &b.company_name)?;
    let company_type = b.company_type.unwrap_or(1);
    check_type(company_type)?;
    at.write(|db| {
        let id = b.id.unwrap_or(db.next_company_id);
        if db.companies.contains_key(&id) {
            return Err(CtlError::conflict("id", id));
        }
        if id < 0 {
            return Err(CtlError::invalid(
                "id",
                Some(json!(id)),
                "must not be negative",
            ));
        }
        let t = now();
        let c = Company {
            id,
            name: b.company_name,
            number: b.company_number.unwrap_or_else(|| id.to_string()),
            company_type,
            classification: None,
            is_active: b.is_active.unwrap_or(true),
            parent: None,
            owner: 29_682_885,
            phone: "555-555-0199".into(),
            web: None,
            address1: "1 New Street".into(),
            city: "Portland",
            state: "OR",
            postal: "97201".into(),
            created: t,
            last_activity: None,
            modified: t,
            udfs: vec![],
        };
        let v = render(&c, None);
        db.insert_company(c);
        Ok((StatusCode::CREATED, Json(v)))
    })
}

async fn get_company(State(at): State<Autotask>, Path(id): Path<i64>) -> Result<Json<Value>> {
    at.read(|db| db.companies.get(&id).map(|c| Json(render(c, None))))
        .ok_or_else(|| CtlError::not_found("id", id))
}

async fn patch_company(
    State(at): State<Autotask>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>> {
    let b: CompanyPatch = parse(&body)?;
    if let Some(n) = &b.company_name {
        check_name("companyName", n)?;
    }
    if let Some(t) = b.company_type {
        check_type(t)?;
    }
    at.write(|db| {
        let c = db
            .companies
            .get_mut(&id)
            .ok_or_else(|| CtlError::not_found("id", id))?;
        if let Some(n) = b.company_name {
            c.name = n;
        }
        if let Some(t) = b.company_type {
            c.company_type = t;
        }
        if let Some(a) = b.is_active {
            c.is_active = a;
        }
        c.modified = now();
        Ok(Json(render(&*c, None)))
    })
}

async fn delete_company(State(at): State<Autotask>, Path(id): Path<i64>) -> Result<Json<Value>> {
    at.write(|db| db.remove_company(id))
        .map(|(c, n)| Json(json!({"deleted": render(&c, None), "contacts_deleted": n})))
        .ok_or_else(|| CtlError::not_found("id", id))
}

fn email(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

async fn add_contact(State(at): State<Autotask>, body: Bytes) -> Result<(StatusCode, Json<Value>)> {
    let b: NewContact = parse(&body)?;
    at.write(|db| {
        if !db.companies.contains_key(&b.company_id) {
            return Err(CtlError::not_found("companyID", b.company_id));
        }
        let id = b.id.unwrap_or(db.next_contact_id);
        if db.contacts.contains_key(&id) {
            return Err(CtlError::conflict("id", id));
        }
        let t = now();
        let c = Contact {
            id,
            company_id: b.company_id,
            first: b.first_name.unwrap_or_default(),
            last: b.last_name.unwrap_or_default(),
            title: None,
            emails: [
                email(b.email_address),
                email(b.email_address2),
                email(b.email_address3),
            ],
            is_active: b.is_active.is_none_or(Flag::get),
            primary: false,
            created: t,
            modified: t,
        };
        let v = render(&c, None);
        db.insert_contact(c);
        Ok((StatusCode::CREATED, Json(v)))
    })
}

async fn get_contact(State(at): State<Autotask>, Path(id): Path<i64>) -> Result<Json<Value>> {
    at.read(|db| db.contacts.get(&id).map(|c| Json(render(c, None))))
        .ok_or_else(|| CtlError::not_found("id", id))
}

async fn patch_contact(
    State(at): State<Autotask>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>> {
    let b: ContactPatch = parse(&body)?;
    at.write(|db| {
        if let Some(cid) = b.company_id
            && !db.companies.contains_key(&cid)
        {
            return Err(CtlError::not_found("companyID", cid));
        }
        let mut c = db
            .contacts
            .get(&id)
            .cloned()
            .ok_or_else(|| CtlError::not_found("id", id))?;
        if let Some(v) = b.company_id {
            c.company_id = v;
        }
        if let Some(v) = b.first_name {
            c.first = v;
        }
        if let Some(v) = b.last_name {
            c.last = v;
        }
        // An empty string clears an e-mail field.
        for (slot, v) in
            c.emails
                .iter_mut()
                .zip([b.email_address, b.email_address2, b.email_address3])
        {
            if let Some(v) = v {
                *slot = email(Some(v));
            }
        }
        if let Some(v) = b.is_active {
            c.is_active = v.get();
        }
        c.modified = now();
        let v = render(&c, None);
        db.insert_contact(c);
        Ok(Json(v))
    })
}

async fn delete_contact(State(at): State<Autotask>, Path(id): Path<i64>) -> Result<Json<Value>> {
    at.write(|db| db.remove_contact(id))
        .map(|c| Json(json!({"deleted": render(&c, None)})))
        .ok_or_else(|| CtlError::not_found("id", id))
}

async fn list_faults(State(at): State<Autotask>) -> Json<Value> {
    Json(json!({ "rules": at.faults().rules() }))
}

async fn add_fault(State(at): State<Autotask>, body: Bytes) -> Result<(StatusCode, Json<Value>)> {
    let rule: FaultRule = parse(&body)?;
    rule.validate()
        .map_err(|(f, m)| CtlError::invalid(f, None, m))?;
    let id = at.add_fault(rule.clone());
    let mut v = serde_json::to_value(&rule).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(id));
    }
    Ok((StatusCode::CREATED, Json(v)))
}

async fn clear_faults(State(at): State<Autotask>) -> Json<Value> {
    at.clear_faults();
    Json(json!({ "rules": [] }))
}

async fn delete_fault(State(at): State<Autotask>, Path(id): Path<i64>) -> Result<Json<Value>> {
    if id >= 0 && at.faults().remove(id as u64) {
        Ok(Json(json!({ "removed": id })))
    } else {
        Err(CtlError::not_found("id", id))
    }
}

async fn get_stats(State(at): State<Autotask>) -> Json<Value> {
    Json(serde_json::to_value(at.stats()).unwrap_or_default())
}

async fn reset_stats(State(at): State<Autotask>) -> Json<Value> {
    at.reset_stats();
    Json(serde_json::to_value(at.stats()).unwrap_or_default())
}

fn limits_json(at: &Autotask) -> Value {
    let s = at.settings();
    json!({
        "thread_limit": s.thread_limit,
        "hourly_limit": s.hourly_limit,
        "limit_retry_after": s.limit_retry_after,
        "usage_latency": s.usage_latency,
        "current_usage": at.faults().usage(),
    })
}

async fn get_limits(State(at): State<Autotask>) -> Json<Value> {
    Json(limits_json(&at))
}

async fn set_limits(State(at): State<Autotask>, body: Bytes) -> Result<Json<Value>> {
    let b: LimitsPatch = parse(&body)?;
    if b.thread_limit == Some(0) {
        return Err(CtlError::invalid(
            "thread_limit",
            Some(json!(0)),
            "must be at least 1",
        ));
    }
    at.update_settings(|s| {
        if let Some(v) = b.thread_limit {
            s.thread_limit = v;
        }
        if let Some(v) = b.hourly_limit {
            s.hourly_limit = v;
        }
        if let Some(v) = b.limit_retry_after {
            s.limit_retry_after = v;
        }
        if let Some(v) = b.usage_latency {
            s.usage_latency = v;
        }
    });
    if b.reset_usage {
        at.faults().reset_usage();
    }
    Ok(Json(limits_json(&at)))
}

async fn get_user(State(at): State<Autotask>) -> Json<Value> {
    Json(settings_json(&at.settings()))
}

async fn set_user(State(at): State<Autotask>, body: Bytes) -> Result<Json<Value>> {
    let b: UserPatch = parse(&body)?;
    if let Some(s) = b.forbidden_status
        && !matches!(s, 403 | 500)
    {
        return Err(CtlError::invalid(
            "forbidden_status",
            Some(json!(s)),
            "must be 403 or 500",
        ));
    }
    let s = at.update_settings(|s| {
        if let Some(v) = b.locked {
            s.locked = v;
            if !v {
                s.failed_logins = 0;
            }
        }
        if let Some(v) = b.can_read_companies {
            s.can_read_companies = v;
        }
        if let Some(v) = b.can_read_contacts {
            s.can_read_contacts = v;
        }
        if let Some(v) = b.forbidden_status {
            s.forbidden_status = v;
        }
        if let Some(v) = b.lock_after_failures {
            s.lock_after_failures = v;
        }
        if let Some(v) = b.empty_401_body {
            s.empty_401_body = v;
        }
        if let Some(v) = b.missing_item_404 {
            s.missing_item_404 = v;
        }
        s.clone()
    });
    Ok(Json(settings_json(&s)))
}

async fn unknown() -> CtlError {
    CtlError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        field: Some("path".into()),
        value: None,
        message: "no such Autotask control endpoint".into(),
    }
}

/// The control routes (nested under `/_sandbox/autotask` by `server.rs`).
pub fn router(at: Autotask) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/summary", get(get_summary))
        .route("/reset", post(reset))
        .route("/companies", post(add_company))
        .route(
            "/companies/{id}",
            get(get_company).patch(patch_company).delete(delete_company),
        )
        .route("/contacts", post(add_contact))
        .route(
            "/contacts/{id}",
            get(get_contact).patch(patch_contact).delete(delete_contact),
        )
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/faults/{id}", delete(delete_fault))
        .route("/stats", get(get_stats).delete(reset_stats))
        .route("/limits", get(get_limits).post(set_limits))
        .route("/user", get(get_user).post(set_user))
        .fallback(unknown)
        .with_state(at)
}
