//! The HTTP client: one `POST enterpriseapi.php` per command, envelope normalisation, retries,
//! rate limiting, a concurrency cap, and paged reads as streams holding one page at a time.

use std::time::Duration;

use futures::stream::BoxStream;
use lp_types::{Cid, Email, Secret};
use url::Url;

use crate::error::Error;
use crate::model::*;

/// The US host; the default endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://lastpass.com/enterpriseapi.php";

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
        todo!()
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
    pub fn new(credentials: Credentials) -> Self {
        let _ = credentials;
        todo!()
    }

    pub fn with_endpoint(self, endpoint: Url) -> Self {
        Self { endpoint, ..self }
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
}

/// A raw answer for `lpbridge api call`: status, content type and body as received.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: bytes::Bytes,
}

/// The Enterprise API client. Cheap to clone (shared connection pool, limiter and counters).
#[derive(Clone)]
pub struct Client {
    _private: (),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

#[allow(unused_variables)]
impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        todo!()
    }

    pub fn cid(&self) -> Cid {
        todo!()
    }

    pub fn stats(&self) -> CallStats {
        todo!()
    }

    // ---- users --------------------------------------------------------------------------

    /// `getuserdata` with `username`: `Ok(None)` for `{"Users":[]}`.
    pub async fn get_user(&self, email: &Email) -> Result<Option<User>, Error> {
        todo!()
    }

    /// One `getuserdata` page (`pagesize`, zero-based `pageindex`).
    pub async fn user_page(
        &self,
        query: &UserQuery,
        pagesize: u32,
        pageindex: u32,
    ) -> Result<UserPage, Error> {
        todo!()
    }

    /// Every matching user, page by page (one page held at a time). Stops when the users seen
    /// reach `total` or a page comes back empty. Uses ceil(total / pagesize) calls.
    pub fn users(&self, query: UserQuery, pagesize: u32) -> BoxStream<'_, Result<User, Error>> {
        todo!()
    }

    /// Pages rather than users (for callers that also want `Groups`/`invited` per page).
    pub fn user_pages(
        &self,
        query: UserQuery,
        pagesize: u32,
    ) -> BoxStream<'_, Result<UserPage, Error>> {
        todo!()
    }

    /// `getuserdata` with no paging: the whole directory in one answer.
    pub async fn all_users(&self) -> Result<UserPage, Error> {
        todo!()
    }

    /// `batchadd`. After an ambiguous failure it checks with `getuserdata` which users exist
    /// before retrying only the missing ones, so a retry never duplicates.
    pub async fn batch_add(&self, users: &[NewUser]) -> Result<(), Error> {
        todo!()
    }

    pub async fn update_user(&self, update: &UserUpdate) -> Result<(), Error> {
        todo!()
    }

    pub async fn delete_user(&self, email: &Email, action: DeleteAction) -> Result<(), Error> {
        todo!()
    }

    pub async fn disable_users(&self, emails: &[Email]) -> Result<ToggleOutcome, Error> {
        todo!()
    }

    pub async fn enable_users(&self, emails: &[Email]) -> Result<ToggleOutcome, Error> {
        todo!()
    }

    /// `batchchangegrp`. `WARN` becomes [`Error::Partial`] with LastPass's per-user errors.
    pub async fn change_groups(&self, changes: &[GroupChange]) -> Result<(), Error> {
        todo!()
    }

    pub async fn reinvite_user(&self, email: &Email) -> Result<(), Error> {
        todo!()
    }

    pub async fn reset_password(&self, email: &Email) -> Result<(), Error> {
        todo!()
    }

    pub async fn require_password_change(&self, email: &Email) -> Result<(), Error> {
        todo!()
    }

    pub async fn disable_multifactor(&self, email: &Email) -> Result<(), Error> {
        todo!()
    }

    /// `updateemail`, held to 10/s by the client.
    pub async fn update_email(&self, old: &Email, new: &Email) -> Result<(), Error> {
        todo!()
    }

    // ---- shared folders -------------------------------------------------------------------

    /// `getsfdata`.
    pub async fn shared_folders(&self) -> Result<Vec<SharedFolder>, Error> {
        todo!()
    }

    /// `getdetailedsfdata` without paging (may be answered with 429 on large accounts).
    pub async fn detailed_shared_folders(&self) -> Result<Vec<SharedFolder>, Error> {
        todo!()
    }

    /// `getdetailedsfdata` page by page (`{"data":"all","pagesize":N,"pageindex":i}`).
    pub fn detailed_shared_folders_paged(
        &self,
        pagesize: u32,
    ) -> BoxStream<'_, Result<SharedFolder, Error>> {
        todo!()
    }

    // ---- events -------------------------------------------------------------------------

    /// One `reporting` call. `next` continues a previous page.
    pub async fn events_page(
        &self,
        query: &EventQuery,
        next: Option<i64>,
    ) -> Result<EventPage, Error> {
        todo!()
    }

    /// Every event in the window, newest first, walking `next`.
    pub fn events(&self, query: EventQuery) -> BoxStream<'_, Result<Event, Error>> {
        todo!()
    }

    // ---- other --------------------------------------------------------------------------

    /// One `expiredmasterpwlist` page.
    pub async fn expired_passwords_page(
        &self,
        limit: u32,
        token: Option<&str>,
    ) -> Result<ExpiredPage, Error> {
        todo!()
    }

    /// Every user with an expired master password, walking the continuation token.
    pub fn expired_passwords(&self, limit: u32) -> BoxStream<'_, Result<ExpiredPassword, Error>> {
        todo!()
    }

    /// `pushsitestousers`; returns the `psid`.
    pub async fn push_site(&self, site: &PushSite) -> Result<String, Error> {
        todo!()
    }

    /// Any command, answered raw (no envelope interpretation, no retries of writes).
    /// `data` is sent as-is; `None` omits the key.
    pub async fn raw(
        &self,
        cmd: &str,
        data: Option<serde_json::Value>,
    ) -> Result<RawResponse, Error> {
        todo!()
    }
}
