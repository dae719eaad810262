//! The MSP import wizard's endpoints, thin: parse, authorise, build the [`Actor`], call
//! [`super::wizard`] (which the web console calls too), serialise. They drive the same flow as
//! `lpbridge msp import plan|apply`, step by step:
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

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lp_types::Secret;
use psa::CompanyFilter;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::plan::CompanyAction;
use super::wizard::{self, Actor, CompanyEdit, NewCredentials, UserEdits};
use super::{MspError, messages};
use crate::error::Error;
use crate::http::{Admin, ApiError, App, Caller, JsonBody, typed};
use crate::store::StoreError;

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

#[derive(Serialize)]
struct Data<T> {
    data: T,
}

fn ok<T: Serialize>(status: StatusCode, data: T) -> ApiResult {
    Ok((status, Json(Data { data })).into_response())
}

/// The caller as the wizard's actor: the key's id is the wizard's creator, and the lock's
/// holder reads `API key <id> (<name>)`.
fn actor(c: &Caller) -> Actor {
    Actor {
        id: c.0.id.clone(),
        label: format!("API key {} ({})", c.0.id, c.0.name),
    }
}

// ---- credentials ------------------------------------------------------------------------------

async fn get_credentials(_c: Caller, State(app): State<App>) -> ApiResult {
    ok(StatusCode::OK, wizard::get_credentials(&app).await?)
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
    let new = NewCredentials {
        base_url: req.base_url,
        api_key: req.api_key,
        check: req.check.unwrap_or(true),
    };
    ok(StatusCode::OK, wizard::put_credentials(&app, new).await?)
}

// ---- integrations -----------------------------------------------------------------------------

async fn list_integrations(_c: Caller, State(app): State<App>) -> ApiResult {
    ok(StatusCode::OK, wizard::list_integrations(&app).await?)
}

async fn attributes(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    ok(StatusCode::OK, wizard::attributes(&app, &id).await?)
}

async fn lock_status(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    ok(StatusCode::OK, wizard::lock_status(&app, &id).await?)
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

async fn create_import(a: Admin, State(app): State<App>, JsonBody(body): JsonBody) -> ApiResult {
    let req: NewImport = typed(body)?;
    let new = wizard::NewImport {
        psa: req.psa,
        filter: req.filter,
    };
    let v = wizard::create_import(&app, &actor(&a.0), new).await?;
    ok(StatusCode::CREATED, v)
}

async fn get_import(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    ok(StatusCode::OK, wizard::get_import(&app, &id).await?)
}

async fn get_plan(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    ok(StatusCode::OK, wizard::get_plan(&app, &id).await?)
}

async fn list_companies(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    ok(StatusCode::OK, wizard::list_companies(&app, &id).await?)
}

async fn delete_import(a: Admin, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    let id = wizard::delete_import(&app, &actor(&a.0), &id).await?;
    ok(
        StatusCode::OK,
        json!({"id": id, "deleted": true, "lock": "released"}),
    )
}

// The request bodies are parsed here into the wizard's inputs; their type names stay as they
// were because serde quotes them in errors ("expected struct CompanyChoiceIn").
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

async fn patch_companies(
    a: Admin,
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let req: PatchCompanies = typed(body)?;
    let choices: Vec<CompanyEdit> = req
        .choices
        .into_iter()
        .map(|c| CompanyEdit {
            company: c.company,
            import: c.import,
            action: c.action,
            managed_company_id: c.managed_company_id,
        })
        .collect();
    let lists = wizard::patch_companies(&app, &actor(&a.0), &id, &choices).await?;
    ok(StatusCode::OK, lists)
}

async fn get_users(
    _c: Caller,
    State(app): State<App>,
    Path((id, company)): Path<(String, String)>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        wizard::get_users(&app, &id, &company).await?,
    )
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
    let edits = UserEdits {
        emails: req.emails,
        map_users: req.map_users,
        unmap_users: req.unmap_users,
    };
    let v = wizard::patch_users(&app, &actor(&a.0), &id, &company, edits).await?;
    ok(StatusCode::OK, v)
}

async fn apply_import(a: Admin, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    let s = wizard::apply(&app, &actor(&a.0), &id).await?;
    ok(
        StatusCode::ACCEPTED,
        json!({
            "id": s.wizard_id,
            "run_id": s.run_id,
            "status": "running",
            "progress": {"done": 0, "total": s.total},
            "result": format!("/msp/imports/{}/result", s.wizard_id),
        }),
    )
}

async fn result(_c: Caller, State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    match wizard::result(&app, &id).await? {
        Some(v) => ok(StatusCode::OK, v),
        None => Err(ApiError(Error::NotFound(format!(
            "the import wizard {id:?} has not been applied yet (POST /msp/imports/{id}/apply)"
        )))),
    }
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
