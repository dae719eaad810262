//! Datto Autotask PSA REST API emulator, mounted under `/autotask`: discovery at
//! `/autotask/atservicesrest/versioninformation` and `.../v1.0/zoneInformation`, the zone at
//! `/autotask/ATServicesRest/V1.0/` (paths are case-insensitive, like the real service's).
//!
//! This module owns the emulator's configuration and shared state ([`Autotask`]); [`data`] the
//! rows, field tables and seed; [`filter`] the query language; [`api`] the HTTP surface
//! (discovery, header auth, queries, paging, limits); [`faults`] fault rules, limits and
//! counters; [`control`] the `/_sandbox/autotask` control API. Emulator choices for everything
//! the reference leaves open are listed in `crates/sandbox/AUTOTASK.md`.
//!
//! Contract with `server.rs` (keep these signatures): [`AutotaskConfig`] (`Default`,
//! `Clone`, `Debug`), [`Autotask::new`], [`Autotask::services_json`], [`router`] and
//! [`control_router`].

pub mod api;
pub mod control;
pub mod data;
pub mod faults;
pub mod filter;

use std::fmt;
use std::sync::{Arc, OnceLock};

use axum::Router;
use parking_lot::{Mutex, RwLock};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use data::{Company, Contact, Db, SeedSpec};
pub use faults::{FaultKind, FaultRule, Stats};

/// The default API user (Autotask API users have e-mail-like usernames).
pub const DEFAULT_USERNAME: &str = "lpbridge-api@sandbox-msp.example";
/// The default seed of the data and the credentials.
pub const DEFAULT_SEED: u64 = 7;

/// A deterministic API secret for `seed` (20 characters, like a generated Autotask password).
pub fn secret_for(seed: u64) -> String {
    draw(
        seed ^ 0x5345_4352_4554,
        20,
        b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789*$#@",
    )
}

/// A deterministic API tracking identifier (integration code) for `seed`.
pub fn integration_code_for(seed: u64) -> String {
    draw(seed ^ 0x434f_4445, 27, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
}

fn draw(seed: u64, n: usize, alphabet: &[u8]) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// Seed, credentials, limits and quirks of the emulated Autotask database.
#[derive(Clone)]
pub struct AutotaskConfig {
    /// Companies besides the local organisation (id 0). Default 3,000.
    pub companies: usize,
    /// Contacts spread over about 85% of the companies. Default 9,000.
    pub contacts: usize,
    /// Seed of the data (and, by default, of the credentials).
    pub seed: u64,
    pub username: String,
    pub secret: String,
    pub integration_code: String,
    /// `zoneName` and `ci` of `zoneInformation`.
    pub zone_name: String,
    pub ci: i64,
    /// Concurrent requests per (integration code, endpoint); default 3 [AT6].
    pub thread_limit: usize,
    /// Requests per rolling hour for the database; default 10,000 [AT6]; `None`: unlimited.
    pub hourly_limit: Option<u64>,
    /// `Retry-After` seconds on thread and threshold errors (default none: **GUESS**, Autotask
    /// does not reliably send it).
    pub limit_retry_after: Option<u64>,
    /// Add latency as usage climbs (0.5 s past 50% of the hourly limit, 1 s past 75% [AT8]).
    pub usage_latency: bool,
    /// `GET /{Entity}/{id}` of a missing row: 404 instead of `{"item":null}`.
    pub missing_item_404: bool,
    /// Answer a bad secret with an empty 401 body instead of `{"errors":["Authentication failed"]}`.
    pub empty_401_body: bool,
    /// Lock the API user after this many consecutive bad secrets (`None`: never).
    pub lock_after_failures: Option<u32>,
    /// Status of a permission refusal: 403 or 500 (both are seen [AT4]).
    pub forbidden_status: u16,
    pub faults: Vec<FaultRule>,
    pub fault_seed: u64,
}

impl Default for AutotaskConfig {
    fn default() -> Self {
        Self::seeded(DEFAULT_SEED)
    }
}

impl AutotaskConfig {
    /// Defaults with `seed` for the data and the credentials.
    pub fn seeded(seed: u64) -> Self {
        Self {
            companies: 3000,
            contacts: 9000,
            seed,
            username: DEFAULT_USERNAME.into(),
            secret: secret_for(seed),
            integration_code: integration_code_for(seed),
            zone_name: "America East 3".into(),
            ci: 29_683_512,
            thread_limit: 3,
            hourly_limit: Some(10_000),
            limit_retry_after: None,
            usage_latency: false,
            missing_item_404: false,
            empty_401_body: false,
            lock_after_failures: None,
            forbidden_status: 403,
            faults: Vec::new(),
            fault_seed: seed,
        }
    }

    /// `companies` and `contacts` rows.
    pub fn with_counts(mut self, companies: usize, contacts: usize) -> Self {
        self.companies = companies;
        self.contacts = contacts;
        self
    }
}

impl fmt::Debug for AutotaskConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutotaskConfig")
            .field("companies", &self.companies)
            .field("contacts", &self.contacts)
            .field("seed", &self.seed)
            .field("username", &self.username)
            .field("secret", &"***")
            .field("integration_code", &"***")
            .field("thread_limit", &self.thread_limit)
            .field("hourly_limit", &self.hourly_limit)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// The switches the control API can change at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub thread_limit: usize,
    pub hourly_limit: Option<u64>,
    pub limit_retry_after: Option<u64>,
    pub usage_latency: bool,
    pub missing_item_404: bool,
    pub empty_401_body: bool,
    pub lock_after_failures: Option<u32>,
    pub forbidden_status: u16,
    /// The API user is locked (401 with the lock message).
    pub locked: bool,
    /// Consecutive bad secrets so far.
    pub failed_logins: u32,
    /// Whether the API user may read companies and contacts.
    pub can_read_companies: bool,
    pub can_read_contacts: bool,
}

/// The API user's credentials. `Debug` hides the secret and the integration code.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
    pub integration_code: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: AutotaskConfig,
    /// Seeded on first use, so sandboxes that never touch Autotask pay nothing.
    db: OnceLock<RwLock<Db>>,
    faults: faults::Faults,
    settings: Mutex<Settings>,
}

/// The emulator's shared state (cheap to clone).
#[derive(Clone)]
pub struct Autotask {
    shared: Arc<Shared>,
}

impl fmt::Debug for Autotask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Autotask")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Autotask {
    pub fn new(config: AutotaskConfig) -> Self {
        let settings = Settings {
            thread_limit: config.thread_limit,
            hourly_limit: config.hourly_limit,
            limit_retry_after: config.limit_retry_after,
            usage_latency: config.usage_latency,
            missing_item_404: config.missing_item_404,
            empty_401_body: config.empty_401_body,
            lock_after_failures: config.lock_after_failures,
            forbidden_status: config.forbidden_status,
            locked: false,
            failed_logins: 0,
            can_read_companies: true,
            can_read_contacts: true,
        };
        let faults = faults::Faults::new(config.faults.clone(), config.fault_seed);
        Self {
            shared: Arc::new(Shared {
                config,
                db: OnceLock::new(),
                faults,
                settings: Mutex::new(settings),
            }),
        }
    }

    pub fn config(&self) -> &AutotaskConfig {
        &self.shared.config
    }

    pub fn credentials(&self) -> Credentials {
        let c = &self.shared.config;
        Credentials {
            username: c.username.clone(),
            secret: c.secret.clone(),
            integration_code: c.integration_code.clone(),
        }
    }

    fn db(&self) -> &RwLock<Db> {
        self.shared.db.get_or_init(|| {
            let c = &self.shared.config;
            RwLock::new(Db::seed(SeedSpec {
                companies: c.companies,
                contacts: c.contacts,
                seed: c.seed,
            }))
        })
    }

    /// Reads the database (seeding it on first use).
    pub fn read<R>(&self, f: impl FnOnce(&Db) -> R) -> R {
        f(&self.db().read())
    }

    /// Changes the database.
    pub fn write<R>(&self, f: impl FnOnce(&mut Db) -> R) -> R {
        f(&mut self.db().write())
    }

    /// Replaces the data with a fresh seed.
    pub fn reseed(&self, spec: SeedSpec) {
        let db = Db::seed(spec);
        *self.db().write() = db;
    }

    pub fn faults(&self) -> &faults::Faults {
        &self.shared.faults
    }

    /// Adds a fault rule; answers its id.
    pub fn add_fault(&self, rule: FaultRule) -> u64 {
        self.shared.faults.add(rule)
    }

    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    pub fn stats(&self) -> Stats {
        self.shared.faults.stats()
    }

    pub fn reset_stats(&self) {
        self.shared.faults.reset_stats();
    }

    pub fn settings(&self) -> Settings {
        self.shared.settings.lock().clone()
    }

    pub fn update_settings<R>(&self, f: impl FnOnce(&mut Settings) -> R) -> R {
        f(&mut self.shared.settings.lock())
    }

    /// What the sandbox's first stdout line says about this service; `site` is
    /// `http://127.0.0.1:PORT/autotask`.
    pub fn services_json(&self, site: &str) -> Value {
        let c = &self.shared.config;
        let root = site.strip_suffix("/autotask").unwrap_or(site);
        json!({
            "base_url": site,
            "discovery_url": format!("{site}/atservicesrest"),
            "zone_url": format!("{site}/ATServicesRest/"),
            "username": c.username,
            "secret": c.secret,
            "integration_code": c.integration_code,
            "control": format!("{root}/_sandbox/autotask"),
        })
    }
}

/// The API and discovery routes (nested under `/autotask`): one dispatcher, because paths are
/// matched case-insensitively and unknown routes answer in the Web API's own shapes.
pub fn router(at: Autotask) -> Router {
    Router::new().fallback(api::dispatch).with_state(at)
}

/// Control routes (nested under `/_sandbox/autotask`): add, rename, remove companies and
/// contacts; faults, limits, counters. Documented in `crates/sandbox/AUTOTASK.md`.
pub fn control_router(at: Autotask) -> Router {
    control::router(at)
}
