//! The service's event endpoints (thin: parse, authorise, call the store or
//! [`super::dispatch`]):
//!
//! - `GET /events`: the collected events of a connection (`x-account-id`), newest first (or
//!   `order=asc`), `page_size`/`next` like the unified API, filtered by `user`, `category`,
//!   `action` and `from`/`to` (UTC).
//! - `GET|PATCH /events/watcher`: whether `serve` watches the connection, and what it stored.
//! - `/webhooks`: subscriptions (the secret is write-only), their dead letters and replay.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use lp_types::{ConnectionId, InvalidValue, Secret};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dispatch::{self, SinkResolver};
use super::{Category, Edge, parse_bound};
use crate::error::Error;
use crate::http::{Account, ApiError, App, Caller, JsonBody, Writer, typed};
use crate::store::{DeadLetterQuery, EventListQuery, NewWebhook, WebhookPatch, WebhookSummary};
use crate::unified::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, decode_cursor, encode_cursor};

type ApiResult = Result<Response, ApiError>;

/// The routes, merged into the service's router.
pub fn router() -> Router<App> {
    Router::new()
        .route("/events", get(list_events))
        .route("/events/watcher", get(get_watcher).patch(patch_watcher))
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/webhooks/{id}",
            get(get_webhook).patch(patch_webhook).delete(delete_webhook),
        )
        .route("/webhooks/{id}/dead_letters", get(list_dead_letters))
        .route("/webhooks/{id}/replay", post(replay_webhook))
}

// ---- GET /events ----------------------------------------------------------------------------

const CURSOR_KIND: &str = "events";

/// `GET /events` query parameters.
#[derive(Debug, Default)]
struct EventParams {
    page_size: usize,
    next: Option<String>,
    query: EventListQuery,
}

fn time_param(field: &'static str, v: &str, edge: Edge) -> Result<DateTime<Utc>, Error> {
    parse_bound(field, v, chrono_tz::UTC, edge).map_err(|_| {
        InvalidValue::new(
            field,
            v,
            "expected an RFC 3339 time (2026-03-01T12:00:00Z) or a date (YYYY-MM-DD), in UTC",
        )
        .into()
    })
}

fn parse_event_params(q: Option<&str>) -> Result<EventParams, Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q.unwrap_or(""))
        .map_err(|e| InvalidValue::new("query", q.unwrap_or(""), e.to_string()))?;
    let mut p = EventParams {
        page_size: DEFAULT_PAGE_SIZE,
        ..EventParams::default()
    };
    for (k, v) in pairs {
        let key = k
            .strip_prefix("filter[")
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(&k);
        match key {
            "page_size" => {
                p.page_size = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                    .ok_or_else(|| {
                        InvalidValue::new(
                            "page_size",
                            &v,
                            format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                        )
                    })?;
            }
            "next" | "cursor" => p.next = Some(v).filter(|s| !s.is_empty()),
            "user" | "username" => p.query.user = Some(v).filter(|s| !s.trim().is_empty()),
            "category" => p.query.category = Some(v.parse::<Category>()?),
            "action" => p.query.action = Some(v).filter(|s| !s.trim().is_empty()),
            "from" => p.query.from = Some(time_param("from", &v, Edge::Start)?),
            "to" => p.query.to = Some(time_param("to", &v, Edge::End)?),
            "order" => {
                p.query.ascending = match v.to_ascii_lowercase().as_str() {
                    "asc" => true,
                    "desc" => false,
                    _ => {
                        return Err(InvalidValue::new(
                            "order",
                            v,
                            "must be asc (oldest first) or desc (newest first)",
                        )
                        .into());
                    }
                }
            }
            other => {
                return Err(InvalidValue::new(
                    "query",
                    other,
                    "is not a known parameter here (page_size, next, user, category, action, \
                     from, to, order)",
                )
                .into());
            }
        }
    }
    if let (Some(f), Some(t)) = (p.query.from, p.query.to)
        && f > t
    {
        return Err(InvalidValue::new("from", f.to_rfc3339(), "is after `to`").into());
    }
    Ok(p)
}

/// The cursor's text: `<asc|desc>:<time µs>:<seq>` of the last event served.
fn cursor_key(ascending: bool, time: i64, seq: i64) -> String {
    format!("{}:{time}:{seq}", if ascending { "asc" } else { "desc" })
}

fn parse_cursor(raw: &str, ascending: bool) -> Result<(i64, i64), Error> {
    let key = decode_cursor(CURSOR_KIND, raw)?;
    let bad = || InvalidValue::new("next", raw, "is not a cursor issued by this endpoint");
    let mut parts = key.split(':');
    let (Some(order), Some(t), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad().into());
    };
    if (order == "asc") != ascending {
        return Err(InvalidValue::new(
            "next",
            raw,
            "was issued for the other `order`: keep the order of the first page",
        )
        .into());
    }
    Ok((t.parse().map_err(|_| bad())?, s.parse().map_err(|_| bad())?))
}

async fn list_events(
    State(app): State<App>,
    _c: Caller,
    Account(a): Account,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let mut p = parse_event_params(q.as_deref())?;
    if let Some(raw) = &p.next {
        p.query.after = Some(parse_cursor(raw, p.query.ascending)?);
    }
    // One more than asked: whether a next page exists.
    p.query.limit = p.page_size + 1;
    let mut rows = app.store.list_events(&a.id, &p.query).await?;
    let more = rows.len() > p.page_size;
    rows.truncate(p.page_size);
    let next = match (more, rows.last()) {
        (true, Some(last)) => Some(encode_cursor(
            CURSOR_KIND,
            &cursor_key(
                p.query.ascending,
                last.record.time_utc.timestamp_micros(),
                last.seq,
            ),
        )),
        _ => None,
    };
    let data: Vec<Value> = rows
        .iter()
        .map(|e| serde_json::to_value(&e.record).unwrap_or(Value::Null))
        .collect();
    Ok(Json(json!({ "data": data, "next": next })).into_response())
}

// ---- /events/watcher ------------------------------------------------------------------------

async fn watcher_json(app: &App, id: &ConnectionId) -> Result<Value, Error> {
    let status = app
        .store
        .watcher_status(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no connection {:?}", id.as_str())))?;
    Ok(json!({ "data": status }))
}

async fn get_watcher(State(app): State<App>, _c: Caller, Account(a): Account) -> ApiResult {
    Ok(Json(watcher_json(&app, &a.id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchWatcher {
    enabled: bool,
}

impl crate::actions::Validate for PatchWatcher {}

async fn patch_watcher(
    State(app): State<App>,
    _w: Writer,
    Account(a): Account,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let req: PatchWatcher = typed(body)?;
    if !app.store.set_events_watch(&a.id, req.enabled).await? {
        return Err(Error::NotFound(format!("no connection {:?}", a.id.as_str())).into());
    }
    Ok(Json(watcher_json(&app, &a.id).await?).into_response())
}

// ---- /webhooks ------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWebhook {
    url: String,
    /// The HMAC-SHA256 key receivers verify `X-Lpbridge-Signature` with; never returned.
    secret: Secret,
    #[serde(default)]
    categories: Option<Vec<Category>>,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchWebhook {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    secret: Option<Secret>,
    /// `null`: every category.
    #[serde(default, deserialize_with = "double_option")]
    categories: Option<Option<Vec<Category>>>,
    #[serde(default)]
    enabled: Option<bool>,
}

impl crate::actions::Validate for CreateWebhook {}
impl crate::actions::Validate for PatchWebhook {}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Vec<Category>>>, D::Error> {
    Option::<Vec<Category>>::deserialize(d).map(Some)
}

fn webhook_json(w: &WebhookSummary) -> Value {
    serde_json::to_value(w).unwrap_or(Value::Null)
}

/// The subscription `id`, if the caller's key may use its connection (403 otherwise).
async fn visible_webhook(app: &App, c: &Caller, id: &str) -> Result<WebhookSummary, Error> {
    webhook_for(app, &c.0, &format!("API key {}", c.0.id), id).await
}

/// The subscription `id` when `key` may use its connection (403 naming `who` otherwise): the
/// JSON API and the console check webhooks so.
pub(crate) async fn webhook_for(
    app: &App,
    key: &crate::store::ApiKeyInfo,
    who: &str,
    id: &str,
) -> Result<WebhookSummary, Error> {
    let w = app
        .store
        .webhook_summary(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no webhook {id:?}")))?;
    let conn = ConnectionId::new(w.connection_id.clone())?;
    if !key.may_use(&conn) {
        return Err(Error::Forbidden(format!(
            "{who} may not use connection {:?}",
            w.connection_id
        )));
    }
    Ok(w)
}

async fn list_webhooks(State(app): State<App>, c: Caller, headers: HeaderMap) -> ApiResult {
    // With `x-account-id`, that connection's; without, those of every connection the key may use.
    let all = if headers.contains_key(crate::http::ACCOUNT_HEADER) {
        let a = app.account(&headers, Some(&c.0)).await?;
        app.store.list_webhooks(Some(&a.id)).await?
    } else {
        let mut all = app.store.list_webhooks(None).await?;
        all.retain(|w| ConnectionId::new(w.connection_id.clone()).is_ok_and(|id| c.0.may_use(&id)));
        all
    };
    let data: Vec<Value> = all.iter().map(webhook_json).collect();
    Ok(Json(json!({ "data": data, "next": null })).into_response())
}

async fn create_webhook(
    State(app): State<App>,
    _w: Writer,
    Account(a): Account,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let req: CreateWebhook = typed(body)?;
    let created = app
        .store
        .create_webhook(NewWebhook {
            connection_id: a.id.clone(),
            url: req.url,
            secret: req.secret,
            categories: req.categories,
            enabled: req.enabled.unwrap_or(true),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "data": webhook_json(&created) })),
    )
        .into_response())
}

async fn get_webhook(State(app): State<App>, c: Caller, Path(id): Path<String>) -> ApiResult {
    let w = visible_webhook(&app, &c, &id).await?;
    Ok(Json(json!({ "data": webhook_json(&w) })).into_response())
}

async fn patch_webhook(
    State(app): State<App>,
    Writer(c): Writer,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    visible_webhook(&app, &c, &id).await?;
    let req: PatchWebhook = typed(body)?;
    let patch = WebhookPatch {
        url: req.url,
        secret: req.secret,
        categories: req.categories,
        enabled: req.enabled,
    };
    if patch.is_empty() {
        return Err(InvalidValue::new(
            "body",
            "{}",
            "names nothing to change (url, secret, categories, enabled)",
        )
        .into());
    }
    let updated = app.store.update_webhook(&id, patch).await?;
    Ok(Json(json!({ "data": webhook_json(&updated) })).into_response())
}

async fn delete_webhook(
    State(app): State<App>,
    Writer(c): Writer,
    Path(id): Path<String>,
) -> ApiResult {
    visible_webhook(&app, &c, &id).await?;
    app.store.delete_webhook(&id).await?;
    Ok(Json(
        serde_json::to_value(crate::unified::model::WriteResult::ok("Webhook deleted"))
            .unwrap_or_default(),
    )
    .into_response())
}

fn include_replayed(q: Option<&str>) -> Result<bool, Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q.unwrap_or(""))
        .map_err(|e| InvalidValue::new("query", q.unwrap_or(""), e.to_string()))?;
    let mut out = false;
    for (k, v) in pairs {
        match k.as_str() {
            "include_replayed" => {
                out = match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(InvalidValue::new(
                            "include_replayed",
                            v,
                            "must be true or false",
                        )
                        .into());
                    }
                }
            }
            other => {
                return Err(InvalidValue::new(
                    "query",
                    other,
                    "is not a known parameter here (include_replayed)",
                )
                .into());
            }
        }
    }
    Ok(out)
}

async fn list_dead_letters(
    State(app): State<App>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let w = visible_webhook(&app, &c, &id).await?;
    let letters = app
        .store
        .list_dead_letters(&DeadLetterQuery {
            webhook_id: Some(w.id),
            include_replayed: include_replayed(q.as_deref())?,
            ..DeadLetterQuery::default()
        })
        .await?;
    Ok(Json(json!({ "data": letters, "next": null })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    /// Only this dead letter (default: every one not yet replayed).
    #[serde(default)]
    id: Option<i64>,
}

impl crate::actions::Validate for ReplayRequest {}

async fn replay_webhook(
    State(app): State<App>,
    Writer(c): Writer,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let w = visible_webhook(&app, &c, &id).await?;
    // The body is optional here: empty means every dead letter waiting.
    let req: ReplayRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReplayRequest::default()
    } else {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| InvalidValue::new("body", "…", format!("is not valid JSON ({e})")))?;
        typed(v)?
    };
    // Two attempts per dead letter: the request answers within about two webhook timeouts.
    let mut resolver =
        SinkResolver::new(app.store.clone(), Vec::new()).with_subscription_attempts(2);
    let query = DeadLetterQuery {
        webhook_id: Some(w.id),
        id: req.id,
        ..DeadLetterQuery::default()
    };
    let out = dispatch::replay(&app.store, &query, &mut resolver).await?;
    if out.is_empty()
        && let Some(n) = req.id
    {
        return Err(Error::NotFound(format!(
            "no dead letter {n} of webhook {id:?} waits for replay"
        ))
        .into());
    }
    let delivered = out.iter().filter(|r| r.error.is_none()).count();
    Ok(Json(json!({
        "data": { "replayed": delivered, "failed": out.len() - delivered, "dead_letters": out }
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_params_are_parsed_and_refused_by_name() {
        let p = parse_event_params(Some(
            "page_size=10&user=A%40x.io&filter[category]=Authentication&action=Log%20in&from=2026-01-01&to=2026-01-02T00:00:00Z&order=asc",
        ))
        .unwrap();
        assert_eq!(p.page_size, 10);
        assert_eq!(p.query.category, Some(Category::Authentication));
        assert!(p.query.ascending);
        assert_eq!(
            p.query.from.unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        for (q, field) in [
            ("page_size=0", "page_size"),
            ("category=nope", "category"),
            ("from=yesterday", "from"),
            ("order=up", "order"),
            ("colour=red", "query"),
            ("from=2026-02-01&to=2026-01-01", "from"),
        ] {
            match parse_event_params(Some(q)) {
                Err(Error::Invalid(v)) => assert_eq!(v.field, field, "{q}"),
                other => panic!("{q}: {other:?}"),
            }
        }
    }

    #[test]
    fn cursors_round_trip_and_keep_their_order() {
        let c = encode_cursor(CURSOR_KIND, &cursor_key(false, 123, 7));
        assert_eq!(parse_cursor(&c, false).unwrap(), (123, 7));
        assert!(parse_cursor(&c, true).is_err());
        assert!(parse_cursor("garbage", false).is_err());
    }
}
