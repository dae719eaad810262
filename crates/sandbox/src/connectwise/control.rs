//! The ConnectWise control API under `/_sandbox/connectwise/`: add, rename and remove companies
//! and contacts; fault rules; request counters; codebase, credentials and permissions. JSON in
//! and out; errors are `{"error":CODE,"field":FIELD,"value":VALUE,"message":TEXT}` like the rest
//! of `/_sandbox` (see `crates/sandbox/CONNECTWISE.md`).

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

use super::data::{Comm, CommKind, Company, Contact};
use super::{ConnectWise, CwFaultRule, Permissions, UnknownCompany};

/// A control-API refusal.
#[derive(Debug, Clone, PartialEq)]
pub struct CwControlError {
    pub status: StatusCode,
    pub code: &'static str,
    pub field: Option<String>,
    pub message: String,
}

impl CwControlError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    fn not_found(field: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            field: Some(field.to_string()),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CwControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CwControlError {}

impl IntoResponse for CwControlError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.code,
            "field": self.field,
            "value": Value::Null,
            "message": self.message,
        });
        (self.status, Json(body)).into_response()
    }
}

type R<T> = Result<T, CwControlError>;

/// A new company. Missing: `identifier` derived from the name and id, `type_ids` `[1]`,
/// `status_id` the default status.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCompany {
    pub name: String,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub type_ids: Option<Vec<u32>>,
    #[serde(default)]
    pub status_id: Option<u32>,
    #[serde(default)]
    pub deleted: bool,
}

/// Changes to a company (rename, status, types, deleted flag).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub type_ids: Option<Vec<u32>>,
    #[serde(default)]
    pub status_id: Option<u32>,
    #[serde(default)]
    pub deleted: Option<bool>,
}

/// A new contact; `emails[0]` is the default e-mail.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    pub company_id: u64,
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub inactive: bool,
}

/// Changes to a contact (rename, e-mails replaced, active state, move to another company).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub emails: Option<Vec<String>>,
    #[serde(default)]
    pub inactive: Option<bool>,
    #[serde(default)]
    pub company_id: Option<u64>,
}

fn check_name(field: &str, v: &str, max: usize) -> R<()> {
    if v.trim().is_empty() {
        return Err(CwControlError::invalid(field, format!("{field} is empty")));
    }
    if v.chars().count() > max {
        return Err(CwControlError::invalid(
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// Refuses a `status_id` or `type_ids` entry the tables do not hold (status first).
fn check_refs(d: &super::data::Data, status: Option<u32>, types: &[u32]) -> R<()> {
    if let Some(s) = status
        && !d.statuses.iter().any(|x| x.id == s)
    {
        return Err(CwControlError::invalid(
            "status_id",
            format!("no status {s}"),
        ));
    }
    if let Some(bad) = types.iter().find(|t| !d.types.iter().any(|x| x.id == **t)) {
        return Err(CwControlError::invalid(
            "type_ids",
            format!("no type {bad}"),
        ));
    }
    Ok(())
}

fn comms(d: &mut super::data::Data, emails: &[String]) -> R<Vec<Comm>> {
    let mut out = Vec::new();
    for (i, e) in emails.iter().enumerate() {
        check_name("emails", e, 250)?;
        out.push(Comm {
            id: d.next_comm_id,
            kind: CommKind::Email,
            value: e.clone(),
            default_flag: i == 0,
        });
        d.next_comm_id += 1;
    }
    Ok(out)
}

impl ConnectWise {
    /// Adds a company; answers it as the API serves it (with `api` links relative to `/cw`).
    pub fn add_company(&self, n: NewCompany) -> R<Value> {
        check_name("name", &n.name, 50)?;
        let mut d = self.data().write();
        let types = n
            .type_ids
            .unwrap_or_else(|| d.types.first().map(|t| t.id).into_iter().collect());
        check_refs(&d, n.status_id, &types)?;
        let id = d.next_company_id;
        d.next_company_id += 1;
        d.clock += 60;
        let identifier = match n.identifier {
            Some(i) => {
                check_name("identifier", &i, 30)?;
                i
            }
            None => {
                let mut s: String = n.name.chars().filter(char::is_ascii_alphanumeric).collect();
                s.truncate(22);
                format!("{s}{id}")
            }
        };
        let status_id = n.status_id.unwrap_or_else(|| {
            d.statuses
                .iter()
                .find(|s| s.default_flag)
                .or(d.statuses.first())
                .map_or(0, |s| s.id)
        });
        let c = Company {
            id,
            identifier,
            website: String::new(),
            name: n.name,
            status_id,
            type_ids: types,
            deleted: n.deleted,
            date_deleted: n.deleted.then_some(d.clock),
            city: String::new(),
            state: String::new(),
            phone: String::new(),
            lead_flag: false,
            date_entered: d.clock,
            last_updated: d.clock,
        };
        let v = d.company_json(&c, &self.api_path());
        d.companies.insert(id, c);
        Ok(v)
    }

    pub fn update_company(&self, id: u64, p: CompanyPatch) -> R<Value> {
        let mut d = self.data().write();
        check_refs(&d, p.status_id, p.type_ids.as_deref().unwrap_or_default())?;
        if let Some(n) = &p.name {
            check_name("name", n, 50)?;
        }
        if let Some(n) = &p.identifier {
            check_name("identifier", n, 30)?;
        }
        d.clock += 60;
        let now = d.clock;
        let Some(c) = d.companies.get_mut(&id) else {
            return Err(CwControlError::not_found("id", format!("no company {id}")));
        };
        if let Some(n) = p.name {
            c.name = n;
        }
        if let Some(n) = p.identifier {
            c.identifier = n;
        }
        if let Some(s) = p.status_id {
            c.status_id = s;
        }
        if let Some(t) = p.type_ids {
            c.type_ids = t;
        }
        if let Some(del) = p.deleted {
            c.deleted = del;
            c.date_deleted = del.then_some(now);
        }
        c.last_updated = now;
        let c = c.clone();
        Ok(d.company_json(&c, &self.api_path()))
    }

    /// Removes a company and its contacts; answers how many contacts went with it.
    pub fn remove_company(&self, id: u64) -> R<usize> {
        let mut d = self.data().write();
        if d.companies.remove(&id).is_none() {
            return Err(CwControlError::not_found("id", format!("no company {id}")));
        }
        let contacts = d.by_company.remove(&id).unwrap_or_default();
        for c in &contacts {
            d.contacts.remove(c);
        }
        Ok(contacts.len())
    }

    pub fn add_contact(&self, n: NewContact) -> R<Value> {
        check_name("first_name", &n.first_name, 30)?;
        let mut d = self.data().write();
        if !d.companies.contains_key(&n.company_id) {
            return Err(CwControlError::not_found(
                "company_id",
                format!("no company {}", n.company_id),
            ));
        }
        let comms = comms(&mut d, &n.emails)?;
        let id = d.next_contact_id;
        d.next_contact_id += 1;
        d.clock += 60;
        let set = d.by_company.entry(n.company_id).or_default();
        let default_flag = set.is_empty();
        set.insert(id);
        let c = Contact {
            id,
            company_id: n.company_id,
            first_name: n.first_name,
            last_name: n.last_name,
            title: None,
            inactive: n.inactive,
            default_flag,
            comms,
            date_entered: d.clock,
            last_updated: d.clock,
        };
        let v = d.contact_json(&c, &self.api_path(), false);
        d.contacts.insert(id, c);
        Ok(v)
    }

    pub fn update_contact(&self, id: u64, p: ContactPatch) -> R<Value> {
        let mut d = self.data().write();
        if let Some(n) = &p.first_name {
            check_name("first_name", n, 30)?;
        }
        if let Some(co) = p.company_id
            && !d.companies.contains_key(&co)
        {
            return Err(CwControlError::not_found(
                "company_id",
                format!("no company {co}"),
            ));
        }
        if !d.contacts.contains_key(&id) {
            return Err(CwControlError::not_found("id", format!("no contact {id}")));
        }
        let new_comms = match &p.emails {
            Some(e) => Some(comms(&mut d, e)?),
            None => None,
        };
        d.clock += 60;
        let now = d.clock;
        let mut moved = None;
        if let Some(c) = d.contacts.get_mut(&id) {
            if let Some(n) = p.first_name {
                c.first_name = n;
            }
            if let Some(n) = p.last_name {
                c.last_name = n;
            }
            if let Some(i) = p.inactive {
                c.inactive = i;
            }
            if let Some(new) = new_comms {
                // Replace the e-mails, keep phones and faxes.
                c.comms.retain(|m| m.kind != CommKind::Email);
                c.comms.extend(new);
            }
            if let Some(co) = p.company_id
                && co != c.company_id
            {
                moved = Some((c.company_id, co));
                c.company_id = co;
            }
            c.last_updated = now;
        }
        if let Some((from, to)) = moved {
            if let Some(s) = d.by_company.get_mut(&from) {
                s.remove(&id);
            }
            d.by_company.entry(to).or_default().insert(id);
        }
        let c = d.contacts.get(&id).cloned();
        Ok(c.map_or(Value::Null, |c| d.contact_json(&c, &self.api_path(), false)))
    }

    pub fn remove_contact(&self, id: u64) -> R<()> {
        let mut d = self.data().write();
        let Some(c) = d.contacts.remove(&id) else {
            return Err(CwControlError::not_found("id", format!("no contact {id}")));
        };
        if let Some(s) = d.by_company.get_mut(&c.company_id) {
            s.remove(&id);
        }
        Ok(())
    }
}

/// A JSON body; empty means `{}`.
fn body<T: DeserializeOwned>(b: &Bytes) -> R<T> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return body_required(&Bytes::from_static(b"{}"));
    }
    body_required(b)
}

/// A JSON body; empty is refused.
fn body_required<T: DeserializeOwned>(b: &Bytes) -> R<T> {
    serde_json::from_slice(b).map_err(|e| CwControlError::invalid("body", e.to_string()))
}

/// The `/_sandbox/connectwise` routes.
pub fn router(cw: ConnectWise) -> Router {
    Router::new()
        .route("/", get(index))
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
            get(get_faults).post(add_fault).delete(clear_faults),
        )
        .route("/faults/{id}", delete(delete_fault))
        .route("/stats", get(get_stats).delete(reset_stats))
        .route("/codebase", get(get_codebase).post(set_codebase))
        .route("/credentials", get(get_credentials).post(set_credentials))
        .route("/permissions", get(get_permissions).post(set_permissions))
        .fallback(fallback)
        .with_state(cw)
}

async fn fallback(uri: axum::http::Uri) -> CwControlError {
    CwControlError::not_found(
        "path",
        format!(
            "{}: no such control endpoint (see crates/sandbox/CONNECTWISE.md)",
            uri.path()
        ),
    )
}

async fn index(State(cw): State<ConnectWise>) -> Json<Value> {
    let (companies, contacts) = cw.counts();
    Json(json!({
        "companies": companies,
        "contacts": contacts,
        "codebase": cw.credentials().codebase,
        "endpoints": [
            "POST /companies", "GET|PATCH|DELETE /companies/{id}",
            "POST /contacts", "GET|PATCH|DELETE /contacts/{id}",
            "GET|POST|DELETE /faults", "DELETE /faults/{id}",
            "GET|DELETE /stats", "GET|POST /codebase", "GET|POST /credentials",
            "GET|POST /permissions"
        ],
    }))
}

fn parse_id(s: &str) -> R<u64> {
    s.parse()
        .map_err(|_| CwControlError::invalid("id", format!("{s} is not an id")))
}

async fn add_company(State(cw): State<ConnectWise>, b: Bytes) -> R<(StatusCode, Json<Value>)> {
    let n: NewCompany = body(&b)?;
    Ok((StatusCode::CREATED, Json(cw.add_company(n)?)))
}

async fn get_company(State(cw): State<ConnectWise>, Path(id): Path<String>) -> R<Json<Value>> {
    let id = parse_id(&id)?;
    let d = cw.data().read();
    d.companies
        .get(&id)
        .map(|c| Json(d.company_json(c, &cw.api_path())))
        .ok_or_else(|| CwControlError::not_found("id", format!("no company {id}")))
}

async fn patch_company(
    State(cw): State<ConnectWise>,
    Path(id): Path<String>,
    b: Bytes,
) -> R<Json<Value>> {
    let p: CompanyPatch = body(&b)?;
    Ok(Json(cw.update_company(parse_id(&id)?, p)?))
}

async fn delete_company(State(cw): State<ConnectWise>, Path(id): Path<String>) -> R<Json<Value>> {
    let id = parse_id(&id)?;
    let n = cw.remove_company(id)?;
    Ok(Json(json!({"removed": id, "contacts_removed": n})))
}

async fn add_contact(State(cw): State<ConnectWise>, b: Bytes) -> R<(StatusCode, Json<Value>)> {
    let n: NewContact = body_required(&b)?;
    Ok((StatusCode::CREATED, Json(cw.add_contact(n)?)))
}

async fn get_contact(State(cw): State<ConnectWise>, Path(id): Path<String>) -> R<Json<Value>> {
    let id = parse_id(&id)?;
    let d = cw.data().read();
    d.contacts
        .get(&id)
        .map(|c| Json(d.contact_json(c, &cw.api_path(), false)))
        .ok_or_else(|| CwControlError::not_found("id", format!("no contact {id}")))
}

async fn patch_contact(
    State(cw): State<ConnectWise>,
    Path(id): Path<String>,
    b: Bytes,
) -> R<Json<Value>> {
    let p: ContactPatch = body(&b)?;
    Ok(Json(cw.update_contact(parse_id(&id)?, p)?))
}

async fn delete_contact(State(cw): State<ConnectWise>, Path(id): Path<String>) -> R<Json<Value>> {
    let id = parse_id(&id)?;
    cw.remove_contact(id)?;
    Ok(Json(json!({"removed": id})))
}

async fn get_faults(State(cw): State<ConnectWise>) -> Json<Value> {
    Json(json!({"rules": cw.faults()}))
}

async fn add_fault(State(cw): State<ConnectWise>, b: Bytes) -> R<(StatusCode, Json<Value>)> {
    let rule: CwFaultRule = body_required(&b)?;
    let id = cw
        .add_fault(rule.clone())
        .map_err(|m| CwControlError::invalid("rule", m))?;
    let mut v = serde_json::to_value(&rule).unwrap_or(Value::Null);
    v["id"] = json!(id);
    Ok((StatusCode::CREATED, Json(v)))
}

async fn clear_faults(State(cw): State<ConnectWise>) -> Json<Value> {
    cw.clear_faults();
    Json(json!({"rules": []}))
}

async fn delete_fault(State(cw): State<ConnectWise>, Path(id): Path<String>) -> R<Json<Value>> {
    let id = parse_id(&id)?;
    if cw.remove_fault(id) {
        Ok(Json(json!({"removed": id})))
    } else {
        Err(CwControlError::not_found(
            "id",
            format!("no fault rule {id}"),
        ))
    }
}

async fn get_stats(State(cw): State<ConnectWise>) -> Json<Value> {
    Json(json!(cw.stats()))
}

async fn reset_stats(State(cw): State<ConnectWise>) -> Json<Value> {
    cw.reset_stats();
    Json(json!(cw.stats()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodebaseBody {
    codebase: String,
}

async fn get_codebase(State(cw): State<ConnectWise>) -> Json<Value> {
    Json(json!({"codebase": cw.credentials().codebase}))
}

async fn set_codebase(State(cw): State<ConnectWise>, b: Bytes) -> R<Json<Value>> {
    let c: CodebaseBody = body_required(&b)?;
    let t = c.codebase.trim_matches('/');
    if t.is_empty()
        || !t
            .bytes()
            .all(|x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.')
    {
        return Err(CwControlError::invalid(
            "codebase",
            "a codebase is letters, digits, '_' and '.', e.g. v2025_2/",
        ));
    }
    let old = cw.set_codebase(&c.codebase);
    Ok(Json(
        json!({"codebase": cw.credentials().codebase, "previous": old}),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsBody {
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

async fn get_credentials(State(cw): State<ConnectWise>) -> Json<Value> {
    Json(json!(cw.credentials()))
}

async fn set_credentials(State(cw): State<ConnectWise>, b: Bytes) -> R<Json<Value>> {
    let c: CredentialsBody = body(&b)?;
    cw.set_credentials(
        c.public_key.as_deref(),
        c.private_key.as_deref(),
        c.client_id.as_deref(),
    );
    Ok(Json(json!(cw.credentials())))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionsBody {
    #[serde(default)]
    companies: Option<bool>,
    #[serde(default)]
    contacts: Option<bool>,
    #[serde(default)]
    setup: Option<bool>,
    #[serde(default)]
    contact_company_visible: Option<bool>,
    #[serde(default)]
    unknown_company: Option<UnknownCompany>,
}

async fn get_permissions(State(cw): State<ConnectWise>) -> Json<Value> {
    Json(json!(cw.permissions()))
}

async fn set_permissions(State(cw): State<ConnectWise>, b: Bytes) -> R<Json<Value>> {
    let p: PermissionsBody = body(&b)?;
    let mut cur: Permissions = cw.permissions();
    cur.companies = p.companies.unwrap_or(cur.companies);
    cur.contacts = p.contacts.unwrap_or(cur.contacts);
    cur.setup = p.setup.unwrap_or(cur.setup);
    cur.contact_company_visible = p
        .contact_company_visible
        .unwrap_or(cur.contact_company_visible);
    cw.set_permissions(cur);
    if let Some(u) = p.unknown_company {
        cw.set_unknown_company(u);
    }
    Ok(Json(json!(cw.permissions())))
}
