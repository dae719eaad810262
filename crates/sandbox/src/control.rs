//! The control API under `/_sandbox/`: inspect and seed accounts, reset, faults, stats, the
//! virtual clock, activity and saving. JSON in and out; a bad request answers 4xx with
//! `{"error":CODE,"field":FIELD,"value":VALUE,"message":TEXT}`. Documented in
//! `crates/sandbox/CONTROL.md`.

use std::path::PathBuf;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::activity::{self, ActivityConfig};
use crate::clock::{self, Clock};
use crate::faults::{FaultRule, Faults};
use crate::lastpass::{AccountSpec, FlagStyle, LastPass, SandboxError, SeedOptions};
use crate::server::provhash_for;

/// What the control handlers reach.
#[derive(Clone)]
pub struct ControlState {
    pub lastpass: LastPass,
    pub faults: Faults,
    pub clock: Clock,
    /// Defaults for `POST /_sandbox/activity` (`per_hour`, `seed`).
    pub activity: ActivityConfig,
    /// Where `POST /_sandbox/save` writes without a `path`.
    pub state_file: Option<PathBuf>,
}

/// A structured control-API error.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlError {
    pub status: StatusCode,
    pub code: &'static str,
    pub field: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

impl ControlError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            field: None,
            value: None,
            message: message.into(),
        }
    }

    fn invalid(field: &str, value: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            field: Some(field.to_string()),
            value: Some(value.into()),
            message: message.into(),
        }
    }

    fn not_found(field: &str, value: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            ..Self::invalid(field, value, message)
        }
    }
}

impl IntoResponse for ControlError {
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

impl From<SandboxError> for ControlError {
    fn from(e: SandboxError) -> Self {
        let message = e.to_string();
        match e {
            SandboxError::UnknownAccount(cid) => Self::not_found("cid", cid.to_string(), message),
            SandboxError::DuplicateAccount(cid) => Self {
                status: StatusCode::CONFLICT,
                code: "conflict",
                ..Self::invalid("cid", cid.to_string(), message)
            },
            SandboxError::Invalid { field, value, .. } => Self::invalid(field, value, message),
            SandboxError::Listen { addr, .. } => Self::invalid("listen", addr, message),
            SandboxError::StateFile { path, .. } => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "state_file",
                ..Self::invalid("path", path, message)
            },
        }
    }
}

type Result<T, E = ControlError> = std::result::Result<T, E>;

/// Parses a JSON body (empty means `{}`), naming the offending field on error.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T> {
    let bytes: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let field = if path == "." || path == "?" || path.is_empty() {
            ["missing field `", "unknown field `"]
                .iter()
                .find_map(|p| {
                    message
                        .split_once(p)
                        .and_then(|(_, rest)| rest.split_once('`'))
                        .map(|(f, _)| f.to_string())
                })
                .unwrap_or_else(|| "body".to_string())
        } else {
            path
        };
        ControlError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            field: Some(field),
            value: None,
            message,
        }
    })
}

fn parse_cid(raw: &str) -> Result<u64> {
    raw.trim()
        .parse()
        .map_err(|_| ControlError::invalid("cid", raw, "cid must be a whole number"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SandboxError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| {
            ControlError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("task failed: {e}"),
            )
        })?
        .map_err(ControlError::from)
}

/// The `/_sandbox` routes (nest them under `/_sandbox`).
pub fn router(state: ControlState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/accounts", get(list_accounts).post(add_account))
        .route("/accounts/{cid}", get(get_account))
        .route("/accounts/{cid}/users/{username}", get(get_user))
        .route("/accounts/{cid}/users/{username}/login", post(login))
        .route("/accounts/{cid}/seed", post(reseed))
        .route("/config", get(get_config).post(set_config))
        .route("/reset", post(reset))
        .route(
            "/faults",
            get(get_faults).post(add_fault).delete(clear_faults),
        )
        .route("/faults/{id}", delete(delete_fault))
        .route("/rate-limit", get(get_rate_limit).post(set_rate_limit))
        .route("/stats", get(get_stats).delete(reset_stats))
        .route("/clock", get(get_clock).post(set_clock))
        .route("/clock/advance", post(advance_clock))
        .route("/activity", post(generate_activity))
        .route("/save", post(save))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ControlError {
    ControlError::not_found(
        "path",
        uri.path().to_string(),
        "no such control endpoint (see crates/sandbox/CONTROL.md)",
    )
}

async fn index() -> Json<Value> {
    Json(json!({
        "endpoints": [
            "GET /_sandbox/accounts", "POST /_sandbox/accounts",
            "GET /_sandbox/accounts/{cid}", "GET /_sandbox/accounts/{cid}/users/{username}",
            "POST /_sandbox/accounts/{cid}/users/{username}/login", "GET|POST /_sandbox/config",
            "POST /_sandbox/accounts/{cid}/seed", "POST /_sandbox/reset",
            "GET|POST|DELETE /_sandbox/faults", "DELETE /_sandbox/faults/{id}",
            "GET|POST /_sandbox/rate-limit", "GET|DELETE /_sandbox/stats",
            "GET|POST /_sandbox/clock", "POST /_sandbox/clock/advance",
            "POST /_sandbox/activity", "POST /_sandbox/save"
        ]
    }))
}

async fn list_accounts(State(s): State<ControlState>) -> Json<Value> {
    Json(json!(s.lastpass.accounts()))
}

/// Seed options where every field may be left out (defaults from [`SeedOptions::default`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialSeed {
    users: Option<usize>,
    groups: Option<usize>,
    folders: Option<usize>,
    events: Option<usize>,
    seed: Option<u64>,
}

impl PartialSeed {
    fn resolve(self) -> SeedOptions {
        let d = SeedOptions::default();
        SeedOptions {
            users: self.users.unwrap_or(d.users),
            groups: self.groups.unwrap_or(d.groups),
            folders: self.folders.unwrap_or(d.folders),
            events: self.events.unwrap_or(d.events),
            seed: self.seed.unwrap_or(d.seed),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    cid: u64,
    provhash: Option<String>,
    name: Option<String>,
    time_zone: Option<String>,
    seed: Option<PartialSeed>,
}

fn check_time_zone(tz: &str) -> Result<()> {
    tz.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| ControlError::invalid("time_zone", tz, "not an IANA time zone name"))
}

async fn add_account(State(s): State<ControlState>, body: Bytes) -> Result<Response> {
    let req: NewAccount = parse(&body)?;
    let seed = req.seed.unwrap_or_default().resolve();
    let time_zone = req
        .time_zone
        .unwrap_or_else(|| crate::server::DEFAULT_TIME_ZONE.to_string());
    check_time_zone(&time_zone)?;
    let provhash = match req.provhash {
        Some(p) if p.is_empty() => {
            return Err(ControlError::invalid("provhash", p, "must not be empty"));
        }
        Some(p) => p,
        None => provhash_for(req.cid, seed.seed),
    };
    let spec = AccountSpec {
        cid: req.cid,
        provhash,
        name: req.name.unwrap_or_else(|| format!("Customer {}", req.cid)),
        time_zone,
        seed,
    };
    let lp = s.lastpass.clone();
    let info = blocking(move || lp.add_account(spec)).await?;
    Ok((StatusCode::CREATED, Json(json!(info))).into_response())
}

async fn get_account(
    State(s): State<ControlState>,
    Path(cid): Path<String>,
) -> Result<Json<Value>> {
    let cid = parse_cid(&cid)?;
    s.lastpass
        .inspect_account(cid)
        .map(Json)
        .ok_or_else(|| SandboxError::UnknownAccount(cid).into())
}

fn no_user(cid: u64, username: &str) -> ControlError {
    ControlError::not_found(
        "username",
        username,
        format!("no user {username:?} in account {cid}"),
    )
}

async fn get_user(
    State(s): State<ControlState>,
    Path((cid, username)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let cid = parse_cid(&cid)?;
    if s.lastpass.account(cid).is_none() {
        return Err(SandboxError::UnknownAccount(cid).into());
    }
    s.lastpass
        .inspect_user(cid, &username)
        .map(Json)
        .ok_or_else(|| no_user(cid, &username))
}

async fn login(
    State(s): State<ControlState>,
    Path((cid, username)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let cid = parse_cid(&cid)?;
    if s.lastpass.simulate_login(cid, &username)? {
        Ok(Json(
            json!({"cid": cid, "username": username, "logged_in": true}),
        ))
    } else {
        Err(no_user(cid, &username))
    }
}

fn config_json(lp: &LastPass) -> Value {
    let c = lp.config();
    json!({
        "flag_style": c.flag_style,
        "json_content_type": c.json_content_type,
        "max_pagesize": c.max_pagesize,
        "detailed_sf_unpaged_limit": c.detailed_sf_unpaged_limit,
    })
}

async fn get_config(State(s): State<ControlState>) -> Json<Value> {
    Json(config_json(&s.lastpass))
}

/// Present (even as `null`) → `Some(value)`; absent → `None` (with `#[serde(default)]`).
fn present<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigRequest {
    flag_style: Option<FlagStyle>,
    json_content_type: Option<bool>,
    max_pagesize: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    detailed_sf_unpaged_limit: Option<Option<usize>>,
}

async fn set_config(State(s): State<ControlState>, body: Bytes) -> Result<Json<Value>> {
    let req: ConfigRequest = parse(&body)?;
    if req.max_pagesize == Some(0) {
        return Err(ControlError::invalid(
            "max_pagesize",
            "0",
            "must be at least 1",
        ));
    }
    if let Some(f) = req.flag_style {
        s.lastpass.set_flag_style(f);
    }
    if let Some(j) = req.json_content_type {
        s.lastpass.set_json_content_type(j);
    }
    if let Some(n) = req.max_pagesize {
        s.lastpass.set_max_pagesize(n);
    }
    if let Some(l) = req.detailed_sf_unpaged_limit {
        s.lastpass.set_detailed_sf_unpaged_limit(l);
    }
    Ok(Json(config_json(&s.lastpass)))
}

async fn reseed(
    State(s): State<ControlState>,
    Path(cid): Path<String>,
    body: Bytes,
) -> Result<Json<Value>> {
    let cid = parse_cid(&cid)?;
    let seed = parse::<PartialSeed>(&body)?.resolve();
    let lp = s.lastpass.clone();
    let info = blocking(move || lp.reseed(cid, seed)).await?;
    Ok(Json(json!(info)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    #[serde(default)]
    stats: bool,
    #[serde(default)]
    faults: bool,
}

async fn reset(State(s): State<ControlState>, body: Bytes) -> Result<Json<Value>> {
    let req: ResetRequest = parse(&body)?;
    let lp = s.lastpass.clone();
    blocking(move || {
        lp.reset();
        Ok(())
    })
    .await?;
    if req.stats {
        s.faults.reset_stats();
    }
    if req.faults {
        s.faults.clear();
    }
    Ok(Json(json!({"accounts": s.lastpass.accounts()})))
}

fn faults_json(f: &Faults) -> Value {
    json!({"rules": f.rules(), "rate_limit_rps": f.rate_limit(), "seed": f.seed()})
}

async fn get_faults(State(s): State<ControlState>) -> Json<Value> {
    Json(faults_json(&s.faults))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecRequest {
    spec: String,
}

async fn add_fault(State(s): State<ControlState>, body: Bytes) -> Result<Response> {
    let value: Value = parse(&body)?;
    let rule: FaultRule = if value.get("spec").is_some() {
        let req: SpecRequest = parse(&body)?;
        req.spec.parse().map_err(|e: SandboxError| {
            ControlError::invalid("spec", req.spec.clone(), e.to_string())
        })?
    } else {
        // `kind` is flattened into the rule, so serde cannot refuse unknown fields itself.
        const KNOWN: [&str; 8] = [
            "cmd",
            "cid",
            "kind",
            "probability",
            "count",
            "status",
            "min_ms",
            "max_ms",
        ];
        if let Some(unknown) = value
            .as_object()
            .and_then(|m| m.keys().find(|k| !KNOWN.contains(&k.as_str())))
        {
            return Err(ControlError::invalid(
                unknown,
                value[unknown].to_string(),
                format!(
                    "unknown field `{unknown}`, expected one of {}",
                    KNOWN.join(", ")
                ),
            ));
        }
        parse(&body).map_err(|mut e: ControlError| {
            if e.field.as_deref() == Some("body") && e.message.contains("variant") {
                e.field = Some("kind".to_string());
                e.value = value.get("kind").map(Value::to_string);
            }
            e
        })?
    };
    rule.validate()?;
    let id = s.faults.add(rule.clone());
    let mut out = json!(rule);
    out["id"] = json!(id);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn clear_faults(State(s): State<ControlState>) -> Json<Value> {
    s.faults.clear();
    Json(faults_json(&s.faults))
}

async fn delete_fault(
    State(s): State<ControlState>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let n: u64 = id
        .parse()
        .map_err(|_| ControlError::invalid("id", id.clone(), "fault id must be a whole number"))?;
    if !s.faults.remove(n) {
        return Err(ControlError::not_found(
            "id",
            id,
            "no fault rule with this id",
        ));
    }
    Ok(Json(faults_json(&s.faults)))
}

async fn get_rate_limit(State(s): State<ControlState>) -> Json<Value> {
    Json(json!({"rps": s.faults.rate_limit()}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitRequest {
    rps: Option<f64>,
}

async fn set_rate_limit(State(s): State<ControlState>, body: Bytes) -> Result<Json<Value>> {
    let req: RateLimitRequest = parse(&body)?;
    if let Some(r) = req.rps
        && (r <= 0.0 || !r.is_finite())
    {
        return Err(ControlError::invalid(
            "rps",
            r.to_string(),
            "must be a positive number of requests per second (or null to lift the limit)",
        ));
    }
    s.faults.set_rate_limit(req.rps);
    Ok(Json(json!({"rps": s.faults.rate_limit()})))
}

async fn get_stats(State(s): State<ControlState>) -> Json<Value> {
    Json(json!(s.faults.stats()))
}

async fn reset_stats(State(s): State<ControlState>) -> Json<Value> {
    s.faults.reset_stats();
    Json(json!(s.faults.stats()))
}

fn clock_json(c: &Clock) -> Value {
    let us = c.now_us();
    let iso = DateTime::<Utc>::from_timestamp_micros(us)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Micros, true));
    json!({"now_us": us, "now": iso, "frozen": c.is_frozen()})
}

async fn get_clock(State(s): State<ControlState>) -> Json<Value> {
    Json(clock_json(&s.clock))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    seconds: f64,
}

async fn advance_clock(State(s): State<ControlState>, body: Bytes) -> Result<Json<Value>> {
    let req: AdvanceRequest = parse(&body)?;
    if !req.seconds.is_finite() || req.seconds < 0.0 || req.seconds > 1e11 {
        return Err(ControlError::invalid(
            "seconds",
            req.seconds.to_string(),
            "must be a non-negative number of seconds (the clock never goes back by advance)",
        ));
    }
    s.clock.advance_us((req.seconds * 1e6).round() as i64);
    Ok(Json(clock_json(&s.clock)))
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Instant {
    Micros(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    /// RFC 3339 time (`2026-01-05T09:00:00Z`) or microseconds since the epoch.
    set: Option<Instant>,
    #[serde(default)]
    freeze: bool,
    #[serde(default)]
    resume: bool,
}

async fn set_clock(State(s): State<ControlState>, body: Bytes) -> Result<Json<Value>> {
    let req: ClockRequest = parse(&body)?;
    if req.freeze && req.resume {
        return Err(ControlError::invalid(
            "resume",
            "true",
            "freeze and resume cannot both be true",
        ));
    }
    let set_us = match req.set {
        None => None,
        Some(Instant::Micros(us)) if !(clock::MIN_US..=clock::MAX_US).contains(&us) => {
            return Err(ControlError::invalid(
                "set",
                us.to_string(),
                format!(
                    "microseconds since the epoch must be between {} (year 1) and {} (year 9999)",
                    clock::MIN_US,
                    clock::MAX_US
                ),
            ));
        }
        Some(Instant::Micros(us)) => Some(us),
        Some(Instant::Text(t)) => Some(
            DateTime::parse_from_rfc3339(&t)
                .map_err(|e| {
                    ControlError::invalid("set", t.clone(), format!("not an RFC 3339 time: {e}"))
                })?
                .timestamp_micros(),
        ),
    };
    if req.freeze {
        s.clock.freeze();
    }
    if let Some(us) = set_us {
        s.clock.set_us(us);
    }
    if req.resume {
        s.clock.resume();
    }
    Ok(Json(clock_json(&s.clock)))
}

/// Most events one `POST /_sandbox/activity` may ask for.
const MAX_ACTIVITY_EVENTS: f64 = 1_000_000.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityRequest {
    cid: u64,
    minutes: f64,
    per_hour: Option<f64>,
    seed: Option<u64>,
}

async fn generate_activity(State(s): State<ControlState>, body: Bytes) -> Result<Json<Value>> {
    let req: ActivityRequest = parse(&body)?;
    if !req.minutes.is_finite() || req.minutes <= 0.0 || req.minutes > 525_600.0 * 10.0 {
        return Err(ControlError::invalid(
            "minutes",
            req.minutes.to_string(),
            "must be a positive number of minutes (at most ten years)",
        ));
    }
    let per_hour = req.per_hour.unwrap_or(s.activity.per_hour);
    if !per_hour.is_finite() || per_hour <= 0.0 {
        return Err(ControlError::invalid(
            "per_hour",
            per_hour.to_string(),
            "must be a positive number of events per hour",
        ));
    }
    // One call must not allocate without bound (20M events is ~0.5 GB).
    let expected = req.minutes / 60.0 * per_hour;
    if expected > MAX_ACTIVITY_EVENTS {
        return Err(ControlError::invalid(
            "per_hour",
            per_hour.to_string(),
            format!(
                "{per_hour} events per hour over {} minutes is about {expected:.0} events; at most {MAX_ACTIVITY_EVENTS} per call",
                req.minutes
            ),
        ));
    }
    let to_us = s.clock.now_us();
    let from_us = to_us - (req.minutes * 60e6).round() as i64;
    let seed = req.seed.unwrap_or(s.activity.seed);
    let (lp, cid) = (s.lastpass.clone(), req.cid);
    let events =
        blocking(move || activity::generate(&lp, cid, from_us, to_us, per_hour, seed)).await?;
    Ok(Json(json!({
        "cid": cid, "from_us": from_us, "to_us": to_us, "per_hour": per_hour, "events": events
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveRequest {
    path: Option<PathBuf>,
}

async fn save(State(s): State<ControlState>, body: Bytes) -> Result<Json<Value>> {
    let req: SaveRequest = parse(&body)?;
    let Some(path) = req.path.or(s.state_file.clone()) else {
        return Err(ControlError::invalid(
            "path",
            "",
            "no state file configured; give a path",
        ));
    };
    let (lp, p) = (s.lastpass.clone(), path.clone());
    blocking(move || lp.save(&p)).await?;
    Ok(Json(json!({"saved": path})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_field() {
        let e = parse::<AdvanceRequest>(&Bytes::from_static(b"{\"seconds\":\"x\"}")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("seconds"));
        let e = parse::<AdvanceRequest>(&Bytes::from_static(b"{}")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("seconds"));
        let e =
            parse::<AdvanceRequest>(&Bytes::from_static(b"{\"seconds\":1,\"x\":2}")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("x"));
        let e = parse::<NewAccount>(&Bytes::from_static(b"{\"cid\":1,\"seed\":{\"users\":-1}}"))
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("seed.users"));
    }
}
