//! `lpbridge sandbox`: arguments and runner.
//!
//! [`run`] starts the sandbox, writes one JSON object as the **first line of stdout**
//! (`{"lastpass":{"endpoint":…,"cid":…,"provhash":…,"accounts":[…]},"control":…}`), flushes,
//! and serves until Ctrl-C or SIGTERM, then saves the state file if one was given. Logs go
//! through `tracing` (the binary points its subscriber at stderr).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::activity::ActivityConfig;
use crate::clock::Clock;
use crate::faults::{FaultConfig, FaultRule};
use crate::lastpass::{FlagStyle, SandboxError, SeedOptions};
use crate::server::{self, SandboxConfig, SandboxHandle};

/// How `getsfdata` writes `readonly`/`give`/`can_administer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlagStyleArg {
    /// "0" / "1" (what real-world clients see)
    String,
    /// 0 / 1 (what the documentation shows)
    Int,
    /// false / true
    Bool,
}

impl From<FlagStyleArg> for FlagStyle {
    fn from(v: FlagStyleArg) -> Self {
        match v {
            FlagStyleArg::String => FlagStyle::String,
            FlagStyleArg::Int => FlagStyle::Int,
            FlagStyleArg::Bool => FlagStyle::Bool,
        }
    }
}

/// Run an offline emulator of the LastPass Enterprise API, with seed data, fault injection,
/// simulated activity and a control API under /_sandbox, plus ConnectWise Manage (under /cw)
/// and Autotask (under /autotask) emulators and the managed-companies part of the LastPass REST
/// API (under /business/v1).
///
/// The first line on stdout is one JSON object with the endpoints and credentials, e.g.
/// {"lastpass":{"endpoint":"http://127.0.0.1:8787/enterpriseapi.php","cid":8771312,"provhash":"…"},
///  "connectwise":{"site":"http://127.0.0.1:8787/cw","company_id":"lpbridge","public_key":"…","private_key":"…","client_id":"…",…},
///  "autotask":{"discovery_url":"http://127.0.0.1:8787/autotask/atservicesrest","username":"…","secret":"…","integration_code":"…",…},
///  "lastpass_rest":{"base_url":"http://127.0.0.1:8787/business/v1","api_key":"lpkey_…","cid":8771312,…},
///  "control":"http://127.0.0.1:8787/_sandbox"}
///
/// Example:
///   lpbridge sandbox --users 500 --events 20000 --fault 'getuserdata:429:0.1' \
///       --fault '*:latency=50..200ms' --activity-per-hour 120 --state-file sandbox.json
///   lpbridge sandbox --listen 127.0.0.1:0 --psa-companies 500 --psa-contacts 2000 --psa-seed 3
///   lpbridge sandbox --msp-companies 200 --msp-licenses 5000 --msp-fault 'users.add:429:0.2'
#[derive(Debug, Clone, Args)]
#[command(verbatim_doc_comment)]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port (read it from the first stdout line).
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Users in each seeded account.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub users: usize,
    /// Groups in each seeded account.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub groups: usize,
    /// Shared folders in each seeded account.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub folders: usize,
    /// Past audit events in each seeded account.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub events: usize,
    /// Seed of the generated data (same seed, same data).
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Extra accounts beside the default one (cids 8771313, 8771314, …).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub accounts: usize,
    /// Time zone of the accounts' reporting times (IANA name).
    #[arg(long, default_value = "US/Eastern", value_name = "TZ")]
    pub time_zone: String,

    /// How getsfdata writes permission flags.
    #[arg(long, value_enum, default_value_t = FlagStyleArg::String)]
    pub flag_style: FlagStyleArg,
    /// Answer with Content-Type application/json instead of LastPass's text/xml;charset=UTF-8.
    #[arg(long)]
    pub json_content_type: bool,
    /// Largest getuserdata page served (bigger requests are clamped).
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub max_pagesize: u32,
    /// Unpaged getdetailedsfdata over this many shared folders answers HTTP 429 (0: never).
    #[arg(long, default_value_t = server::DEFAULT_DETAILED_SF_LIMIT, value_name = "N")]
    pub detailed_sf_limit: usize,
    /// Per-account request-rate limit (requests per second); over it the answer is HTTP 429.
    #[arg(long, value_name = "RPS")]
    pub rate_limit: Option<f64>,

    /// Inject a fault: CMD[@CID]:KIND[:PROBABILITY[:COUNT]]. CMD is a command name or '*';
    /// KIND is an HTTP status (429, 500, 503…), drop, truncate, malformed, latency=MS or
    /// latency=MIN..MAXms. Repeatable. E.g. 'getuserdata:429:0.1', '*:latency=50..200ms',
    /// 'reporting@8771312:drop:1:3' (the next 3 reporting calls of that account).
    #[arg(long = "fault", value_name = "SPEC", value_parser = parse_fault)]
    pub faults: Vec<FaultRule>,
    /// Seed of the fault RNG (probabilities and latency draws).
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub fault_seed: u64,

    /// Generate about this many audit events per virtual hour in each account (0: none).
    #[arg(long, default_value_t = 0.0, value_name = "N")]
    pub activity_per_hour: f64,
    /// How often the activity generator fills the elapsed window, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub activity_tick_ms: u64,

    /// Companies seeded in each PSA emulator (ConnectWise and Autotask) [default: 2500 in
    /// ConnectWise, 3000 in Autotask].
    #[arg(long, value_name = "N")]
    pub psa_companies: Option<usize>,
    /// Contacts seeded in each PSA emulator [default: 12500 in ConnectWise, 9000 in Autotask].
    #[arg(long, value_name = "N")]
    pub psa_contacts: Option<usize>,
    /// Seed of both PSA emulators' data and credentials (same seed, same data and keys)
    /// [default: each emulator's own].
    #[arg(long, value_name = "S")]
    pub psa_seed: Option<u64>,
    /// Autotask requests per rolling hour before its threshold error (0: unlimited)
    /// [default: 10000, Autotask's].
    #[arg(long, value_name = "N")]
    pub autotask_hourly_limit: Option<u64>,

    /// Managed companies seeded in the MSP account of the LastPass REST API emulator.
    #[arg(long, default_value_t = crate::msp::DEFAULT_COMPANIES, value_name = "N")]
    pub msp_companies: usize,
    /// Users per seeded managed company (± 1).
    #[arg(long, default_value_t = crate::msp::DEFAULT_USERS_PER_COMPANY, value_name = "N")]
    pub msp_users: usize,
    /// Seeded managed companies named exactly like a ConnectWise or Autotask seed company
    /// ("potential duplicates" for the import).
    #[arg(long, default_value_t = crate::msp::DEFAULT_PSA_DUPLICATES, value_name = "N")]
    pub msp_psa_duplicates: usize,
    /// The MSP's licence pool; adding an invited user fails once it is spent.
    #[arg(long, default_value_t = crate::msp::DEFAULT_LICENSES, value_name = "N")]
    pub msp_licenses: u32,
    /// Seed of the MSP data and its API key [default: the emulator's own].
    #[arg(long, value_name = "S")]
    pub msp_seed: Option<u64>,
    /// Polls of a create/update request answered "pending" before it completes.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub msp_complete_after_polls: u32,
    /// Inject a fault into the REST API: OP:KIND[:PROBABILITY[:COUNT]], OP being an operation
    /// (companies.list, companies.create, companies.get, companies.update, companies.detach,
    /// users.list, users.add, users.get, requests.get) or '*'. Repeatable.
    #[arg(long = "msp-fault", value_name = "SPEC", value_parser = parse_fault)]
    pub msp_faults: Vec<FaultRule>,

    /// Load the state from this file if it exists; save it there on Ctrl-C / SIGTERM.
    #[arg(long, value_name = "PATH")]
    pub state_file: Option<PathBuf>,

    /// Stop the virtual clock (move it with POST /_sandbox/clock/advance).
    #[arg(long)]
    pub frozen_clock: bool,
    /// Start the virtual clock at this time (RFC 3339, e.g. 2026-01-05T09:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start_time: Option<i64>,
}

fn parse_fault(s: &str) -> Result<FaultRule, String> {
    s.parse::<FaultRule>().map_err(|e| e.to_string())
}

fn parse_time(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_micros())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time (e.g. 2026-01-05T09:00:00Z): {e}"))
}

impl SandboxArgs {
    /// Turns the arguments into a [`SandboxConfig`], refusing bad values with a message that
    /// names the option and the value.
    pub fn to_config(&self) -> Result<SandboxConfig, SandboxError> {
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(SandboxError::invalid(
                "--time-zone",
                self.time_zone.clone(),
                "not an IANA time zone name",
            ));
        }
        if let Some(r) = self.rate_limit
            && (!r.is_finite() || r <= 0.0)
        {
            return Err(SandboxError::invalid(
                "--rate-limit",
                r.to_string(),
                "must be a positive number",
            ));
        }
        if !self.activity_per_hour.is_finite() || self.activity_per_hour < 0.0 {
            return Err(SandboxError::invalid(
                "--activity-per-hour",
                self.activity_per_hour.to_string(),
                "must be zero or a positive number",
            ));
        }
        if self.max_pagesize == 0 {
            return Err(SandboxError::invalid(
                "--max-pagesize",
                "0",
                "must be at least 1",
            ));
        }
        let seed = SeedOptions {
            users: self.users,
            groups: self.groups,
            folders: self.folders,
            events: self.events,
            seed: self.seed,
        };
        let mut config = SandboxConfig::with_seed(seed);
        config.listen = self.listen;
        for a in &mut config.lastpass.accounts {
            a.time_zone = self.time_zone.clone();
        }
        config = config.add_accounts(self.accounts);
        config.lastpass.flag_style = self.flag_style.into();
        config.lastpass.json_content_type = self.json_content_type;
        config.lastpass.max_pagesize = self.max_pagesize;
        config.lastpass.detailed_sf_unpaged_limit =
            (self.detailed_sf_limit > 0).then_some(self.detailed_sf_limit);
        config.faults = FaultConfig {
            rules: self.faults.clone(),
            seed: self.fault_seed,
            rate_limit_rps: self.rate_limit,
        };
        if self.activity_per_hour > 0.0 {
            config.activity = Some(ActivityConfig {
                per_hour: self.activity_per_hour,
                tick: Duration::from_millis(self.activity_tick_ms.max(1)),
                seed: self.seed,
            });
        }
        let cw = match self.psa_seed {
            Some(seed) => crate::connectwise::ConnectWiseConfig::with_seed(seed),
            None => crate::connectwise::ConnectWiseConfig::default(),
        };
        let (companies, contacts) = (
            self.psa_companies.unwrap_or(cw.companies),
            self.psa_contacts.unwrap_or(cw.contacts),
        );
        let cw = cw.sized(companies, contacts);
        let mut at = match self.psa_seed {
            Some(seed) => crate::autotask::AutotaskConfig::seeded(seed),
            None => crate::autotask::AutotaskConfig::default(),
        };
        let (companies, contacts) = (
            self.psa_companies.unwrap_or(at.companies),
            self.psa_contacts.unwrap_or(at.contacts),
        );
        at = at.with_counts(companies, contacts);
        if let Some(n) = self.autotask_hourly_limit {
            at.hourly_limit = (n > 0).then_some(n);
        }
        config.connectwise = cw;
        config.autotask = at;
        let mut msp = match self.msp_seed {
            Some(seed) => crate::msp::MspConfig::with_seed(seed),
            None => crate::msp::MspConfig::default(),
        }
        .sized(self.msp_companies, self.msp_users)
        .with_licenses(self.msp_licenses);
        msp.psa_duplicates = self.msp_psa_duplicates;
        msp.complete_after_polls = self.msp_complete_after_polls;
        msp.faults.rules = self.msp_faults.clone();
        if let Some(r) = msp.faults.rules.iter().find(|r| {
            r.cmd
                .as_deref()
                .is_some_and(|c| c != "*" && !crate::msp::api::Op::ALL.iter().any(|o| o.key() == c))
        }) {
            return Err(SandboxError::invalid(
                "--msp-fault",
                r.to_string(),
                "unknown operation; expected * or companies.list, companies.create, companies.get, \
                 companies.update, companies.detach, users.list, users.add, users.get, requests.get",
            ));
        }
        config.msp = msp;
        config.state_file = self.state_file.clone();
        let start = self.start_time.unwrap_or_else(|| Clock::system().now_us());
        config.clock = if self.frozen_clock {
            Clock::frozen(start)
        } else {
            let c = Clock::system();
            if self.start_time.is_some() {
                c.set_us(start);
            }
            c
        };
        Ok(config)
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `lpbridge sandbox` until Ctrl-C / SIGTERM: prints the services JSON as the first stdout
/// line, serves, then saves the state file (if any).
pub async fn run(args: SandboxArgs) -> Result<(), SandboxError> {
    run_until(args, print_services, terminated()).await
}

/// Writes `services_json()` as one line on stdout and flushes.
pub fn print_services(handle: &SandboxHandle) -> Result<(), SandboxError> {
    let line = serde_json::to_string(&handle.services_json()).expect("JSON value serialises");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .map_err(|e| SandboxError::invalid("stdout", "", e.to_string()))
}

/// [`run`] with the announcement and the stop signal supplied by the caller (for tests and
/// embedding): spawns, calls `on_ready`, serves until `stop` resolves, shuts down (saving the
/// state file if configured).
pub async fn run_until(
    args: SandboxArgs,
    on_ready: impl FnOnce(&SandboxHandle) -> Result<(), SandboxError>,
    stop: impl Future<Output = ()>,
) -> Result<(), SandboxError> {
    let config = args.to_config()?;
    let handle = server::spawn(config).await?;
    if let Err(e) = on_ready(&handle) {
        let _ = handle.shutdown().await;
        return Err(e);
    }
    tracing::info!(
        endpoint = %handle.lastpass_endpoint(),
        control = %handle.control_url(),
        "sandbox ready"
    );
    stop.await;
    tracing::info!("shutting down");
    let state_file = handle.state_file().map(|p| p.display().to_string());
    handle.shutdown().await?;
    if let Some(path) = state_file {
        // stdout carries only the services line; humans read stderr.
        let _ = writeln!(std::io::stderr(), "sandbox state saved to {path}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SandboxArgs,
    }

    fn parse(v: &[&str]) -> Result<SandboxArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("sandbox").chain(v.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn parses_options_into_config() {
        let a = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--users",
            "7",
            "--accounts",
            "2",
            "--fault",
            "getuserdata:429:0.1",
            "--fault",
            "*:latency=50..200ms",
            "--rate-limit",
            "5",
            "--frozen-clock",
            "--start-time",
            "2026-01-05T09:00:00Z",
            "--flag-style",
            "int",
            "--activity-per-hour",
            "30",
        ])
        .unwrap();
        let c = a.to_config().unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.lastpass.accounts.len(), 3);
        assert_eq!(c.lastpass.accounts[0].seed.users, 7);
        assert_eq!(c.lastpass.flag_style, FlagStyle::Int);
        assert_eq!(c.faults.rules.len(), 2);
        assert_eq!(c.faults.rate_limit_rps, Some(5.0));
        assert!(c.clock.is_frozen());
        assert_eq!(c.clock.now_us(), 1_767_603_600_000_000);
        assert_eq!(c.activity.unwrap().per_hour, 30.0);
    }

    #[test]
    fn psa_options_size_and_seed_both_emulators() {
        let c = parse(&[
            "--psa-companies",
            "40",
            "--psa-contacts",
            "120",
            "--psa-seed",
            "9",
            "--autotask-hourly-limit",
            "500",
        ])
        .unwrap()
        .to_config()
        .unwrap();
        assert_eq!((c.connectwise.companies, c.connectwise.contacts), (40, 120));
        assert_eq!((c.autotask.companies, c.autotask.contacts), (40, 120));
        assert_eq!(c.connectwise.seed, 9);
        assert_eq!(c.autotask.seed, 9);
        assert_eq!(
            c.connectwise.private_key,
            crate::connectwise::ConnectWiseConfig::with_seed(9).private_key
        );
        assert_eq!(c.autotask.secret, crate::autotask::secret_for(9));
        assert_eq!(c.autotask.hourly_limit, Some(500));
        let c = parse(&["--autotask-hourly-limit", "0", "--psa-companies", "7"])
            .unwrap()
            .to_config()
            .unwrap();
        assert_eq!(c.autotask.hourly_limit, None);
        assert_eq!(c.autotask.companies, 7);
        assert_eq!(c.connectwise.companies, 7);
        // Unset: each emulator's defaults.
        let c = parse(&[]).unwrap().to_config().unwrap();
        let (cw, at) = (
            crate::connectwise::ConnectWiseConfig::default(),
            crate::autotask::AutotaskConfig::default(),
        );
        assert_eq!(c.connectwise.companies, cw.companies);
        assert_eq!(c.connectwise.private_key, cw.private_key);
        assert_eq!(c.autotask.contacts, at.contacts);
        assert_eq!(c.autotask.hourly_limit, at.hourly_limit);
    }

    #[test]
    fn msp_options_reach_the_config() {
        let c = parse(&[
            "--msp-companies",
            "12",
            "--msp-users",
            "2",
            "--msp-licenses",
            "40",
            "--msp-seed",
            "5",
            "--msp-complete-after-polls",
            "3",
            "--msp-fault",
            "users.add:429:1:2",
        ])
        .unwrap()
        .to_config()
        .unwrap();
        assert_eq!((c.msp.companies, c.msp.users_per_company), (12, 2));
        assert_eq!(c.msp.licenses, 40);
        assert_eq!(c.msp.api_key, crate::msp::api_key_for(5));
        assert_eq!(c.msp.complete_after_polls, 3);
        assert_eq!(c.msp.faults.rules.len(), 1);
        let e = parse(&["--msp-fault", "getuserdata:429"])
            .unwrap()
            .to_config()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--msp-fault"), "{e}");
    }

    #[test]
    fn help_mentions_the_syntax() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("CMD[@CID]:KIND"), "{help}");
        assert!(help.contains("--state-file"), "{help}");
    }

    #[test]
    fn defaults_are_sane() {
        let c = parse(&[]).unwrap().to_config().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(c.lastpass.accounts.len(), 1);
        assert_eq!(c.lastpass.accounts[0].cid, 8771312);
        assert_eq!(c.lastpass.accounts[0].time_zone, "US/Eastern");
        assert!(c.activity.is_none());
        assert!(!c.clock.is_frozen());
        assert!(c.faults.rules.is_empty());
        assert_eq!(c.lastpass.detailed_sf_unpaged_limit, Some(500));
        let c = parse(&["--detailed-sf-limit", "0"])
            .unwrap()
            .to_config()
            .unwrap();
        assert_eq!(c.lastpass.detailed_sf_unpaged_limit, None);
    }

    #[tokio::test]
    async fn run_until_announces_serves_and_saves_on_stop() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let args = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--users",
            "4",
            "--events",
            "5",
            "--frozen-clock",
            "--state-file",
            state.to_str().unwrap(),
        ])
        .unwrap();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_until(
            args,
            move |h| {
                let _ = ready_tx.send(serde_json::to_string(&h.services_json()).unwrap());
                Ok(())
            },
            async move {
                let _ = stop_rx.await;
            },
        ));
        let line = ready_rx.await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let endpoint = v["lastpass"]["endpoint"].as_str().unwrap();
        assert!(endpoint.starts_with("http://127.0.0.1:"));
        assert!(endpoint.ends_with("/enterpriseapi.php"));
        assert!(!state.exists());
        stop_tx.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(state.exists(), "state saved on stop");
    }

    #[test]
    fn refuses_bad_values_naming_them() {
        let e = parse(&["--fault", "getuserdata:4xx"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("getuserdata:4xx"), "{e}");
        let e = parse(&["--start-time", "yesterday"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("yesterday"), "{e}");
        let e = parse(&["--time-zone", "Mars/Olympus"])
            .unwrap()
            .to_config()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Mars/Olympus") && e.contains("--time-zone"),
            "{e}"
        );
    }
}
