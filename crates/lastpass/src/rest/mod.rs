//! Client for the managed-companies part of the LastPass REST API (reference `psa-and-msp.md`
//! §3.3): list, create, update and detach managed companies, and list, read and add their
//! users. Base URL `https://api.lastpass.com/business/v1` by default, header
//! `Authorization: api-key lpkey_…`.
//!
//! This module owns the transport: the key (a [`Secret`], never in `Debug`, errors or logs),
//! retries, paging as streams, and the asynchronous 202 + poll flow. [`model`] holds the typed
//! shapes, [`error`] the one [`Error`] type and the ProblemDetails body.
//!
//! # Retries
//!
//! - `GET`, `PUT` and `DELETE` retry on 429, 5xx, transport errors and undecodable bodies.
//! - `POST` (create a company, add a user) retries at once only when the request was certainly
//!   not applied: 429, 503, connection refused. After an *ambiguous* failure (another 5xx, a
//!   connection lost after sending, a torn body), adding a user first looks the e-mail up and
//!   retries only if the user is not there; creating a company is not retried (company names
//!   need not be unique, so a retry could make a duplicate) and fails with the error.
//! - A DELETE answered 404 after an ambiguous attempt counts as done.
//!
//! Backoff is exponential with full jitter ([`RetryPolicy`]); `Retry-After` (seconds or an
//! HTTP date) is honoured as a minimum, and one longer than [`RetryPolicy::max_retry_after`]
//! fails at once with [`Error::RateLimited`].
//!
//! # Asynchronous operations
//!
//! Create and update answer `202 {"id","url"}`. [`RestClient::wait`] polls `url` (which must be
//! on the base URL's origin: the key is never sent anywhere else) with growing intervals
//! ([`PollPolicy`]) until the request is final or the deadline passes ([`Error::Timeout`]). A
//! failed request's ProblemDetails becomes the same error a direct answer with its status
//! would (e.g. [`Error::NotEnoughLicenses`]).

pub mod error;
pub mod model;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use lp_types::{Email, InvalidValue, Secret};
use parking_lot::Mutex;
use rand::Rng;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::client::{CallStats, describe, outcome_of, parse_retry_after};
pub use error::{Error, Problem, ProblemItem};
pub use model::*;

/// The real API's base URL (reference §3.3).
pub const DEFAULT_BASE_URL: &str = "https://api.lastpass.com/business/v1";
/// The largest `max-results` (reference §3.3).
pub const MAX_PAGE_SIZE: u32 = 500;

/// The API key (`lpkey_<id>_<secret>`), created under Admin Console > Advanced > LastPass API.
#[derive(Clone)]
pub struct Credentials {
    api_key: Secret,
}

impl Credentials {
    /// Refuses an empty key or one with whitespace (the message never quotes the key).
    pub fn new(api_key: Secret) -> Result<Self, Error> {
        let k = api_key.expose();
        if k.trim().is_empty() {
            return Err(Error::Config("the API key is empty".into()));
        }
        if k.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::Config(
                "the API key contains whitespace or control characters".into(),
            ));
        }
        Ok(Self { api_key })
    }

    pub fn api_key(&self) -> &Secret {
        &self.api_key
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// How failed calls are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (at least 1).
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` waited for; a longer one fails at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Tiny waits for tests: 4 attempts, 1–5 ms backoff, `Retry-After` up to 1 s.
    pub fn for_tests() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(1),
        }
    }

    /// Full jitter: uniform in `[0, min(max_delay, base_delay · 2^(attempt-1))]`.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)));
        let cap = exp.min(self.max_delay);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
    }
}

/// How asynchronous requests are polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPolicy {
    /// Give up (with [`Error::Timeout`]) when the request is still pending after this long.
    pub deadline: Duration,
    /// The first wait between polls; it doubles up to `max_interval`.
    pub initial_interval: Duration,
    pub max_interval: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(120),
            initial_interval: Duration::from_millis(250),
            max_interval: Duration::from_secs(5),
        }
    }
}

impl PollPolicy {
    /// For tests against the sandbox, which completes after a number of polls: 1–4 ms between
    /// polls, 10 s deadline.
    pub fn for_tests() -> Self {
        Self {
            deadline: Duration::from_secs(10),
            initial_interval: Duration::from_millis(1),
            max_interval: Duration::from_millis(4),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RestConfig {
    /// `https://api.lastpass.com/business/v1`, or the sandbox's `http://127.0.0.1:PORT/business/v1`.
    pub base_url: Url,
    pub credentials: Credentials,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// At most this many requests in flight.
    pub max_concurrency: usize,
    pub retry: RetryPolicy,
    pub poll: PollPolicy,
}

impl RestConfig {
    /// [`DEFAULT_BASE_URL`], 30 s timeout, 8 in flight, default retries and polling.
    pub fn new(credentials: Credentials) -> Self {
        Self {
            base_url: default_base_url(),
            credentials,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_concurrency: 8,
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
        }
    }

    pub fn with_base_url(self, base_url: Url) -> Self {
        Self { base_url, ..self }
    }

    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        Self { retry, ..self }
    }

    pub fn with_poll(self, poll: PollPolicy) -> Self {
        Self { poll, ..self }
    }
}

fn default_base_url() -> Url {
    // A constant checked by `base_urls_and_paths`.
    Url::parse(DEFAULT_BASE_URL).expect("DEFAULT_BASE_URL is a valid URL")
}

/// Parses a base URL (`http`/`https`, no query or fragment); a trailing `/` is dropped.
pub fn parse_base_url(value: &str) -> Result<Url, InvalidValue> {
    let mut url = Url::parse(value.trim())
        .map_err(|e| InvalidValue::new("base_url", value, e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InvalidValue::new(
            "base_url",
            value,
            "must be an http or https URL",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
        return Err(InvalidValue::new(
            "base_url",
            value,
            "must not have a query or fragment",
        ));
    }
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    Ok(url)
}

/// How a call may be retried (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// GET, PUT, DELETE.
    Idempotent,
    /// POST: only when certainly not applied.
    NotIdempotent,
}

/// A 2xx answer.
struct Reply {
    status: u16,
    body: Bytes,
}

/// A failed call and whether it may have been applied.
struct Failure {
    error: Error,
    ambiguous: bool,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
    /// `api-key <key>`, built once.
    auth: reqwest::header::HeaderValue,
    retry: RetryPolicy,
    poll: PollPolicy,
    in_flight: tokio::sync::Semaphore,
    stats: Mutex<CallStats>,
}

/// The REST API client. Cheap to clone (shared connection pool and counters).
#[derive(Clone)]
pub struct RestClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("base_url", &self.inner.base.as_str())
            .field("credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

/// Op names: the keys of [`CallStats::by_cmd`] (the sandbox counts under the same names).
mod op {
    pub const LIST_COMPANIES: &str = "companies.list";
    pub const CREATE_COMPANY: &str = "companies.create";
    pub const GET_COMPANY: &str = "companies.get";
    pub const UPDATE_COMPANY: &str = "companies.update";
    pub const DETACH_COMPANY: &str = "companies.detach";
    pub const LIST_USERS: &str = "users.list";
    pub const ADD_USER: &str = "users.add";
    pub const GET_USER: &str = "users.get";
    pub const GET_REQUEST: &str = "requests.get";
}

/// The first 120 characters of a body (lossy UTF-8), for decode errors.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(120).collect()
}

impl RestClient {
    pub fn new(config: RestConfig) -> Result<Self, Error> {
        if !matches!(config.base_url.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "base URL must be an http or https URL, got {}",
                config.base_url
            )));
        }
        if config.max_concurrency == 0 {
            return Err(Error::Config("max_concurrency must be at least 1".into()));
        }
        let mut auth = reqwest::header::HeaderValue::from_str(&format!(
            "api-key {}",
            config.credentials.api_key.expose()
        ))
        .map_err(|_| Error::Config("the API key is not a valid header value".into()))?;
        // Keeps the key out of reqwest's and hyper's debug output.
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("lpbridge/", env!("CARGO_PKG_VERSION")))
            // A redirect could carry the key elsewhere; the API does not redirect.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let mut retry = config.retry;
        retry.max_attempts = retry.max_attempts.max(1);
        let base =
            parse_base_url(config.base_url.as_str()).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                credentials: config.credentials,
                auth,
                retry,
                poll: config.poll,
                in_flight: tokio::sync::Semaphore::new(config.max_concurrency),
                stats: Mutex::new(CallStats::default()),
            }),
        })
    }

    /// The base URL (the only origin this client ever calls).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// Upstream call counters, keyed by operation (`companies.list`, `users.add`, …).
    pub fn stats(&self) -> CallStats {
        self.inner.stats.lock().clone()
    }

    /// `base/seg/seg…` with each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut u = self.inner.base.clone();
        if let Ok(mut s) = u.path_segments_mut() {
            s.pop_if_empty();
            s.extend(segments);
        }
        u
    }

    /// `s` with the API key replaced by `***` (for anything the server or a library echoes).
    fn scrub(&self, s: &str) -> String {
        let key = self.inner.credentials.api_key.expose();
        let mut out = s.replace(key, "***");
        // The secret part alone, should a server echo only that.
        if let Some(secret) = key.rsplit('_').next().filter(|p| p.len() >= 8 && *p != key) {
            out = out.replace(secret, "***");
        }
        out
    }

    fn problem_of(&self, body: &[u8]) -> Option<Problem> {
        serde_json::from_slice::<Problem>(body)
            .ok()
            .map(|p| p.scrubbed(&|s| self.scrub(s)))
    }

    // ---- transport ------------------------------------------------------------------------

    /// One exchange: permit, send, read the whole body. Counts it.
    async fn attempt(
        &self,
        op: &'static str,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<(u16, reqwest::header::HeaderMap, Bytes), Failure> {
        // The semaphore lives as long as the client and is never closed.
        let _permit = self.inner.in_flight.acquire().await.ok();
        {
            let mut s = self.inner.stats.lock();
            s.requests += 1;
            *s.by_cmd.entry(op.to_string()).or_default() += 1;
        }
        let mut req = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .header(reqwest::header::AUTHORIZATION, self.inner.auth.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/problem+json",
            );
        if let Some(b) = body {
            req = req.json(b);
        }
        let result = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                match resp.bytes().await {
                    Ok(bytes) => Ok((status, headers, bytes)),
                    Err(e) => Err(Failure {
                        error: Error::Transport {
                            op: op.to_string(),
                            message: self.scrub(&describe(&e)),
                            ambiguous: true,
                        },
                        ambiguous: true,
                    }),
                }
            }
            Err(e) => {
                let ambiguous = !e.is_connect();
                Err(Failure {
                    error: Error::Transport {
                        op: op.to_string(),
                        message: self.scrub(&describe(&e)),
                        ambiguous,
                    },
                    ambiguous,
                })
            }
        };
        let status = result.as_ref().ok().map(|(s, _, _)| *s);
        *self
            .inner
            .stats
            .lock()
            .by_outcome
            .entry(op.to_string())
            .or_default()
            .entry(outcome_of(status))
            .or_default() += 1;
        result
    }

    /// Sends with retries; `decode` turns a 2xx answer into `T` (a decode failure of an
    /// idempotent call is retried like a torn answer).
    async fn call<T>(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        body: Option<&Value>,
        class: Class,
        decode: impl Fn(&Reply) -> Result<T, Error>,
    ) -> Result<T, Failure> {
        let policy = &self.inner.retry;
        let mut attempt = 0;
        let mut was_ambiguous = false;
        loop {
            attempt += 1;
            let last = attempt >= policy.max_attempts;
            let (failure, retry_after) = match self.attempt(op, &method, &url, body).await {
                Ok((status, _, bytes)) if (200..300).contains(&status) => {
                    let reply = Reply {
                        status,
                        body: bytes,
                    };
                    match decode(&reply) {
                        Ok(v) => return Ok(v),
                        Err(error) => (
                            Failure {
                                error,
                                // The server answered 2xx: the call was applied.
                                ambiguous: true,
                            },
                            None,
                        ),
                    }
                }
                Ok((status, headers, bytes)) => {
                    let retry_after = parse_retry_after(&headers);
                    if status == 404 && method == Method::DELETE && was_ambiguous {
                        // An earlier attempt that may have gone through did the detach.
                        return decode(&Reply {
                            status: 204,
                            body: Bytes::new(),
                        })
                        .map_err(|error| Failure {
                            error,
                            ambiguous: false,
                        });
                    }
                    let problem = self.problem_of(&bytes);
                    let error = Error::from_status(op, status, problem, retry_after);
                    // 429 and 503 are refusals before any work; other 5xx may have applied.
                    let ambiguous = status >= 500 && status != 503;
                    (Failure { error, ambiguous }, retry_after)
                }
                Err(f) => (f, None),
            };
            was_ambiguous |= failure.ambiguous;
            let retryable = match &failure.error {
                Error::RateLimited { .. } | Error::Upstream { .. } | Error::Transport { .. } => {
                    class == Class::Idempotent || !failure.ambiguous
                }
                Error::Decode { .. } => class == Class::Idempotent,
                _ => false,
            };
            if !retryable || last {
                return Err(failure);
            }
            if let Some(ra) = retry_after
                && ra > policy.max_retry_after
            {
                return Err(failure);
            }
            let wait = policy.backoff(attempt).max(retry_after.unwrap_or_default());
            tracing::debug!(
                op,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %failure.error,
                "LastPass REST call failed; retrying"
            );
            self.inner.stats.lock().retries += 1;
            tokio::time::sleep(wait).await;
        }
    }

    fn json<T: DeserializeOwned>(&self, op: &str, reply: &Reply) -> Result<T, Error> {
        serde_json::from_slice(&reply.body).map_err(|e| Error::Decode {
            op: op.to_string(),
            reason: e.to_string(),
            excerpt: self.scrub(&excerpt(&reply.body)),
        })
    }

    async fn get_json<T: DeserializeOwned>(&self, op: &'static str, url: Url) -> Result<T, Error> {
        self.call(op, Method::GET, url, None, Class::Idempotent, |r| {
            self.json(op, r)
        })
        .await
        .map_err(|f| f.error)
    }

    // ---- paging ---------------------------------------------------------------------------

    /// One page of `url` (which carries the filters) after `token`.
    async fn page<T: DeserializeOwned>(
        &self,
        op: &'static str,
        url: &Url,
        token: Option<&str>,
    ) -> Result<Page<T>, Error> {
        let mut u = url.clone();
        if let Some(t) = token {
            u.query_pairs_mut().append_pair("page-token", t);
        }
        self.get_json(op, u).await
    }

    /// Every item of `url`, page by page (one page held at a time).
    fn paged<T: DeserializeOwned + Send + 'static>(
        &self,
        op: &'static str,
        url: Url,
    ) -> BoxStream<'_, Result<T, Error>> {
        // State: the token to fetch with (`None` = the first page), or done.
        stream::try_unfold(Some(None::<String>), move |state| {
            let url = url.clone();
            async move {
                let Some(token) = state else {
                    return Ok(None);
                };
                let page: Page<T> = self.page(op, &url, token.as_deref()).await?;
                let next = match page.next_page_token.filter(|t| !t.is_empty()) {
                    // A server handing back the token it was given would loop forever.
                    Some(t) if Some(&t) == token.as_ref() => {
                        return Err(Error::Decode {
                            op: op.to_string(),
                            reason: "the same nextPageToken came back twice".into(),
                            excerpt: String::new(),
                        });
                    }
                    Some(t) => Some(Some(t)),
                    None => None,
                };
                Ok(Some((stream::iter(page.items.into_iter().map(Ok)), next)))
            }
        })
        .try_flatten()
        .boxed()
    }

    fn check_page_size(size: Option<u32>) -> Result<(), Error> {
        match size {
            Some(n) if n == 0 || n > MAX_PAGE_SIZE => Err(InvalidValue::new(
                "page_size",
                n.to_string(),
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            )
            .into()),
            _ => Ok(()),
        }
    }

    fn with_params(mut url: Url, params: &[(&'static str, String)]) -> Url {
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        url
    }

    // ---- managed companies ----------------------------------------------------------------

    /// Every managed company matching `query`, page by page (`GET /v1/managed-companies`).
    pub fn list_companies(
        &self,
        query: &CompanyQuery,
    ) -> BoxStream<'_, Result<ManagedCompany, Error>> {
        if let Err(e) = Self::check_page_size(query.page_size) {
            return stream::once(async move { Err(e) }).boxed();
        }
        let url = Self::with_params(self.url(&["managed-companies"]), &query.params());
        self.paged(op::LIST_COMPANIES, url)
    }

    /// One page of companies after `page_token`.
    pub async fn companies_page(
        &self,
        query: &CompanyQuery,
        page_token: Option<&str>,
    ) -> Result<Page<ManagedCompany>, Error> {
        Self::check_page_size(query.page_size)?;
        let url = Self::with_params(self.url(&["managed-companies"]), &query.params());
        self.page(op::LIST_COMPANIES, &url, page_token).await
    }

    /// Managed companies named `name` (trimmed, compared case-insensitively): what makes a PSA
    /// company a "potential duplicate". The `name` filter narrows the list upstream; a `%` in
    /// the name is a wildcard there, so the result is compared again here.
    pub async fn find_companies_by_name(&self, name: &str) -> Result<Vec<ManagedCompany>, Error> {
        let wanted = name.trim();
        if wanted.is_empty() {
            return Err(InvalidValue::new("name", name, "must not be empty").into());
        }
        self.list_companies(&CompanyQuery::named(wanted))
            .try_filter(|c| {
                let same = c.name.trim().to_lowercase() == wanted.to_lowercase();
                futures::future::ready(same)
            })
            .try_collect()
            .await
    }

    pub async fn get_company(&self, id: &CompanyId) -> Result<ManagedCompany, Error> {
        self.get_json(
            op::GET_COMPANY,
            self.url(&["managed-companies", id.as_str()]),
        )
        .await
    }

    /// `POST /v1/managed-companies`: the `202` only (poll it with [`RestClient::wait`]).
    pub async fn start_create_company(&self, new: &NewManagedCompany) -> Result<Accepted, Error> {
        new.validate()?;
        let body = new.to_json();
        self.call(
            op::CREATE_COMPANY,
            Method::POST,
            self.url(&["managed-companies"]),
            Some(&body),
            Class::NotIdempotent,
            |r| self.accepted(op::CREATE_COMPANY, r),
        )
        .await
        .map_err(|f| f.error)
    }

    /// Creates a company: POST, poll the request until it completes, read the company.
    pub async fn create_company(&self, new: &NewManagedCompany) -> Result<ManagedCompany, Error> {
        let accepted = self.start_create_company(new).await?;
        let done = self.wait(op::CREATE_COMPANY, &accepted).await?;
        let id = done.resource_id.ok_or_else(|| Error::Decode {
            op: op::CREATE_COMPANY.into(),
            reason: format!("request {} completed without a resourceId", accepted.id),
            excerpt: String::new(),
        })?;
        self.get_company(&id).await
    }

    /// `PUT /v1/managed-companies/{id}`: the `202` only.
    pub async fn start_update_company(
        &self,
        id: &CompanyId,
        update: &CompanyUpdate,
    ) -> Result<Accepted, Error> {
        update.validate()?;
        let body = update.to_json();
        self.call(
            op::UPDATE_COMPANY,
            Method::PUT,
            self.url(&["managed-companies", id.as_str()]),
            Some(&body),
            Class::Idempotent,
            |r| self.accepted(op::UPDATE_COMPANY, r),
        )
        .await
        .map_err(|f| f.error)
    }

    /// Changes `licenseLimit`, `status` or `addons`: PUT, poll, read the company back.
    pub async fn update_company(
        &self,
        id: &CompanyId,
        update: &CompanyUpdate,
    ) -> Result<ManagedCompany, Error> {
        let accepted = self.start_update_company(id, update).await?;
        self.wait(op::UPDATE_COMPANY, &accepted).await?;
        self.get_company(id).await
    }

    /// Detaches a managed company (`DELETE`, 204): it becomes an independent trial account.
    /// LastPass refuses it without a local admin ([`Error::Conflict`], "Can't detach without
    /// admins."). Irreversible.
    pub async fn detach_company(&self, id: &CompanyId) -> Result<(), Error> {
        self.call(
            op::DETACH_COMPANY,
            Method::DELETE,
            self.url(&["managed-companies", id.as_str()]),
            None,
            Class::Idempotent,
            |_| Ok(()),
        )
        .await
        .map_err(|f| f.error)
    }

    // ---- asynchronous requests ------------------------------------------------------------

    fn accepted(&self, op: &str, reply: &Reply) -> Result<Accepted, Error> {
        if reply.status != 202 {
            tracing::debug!(op, status = reply.status, "expected 202 Accepted");
        }
        self.json(op, reply)
    }

    /// The poll URL of `accepted`, refused unless it is on the base URL's origin.
    fn poll_url(&self, op: &str, accepted: &Accepted) -> Result<Url, Error> {
        let url = self
            .inner
            .base
            .join(&accepted.url)
            .map_err(|e| Error::Decode {
                op: op.to_string(),
                reason: format!("the poll URL is not a URL: {e}"),
                excerpt: self.scrub(&accepted.url),
            })?;
        if url.origin() != self.inner.base.origin() {
            return Err(Error::Decode {
                op: op.to_string(),
                reason: format!(
                    "the poll URL is on another origin than {} (the key is not sent there)",
                    self.inner.base.origin().ascii_serialization()
                ),
                excerpt: self.scrub(&accepted.url),
            });
        }
        Ok(url)
    }

    /// One poll of an asynchronous request.
    pub async fn request(&self, accepted: &Accepted) -> Result<AsyncRequest, Error> {
        let url = self.poll_url(op::GET_REQUEST, accepted)?;
        self.get_json(op::GET_REQUEST, url).await
    }

    /// Polls `accepted` until it is final. `Completed` answers the request; `Failed` answers
    /// the error its ProblemDetails stands for; still pending at the deadline,
    /// [`Error::Timeout`].
    pub async fn wait(&self, op: &str, accepted: &Accepted) -> Result<AsyncRequest, Error> {
        let poll = &self.inner.poll;
        let start = tokio::time::Instant::now();
        let deadline = start + poll.deadline;
        let mut interval = poll.initial_interval;
        loop {
            let r = self.request(accepted).await?;
            if r.status == RequestStatus::Failed {
                let problem = r.error.map(|p| p.scrubbed(&|s| self.scrub(s)));
                let status = problem.as_ref().and_then(|p| p.status).unwrap_or(500);
                return Err(Error::from_status(op, status, problem, None));
            }
            if !r.status.is_pending() {
                if r.status != RequestStatus::Completed {
                    tracing::warn!(op, status = %r.status, "unknown final request status");
                }
                return Ok(r);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    op: op.to_string(),
                    request_id: accepted.id.to_string(),
                    waited: now - start,
                });
            }
            tokio::time::sleep(interval.min(deadline - now)).await;
            interval = (interval * 2).min(poll.max_interval);
        }
    }

    // ---- users ----------------------------------------------------------------------------

    /// Every user of a managed company matching `query`, page by page.
    pub fn list_users(
        &self,
        company: &CompanyId,
        query: &UserQuery,
    ) -> BoxStream<'_, Result<CompanyUser, Error>> {
        if let Err(e) = Self::check_page_size(query.page_size) {
            return stream::once(async move { Err(e) }).boxed();
        }
        let url = Self::with_params(
            self.url(&["managed-companies", company.as_str(), "users"]),
            &query.params(),
        );
        self.paged(op::LIST_USERS, url)
    }

    pub async fn get_user(
        &self,
        company: &CompanyId,
        user: &CompanyUserId,
    ) -> Result<CompanyUser, Error> {
        self.get_json(
            op::GET_USER,
            self.url(&[
                "managed-companies",
                company.as_str(),
                "users",
                user.as_str(),
            ]),
        )
        .await
    }

    /// The company's user with this e-mail (case-insensitive), if any.
    pub async fn find_user_by_email(
        &self,
        company: &CompanyId,
        email: &Email,
    ) -> Result<Option<CompanyUser>, Error> {
        let q = UserQuery {
            email: Some(email.as_str().to_string()),
            ..UserQuery::default()
        };
        let mut users = self.list_users(company, &q);
        while let Some(u) = users.next().await {
            let u = u?;
            if u.email.eq_ignore_ascii_case(email.as_str()) {
                return Ok(Some(u));
            }
        }
        Ok(None)
    }

    /// Adds a user to a managed company (`201`). An invited user takes a licence: with none
    /// left the answer is [`Error::NotEnoughLicenses`]; an e-mail already there is
    /// [`Error::Conflict`]. After an ambiguous failure the e-mail is looked up before retrying,
    /// so the user is never added twice.
    pub async fn add_user(
        &self,
        company: &CompanyId,
        new: &NewCompanyUser,
    ) -> Result<CompanyUser, Error> {
        let body = new.to_json();
        let url = self.url(&["managed-companies", company.as_str(), "users"]);
        let mut verifications = 0;
        loop {
            let sent = self
                .call(
                    op::ADD_USER,
                    Method::POST,
                    url.clone(),
                    Some(&body),
                    Class::NotIdempotent,
                    |r| self.json(op::ADD_USER, r),
                )
                .await;
            let failure = match sent {
                Ok(u) => return Ok(u),
                Err(f) if !f.ambiguous => return Err(f.error),
                Err(f) => f,
            };
            verifications += 1;
            if verifications >= self.inner.retry.max_attempts {
                return Err(failure.error);
            }
            tracing::debug!(op = op::ADD_USER, error = %failure.error, "ambiguous failure; looking the user up");
            if let Some(u) = self.find_user_by_email(company, &new.email).await? {
                return Ok(u);
            }
            self.inner.stats.lock().retries += 1;
            tokio::time::sleep(self.inner.retry.backoff(verifications)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> RestClient {
        let creds =
            Credentials::new(Secret::new("lpkey_ABCDEFGHIJKL_supersecretvalue1234")).unwrap();
        RestClient::new(RestConfig::new(creds).with_base_url(parse_base_url(base).unwrap()))
            .unwrap()
    }

    #[test]
    fn base_urls_and_paths() {
        assert_eq!(
            parse_base_url(DEFAULT_BASE_URL).unwrap().as_str(),
            DEFAULT_BASE_URL
        );
        assert_eq!(
            parse_base_url("http://127.0.0.1:9/business/v1/")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/business/v1"
        );
        assert!(parse_base_url("ftp://x/").is_err());
        assert!(parse_base_url("https://x/v1?a=b").is_err());
        let c = client("https://api.example/business/v1");
        assert_eq!(
            c.url(&["managed-companies", "a/b c"]).as_str(),
            "https://api.example/business/v1/managed-companies/a%2Fb%20c"
        );
    }

    #[test]
    fn poll_urls_stay_on_the_api_origin() {
        let c = client("https://api.example/business/v1");
        let ok = |u: &str| Accepted {
            id: RequestId::new("1"),
            url: u.to_string(),
        };
        assert!(
            c.poll_url("x", &ok("https://api.example/business/v1/requests/1"))
                .is_ok()
        );
        assert_eq!(
            c.poll_url("x", &ok("/business/v1/requests/1"))
                .unwrap()
                .as_str(),
            "https://api.example/business/v1/requests/1"
        );
        for bad in [
            "https://evil.example/business/v1/requests/1",
            "http://api.example/business/v1/requests/1",
            "https://api.example:8443/requests/1",
        ] {
            let e = c.poll_url("x", &ok(bad)).unwrap_err();
            assert!(matches!(e, Error::Decode { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn keys_are_refused_without_quoting_them_and_scrubbed() {
        let e = Credentials::new(Secret::new("lpkey_A B")).unwrap_err();
        assert!(!e.to_string().contains("lpkey_A"), "{e}");
        assert!(Credentials::new(Secret::new("  ")).is_err());
        let c = client("https://api.example/business/v1");
        assert_eq!(
            c.scrub("key lpkey_ABCDEFGHIJKL_supersecretvalue1234 or supersecretvalue1234"),
            "key *** or ***"
        );
        assert!(!format!("{c:?}").contains("supersecret"));
    }
}
