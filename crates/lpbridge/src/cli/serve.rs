//! `lpbridge serve`: flags and environment for [`crate::serve`]. The store location comes from
//! the global `--data-dir` / `--database-url` (so `apikey` and `connection` commands work on the
//! same store a running service uses).

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::error::Result;
use crate::serve::{FileConfig, LogFormat, Overrides, SandboxMode, ServeOptions};

/// Options of `lpbridge serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "LPBRIDGE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// A TOML config file (keys: listen, data_dir, database_url, sandbox, sandbox_users,
    /// snapshot_ttl_secs, max_body_bytes, log_format, allow_insecure_endpoints,
    /// upstream_timeout_secs, upstream_attempts, upstream_max_in_flight, scim_delete_action,
    /// scim_email_domain, events_poll_secs, [[sinks]]).
    #[arg(long, env = "LPBRIDGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Start the built-in LastPass sandbox: auto = on SQLite when no connection exists yet.
    #[arg(long, env = "LPBRIDGE_SANDBOX", value_enum)]
    pub sandbox: Option<SandboxMode>,
    /// Users in the embedded sandbox's demo data [default: 2000].
    #[arg(long, env = "LPBRIDGE_SANDBOX_USERS", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub sandbox_users: Option<u64>,
    /// How long a directory snapshot serves reads before the next sweep [default: 30].
    #[arg(long, env = "LPBRIDGE_SNAPSHOT_TTL", value_name = "SECS")]
    pub snapshot_ttl: Option<u64>,
    /// Largest accepted request body [default: 1048576].
    #[arg(long, env = "LPBRIDGE_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Request log format on stderr [default: text].
    #[arg(long, env = "LPBRIDGE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// What SCIM `DELETE /Users/{id}` does to a LastPass account: deactivate (reversible),
    /// remove (from the company) or delete [default: deactivate]. Invitations are withdrawn.
    #[arg(long, env = "LPBRIDGE_SCIM_DELETE_ACTION", value_name = "ACTION")]
    pub scim_delete_action: Option<String>,
    /// For SCIM users whose userName is not an e-mail and who have no `emails`: their LastPass
    /// e-mail is `<userName>@DOMAIN` [default: none; such users are refused with 400].
    #[arg(long, env = "LPBRIDGE_SCIM_EMAIL_DOMAIN", value_name = "DOMAIN")]
    pub scim_email_domain: Option<String>,
}

pub async fn run(ctx: &Ctx, args: ServeArgs) -> Result<()> {
    let file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let location = ctx.location()?;
    let overrides = Overrides {
        listen: args.listen,
        data_dir: ctx.global.data_dir.clone(),
        database_url: location
            .database_url
            .as_ref()
            .map(|u| u.expose().to_owned()),
        sandbox: args.sandbox,
        sandbox_users: args.sandbox_users.map(|n| n as usize),
        snapshot_ttl_secs: args.snapshot_ttl,
        max_body_bytes: args.max_body_bytes,
        allow_insecure_endpoints: None,
        scim_delete_action: args.scim_delete_action,
        scim_email_domain: args.scim_email_domain,
    };
    let opts = ServeOptions::merge(overrides, file, || location.data_dir())?;
    crate::serve::run(opts).await
}
