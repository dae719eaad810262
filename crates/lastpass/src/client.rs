//! The HTTP client: one `POST enterpriseapi.php` per command, envelope normalisation, retries,
//! rate limiting, a concurrency cap, and paged reads as streams holding one page at a time.
//!
//! # Retries and writes
//!
//! Every command has a class ([`CommandClass`]):
//!
//! - **reads** retry freely on 429, 5xx, transport errors and malformed bodies;
//! - **idempotent writes** (`updateuser`, `disableuser`, `enableuser`, `batchchangegrp`,
//!   `requiremasterpasswordchange`, `disablemultifactor`) retry the same way;
//! - **verifiable writes** (`batchadd`, `deluser`, `updateemail`) retry at once only when the
//!   request was certainly not applied (429, 503, connection refused); after an *ambiguous*
//!   failure (timeout after sending, connection closed before a full answer, 500/502/504, a
//!   truncated body) the client first reads the state back with `getuserdata` and retries only
//!   what is not done yet;
//! - **unsafe writes** (`reinviteuser`, `resetpassword`, `pushsitestousers`: they send e-mails
//!   or create pushes) retry only when the request was certainly not applied, and otherwise
//!   return [`Error::Transport`] with `ambiguous: true` or [`Error::Upstream`].
//!
//! Backoff is exponential with full jitter, bounded by [`RetryPolicy`]; a `Retry-After` header
//! (seconds or HTTP date) is honoured as a minimum.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use lp_types::{Cid, Email, GroupName, InvalidValue, Secret, UserId};
use parking_lot::Mutex;
use rand::Rng;
use serde_json::{Value, json};
use url::Url;

use crate::decode;
use crate::envelope::{Ctx, Scope, is_auth_error, is_malformed};
use crate::error::Error;
use crate::limiter::TokenBucket;
use crate::model::*;

/// The US host; the default endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://lastpass.com/enterpriseapi.php";

/// A `Retry-After` longer than this is not waited for: the call fails with
/// [`Error::RateLimited`] carrying the value.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Batches up to this size are verified after an ambiguous `batchadd` failure with one
/// `getuserdata` lookup per user; larger ones with a paged sweep of the directory.
pub const VERIFY_LOOKUP_MAX: usize = 25;

/// Account-level credentials: the company id and the provisioning hash.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub cid: Cid,
    pub provhash: Secret,
}

impl Credentials {
    /// Reads `LPBRIDGE_CID` and `LPBRIDGE_PROVHASH`. `Ok(None)` when neither is set; an error
    /// naming the variable when only one is set or a value is invalid.
    pub fn from_env() -> Result<Option<Self>, Error> {
        // A set but non-UTF-8 variable is an error, not "unset" (which would silently fall
        // through to another credential source).
        for name in ["LPBRIDGE_CID", "LPBRIDGE_PROVHASH"] {
            if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
                return Err(Error::Config(format!("{name} is not valid UTF-8")));
            }
        }
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Credentials::from_env`] over any variable source (for tests and config files).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let cid = get("LPBRIDGE_CID").filter(|v| !v.trim().is_empty());
        let hash = get("LPBRIDGE_PROVHASH").filter(|v| !v.is_empty());
        match (cid, hash) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(Error::Config(
                "LPBRIDGE_PROVHASH is not set (LPBRIDGE_CID is): set both or neither".into(),
            )),
            (None, Some(_)) => Err(Error::Config(
                "LPBRIDGE_CID is not set (LPBRIDGE_PROVHASH is): set both or neither".into(),
            )),
            (Some(cid), Some(hash)) => {
                let cid = cid.parse::<Cid>().map_err(|_| {
                    Error::Config(format!(
                        "LPBRIDGE_CID must be a positive number (the LastPass account \
                         number), got {:?}",
                        lp_types::shown(&cid)
                    ))
                })?;
                if hash.trim().is_empty() {
                    return Err(Error::Config("LPBRIDGE_PROVHASH is blank".into()));
                }
                Ok(Some(Credentials {
                    cid,
                    provhash: Secret::new(hash.trim()),
                }))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts including the first.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform delay in `[0, min(max_delay, base_delay · 2^(attempt-1))]`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)));
        let cap = exp.min(self.max_delay);
        let nanos = cap.as_nanos().min(u64::MAX as u128) as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoint: Url,
    pub credentials: Credentials,
    /// Optional `apiuser` label sent with every request.
    pub apiuser: Option<String>,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// At most this many requests in flight.
    pub max_concurrency: usize,
    /// Client-side requests per second across all commands (`None`: unlimited). `updateemail`
    /// is additionally held to the documented 10/s.
    pub rate_limit_per_sec: Option<f64>,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// Defaults: `endpoint` from `LPBRIDGE_ENDPOINT` or [`DEFAULT_ENDPOINT`], 30 s timeout,
    /// 4 in flight, no client-side rate limit, default retries.
    ///
    /// An unparsable `LPBRIDGE_ENDPOINT` is logged and ignored; use [`ClientConfig::try_new`]
    /// to refuse it instead.
    pub fn new(credentials: Credentials) -> Self {
        let endpoint = match endpoint_from_env() {
            Ok(Some(url)) => url,
            Ok(None) => default_endpoint(),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring LPBRIDGE_ENDPOINT");
                default_endpoint()
            }
        };
        Self::with_defaults(credentials, endpoint)
    }

    /// Like [`ClientConfig::new`], but an invalid `LPBRIDGE_ENDPOINT` is an error naming it.
    pub fn try_new(credentials: Credentials) -> Result<Self, Error> {
        let endpoint = endpoint_from_env()?.unwrap_or_else(default_endpoint);
        Ok(Self::with_defaults(credentials, endpoint))
    }

    fn with_defaults(credentials: Credentials, endpoint: Url) -> Self {
        Self {
            endpoint,
            credentials,
            apiuser: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_concurrency: 4,
            rate_limit_per_sec: None,
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_endpoint(self, endpoint: Url) -> Self {
        Self { endpoint, ..self }
    }
}

fn default_endpoint() -> Url {
    Url::parse(DEFAULT_ENDPOINT).expect("the default endpoint is a valid URL")
}

/// Parses an endpoint; a bare origin (`http://127.0.0.1:8080` or `…/`) gets
/// `/enterpriseapi.php` appended.
pub fn parse_endpoint(value: &str) -> Result<Url, InvalidValue> {
    let mut url = Url::parse(value.trim())
        .map_err(|e| InvalidValue::new("endpoint", value, e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InvalidValue::new(
            "endpoint",
            value,
            "must be an http or https URL",
        ));
    }
    if url.path() == "/" || url.path().is_empty() {
        url.set_path("/enterpriseapi.php");
    }
    Ok(url)
}

fn endpoint_from_env() -> Result<Option<Url>, Error> {
    match std::env::var("LPBRIDGE_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => parse_endpoint(&v)
            .map(Some)
            .map_err(|e| Error::Config(format!("LPBRIDGE_ENDPOINT: {e}"))),
        _ => Ok(None),
    }
}

/// Counts of upstream calls, for benchmarks and `--verbose` summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallStats {
    /// HTTP requests sent, including retries.
    pub requests: u64,
    /// Of which retries.
    pub retries: u64,
    /// Requests per command name.
    pub by_cmd: std::collections::BTreeMap<String, u64>,
    /// Requests per command and outcome: `ok` (2xx), `rate_limited` (429), `client_error`
    /// (other 4xx), `server_error` (5xx) or `transport` (no HTTP answer).
    pub by_outcome:
        std::collections::BTreeMap<String, std::collections::BTreeMap<&'static str, u64>>,
}

pub(crate) fn outcome_of(status: Option<u16>) -> &'static str {
    match status {
        None => "transport",
        Some(200..=299) => "ok",
        Some(429) => "rate_limited",
        Some(400..=499) => "client_error",
        Some(_) => "server_error",
    }
}

/// A raw answer for `lpbridge api call`: status, content type and body as received.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: bytes::Bytes,
}

/// How a command may be retried (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandClass {
    Read,
    IdempotentWrite,
    VerifiableWrite,
    UnsafeWrite,
}

impl CommandClass {
    /// The class of a command by name; unknown commands are treated as unsafe writes.
    pub fn of(cmd: &str) -> Self {
        match cmd {
            "getuserdata"
            | "getsfdata"
            | "getdetailedsfdata"
            | "reporting"
            | "expiredmasterpwlist" => CommandClass::Read,
            "updateuser"
            | "disableuser"
            | "enableuser"
            | "batchchangegrp"
            | "requiremasterpasswordchange"
            | "disablemultifactor" => CommandClass::IdempotentWrite,
            "batchadd" | "deluser" | "updateemail" => CommandClass::VerifiableWrite,
            _ => CommandClass::UnsafeWrite,
        }
    }

    fn retries_ambiguous(self) -> bool {
        matches!(self, CommandClass::Read | CommandClass::IdempotentWrite)
    }
}

/// The Enterprise API client. Cheap to clone (shared connection pool, limiter and counters).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Records every exchange when set (see [`Client::tapped`]); per clone, so one caller's
    /// recording never sees another's calls.
    tap: Option<Tap>,
}

/// One upstream exchange as recorded by a [`Tap`]: what StackOne calls a `raw` entry. The
/// request body has the provisioning hash and every `password` replaced by `***`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RawCall {
    pub method: &'static str,
    pub url: String,
    pub body: Value,
    pub status: Option<u16>,
    pub response: Value,
}

/// The exchanges made through a tapped client, in order.
#[derive(Debug, Clone, Default)]
pub struct Tap(Arc<Mutex<Vec<RawCall>>>);

impl Tap {
    /// Everything recorded so far (and clears it).
    pub fn take(&self) -> Vec<RawCall> {
        std::mem::take(&mut *self.0.lock())
    }
}

/// Recorded responses above this size are cut (a 2,000-user page is a few MB).
const TAP_MAX_RESPONSE: usize = 1 << 20;

/// `value` with every `provhash` and `password` member replaced by `***`, at any depth.
fn redact_request(value: &mut Value) {
    match value {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if k.eq_ignore_ascii_case("provhash") || k.eq_ignore_ascii_case("password") {
                    *v = Value::String("***".into());
                } else {
                    redact_request(v);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_request),
        _ => {}
    }
}

struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    credentials: Credentials,
    apiuser: Option<String>,
    retry: RetryPolicy,
    max_concurrency: usize,
    in_flight: tokio::sync::Semaphore,
    global: Option<TokenBucket>,
    update_email: TokenBucket,
    stats: Mutex<CallStats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("cid", &self.inner.credentials.cid)
            .field("provhash", &self.inner.credentials.provhash)
            .finish_non_exhaustive()
    }
}

/// Whether a failed attempt may have been applied upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    /// Certainly not (429, 503, connection refused).
    No,
    /// Perhaps (timeout after sending, connection closed mid-answer, 500/502/504, torn body).
    Maybe,
    /// LastPass answered definitively (a status envelope, an auth error, a 4xx).
    Answered,
}

struct Failure {
    error: Error,
    applied: Applied,
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        f.error
    }
}

enum Attempt {
    Answer {
        status: u16,
        content_type: Option<String>,
        retry_after: Option<Duration>,
        body: Bytes,
    },
    Transport {
        message: String,
        ambiguous: bool,
    },
}

fn protocol_error(cmd: &str, reason: impl Into<String>) -> Error {
    Error::Decode {
        cmd: cmd.to_owned(),
        reason: format!("protocol error: {}", reason.into()),
        excerpt: String::new(),
    }
}

pub(crate) fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<f64>() {
        // `from_secs_f64` panics past ~584 billion years: a header like `1e300` is "too long"
        // (see MAX_RETRY_AFTER), not a crash.
        return (secs >= 0.0).then(|| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Refuses `value` outside `1..=max`, naming `field`.
fn check_between_1_and(field: &'static str, value: u32, max: u32) -> Result<(), Error> {
    if value == 0 || value > max {
        return Err(InvalidValue::new(
            field,
            value.to_string(),
            format!("must be between 1 and {max}"),
        )
        .into());
    }
    Ok(())
}

fn check_user_pagesize(pagesize: u32) -> Result<(), Error> {
    check_between_1_and("pagesize", pagesize, crate::MAX_USER_PAGE_SIZE)
}

fn fmt_dt(dt: &chrono::NaiveDateTime) -> String {
    dt.format(DATETIME_FORMAT).to_string()
}

impl EventQuery {
    /// Refuses a window that ends before it starts and an empty `user`.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.from > self.to {
            return Err(InvalidValue::new(
                "from",
                fmt_dt(&self.from),
                format!("is after `to` ({})", fmt_dt(&self.to)),
            ));
        }
        if let Some(u) = &self.user
            && u.trim().is_empty()
        {
            return Err(InvalidValue::new(
                "user",
                u.clone(),
                "must not be empty (leave it unset for all users)",
            ));
        }
        Ok(())
    }

    fn to_data(&self, next: Option<i64>) -> Value {
        let mut data = serde_json::Map::new();
        data.insert("from".into(), fmt_dt(&self.from).into());
        data.insert("to".into(), fmt_dt(&self.to).into());
        if let Some(s) = self.search.as_deref().filter(|s| !s.is_empty()) {
            data.insert("search".into(), s.into());
        }
        data.insert(
            "user".into(),
            self.user
                .clone()
                .unwrap_or_else(|| "allusers".into())
                .into(),
        );
        if self.admin_only {
            data.insert("admin".into(), "1".into());
        }
        if let Some(n) = next {
            data.insert("next".into(), n.into());
        }
        Value::Object(data)
    }
}

impl PushSite {
    /// Refuses what LastPass would reject or silently misapply.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.url.trim().is_empty() {
            return Err(InvalidValue::new("url", &self.url, "must not be empty"));
        }
        if self.name.trim().is_empty() {
            return Err(InvalidValue::new("name", &self.name, "must not be empty"));
        }
        if self.username_type == UsernameType::Custom
            && self.username.as_deref().is_none_or(|u| u.trim().is_empty())
        {
            return Err(InvalidValue::new(
                "username",
                self.username.clone().unwrap_or_default(),
                "is required when the username type is custom",
            ));
        }
        Ok(())
    }

    fn to_data(&self) -> Value {
        let users = match &self.target {
            PushTarget::All => "all".to_owned(),
            PushTarget::Group(g) => g.as_str().to_owned(),
            PushTarget::User(e) => e.as_str().to_owned(),
        };
        let usernametype = match self.username_type {
            UsernameType::Email => "email",
            UsernameType::Username => "username",
            UsernameType::Custom => "custom",
        };
        json!({
            "users": users,
            "persistent": if self.persistent { "1" } else { "0" },
            "url": self.url,
            "name": self.name,
            "group": self.folder.clone().unwrap_or_default(),
            "usernametype": usernametype,
            "username": self.username.clone().unwrap_or_default(),
            "password": self.password.as_ref().map(|p| p.expose().to_owned()).unwrap_or_default(),
            "notes": self.notes.clone().unwrap_or_default(),
            "fav": if self.favorite { "on" } else { "" },
            "decryptid": self.shared_folder_id.as_ref().map(|f| f.as_str().to_owned()).unwrap_or_else(|| "0".into()),
        })
    }
}

/// Every non-empty `password` string in a request's `data` (batchadd users, pushed sites).
fn collect_passwords<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if k == "password" && !s.is_empty() => out.push(s),
                    _ => collect_passwords(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_passwords(x, out)),
        _ => {}
    }
}

/// Group names as a JSON array of strings.
fn group_names(groups: &[GroupName]) -> Value {
    groups.iter().map(|g| Value::from(g.as_str())).collect()
}

fn new_user_data(u: &NewUser) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("username".into(), u.username.as_str().into());
    if let Some(f) = &u.fullname {
        m.insert("fullname".into(), f.as_str().into());
    }
    if !u.groups.is_empty() {
        m.insert("groups".into(), group_names(&u.groups));
    }
    if !u.attribs.is_empty() {
        m.insert(
            "attribs".into(),
            u.attribs
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
    }
    if let Some(d) = &u.duo_username {
        m.insert("duousername".into(), d.as_str().into());
    }
    if let Some(s) = &u.securid_username {
        m.insert("securidusername".into(), s.as_str().into());
    }
    if let Some(p) = &u.password {
        m.insert("password".into(), p.expose().into());
    }
    if let Some(r) = u.password_reset_required {
        m.insert("password_reset_required".into(), r.into());
    }
    Value::Object(m)
}

impl UserQuery {
    fn to_data(&self, page: Option<(u32, u32)>) -> Value {
        let mut m = serde_json::Map::new();
        if let Some(u) = &self.username {
            m.insert("username".into(), u.as_str().into());
        }
        if let Some(d) = self.disabled {
            m.insert("disabled".into(), (d as u8).into());
        }
        if let Some(a) = self.admin {
            m.insert("admin".into(), (a as u8).into());
        }
        if let Some((size, index)) = page {
            m.insert("pagesize".into(), size.into());
            m.insert("pageindex".into(), index.into());
        }
        Value::Object(m)
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        if !matches!(config.endpoint.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "endpoint must be an http or https URL, got {}",
                config.endpoint
            )));
        }
        if config.max_concurrency == 0 {
            return Err(Error::Config("max_concurrency must be at least 1".into()));
        }
        if let Some(r) = config.rate_limit_per_sec
            && !(r.is_finite() && r > 0.0)
        {
            return Err(Error::Config(format!(
                "rate_limit_per_sec must be a positive number, got {r}"
            )));
        }
        if config.credentials.provhash.is_empty() {
            return Err(Error::Config("the provisioning hash is empty".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("lpbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let mut retry = config.retry;
        retry.max_attempts = retry.max_attempts.max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint: config.endpoint,
                credentials: config.credentials,
                apiuser: config.apiuser.filter(|a| !a.is_empty()),
                retry,
                max_concurrency: config.max_concurrency,
                in_flight: tokio::sync::Semaphore::new(config.max_concurrency),
                global: config.rate_limit_per_sec.map(|r| TokenBucket::new(r, 1.0)),
                update_email: TokenBucket::new(crate::UPDATE_EMAIL_PER_SEC as f64, 1.0),
                stats: Mutex::new(CallStats::default()),
            }),
            tap: None,
        })
    }

    pub fn cid(&self) -> Cid {
        self.inner.credentials.cid
    }

    /// The configured endpoint (the only URL this client ever calls).
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    /// A clone that records every exchange it makes into the returned [`Tap`], with secrets
    /// redacted; the pool, limiter and counters stay shared.
    pub fn tapped(&self) -> (Client, Tap) {
        let tap = Tap::default();
        (
            Client {
                inner: self.inner.clone(),
                tap: Some(tap.clone()),
            },
            tap,
        )
    }

    fn record(&self, cmd: &str, body: &Bytes, status: Option<u16>, response: &[u8]) {
        {
            let mut s = self.inner.stats.lock();
            *s.by_outcome
                .entry(cmd.to_owned())
                .or_default()
                .entry(outcome_of(status))
                .or_default() += 1;
        }
        let Some(tap) = &self.tap else { return };
        let mut request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        redact_request(&mut request);
        let cut = &response[..response.len().min(TAP_MAX_RESPONSE)];
        let text = String::from_utf8_lossy(cut);
        let text = self.ctx("").scrub(&text);
        let response = if cut.len() == response.len() {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        } else {
            Value::String(format!("{text}… ({} bytes in all)", response.len()))
        };
        tap.0.lock().push(RawCall {
            method: "POST",
            url: self.inner.endpoint.to_string(),
            body: request,
            status,
            response,
        });
    }

    pub fn stats(&self) -> CallStats {
        self.inner.stats.lock().clone()
    }

    // ---- transport ------------------------------------------------------------------------

    fn ctx<'a>(&'a self, cmd: &'a str) -> Ctx<'a> {
        Ctx {
            cmd,
            secret: Some(self.inner.credentials.provhash.expose()),
            passwords: &[],
        }
    }

    fn request_body(&self, cmd: &str, data: Option<&Value>) -> Bytes {
        #[derive(serde::Serialize)]
        struct Req<'a> {
            cid: u64,
            provhash: &'a str,
            cmd: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: Option<&'a Value>,
            #[serde(skip_serializing_if = "Option::is_none")]
            apiuser: Option<&'a str>,
        }
        let req = Req {
            cid: self.inner.credentials.cid.0,
            provhash: self.inner.credentials.provhash.expose(),
            cmd,
            data,
            apiuser: self.inner.apiuser.as_deref(),
        };
        serde_json::to_vec(&req)
            .expect("a JSON value always serialises")
            .into()
    }

    fn note_retry(&self) {
        self.inner.stats.lock().retries += 1;
    }

    /// One HTTP exchange: concurrency permit, rate limiters, POST, full body.
    async fn send_once(&self, cmd: &str, body: &Bytes) -> Attempt {
        let _permit = self
            .inner
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        if let Some(global) = &self.inner.global {
            global.acquire().await;
        }
        if cmd == "updateemail" {
            self.inner.update_email.acquire().await;
        }
        {
            let mut s = self.inner.stats.lock();
            s.requests += 1;
            *s.by_cmd.entry(cmd.to_owned()).or_default() += 1;
        }
        let sent = self
            .inner
            .http
            .post(self.inner.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json, text/xml;q=0.9")
            .body(body.clone())
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                let ambiguous = !e.is_connect();
                let message = self.ctx(cmd).scrub(&describe(&e));
                tracing::debug!(cmd, ambiguous, error = %message, "LastPass request failed");
                self.record(cmd, body, None, message.as_bytes());
                return Attempt::Transport { message, ambiguous };
            }
        };
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = parse_retry_after(resp.headers());
        match resp.bytes().await {
            Ok(answer) => {
                self.record(cmd, body, Some(status), &answer);
                let body = answer;
                tracing::debug!(cmd, status, bytes = body.len(), "LastPass answer");
                Attempt::Answer {
                    status,
                    content_type,
                    retry_after,
                    body,
                }
            }
            // A refusal is a refusal even if its body was torn.
            Err(_) if status == 429 || status == 503 => {
                self.record(cmd, body, Some(status), b"");
                Attempt::Answer {
                    status,
                    content_type,
                    retry_after,
                    body: Bytes::new(),
                }
            }
            Err(e) => {
                self.record(cmd, body, Some(status), b"");
                Attempt::Transport {
                    message: self
                        .ctx(cmd)
                        .scrub(&format!("HTTP {status} answer cut short: {}", describe(&e))),
                    ambiguous: true,
                }
            }
        }
    }

    /// Sleeps before retry number `attempt` (1-based); `None` when `Retry-After` is too long.
    async fn pause(&self, attempt: u32, retry_after: Option<Duration>) -> bool {
        let jitter = self.inner.retry.backoff(attempt);
        let delay = match retry_after {
            Some(ra) if ra > MAX_RETRY_AFTER => return false,
            Some(ra) => ra.max(jitter),
            None => jitter,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        true
    }

    /// Sends `cmd` with retries according to `class`, decoding 2xx answers with `decode`.
    async fn execute<T>(
        &self,
        cmd: &str,
        data: Option<&Value>,
        class: CommandClass,
        decode: impl Fn(&Ctx<'_>, &[u8]) -> Result<T, Error>,
    ) -> Result<T, Failure> {
        let body = self.request_body(cmd, data);
        let mut passwords = Vec::new();
        if let Some(d) = data {
            collect_passwords(d, &mut passwords);
        }
        let ctx = Ctx {
            passwords: &passwords,
            ..self.ctx(cmd)
        };
        let max = self.inner.retry.max_attempts;
        let mut attempt = 1;
        loop {
            let (failure, retry_after) = match self.send_once(cmd, &body).await {
                Attempt::Answer {
                    status,
                    retry_after,
                    body,
                    ..
                } => {
                    if (200..300).contains(&status) {
                        match decode(&ctx, &body) {
                            Ok(v) => return Ok(v),
                            Err(e) if is_malformed(&e) => (
                                Failure {
                                    error: e,
                                    applied: Applied::Maybe,
                                },
                                None,
                            ),
                            Err(error) => {
                                return Err(Failure {
                                    error,
                                    applied: Applied::Answered,
                                });
                            }
                        }
                    } else if is_auth_error(&body) {
                        return Err(Failure {
                            error: Error::Auth,
                            applied: Applied::Answered,
                        });
                    } else if status == 429 {
                        let error = Error::RateLimited {
                            cmd: cmd.to_owned(),
                            retry_after,
                        };
                        (
                            Failure {
                                error,
                                applied: Applied::No,
                            },
                            retry_after,
                        )
                    } else if status >= 500 {
                        let applied = if status == 503 {
                            Applied::No
                        } else {
                            Applied::Maybe
                        };
                        let error = Error::Upstream {
                            cmd: cmd.to_owned(),
                            status,
                        };
                        (Failure { error, applied }, retry_after)
                    } else {
                        return Err(Failure {
                            error: Error::Upstream {
                                cmd: cmd.to_owned(),
                                status,
                            },
                            applied: Applied::Answered,
                        });
                    }
                }
                Attempt::Transport { message, ambiguous } => (
                    Failure {
                        error: Error::Transport {
                            cmd: cmd.to_owned(),
                            message,
                            ambiguous,
                        },
                        applied: if ambiguous {
                            Applied::Maybe
                        } else {
                            Applied::No
                        },
                    },
                    None,
                ),
            };
            let may_retry = failure.applied == Applied::No || class.retries_ambiguous();
            if !may_retry || attempt >= max {
                tracing::debug!(cmd, attempt, error = %failure.error, "giving up");
                return Err(failure);
            }
            if !self.pause(attempt, retry_after).await {
                return Err(failure);
            }
            tracing::debug!(cmd, attempt, error = %failure.error, "retrying");
            self.note_retry();
            attempt += 1;
        }
    }

    async fn call<T>(
        &self,
        cmd: &str,
        data: Option<&Value>,
        decode: impl Fn(&Ctx<'_>, &[u8]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.execute(cmd, data, CommandClass::of(cmd), decode)
            .await
            .map_err(Error::from)
    }

    /// A verifiable write: after an ambiguous failure, `verify` reads the state back; `Ok(true)`
    /// means the write is in effect (done), `Ok(false)` that it must be re-sent.
    async fn verified_write<F>(
        &self,
        cmd: &str,
        data: &Value,
        target: &str,
        verify: F,
    ) -> Result<(), Error>
    where
        // Owned, boxed checks: a closure returning a borrowing future trips the compiler's
        // higher-ranked `Send` check in callers such as axum handlers.
        F: Fn() -> futures::future::BoxFuture<'static, Result<bool, Error>>,
    {
        let max = self.inner.retry.max_attempts;
        let mut round = 1;
        loop {
            let res = self
                .execute(cmd, Some(data), CommandClass::VerifiableWrite, |ctx, b| {
                    decode::status_ctx(ctx, b, Scope::Single(Some(target)))
                })
                .await;
            let failure = match res {
                Ok(()) => return Ok(()),
                Err(f) if f.applied != Applied::Maybe => return Err(f.error),
                Err(f) => f,
            };
            match verify().await {
                Ok(true) => {
                    tracing::info!(cmd, "ambiguous failure, but the change is in effect");
                    return Ok(());
                }
                Ok(false) if round < max => {}
                _ => return Err(failure.error),
            }
            if !self.pause(round, None).await {
                return Err(failure.error);
            }
            self.note_retry();
            round += 1;
        }
    }

    // ---- users --------------------------------------------------------------------------

    /// `getuserdata` with `username`: `Ok(None)` for `{"Users":[]}`.
    pub async fn get_user(&self, email: &Email) -> Result<Option<User>, Error> {
        let data = json!({ "username": email.as_str() });
        self.call("getuserdata", Some(&data), |ctx, b| {
            decode::lookup_ctx(ctx, b, email.as_str())
        })
        .await
    }

    /// `getuserdata` with `username`, telling a pending invitee from an unknown name: one call.
    pub async fn lookup_user(&self, email: &Email) -> Result<UserLookup, Error> {
        let data = json!({ "username": email.as_str() });
        self.call("getuserdata", Some(&data), |ctx, b| {
            decode::lookup_any_ctx(ctx, b, email.as_str())
        })
        .await
    }

    /// Whether `email` exists as a user or a pending invitee.
    async fn user_exists(&self, email: &Email) -> Result<bool, Error> {
        let data = json!({ "username": email.as_str() });
        self.call("getuserdata", Some(&data), |ctx, b| {
            decode::exists_ctx(ctx, b, email.as_str())
        })
        .await
    }

    /// One `getuserdata` page (`pagesize`, zero-based `pageindex`).
    pub async fn user_page(
        &self,
        query: &UserQuery,
        pagesize: u32,
        pageindex: u32,
    ) -> Result<UserPage, Error> {
        check_user_pagesize(pagesize)?;
        let data = query.to_data(Some((pagesize, pageindex)));
        self.call("getuserdata", Some(&data), decode::user_page_ctx)
            .await
    }

    /// Every matching user, page by page (one page held at a time). Stops when the users seen
    /// reach `total` or a page comes back empty. Uses ceil(total / pagesize) calls.
    pub fn users(&self, query: UserQuery, pagesize: u32) -> BoxStream<'_, Result<User, Error>> {
        self.user_pages(query, pagesize)
            .map_ok(|page| stream::iter(page.users.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    /// Pages rather than users (for callers that also want `Groups`/`invited` per page).
    pub fn user_pages(
        &self,
        query: UserQuery,
        pagesize: u32,
    ) -> BoxStream<'_, Result<UserPage, Error>> {
        if let Err(e) = check_user_pagesize(pagesize) {
            return stream::once(async move { Err(e) }).boxed();
        }
        struct St {
            index: u32,
            seen: u64,
            done: bool,
            prev_first: Option<UserId>,
        }
        let start = St {
            index: 0,
            seen: 0,
            done: false,
            prev_first: None,
        };
        stream::try_unfold(start, move |mut st| {
            let data = query.to_data(Some((pagesize, st.index)));
            async move {
                if st.done {
                    return Ok(None);
                }
                let (page, total_reported) = self
                    .call("getuserdata", Some(&data), decode::user_page_with_total)
                    .await?;
                if page.users.is_empty() {
                    // An empty page ends the walk; the first page is still reported (total 0).
                    if st.index == 0 {
                        st.done = true;
                        return Ok(Some((page, st)));
                    }
                    return Ok(None);
                }
                let first = page.users.first().map(|u| u.id.clone());
                if st.index > 0 && first == st.prev_first {
                    return Err(protocol_error(
                        "getuserdata",
                        format!(
                            "page {} repeats page {} (pageindex ignored?)",
                            st.index,
                            st.index - 1
                        ),
                    ));
                }
                st.prev_first = first;
                st.seen += page.users.len() as u64;
                st.index += 1;
                // Without `total`, walk on to an empty page (pagesize may have been clamped).
                st.done = total_reported && st.seen >= page.total;
                Ok(Some((page, st)))
            }
        })
        .boxed()
    }

    /// `getuserdata` with no paging: the whole directory in one answer.
    pub async fn all_users(&self) -> Result<UserPage, Error> {
        self.call("getuserdata", None, decode::user_page_ctx).await
    }

    /// Every group with its members (pending invitees included), from one unpaged
    /// `getuserdata` whose `Groups` map is decoded and whose `Users` are skipped: the fewest
    /// calls for a group listing, and empty groups are listed too. `Ok(None)` when LastPass
    /// answers without a `Groups` map (then only a user sweep can tell memberships).
    pub async fn groups(&self) -> Result<Option<BTreeMap<String, Vec<String>>>, Error> {
        self.call("getuserdata", None, decode::groups_ctx).await
    }

    /// The subset of `users` (folded e-mails) that exist as users or invitees.
    async fn existing_among(&self, users: &[&NewUser]) -> Result<HashSet<String>, Error> {
        let mut found = HashSet::new();
        if users.len() <= VERIFY_LOOKUP_MAX {
            // Owned e-mails and a cloned client: a closure over borrowed `&&NewUser` makes the
            // future fail `Send` checks in callers (axum handlers) on today's compilers.
            let emails: Vec<Email> = users.iter().map(|u| u.username.clone()).collect();
            let mut checks = stream::iter(emails.into_iter().map(|email| {
                let client = self.clone();
                async move {
                    let exists = client.user_exists(&email).await?;
                    Ok::<_, Error>((email.folded().to_owned(), exists))
                }
            }))
            .buffer_unordered(self.inner.max_concurrency);
            while let Some(r) = checks.next().await {
                let (name, exists) = r?;
                if exists {
                    found.insert(name);
                }
            }
        } else {
            let wanted: HashSet<&str> = users.iter().map(|u| u.username.folded()).collect();
            let mut pages = self.user_pages(UserQuery::default(), crate::MAX_USER_PAGE_SIZE);
            while let Some(page) = pages.next().await {
                let page = page?;
                for name in page
                    .users
                    .iter()
                    .map(|u| u.username.to_lowercase())
                    .chain(page.invited.iter().map(|i| i.to_lowercase()))
                {
                    if wanted.contains(name.as_str()) {
                        found.insert(name);
                    }
                }
            }
        }
        Ok(found)
    }

    /// `batchadd`. After an ambiguous failure it checks with `getuserdata` which users exist
    /// before retrying only the missing ones, so a retry never duplicates.
    pub async fn batch_add(&self, users: &[NewUser]) -> Result<(), Error> {
        if users.is_empty() {
            return Ok(());
        }
        let mut seen = HashSet::new();
        for u in users {
            if !seen.insert(u.username.folded()) {
                return Err(InvalidValue::new(
                    "username",
                    u.username.as_str(),
                    "appears more than once in the batch",
                )
                .into());
            }
        }
        let mut remaining: Vec<&NewUser> = users.iter().collect();
        let max = self.inner.retry.max_attempts;
        let mut round = 1;
        loop {
            let data = Value::Array(remaining.iter().map(|u| new_user_data(u)).collect());
            let res = self
                .execute(
                    "batchadd",
                    Some(&data),
                    CommandClass::VerifiableWrite,
                    |ctx, b| decode::status_ctx(ctx, b, Scope::Bulk),
                )
                .await;
            let failure = match res {
                Ok(()) => return Ok(()),
                Err(f) if f.applied != Applied::Maybe => return Err(f.error),
                Err(f) => f,
            };
            if round >= max {
                return Err(failure.error);
            }
            let existing = match self.existing_among(&remaining).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "could not verify an ambiguous batchadd");
                    return Err(failure.error);
                }
            };
            remaining.retain(|u| !existing.contains(u.username.folded()));
            tracing::info!(
                applied = existing.len(),
                missing = remaining.len(),
                "batchadd failed ambiguously; verified state"
            );
            if remaining.is_empty() {
                return Ok(());
            }
            if !self.pause(round, None).await {
                return Err(failure.error);
            }
            self.note_retry();
            round += 1;
        }
    }

    pub async fn update_user(&self, update: &UserUpdate) -> Result<(), Error> {
        let mut m = serde_json::Map::new();
        m.insert("username".into(), update.username.as_str().into());
        if let Some(f) = &update.fullname {
            m.insert("fullname".into(), f.as_str().into());
        }
        if let Some(d) = &update.duo_username {
            m.insert("duousername".into(), d.as_str().into());
        }
        if let Some(s) = &update.securid_username {
            m.insert("securidusername".into(), s.as_str().into());
        }
        if m.len() == 1 {
            return Ok(()); // nothing to change
        }
        let data = Value::Object(m);
        let target = update.username.as_str();
        self.call("updateuser", Some(&data), |ctx, b| {
            decode::status_ctx(ctx, b, Scope::Single(Some(target)))
        })
        .await
    }

    pub async fn delete_user(&self, email: &Email, action: DeleteAction) -> Result<(), Error> {
        let data = json!({ "username": email.as_str(), "deleteaction": action.code() });
        self.verified_write("deluser", &data, email.as_str(), || {
            let (client, email) = (self.clone(), email.clone());
            Box::pin(async move {
                let user = client.get_user(&email).await?;
                Ok(match action {
                    DeleteAction::Deactivate => user.is_some_and(|u| u.disabled),
                    DeleteAction::Remove | DeleteAction::Delete | DeleteAction::Uninvite => {
                        user.is_none() && !client.user_exists(&email).await?
                    }
                })
            })
        })
        .await
    }

    async fn toggle(&self, cmd: &str, emails: &[Email]) -> Result<ToggleOutcome, Error> {
        if emails.is_empty() {
            return Ok(ToggleOutcome::default());
        }
        let data = Value::Array(emails.iter().map(|e| Value::from(e.as_str())).collect());
        self.call(cmd, Some(&data), decode::toggle_ctx).await
    }

    pub async fn disable_users(&self, emails: &[Email]) -> Result<ToggleOutcome, Error> {
        self.toggle("disableuser", emails).await
    }

    pub async fn enable_users(&self, emails: &[Email]) -> Result<ToggleOutcome, Error> {
        self.toggle("enableuser", emails).await
    }

    /// `batchchangegrp`. `WARN` becomes [`Error::Partial`] with LastPass's per-user errors.
    pub async fn change_groups(&self, changes: &[GroupChange]) -> Result<(), Error> {
        let items: Vec<Value> = changes
            .iter()
            .filter(|c| !c.add.is_empty() || !c.del.is_empty())
            .map(|c| {
                let mut m = serde_json::Map::new();
                m.insert("username".into(), c.username.as_str().into());
                for (key, groups) in [("add", &c.add), ("del", &c.del)] {
                    if !groups.is_empty() {
                        m.insert(key.into(), group_names(groups));
                    }
                }
                Value::Object(m)
            })
            .collect();
        if items.is_empty() {
            return Ok(());
        }
        let data = Value::Array(items);
        self.call("batchchangegrp", Some(&data), |ctx, b| {
            decode::status_ctx(ctx, b, Scope::Bulk)
        })
        .await
    }

    async fn single_user_cmd(&self, cmd: &str, email: &Email) -> Result<(), Error> {
        let data = json!({ "username": email.as_str() });
        self.call(cmd, Some(&data), |ctx, b| {
            decode::status_ctx(ctx, b, Scope::Single(Some(email.as_str())))
        })
        .await
    }

    pub async fn reinvite_user(&self, email: &Email) -> Result<(), Error> {
        self.single_user_cmd("reinviteuser", email).await
    }

    pub async fn reset_password(&self, email: &Email) -> Result<(), Error> {
        self.single_user_cmd("resetpassword", email).await
    }

    pub async fn require_password_change(&self, email: &Email) -> Result<(), Error> {
        self.single_user_cmd("requiremasterpasswordchange", email)
            .await
    }

    pub async fn disable_multifactor(&self, email: &Email) -> Result<(), Error> {
        self.single_user_cmd("disablemultifactor", email).await
    }

    /// `updateemail`, held to 10/s by the client.
    pub async fn update_email(&self, old: &Email, new: &Email) -> Result<(), Error> {
        if old == new {
            return Err(InvalidValue::new(
                "newemail",
                new.as_str(),
                "is the same as the old e-mail address",
            )
            .into());
        }
        let data = json!({ "oldemail": old.as_str(), "newemail": new.as_str() });
        // The change completes when the user next logs in, so "in effect" can only be seen once
        // the new address is listed; otherwise re-sending sets the same pending change again.
        self.verified_write("updateemail", &data, old.as_str(), || {
            let (client, new) = (self.clone(), new.clone());
            Box::pin(async move { Ok(client.get_user(&new).await?.is_some()) })
        })
        .await
    }

    // ---- shared folders -------------------------------------------------------------------

    /// `getsfdata`.
    pub async fn shared_folders(&self) -> Result<Vec<SharedFolder>, Error> {
        let data = Value::from("all");
        self.call("getsfdata", Some(&data), decode::folders_ctx)
            .await
    }

    /// `getdetailedsfdata` without paging (may be answered with 429 on large accounts).
    pub async fn detailed_shared_folders(&self) -> Result<Vec<SharedFolder>, Error> {
        let data = Value::from("all");
        self.call("getdetailedsfdata", Some(&data), decode::folders_ctx)
            .await
    }

    /// `getdetailedsfdata` page by page (`{"data":"all","pagesize":N,"pageindex":i}`).
    pub fn detailed_shared_folders_paged(
        &self,
        pagesize: u32,
    ) -> BoxStream<'_, Result<SharedFolder, Error>> {
        if pagesize == 0 {
            let e = InvalidValue::new("pagesize", "0", "must be at least 1");
            return stream::once(async move { Err(e.into()) }).boxed();
        }
        struct St {
            index: u32,
            done: bool,
            prev_first: Option<String>,
        }
        let start = St {
            index: 0,
            done: false,
            prev_first: None,
        };
        stream::try_unfold(start, move |mut st| async move {
            if st.done {
                return Ok(None);
            }
            let data = json!({ "data": "all", "pagesize": pagesize, "pageindex": st.index });
            let page = self
                .call("getdetailedsfdata", Some(&data), decode::folders_ctx)
                .await?;
            if page.is_empty() {
                return Ok(None);
            }
            let first = page.first().map(|f| f.id.as_str().to_owned());
            if st.index > 0 && first == st.prev_first {
                return Err(protocol_error(
                    "getdetailedsfdata",
                    format!("page {} repeats the previous page", st.index),
                ));
            }
            st.prev_first = first;
            st.done = page.len() < pagesize as usize;
            st.index += 1;
            Ok(Some((stream::iter(page.into_iter().map(Ok)), st)))
        })
        .try_flatten()
        .boxed()
    }

    // ---- events -------------------------------------------------------------------------

    /// One `reporting` call. `next` continues a previous page.
    pub async fn events_page(
        &self,
        query: &EventQuery,
        next: Option<i64>,
    ) -> Result<EventPage, Error> {
        query.validate()?;
        let data = query.to_data(next);
        self.call("reporting", Some(&data), decode::events_ctx)
            .await
    }

    /// Every event in the window, newest first, walking `next`.
    pub fn events(&self, query: EventQuery) -> BoxStream<'_, Result<Event, Error>> {
        if let Err(e) = query.validate() {
            return stream::once(async move { Err(e.into()) }).boxed();
        }
        struct St {
            next: Option<i64>,
            done: bool,
        }
        stream::try_unfold(
            St {
                next: None,
                done: false,
            },
            move |mut st| {
                // Validated once above, not again per page.
                let data = query.to_data(st.next);
                async move {
                    if st.done {
                        return Ok(None);
                    }
                    let page = self
                        .call("reporting", Some(&data), decode::events_ctx)
                        .await?;
                    match (page.next, st.next) {
                        (None, _) => st.done = true,
                        (Some(n), Some(prev)) if n >= prev => {
                            return Err(protocol_error(
                                "reporting",
                                format!("cursor did not advance ({prev} → {n})"),
                            ));
                        }
                        (Some(n), _) => st.next = Some(n),
                    }
                    Ok(Some((stream::iter(page.events.into_iter().map(Ok)), st)))
                }
            },
        )
        .try_flatten()
        .boxed()
    }

    // ---- other --------------------------------------------------------------------------

    /// One `expiredmasterpwlist` page.
    pub async fn expired_passwords_page(
        &self,
        limit: u32,
        token: Option<&str>,
    ) -> Result<ExpiredPage, Error> {
        check_between_1_and("limit", limit, crate::MAX_EXPIRED_LIMIT)?;
        let mut data = json!({ "limit": limit });
        if let Some(t) = token {
            data["continuation_token"] = t.into();
        }
        self.call("expiredmasterpwlist", Some(&data), decode::expired_ctx)
            .await
    }

    /// Every user with an expired master password, walking the continuation token.
    pub fn expired_passwords(&self, limit: u32) -> BoxStream<'_, Result<ExpiredPassword, Error>> {
        struct St {
            token: Option<String>,
            done: bool,
        }
        stream::try_unfold(
            St {
                token: None,
                done: false,
            },
            move |mut st| async move {
                if st.done {
                    return Ok(None);
                }
                let page = self
                    .expired_passwords_page(limit, st.token.as_deref())
                    .await?;
                match (&page.token, &st.token) {
                    (None, _) => st.done = true,
                    _ if page.items.is_empty() => st.done = true,
                    (Some(t), Some(prev)) if t == prev => {
                        return Err(protocol_error(
                            "expiredmasterpwlist",
                            "continuation token did not advance",
                        ));
                    }
                    (Some(t), _) => st.token = Some(t.clone()),
                }
                Ok(Some((stream::iter(page.items.into_iter().map(Ok)), st)))
            },
        )
        .try_flatten()
        .boxed()
    }

    /// `pushsitestousers`; returns the `psid`.
    pub async fn push_site(&self, site: &PushSite) -> Result<String, Error> {
        site.validate()?;
        let data = site.to_data();
        self.call("pushsitestousers", Some(&data), decode::push_ctx)
            .await
    }

    /// Any command, answered raw (no envelope interpretation, no retries of writes).
    /// `data` is sent as-is; `None` omits the key.
    ///
    /// Read commands are retried on 429, 5xx and transport errors; when the budget is spent
    /// the last HTTP answer is returned as it is.
    pub async fn raw(
        &self,
        cmd: &str,
        data: Option<serde_json::Value>,
    ) -> Result<RawResponse, Error> {
        if cmd.trim().is_empty() {
            return Err(InvalidValue::new("cmd", cmd, "must not be empty").into());
        }
        let retries = CommandClass::of(cmd) == CommandClass::Read;
        let body = self.request_body(cmd, data.as_ref());
        let max = if retries {
            self.inner.retry.max_attempts
        } else {
            1
        };
        let mut attempt = 1;
        loop {
            let outcome = self.send_once(cmd, &body).await;
            let (retryable, retry_after) = match &outcome {
                Attempt::Answer {
                    status,
                    retry_after,
                    ..
                } => (*status == 429 || *status >= 500, *retry_after),
                Attempt::Transport { .. } => (true, None),
            };
            if attempt >= max || !retryable || !self.pause(attempt, retry_after).await {
                return match outcome {
                    Attempt::Answer {
                        status,
                        content_type,
                        body,
                        ..
                    } => Ok(RawResponse {
                        status,
                        content_type,
                        body,
                    }),
                    Attempt::Transport { message, ambiguous } => Err(Error::Transport {
                        cmd: cmd.to_owned(),
                        message,
                        ambiguous,
                    }),
                };
            }
            self.note_retry();
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_lookup() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(Credentials::from_lookup(env(&[])).unwrap().is_none());
        let c = Credentials::from_lookup(env(&[
            ("LPBRIDGE_CID", "8771312"),
            ("LPBRIDGE_PROVHASH", "s3cr3t-hash"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.cid, Cid(8771312));
        assert_eq!(c.provhash.expose(), "s3cr3t-hash");
        assert!(!format!("{c:?}").contains("s3cr3t"));

        let e = Credentials::from_lookup(env(&[("LPBRIDGE_CID", "1")])).unwrap_err();
        assert!(e.to_string().contains("LPBRIDGE_PROVHASH"), "{e}");
        let e = Credentials::from_lookup(env(&[("LPBRIDGE_PROVHASH", "s3cr3t-hash")])).unwrap_err();
        assert!(e.to_string().contains("LPBRIDGE_CID"), "{e}");
        assert!(!e.to_string().contains("s3cr3t"));
        let e = Credentials::from_lookup(env(&[
            ("LPBRIDGE_CID", "abc"),
            ("LPBRIDGE_PROVHASH", "s3cr3t-hash"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("LPBRIDGE_CID"), "{e}");
        assert!(!e.to_string().contains("s3cr3t"));
    }

    #[test]
    fn retry_after_never_panics() {
        let ra = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(reqwest::header::RETRY_AFTER, v.parse().unwrap());
            parse_retry_after(&h)
        };
        assert_eq!(ra("2"), Some(Duration::from_secs(2)));
        assert_eq!(ra("1e300"), Some(Duration::MAX));
        assert_eq!(ra("inf"), Some(Duration::MAX));
        assert_eq!(ra("-1"), None);
        assert_eq!(ra("NaN"), None);
        assert_eq!(ra("soon"), None);
        assert!(ra("Fri, 31 Dec 9999 23:59:59 GMT").is_some());
        assert_eq!(ra("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
    }

    #[test]
    fn command_classes() {
        assert_eq!(CommandClass::of("getuserdata"), CommandClass::Read);
        assert_eq!(CommandClass::of("batchadd"), CommandClass::VerifiableWrite);
        assert_eq!(CommandClass::of("resetpassword"), CommandClass::UnsafeWrite);
        assert_eq!(
            CommandClass::of("batchchangegrp"),
            CommandClass::IdempotentWrite
        );
        assert_eq!(CommandClass::of("somethingnew"), CommandClass::UnsafeWrite);
    }

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for attempt in 1..40 {
            let d = p.backoff(attempt);
            assert!(d <= Duration::from_secs(1));
            if attempt == 1 {
                assert!(d <= Duration::from_millis(100));
            }
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:9000").unwrap().as_str(),
            "http://127.0.0.1:9000/enterpriseapi.php"
        );
        assert_eq!(
            parse_endpoint("https://lastpass.com/enterpriseapi.php")
                .unwrap()
                .as_str(),
            DEFAULT_ENDPOINT
        );
        assert_eq!(parse_endpoint("ftp://x").unwrap_err().field, "endpoint");
    }
}
