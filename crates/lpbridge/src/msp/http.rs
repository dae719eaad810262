//! The MSP import wizard's endpoints (thin: parse, authorise, call [`super`]). A web console
//! drives the same flow as `lpbridge msp import plan|apply`, step by step:
//!
//! | step | endpoint |
//! |---|---|
//! | credentials | `GET/PUT /msp/credentials` (the MSP account's LastPass REST API key, write-only) |
//! | pick a PSA, lock status | `GET /msp/integrations`, `GET /msp/integrations/{id}/lock` |
//! | 1. filters | `GET /msp/integrations/{id}/attributes` |
//! | 2. fetch both lists | `POST /msp/imports {psa, filter}` (takes the lock), `GET /msp/imports/{id}`, `GET /msp/imports/{id}/companies`, `GET /msp/imports/{id}/plan` |
//! | 3. choices | `PATCH /msp/imports/{id}/companies` |
//! | 4. users | `GET/PATCH /msp/imports/{id}/companies/{company}/users` |
//! | 5. Import and Map | `POST /msp/imports/{id}/apply` (202; runs in the background) |
//! | 6. result, progress | `GET /msp/imports/{id}/result` (poll it) |
//! | end | `DELETE /msp/imports/{id}` (releases the lock) |
//!
//! A wizard holds its integration's lock from `POST /msp/imports` until it is deleted, its
//! import finishes, or it sits idle for [`super::lock::WIZARD_TTL`]; every request of its
//! creator renews it. Another key gets 409, "Another admin is already working with this
//! integration". Reads need any API key; changes need a read-write key that is not limited to
//! some connections.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use lastpass::rest::{CompanyId, CompanyUserId};
use lp_types::{ConnectionId, Email, InvalidValue, Secret};
use psa::CompanyFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use super::apply::{self, ApplyOptions, ImportResult, NoProgress};
use super::lock::{self, Held, Owner};
use super::plan::{self, CompanyAction, CompanyRow, Edit, Plan};
use super::{ImportContext, MspError, messages};
use crate::error::Error;
use crate::http::{Admin, ApiError, App, Caller, JsonBody, typed};
use crate::store::msp::{RunStatus, WizardRow};
use crate::store::{PsaTuning, StoreError};

type ApiResult = Result<Response, ApiError>;

/// The routes, merged into the service's router.
pub fn router() -> Router<App> {
    Router::new()
        .route(
            "/msp/credentials",
            get(get_credentials).put(put_credentials),
        )
        .route("/msp/integrations", get(list_integrations))
        .route("/msp/integrations/{id}/attributes", get(attributes))
        .route("/msp/integrations/{id}/lock", get(lock_status))
        .route("/msp/imports", post(create_import))
        .route("/msp/imports/{id}", get(get_import).delete(delete_import))
        .route("/msp/imports/{id}/plan", get(get_plan))
        .route(
            "/msp/imports/{id}/companies",
            get(list_companies).patch(patch_companies),
        )
        .route(
            "/msp/imports/{id}/companies/{company}/users",
            get(get_users).patch(patch_users),
        )
        .route("/msp/imports/{id}/apply", post(apply_import))
        .route("/msp/imports/{id}/result", get(result))
}

/// Status, machine code, message, provider errors and `Retry-After` of an [`MspError`] (used
/// by [`crate::http::error`]).
pub fn classify(e: &MspError) -> (StatusCode, &'static str, String, Vec<Value>, Option<u64>) {
    use lastpass::rest::Error as R;
    let (status, code) = match e {
        MspError::CredentialsRequired(_) => (StatusCode::BAD_REQUEST, "CredentialsRequired"),
        MspError::Locked { .. } => (StatusCode::CONFLICT, "Locked"),
        MspError::Psa(p) => return crate::http::error::classify(&Error::Psa(p.clone())),
        MspError::LastPass { source } => match source {
            R::NotEnoughLicenses { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "NotEnoughLicenses"),
            R::Auth { .. } => (StatusCode::UNAUTHORIZED, "ProviderAuthenticationError"),
            R::Forbidden { .. } => (StatusCode::FORBIDDEN, "ProviderForbidden"),
            R::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "ProviderRateLimited"),
            R::InvalidInput(_) => (StatusCode::BAD_REQUEST, "ValidationError"),
            R::NotFound { .. } => (StatusCode::NOT_FOUND, "NotFound"),
            R::Conflict { .. } | R::Rejected { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "ProviderRejected")
            }
            _ => (StatusCode::BAD_GATEWAY, "ProviderError"),
        },
        MspError::Invalid(_) => (StatusCode::BAD_REQUEST, "ValidationError"),
        MspError::Tampered(_) | MspError::Foreign(_) => (StatusCode::BAD_REQUEST, "InvalidPlan"),
        MspError::Stale(_) => (StatusCode::CONFLICT, "StalePlan"),
        MspError::LockLost(_) => (StatusCode::CONFLICT, "Locked"),
        MspError::NotFound(_) | MspError::Store(StoreError::NotFound { .. }) => {
            (StatusCode::NOT_FOUND, "NotFound")
        }
        MspError::Store(StoreError::Invalid(_)) => (StatusCode::BAD_REQUEST, "ValidationError"),
        MspError::Store(StoreError::Conflict { .. }) => (StatusCode::CONFLICT, "Conflict"),
        MspError::Store(_) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "internal error (see the service log)".into(),
                vec![],
                None,
            );
        }
    };
    (status, code, e.to_string(), vec![], None)
}

fn msp(e: impl Into<MspError>) -> ApiError {
    ApiError(Error::Msp(e.into()))
}

fn ok(status: StatusCode, data: Value) -> ApiResult {
    Ok((status, Json(json!({ "data": data }))).into_response())
}

fn tuning(app: &App) -> PsaTuning {
    PsaTuning {
        timeout: Some(app.settings.client.timeout),
        attempts: Some(app.settings.client.attempts),
    }
}

fn integration_id(raw: &str) -> Result<ConnectionId, ApiError> {
    ConnectionId::new(raw.trim())
        .map_err(|_| ApiError(InvalidValue::new("psa", raw, "must not be empty").into()))
}

/// The lock owner of a wizard: the API key, and the wizard id as its token. It names no host
/// or process, so any replica serving the wizard's requests holds the same lock.
fn wizard_owner(key_id: &str, key_name: &str, wizard: &str) -> Owner {
    Owner {
        admin: format!("API key {key_id} ({key_name})"),
        host: "lpbridge serve".into(),
        pid: 0,
        token: wizard.to_owned(),
    }
}

fn owner_of(w: &WizardRow, c: &Caller) -> Owner {
    wizard_owner(&w.created_by, &c.0.name, &w.id)
}

// ---- credentials ------------------------------------------------------------------------------

async fn get_credentials(_c: Caller, State(app): State<App>) -> ApiResult {
    let s = app.store.msp_settings_summary().await?;
    ok(StatusCode::OK, json!(s))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutCredentials {
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    api_key: Option<Secret>,
    /// Check the key with one call before storing it (default true).
    #[serde(default)]
    check: Option<bool>,
}

impl crate::actions::Validate for PutCredentials {}

async fn put_credentials(_a: Admin, State(app): State<App>, JsonBody(body): JsonBody) -> ApiResult {
    let req: PutCredentials = typed(body)?;
    let key = req
        .api_key
        .filter(|k| !k.expose().trim().is_empty())
        .ok_or_else(|| {
            msp(MspError::CredentialsRequired(
                "the api_key field is empty or missing".into(),
            ))
        })?;
    let raw_url = req
        .base_url
        .unwrap_or_else(|| lastpass::rest::DEFAULT_BASE_URL.to_owned());
    let base = lastpass::rest::parse_base_url(&raw_url).map_err(|e| ApiError(e.into()))?;
    if req.check.unwrap_or(true) {
        let client = super::build_rest_client(base.clone(), key.clone()).map_err(msp)?;
        super::check_rest(&client).await.map_err(msp)?;
    }
    let s = app.store.set_msp_settings(&base, &key).await?;
    ok(StatusCode::OK, json!(s))
}

// ---- integrations -----------------------------------------------------------------------------

async fn list_integrations(_c: Caller, State(app): State<App>) -> ApiResult {
    let mut out = Vec::new();
    for i in app.store.list_psa_integrations().await? {
        let lock = lock::status(&app.store, i.id.as_str()).await.map_err(msp)?;
        out.push(json!({
            "id": i.id,
            "kind": i.kind,
            "psa_name": super::psa_display_name(i.kind),
            "lock": lock,
        }));
    }
    ok(StatusCode::OK, json!(out))
}

async fn attributes(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    let id = integration_id(&id)?;
    let i = app
        .store
        .get_psa_integration(&id)
        .await?
        .ok_or_else(|| msp(super::no_integration(id.as_str())))?;
    let dir = crate::store::psa_directory(&i.settings, &i.secrets, &tuning(&app)).map_err(msp)?;
    let attrs = dir.attributes().await.map_err(msp)?;
    ok(
        StatusCode::OK,
        json!({
            "integration": i.id,
            "psa_name": super::psa_display_name(i.kind()),
            "types": attrs.types,
            "statuses": attrs.statuses,
        }),
    )
}

async fn lock_status(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    let id = integration_id(&id)?;
    if app.store.psa_integration_summary(&id).await?.is_none() {
        return Err(msp(super::no_integration(id.as_str())));
    }
    let s = lock::status(&app.store, id.as_str()).await.map_err(msp)?;
    ok(StatusCode::OK, json!(s))
}

// ---- wizards ----------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewImport {
    psa: String,
    #[serde(default)]
    filter: CompanyFilter,
}

impl crate::actions::Validate for NewImport {}

/// A row without its contacts (the companies tab).
fn row_summary(r: &CompanyRow) -> Value {
    let selected = plan::selected_emails(r).map_or(0, |v| v.len());
    json!({
        "psa_company_id": r.psa_company_id,
        "name": r.name,
        "import_status": r.import_status,
        "psa_type": r.psa_type,
        "psa_status": r.psa_status,
        "psa_active": r.psa_active,
        "last_import": r.last_import,
        "mapped_to": r.mapped_to,
        "duplicates": r.duplicates,
        "contacts": r.contacts.len(),
        "selected_emails": selected,
        "choice": {
            "import": r.choice.import,
            "action": r.choice.action,
            "managed_company_id": r.choice.managed_company_id,
        },
    })
}

fn lists(p: &Plan) -> Value {
    json!({
        "psa_name": p.psa_name,
        "companies_in_psa": p.companies_in_psa.iter().map(row_summary).collect::<Vec<_>>(),
        "companies_not_in_psa": p.companies_not_in_psa,
    })
}

async fn run_view(app: &App, w: &WizardRow) -> Result<Value, ApiError> {
    let Some(run_id) = &w.run_id else {
        return Ok(Value::Null);
    };
    let Some(mut row) = app.store.msp_run(run_id).await? else {
        return Ok(Value::Null);
    };
    let mut interrupted = false;
    if row.status == RunStatus::Running {
        // A run whose process died leaves its row `running`; its lock tells.
        let held = app
            .store
            .lease(&lock::lease_name(&w.integration_id))
            .await?
            .is_some_and(|l| Owner::decode(&l.owner).is_some_and(|o| o.token == w.id));
        if !held {
            // Or it just finished: a run writes its row before it releases the lock.
            match app.store.msp_run(run_id).await? {
                Some(again) if again.status != RunStatus::Running => row = again,
                _ => interrupted = true,
            }
        }
    }
    let mut result = serde_json::to_value(ImportResult::from_row(&row)).unwrap_or_default();
    let status = if interrupted {
        json!("interrupted")
    } else {
        json!(row.status)
    };
    result["status"] = status;
    result["progress"] = json!({"done": row.done_steps, "total": row.total_steps});
    Ok(result)
}

async fn view(app: &App, w: &WizardRow, p: &Plan) -> Result<Value, ApiError> {
    let lock = lock::status(&app.store, &w.integration_id)
        .await
        .map_err(msp)?;
    Ok(json!({
        "id": w.id,
        "integration": w.integration_id,
        "created_by": w.created_by,
        "created_at": w.created_at,
        "updated_at": w.updated_at,
        "plan_id": p.plan_id,
        "filter": p.filter,
        "fingerprint": p.fingerprint,
        "lists": lists(p),
        "run": run_view(app, w).await?,
        "lock": lock,
    }))
}

async fn create_import(a: Admin, State(app): State<App>, JsonBody(body): JsonBody) -> ApiResult {
    let key_info = &(a.0).0;
    let req: NewImport = typed(body)?;
    let id = integration_id(&req.psa)?;
    let ctx = ImportContext::open(&app.store, &id, &tuning(&app))
        .await
        .map_err(msp)?;
    let wizard = super::random_hex(8);
    let owner = wizard_owner(&key_info.id, &key_info.name, &wizard);
    lock::acquire(&app.store, id.as_str(), &owner, lock::WIZARD_TTL)
        .await
        .map_err(msp)?;
    let made = async {
        let key = app.store.msp_plan_key().await?;
        let state = super::state::fetch(&ctx, &req.filter).await?;
        let p = plan::build(
            id.as_str(),
            ctx.integration.kind(),
            &req.filter,
            &state,
            &key,
        );
        let now = Utc::now();
        let row = WizardRow {
            id: wizard.clone(),
            integration_id: id.as_str().to_owned(),
            created_by: key_info.id.clone(),
            plan: p.to_json(),
            run_id: None,
            created_at: now,
            updated_at: now,
        };
        app.store.create_msp_wizard(&row).await?;
        Ok::<_, MspError>((row, p))
    }
    .await;
    let (row, p) = match made {
        Ok(x) => x,
        Err(e) => {
            let _ = lock::release(&app.store, id.as_str(), &owner).await;
            return Err(msp(e));
        }
    };
    ok(StatusCode::CREATED, view(&app, &row, &p).await?)
}

/// The wizard and its plan.
async fn load(app: &App, id: &str) -> Result<(WizardRow, Plan), ApiError> {
    let w = app.store.msp_wizard(id).await?.ok_or_else(|| {
        msp(MspError::NotFound(format!(
            "no MSP import wizard {:?} (POST /msp/imports starts one)",
            lp_types::shown(id)
        )))
    })?;
    let p = Plan::from_json(w.plan.as_bytes()).map_err(msp)?;
    Ok((w, p))
}

/// The wizard for a change by `c`: its creator only (another admin gets the lock message), and
/// the lock renewed.
async fn load_for_change(app: &App, id: &str, c: &Caller) -> Result<(WizardRow, Plan), ApiError> {
    let (w, p) = load(app, id).await?;
    if w.created_by != c.0.id {
        let s = lock::status(&app.store, &w.integration_id)
            .await
            .map_err(msp)?;
        return Err(msp(MspError::Locked {
            holder: s
                .holder
                .unwrap_or_else(|| format!("API key {}", w.created_by)),
            until: s
                .expires_at
                .map_or_else(|| "the wizard ends".to_owned(), |t| t.to_rfc3339()),
        }));
    }
    if let Some(run) = &w.run_id
        && let Some(r) = app.store.msp_run(run).await?
        && r.status == RunStatus::Running
        && run_view(app, &w).await?["status"] == "running"
    {
        return Err(ApiError(Error::Conflict(format!(
            "the import {} is running; wait for its result (GET /msp/imports/{id}/result)",
            r.id
        ))));
    }
    lock::acquire(
        &app.store,
        &w.integration_id,
        &owner_of(&w, c),
        lock::WIZARD_TTL,
    )
    .await
    .map_err(msp)?;
    Ok((w, p))
}

async fn get_import(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    let (w, p) = load(&app, &id).await?;
    ok(StatusCode::OK, view(&app, &w, &p).await?)
}

async fn get_plan(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    let (_, p) = load(&app, &id).await?;
    ok(StatusCode::OK, serde_json::to_value(&p).unwrap_or_default())
}

async fn list_companies(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    let (_, p) = load(&app, &id).await?;
    ok(StatusCode::OK, lists(&p))
}

async fn delete_import(a: Admin, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    let (w, _) = load_for_change(&app, &id, &a.0).await?;
    lock::release(&app.store, &w.integration_id, &owner_of(&w, &a.0))
        .await
        .map_err(msp)?;
    app.store.delete_msp_wizard(&w.id).await?;
    ok(
        StatusCode::OK,
        json!({"id": w.id, "deleted": true, "lock": "released"}),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompanyChoiceIn {
    /// The PSA company id (or its exact name).
    company: String,
    #[serde(default)]
    import: Option<bool>,
    #[serde(default)]
    action: Option<CompanyAction>,
    #[serde(default)]
    managed_company_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchCompanies {
    choices: Vec<CompanyChoiceIn>,
}

impl crate::actions::Validate for PatchCompanies {}

/// The managed companies a plan's facts name (mapped and same-named ones).
fn fact_ids(p: &Plan) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for r in &p.companies_in_psa {
        for d in &r.duplicates {
            m.insert(d.id.clone(), d.name.clone());
        }
        if let Some(x) = r.live_mapping() {
            m.insert(x.id.clone(), x.name.clone());
        }
    }
    for g in &p.companies_not_in_psa {
        m.insert(g.managed_company.id.clone(), g.managed_company.name.clone());
    }
    m
}

/// Validates the plan's choices after an edit; managed ids outside the facts are looked up.
async fn check_choices(app: &App, p: &Plan, new_ids: &[(usize, String)]) -> Result<(), ApiError> {
    let mut managed = fact_ids(p);
    let mut problems = Vec::new();
    let mut missing: Vec<&(usize, String)> = Vec::new();
    for item in new_ids {
        if !managed.contains_key(&item.1) {
            missing.push(item);
        }
    }
    if !missing.is_empty() {
        let client = super::rest_client(&app.store).await.map_err(msp)?;
        for (i, id) in missing {
            match client.get_company(&CompanyId::new(id.clone())).await {
                Ok(c) => {
                    managed.insert(id.clone(), c.name);
                }
                Err(lastpass::rest::Error::NotFound { .. }) => problems.push(InvalidValue::new(
                    format!("choices[{i}].managed_company_id"),
                    id.as_str(),
                    "is not a managed company of the MSP account (unknown id)",
                )),
                Err(e) => return Err(msp(e)),
            }
        }
    }
    // Choices made earlier were checked then; keep them known.
    for r in &p.companies_in_psa {
        if let Some(id) = &r.choice.managed_company_id {
            managed.entry(id.clone()).or_default();
        }
    }
    problems.extend(
        plan::validate(p, &managed)
            .into_iter()
            .filter(|e| !e.reason.contains("unknown id")),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(msp(MspError::Invalid(problems)))
    }
}

async fn save(app: &App, w: &WizardRow, p: &Plan) -> Result<(), ApiError> {
    app.store
        .update_msp_wizard(&w.id, &p.to_json(), w.run_id.as_deref())
        .await?;
    Ok(())
}

async fn patch_companies(
    a: Admin,
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let req: PatchCompanies = typed(body)?;
    let (w, mut p) = load_for_change(&app, &id, &a.0).await?;
    let mut edits = Vec::new();
    let mut new_ids = Vec::new();
    let mut problems = Vec::new();
    for (i, c) in req.choices.iter().enumerate() {
        if let Some(import) = c.import {
            edits.push(Edit::Import {
                company: c.company.clone(),
                import,
            });
        }
        match c.action {
            Some(CompanyAction::Map) => match &c.managed_company_id {
                Some(m) if !m.trim().is_empty() => {
                    new_ids.push((i, m.trim().to_owned()));
                    edits.push(Edit::Map {
                        company: c.company.clone(),
                        managed_id: m.clone(),
                    });
                }
                _ => problems.push(InvalidValue::new(
                    format!("choices[{i}].managed_company_id"),
                    "",
                    "is required with action map",
                )),
            },
            Some(CompanyAction::Keep) => edits.push(Edit::Keep {
                company: c.company.clone(),
            }),
            Some(CompanyAction::Create) => edits.push(Edit::Create {
                company: c.company.clone(),
            }),
            Some(CompanyAction::Unmap) => edits.push(Edit::Unmap {
                company: c.company.clone(),
            }),
            None if c.managed_company_id.is_some() => problems.push(InvalidValue::new(
                format!("choices[{i}].action"),
                "",
                "is required with managed_company_id (action map)",
            )),
            None => {}
        }
    }
    if !problems.is_empty() {
        return Err(msp(MspError::Invalid(problems)));
    }
    plan::apply_edits(&mut p, &edits).map_err(msp)?;
    check_choices(&app, &p, &new_ids).await?;
    save(&app, &w, &p).await?;
    ok(StatusCode::OK, lists(&p))
}

fn users_view(p: &Plan, i: usize) -> Value {
    let r = &p.companies_in_psa[i];
    let chosen: Vec<String> = plan::selected_emails(r)
        .map(|v| v.into_iter().map(|e| e.folded().to_owned()).collect())
        .unwrap_or_default();
    let contacts: Vec<Value> =
        r.contacts
            .iter()
            .map(|c| {
                let folded = c.email.as_deref().map(str::to_lowercase);
                let mut v = serde_json::to_value(c).unwrap_or_default();
                v["selected"] = json!(folded.as_ref().is_some_and(|e| chosen.contains(e)));
                v["map_to_user"] = json!(folded.as_ref().and_then(|e| {
                    r.choice
                        .map_users
                        .iter()
                        .find(|(k, _)| k.to_lowercase() == *e)
                        .map(|(_, u)| u.clone())
                }));
                v["unmap"] = json!(folded.as_ref().is_some_and(|e| {
                    r.choice.unmap_users.iter().any(|u| u.to_lowercase() == *e)
                }));
                v
            })
            .collect();
    json!({
        "company": row_summary(r),
        "contacts": contacts,
        "choice": {
            "emails": r.choice.emails,
            "map_users": r.choice.map_users,
            "unmap_users": r.choice.unmap_users,
        },
    })
}

async fn get_users(
    _c: Caller,
    State(app): State<App>,
    Path((id, company)): Path<(String, String)>,
) -> ApiResult {
    let (_, p) = load(&app, &id).await?;
    let i = p
        .find_row(&company)
        .map_err(|e| msp(MspError::Invalid(vec![e])))?;
    ok(StatusCode::OK, users_view(&p, i))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchUsers {
    #[serde(default)]
    emails: Option<Vec<String>>,
    #[serde(default)]
    map_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    unmap_users: Option<Vec<String>>,
}

impl crate::actions::Validate for PatchUsers {}

async fn patch_users(
    a: Admin,
    State(app): State<App>,
    Path((id, company)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let req: PatchUsers = typed(body)?;
    let (w, mut p) = load_for_change(&app, &id, &a.0).await?;
    let i = p
        .find_row(&company)
        .map_err(|e| msp(MspError::Invalid(vec![e])))?;
    let mut problems = Vec::new();
    let mut check = |field: String, v: &str| match Email::parse(v) {
        Ok(e) => Some(e.as_str().to_owned()),
        Err(e) => {
            problems.push(InvalidValue::new(field, v, e.reason));
            None
        }
    };
    let emails = req.emails.as_ref().map(|l| {
        l.iter()
            .enumerate()
            .filter_map(|(j, v)| check(format!("emails[{j}]"), v))
            .collect::<Vec<_>>()
    });
    let map_users = req.map_users.as_ref().map(|m| {
        m.iter()
            .filter_map(|(e, u)| {
                check(format!("map_users[{e}]"), e).map(|e| (e, u.trim().to_owned()))
            })
            .collect::<BTreeMap<_, _>>()
    });
    let unmap_users = req.unmap_users.as_ref().map(|l| {
        l.iter()
            .enumerate()
            .filter_map(|(j, v)| check(format!("unmap_users[{j}]"), v))
            .collect::<Vec<_>>()
    });
    if !problems.is_empty() {
        return Err(msp(MspError::Invalid(problems)));
    }
    {
        let c = &mut p.companies_in_psa[i].choice;
        if let Some(e) = emails {
            c.emails = e;
        }
        if let Some(m) = map_users.clone() {
            c.map_users = m;
        }
        if let Some(u) = unmap_users {
            c.unmap_users = u;
        }
    }
    check_choices(&app, &p, &[]).await?;
    // Users to map must exist in the company they are mapped in.
    if let Some(m) = map_users.filter(|m| !m.is_empty()) {
        let row = &p.companies_in_psa[i];
        let target = row
            .choice
            .managed_company_id
            .clone()
            .or_else(|| row.live_mapping().map(|x| x.id.clone()));
        if let Some(target) = target {
            let client = super::rest_client(&app.store).await.map_err(msp)?;
            let mut problems = Vec::new();
            for (email, uid) in m {
                match client
                    .get_user(
                        &CompanyId::new(target.clone()),
                        &CompanyUserId::new(uid.clone()),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(lastpass::rest::Error::NotFound { .. }) => {
                        problems.push(InvalidValue::new(
                            format!("map_users[{email}]"),
                            uid,
                            format!("is not a user of managed company {target} (unknown id)"),
                        ))
                    }
                    Err(e) => return Err(msp(e)),
                }
            }
            if !problems.is_empty() {
                return Err(msp(MspError::Invalid(problems)));
            }
        }
    }
    save(&app, &w, &p).await?;
    ok(StatusCode::OK, users_view(&p, i))
}

async fn apply_import(a: Admin, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    let (w, p) = load_for_change(&app, &id, &a.0).await?;
    let integration = integration_id(&w.integration_id)?;
    let ctx = ImportContext::open(&app.store, &integration, &tuning(&app))
        .await
        .map_err(msp)?;
    let key = app.store.msp_plan_key().await?;
    let opts = ApplyOptions {
        expected_integration: Some(w.integration_id.clone()),
        ..ApplyOptions::default()
    };
    // While the import runs, its lease is renewed often and lives shortly: should this
    // process die, the run shows as interrupted within a minute and can be applied again.
    let owner = owner_of(&w, &a.0);
    let held = Held::take(&app.store, &w.integration_id, owner.clone(), lock::RUN_TTL)
        .await
        .map_err(msp)?;
    let ready = async {
        let prepared = apply::prepare(&ctx, p, &key, &opts).await?;
        let started = apply::start(&ctx, &prepared, &held).await?;
        Ok::<_, MspError>((prepared, started))
    }
    .await;
    let (prepared, started) = match ready {
        Ok(x) => x,
        Err(e) => {
            // The wizard keeps its lock: the admin fixes the choices (or starts over).
            held.keep();
            let _ = lock::acquire(&app.store, &w.integration_id, &owner, lock::WIZARD_TTL).await;
            return Err(msp(e));
        }
    };
    app.store
        .update_msp_wizard(&w.id, &w.plan, Some(&started.run_id))
        .await?;
    let (run_id, total) = (started.run_id.clone(), started.total_steps);
    let store = app.store.clone();
    tokio::spawn(async move {
        let out = apply::execute(&ctx, prepared, &held, &opts, &NoProgress, started).await;
        if let Err(e) = &out {
            tracing::error!(error = %e, "MSP import failed");
        }
        // The import is over: the result page needs no lock.
        if let Err(e) = held.release(&store).await {
            tracing::warn!(error = %e, "could not release the MSP import lock");
        }
    });
    ok(
        StatusCode::ACCEPTED,
        json!({
            "id": w.id,
            "run_id": run_id,
            "status": "running",
            "progress": {"done": 0, "total": total},
            "result": format!("/msp/imports/{}/result", w.id),
        }),
    )
}

async fn result(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    let (w, _) = load(&app, &id).await?;
    let v = run_view(&app, &w).await?;
    if v.is_null() {
        return Err(ApiError(Error::NotFound(format!(
            "the import wizard {:?} has not been applied yet (POST /msp/imports/{}/apply)",
            w.id, w.id
        ))));
    }
    ok(StatusCode::OK, v)
}

/// The product messages, for documentation and consoles.
pub fn product_messages() -> [&'static str; 8] {
    [
        messages::CREDENTIALS_REQUIRED,
        messages::LOCKED,
        messages::NOT_ENOUGH_LICENSES,
        psa::ErrorKind::ServerError.user_message(),
        psa::ErrorKind::Authentication.user_message(),
        psa::ErrorKind::Forbidden.user_message(),
        psa::ErrorKind::InvalidResponse.user_message(),
        messages::SOMETHING_WENT_WRONG,
    ]
}

/// The request bodies' schemas, for `/openapi.json`.
pub fn openapi_components() -> Vec<(String, Value)> {
    let action = json!({"type": "string", "enum": ["create", "map", "keep", "unmap"],
        "description": "create: a new managed company (default for Unmapped); map: to managed_company_id (default for a potential duplicate: the same-named one); keep: the current mapping (default for Mapped); unmap: unmap and create as a new managed company"});
    vec![
        (
            "MspCredentials".into(),
            json!({"type": "object", "additionalProperties": false, "required": ["api_key"],
            "properties": {
                "base_url": {"type": "string", "default": lastpass::rest::DEFAULT_BASE_URL},
                "api_key": {"type": "string", "writeOnly": true, "description": "lpkey_…; empty: 400 \"Credentials are required\""},
                "check": {"type": "boolean", "default": true}}}),
        ),
        (
            "MspNewImport".into(),
            json!({"type": "object", "additionalProperties": false, "required": ["psa"],
            "properties": {
                "psa": {"type": "string", "description": "The PSA integration (GET /msp/integrations)"},
                "filter": {"type": "object", "additionalProperties": false, "properties": {
                    "types": {"type": "array", "items": {"type": "string"}, "description": "Company type ids (OR)"},
                    "statuses": {"type": "array", "items": {"type": "string"}, "description": "Status ids (OR); Autotask: active, inactive"}}}}}),
        ),
        (
            "MspCompanyChoices".into(),
            json!({"type": "object", "additionalProperties": false, "required": ["choices"],
            "properties": {"choices": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["company"],
                "properties": {
                    "company": {"type": "string", "description": "PSA company id (or exact name)"},
                    "import": {"type": "boolean", "description": "false: leave the company out of this import"},
                    "action": action,
                    "managed_company_id": {"type": "string", "description": "With action map"}}}}}}),
        ),
        (
            "MspUserChoices".into(),
            json!({"type": "object", "additionalProperties": false,
            "properties": {
                "emails": {"type": "array", "items": {"type": "string", "format": "email"}, "description": "The contact e-mails granted access (replaces the selection)"},
                "map_users": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Contact e-mail → existing LastPass user id"},
                "unmap_users": {"type": "array", "items": {"type": "string", "format": "email"}, "description": "Imported contacts to unmap and create as new users"}}}),
        ),
    ]
}
