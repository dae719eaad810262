//! The Datto Autotask PSA client: [`AutotaskClient`] implements [`PsaDirectory`] over the REST
//! API (reference §2).
//!
//! What it owns:
//! - zone discovery (`v1.0/zoneInformation?user=`, unauthenticated, cached for
//!   [`AutotaskConfig::zone_ttl`]; re-fetched once on a 401 in case the tenant moved);
//! - header auth (`ApiIntegrationCode`, `UserName`, `Secret`), sent only to the zone's origin —
//!   a `nextPageUrl` elsewhere is refused rather than followed with credentials;
//! - streaming queries with `MaxRecords` 500 that follow `pageDetails.nextPageUrl` with a POST of
//!   the same body (a GET there answers 405 and would silently stop at 500 rows), filters pushed
//!   upstream, `IncludeFields` trimmed to what the models need;
//! - the thread limit (a semaphore of 3 per endpoint), retries with backoff honouring
//!   `Retry-After` for 429 and thread/threshold errors, bounded retries of 5xx;
//! - classification into the six [`ErrorKind`]s ([`classify`]).
//!
//! Secrets are [`Secret`]s: never in `Debug`, errors or logs.

mod classify;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use lp_types::{Email, Secret};
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};
use url::Url;

use crate::{
    AttributeValue, Attributes, Company, CompanyFilter, Contact, Error, ErrorKind, PsaDirectory,
    PsaKind, Result,
};
pub use classify::{RetryKind, Verdict, classify};

/// Datto's discovery host [AT1][AT2].
pub const DEFAULT_DISCOVERY_URL: &str = "https://webservices2.autotask.net/atservicesrest";
/// The largest page Autotask serves (`MaxRecords` 1..500).
pub const MAX_PAGE_SIZE: u32 = 500;
/// Concurrent requests Autotask allows per (integration code, endpoint) [AT6].
pub const THREADS_PER_ENDPOINT: usize = 3;
/// Longest `in` list sent (the 500 OR-condition cap [AT6]).
pub const MAX_IN_LIST: usize = 500;
/// Runaway guard: pages followed in one listing (go-autotask caps at 1000 [AT3]; ours is far
/// above any real tenant: 25 million rows).
const MAX_PAGES: usize = 50_000;

const COMPANY_FIELDS: &[&str] = &["id", "companyName", "companyType", "isActive"];
const CONTACT_FIELDS: &[&str] = &[
    "id",
    "companyID",
    "firstName",
    "lastName",
    "emailAddress",
    "emailAddress2",
    "emailAddress3",
    "isActive",
];

/// How requests are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per request, the first included (default 5).
    pub attempts: u32,
    /// Backoff before the n-th retry: `base_delay * 2^(n-1)` (default 500 ms).
    pub base_delay: Duration,
    /// No single wait is longer; a `Retry-After` above it ends the retries at once (default 60 s).
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_wait)
    }
}

/// Credentials and tuning of an [`AutotaskClient`]. `Debug` hides the secret and the
/// integration code.
#[derive(Debug, Clone)]
pub struct AutotaskConfig {
    /// The API user ("API User (system)"), e-mail-like.
    pub username: String,
    pub secret: Secret,
    /// The API tracking identifier.
    pub integration_code: Secret,
    /// Where `zoneInformation` lives (default [`DEFAULT_DISCOVERY_URL`]).
    pub discovery_url: String,
    pub retry: RetryPolicy,
    /// Concurrent requests per endpoint (default 3, Autotask's thread limit).
    pub threads_per_endpoint: usize,
    /// `MaxRecords` (default and maximum 500).
    pub page_size: u32,
    /// Per-request timeout (default 60 s).
    pub timeout: Duration,
    /// How long a discovered zone is trusted (default 12 h, like django-autotask).
    pub zone_ttl: Duration,
    /// List the local organisation (company id 0, the MSP itself) among the companies
    /// (default false).
    pub include_local_company: bool,
}

impl AutotaskConfig {
    pub fn new(
        username: impl Into<String>,
        secret: impl Into<Secret>,
        integration_code: impl Into<Secret>,
    ) -> Self {
        Self {
            username: username.into(),
            secret: secret.into(),
            integration_code: integration_code.into(),
            discovery_url: DEFAULT_DISCOVERY_URL.into(),
            retry: RetryPolicy::default(),
            threads_per_endpoint: THREADS_PER_ENDPOINT,
            page_size: MAX_PAGE_SIZE,
            timeout: Duration::from_secs(60),
            zone_ttl: Duration::from_secs(12 * 3600),
            include_local_company: false,
        }
    }

    pub fn with_discovery_url(mut self, url: impl Into<String>) -> Self {
        self.discovery_url = url.into();
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Refuses empty credential fields, naming the first one.
    pub fn validate(&self) -> Result<()> {
        if self.username.trim().is_empty() {
            return Err(Error::credentials_missing("username"));
        }
        if self.secret.expose().is_empty() {
            return Err(Error::credentials_missing("secret"));
        }
        if self.integration_code.expose().trim().is_empty() {
            return Err(Error::credentials_missing("integration_code"));
        }
        Ok(())
    }
}

/// The endpoints Autotask counts threads on separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Endpoint {
    Zone,
    Companies,
    Contacts,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Zone => "ZoneInformation",
            Endpoint::Companies => "Companies",
            Endpoint::Contacts => "Contacts",
        }
    }
}

struct Zone {
    /// `…/ATServicesRest/V1.0`, without a trailing slash.
    api: Url,
    fetched: Instant,
}

/// The `companyType` picklist: `(value, label, active)` in `sortOrder`.
type Picklist = Arc<Vec<(String, String, bool)>>;

struct Inner {
    config: AutotaskConfig,
    discovery: Url,
    http: reqwest::Client,
    /// `ApiIntegrationCode`, `UserName`, `Secret`, built once and marked sensitive.
    auth: [(&'static str, HeaderValue); 3],
    zone: Mutex<Option<Zone>>,
    /// `companyType` picklist: value → label (every entry, active or not).
    company_types: Mutex<Option<Picklist>>,
    threads: HashMap<Endpoint, Semaphore>,
    calls: AtomicU64,
}

/// An Autotask directory client (cheap to clone; clones share the zone cache, the thread
/// semaphores and the call counter).
#[derive(Clone)]
pub struct AutotaskClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for AutotaskClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutotaskClient")
            .field("username", &self.inner.config.username)
            .field("discovery_url", &self.inner.discovery.as_str())
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

/// `isActive` is a bool on companies and an int (1/0) on contacts [AT1][AT3]: accept both.
/// A visitor rather than an untagged enum, which would build an error per row.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean or 0/1")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<bool, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<bool, E> {
            match v {
                0 => Ok(false),
                1 => Ok(true),
                n => Err(E::custom(format!("isActive is {n}, expected 0 or 1"))),
            }
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<bool, E> {
            self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
        }
    }
    d.deserialize_any(V)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AtCompany {
    id: i64,
    company_name: String,
    #[serde(default)]
    company_type: Option<i64>,
    #[serde(deserialize_with = "flag")]
    is_active: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AtContact {
    id: i64,
    #[serde(rename = "companyID")]
    company_id: i64,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    email_address: Option<String>,
    #[serde(default)]
    email_address2: Option<String>,
    #[serde(default)]
    email_address3: Option<String>,
    #[serde(deserialize_with = "flag")]
    is_active: bool,
}

#[derive(Debug, Deserialize)]
struct Page<T> {
    items: Vec<T>,
    #[serde(rename = "pageDetails")]
    page_details: PageDetails,
}

#[derive(Debug, Deserialize)]
struct PageDetails {
    #[serde(rename = "nextPageUrl", default)]
    next_page_url: Option<String>,
}

trait HasId {
    fn id(&self) -> i64;
}

impl HasId for AtCompany {
    fn id(&self) -> i64 {
        self.id
    }
}

impl HasId for AtContact {
    fn id(&self) -> i64 {
        self.id
    }
}

fn invalid(what: &str, detail: impl fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidResponse, format!("{what}: {detail}"))
}

fn active_status(active: bool) -> AttributeValue {
    if active {
        AttributeValue {
            id: "active".into(),
            name: "Active".into(),
        }
    } else {
        AttributeValue {
            id: "inactive".into(),
            name: "Inactive".into(),
        }
    }
}

fn parse_id(what: &str, id: &str) -> Result<i64> {
    id.trim().parse().map_err(|_| {
        Error::new(
            ErrorKind::Unknown,
            format!("{what} {id:?} is not an Autotask id (an integer)"),
        )
    })
}

/// A contact's e-mails: valid ones in field order, deduplicated case-insensitively; values that
/// are not addresses kept apart.
fn contact_emails(raw: [Option<String>; 3]) -> (Vec<Email>, Vec<String>) {
    let mut emails: Vec<Email> = Vec::new();
    let mut bad = Vec::new();
    for v in raw.into_iter().flatten() {
        let t = v.trim();
        if t.is_empty() {
            continue;
        }
        match Email::parse(t) {
            Ok(e) => {
                if !emails.iter().any(|x| x.folded() == e.folded()) {
                    emails.push(e);
                }
            }
            Err(_) => bad.push(v),
        }
    }
    (emails, bad)
}

impl AtContact {
    fn into_contact(self) -> Contact {
        let (emails, invalid_emails) =
            contact_emails([self.email_address, self.email_address2, self.email_address3]);
        Contact {
            id: self.id.to_string(),
            company_id: self.company_id.to_string(),
            first_name: self.first_name.unwrap_or_default(),
            last_name: self.last_name.unwrap_or_default(),
            emails,
            invalid_emails,
            active: self.is_active,
        }
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    h.get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// One request's shape.
struct Call<'a> {
    endpoint: Endpoint,
    what: String,
    method: reqwest::Method,
    url: Url,
    body: Option<&'a Value>,
    authed: bool,
    allow_404: bool,
}

enum Reply {
    /// A 2xx JSON body, parsed by the caller into its own type.
    Json(bytes::Bytes),
    NotFound,
}

enum Step {
    Start,
    Next(Url),
    Done,
}

impl AutotaskClient {
    /// Checks the credentials (empty fields → [`ErrorKind::CredentialsMissing`]) and the
    /// discovery URL; makes no call.
    pub fn new(config: AutotaskConfig) -> Result<Self> {
        config.validate()?;
        let raw = if config.discovery_url.trim().is_empty() {
            DEFAULT_DISCOVERY_URL
        } else {
            config.discovery_url.trim()
        };
        let discovery = Url::parse(raw.trim_end_matches('/')).map_err(|e| {
            Error::new(
                ErrorKind::Unknown,
                format!("the discovery URL {raw:?} is not a URL: {e}"),
            )
        })?;
        // Built once, marked sensitive (never printed by the HTTP stack); a value no header can
        // carry is refused here rather than failing every request as a "network error".
        let header = |name: &'static str, field: &str, value: &str| {
            let mut v = HeaderValue::from_str(value).map_err(|_| {
                Error::new(
                    ErrorKind::Authentication,
                    format!("the {field} contains characters a header cannot carry"),
                )
            })?;
            v.set_sensitive(true);
            Ok::<_, Error>((name, v))
        };
        let auth = [
            header(
                "ApiIntegrationCode",
                "integration_code",
                config.integration_code.expose(),
            )?,
            header("UserName", "username", &config.username)?,
            header("Secret", "secret", config.secret.expose())?,
        ];
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("lpbridge-psa/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::new(ErrorKind::Unknown, format!("HTTP client: {e}")))?;
        let threads = [Endpoint::Zone, Endpoint::Companies, Endpoint::Contacts]
            .into_iter()
            .map(|e| (e, Semaphore::new(config.threads_per_endpoint.max(1))))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                discovery,
                http,
                auth,
                zone: Mutex::new(None),
                company_types: Mutex::new(None),
                threads,
                calls: AtomicU64::new(0),
            }),
        })
    }

    pub fn config(&self) -> &AutotaskConfig {
        &self.inner.config
    }

    fn scrub(&self, mut e: Error) -> Error {
        for s in [
            self.inner.config.secret.expose(),
            self.inner.config.integration_code.expose(),
        ] {
            if s.len() >= 4 && e.detail.contains(s) {
                e.detail = e.detail.replace(s, "***");
            }
        }
        e
    }

    /// The zone's API base (`…/V1.0`), discovered once and cached.
    pub async fn zone_url(&self) -> Result<Url> {
        let mut z = self.inner.zone.lock().await;
        if let Some(zone) = z.as_ref()
            && zone.fetched.elapsed() < self.inner.config.zone_ttl
        {
            return Ok(zone.api.clone());
        }
        let api = self.discover().await?;
        *z = Some(Zone {
            api: api.clone(),
            fetched: Instant::now(),
        });
        Ok(api)
    }

    async fn discover(&self) -> Result<Url> {
        let mut url = self.inner.discovery.clone();
        url.path_segments_mut()
            .map_err(|_| Error::new(ErrorKind::Unknown, "the discovery URL cannot have a path"))?
            .extend(["v1.0", "zoneInformation"]);
        url.query_pairs_mut()
            .append_pair("user", &self.inner.config.username);
        // `execute_once`: a zone lookup has no 401 to recover from (it is unauthenticated).
        let reply = self
            .execute_once(&Call {
                endpoint: Endpoint::Zone,
                what: "zoneInformation".into(),
                method: reqwest::Method::GET,
                url,
                body: None,
                authed: false,
                allow_404: false,
            })
            .await?;
        let Reply::Json(b) = reply else {
            return Err(invalid("zoneInformation", "no zone"));
        };
        let v: Value = serde_json::from_slice(&b)
            .map_err(|e| invalid("zoneInformation", format!("unexpected shape: {e}")))?;
        let raw = v
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("zoneInformation", "the answer has no url"))?;
        let base = Url::parse(raw.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| {
                invalid(
                    "zoneInformation",
                    format!("the zone url {raw:?} is not an http(s) URL"),
                )
            })?;
        let mut api = base;
        api.path_segments_mut()
            .map_err(|_| invalid("zoneInformation", "bad zone url"))?
            .pop_if_empty()
            .push("V1.0");
        tracing::debug!(zone = %api, "autotask zone discovered");
        Ok(api)
    }

    async fn api_url(&self, path: &[&str]) -> Result<Url> {
        let mut url = self.zone_url().await?;
        url.path_segments_mut()
            .map_err(|_| invalid("zone", "bad zone url"))?
            .extend(path);
        Ok(url)
    }

    /// Sends one call with the thread limit, retries and classification. On a 401 the zone is
    /// looked up again; if it moved, the call is retried once on the new zone.
    async fn execute(&self, call: Call<'_>) -> Result<Reply> {
        match self.execute_once(&call).await {
            Err(e)
                if e.kind == ErrorKind::Authentication && e.status == Some(401) && call.authed =>
            {
                let old = self.inner.zone.lock().await.take();
                let new = self.zone_url().await?;
                match old {
                    Some(old) if old.api != new => {
                        let mut moved = call;
                        if let Some(rest) = moved.url.as_str().strip_prefix(old.api.as_str())
                            && let Ok(u) = Url::parse(&format!("{}{rest}", new.as_str()))
                        {
                            moved.url = u;
                        }
                        self.execute_once(&moved).await
                    }
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    async fn execute_once(&self, call: &Call<'_>) -> Result<Reply> {
        let cfg = &self.inner.config;
        let policy = &cfg.retry;
        let attempts = policy.attempts.max(1);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let verdict = {
                // Held for the request only, not during backoff.
                let _permit = match self.inner.threads.get(&call.endpoint) {
                    Some(s) => Some(s.acquire().await.map_err(|_| {
                        Error::new(ErrorKind::Unknown, "the client is shutting down")
                    })?),
                    None => None,
                };
                self.send_once(call).await
            };
            let verdict = match verdict {
                Ok(v) => v,
                Err(e) => {
                    // Network failures: retried like 5xx, then reported as unknown.
                    if attempt < attempts {
                        tokio::time::sleep(policy.backoff(attempt)).await;
                        continue;
                    }
                    return Err(self.scrub(e));
                }
            };
            match verdict {
                Verdict::Ok(b) => return Ok(Reply::Json(b)),
                Verdict::NotFound => return Ok(Reply::NotFound),
                Verdict::Fail(e) => return Err(self.scrub(e)),
                Verdict::Retry { kind, after, error } => {
                    if attempt >= attempts {
                        let mut e = error;
                        e.detail = format!("{} (gave up after {attempt} attempts)", e.detail);
                        return Err(self.scrub(e));
                    }
                    let wait = match (kind, after) {
                        (RetryKind::RateLimit, Some(a)) if a > policy.max_wait => {
                            let mut e = error;
                            e.detail = format!(
                                "{} (Retry-After {}s is over the {}s maximum wait)",
                                e.detail,
                                a.as_secs(),
                                policy.max_wait.as_secs()
                            );
                            return Err(self.scrub(e));
                        }
                        (RetryKind::RateLimit, Some(a)) => a,
                        _ => policy.backoff(attempt),
                    };
                    tracing::debug!(call = %call.what, ?kind, attempt, wait_ms = wait.as_millis() as u64, "autotask retry");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn send_once(&self, call: &Call<'_>) -> Result<Verdict> {
        let mut rb = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header("Accept", "application/json");
        if call.authed {
            for (name, value) in &self.inner.auth {
                rb = rb.header(*name, value.clone());
            }
        }
        if let Some(b) = call.body {
            rb = rb.json(b);
        }
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        let net = |e: reqwest::Error| {
            // Without the URL: it may carry a cursor, never a secret, but keep errors short.
            Error::new(
                ErrorKind::Unknown,
                format!("{}: network error: {}", call.what, e.without_url()),
            )
        };
        let resp = rb.send().await.map_err(net)?;
        let status = resp.status().as_u16();
        let after = retry_after(resp.headers());
        let body = resp.bytes().await.map_err(net)?;
        tracing::trace!(call = %call.what, status, bytes = body.len(), "autotask answer");
        Ok(classify(&call.what, status, after, body, call.allow_404))
    }

    /// A query body: `filter`, `MaxRecords`, `IncludeFields`.
    fn query_body(&self, filter: Vec<Value>, fields: &[&str]) -> Value {
        json!({
            "filter": filter,
            "MaxRecords": self.inner.config.page_size.clamp(1, MAX_PAGE_SIZE),
            "IncludeFields": fields,
        })
    }

    /// Every row of a POSTed query, page by page: each `nextPageUrl` is followed with a POST of
    /// the same body.
    /// The contacts matching one filter condition, paged.
    fn contact_stream(&self, condition: Value) -> BoxStream<'_, Result<Contact>> {
        let body = self.query_body(vec![condition], CONTACT_FIELDS);
        self.query_stream::<AtContact>(Endpoint::Contacts, body)
            .map(|r| r.map(AtContact::into_contact))
            .boxed()
    }

    fn query_stream<'a, T>(&'a self, endpoint: Endpoint, body: Value) -> BoxStream<'a, Result<T>>
    where
        T: DeserializeOwned + HasId + Send + 'a,
    {
        let body = Arc::new(body);
        let what = format!("{}/query", endpoint.path());
        let pages = stream::unfold(
            (Step::Start, 0usize, None::<i64>),
            move |(step, n, last_id)| {
                let body = body.clone();
                let what = what.clone();
                async move {
                    let url = match step {
                        Step::Done => return None,
                        Step::Start => match self.api_url(&[endpoint.path(), "query"]).await {
                            Ok(u) => u,
                            Err(e) => return Some((Err(e), (Step::Done, n, last_id))),
                        },
                        Step::Next(u) => u,
                    };
                    match self
                        .fetch_page::<T>(endpoint, &what, url, &body, n, last_id)
                        .await
                    {
                        Ok((items, next)) => {
                            let last = items.last().map(HasId::id).or(last_id);
                            let step = next.map_or(Step::Done, Step::Next);
                            Some((Ok(items), (step, n + 1, last)))
                        }
                        Err(e) => Some((Err(e), (Step::Done, n, last_id))),
                    }
                }
            },
        );
        pages
            .flat_map(|r| {
                stream::iter(match r {
                    Ok(items) => items.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                })
            })
            .boxed()
    }

    async fn fetch_page<T: DeserializeOwned + HasId>(
        &self,
        endpoint: Endpoint,
        what: &str,
        url: Url,
        body: &Value,
        n: usize,
        last_id: Option<i64>,
    ) -> Result<(Vec<T>, Option<Url>)> {
        if n >= MAX_PAGES {
            return Err(invalid(
                what,
                format!("more than {MAX_PAGES} pages; giving up"),
            ));
        }
        let call_what = if n == 0 {
            what.to_string()
        } else {
            format!("{what}/next (page {})", n + 1)
        };
        let reply = self
            .execute(Call {
                endpoint,
                what: call_what.clone(),
                method: reqwest::Method::POST,
                url: url.clone(),
                body: Some(body),
                authed: true,
                allow_404: false,
            })
            .await?;
        let Reply::Json(b) = reply else {
            return Err(invalid(&call_what, "no body"));
        };
        let page: Page<T> = serde_json::from_slice(&b)
            .map_err(|e| invalid(&call_what, format!("unexpected page shape: {e}")))?;
        if let (Some(prev), Some(first)) = (last_id, page.items.first())
            && first.id() <= prev
        {
            return Err(invalid(
                &call_what,
                format!("paging went backwards (id {} after {prev})", first.id()),
            ));
        }
        let next = match page.page_details.next_page_url {
            None => None,
            Some(s) if s.trim().is_empty() => None,
            Some(s) => {
                let u = Url::parse(&s)
                    .map_err(|e| invalid(&call_what, format!("nextPageUrl is not a URL: {e}")))?;
                let zone = self.zone_url().await?;
                if !same_origin(&u, &zone) {
                    return Err(invalid(
                        &call_what,
                        "nextPageUrl points outside the zone host; not sending credentials there",
                    ));
                }
                if u == url {
                    return Err(invalid(&call_what, "nextPageUrl repeats the current page"));
                }
                if page.items.is_empty() {
                    return Err(invalid(&call_what, "an empty page with a nextPageUrl"));
                }
                Some(u)
            }
        };
        Ok((page.items, next))
    }

    /// The `companyType` picklist, fetched once: `(value, label, active)`.
    async fn company_types(&self) -> Result<Picklist> {
        let mut g = self.inner.company_types.lock().await;
        if let Some(t) = g.as_ref() {
            return Ok(t.clone());
        }
        let url = self
            .api_url(&["Companies", "entityInformation", "fields"])
            .await?;
        let what = "Companies/entityInformation/fields";
        let Reply::Json(v) = self
            .execute(Call {
                endpoint: Endpoint::Companies,
                what: what.into(),
                method: reqwest::Method::GET,
                url,
                body: None,
                authed: true,
                allow_404: false,
            })
            .await?
        else {
            return Err(invalid(what, "no body"));
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Pick {
            value: Value,
            label: String,
            #[serde(default)]
            is_active: Option<bool>,
            #[serde(default)]
            sort_order: Option<i64>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Field {
            name: String,
            #[serde(default)]
            picklist_values: Option<Vec<Pick>>,
        }
        #[derive(Deserialize)]
        struct Fields {
            fields: Vec<Field>,
        }
        let fields: Fields = serde_json::from_slice(&v)
            .map_err(|e| invalid(what, format!("unexpected shape: {e}")))?;
        let ct = fields
            .fields
            .into_iter()
            .find(|f| f.name.eq_ignore_ascii_case("companyType"))
            .ok_or_else(|| invalid(what, "no companyType field"))?;
        let mut picks = ct
            .picklist_values
            .ok_or_else(|| invalid(what, "companyType has no picklist"))?;
        picks.sort_by_key(|p| p.sort_order.unwrap_or(i64::MAX));
        let list: Vec<(String, String, bool)> = picks
            .into_iter()
            .map(|p| {
                // `value` is a string on the wire [AT4]; accept a number too.
                let value = match p.value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (value, p.label, p.is_active.unwrap_or(true))
            })
            .collect();
        let list = Arc::new(list);
        *g = Some(list.clone());
        Ok(list)
    }

    fn company_filter(&self, filter: &CompanyFilter) -> Result<Vec<Value>> {
        let mut f = Vec::new();
        if !self.inner.config.include_local_company {
            // The local organisation (id 0) is the MSP itself, not a customer.
            f.push(json!({"op": "gt", "field": "id", "value": 0}));
        } else {
            f.push(json!({"op": "gte", "field": "id", "value": 0}));
        }
        if !filter.types.is_empty() {
            let types = filter
                .types
                .iter()
                .map(|t| parse_id("company type", t))
                .collect::<Result<Vec<_>>>()?;
            f.push(json!({"op": "in", "field": "companyType", "value": types}));
        }
        let mut want_active = false;
        let mut want_inactive = false;
        for s in &filter.statuses {
            match s.trim().to_ascii_lowercase().as_str() {
                "active" => want_active = true,
                "inactive" => want_inactive = true,
                other => {
                    return Err(Error::new(
                        ErrorKind::Unknown,
                        format!("unknown Autotask status {other:?} (use active or inactive)"),
                    ));
                }
            }
        }
        if want_active != want_inactive {
            f.push(json!({"op": "eq", "field": "isActive", "value": want_active}));
        }
        Ok(f)
    }

    fn to_company(types: &[(String, String, bool)], c: AtCompany) -> Company {
        let company_type = c.company_type.map(|t| {
            let id = t.to_string();
            let name = types
                .iter()
                .find(|(v, _, _)| *v == id)
                .map_or_else(|| id.clone(), |(_, l, _)| l.clone());
            AttributeValue { id, name }
        });
        Company {
            id: c.id.to_string(),
            name: c.company_name,
            company_type,
            status: Some(active_status(c.is_active)),
            active: c.is_active,
        }
    }

    /// How many companies match `filter` (`query/count`: one call).
    pub async fn count_companies(&self, filter: &CompanyFilter) -> Result<u64> {
        let f = self.company_filter(filter)?;
        self.count(Endpoint::Companies, f).await
    }

    async fn count(&self, endpoint: Endpoint, filter: Vec<Value>) -> Result<u64> {
        let url = self.api_url(&[endpoint.path(), "query", "count"]).await?;
        let what = format!("{}/query/count", endpoint.path());
        let body = json!({ "filter": filter });
        let Reply::Json(v) = self
            .execute(Call {
                endpoint,
                what: what.clone(),
                method: reqwest::Method::POST,
                url,
                body: Some(&body),
                authed: true,
                allow_404: false,
            })
            .await?
        else {
            return Err(invalid(&what, "no body"));
        };
        let v: Value = serde_json::from_slice(&v)
            .map_err(|e| invalid(&what, format!("unexpected shape: {e}")))?;
        v.get("queryCount")
            .and_then(Value::as_u64)
            .ok_or_else(|| invalid(&what, "no queryCount in the answer"))
    }

    /// Contacts of many companies with `companyID in [...]` queries of up to 500 ids each: the
    /// call count is about `contacts / 500 + companies / 500` instead of one query per company.
    pub fn contacts_of_companies<'a>(
        &'a self,
        company_ids: &'a [String],
    ) -> BoxStream<'a, Result<Contact>> {
        let ids: Result<Vec<i64>> = company_ids
            .iter()
            .map(|i| parse_id("company id", i))
            .collect();
        let ids = match ids {
            Ok(ids) => ids,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        let chunks: Vec<Vec<i64>> = ids.chunks(MAX_IN_LIST).map(<[i64]>::to_vec).collect();
        stream::iter(chunks)
            .flat_map(move |chunk| {
                self.contact_stream(json!({"op": "in", "field": "companyID", "value": chunk}))
            })
            .boxed()
    }

    /// Every contact of the tenant in one paged pass (`id gte 0`): exactly
    /// `ceil(contacts / 500)` calls.
    pub fn all_contacts(&self) -> BoxStream<'_, Result<Contact>> {
        self.contact_stream(json!({"op": "gte", "field": "id", "value": 0}))
    }
}

impl PsaDirectory for AutotaskClient {
    fn kind(&self) -> PsaKind {
        PsaKind::Autotask
    }

    /// One `Companies/query/count` for id 0: authenticates, and proves the companies
    /// permission.
    fn check(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.count(
                Endpoint::Companies,
                vec![json!({"op": "eq", "field": "id", "value": 0})],
            )
            .await
            .map(|_| ())
        })
    }

    fn attributes(&self) -> BoxFuture<'_, Result<Attributes>> {
        Box::pin(async move {
            let types = self.company_types().await?;
            Ok(Attributes {
                types: types
                    .iter()
                    .filter(|(_, _, active)| *active)
                    .map(|(v, l, _)| AttributeValue {
                        id: v.clone(),
                        name: l.clone(),
                    })
                    .collect(),
                statuses: vec![active_status(true), active_status(false)],
            })
        })
    }

    fn companies<'a>(&'a self, filter: &'a CompanyFilter) -> BoxStream<'a, Result<Company>> {
        let f = match self.company_filter(filter) {
            Ok(f) => f,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        let body = self.query_body(f, COMPANY_FIELDS);
        stream::once(self.company_types())
            .flat_map(move |types| match types {
                Err(e) => stream::once(async move { Err(e) }).boxed(),
                Ok(types) => self
                    .query_stream::<AtCompany>(Endpoint::Companies, body.clone())
                    .map(move |r| r.map(|c| Self::to_company(&types, c)))
                    .boxed(),
            })
            .boxed()
    }

    fn company<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Company>>> {
        Box::pin(async move {
            let Ok(n) = id.trim().parse::<i64>() else {
                return Ok(None);
            };
            let types = self.company_types().await?;
            let url = self.api_url(&["Companies", &n.to_string()]).await?;
            let what = "Companies/{id}";
            match self
                .execute(Call {
                    endpoint: Endpoint::Companies,
                    what: what.into(),
                    method: reqwest::Method::GET,
                    url,
                    body: None,
                    authed: true,
                    allow_404: true,
                })
                .await?
            {
                Reply::NotFound => Ok(None),
                Reply::Json(b) => {
                    let v: Value = serde_json::from_slice(&b)
                        .map_err(|e| invalid(what, format!("unexpected shape: {e}")))?;
                    let item = v
                        .get("item")
                        .ok_or_else(|| invalid(what, "the answer has no item"))?;
                    if item.is_null() {
                        return Ok(None);
                    }
                    let c: AtCompany = serde_json::from_value(item.clone())
                        .map_err(|e| invalid(what, format!("unexpected company shape: {e}")))?;
                    Ok(Some(Self::to_company(&types, c)))
                }
            }
        })
    }

    fn contacts<'a>(&'a self, company_id: &'a str) -> BoxStream<'a, Result<Contact>> {
        let id = match parse_id("company id", company_id) {
            Ok(id) => id,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        self.contact_stream(json!({"op": "eq", "field": "companyID", "value": id}))
    }

    fn contacts_of_many<'a>(&'a self, company_ids: &'a [String]) -> BoxStream<'a, Result<Contact>> {
        self.contacts_of_companies(company_ids)
    }

    fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_credentials_are_named() {
        let e = AutotaskClient::new(AutotaskConfig::new("", "s", "c")).err();
        assert_eq!(
            e.map(|e| (e.kind, e.detail.contains("username"))),
            Some((ErrorKind::CredentialsMissing, true))
        );
        let e = AutotaskClient::new(AutotaskConfig::new("u", "", "c")).err();
        assert!(e.is_some_and(|e| e.detail.contains("secret")));
        let e = AutotaskClient::new(AutotaskConfig::new("u", "s", " ")).err();
        assert!(e.is_some_and(|e| e.detail.contains("integration_code")));
    }

    #[test]
    fn debug_hides_secrets() {
        let c = AutotaskClient::new(AutotaskConfig::new(
            "u@x.example",
            "hunter2secret",
            "CODE123456",
        ))
        .expect("valid");
        let d = format!("{c:?} {:?}", c.config());
        assert!(
            !d.contains("hunter2secret") && !d.contains("CODE123456"),
            "{d}"
        );
    }

    #[test]
    fn credentials_no_header_can_carry_are_refused_up_front() {
        let e =
            AutotaskClient::new(AutotaskConfig::new("u@x.example", "bad\nsecret", "CODE")).err();
        assert_eq!(
            e.as_ref().map(|e| e.kind),
            Some(ErrorKind::Authentication),
            "{e:?}"
        );
        assert!(e.is_some_and(|e| e.detail.contains("secret") && !e.detail.contains("bad")));
        let c = AutotaskClient::new(AutotaskConfig::new("u@x.example", "s3cret", "CODE"))
            .expect("valid");
        assert!(c.inner.auth.iter().all(|(_, v)| v.is_sensitive()));
    }

    #[test]
    fn emails_are_deduplicated_and_checked() {
        let (ok, bad) = contact_emails([
            Some("Ann@X.example".into()),
            Some("ann@x.example".into()),
            Some("n/a".into()),
        ]);
        assert_eq!(ok.len(), 1);
        assert_eq!(bad, vec!["n/a".to_string()]);
        let (ok, bad) = contact_emails([None, Some(" ".into()), Some("b@y.example".into())]);
        assert_eq!((ok.len(), bad.len()), (1, 0));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(10),
            max_wait: Duration::from_millis(35),
        };
        assert_eq!(p.backoff(1), Duration::from_millis(10));
        assert_eq!(p.backoff(2), Duration::from_millis(20));
        assert_eq!(p.backoff(3), Duration::from_millis(35));
        assert_eq!(p.backoff(40), Duration::from_millis(35));
    }
}
