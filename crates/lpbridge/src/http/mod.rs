//! The HTTP interface of `lpbridge serve`: routing, API-key authentication, connection
//! selection (`x-account-id`), body limits, request logs and metrics. Handlers parse and
//! authorise, then call [`crate::unified`], [`crate::actions`] or the [`crate::store`]; the
//! behaviour lives there.

pub mod error;
pub mod metrics;
pub mod openapi;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, RawQuery, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use lastpass::{Client, ClientConfig, Credentials, RetryPolicy};
use lp_types::{Cid, ConnectionId, InvalidValue, Secret};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actions::{self, ActionError, ActionKind};
use crate::error::Error;
use crate::snapshot::Snapshots;
use crate::store::{ApiKeyInfo, Connection, ConnectionPatch, KeyPurpose, NewConnection, Store};
use crate::unified::{self, Allow, Params};
pub use error::ApiError;
use metrics::Metrics;

/// The header that picks the connection, as StackOne's.
pub const ACCOUNT_HEADER: &str = "x-account-id";

/// How the service's LastPass clients behave.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub timeout: Duration,
    pub attempts: u32,
    pub max_in_flight: usize,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            attempts: 4,
            max_in_flight: 8,
        }
    }
}

/// Service settings the HTTP layer needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_body_bytes: usize,
    pub snapshot_ttl: Duration,
    pub client: ClientSettings,
    /// Allow `http://` endpoints on any host (normally only `https://`, or `http://` on a
    /// loopback address such as the embedded sandbox).
    pub allow_insecure_endpoints: bool,
    /// What SCIM `DELETE /Users/{id}` does to a LastPass account.
    pub scim_delete_action: lastpass::DeleteAction,
    /// The domain of the LastPass e-mail given to a SCIM user whose `userName` is not an e-mail
    /// and who has no `emails` (`None`: such a user is refused).
    pub scim_email_domain: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            snapshot_ttl: Duration::from_secs(30),
            client: ClientSettings::default(),
            allow_insecure_endpoints: false,
            scim_delete_action: crate::scim::service::DEFAULT_DELETE_ACTION,
            scim_email_domain: None,
        }
    }
}

/// Shared state of every handler (cheap to clone).
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub store: Store,
    pub snapshots: Arc<Snapshots>,
    pub metrics: Metrics,
    pub settings: Settings,
    /// One client per connection, rebuilt when the connection's `updated_at` changes.
    clients: Mutex<HashMap<ConnectionId, (DateTime<Utc>, Client)>>,
    /// Per connection: serialises SCIM writes in this process.
    scim_locks: Mutex<HashMap<ConnectionId, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    pub fn new(store: Store, settings: Settings) -> Self {
        App(Arc::new(AppInner {
            store,
            snapshots: Arc::new(Snapshots::new(settings.snapshot_ttl)),
            metrics: Metrics::default(),
            settings,
            clients: Mutex::new(HashMap::new()),
            scim_locks: Mutex::new(HashMap::new()),
        }))
    }

    /// The lock that serialises SCIM writes on a connection.
    pub fn scim_lock(&self, id: &ConnectionId) -> Arc<tokio::sync::Mutex<()>> {
        self.scim_locks
            .lock()
            .entry(id.clone())
            .or_default()
            .clone()
    }

    fn client_for(&self, c: &Connection) -> Result<Client, Error> {
        if let Some((at, client)) = self.clients.lock().get(&c.id)
            && *at == c.updated_at
        {
            return Ok(client.clone());
        }
        let client = self.build_client(c.cid, c.provhash.clone(), c.endpoint.clone())?;
        let stale = {
            let mut clients = self.clients.lock();
            // Another request may have built the same client meanwhile: only a different
            // `updated_at` means new credentials or endpoint.
            clients
                .insert(c.id.clone(), (c.updated_at, client.clone()))
                .is_some_and(|(at, _)| at != c.updated_at)
        };
        if stale {
            // New credentials or endpoint: what was read through the old ones is suspect.
            self.snapshots.invalidate(&c.id);
        }
        Ok(client)
    }

    /// A LastPass client configured as the service's (timeout, attempts, concurrency), also for
    /// credentials not stored yet (the console checks them before storing).
    pub(crate) fn build_client(
        &self,
        cid: Cid,
        provhash: Secret,
        endpoint: url::Url,
    ) -> Result<Client, Error> {
        let s = &self.settings.client;
        let mut cfg = ClientConfig::new(Credentials { cid, provhash }).with_endpoint(endpoint);
        cfg.timeout = s.timeout;
        cfg.max_concurrency = s.max_in_flight;
        cfg.retry = RetryPolicy {
            max_attempts: s.attempts,
            ..cfg.retry
        };
        Ok(Client::new(cfg)?)
    }

    /// The PSA clients' settings: the service's upstream timeout and attempts.
    pub fn psa_tuning(&self) -> crate::store::PsaTuning {
        crate::store::PsaTuning {
            timeout: Some(self.settings.client.timeout),
            attempts: Some(self.settings.client.attempts),
        }
    }

    pub(crate) fn forget_client(&self, id: &ConnectionId) {
        self.clients.lock().remove(id);
        self.snapshots.forget(id);
    }

    /// Upstream counters of every live client, for `/metrics`.
    fn upstream_stats(&self) -> Vec<(String, lastpass::CallStats)> {
        let clients = self.clients.lock();
        let mut v: Vec<_> = clients
            .iter()
            .map(|(id, (_, c))| (id.as_str().to_owned(), c.stats()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The connection a request names (or the only one it may use), ready to use. A key
    /// limited to some connections gets 403 for the others.
    pub async fn account(
        &self,
        headers: &HeaderMap,
        key: Option<&ApiKeyInfo>,
    ) -> Result<unified::Conn, Error> {
        let id = match headers.get(ACCOUNT_HEADER) {
            Some(v) => {
                let raw = v.to_str().map_err(|_| {
                    InvalidValue::new(ACCOUNT_HEADER, "<non-ASCII>", "must be a connection id")
                })?;
                ConnectionId::new(raw.trim())
                    .map_err(|_| InvalidValue::new(ACCOUNT_HEADER, raw, "must not be empty"))?
            }
            None => self.implied_connection(key).await?,
        };
        self.account_by_id(id, key).await
    }

    /// The connections `key` may use (every one for `None`), as stored.
    pub async fn usable_connections(
        &self,
        key: Option<&ApiKeyInfo>,
    ) -> Result<Vec<crate::store::ConnectionSummary>, Error> {
        let mut all = self.store.list_connections().await?;
        if let Some(k) = key {
            all.retain(|c| k.may_use(&c.id));
        }
        Ok(all)
    }

    /// The connection a request without `x-account-id` works on: the only one the key may use.
    async fn implied_connection(&self, key: Option<&ApiKeyInfo>) -> Result<ConnectionId, Error> {
        let all = self.usable_connections(key).await?;
        match all.as_slice() {
            [only] => Ok(only.id.clone()),
            [] => Err(Error::NotFound(
                "no connection is configured: create one with POST /connections or \
                 `lpbridge connection add`"
                    .into(),
            )),
            _ => Err(InvalidValue::new(
                ACCOUNT_HEADER,
                "",
                format!(
                    "is required: {} connections exist ({})",
                    all.len(),
                    all.iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .into()),
        }
    }

    /// The connection `id`, ready to use (403 for a key limited to other connections).
    pub async fn account_by_id(
        &self,
        id: ConnectionId,
        key: Option<&ApiKeyInfo>,
    ) -> Result<unified::Conn, Error> {
        if let Some(k) = key {
            check_scope(k, &id)?;
        }
        let conn = self.store.get_connection(&id).await?.ok_or_else(|| {
            Error::NotFound(format!(
                "{ACCOUNT_HEADER} {:?} is not a connection of this service",
                id.as_str()
            ))
        })?;
        let client = self.client_for(&conn)?;
        self.snapshots
            .observe_version(&conn.id, conn.directory_version);
        Ok(unified::Conn {
            tz: conn.time_zone.unwrap_or(chrono_tz::US::Eastern),
            id: conn.id,
            client,
            snapshots: self.snapshots.clone(),
            store: Some(self.store.clone()),
        })
    }

    /// The API key a request presents: `Authorization: Bearer KEY`, or HTTP Basic with the key
    /// as the username (StackOne's way).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<ApiKeyInfo, Error> {
        let key = presented_key(headers)?;
        let info = self
            .store
            .verify_api_key(key.expose())
            .await?
            .ok_or_else(|| Error::Unauthorized("the API key is unknown or revoked".into()))?;
        if info.purpose != KeyPurpose::Api {
            return Err(Error::Unauthorized(format!(
                "key {} is a SCIM token: it works only under /scim/v2",
                info.id
            )));
        }
        Ok(info)
    }
}

/// 403 unless the key may use the connection.
fn check_scope(key: &ApiKeyInfo, id: &ConnectionId) -> Result<(), Error> {
    if key.may_use(id) {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "API key {} may not use connection {:?}",
        key.id,
        id.as_str()
    )))
}

/// The key from the `Authorization` header.
fn presented_key(headers: &HeaderMap) -> Result<Secret, Error> {
    let missing = || {
        Error::Unauthorized(
            "an API key is required: send `Authorization: Bearer <key>` or HTTP Basic with the \
             key as the username"
                .into(),
        )
    };
    let raw = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| Error::Unauthorized("the Authorization header is not ASCII".into()))?;
    let (scheme, rest) = raw.trim().split_once(' ').ok_or_else(missing)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Secret::new(rest));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                Error::Unauthorized("the Basic credentials are not valid base64".into())
            })?;
        let user = decoded.split_once(':').map_or(decoded.as_str(), |(u, _)| u);
        return Ok(Secret::new(user));
    }
    Err(Error::Unauthorized(format!(
        "unsupported Authorization scheme {scheme:?}: use Bearer or Basic"
    )))
}

/// The authenticated caller.
pub struct Caller(pub ApiKeyInfo);

/// 403 unless `key` may change data; `who` names the principal in the message. The JSON API
/// and the console check permissions with these two.
pub(crate) fn require_write(key: &ApiKeyInfo, who: &str) -> Result<(), Error> {
    if key.read_only {
        return Err(Error::Forbidden(format!(
            "{who} is read-only; this request changes data"
        )));
    }
    Ok(())
}

/// 403 unless `key` may manage connections (and the MSP import): read-write, and not limited
/// to some connections.
pub(crate) fn require_admin(key: &ApiKeyInfo, who: &str) -> Result<(), Error> {
    require_write(key, who)?;
    if key.connections.is_some() {
        return Err(Error::Forbidden(format!(
            "{who} is limited to some connections and cannot manage connections"
        )));
    }
    Ok(())
}

impl Caller {
    fn who(&self) -> String {
        format!("API key {}", self.0.id)
    }

    /// Connection management needs a key for every connection.
    fn require_admin(&self) -> Result<(), Error> {
        require_admin(&self.0, &self.who())
    }

    fn require_write(&self) -> Result<(), Error> {
        require_write(&self.0, &self.who())
    }
}

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let key = app.authenticate(&parts.headers).await?;
        // For the `Account` extractor, which runs after this one.
        parts.extensions.insert(key.clone());
        Ok(Caller(key))
    }
}

/// A caller with a read-write key, checked before the connection or the body is read: a
/// read-only key on a write is a 403 whatever else is wrong with the request.
pub struct Writer(pub Caller);

impl FromRequestParts<App> for Writer {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let c = Caller::from_request_parts(parts, app).await?;
        c.require_write()?;
        Ok(Writer(c))
    }
}

/// A caller that may manage connections (read-write, not limited to some connections).
pub struct Admin(pub Caller);

impl FromRequestParts<App> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let c = Caller::from_request_parts(parts, app).await?;
        c.require_admin()?;
        Ok(Admin(c))
    }
}

/// The connection a request works on.
pub struct Account(pub unified::Conn);

impl FromRequestParts<App> for Account {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let key = parts.extensions.get::<ApiKeyInfo>().cloned();
        Ok(Account(app.account(&parts.headers, key.as_ref()).await?))
    }
}

/// A JSON body: size-limited (413), parsed with the position of a syntax error (400).
pub struct JsonBody(pub Value);

async fn read_json(req: Request, app: &App, empty: Option<Value>) -> Result<Value, ApiError> {
    let limit = app.settings.max_body_bytes;
    let bytes = Bytes::from_request(req, app).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(Error::TooLarge { limit })
        } else {
            ApiError(InvalidValue::new("body", "", e.body_text()).into())
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return empty
            .ok_or_else(|| InvalidValue::new("body", "", "is empty: send a JSON object").into());
    }
    // The body is never quoted back: it may hold a provisioning hash or a password.
    serde_json::from_slice(&bytes).map_err(|e| {
        InvalidValue::new(
            "body",
            "…",
            format!(
                "is not valid JSON (line {}, column {}: {e})",
                e.line(),
                e.column()
            ),
        )
        .into()
    })
}

impl FromRequest<App> for JsonBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, app: &App) -> Result<Self, ApiError> {
        Ok(JsonBody(read_json(req, app, None).await?))
    }
}

/// Deserialises a request body into `T` with the actions' parser: a wrong field is named by
/// its JSON path with its value (secrets shown as `***`).
pub fn typed<T: serde::de::DeserializeOwned + actions::Validate>(v: Value) -> Result<T, Error> {
    actions::parse_input(&v).map_err(Error::from)
}

type ApiResult = Result<Response, ApiError>;

fn json_ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

// ---- routes -------------------------------------------------------------------------------

const USER_ALLOW: Allow = Allow {
    expand: &["roles", "groups"],
    email_filter: true,
    resource_query: false,
    delete_action: false,
};
const GROUP_ALLOW: Allow = Allow {
    expand: &["users", "roles"],
    email_filter: false,
    resource_query: false,
    delete_action: false,
};
const PLAIN: Allow = Allow {
    expand: &[],
    email_filter: false,
    resource_query: false,
    delete_action: false,
};
const ROLE_ALLOW: Allow = Allow {
    expand: &["policies"],
    ..PLAIN
};
const RESOURCE_USERS_ALLOW: Allow = Allow {
    expand: &["roles", "groups", "permissions"],
    resource_query: true,
    ..PLAIN
};
const DELETE_ALLOW: Allow = Allow {
    delete_action: true,
    ..PLAIN
};

/// The whole service.
pub fn router(app: App) -> Router {
    let limit = app.settings.max_body_bytes;
    let iam = Router::new()
        .route("/users", get(list_users))
        .route(
            "/users/{id}",
            get(get_user).patch(patch_user).delete(delete_user),
        )
        .route("/groups", get(list_groups))
        .route("/groups/{id}", get(get_group))
        .route("/roles", get(list_roles))
        .route("/roles/{id}", get(get_role))
        .route("/organizations", get(list_orgs))
        .route("/organizations/{id}", get(get_org))
        .route("/resource_types", get(list_resource_types))
        .route("/resource_users", get(list_resource_users))
        .route("/resources", get(list_resources))
        .route("/resources/{id}", get(get_resource))
        .route("/me", get(me));
    Router::new()
        .nest("/unified/iam", iam)
        .nest(crate::scim::routes::PREFIX, crate::scim::routes::router())
        .route("/unified/proxy", post(proxy))
        .route("/actions", get(list_actions))
        .route("/actions/{name}", get(get_action).post(run_action))
        .route(
            "/connections",
            get(list_connections).post(create_connection),
        )
        .route(
            "/connections/{id}",
            get(get_connection)
                .patch(update_connection)
                .delete(delete_connection),
        )
        .route("/connections/{id}/test", post(test_connection))
        .merge(crate::events::http::router())
        .merge(crate::msp::http::router())
        .merge(crate::console::router(app.clone()))
        .route("/openapi.json", get(openapi_json))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

/// Request log line and metrics for every request. Logs method, route template, status and
/// latency: never headers (keys) or bodies (passwords).
async fn observe(State(app): State<App>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    // Standard methods only: any token is a valid method, and each would be a new series.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" | "TRACE"
        | "CONNECT") => m.to_owned(),
        _ => "OTHER".to_owned(),
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    app.metrics.observe(&method, &route, status, elapsed);
    tracing::info!(
        target: "lpbridge::http",
        method,
        route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    resp
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError(Error::NotFound(format!(
        "no such endpoint: {} (see /openapi.json)",
        uri.path()
    )))
}

async fn method_not_allowed(req: Request) -> Response {
    let status = StatusCode::METHOD_NOT_ALLOWED;
    let msg = format!("{} is not allowed on {}", req.method(), req.uri().path());
    (
        status,
        Json(error::body(status, "MethodNotAllowed", &msg, vec![])),
    )
        .into_response()
}

// ---- unified IAM ----------------------------------------------------------------------------

/// A read-only list endpoint: `Conn::$method(params)`.
macro_rules! list_handler {
    ($name:ident, $method:ident, $allow:expr) => {
        async fn $name(_c: Caller, Account(a): Account, RawQuery(q): RawQuery) -> ApiResult {
            json_ok(a.$method(&Params::parse(q.as_deref(), $allow)?).await?)
        }
    };
}

/// A read-only endpoint for one object: `Conn::$method(id, params)`.
macro_rules! get_handler {
    ($name:ident, $method:ident, $allow:expr) => {
        async fn $name(
            _c: Caller,
            Account(a): Account,
            Path(id): Path<String>,
            RawQuery(q): RawQuery,
        ) -> ApiResult {
            json_ok(
                a.$method(&id, &Params::parse(q.as_deref(), $allow)?)
                    .await?,
            )
        }
    };
}

list_handler!(list_users, list_users, USER_ALLOW);
get_handler!(get_user, get_user, USER_ALLOW);
list_handler!(list_groups, list_groups, GROUP_ALLOW);
get_handler!(get_group, get_group, GROUP_ALLOW);
list_handler!(list_roles, list_roles, ROLE_ALLOW);
get_handler!(get_role, get_role, ROLE_ALLOW);
list_handler!(list_orgs, list_organizations, PLAIN);
get_handler!(get_org, get_organization, PLAIN);
list_handler!(list_resource_types, list_resource_types, PLAIN);
list_handler!(
    list_resource_users,
    list_resource_users,
    RESOURCE_USERS_ALLOW
);
list_handler!(list_resources, list_resources, PLAIN);
get_handler!(get_resource, get_resource, PLAIN);
list_handler!(me, me, PLAIN);

async fn patch_user(
    _w: Writer,
    Account(a): Account,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    JsonBody(body): JsonBody,
) -> ApiResult {
    Params::parse(q.as_deref(), PLAIN)?;
    json_ok(a.update_user(&id, body).await?)
}

async fn delete_user(
    _w: Writer,
    Account(a): Account,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    json_ok(
        a.delete_user(&id, &Params::parse(q.as_deref(), DELETE_ALLOW)?)
            .await?,
    )
}

// ---- actions and passthrough ------------------------------------------------------------------

impl From<ActionError> for Error {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::UnknownAction { name } => {
                Error::NotFound(format!("unknown action {name:?} (GET /actions lists them)"))
            }
            ActionError::InvalidInput(v) => Error::Invalid(v),
            ActionError::NotFound(m) => Error::NotFound(m),
            ActionError::Conflict(m) => Error::Conflict(m),
            ActionError::Unsupported(m) => Error::Usage(m),
            ActionError::LastPass(e) => Error::LastPass(e),
        }
    }
}

fn action_json(a: &actions::ActionSpec) -> Value {
    json!({
        "name": a.name,
        "summary": a.summary,
        "description": a.description,
        "kind": match a.kind { ActionKind::Direct => "direct", ActionKind::Unified => "unified" },
        "write": a.write,
        "source": a.source,
        "input_schema": (a.input_schema)(),
    })
}

fn find_action(name: &str) -> Result<&'static actions::ActionSpec, Error> {
    actions::find(name).ok_or_else(|| {
        ActionError::UnknownAction {
            name: name.to_owned(),
        }
        .into()
    })
}

async fn list_actions(_c: Caller) -> ApiResult {
    let data: Vec<Value> = actions::catalog().iter().map(action_json).collect();
    json_ok(json!({ "data": data, "next": null }))
}

async fn get_action(_c: Caller, Path(name): Path<String>) -> ApiResult {
    json_ok(json!({ "data": action_json(find_action(&name)?) }))
}

/// Turns a unified action's JSON input into the query parameters of its endpoint.
fn unified_params(input: &Value, allow: Allow) -> Result<(Option<String>, Params), Error> {
    let mut id = None;
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Value::Object(m) = input {
        for (k, v) in m {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                Value::Null => continue,
                other => other.to_string(),
            };
            match k.as_str() {
                "id" => id = Some(s),
                "filter" => {
                    let Value::Object(f) = v else {
                        return Err(InvalidValue::new(
                            "filter",
                            v.to_string(),
                            "must be an object, e.g. {\"email\": \"a@example.com\"}",
                        )
                        .into());
                    };
                    for (fk, fv) in f {
                        let fv = fv.as_str().map_or_else(|| fv.to_string(), str::to_owned);
                        pairs.push((format!("filter[{fk}]"), fv));
                    }
                }
                _ => pairs.push((k.clone(), s)),
            }
        }
    } else if !input.is_null() {
        return Err(InvalidValue::new("input", input.to_string(), "must be a JSON object").into());
    }
    let q = serde_urlencoded::to_string(&pairs)
        .map_err(|e| InvalidValue::new("input", input.to_string(), e.to_string()))?;
    Ok((id, Params::parse(Some(&q), allow)?))
}

fn required_id(id: Option<String>) -> Result<String, Error> {
    id.filter(|s| !s.is_empty())
        .ok_or_else(|| InvalidValue::new("id", "", "is required").into())
}

async fn run_unified(a: &unified::Conn, name: &str, input: &Value) -> Result<Value, Error> {
    let suffix = name.trim_start_matches("lastpass_unified_");
    let allow = match suffix {
        "list_users" | "get_user" => USER_ALLOW,
        "list_groups" | "get_group" => GROUP_ALLOW,
        "list_roles" | "get_role" => ROLE_ALLOW,
        "list_resource_users" => RESOURCE_USERS_ALLOW,
        _ => PLAIN,
    };
    let (id, p) = unified_params(input, allow)?;
    match suffix {
        "list_users" => a.list_users(&p).await,
        "get_user" => a.get_user(&required_id(id)?, &p).await,
        "list_groups" => a.list_groups(&p).await,
        "get_group" => a.get_group(&required_id(id)?, &p).await,
        "list_roles" => a.list_roles(&p).await,
        "get_role" => a.get_role(&required_id(id)?, &p).await,
        "list_organizations" => a.list_organizations(&p).await,
        "get_organization" => a.get_organization(&required_id(id)?, &p).await,
        "list_resource_types" => a.list_resource_types(&p).await,
        "list_resource_users" => a.list_resource_users(&p).await,
        "me" => a.me(&p).await,
        _ => Err(ActionError::UnknownAction {
            name: name.to_owned(),
        }
        .into()),
    }
}

async fn run_action(
    State(app): State<App>,
    c: Caller,
    Path(name): Path<String>,
    req: Request,
) -> ApiResult {
    // The name and the key are checked before the body is read (404 and 403 first).
    let spec = find_action(&name)?;
    if spec.write {
        c.require_write()?;
    }
    let a = app.account(req.headers(), Some(&c.0)).await?;
    // An empty body is `{}` (actions without parameters).
    let input = read_json(req, &app, Some(json!({}))).await?;
    let data = match spec.kind {
        ActionKind::Unified => run_unified(&a, spec.name, &input).await?,
        ActionKind::Direct => {
            let out = a.run_action(spec.name, input).await.map_err(Error::from)?;
            json!({ "data": out.data })
        }
    };
    json_ok(data)
}

async fn proxy(c: Caller, Account(a): Account, JsonBody(body): JsonBody) -> ApiResult {
    // Read commands are open to read-only keys; anything else may change data.
    let cmd = body
        .get("body")
        .and_then(|b| b.get("cmd"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let read = actions::is_read_command(cmd);
    if !read {
        c.require_write()?;
    }
    let out = actions::proxy_output(&a.client, body).await;
    // A failed write may still have been applied.
    if out.as_ref().map_or(!read, |o| o.changed_directory) {
        a.distrust_directory().await;
    }
    json_ok(out.map_err(Error::from)?.data)
}

// ---- connections ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateConnection {
    id: String,
    cid: Cid,
    provhash: Secret,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
}

impl actions::Validate for CreateConnection {}
impl actions::Validate for PatchConnection {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchConnection {
    #[serde(default)]
    provhash: Option<Secret>,
    #[serde(default)]
    endpoint: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    time_zone: Option<Option<String>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub(crate) fn parse_tz(s: &str) -> Result<chrono_tz::Tz, Error> {
    s.parse::<chrono_tz::Tz>().map_err(|_| {
        InvalidValue::new(
            "time_zone",
            s,
            "is not an IANA time zone (e.g. US/Eastern, Europe/Berlin)",
        )
        .into()
    })
}

/// A LastPass endpoint: `https://…`, or `http://` on a loopback address (the sandbox) unless
/// insecure endpoints are allowed.
pub(crate) fn parse_endpoint(app: &App, s: &str) -> Result<url::Url, Error> {
    let url = lastpass::parse_endpoint(s)?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if url.scheme() != "https" && !loopback && !app.settings.allow_insecure_endpoints {
        return Err(InvalidValue::new(
            "endpoint",
            s,
            "must use https (plain http is accepted on loopback addresses only)",
        )
        .into());
    }
    Ok(url)
}

fn connection_json(c: &crate::store::ConnectionSummary) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

fn path_connection_id(id: &str) -> Result<ConnectionId, Error> {
    ConnectionId::new(id).map_err(|_| InvalidValue::new("id", id, "must not be empty").into())
}

async fn list_connections(State(app): State<App>, c: Caller) -> ApiResult {
    let all = app.usable_connections(Some(&c.0)).await?;
    json_ok(json!({ "data": all.iter().map(connection_json).collect::<Vec<_>>(), "next": null }))
}

async fn create_connection(
    State(app): State<App>,
    _a: Admin,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let req: CreateConnection = typed(body)?;
    let id = path_connection_id(&req.id)?;
    let endpoint = match &req.endpoint {
        Some(e) => parse_endpoint(&app, e)?,
        None => lastpass::parse_endpoint(lastpass::DEFAULT_ENDPOINT)?,
    };
    if req.provhash.is_empty() {
        return Err(InvalidValue::new("provhash", "", "must not be empty").into());
    }
    let time_zone = req.time_zone.as_deref().map(parse_tz).transpose()?;
    let created = app
        .store
        .create_connection(
            NewConnection {
                id,
                cid: req.cid,
                endpoint,
                provhash: req.provhash,
                time_zone,
            },
            false,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "data": connection_json(&created) })),
    )
        .into_response())
}

async fn get_connection(State(app): State<App>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let id = path_connection_id(&id)?;
    check_scope(&c.0, &id)?;
    let conn = app
        .store
        .get_connection(&id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no connection {:?}", id.as_str())))?;
    json_ok(json!({ "data": connection_json(&conn.summary()) }))
}

async fn update_connection(
    State(app): State<App>,
    _a: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let id = path_connection_id(&id)?;
    let req: PatchConnection = typed(body)?;
    let patch = ConnectionPatch {
        endpoint: req
            .endpoint
            .as_deref()
            .map(|e| parse_endpoint(&app, e))
            .transpose()?,
        provhash: req.provhash,
        time_zone: match req.time_zone {
            None => None,
            Some(None) => Some(None),
            Some(Some(s)) => Some(Some(parse_tz(&s)?)),
        },
    };
    if patch.is_empty() {
        return Err(InvalidValue::new(
            "body",
            "{}",
            "names nothing to change (provhash, endpoint, time_zone)",
        )
        .into());
    }
    let updated = app.store.update_connection(&id, patch).await?;
    app.forget_client(&id);
    json_ok(json!({ "data": connection_json(&updated) }))
}

async fn delete_connection(State(app): State<App>, _a: Admin, Path(id): Path<String>) -> ApiResult {
    let id = path_connection_id(&id)?;
    if !app.store.delete_connection(&id).await? {
        return Err(Error::NotFound(format!("no connection {:?}", id.as_str())).into());
    }
    app.forget_client(&id);
    json_ok(
        serde_json::to_value(unified::model::WriteResult::ok("Connection deleted"))
            .unwrap_or_default(),
    )
}

/// One `getuserdata` probe with the stored credentials.
async fn test_connection(State(app): State<App>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let id = path_connection_id(&id)?;
    let a = app.account_by_id(id, Some(&c.0)).await?;
    json_ok(a.me(&Params::default()).await?)
}

// ---- operations -----------------------------------------------------------------------------

async fn openapi_json() -> ApiResult {
    json_ok(openapi::document())
}

async fn healthz() -> ApiResult {
    json_ok(json!({ "status": "ok" }))
}

/// Ready when the store answers.
async fn readyz(State(app): State<App>) -> Response {
    match app.store.ping().await {
        Ok(()) => Json(json!({ "status": "ready", "store": app.store.backend() })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(error::body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "NotReady",
                    "the store is not reachable",
                    vec![],
                )),
            )
                .into_response()
        }
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    let text = app.metrics.render(&app.upstream_stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
