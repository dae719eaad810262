//! `lpbridge serve`: configuration (file, environment, flags), the embedded sandbox default,
//! the first-run API key, and the HTTP server's life cycle.
//!
//! Precedence: command-line flags, then `LPBRIDGE_*` environment variables (clap reads both),
//! then the config file (`--config` / `LPBRIDGE_CONFIG`, TOML), then the defaults below.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lp_types::{Cid, ConnectionId, InvalidValue, Secret};
use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::events::service::{EventService, EventSettings};
use crate::http::{self, App, ClientSettings, Settings};
use crate::store::{NewConnection, Store};

/// The connection id of the embedded sandbox.
pub const SANDBOX_CONNECTION: &str = "sandbox";
/// The one-shot claim that guards the first-run key (one replica prints it, once).
const BOOTSTRAP_CLAIM: &str = "bootstrap_api_key";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// When to start the embedded LastPass sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// With SQLite, when no connection exists yet (or the embedded one does).
    Auto,
    /// Always (also on PostgreSQL).
    On,
    /// Never.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The config file (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub sandbox: Option<SandboxMode>,
    /// Users in the embedded sandbox's demo data.
    pub sandbox_users: Option<usize>,
    pub snapshot_ttl_secs: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub log_format: Option<LogFormat>,
    /// `http://` endpoints on non-loopback hosts (off: https only).
    pub allow_insecure_endpoints: Option<bool>,
    pub upstream_timeout_secs: Option<u64>,
    pub upstream_attempts: Option<u32>,
    pub upstream_max_in_flight: Option<usize>,
    /// SCIM `DELETE /Users/{id}`: deactivate (default), remove or delete.
    pub scim_delete_action: Option<String>,
    /// The LastPass e-mail domain for SCIM users whose userName is not an e-mail.
    pub scim_email_domain: Option<String>,
    /// Seconds between polls of each watched connection's event log (default 30).
    pub events_poll_secs: Option<u64>,
    /// Event sinks fed from every watched connection (`[[sinks]]` tables, see
    /// [`crate::events::sinks::config`]); `lpbridge events watch --config` reads them too.
    pub sinks: Option<Vec<crate::events::sinks::SinkConfig>>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!(
                "cannot read the config file {}: {e}",
                path.display()
            ))
        })?;
        toml::from_str(&text)
            .map_err(|e| Error::config(format!("{}: {}", path.display(), e.message())))
    }
}

/// Everything `serve` runs with, after merging.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub sandbox: SandboxMode,
    pub sandbox_users: usize,
    pub settings: Settings,
    /// Event watchers and sinks (`events_poll_secs`, `[[sinks]]`).
    pub events: EventSettings,
}

/// Values from flags or the environment (None = not given).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub sandbox: Option<SandboxMode>,
    pub sandbox_users: Option<usize>,
    pub snapshot_ttl_secs: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub allow_insecure_endpoints: Option<bool>,
    pub scim_delete_action: Option<String>,
    pub scim_email_domain: Option<String>,
}

impl ServeOptions {
    pub fn merge(
        o: Overrides,
        file: FileConfig,
        default_data_dir: impl FnOnce() -> Result<PathBuf>,
    ) -> Result<Self> {
        let listen_raw = o
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_raw.parse::<SocketAddr>().map_err(|_| {
            InvalidValue::new(
                "listen",
                &listen_raw,
                "must be an address:port, e.g. 127.0.0.1:8080",
            )
        })?;
        let data_dir = match o.data_dir.or(file.data_dir) {
            Some(d) => d,
            None => default_data_dir()?,
        };
        let ttl = o.snapshot_ttl_secs.or(file.snapshot_ttl_secs).unwrap_or(30);
        let max_body = o.max_body_bytes.or(file.max_body_bytes).unwrap_or(1 << 20);
        if max_body < 1024 {
            return Err(InvalidValue::new(
                "max_body_bytes",
                max_body.to_string(),
                "must be at least 1024",
            )
            .into());
        }
        let sandbox_users = o.sandbox_users.or(file.sandbox_users).unwrap_or(2000);
        // The same bounds as `--sandbox-users` (the file is not checked by clap).
        if !(1..=1_000_000).contains(&sandbox_users) {
            return Err(InvalidValue::new(
                "sandbox_users",
                sandbox_users.to_string(),
                "must be from 1 to 1000000",
            )
            .into());
        }
        let delete_raw = o.scim_delete_action.or(file.scim_delete_action);
        let scim_delete_action = crate::unified::parse_delete_action(delete_raw.as_deref())
            .map_err(|_| {
                InvalidValue::new(
                    "scim_delete_action",
                    delete_raw.clone().unwrap_or_default(),
                    "must be deactivate, remove or delete",
                )
            })?;
        let scim_email_domain = o
            .scim_email_domain
            .or(file.scim_email_domain)
            .map(|d| d.trim().trim_start_matches('@').to_lowercase())
            .filter(|d| !d.is_empty());
        if let Some(d) = &scim_email_domain
            && lp_types::Email::parse(&format!("user@{d}")).is_err()
        {
            return Err(InvalidValue::new(
                "scim_email_domain",
                d.clone(),
                "must be an e-mail domain such as example.com",
            )
            .into());
        }
        let poll = file.events_poll_secs.unwrap_or(30);
        if !(1..=3600).contains(&poll) {
            return Err(InvalidValue::new(
                "events_poll_secs",
                poll.to_string(),
                "must be from 1 to 3600",
            )
            .into());
        }
        let sinks = file.sinks.unwrap_or_default();
        crate::events::sinks::SinkConfig::validate_all(&sinks).map_err(|e| match e {
            crate::events::sinks::SinkConfigError::Invalid(v) => Error::Invalid(v),
            other => Error::config(format!("sinks: {other}")),
        })?;
        let defaults = ClientSettings::default();
        let client = ClientSettings {
            timeout: file
                .upstream_timeout_secs
                .map_or(defaults.timeout, Duration::from_secs),
            attempts: file.upstream_attempts.unwrap_or(defaults.attempts).max(1),
            max_in_flight: file
                .upstream_max_in_flight
                .unwrap_or(defaults.max_in_flight)
                .clamp(1, 64),
        };
        let events = EventSettings {
            poll: Duration::from_secs(poll),
            sinks,
            timeout: client.timeout,
            attempts: client.attempts,
            ..EventSettings::default()
        };
        Ok(ServeOptions {
            events,
            listen,
            data_dir,
            database_url: o.database_url.or(file.database_url),
            sandbox: o.sandbox.or(file.sandbox).unwrap_or(SandboxMode::Auto),
            sandbox_users,
            settings: Settings {
                max_body_bytes: max_body,
                snapshot_ttl: Duration::from_secs(ttl),
                client,
                allow_insecure_endpoints: o
                    .allow_insecure_endpoints
                    .or(file.allow_insecure_endpoints)
                    .unwrap_or(false),
                scim_delete_action,
                scim_email_domain,
            },
        })
    }
}

/// What a running service started with.
pub struct Started {
    pub addr: SocketAddr,
    pub app: App,
    /// The first-run key, when this process created it.
    pub bootstrap_key: Option<Secret>,
    #[cfg(feature = "sandbox")]
    pub sandbox: Option<sandbox::SandboxHandle>,
    /// The event watchers and dispatchers.
    events: Option<EventService>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Started {
    /// `http://ADDR`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, lets in-flight ones finish, stops the sandbox (saving it).
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        match self.server.await {
            Ok(r) => r.map_err(Error::Io)?,
            Err(e) => tracing::warn!(error = %e, "server task failed"),
        }
        if let Some(ev) = self.events {
            // Releases the leases, so another replica takes over at once.
            ev.shutdown(Duration::from_secs(10)).await;
        }
        #[cfg(feature = "sandbox")]
        if let Some(sb) = self.sandbox {
            sb.shutdown()
                .await
                .map_err(|e| Error::config(format!("sandbox: {e}")))?;
        }
        self.app.store.close().await;
        Ok(())
    }
}

/// Starts the embedded sandbox when `mode` says so and points the `sandbox` connection at it.
#[cfg(feature = "sandbox")]
async fn embedded_sandbox(
    store: &Store,
    opts: &ServeOptions,
) -> Result<Option<sandbox::SandboxHandle>> {
    let id = ConnectionId::new(SANDBOX_CONNECTION)?;
    let wanted = match opts.sandbox {
        SandboxMode::Off => false,
        SandboxMode::On => true,
        SandboxMode::Auto => {
            opts.database_url
                .as_deref()
                .is_none_or(|u| u.starts_with("sqlite:"))
                && (store.connection_count().await? == 0
                    || store.get_connection(&id).await?.is_some())
        }
    };
    if !wanted {
        return Ok(None);
    }
    let existed = store.get_connection(&id).await?.is_some();
    let seed = sandbox::lastpass::SeedOptions {
        users: opts.sandbox_users,
        groups: (opts.sandbox_users / 100).clamp(3, 200),
        folders: (opts.sandbox_users / 50).clamp(4, 400),
        events: (opts.sandbox_users * 10).clamp(100, 200_000),
        seed: 42,
    };
    let config = sandbox::SandboxConfig::with_seed(seed)
        .with_state_file(opts.data_dir.join("sandbox-state.json"))
        .with_activity(sandbox::activity::ActivityConfig::default());
    let sb = sandbox::spawn(config)
        .await
        .map_err(|e| Error::config(format!("cannot start the embedded sandbox: {e}")))?;
    let acct = sb.primary_account();
    let endpoint = lastpass::parse_endpoint(&sb.lastpass_endpoint())?;
    store
        .create_connection(
            NewConnection {
                id: id.clone(),
                cid: Cid(acct.cid),
                endpoint,
                provhash: Secret::new(acct.provhash),
                time_zone: Some(chrono_tz::US::Eastern),
            },
            true,
        )
        .await?;
    if !existed {
        // The demo connection is watched from the start (`PATCH /events/watcher` turns it off).
        store.set_events_watch(&id, true).await?;
    }
    if let Err(e) = crate::msp::register_sandbox(store, &sb).await {
        tracing::warn!(error = %e, "could not connect the sandbox's LastPass REST API for the MSP import");
    }
    tracing::warn!(
        endpoint = %sb.lastpass_endpoint(),
        cid = acct.cid,
        users = opts.sandbox_users,
        "no LastPass connection is configured: started the built-in LastPass SANDBOX (demo data, \
         not a real account) and connected it as \"sandbox\"; add a real account with \
         `lpbridge connection add` or POST /connections, or pass --sandbox off"
    );
    Ok(Some(sb))
}

/// Creates the first-run API key exactly once per store (across replicas and restarts).
async fn bootstrap_key(store: &Store) -> Result<Option<Secret>> {
    if !store.claim_once(BOOTSTRAP_CLAIM).await? {
        return Ok(None);
    }
    // The claim is taken first so that two replicas never both print a key; should creating it
    // fail now, say how to get one (no first-run key is printed again).
    let (info, key) = store.create_api_key("bootstrap", false).await.inspect_err(|e| {
        tracing::error!(error = %e, "could not create the first API key; create one with `lpbridge apikey create`");
    })?;
    tracing::info!(key_id = %info.id, "created the first API key (read-write); it is printed once on stdout");
    Ok(Some(key))
}

/// Opens the store, starts the embedded sandbox if due, creates the first key, binds and serves.
pub async fn start(opts: ServeOptions) -> Result<Started> {
    let store = Store::open(opts.database_url.as_deref(), &opts.data_dir).await?;
    tracing::info!(store = %store.target(), backend = store.backend().as_str(), "store open");
    #[cfg(feature = "sandbox")]
    let sandbox = embedded_sandbox(&store, &opts).await?;
    #[cfg(not(feature = "sandbox"))]
    if opts.sandbox == SandboxMode::On {
        return Err(Error::config(
            "this lpbridge was built without the `sandbox` feature",
        ));
    }
    let bootstrap_key = bootstrap_key(&store).await?;
    let events = EventService::start(store.clone(), opts.events.clone())
        .await
        .map_err(|e| Error::config(format!("event sinks: {e}")))?;
    let app = App::new(store, opts.settings.clone());
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| Error::config(format!("cannot listen on {}: {e}", opts.listen)))?;
    let addr = listener.local_addr()?;
    let router = http::router(app.clone());
    let (shutdown, mut rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
    });
    tracing::info!(url = %format!("http://{addr}"), "lpbridge serving (OpenAPI at /openapi.json)");
    Ok(Started {
        addr,
        app,
        bootstrap_key,
        #[cfg(feature = "sandbox")]
        sandbox,
        events: Some(events),
        server,
        shutdown,
    })
}

/// The first stdout line: where the service is and, on first run only, the API key.
pub fn banner(s: &Started) -> serde_json::Value {
    #[cfg(feature = "sandbox")]
    let sandbox = s.sandbox.as_ref().map(|sb| {
        json!({"endpoint": sb.lastpass_endpoint(), "control": sb.control_url(), "connection": SANDBOX_CONNECTION})
    });
    #[cfg(not(feature = "sandbox"))]
    let sandbox: Option<serde_json::Value> = None;
    json!({
        "url": s.url(),
        "openapi": format!("{}/openapi.json", s.url()),
        "api_key": s.bootstrap_key.as_ref().map(|k| k.expose().to_owned()),
        "sandbox": sandbox,
    })
}

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(opts: ServeOptions) -> Result<()> {
    let started = start(opts).await?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", banner(&started));
        let _ = out.flush();
    }
    if started.bootstrap_key.is_some() {
        crate::note!(
            "lpbridge: the api_key above is shown once; store it now (`lpbridge apikey create` makes more)"
        );
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    started.shutdown().await
}

pub(crate) async fn wait_for_signal() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Result<PathBuf> {
        Ok(PathBuf::from("/tmp/lpbridge-default"))
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file = FileConfig {
            listen: Some("0.0.0.0:9000".into()),
            snapshot_ttl_secs: Some(60),
            max_body_bytes: Some(4096),
            sandbox_users: Some(50),
            ..FileConfig::default()
        };
        let o = Overrides {
            listen: Some("127.0.0.1:9001".into()),
            ..Overrides::default()
        };
        let opts = ServeOptions::merge(o, file, dir).unwrap();
        assert_eq!(opts.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(opts.settings.snapshot_ttl, Duration::from_secs(60));
        assert_eq!(opts.settings.max_body_bytes, 4096);
        assert_eq!(opts.sandbox_users, 50);
        assert_eq!(opts.sandbox, SandboxMode::Auto);
        assert_eq!(opts.data_dir, PathBuf::from("/tmp/lpbridge-default"));
    }

    #[test]
    fn event_keys_come_from_the_file() {
        let file: FileConfig = toml::from_str(
            "events_poll_secs = 5\n[[sinks]]\ntype = \"file\"\npath = \"/tmp/e.jsonl\"\n",
        )
        .unwrap();
        let opts = ServeOptions::merge(Overrides::default(), file, dir).unwrap();
        assert_eq!(opts.events.poll, Duration::from_secs(5));
        assert_eq!(opts.events.sinks.len(), 1);
        let defaults =
            ServeOptions::merge(Overrides::default(), FileConfig::default(), dir).unwrap();
        assert_eq!(defaults.events.poll, Duration::from_secs(30));
        let bad: FileConfig = toml::from_str("events_poll_secs = 0").unwrap();
        let e = ServeOptions::merge(Overrides::default(), bad, dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("events_poll_secs"), "{e}");
        let e = toml::from_str::<FileConfig>("[[sinks]]\ntype = \"pigeon\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"pigeon\""), "{e}");
    }

    #[test]
    fn out_of_range_file_values_are_refused_by_name() {
        for (file, field) in [
            (
                FileConfig {
                    sandbox_users: Some(0),
                    ..FileConfig::default()
                },
                "sandbox_users",
            ),
            (
                FileConfig {
                    sandbox_users: Some(50_000_000),
                    ..FileConfig::default()
                },
                "sandbox_users",
            ),
            (
                FileConfig {
                    max_body_bytes: Some(10),
                    ..FileConfig::default()
                },
                "max_body_bytes",
            ),
            (
                FileConfig {
                    listen: Some("nowhere".into()),
                    ..FileConfig::default()
                },
                "listen",
            ),
        ] {
            let e = ServeOptions::merge(Overrides::default(), file, dir)
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{e}");
        }
    }
}
