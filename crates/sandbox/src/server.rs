//! Binds the sandbox's services on one port and hands back their URLs and credentials.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sandbox::lastpass::SandboxError> {
//! let sb = sandbox::spawn(sandbox::SandboxConfig::for_tests()).await?;
//! let endpoint = sb.lastpass_endpoint(); // http://127.0.0.1:PORT/enterpriseapi.php
//! let account = sb.primary_account(); // cid + provhash
//! # let _ = (endpoint, account);
//! sb.shutdown().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::activity::{self, ActivityConfig};
use crate::autotask::{self, Autotask, AutotaskConfig};
use crate::clock::Clock;
use crate::connectwise::{self, ConnectWise, ConnectWiseConfig};
use crate::control::{self, ControlState};
use crate::faults::{self, FaultConfig, Faults, Stats};
use crate::lastpass::{AccountSpec, LastPass, LastPassConfig, SandboxError, SeedOptions};
use crate::msp::{self, Msp, MspConfig};

/// The cid of the default account.
pub const DEFAULT_CID: u64 = 8_771_312;
/// The name of the default account.
pub const DEFAULT_ACCOUNT_NAME: &str = "Acme Corp";
/// The time zone of the default account.
pub const DEFAULT_TIME_ZONE: &str = "US/Eastern";
/// Unpaged `getdetailedsfdata` over this many shared folders answers HTTP 429 by default.
pub const DEFAULT_DETAILED_SF_LIMIT: usize = 500;
/// 2026-01-05 09:00:00 UTC, where [`SandboxConfig::for_tests`] freezes the clock.
pub const TEST_EPOCH_US: i64 = 1_767_603_600_000_000;

/// A deterministic 64-hex-character provisioning hash for an account.
pub fn provhash_for(cid: u64, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ cid.rotate_left(32) ^ 0x6c70_6272_6964_6765);
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An account spec with a derived provhash, `US/Eastern` and the given seed options.
pub fn account_spec(cid: u64, name: &str, seed: SeedOptions) -> AccountSpec {
    AccountSpec {
        cid,
        provhash: provhash_for(cid, seed.seed),
        name: name.to_string(),
        time_zone: DEFAULT_TIME_ZONE.to_string(),
        seed,
    }
}

/// The default account (cid 8771312, "Acme Corp") with `seed`.
pub fn default_account(seed: SeedOptions) -> AccountSpec {
    account_spec(DEFAULT_CID, DEFAULT_ACCOUNT_NAME, seed)
}

/// A LastPass configuration with one account and the emulator's defaults (string flags,
/// `text/xml` content type, 2,000-user pages, unpaged `getdetailedsfdata` refused with 429 over
/// [`DEFAULT_DETAILED_SF_LIMIT`] folders).
pub fn default_lastpass_config(seed: SeedOptions) -> LastPassConfig {
    LastPassConfig {
        accounts: vec![default_account(seed)],
        ..LastPassConfig::default()
    }
}

/// Everything [`spawn`] needs.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where to listen (default `127.0.0.1:0`: a free port).
    pub listen: SocketAddr,
    pub lastpass: LastPassConfig,
    /// Initial fault rules, RNG seed and the per-account request-rate limit.
    pub faults: FaultConfig,
    /// Background activity; `None` generates nothing on its own.
    pub activity: Option<ActivityConfig>,
    /// Loaded at spawn if it exists (the `lastpass` config is then ignored), saved at shutdown.
    pub state_file: Option<PathBuf>,
    pub clock: Clock,
    /// The ConnectWise Manage emulator, under `/cw`.
    pub connectwise: ConnectWiseConfig,
    /// The Autotask emulator, under `/autotask`.
    pub autotask: AutotaskConfig,
    /// The LastPass REST API (managed companies) emulator, under `/business`. Its seeded
    /// companies borrow names from the companies `connectwise` and `autotask` seed.
    pub msp: MspConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            lastpass: default_lastpass_config(SeedOptions::default()),
            faults: FaultConfig::default(),
            activity: None,
            state_file: None,
            clock: Clock::system(),
            connectwise: ConnectWiseConfig::default(),
            autotask: AutotaskConfig::default(),
            msp: MspConfig::default(),
        }
    }
}

impl SandboxConfig {
    /// One account seeded with `seed`, on a free loopback port, real time.
    pub fn with_seed(seed: SeedOptions) -> Self {
        Self {
            lastpass: default_lastpass_config(seed),
            ..Self::default()
        }
    }

    /// Small and fast: a clock frozen at [`TEST_EPOCH_US`], 20 users, 3 groups, 4 folders,
    /// 100 events, seed 42, no faults, no activity.
    pub fn for_tests() -> Self {
        Self {
            clock: Clock::frozen(TEST_EPOCH_US),
            ..Self::with_seed(SeedOptions {
                users: 20,
                groups: 3,
                folders: 4,
                events: 100,
                seed: 42,
            })
        }
    }

    /// Adds `n` more accounts (cids following the default one, names "Customer 1"…), each seeded
    /// like the first account but with its own seed.
    pub fn add_accounts(mut self, n: usize) -> Self {
        let first = self.lastpass.accounts.first().cloned();
        let base_cid = first.as_ref().map_or(DEFAULT_CID, |a| a.cid);
        let seed = first.as_ref().map(|a| a.seed.clone()).unwrap_or_default();
        for i in 1..=n as u64 {
            let mut s = seed.clone();
            s.seed = seed.seed.wrapping_add(i);
            // Wrapping: any base cid gives distinct cids without overflowing.
            let mut spec = account_spec(base_cid.wrapping_add(i), &format!("Customer {i}"), s);
            if let Some(first) = &first {
                spec.time_zone.clone_from(&first.time_zone);
            }
            self.lastpass.accounts.push(spec);
        }
        self
    }

    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Per-account request-rate limit (requests per second); over it, HTTP 429.
    pub fn with_rate_limit(mut self, rps: f64) -> Self {
        self.faults.rate_limit_rps = Some(rps);
        self
    }

    pub fn with_activity(mut self, activity: ActivityConfig) -> Self {
        self.activity = Some(activity);
        self
    }

    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

/// The credentials of one account. `Debug` hides the provisioning hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCredentials {
    pub cid: u64,
    pub provhash: String,
}

impl std::fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("cid", &self.cid)
            .field("provhash", &"***")
            .finish()
    }
}

/// A running sandbox. Dropping it stops the server too (without saving); prefer
/// [`SandboxHandle::shutdown`].
pub struct SandboxHandle {
    pub addr: SocketAddr,
    pub lastpass: LastPass,
    pub faults: Faults,
    pub clock: Clock,
    pub connectwise: ConnectWise,
    pub autotask: Autotask,
    /// The LastPass REST API (managed companies) emulator.
    pub msp: Msp,
    state_file: Option<PathBuf>,
    shutdown_tx: watch::Sender<bool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    activity: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("addr", &self.addr)
            .field("state_file", &self.state_file)
            .finish_non_exhaustive()
    }
}

impl SandboxHandle {
    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/enterpriseapi.php`
    pub fn lastpass_endpoint(&self) -> String {
        format!("{}/enterpriseapi.php", self.base_url())
    }

    /// `http://127.0.0.1:PORT/_sandbox`
    pub fn control_url(&self) -> String {
        format!("{}/_sandbox", self.base_url())
    }

    /// `http://127.0.0.1:PORT/cw`: the ConnectWise "site" (discovery and API below it).
    pub fn connectwise_site(&self) -> String {
        format!("{}/cw", self.base_url())
    }

    /// `http://127.0.0.1:PORT/autotask`: the Autotask discovery host (zone URLs point back here).
    pub fn autotask_base(&self) -> String {
        format!("{}/autotask", self.base_url())
    }

    /// `http://127.0.0.1:PORT/business/v1`: the LastPass REST API base URL (the real one is
    /// `https://api.lastpass.com/business/v1`).
    pub fn msp_base_url(&self) -> String {
        format!("{}{}{}", self.base_url(), msp::MOUNT, msp::VERSION)
    }

    /// The first account's cid and provhash.
    pub fn primary_account(&self) -> AccountCredentials {
        let a = self
            .lastpass
            .accounts()
            .into_iter()
            .next()
            // `spawn` refuses an emulator without accounts, and accounts are never removed.
            .expect("the sandbox has at least one account");
        AccountCredentials {
            cid: a.cid,
            provhash: a.provhash,
        }
    }

    /// What `lpbridge sandbox` prints as its first stdout line:
    /// `{"lastpass":{"endpoint":…,"cid":…,"provhash":…,"accounts":[{cid,provhash,name,time_zone}…]},`
    /// `"connectwise":{…},"autotask":{…},"lastpass_rest":{"base_url":…,"api_key":…,"cid":…,"name":…,"control":…},"control":…}`.
    pub fn services_json(&self) -> serde_json::Value {
        let accounts = self.lastpass.accounts();
        let list: Vec<_> = accounts
            .iter()
            .map(|a| json!({"cid": a.cid, "provhash": a.provhash, "name": a.name, "time_zone": a.time_zone}))
            .collect();
        let first = accounts.first();
        json!({
            "lastpass": {
                "endpoint": self.lastpass_endpoint(),
                "cid": first.map(|a| a.cid),
                "provhash": first.map(|a| a.provhash.clone()),
                "accounts": list,
            },
            "connectwise": self.connectwise.services_json(&self.connectwise_site()),
            "autotask": self.autotask.services_json(&self.autotask_base()),
            "lastpass_rest": self.msp.services_json(&self.base_url()),
            "control": self.control_url(),
        })
    }

    /// Request counters of the LastPass surface (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        self.faults.stats()
    }

    pub fn reset_stats(&self) {
        self.faults.reset_stats()
    }

    pub fn state_file(&self) -> Option<&std::path::Path> {
        self.state_file.as_deref()
    }

    /// Saves to the configured state file (no-op without one).
    pub fn save(&self) -> Result<(), SandboxError> {
        match &self.state_file {
            Some(p) => self.lastpass.save(p),
            None => Ok(()),
        }
    }

    /// Stops accepting connections, lets in-flight requests finish, stops the activity
    /// generator and saves the state file if one is configured.
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        let _ = self.shutdown_tx.send(true);
        if let Some(a) = self.activity.take() {
            let _ = a.await;
        }
        if let Some(s) = self.server.take() {
            match s.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "sandbox server ended with an error"),
                Err(e) => tracing::warn!(error = %e, "sandbox server task failed"),
            }
        }
        if let Some(path) = self.state_file.clone() {
            let lp = self.lastpass.clone();
            let p = path.clone();
            tokio::task::spawn_blocking(move || lp.save(&p))
                .await
                .map_err(|e| SandboxError::StateFile {
                    path: String::new(),
                    message: e.to_string(),
                })??;
            tracing::info!(path = %path.display(), "state saved");
        }
        Ok(())
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}

/// The whole app: the LastPass surface behind the fault layer, the PSA emulators under `/cw`
/// and `/autotask`, and the control API under `/_sandbox`. The REST API emulator is not part
/// of it (kept for callers of this signature); [`app_with_msp`] adds it.
pub fn app(state: ControlState, cw: ConnectWise, at: Autotask) -> Router {
    let lastpass = faults::layer(state.lastpass.router(), state.faults.clone());
    let control = control::router(state)
        .nest("/connectwise", connectwise::control_router(cw.clone()))
        .nest("/autotask", autotask::control_router(at.clone()));
    lastpass
        .nest("/cw", connectwise::router(cw))
        .nest("/autotask", autotask::router(at))
        .nest("/_sandbox", control)
}

/// [`app`] plus the LastPass REST API under `/business` and its control API under
/// `/_sandbox/msp`. The REST API has its own fault engine (in [`Msp`]), so the LastPass fault
/// layer, which reads Enterprise API envelopes, never sees its requests.
pub fn app_with_msp(state: ControlState, cw: ConnectWise, at: Autotask, msp: Msp) -> Router {
    let lastpass = faults::layer(state.lastpass.router(), state.faults.clone());
    let control = control::router(state)
        .nest("/connectwise", connectwise::control_router(cw.clone()))
        .nest("/autotask", autotask::control_router(at.clone()))
        .nest("/msp", msp::control_router(msp.clone()));
    lastpass
        .nest("/cw", connectwise::router(cw))
        .nest("/autotask", autotask::router(at))
        .nest(msp::MOUNT, msp::router(msp))
        .nest("/_sandbox", control)
}

/// Creates (or loads) the emulators, binds `config.listen` and serves until
/// [`SandboxHandle::shutdown`].
pub async fn spawn(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    let clock = config.clock.clone();
    let lastpass = {
        let clock = clock.clone();
        let state_file = config.state_file.clone();
        let lp_config = config.lastpass.clone();
        tokio::task::spawn_blocking(move || match state_file {
            Some(path) if path.exists() => {
                tracing::info!(path = %path.display(), "loading state");
                LastPass::load(&path, clock)
            }
            _ => LastPass::new(lp_config, clock),
        })
        .await
        .map_err(|e| {
            SandboxError::invalid("lastpass", "", format!("emulator setup failed: {e}"))
        })??
    };
    // `SandboxHandle::primary_account` relies on this (a state file may hold no account).
    if lastpass.cids().is_empty() {
        return Err(SandboxError::invalid(
            "accounts",
            "[]",
            "the sandbox needs at least one account",
        ));
    }
    for r in &config.faults.rules {
        r.validate()?;
    }
    let faults = Faults::new(config.faults.clone());
    let cannot_listen = |e: std::io::Error| SandboxError::Listen {
        addr: config.listen.to_string(),
        reason: e.to_string(),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(cannot_listen)?;
    let addr = listener.local_addr().map_err(cannot_listen)?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = ControlState {
        lastpass: lastpass.clone(),
        faults: faults.clone(),
        clock: clock.clone(),
        activity: config.activity.clone().unwrap_or_default(),
        state_file: config.state_file.clone(),
    };
    let cw = ConnectWise::new(config.connectwise.clone());
    let at = Autotask::new(config.autotask.clone());
    for r in &config.msp.faults.rules {
        r.validate()?;
    }
    let msp = Msp::new(
        config.msp.clone(),
        &config.connectwise,
        &config.autotask,
        clock.clone(),
    );
    let app = app_with_msp(state, cw.clone(), at.clone(), msp.clone());
    let mut rx = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        })
        .await
    });
    let activity = config
        .activity
        .clone()
        .filter(|a| a.per_hour > 0.0)
        .map(|a| activity::spawn(lastpass.clone(), clock.clone(), a, shutdown_rx));
    tracing::info!(%addr, "sandbox listening");
    Ok(SandboxHandle {
        addr,
        lastpass,
        faults,
        clock,
        connectwise: cw,
        autotask: at,
        msp,
        state_file: config.state_file,
        shutdown_tx,
        server: Some(server),
        activity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provhash_is_64_hex_and_deterministic() {
        let a = provhash_for(DEFAULT_CID, 1);
        assert_eq!(a.len(), 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(a, provhash_for(DEFAULT_CID, 1));
        assert_ne!(a, provhash_for(DEFAULT_CID, 2));
        assert_ne!(a, provhash_for(DEFAULT_CID + 1, 1));
    }

    #[test]
    fn extra_accounts_get_distinct_cids_and_hashes() {
        let c = SandboxConfig::for_tests().add_accounts(2);
        let cids: Vec<_> = c.lastpass.accounts.iter().map(|a| a.cid).collect();
        assert_eq!(cids, vec![DEFAULT_CID, DEFAULT_CID + 1, DEFAULT_CID + 2]);
        assert_ne!(
            c.lastpass.accounts[1].provhash,
            c.lastpass.accounts[2].provhash
        );
        assert_eq!(c.lastpass.accounts[0].name, "Acme Corp");
    }
}
