//! The ConnectWise Manage (PSA) client: [`ConnectWiseClient`] implements [`PsaDirectory`] over
//! the REST API (spec `psa-and-msp.md` §1).
//!
//! It owns discovery (`login/companyinfo/{companyId}`, the codebase cached and re-discovered once
//! when a call answers 404, §1.1), authentication (Basic `company+public:private` plus the
//! `clientId` header, §1.2), paging (navigable paging at `pageSize=1000`, following the `Link`
//! header's `rel="next"` URL, which keeps the filter on every page, §1.7), retries (429 honouring
//! `Retry-After`, 5xx with exponential backoff and jitter, both bounded by [`RetryPolicy`]) and
//! the classification of every failure into the six [`ErrorKind`]s following §3.4.
//!
//! Filters are pushed upstream: statuses as `conditions=status/id in (…)`, types as
//! `childConditions=types/id=1 or types/id=4` (the guide documents `childConditions` without
//! `in`), a company's contacts as `conditions=company/id=N`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use lp_types::{Email, Secret};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    AttributeValue, Attributes, Company, CompanyFilter, Contact, Error, ErrorKind, PsaDirectory,
    PsaKind, Result,
};

/// The largest page ConnectWise serves (§1.7): every listing asks for it.
pub const MAX_PAGE_SIZE: usize = 1000;

/// `fields=` of company listings: a partial response with only what [`Company`] needs (§1.6),
/// several times smaller than the full records.
const COMPANY_FIELDS: &str = "id,name,status,types,deletedFlag";
/// `fields=` of contact listings (what [`Contact`] needs).
const CONTACT_FIELDS: &str = "id,firstName,lastName,company/id,inactiveFlag,communicationItems";

/// Conditions longer than this are split into several calls (the guide: keep URLs under
/// about 2,000 characters).
const MAX_CONDITION_LEN: usize = 1_800;

/// Cloud UI hosts whose API host carries an `api-` prefix (§1.1).
const CLOUD_UI_HOSTS: &[&str] = &[
    "na.myconnectwise.net",
    "eu.myconnectwise.net",
    "au.myconnectwise.net",
    "aus.myconnectwise.net",
    "za.myconnectwise.net",
    "staging.connectwisedev.com",
];

/// How failed calls are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (at least 1).
    pub max_attempts: u32,
    /// First backoff after a 5xx or a network error; doubles each attempt.
    pub base_delay: Duration,
    /// Cap of one backoff.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a 429 asking for more fails at once with
    /// [`ErrorKind::ServerError`] instead of waiting.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Tiny waits for tests: 4 attempts, 1 ms backoff, `Retry-After` up to 1 s.
    pub fn for_tests() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(1),
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let d = exp.min(self.max_delay);
        // "Equal jitter": half fixed, half random, so concurrent clients spread out.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos());
        let frac = f64::from(nanos % 1000) / 1000.0;
        d / 2 + d.mul_f64(frac / 2.0)
    }
}

/// Connection settings. `site` is what the user types: `na.myconnectwise.net`,
/// `https://cw.example.com` or the sandbox's `http://127.0.0.1:PORT/cw`.
#[derive(Clone)]
pub struct ConnectWiseConfig {
    pub site: String,
    pub company_id: String,
    pub public_key: String,
    pub private_key: Secret,
    /// The integration's registered `clientId` GUID.
    pub client_id: String,
    pub retry: RetryPolicy,
    /// Records per page, 1..=1000 (default 1000: the fewest calls).
    pub page_size: usize,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
}

impl ConnectWiseConfig {
    pub fn new(
        site: impl Into<String>,
        company_id: impl Into<String>,
        public_key: impl Into<String>,
        private_key: Secret,
        client_id: impl Into<String>,
    ) -> Self {
        Self {
            site: site.into(),
            company_id: company_id.into(),
            public_key: public_key.into(),
            private_key,
            client_id: client_id.into(),
            retry: RetryPolicy::default(),
            page_size: MAX_PAGE_SIZE,
            timeout: Duration::from_secs(60),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

impl fmt::Debug for ConnectWiseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectWiseConfig")
            .field("site", &self.site)
            .field("company_id", &self.company_id)
            .field("public_key", &self.public_key)
            .field("private_key", &self.private_key)
            .field("client_id", &self.client_id)
            .field("retry", &self.retry)
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// A ConnectWise Manage directory. Cheap to share (`&self` everywhere); counts every HTTP request
/// it makes ([`PsaDirectory::calls`]).
pub struct ConnectWiseClient {
    http: reqwest::Client,
    /// `scheme://host[/path]` without a trailing slash.
    site: url::Url,
    company_id: String,
    public_key: String,
    auth: HeaderValue,
    client_id: HeaderValue,
    retry: RetryPolicy,
    page_size: usize,
    /// `…/{codebase}apis/3.0`, once discovered.
    base: Mutex<Option<String>>,
    /// Status id → `inactiveFlag`, loaded once (companies' `active` needs it).
    statuses: tokio::sync::OnceCell<HashMap<u64, bool>>,
    calls: AtomicU64,
}

impl fmt::Debug for ConnectWiseClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectWiseClient")
            .field("site", &self.site.as_str())
            .field("company_id", &self.company_id)
            .field("public_key", &self.public_key)
            .field("private_key", &"***")
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

/// One HTTP answer, body read.
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    /// The path the request went to (for error details; no host, no secrets).
    what: String,
}

/// `{"code","message"}` (or the 429's `{"error","message"}`) of a ConnectWise error body.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn error_body(body: &[u8]) -> ErrorBody {
    serde_json::from_slice::<ErrorBody>(body).unwrap_or_default()
}

fn snippet(body: &[u8]) -> String {
    crate::snippet(body, 160)
}

/// Whether an error body says the credentials were refused, whatever the status.
fn says_unauthenticated(e: &ErrorBody) -> bool {
    e.code.as_deref() == Some("Unauthorized")
        || e.message
            .as_deref()
            .is_some_and(|m| m.contains("UserNotAuthenticated"))
}

/// Maps a non-2xx answer to its category (§3.4).
fn classify(r: &Resp) -> Error {
    let status = r.status.as_u16();
    let e = error_body(&r.body);
    let text = match (&e.code, &e.error, &e.message) {
        (Some(c), _, Some(m)) | (None, Some(c), Some(m)) => format!("{c}: {m}"),
        (_, _, Some(m)) => m.clone(),
        _ => snippet(&r.body),
    };
    let detail = format!("HTTP {status} from {}: {text}", r.what);
    let message = e.message.as_deref().unwrap_or("");
    let kind = if e.code.as_deref() == Some("Security") && message.contains("permission") {
        ErrorKind::Forbidden
    } else if e.code.as_deref() == Some("Security") && message.contains("SSL") {
        // The non-`api-` cloud host: a wrong site, which is part of the credentials.
        ErrorKind::Authentication
    } else if status == 401 || says_unauthenticated(&e) {
        ErrorKind::Authentication
    } else if status == 403 {
        ErrorKind::Forbidden
    } else if status == 400 && text.to_ascii_lowercase().contains("clientid") {
        // A missing or unknown clientId: the integration's credential is wrong.
        ErrorKind::Authentication
    } else if status == 429 || (500..=599).contains(&status) {
        ErrorKind::ServerError
    } else {
        ErrorKind::Unknown
    };
    Error::new(kind, detail).with_status(status)
}

fn invalid(what: &str, why: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidResponse,
        format!("invalid response from {what}: {why}"),
    )
}

/// Parses a 200 body as `T`, refusing HTML and anything that is not the documented JSON.
fn parse_body<T: DeserializeOwned>(r: &Resp) -> Result<T> {
    let ct = r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.contains("html") {
        return Err(
            invalid(&r.what, format!("an HTML page: {}", snippet(&r.body)))
                .with_status(r.status.as_u16()),
        );
    }
    serde_json::from_slice(&r.body).map_err(|e| invalid(&r.what, e).with_status(r.status.as_u16()))
}

/// The `rel="next"` target of a `Link` header, made relative to `…/apis/3.0/` (so a codebase
/// change or an internal host name in the header does not matter). `Ok(None)`: no next page.
fn next_link(headers: &HeaderMap, what: &str) -> Result<Option<String>> {
    let mut next = None;
    for value in headers.get_all(header::LINK) {
        let v = value
            .to_str()
            .map_err(|_| invalid(what, "a Link header that is not ASCII"))?;
        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (url, params) = part
                .strip_prefix('<')
                .and_then(|p| p.split_once('>'))
                .ok_or_else(|| invalid(what, format!("a malformed Link header: {v}")))?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if is_next {
                let rel = url
                    .find("/apis/3.0/")
                    .map(|i| url[i + "/apis/3.0/".len()..].to_string())
                    .ok_or_else(|| invalid(what, format!("a Link URL outside the API: {url}")))?;
                next = Some(rel);
            }
        }
    }
    Ok(next)
}

fn encode_query(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

// ---- wire types (lenient: shape checks are explicit below) --------------------------------

#[derive(Debug, Default, Deserialize)]
struct WireRef {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCompany {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<WireRef>,
    #[serde(default)]
    types: Option<Vec<WireRef>>,
    #[serde(default)]
    deleted_flag: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireComm {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    default_flag: Option<bool>,
    #[serde(default)]
    communication_type: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<WireRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireContact {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    company: Option<WireRef>,
    #[serde(default)]
    inactive_flag: Option<bool>,
    #[serde(default)]
    communication_items: Option<Vec<WireComm>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSetup {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    inactive_flag: Option<bool>,
}

fn attr(r: &WireRef) -> Option<AttributeValue> {
    Some(AttributeValue {
        id: r.id?.to_string(),
        name: r.name.clone().unwrap_or_default(),
    })
}

fn to_company(w: WireCompany, inactive: &HashMap<u64, bool>, what: &str) -> Result<Company> {
    let id = w.id.ok_or_else(|| invalid(what, "a company without id"))?;
    let name = w
        .name
        .ok_or_else(|| invalid(what, format!("company {id} without name")))?;
    let status = w.status.as_ref().and_then(attr);
    let status_inactive = w
        .status
        .as_ref()
        .and_then(|s| s.id)
        .and_then(|s| inactive.get(&s).copied())
        .unwrap_or(false);
    Ok(Company {
        id: id.to_string(),
        name,
        company_type: w.types.as_deref().and_then(|t| t.first()).and_then(attr),
        status,
        active: !w.deleted_flag.unwrap_or(false) && !status_inactive,
    })
}

/// E-mails of a contact: `communicationType == "Email"` items (by `type.name` when the type is
/// missing), the default one first, duplicates dropped case-insensitively; values that are not
/// addresses go to `invalid_emails`.
fn emails_of(items: &[WireComm]) -> (Vec<Email>, Vec<String>) {
    let is_email = |c: &&WireComm| match &c.communication_type {
        Some(t) => t.eq_ignore_ascii_case("email"),
        None => c
            .kind
            .as_ref()
            .and_then(|k| k.name.as_deref())
            .is_some_and(|n| n.eq_ignore_ascii_case("email")),
    };
    let mut ordered: Vec<&WireComm> = items.iter().filter(is_email).collect();
    // Stable: the default item first, the rest in the PSA's order.
    ordered.sort_by_key(|c| !c.default_flag.unwrap_or(false));
    let mut seen = HashSet::new();
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for c in ordered {
        let v = c.value.as_deref().unwrap_or("").trim();
        if v.is_empty() || !seen.insert(v.to_lowercase()) {
            continue;
        }
        match Email::parse(v) {
            Ok(e) => ok.push(e),
            Err(_) => bad.push(v.to_string()),
        }
    }
    (ok, bad)
}

fn to_contact(w: WireContact, company_id: Option<&str>, what: &str) -> Result<Contact> {
    let id = w.id.ok_or_else(|| invalid(what, "a contact without id"))?;
    let Some(company) = w.company.as_ref().and_then(|c| c.id) else {
        // Contacts with a blank company: the API member lacks rights (ConnectWiseManageAPI#40).
        return Err(Error::new(
            ErrorKind::Forbidden,
            format!(
                "contact {id} from {what} came back without its company: the API member's security role probably lacks Companies inquire rights"
            ),
        ));
    };
    let company = company.to_string();
    if let Some(want) = company_id
        && want != company
    {
        return Err(invalid(
            what,
            format!(
                "contact {id} belongs to company {company}, not {want}: the filter was ignored"
            ),
        ));
    }
    let (emails, invalid_emails) = emails_of(w.communication_items.as_deref().unwrap_or(&[]));
    Ok(Contact {
        id: id.to_string(),
        company_id: company,
        first_name: w.first_name.unwrap_or_default(),
        last_name: w.last_name.unwrap_or_default(),
        emails,
        invalid_emails,
        active: !w.inactive_flag.unwrap_or(false),
    })
}

fn ids_of(field: &str, values: &[String]) -> Result<Vec<u64>> {
    values
        .iter()
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                Error::new(
                    ErrorKind::Unknown,
                    format!("the {field} filter value {v:?} is not a ConnectWise id"),
                )
            })
        })
        .collect()
}

/// `(conditions, childConditions)` for a company filter.
fn filter_conditions(filter: &CompanyFilter) -> Result<(Option<String>, Option<String>)> {
    let statuses = ids_of("status", &filter.statuses)?;
    let types = ids_of("type", &filter.types)?;
    let join = |v: &[u64], sep: &str, f: &dyn Fn(u64) -> String| {
        v.iter().map(|x| f(*x)).collect::<Vec<_>>().join(sep)
    };
    let conditions = (!statuses.is_empty()).then(|| {
        format!(
            "status/id in ({})",
            join(&statuses, ",", &|x| x.to_string())
        )
    });
    let child = (!types.is_empty()).then(|| join(&types, " or ", &|x| format!("types/id={x}")));
    Ok((conditions, child))
}

impl ConnectWiseClient {
    /// Checks that no credential field is empty (naming the first empty one), then builds the
    /// HTTP client. No call is made.
    pub fn new(config: ConnectWiseConfig) -> Result<Self> {
        for (field, value) in [
            ("site", config.site.trim()),
            ("company_id", config.company_id.trim()),
            ("public_key", config.public_key.trim()),
            ("private_key", config.private_key.expose().trim()),
            ("client_id", config.client_id.trim()),
        ] {
            if value.is_empty() {
                return Err(Error::credentials_missing(field));
            }
        }
        let raw = config.site.trim().trim_end_matches('/');
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("https://{raw}")
        };
        let site = url::Url::parse(&with_scheme)
            .ok()
            .filter(|u| u.has_host() && matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Authentication,
                    format!("the site {raw:?} is not a host name or http(s) URL"),
                )
            })?;
        let user = format!(
            "{}+{}:{}",
            config.company_id.trim(),
            config.public_key.trim(),
            config.private_key.expose()
        );
        let mut auth = HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user)
        ))
        .map_err(|_| {
            Error::new(
                ErrorKind::Authentication,
                "the credentials contain characters a header cannot carry",
            )
        })?;
        auth.set_sensitive(true);
        let client_id = HeaderValue::from_str(config.client_id.trim()).map_err(|_| {
            Error::new(
                ErrorKind::Authentication,
                "the client id contains characters a header cannot carry",
            )
        })?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("lpbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unknown,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        let mut retry = config.retry;
        retry.max_attempts = retry.max_attempts.max(1);
        Ok(Self {
            http,
            site,
            company_id: config.company_id.trim().to_string(),
            public_key: config.public_key.trim().to_string(),
            auth,
            client_id,
            retry,
            page_size: config.page_size.clamp(1, MAX_PAGE_SIZE),
            base: Mutex::new(None),
            statuses: tokio::sync::OnceCell::new(),
            calls: AtomicU64::new(0),
        })
    }

    fn cached_base(&self) -> Option<String> {
        self.base.lock().map(|g| g.clone()).unwrap_or(None)
    }

    /// One HTTP GET with retries: 429 waits `Retry-After` (bounded), 5xx and network errors back
    /// off exponentially. Answers every non-retried status to the caller.
    async fn send(&self, url: &str, what: &str, authed: bool) -> Result<Resp> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.max_attempts;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mut req = self
                .http
                .get(url)
                .header(header::ACCEPT, "application/json");
            if authed {
                req = req
                    .header(header::AUTHORIZATION, self.auth.clone())
                    .header("clientId", self.client_id.clone());
            }
            tracing::debug!(target: "psa::connectwise", %what, attempt, "GET");
            let sent = match req.send().await {
                Ok(r) => {
                    let status = r.status();
                    let headers = r.headers().clone();
                    r.bytes().await.map(|b| (status, headers, b.to_vec()))
                }
                Err(e) => Err(e),
            };
            let (status, headers, body) = match sent {
                Ok(x) => x,
                Err(e) => {
                    if !last {
                        let wait = self.retry.backoff(attempt);
                        tracing::warn!(target: "psa::connectwise", %what, attempt, error = %e, ?wait, "network error, retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let why = if e.is_timeout() {
                        "timed out"
                    } else {
                        "failed"
                    };
                    return Err(Error::new(
                        ErrorKind::Unknown,
                        format!("GET {what} {why} after {attempt} attempts: {e}"),
                    ));
                }
            };
            let resp = Resp {
                status,
                headers,
                body,
                what: what.to_string(),
            };
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = resp
                    .headers
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let wait = retry_after.unwrap_or_else(|| self.retry.backoff(attempt));
                if last || wait > self.retry.max_retry_after {
                    let mut e = classify(&resp);
                    e.detail = format!(
                        "{} (rate limited; gave up after {attempt} attempts, Retry-After {:?}, most honoured {:?})",
                        e.detail, retry_after, self.retry.max_retry_after
                    );
                    return Err(e);
                }
                tracing::warn!(target: "psa::connectwise", %what, attempt, ?wait, "429, waiting Retry-After");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() && !says_unauthenticated(&error_body(&resp.body)) && !last {
                let wait = self.retry.backoff(attempt);
                tracing::warn!(target: "psa::connectwise", %what, attempt, status = status.as_u16(), ?wait, "server error, retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(resp);
        }
    }

    /// `login/companyinfo/{companyId}` → `…/{codebase}apis/3.0`, cached.
    async fn discover(&self) -> Result<String> {
        let mut url = self.site.clone();
        {
            let mut segs = url.path_segments_mut().map_err(|_| {
                Error::new(ErrorKind::Authentication, "the site cannot carry a path")
            })?;
            segs.pop_if_empty()
                .extend(["login", "companyinfo", self.company_id.as_str()]);
        }
        let what = "login/companyinfo";
        let r = self.send(url.as_str(), what, false).await?;
        if r.status == StatusCode::NOT_FOUND {
            return Err(Error::new(
                ErrorKind::Authentication,
                format!(
                    "login/companyinfo does not know the company id {:?} on this site",
                    self.company_id
                ),
            )
            .with_status(404));
        }
        if !r.status.is_success() {
            return Err(classify(&r));
        }
        let trimmed = String::from_utf8_lossy(&r.body).trim().to_string();
        if trimmed.is_empty() || trimmed == "null" || trimmed == "{}" {
            return Err(Error::new(
                ErrorKind::Authentication,
                format!(
                    "login/companyinfo found no company {:?} on this site",
                    self.company_id
                ),
            )
            .with_status(r.status.as_u16()));
        }
        let v: Value = parse_body(&r)?;
        let codebase = v
            .get("Codebase")
            .and_then(Value::as_str)
            .map(|c| c.trim().trim_matches('/'))
            .filter(|c| !c.is_empty() && !c.contains(['?', '#']))
            .ok_or_else(|| invalid(what, "no Codebase in the company info"))?;
        let mut api = self.site.clone();
        if codebase != "v4_6_release"
            && let Some(h) = api.host_str().filter(|h| CLOUD_UI_HOSTS.contains(h))
        {
            let h = format!("api-{h}");
            // A valid host with a prefix stays valid.
            let _ = api.set_host(Some(&h));
        }
        let base = format!("{}/{codebase}/apis/3.0", api.as_str().trim_end_matches('/'));
        if let Ok(mut g) = self.base.lock() {
            *g = Some(base.clone());
        }
        tracing::debug!(target: "psa::connectwise", %base, "discovered the codebase");
        Ok(base)
    }

    async fn base(&self) -> Result<String> {
        match self.cached_base() {
            Some(b) => Ok(b),
            None => self.discover().await,
        }
    }

    /// GET `rel` (relative to `apis/3.0/`). On a 404, re-discovers once: a moved codebase is
    /// retried at the new one; otherwise the 404 goes back to the caller.
    async fn get(&self, rel: &str) -> Result<Resp> {
        let what = rel.split('?').next().unwrap_or(rel).to_string();
        let base = self.base().await?;
        let r = self.send(&format!("{base}/{rel}"), &what, true).await?;
        if r.status != StatusCode::NOT_FOUND {
            return Ok(r);
        }
        let new = self.discover().await?;
        if new == base {
            return Ok(r);
        }
        tracing::info!(target: "psa::connectwise", %new, "the codebase moved; retrying");
        self.send(&format!("{new}/{rel}"), &what, true).await
    }

    /// GET `rel` expecting 200 + JSON `T`.
    async fn get_json<T: DeserializeOwned>(&self, rel: &str) -> Result<T> {
        let r = self.get(rel).await?;
        if !r.status.is_success() {
            return Err(classify(&r));
        }
        parse_body(&r)
    }

    /// Streams a list endpoint page by page, following `Link: <…>; rel="next"`.
    fn list<'a, W, T, F>(&'a self, first: String, convert: F) -> BoxStream<'a, Result<T>>
    where
        W: DeserializeOwned + Send + 'a,
        T: Send + 'a,
        F: Fn(W, &str) -> Result<T> + Send + Sync + 'a,
    {
        struct St<W> {
            next: Option<String>,
            buf: VecDeque<W>,
            what: String,
            seen: HashSet<String>,
            failed: bool,
        }
        let st = St {
            next: Some(first),
            buf: VecDeque::new(),
            what: String::new(),
            seen: HashSet::new(),
            failed: false,
        };
        let convert = std::sync::Arc::new(convert);
        stream::unfold(st, move |mut st| {
            let convert = convert.clone();
            async move {
                loop {
                    if st.failed {
                        return None;
                    }
                    if let Some(w) = st.buf.pop_front() {
                        let item = convert(w, &st.what);
                        st.failed = item.is_err();
                        return Some((item, st));
                    }
                    let rel = st.next.take()?;
                    match self.page::<W>(&rel, &mut st.seen).await {
                        Ok((items, next, what)) => {
                            st.buf = items.into();
                            st.next = next;
                            st.what = what;
                        }
                        Err(e) => {
                            st.failed = true;
                            return Some((Err(e), st));
                        }
                    }
                }
            }
        })
        .boxed()
    }

    /// One page: its items (decoded straight from the body: no intermediate `Value`s), the next
    /// page's relative URL, and the endpoint for error details.
    async fn page<W: DeserializeOwned>(
        &self,
        rel: &str,
        seen: &mut HashSet<String>,
    ) -> Result<(Vec<W>, Option<String>, String)> {
        if !seen.insert(rel.to_string()) {
            return Err(invalid(
                rel,
                "the Link header points back to a page already read",
            ));
        }
        let r = self.get(rel).await?;
        if !r.status.is_success() {
            return Err(classify(&r));
        }
        let items: Vec<W> = parse_body(&r)?;
        let next = next_link(&r.headers, &r.what)?;
        if items.is_empty() && next.is_some() {
            return Err(invalid(&r.what, "an empty page with a next link"));
        }
        Ok((items, next, r.what))
    }

    async fn inactive_statuses(&self) -> Result<&HashMap<u64, bool>> {
        self.statuses
            .get_or_try_init(|| async {
                let rel = format!("company/companies/statuses?pageSize={}", self.page_size);
                let rows: Vec<Result<WireSetup>> =
                    self.list(rel, |w: WireSetup, _| Ok(w)).collect().await;
                let mut m = HashMap::new();
                for r in rows {
                    let w = r?;
                    if let Some(id) = w.id {
                        m.insert(id, w.inactive_flag.unwrap_or(false));
                    }
                }
                Ok(m)
            })
            .await
    }

    fn contacts_query(&self, conditions: &str) -> String {
        format!(
            "company/contacts?{}",
            encode_query(&[
                ("conditions", conditions),
                ("fields", CONTACT_FIELDS),
                ("orderBy", "id asc"),
                ("pageSize", &self.page_size.to_string()),
            ])
        )
    }

    /// Every contact of the tenant in one pass (`ceil(contacts / 1000)` calls): the fewest calls
    /// when most companies are wanted.
    pub fn all_contacts(&self) -> BoxStream<'_, Result<Contact>> {
        let rel = format!(
            "company/contacts?{}",
            encode_query(&[
                ("fields", CONTACT_FIELDS),
                ("orderBy", "id asc"),
                ("pageSize", &self.page_size.to_string())
            ])
        );
        self.list(rel, |w: WireContact, what: &str| to_contact(w, None, what))
    }

    /// The contacts of several companies, with `conditions=company/id in (…)` batches kept under
    /// the guide's URL length (about 250 ids per batch), in id order within each batch.
    pub fn contacts_of<'a>(&'a self, company_ids: &'a [String]) -> BoxStream<'a, Result<Contact>> {
        let ids = match ids_of("company", company_ids) {
            Ok(v) => v,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        let mut batches: Vec<String> = Vec::new();
        let mut cur = String::new();
        for id in ids {
            let s = id.to_string();
            if !cur.is_empty() && cur.len() + s.len() + 1 > MAX_CONDITION_LEN {
                batches.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(',');
            }
            cur.push_str(&s);
        }
        if !cur.is_empty() {
            batches.push(cur);
        }
        stream::iter(batches)
            .map(move |b| {
                let rel = self.contacts_query(&format!("company/id in ({b})"));
                self.list(rel, |w: WireContact, what: &str| to_contact(w, None, what))
            })
            .flatten()
            .boxed()
    }
}

impl PsaDirectory for ConnectWiseClient {
    fn kind(&self) -> PsaKind {
        PsaKind::ConnectWise
    }

    fn check(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let v: Value = self.get_json("system/info").await?;
            if v.is_object() {
                Ok(())
            } else {
                Err(invalid("system/info", "not a JSON object"))
            }
        })
    }

    fn attributes(&self) -> BoxFuture<'_, Result<Attributes>> {
        Box::pin(async move {
            let size = self.page_size;
            let setup = |w: WireSetup, what: &str| -> Result<AttributeValue> {
                let id =
                    w.id.ok_or_else(|| invalid(what, "a setup row without id"))?;
                Ok(AttributeValue {
                    id: id.to_string(),
                    name: w
                        .name
                        .ok_or_else(|| invalid(what, format!("setup row {id} without name")))?,
                })
            };
            let types: Vec<Result<AttributeValue>> = self
                .list(format!("company/companies/types?pageSize={size}"), setup)
                .collect()
                .await;
            let statuses: Vec<Result<AttributeValue>> = self
                .list(format!("company/companies/statuses?pageSize={size}"), setup)
                .collect()
                .await;
            Ok(Attributes {
                types: types.into_iter().collect::<Result<_>>()?,
                statuses: statuses.into_iter().collect::<Result<_>>()?,
            })
        })
    }

    fn companies<'a>(&'a self, filter: &'a CompanyFilter) -> BoxStream<'a, Result<Company>> {
        let (conditions, child) = match filter_conditions(filter) {
            Ok(x) => x,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        let size = self.page_size.to_string();
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(c) = &conditions {
            pairs.push(("conditions", c));
        }
        if let Some(c) = &child {
            pairs.push(("childConditions", c));
        }
        pairs.push(("fields", COMPANY_FIELDS));
        pairs.push(("orderBy", "id asc"));
        pairs.push(("pageSize", &size));
        let rel = format!("company/companies?{}", encode_query(&pairs));
        stream::once(async move { self.inactive_statuses().await })
            .map(move |statuses| match statuses {
                Ok(inactive) => self.list(rel.clone(), move |w: WireCompany, what: &str| {
                    to_company(w, inactive, what)
                }),
                Err(e) => stream::once(async move { Err(e) }).boxed(),
            })
            .flatten()
            .boxed()
    }

    fn company<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Company>>> {
        Box::pin(async move {
            let Ok(n) = id.trim().parse::<u64>() else {
                return Ok(None);
            };
            let rel = format!("company/companies/{n}");
            let r = self.get(&rel).await?;
            if r.status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !r.status.is_success() {
                return Err(classify(&r));
            }
            let w: WireCompany = parse_body(&r)?;
            let inactive = self.inactive_statuses().await?;
            to_company(w, inactive, &r.what).map(Some)
        })
    }

    fn contacts<'a>(&'a self, company_id: &'a str) -> BoxStream<'a, Result<Contact>> {
        let Ok(n) = company_id.trim().parse::<u64>() else {
            return stream::empty().boxed();
        };
        let rel = self.contacts_query(&format!("company/id={n}"));
        let want = n.to_string();
        self.list(rel, move |w: WireContact, what: &str| {
            to_contact(w, Some(&want), what)
        })
    }

    fn contacts_of_many<'a>(&'a self, company_ids: &'a [String]) -> BoxStream<'a, Result<Contact>> {
        self.contacts_of(company_ids)
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comm(t: &str, v: &str, d: bool) -> WireComm {
        WireComm {
            value: Some(v.into()),
            default_flag: Some(d),
            communication_type: Some(t.into()),
            kind: None,
        }
    }

    #[test]
    fn emails_default_first_dedup_invalid_kept() {
        let (ok, bad) = emails_of(&[
            comm("Phone", "8135551234", true),
            comm("Email", "first@x.com", false),
            comm("Email", "Second@X.com", true),
            comm("Email", "FIRST@x.com", false),
            comm("Email", "n/a", false),
            comm("Email", "", false),
        ]);
        let ok: Vec<_> = ok.iter().map(|e| e.to_string()).collect();
        assert_eq!(ok, ["Second@X.com", "first@x.com"]);
        assert_eq!(bad, ["n/a"]);
    }

    #[test]
    fn link_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static(
                "<https://SERVERNAME/v4_6_release/apis/3.0/company/companies?conditions=x&pageSize=1000&page=2>; rel=\"next\", <https://SERVERNAME/v4_6_release/apis/3.0/company/companies?pageSize=1000&page=4>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_link(&h, "t").unwrap().as_deref(),
            Some("company/companies?conditions=x&pageSize=1000&page=2")
        );
        h.insert(header::LINK, HeaderValue::from_static(""));
        assert_eq!(next_link(&h, "t").unwrap(), None);
        h.insert(
            header::LINK,
            HeaderValue::from_static("garbage; rel=\"next\""),
        );
        assert_eq!(
            next_link(&h, "t").unwrap_err().kind,
            ErrorKind::InvalidResponse
        );
    }

    #[test]
    fn security_bodies_split_between_forbidden_and_authentication() {
        let resp = |status: u16, body: &str| Resp {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            what: "company/companies".into(),
        };
        let kind = |status, body| classify(&resp(status, body)).kind;
        assert_eq!(
            kind(
                403,
                r#"{"code":"Security","message":"SSL is required.","errors":null}"#
            ),
            ErrorKind::Authentication
        );
        assert_eq!(
            kind(
                403,
                r#"{"code":"Security","message":"You do not have security permission to perform this action."}"#
            ),
            ErrorKind::Forbidden
        );
        assert_eq!(
            kind(
                429,
                r#"{"error":"ConnectWiseAPI","message":"Too many requests. Please try again in 30 seconds."}"#
            ),
            ErrorKind::ServerError
        );
        assert_eq!(
            kind(
                500,
                r#"{"code":"ConnectWiseApi","message":"UserNotAuthenticated"}"#
            ),
            ErrorKind::Authentication
        );
        assert_eq!(
            kind(
                400,
                r#"{"code":"ApiFindCondition","message":"x is not a recognized name."}"#
            ),
            ErrorKind::Unknown
        );
    }

    #[test]
    fn listings_ask_for_a_partial_response() {
        let c = ConnectWiseClient::new(ConnectWiseConfig::new(
            "na.myconnectwise.net",
            "acme",
            "pub",
            Secret::new("priv"),
            "guid",
        ))
        .unwrap();
        let q = c.contacts_query("company/id=1");
        assert!(
            q.contains("fields=id%2CfirstName%2ClastName%2Ccompany%2Fid%2CinactiveFlag%2CcommunicationItems"),
            "{q}"
        );
    }

    #[test]
    fn filters_become_conditions() {
        let f = CompanyFilter {
            types: vec!["1".into(), "4".into()],
            statuses: vec!["1".into(), "3".into()],
        };
        let (c, ch) = filter_conditions(&f).unwrap();
        assert_eq!(c.as_deref(), Some("status/id in (1,3)"));
        assert_eq!(ch.as_deref(), Some("types/id=1 or types/id=4"));
        let bad = CompanyFilter {
            types: vec!["Client".into()],
            statuses: vec![],
        };
        assert_eq!(
            filter_conditions(&bad).unwrap_err().kind,
            ErrorKind::Unknown
        );
    }

    #[test]
    fn empty_credentials_name_the_field() {
        let base = ConnectWiseConfig::new(
            "na.myconnectwise.net",
            "acme",
            "pub",
            Secret::new("priv"),
            "guid",
        );
        for (field, cfg) in [
            (
                "site",
                ConnectWiseConfig {
                    site: " ".into(),
                    ..base.clone()
                },
            ),
            (
                "company_id",
                ConnectWiseConfig {
                    company_id: "".into(),
                    ..base.clone()
                },
            ),
            (
                "public_key",
                ConnectWiseConfig {
                    public_key: "".into(),
                    ..base.clone()
                },
            ),
            (
                "private_key",
                ConnectWiseConfig {
                    private_key: Secret::new(""),
                    ..base.clone()
                },
            ),
            (
                "client_id",
                ConnectWiseConfig {
                    client_id: "".into(),
                    ..base.clone()
                },
            ),
        ] {
            let e = ConnectWiseClient::new(cfg).unwrap_err();
            assert_eq!(e.kind, ErrorKind::CredentialsMissing);
            assert!(e.detail.contains(field), "{e}");
        }
        let c = ConnectWiseClient::new(base.clone()).unwrap();
        let dbg = format!("{c:?} {base:?}");
        assert!(!dbg.contains("priv\""), "{dbg}");
        assert_eq!(c.calls(), 0);
    }
}
