//! Emulator of the LastPass Enterprise API (`POST /enterpriseapi.php`), following
//! `shared/reference/lastpass-enterprise-api.md` §0–§6 and §10: per-account state, every command,
//! the wire quirks byte for byte, audit events, the seed generator and persistence.
//!
//! Choices made where the reference says `[UNKNOWN]` are listed in `crates/sandbox/EMULATOR.md`.

mod commands;
mod persist;
mod reporting;
mod seed;
mod state;
pub(crate) mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use http::StatusCode;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use state::Account;
pub use wire::AUTH_ERROR_BODY;

/// How `readonly`/`give`/`can_administer` are written in `getsfdata` (reference §3.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagStyle {
    /// `"0"` / `"1"` (what real-world clients see; the default).
    #[default]
    String,
    /// `0` / `1` (what the documentation shows).
    Int,
    /// `false` / `true` (an Elastic fixture).
    Bool,
}

/// What one seeded account holds. Deterministic for a given `seed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedOptions {
    pub users: usize,
    pub groups: usize,
    pub folders: usize,
    pub events: usize,
    pub seed: u64,
}

impl SeedOptions {
    /// Largest `users` accepted (ten times the biggest customer the client is benchmarked for).
    pub const MAX_USERS: usize = 1_000_000;
    pub const MAX_GROUPS: usize = 100_000;
    pub const MAX_FOLDERS: usize = 1_000_000;
    /// Largest `events` accepted (~24 bytes each in memory).
    pub const MAX_EVENTS: usize = 20_000_000;

    /// Refuses sizes that would exhaust memory (they arrive from the control API and the CLI),
    /// naming the field and the value.
    pub fn validate(&self) -> Result<(), SandboxError> {
        for (field, value, max) in [
            ("users", self.users, Self::MAX_USERS),
            ("groups", self.groups, Self::MAX_GROUPS),
            ("folders", self.folders, Self::MAX_FOLDERS),
            ("events", self.events, Self::MAX_EVENTS),
        ] {
            if value > max {
                return Err(SandboxError::invalid(
                    field,
                    value.to_string(),
                    format!("at most {max}"),
                ));
            }
        }
        Ok(())
    }
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self {
            users: 50,
            groups: 5,
            folders: 10,
            events: 500,
            seed: 1,
        }
    }
}

/// `Debug` hides the provisioning hash (only the first stdout line shows it, on purpose).
#[derive(Clone, Serialize, Deserialize)]
pub struct AccountSpec {
    pub cid: u64,
    pub provhash: String,
    pub name: String,
    /// IANA zone for reporting times and `from`/`to` (default `US/Eastern`).
    pub time_zone: String,
    pub seed: SeedOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastPassConfig {
    pub accounts: Vec<AccountSpec>,
    pub flag_style: FlagStyle,
    /// Largest `getuserdata` page served; larger requests are clamped (reference: [UNKNOWN]).
    pub max_pagesize: u32,
    /// Unpaged `getdetailedsfdata` over this many folders answers HTTP 429 (`None`: never).
    pub detailed_sf_unpaged_limit: Option<usize>,
    /// Serve `application/json` instead of the real `text/xml;charset=UTF-8`.
    pub json_content_type: bool,
}

/// A summary of one account, for the control API and the sandbox's first stdout line. `Debug`
/// hides the provisioning hash.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccountInfo {
    pub cid: u64,
    pub provhash: String,
    pub name: String,
    pub time_zone: String,
    /// Directory users (what `getuserdata` counts in `total`).
    pub users: usize,
    /// Pending invitations (listed only in `invited`).
    #[serde(default)]
    pub invited: usize,
    pub groups: usize,
    pub folders: usize,
    pub events: usize,
}

impl std::fmt::Debug for AccountSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSpec")
            .field("cid", &self.cid)
            .field("provhash", &"***")
            .field("name", &self.name)
            .field("time_zone", &self.time_zone)
            .field("seed", &self.seed)
            .finish()
    }
}

impl std::fmt::Debug for AccountInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountInfo")
            .field("cid", &self.cid)
            .field("provhash", &"***")
            .field("name", &self.name)
            .field("time_zone", &self.time_zone)
            .field("users", &self.users)
            .field("invited", &self.invited)
            .field("groups", &self.groups)
            .field("folders", &self.folders)
            .field("events", &self.events)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("no account with cid {0}")]
    UnknownAccount(u64),
    #[error("an account with cid {0} already exists")]
    DuplicateAccount(u64),
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("state file {path}: {message}")]
    StateFile { path: String, message: String },
}

impl SandboxError {
    /// [`SandboxError::Invalid`]: `field` refused `value` for `reason`.
    pub(crate) fn invalid(
        field: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        SandboxError::Invalid {
            field,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

impl Default for LastPassConfig {
    /// One account (cid 12345678, provhash `"0123…"`), string flags, pagesize cap 2000,
    /// unpaged `getdetailedsfdata` refused over 500 folders, `text/xml` content type.
    fn default() -> Self {
        Self {
            accounts: vec![AccountSpec::default()],
            flag_style: FlagStyle::String,
            max_pagesize: 2000,
            detailed_sf_unpaged_limit: Some(crate::server::DEFAULT_DETAILED_SF_LIMIT),
            json_content_type: false,
        }
    }
}

impl Default for AccountSpec {
    fn default() -> Self {
        Self {
            cid: 12345678,
            provhash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            name: "Acme Corp".into(),
            time_zone: "US/Eastern".into(),
            seed: SeedOptions::default(),
        }
    }
}

type AccountRef = Arc<RwLock<Account>>;

pub(crate) struct Inner {
    config: RwLock<LastPassConfig>,
    clock: Clock,
    accounts: RwLock<BTreeMap<u64, AccountRef>>,
    /// `updateemail` limiter: key → times (µs) of accepted requests in the last second.
    limiter: Mutex<HashMap<String, VecDeque<i64>>>,
}

/// The emulator. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct LastPass {
    inner: Arc<Inner>,
}

impl LastPass {
    pub fn new(config: LastPassConfig, clock: Clock) -> Result<Self, SandboxError> {
        let mut accounts = BTreeMap::new();
        let now = clock.now_us();
        for spec in &config.accounts {
            if accounts.contains_key(&spec.cid) {
                return Err(SandboxError::DuplicateAccount(spec.cid));
            }
            let acc = seed::generate(spec.clone(), now)?;
            accounts.insert(spec.cid, Arc::new(RwLock::new(acc)));
        }
        Ok(Self::from_parts(config, clock, accounts))
    }

    fn from_parts(
        config: LastPassConfig,
        clock: Clock,
        accounts: BTreeMap<u64, AccountRef>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config: RwLock::new(config),
                clock,
                accounts: RwLock::new(accounts),
                limiter: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// `POST /enterpriseapi.php`. Needs `ConnectInfo<SocketAddr>` (serve with
    /// `into_make_service_with_connect_info`) for `IP_Address` and the `updateemail` limit.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/enterpriseapi.php", axum::routing::any(wire::handle))
            .with_state(self.clone())
    }

    pub fn clock(&self) -> Clock {
        self.inner.clock.clone()
    }

    pub fn accounts(&self) -> Vec<AccountInfo> {
        self.inner
            .accounts
            .read()
            .values()
            .map(|a| a.read().info())
            .collect()
    }

    /// The cids of every account, in order (cheaper than [`LastPass::accounts`], which counts).
    pub(crate) fn cids(&self) -> Vec<u64> {
        self.inner.accounts.read().keys().copied().collect()
    }

    /// Every account back to its seeded state.
    pub fn reset(&self) {
        let now = self.inner.clock.now_us();
        let accounts: Vec<AccountRef> = self.inner.accounts.read().values().cloned().collect();
        for acc in accounts {
            let spec = acc.read().spec.clone();
            if let Ok(fresh) = seed::generate(spec, now) {
                *acc.write() = fresh;
            }
        }
        self.inner.limiter.lock().clear();
    }

    /// Replaces one account's data with freshly generated seed data.
    pub fn reseed(&self, cid: u64, seed: SeedOptions) -> Result<AccountInfo, SandboxError> {
        let acc = self.account(cid).ok_or(SandboxError::UnknownAccount(cid))?;
        let mut spec = acc.read().spec.clone();
        spec.seed = seed;
        let fresh = seed::generate(spec.clone(), self.inner.clock.now_us())?;
        let info = fresh.info();
        *acc.write() = fresh;
        self.update_spec(spec);
        Ok(info)
    }

    pub fn add_account(&self, spec: AccountSpec) -> Result<AccountInfo, SandboxError> {
        if self.inner.accounts.read().contains_key(&spec.cid) {
            return Err(SandboxError::DuplicateAccount(spec.cid));
        }
        let acc = seed::generate(spec.clone(), self.inner.clock.now_us())?;
        let info = acc.info();
        let mut map = self.inner.accounts.write();
        if map.contains_key(&spec.cid) {
            return Err(SandboxError::DuplicateAccount(spec.cid));
        }
        map.insert(spec.cid, Arc::new(RwLock::new(acc)));
        drop(map);
        self.inner.config.write().accounts.push(spec);
        Ok(info)
    }

    /// The stored record of one user (every field, including ones the API hides), or `None`.
    pub fn inspect_user(&self, cid: u64, username: &str) -> Option<serde_json::Value> {
        let acc = self.account(cid)?;
        let acc = acc.read();
        let u = acc.user_by_name(username)?;
        Some(commands::inspect_user(&acc, u))
    }

    /// Counts and non-user state of an account (groups, folders, pushed sites, pending email
    /// changes, last events).
    pub fn inspect_account(&self, cid: u64) -> Option<serde_json::Value> {
        let acc = self.account(cid)?;
        let acc = acc.read();
        Some(commands::inspect_account(&acc))
    }

    /// Appends realistic user activity (logins, failed logins, site changes, shared-folder
    /// actions) with times in `[from_us, to_us)`, about `per_hour` events per virtual hour,
    /// deterministic for `seed`. Returns how many events were written.
    pub fn simulate_activity(
        &self,
        cid: u64,
        from_us: i64,
        to_us: i64,
        per_hour: f64,
        seed: u64,
    ) -> Result<usize, SandboxError> {
        let acc = self.account(cid).ok_or(SandboxError::UnknownAccount(cid))?;
        let mut acc = acc.write();
        Ok(seed::simulate(&mut acc, from_us, to_us, per_hour, seed))
    }

    /// Writes the whole state (config included) to `path`, atomically.
    pub fn save(&self, path: &Path) -> Result<(), SandboxError> {
        persist::save(self, path)
    }

    /// Loads a state written by [`LastPass::save`].
    pub fn load(path: &Path, clock: Clock) -> Result<Self, SandboxError> {
        let (config, accounts) = persist::load(path)?;
        let accounts = accounts
            .into_iter()
            .map(|a| (a.spec.cid, Arc::new(RwLock::new(a))))
            .collect();
        Ok(Self::from_parts(config, clock, accounts))
    }

    // ----- additions beyond the fixed contract -----

    /// A copy of the current configuration (account specs reflect `add_account`/`reseed`).
    pub fn config(&self) -> LastPassConfig {
        self.inner.config.read().clone()
    }

    pub fn set_flag_style(&self, style: FlagStyle) {
        self.inner.config.write().flag_style = style;
    }

    pub fn set_json_content_type(&self, on: bool) {
        self.inner.config.write().json_content_type = on;
    }

    pub fn set_max_pagesize(&self, n: u32) {
        self.inner.config.write().max_pagesize = n.max(1);
    }

    pub fn set_detailed_sf_unpaged_limit(&self, limit: Option<usize>) {
        self.inner.config.write().detailed_sf_unpaged_limit = limit;
    }

    /// Sets an account's master-password expiry policy (days; `None` = no policy), which
    /// `expiredmasterpwlist` reads. Default 90 days.
    pub fn set_password_expiry_days(
        &self,
        cid: u64,
        days: Option<u32>,
    ) -> Result<(), SandboxError> {
        let acc = self.account(cid).ok_or(SandboxError::UnknownAccount(cid))?;
        acc.write().password_expiry_days = days;
        Ok(())
    }

    /// Simulates one login of `username` now (virtual clock): writes a `Log in` event (or a
    /// `Failed Login Attempt` for a disabled user), accepts a pending invitation, and completes
    /// a pending `updateemail` change. `Ok(false)` when the user does not exist.
    pub fn simulate_login(&self, cid: u64, username: &str) -> Result<bool, SandboxError> {
        let acc = self.account(cid).ok_or(SandboxError::UnknownAccount(cid))?;
        let mut acc = acc.write();
        let Some(id) = acc.user_id(username) else {
            return Ok(false);
        };
        let now = self.inner.clock.now_us();
        seed::login(&mut acc, id, now);
        Ok(true)
    }

    /// Runs one API request without HTTP: `(status, body)` exactly as the endpoint answers.
    pub fn execute(
        &self,
        body: &[u8],
        content_type: Option<&str>,
        peer: IpAddr,
    ) -> (StatusCode, Vec<u8>) {
        commands::execute(self, body, content_type, peer).into_parts()
    }

    pub(crate) fn json_content_type(&self) -> bool {
        self.inner.config.read().json_content_type
    }

    pub(crate) fn account(&self, cid: u64) -> Option<AccountRef> {
        self.inner.accounts.read().get(&cid).cloned()
    }

    fn update_spec(&self, spec: AccountSpec) {
        let mut cfg = self.inner.config.write();
        if let Some(s) = cfg.accounts.iter_mut().find(|s| s.cid == spec.cid) {
            *s = spec;
        } else {
            cfg.accounts.push(spec);
        }
    }
}
