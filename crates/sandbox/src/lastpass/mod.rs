//! Emulator of the LastPass Enterprise API (`POST /enterpriseapi.php`), following
//! `shared/reference/lastpass-enterprise-api.md` §0–§6 and §10: per-account state, every command,
//! the wire quirks byte for byte, audit events, the seed generator and persistence.
//!
//! Choices made where the reference says `[UNKNOWN]` are listed in `crates/sandbox/EMULATOR.md`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;

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

#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// A summary of one account, for the control API and the sandbox's first stdout line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountInfo {
    pub cid: u64,
    pub provhash: String,
    pub name: String,
    pub time_zone: String,
    pub users: usize,
    pub groups: usize,
    pub folders: usize,
    pub events: usize,
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
    #[error("state file {path}: {message}")]
    StateFile { path: String, message: String },
}

/// The emulator. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct LastPass {
    _private: (),
}

#[allow(unused_variables)]
impl LastPass {
    pub fn new(config: LastPassConfig, clock: Clock) -> Result<Self, SandboxError> {
        todo!()
    }

    /// `POST /enterpriseapi.php`. Needs `ConnectInfo<SocketAddr>` (serve with
    /// `into_make_service_with_connect_info`) for `IP_Address` and the `updateemail` limit.
    pub fn router(&self) -> axum::Router {
        todo!()
    }

    pub fn clock(&self) -> Clock {
        todo!()
    }

    pub fn accounts(&self) -> Vec<AccountInfo> {
        todo!()
    }

    /// Every account back to its seeded state.
    pub fn reset(&self) {
        todo!()
    }

    /// Replaces one account's data with freshly generated seed data.
    pub fn reseed(&self, cid: u64, seed: SeedOptions) -> Result<AccountInfo, SandboxError> {
        todo!()
    }

    pub fn add_account(&self, spec: AccountSpec) -> Result<AccountInfo, SandboxError> {
        todo!()
    }

    /// The stored record of one user (every field, including ones the API hides), or `None`.
    pub fn inspect_user(&self, cid: u64, username: &str) -> Option<serde_json::Value> {
        todo!()
    }

    /// Counts and non-user state of an account (groups, folders, pushed sites, pending email
    /// changes, last events).
    pub fn inspect_account(&self, cid: u64) -> Option<serde_json::Value> {
        todo!()
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
        todo!()
    }

    /// Writes the whole state (config included) to `path`, atomically.
    pub fn save(&self, path: &Path) -> Result<(), SandboxError> {
        todo!()
    }

    /// Loads a state written by [`LastPass::save`].
    pub fn load(path: &Path, clock: Clock) -> Result<Self, SandboxError> {
        todo!()
    }
}
