//! LastPass REST API emulator, managed-companies part (reference `psa-and-msp.md` §3.1, §3.3),
//! mounted under `/business`: the API at `/business/v1/…`, as at
//! `https://api.lastpass.com/business/v1/…`.
//!
//! This module owns the emulator's configuration and shared state ([`Msp`]): the MSP account
//! with its `api-key`, its licence pool in the older allocated-pool model, its managed
//! companies, their users and the asynchronous create/update requests. [`data`] holds the
//! records, the licence arithmetic, the seed and the JSON shapes; [`api`] the HTTP surface
//! (routing, faults, auth, paging, filters, ProblemDetails); [`control`] the
//! `/_sandbox/msp` control API. Faults, the per-account rate limit and the request counters
//! reuse the sandbox's own engine ([`crate::faults::Faults`]), keyed by operation name.
//! Every choice the reference leaves open is listed in `crates/sandbox/MSP.md`.
//!
//! Contract with `server.rs`: [`MspConfig`] (`Default`, `Clone`, `Debug`), [`Msp::new`],
//! [`Msp::services_json`], [`router`] and [`control_router`].

pub mod api;
pub mod control;
pub mod data;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::routing::any;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::autotask::AutotaskConfig;
use crate::clock::Clock;
use crate::connectwise::ConnectWiseConfig;
use crate::faults::{FaultConfig, Faults, Stats};
pub use data::{
    AccountStatus, Addon, Company, CompanyStatus, CompanyType, LicenseSummary, Origin, Problem,
    Tenant, User,
};

/// Where `server.rs` mounts [`router`].
pub const MOUNT: &str = "/business";
/// The API version prefix below [`MOUNT`].
pub const VERSION: &str = "/v1";
/// The MSP's licence pool by default.
pub const DEFAULT_LICENSES: u32 = 500;
/// Managed companies seeded by default.
pub const DEFAULT_COMPANIES: usize = 40;
/// Users per seeded company by default (± 1).
pub const DEFAULT_USERS_PER_COMPANY: usize = 3;
/// Seeded companies named like a PSA company, by default.
pub const DEFAULT_PSA_DUPLICATES: usize = 10;
/// Default seed of the data and the API key.
pub const DEFAULT_SEED: u64 = 20_260_201;
/// `max-results` bounds and default (reference §3.3).
pub const MAX_RESULTS: usize = 500;
pub const DEFAULT_MAX_RESULTS: usize = 10;

/// A deterministic API key `lpkey_<12 alphanumerics>_<40 alphanumerics>` (the shape of §3.3's
/// `lpkey_XXXXXXXXXXXX_YYYY…`; the length of the secret part is a **GUESS**).
pub fn api_key_for(seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c70_6b65_795f_6d73);
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut draw = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(ALNUM[rng.gen_range(0..ALNUM.len())]))
            .collect()
    };
    let id = draw(12);
    let secret = draw(40);
    format!("lpkey_{id}_{secret}")
}

/// Seed, credentials and behaviour of the emulated MSP account.
#[derive(Clone)]
pub struct MspConfig {
    /// The MSP's account number (also `parentId` of its direct managed companies).
    pub cid: u64,
    pub name: String,
    /// The whole key, `lpkey_<id>_<secret>`.
    pub api_key: String,
    /// The MSP's licence pool.
    pub licenses: u32,
    pub companies: usize,
    /// Users per seeded company (± 1, at least 1; 0 seeds none).
    pub users_per_company: usize,
    /// Seeded companies that take the exact name of a ConnectWise / Autotask seed company.
    pub psa_duplicates: usize,
    pub seed: u64,
    /// Polls of `GET /v1/requests/{id}` answered `pending` before the request completes.
    pub complete_after_polls: u32,
    /// Or complete once this much virtual time has passed since the request (`None`: polls only).
    pub complete_after_secs: Option<f64>,
    /// `Retry-After` seconds on 429 (rate limit or fault) and on 503 faults.
    pub retry_after_secs: u64,
    /// Fault rules (`cmd` = an operation name such as `users.add`), their RNG seed and the
    /// request-rate limit of the account.
    pub faults: FaultConfig,
}

impl Default for MspConfig {
    fn default() -> Self {
        Self::with_seed(DEFAULT_SEED)
    }
}

impl MspConfig {
    /// The default account (the sandbox's default cid and name, 500 licences, 40 companies of
    /// about 3 users, 10 of them named like PSA companies) with data and key from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            cid: crate::server::DEFAULT_CID,
            name: crate::server::DEFAULT_ACCOUNT_NAME.to_string(),
            api_key: api_key_for(seed),
            licenses: DEFAULT_LICENSES,
            companies: DEFAULT_COMPANIES,
            users_per_company: DEFAULT_USERS_PER_COMPANY,
            psa_duplicates: DEFAULT_PSA_DUPLICATES,
            seed,
            complete_after_polls: 1,
            complete_after_secs: Some(2.0),
            retry_after_secs: 1,
            faults: FaultConfig {
                seed,
                ..FaultConfig::default()
            },
        }
    }

    /// Sets the seeded counts.
    pub fn sized(mut self, companies: usize, users_per_company: usize) -> Self {
        self.companies = companies;
        self.users_per_company = users_per_company;
        self
    }

    /// Sets the licence pool.
    pub fn with_licenses(mut self, licenses: u32) -> Self {
        self.licenses = licenses;
        self
    }
}

impl fmt::Debug for MspConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MspConfig")
            .field("cid", &self.cid)
            .field("api_key", &"***")
            .field("licenses", &self.licenses)
            .field("companies", &self.companies)
            .field("users_per_company", &self.users_per_company)
            .field("psa_duplicates", &self.psa_duplicates)
            .field("seed", &self.seed)
            .field("complete_after_polls", &self.complete_after_polls)
            .field("complete_after_secs", &self.complete_after_secs)
            .finish_non_exhaustive()
    }
}

/// What the control API may change at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MspSettings {
    pub complete_after_polls: u32,
    pub complete_after_secs: Option<f64>,
    pub retry_after_secs: u64,
    /// The key may only read: writes answer 403.
    pub read_only: bool,
}

/// The key and account, as tests need them. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct MspCredentials {
    pub cid: u64,
    pub api_key: String,
}

impl fmt::Debug for MspCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MspCredentials")
            .field("cid", &self.cid)
            .field("api_key", &"***")
            .finish()
    }
}

struct Inner {
    config: MspConfig,
    /// The PSA emulators' configurations, for the names the seed borrows.
    cw: ConnectWiseConfig,
    at: AutotaskConfig,
    clock: Clock,
    /// The seeded state (kept for reset) and the live one, both made on first use.
    initial: OnceLock<Tenant>,
    live: OnceLock<Mutex<Tenant>>,
    settings: Mutex<MspSettings>,
    api_key: Mutex<String>,
    /// Problems the next created requests fail with (control API `fail-next`).
    fail_next: Mutex<VecDeque<Problem>>,
    faults: Faults,
}

/// The emulator's shared state (cheap to clone). Records are seeded on first use, so a sandbox
/// that never talks to the REST API pays nothing.
#[derive(Clone)]
pub struct Msp(Arc<Inner>);

impl fmt::Debug for Msp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Msp")
            .field("cid", &self.0.config.cid)
            .field("seeded", &self.0.initial.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Msp {
    /// `cw` and `at` are the PSA emulators' configurations: seeded companies borrow names (and
    /// contact e-mails) from the companies those configurations seed.
    pub fn new(
        config: MspConfig,
        cw: &ConnectWiseConfig,
        at: &AutotaskConfig,
        clock: Clock,
    ) -> Self {
        let settings = MspSettings {
            complete_after_polls: config.complete_after_polls,
            complete_after_secs: config.complete_after_secs,
            retry_after_secs: config.retry_after_secs,
            read_only: false,
        };
        let faults = Faults::new(config.faults.clone());
        Self(Arc::new(Inner {
            api_key: Mutex::new(config.api_key.clone()),
            config,
            cw: cw.clone(),
            at: at.clone(),
            clock,
            initial: OnceLock::new(),
            live: OnceLock::new(),
            settings: Mutex::new(settings),
            fail_next: Mutex::new(VecDeque::new()),
            faults,
        }))
    }

    /// What the sandbox's first stdout line says about this service; `base` is
    /// `http://127.0.0.1:PORT`.
    pub fn services_json(&self, base: &str) -> Value {
        json!({
            "base_url": format!("{base}{MOUNT}{VERSION}"),
            "api_key": *self.0.api_key.lock(),
            "cid": self.0.config.cid,
            "name": self.0.config.name,
            "control": format!("{base}/_sandbox/msp"),
        })
    }

    pub fn credentials(&self) -> MspCredentials {
        MspCredentials {
            cid: self.0.config.cid,
            api_key: self.0.api_key.lock().clone(),
        }
    }

    pub fn config(&self) -> &MspConfig {
        &self.0.config
    }

    /// Replaces the API key (the old one stops working).
    pub fn set_api_key(&self, key: &str) {
        *self.0.api_key.lock() = key.to_string();
    }

    pub fn settings(&self) -> MspSettings {
        self.0.settings.lock().clone()
    }

    pub fn set_settings(&self, s: MspSettings) {
        *self.0.settings.lock() = s;
    }

    pub fn now_us(&self) -> i64 {
        self.0.clock.now_us()
    }

    fn initial(&self) -> &Tenant {
        self.0.initial.get_or_init(|| {
            let c = &self.0.config;
            let psa = if c.psa_duplicates > 0 && c.companies > 0 {
                psa_names(&self.0.cw, &self.0.at)
            } else {
                Vec::new()
            };
            let spec = data::SeedSpec {
                cid: c.cid,
                name: c.name.clone(),
                licenses: c.licenses,
                companies: c.companies,
                users_per_company: c.users_per_company,
                psa_duplicates: c.psa_duplicates,
                seed: c.seed,
            };
            data::seed(&spec, &psa)
        })
    }

    fn live(&self) -> &Mutex<Tenant> {
        self.0
            .live
            .get_or_init(|| Mutex::new(self.initial().clone()))
    }

    /// Seeds now (benchmarks call this so the first request is not the one that pays).
    pub fn warm(&self) {
        let _ = self.live();
    }

    /// Runs `f` over the tenant (after completing the requests whose virtual time came).
    pub fn with_tenant<R>(&self, f: impl FnOnce(&mut Tenant) -> R) -> R {
        let after = self.settle_after_us();
        let mut t = self.live().lock();
        t.settle(self.now_us(), after);
        f(&mut t)
    }

    /// `complete_after_secs` in microseconds.
    fn settle_after_us(&self) -> Option<i64> {
        self.0
            .settings
            .lock()
            .complete_after_secs
            .map(|s| (s.max(0.0) * 1e6) as i64)
    }

    pub fn licenses(&self) -> LicenseSummary {
        self.with_tenant(|t| t.license_summary())
    }

    /// Sets the MSP's pool (it may go below what is allocated: nothing is taken back, but
    /// nothing more can be allocated or consumed until usage drops).
    pub fn set_licenses(&self, total: u32) -> LicenseSummary {
        self.with_tenant(|t| {
            t.licenses = total;
            t.license_summary()
        })
    }

    /// The next `count` created requests fail with `problem`.
    pub fn fail_next(&self, problem: Problem, count: usize) {
        let mut q = self.0.fail_next.lock();
        q.extend(std::iter::repeat_n(problem, count));
    }

    fn take_forced_failure(&self) -> Option<Problem> {
        self.0.fail_next.lock().pop_front()
    }

    /// Back to the seeded state (the key and settings too; faults and stats are kept).
    pub fn reset(&self) {
        let fresh = self.initial().clone();
        *self.live().lock() = fresh;
        *self.0.api_key.lock() = self.0.config.api_key.clone();
        let c = &self.0.config;
        *self.0.settings.lock() = MspSettings {
            complete_after_polls: c.complete_after_polls,
            complete_after_secs: c.complete_after_secs,
            retry_after_secs: c.retry_after_secs,
            read_only: false,
        };
        self.0.fail_next.lock().clear();
    }

    /// The fault rules, rate limit and counters of the REST surface.
    pub fn faults(&self) -> &Faults {
        &self.0.faults
    }

    /// Request counters, keyed by operation name (`companies.list`, `users.add`, … and `?` for
    /// unknown routes).
    pub fn stats(&self) -> Stats {
        self.0.faults.stats()
    }

    pub fn reset_stats(&self) {
        self.0.faults.reset_stats()
    }
}

/// Candidates for seeded names: ConnectWise companies that are not deleted, have the default
/// ("Active") status and the default ("Client") type, and Autotask companies that are active
/// customers (type 1) — the ones an import with the obvious filter brings in. Each comes with
/// the first valid e-mail of its first active contact.
fn psa_names(cw: &ConnectWiseConfig, at: &AutotaskConfig) -> Vec<data::PsaName> {
    use crate::connectwise::data::CommKind;
    let valid = |e: &str| lp_types::Email::parse(e).is_ok();
    let mut out = Vec::new();
    let d = crate::connectwise::data::seed(
        cw.companies,
        cw.contacts,
        cw.seed,
        cw.types.clone(),
        cw.statuses.clone(),
    );
    let active = d
        .statuses
        .iter()
        .find(|s| s.default_flag && !s.inactive_flag)
        .map(|s| s.id);
    let client = d.types.iter().find(|t| t.default_flag).map(|t| t.id);
    for c in d.companies.values() {
        if c.deleted
            || Some(c.status_id) != active
            || !client.is_some_and(|t| c.type_ids.contains(&t))
        {
            continue;
        }
        let email = d.by_company.get(&c.id).and_then(|ids| {
            ids.iter()
                .filter_map(|id| d.contacts.get(id))
                .filter(|k| !k.inactive)
                .flat_map(|k| k.comms.iter())
                .find(|m| m.kind == CommKind::Email && valid(&m.value))
                .map(|m| m.value.clone())
        });
        out.push(data::PsaName {
            psa: "connectwise",
            company_id: c.id as i64,
            name: c.name.clone(),
            email,
        });
    }
    let db = crate::autotask::Db::seed(crate::autotask::SeedSpec {
        companies: at.companies,
        contacts: at.contacts,
        seed: at.seed,
    });
    for c in db.companies.values() {
        if c.id == 0 || c.company_type != 1 || !c.is_active {
            continue;
        }
        let email = db.by_company.get(&c.id).and_then(|ids| {
            ids.iter()
                .filter_map(|id| db.contacts.get(id))
                .filter(|k| k.is_active)
                .flat_map(|k| k.emails.iter().flatten())
                .find(|e| valid(e))
                .cloned()
        });
        out.push(data::PsaName {
            psa: "autotask",
            company_id: c.id,
            name: c.name.clone(),
            email,
        });
    }
    out
}

/// The API routes (nested under `/business`).
pub fn router(msp: Msp) -> Router {
    Router::new()
        .route("/", any(api::handle))
        .route("/{*rest}", any(api::handle))
        .with_state(msp)
}

/// Control routes (nested under `/_sandbox/msp`).
pub fn control_router(msp: Msp) -> Router {
    control::router(msp)
}
