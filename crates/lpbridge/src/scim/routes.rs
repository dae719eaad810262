//! The `/scim/v2` endpoints: bearer-token authentication (a SCIM token selects its connection),
//! `application/scim+json` bodies, RFC 7644 §3.12 errors for everything that goes wrong
//! (including 401, 404, 405 and 413), and the discovery resources.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use super::error::ScimError;
use super::list::{ListResponse, Projection, SearchRequest};
use super::schema::{ENTERPRISE_USER, GROUP, ResourceSchema, SchemaDef, USER};
use super::service::Provider;
use super::{CONTENT_TYPE, LIST_RESPONSE_SCHEMA};
use crate::http::App;
use crate::store::KeyPurpose;

/// Largest `count` honoured (also `filter.maxResults` in `/ServiceProviderConfig`).
pub const MAX_RESULTS: usize = 1000;
/// Where the endpoints are mounted.
pub const PREFIX: &str = "/scim/v2";

type ScimResult = Result<Response, ScimError>;

/// The `/scim/v2` router (mounted by [`crate::http::router`]).
pub fn router() -> Router<App> {
    Router::new()
        .route("/Users", get(list_users).post(create_user))
        .route("/Users/.search", post(search_users))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(put_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route("/Groups/.search", post(search_groups))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(put_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route("/.search", post(search_all))
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .route("/Me", any(not_implemented))
        .route("/Bulk", any(not_implemented))
        .fallback(unknown_endpoint)
        .method_not_allowed_fallback(method_not_allowed)
}

/// The base URL clients reach, for `meta.location` and `$ref`.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{proto}://{host}{PREFIX}")
}

/// The provider for the connection the request's SCIM token belongs to.
pub struct Scim(pub Provider);

impl FromRequestParts<App> for Scim {
    type Rejection = ScimError;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ScimError> {
        let unauthorized = |detail: &str| ScimError::unauthorized(detail);
        let raw = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| {
                unauthorized("a bearer token is required: Authorization: Bearer <token>")
            })?
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not ASCII"))?;
        let mut words = raw.split_whitespace();
        let (scheme, token) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(unauthorized(
                "use a bearer token: Authorization: Bearer <token>",
            ));
        }
        let key = app
            .store
            .verify_api_key(token.trim())
            .await
            .map_err(|e| ScimError::internal(format!("cannot check the token: {e}")))?
            .filter(|k| k.purpose == KeyPurpose::Scim)
            .ok_or_else(|| {
                unauthorized("the token is unknown, revoked or not a SCIM token (create one with `lpbridge scim token create`)")
            })?;
        let Some([conn_id]) = key.connections.as_deref() else {
            return Err(unauthorized("the SCIM token names no single connection"));
        };
        let conn = app
            .account_by_id(conn_id.clone(), Some(&key))
            .await
            .map_err(|e| {
                let (status, _, message, _, _) = crate::http::error::classify(&e);
                if status == StatusCode::NOT_FOUND {
                    unauthorized("the token's connection no longer exists")
                } else {
                    ScimError::new(status.as_u16(), None, message)
                }
            })?;
        Ok(Scim(Provider {
            write_lock: app.scim_lock(&conn.id),
            conn,
            store: app.store.clone(),
            base: base_url(&parts.headers),
            delete_action: app.settings.scim_delete_action,
            email_domain: app.settings.scim_email_domain.clone(),
        }))
    }
}

/// A JSON request body (`application/scim+json` or `application/json`).
pub struct ScimBody(pub Value);

impl FromRequest<App> for ScimBody {
    type Rejection = ScimError;
    async fn from_request(req: Request, app: &App) -> Result<Self, ScimError> {
        let limit = app.settings.max_body_bytes;
        let bytes = Bytes::from_request(req, app).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::payload_too_large(format!(
                    "the request body is larger than {limit} bytes"
                ))
            } else {
                ScimError::invalid_syntax(e.body_text())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ScimError::invalid_syntax(
                "the request body is empty: send a JSON object",
            ));
        }
        // Never quoted back: a body may carry a password.
        serde_json::from_slice(&bytes).map(ScimBody).map_err(|e| {
            ScimError::invalid_syntax(format!(
                "the request body is not valid JSON (line {}, column {}: {e})",
                e.line(),
                e.column()
            ))
        })
    }
}

/// A SCIM JSON response with `ETag` (from `meta.version`) and, for 201, `Location`.
fn respond(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    let meta = body.get("meta");
    if let Some(v) = meta
        .and_then(|m| m.get("version"))
        .and_then(Value::as_str)
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Some(v) = meta
            .and_then(|m| m.get("location"))
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(header::LOCATION, v);
    }
    resp
}

fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ScimError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or(""))
        .map_err(|e| ScimError::invalid_syntax(format!("the query string is malformed: {e}")))
}

fn search_from_query(raw: Option<&str>) -> Result<SearchRequest, ScimError> {
    let pairs = query_pairs(raw)?;
    SearchRequest::from_query(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        MAX_RESULTS,
    )
}

/// `attributes` / `excludedAttributes` of a single-resource request.
fn projection(raw: Option<&str>) -> Result<Projection, ScimError> {
    let pairs = query_pairs(raw)?;
    let find = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    Projection::from_query(find("attributes"), find("excludedAttributes"))
}

fn one(
    status: StatusCode,
    resource: &Value,
    raw: Option<&str>,
    schema: &ResourceSchema,
) -> ScimResult {
    let shown = projection(raw)?.apply(resource, schema);
    Ok(respond(status, &shown))
}

fn list(page: &ListResponse) -> ScimResult {
    Ok(respond(StatusCode::OK, &page.to_json()))
}

// ---- Users ----------------------------------------------------------------------------

async fn list_users(Scim(p): Scim, RawQuery(q): RawQuery) -> ScimResult {
    let req = search_from_query(q.as_deref())?;
    list(&p.list_users(&req).await?)
}

async fn search_users(Scim(p): Scim, ScimBody(body): ScimBody) -> ScimResult {
    let req = SearchRequest::from_json(&body, MAX_RESULTS)?;
    list(&p.list_users(&req).await?)
}

async fn create_user(Scim(p): Scim, RawQuery(q): RawQuery, ScimBody(body): ScimBody) -> ScimResult {
    let r = p.create_user(&body).await?;
    one(StatusCode::CREATED, &r, q.as_deref(), &ResourceSchema::USER)
}

async fn get_user(Scim(p): Scim, Path(id): Path<String>, RawQuery(q): RawQuery) -> ScimResult {
    let r = p.get_user(&id).await?;
    one(StatusCode::OK, &r, q.as_deref(), &ResourceSchema::USER)
}

async fn put_user(
    Scim(p): Scim,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    ScimBody(body): ScimBody,
) -> ScimResult {
    let r = p.replace_user(&id, &body).await?;
    one(StatusCode::OK, &r, q.as_deref(), &ResourceSchema::USER)
}

async fn patch_user(
    Scim(p): Scim,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    ScimBody(body): ScimBody,
) -> ScimResult {
    let r = p.patch_user(&id, &body).await?;
    one(StatusCode::OK, &r, q.as_deref(), &ResourceSchema::USER)
}

async fn delete_user(Scim(p): Scim, Path(id): Path<String>) -> ScimResult {
    p.delete_user(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Groups ---------------------------------------------------------------------------

async fn list_groups(Scim(p): Scim, RawQuery(q): RawQuery) -> ScimResult {
    let req = search_from_query(q.as_deref())?;
    list(&p.list_groups(&req).await?)
}

async fn search_groups(Scim(p): Scim, ScimBody(body): ScimBody) -> ScimResult {
    let req = SearchRequest::from_json(&body, MAX_RESULTS)?;
    list(&p.list_groups(&req).await?)
}

async fn create_group(
    Scim(p): Scim,
    RawQuery(q): RawQuery,
    ScimBody(body): ScimBody,
) -> ScimResult {
    let r = p.create_group(&body).await?;
    one(
        StatusCode::CREATED,
        &r,
        q.as_deref(),
        &ResourceSchema::GROUP,
    )
}

async fn get_group(Scim(p): Scim, Path(id): Path<String>, RawQuery(q): RawQuery) -> ScimResult {
    let r = p.get_group(&id).await?;
    one(StatusCode::OK, &r, q.as_deref(), &ResourceSchema::GROUP)
}

async fn put_group(
    Scim(p): Scim,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    ScimBody(body): ScimBody,
) -> ScimResult {
    let r = p.replace_group(&id, &body).await?;
    one(StatusCode::OK, &r, q.as_deref(), &ResourceSchema::GROUP)
}

async fn patch_group(
    Scim(p): Scim,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    ScimBody(body): ScimBody,
) -> ScimResult {
    let r = p.patch_group(&id, &body).await?;
    one(StatusCode::OK, &r, q.as_deref(), &ResourceSchema::GROUP)
}

async fn delete_group(Scim(p): Scim, Path(id): Path<String>) -> ScimResult {
    p.delete_group(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /.search`: Users and Groups together (a filter applies to both).
async fn search_all(Scim(p): Scim, ScimBody(body): ScimBody) -> ScimResult {
    let req = SearchRequest::from_json(&body, MAX_RESULTS)?;
    let everything = SearchRequest {
        page: super::PageRequest::new(Some(1), Some(i64::MAX), usize::MAX),
        ..req.clone()
    };
    let mut all = p.list_users(&everything).await?.resources;
    all.extend(p.list_groups(&everything).await?.resources);
    Ok(respond(
        StatusCode::OK,
        &ListResponse::from_page(all, req.page).to_json(),
    ))
}

// ---- discovery ------------------------------------------------------------------------

async fn service_provider_config(Scim(p): Scim) -> ScimResult {
    Ok(respond(
        StatusCode::OK,
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://github.com/lpbridge/lpbridge#scim-20",
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A SCIM token from `lpbridge scim token create`, sent as \
                                Authorization: Bearer <token>. Each token selects one LastPass \
                                connection.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{}/ServiceProviderConfig", p.base),
            },
        }),
    ))
}

const RESOURCE_TYPES: [ResourceSchema; 2] = [ResourceSchema::USER, ResourceSchema::GROUP];
const SCHEMAS: [&SchemaDef; 3] = [&USER, &ENTERPRISE_USER, &GROUP];

fn resource_type_json(base: &str, rt: &ResourceSchema) -> Value {
    let mut v = rt.resource_type_json();
    v["meta"]["location"] = Value::String(format!("{base}/ResourceTypes/{}", rt.name));
    v
}

fn schema_json(base: &str, s: &SchemaDef) -> Value {
    let mut v = s.to_json();
    v["meta"] = json!({
        "resourceType": "Schema",
        "location": format!("{base}/Schemas/{}", s.id),
    });
    v
}

fn list_of(items: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": items.len(),
        "startIndex": 1,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

async fn resource_types(Scim(p): Scim) -> ScimResult {
    let items = RESOURCE_TYPES
        .iter()
        .map(|rt| resource_type_json(&p.base, rt))
        .collect();
    Ok(respond(StatusCode::OK, &list_of(items)))
}

async fn resource_type(Scim(p): Scim, Path(id): Path<String>) -> ScimResult {
    let rt = RESOURCE_TYPES
        .iter()
        .find(|rt| rt.name == id)
        .ok_or_else(|| ScimError::not_found(format!("no ResourceType {id:?}")))?;
    Ok(respond(StatusCode::OK, &resource_type_json(&p.base, rt)))
}

async fn schemas(Scim(p): Scim) -> ScimResult {
    let items = SCHEMAS.iter().map(|s| schema_json(&p.base, s)).collect();
    Ok(respond(StatusCode::OK, &list_of(items)))
}

async fn schema(Scim(p): Scim, Path(id): Path<String>) -> ScimResult {
    let s = SCHEMAS
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ScimError::not_found(format!("no Schema {id:?}")))?;
    Ok(respond(StatusCode::OK, &schema_json(&p.base, s)))
}

async fn not_implemented(_: Scim) -> ScimResult {
    Err(ScimError::new(
        501,
        None,
        "not implemented: lpbridge serves /Users, /Groups, /.search and the discovery endpoints \
         (bulk and /Me are not supported, as /ServiceProviderConfig says)",
    ))
}

async fn unknown_endpoint(_: Scim) -> ScimResult {
    Err(ScimError::not_found(
        "no such SCIM endpoint: see /scim/v2/ResourceTypes",
    ))
}

async fn method_not_allowed(_: Scim) -> ScimResult {
    Err(ScimError::method_not_allowed(
        "this method is not allowed on this endpoint (the discovery endpoints are read-only)",
    ))
}
