//! `lpbridge connection add|list|update|test|remove`, on the store.

use clap::Subcommand;
use lastpass::UserQuery;
use lp_types::{Cid, ConnectionId};

use super::{Ctx, read_secret};
use crate::connections::{already_exists, endpoint_from_env};
use crate::error::{Error, Result};
use crate::output::{Emitter, write_one};
use crate::records::ConnectionRecord;
use crate::store::{ConnectionPatch, ConnectionSummary, NewConnection, StoreError};

#[derive(Debug, Subcommand)]
pub enum ConnectionCmd {
    /// Store a connection (the provisioning hash encrypted). The hash is read from stdin or a
    /// hidden prompt, never from arguments; the endpoint is --endpoint, else LPBRIDGE_ENDPOINT,
    /// else LastPass's.
    #[command(
        after_help = "Example:\n  lpbridge connection add prod --cid 8771312 --endpoint https://lastpass.com/enterpriseapi.php --provhash-stdin < provhash.txt"
    )]
    Add {
        /// Connection name (use it with --connection NAME or the x-account-id header): letters,
        /// digits, '-', '_', '.'.
        name: ConnectionId,
        /// The account number (cid) from the Admin Console dashboard.
        #[arg(long)]
        cid: Cid,
        /// Read the provisioning hash from stdin instead of prompting.
        #[arg(long)]
        provhash_stdin: bool,
        /// The account's time zone (IANA name, e.g. Europe/Berlin), for event times.
        #[arg(long, value_name = "TZ", value_parser = parse_time_zone)]
        time_zone: Option<chrono_tz::Tz>,
        /// Replace an existing connection of that name.
        #[arg(long)]
        overwrite: bool,
    },
    /// List stored connections (never their secrets).
    #[command(after_help = "Example:\n  lpbridge connection list --format json")]
    List,
    /// Change a stored connection: its endpoint (--endpoint), provisioning hash
    /// (--provhash-stdin) and/or time zone.
    #[command(
        after_help = "Example:\n  lpbridge connection update prod --endpoint https://lastpass.eu/enterpriseapi.php\n  lpbridge connection update prod --provhash-stdin < new-provhash.txt"
    )]
    Update {
        /// Connection name.
        name: ConnectionId,
        /// Read a new provisioning hash from stdin.
        #[arg(long)]
        provhash_stdin: bool,
        /// The account's time zone (IANA name, e.g. Europe/Berlin).
        #[arg(long, value_name = "TZ", value_parser = parse_time_zone, conflicts_with = "clear_time_zone")]
        time_zone: Option<chrono_tz::Tz>,
        /// Forget the stored time zone.
        #[arg(long)]
        clear_time_zone: bool,
    },
    /// Probe the credentials with one `getuserdata` call and report the account (CID) and the
    /// auth type (`api_key`).
    #[command(after_help = "Example:\n  lpbridge connection test prod")]
    Test {
        /// Connection to test (default: the credentials lpbridge would use).
        name: Option<ConnectionId>,
    },
    /// Delete a stored connection.
    #[command(after_help = "Example:\n  lpbridge connection remove prod")]
    Remove {
        /// Connection name.
        name: ConnectionId,
    },
}

/// An IANA time zone name; the error names the value.
fn parse_time_zone(s: &str) -> std::result::Result<chrono_tz::Tz, String> {
    s.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        format!(
            "{:?} is not a time zone: use an IANA name such as Europe/Berlin or UTC",
            lp_types::shown(s)
        )
    })
}

fn record(c: ConnectionSummary, status: Option<&str>) -> ConnectionRecord {
    ConnectionRecord {
        name: c.id.into_inner(),
        account: c.cid.to_string(),
        endpoint: c.endpoint.to_string(),
        auth_type: "api_key",
        time_zone: c.time_zone.map(|t| t.name().to_owned()),
        status: status.map(str::to_owned),
        users: None,
    }
}

pub async fn run(ctx: &Ctx, cmd: ConnectionCmd) -> Result<()> {
    match cmd {
        ConnectionCmd::Add {
            name,
            cid,
            provhash_stdin,
            time_zone,
            overwrite,
        } => {
            // Checked before anything is opened or read.
            crate::store::validate_connection_id(&name)?;
            // The endpoint: `--endpoint URL`, else LPBRIDGE_ENDPOINT, else the US host.
            let endpoint = match ctx.global.endpoint.clone() {
                Some(e) => e,
                None => endpoint_from_env()?,
            };
            let store = ctx.store().await?;
            // Refused before prompting; the insert refuses a duplicate again (atomically).
            if !overwrite && store.connection_summary(&name).await?.is_some() {
                return Err(already_exists(&name));
            }
            let provhash = read_secret(
                "provisioning hash",
                "--provhash-stdin",
                provhash_stdin,
                true,
            )?
            .ok_or_else(|| Error::usage("a provisioning hash is required"))?;
            let new = NewConnection {
                id: name.clone(),
                cid,
                endpoint,
                provhash,
                time_zone,
            };
            let saved = match store.create_connection(new, overwrite).await {
                Err(StoreError::Conflict { .. }) => return Err(already_exists(&name)),
                other => other?,
            };
            write_one(ctx.format, ctx.stdout(), &record(saved, Some("saved")))?;
            Ok(())
        }
        ConnectionCmd::List => {
            // Listing never creates a store.
            let list = match ctx.existing_store().await? {
                Some(store) => store.list_connections().await?,
                None => Vec::new(),
            };
            if list.is_empty()
                && let Some(note) = ctx.location()?.legacy_profiles_note()
            {
                crate::note!("{note}");
            }
            let mut e = Emitter::new::<ConnectionRecord>(ctx.format, ctx.stdout());
            for c in list {
                e.emit(&record(c, None))?;
            }
            e.finish()?;
            Ok(())
        }
        ConnectionCmd::Update {
            name,
            provhash_stdin,
            time_zone,
            clear_time_zone,
        } => {
            let time_zone = match (time_zone, clear_time_zone) {
                (Some(tz), _) => Some(Some(tz)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            if ctx.global.endpoint.is_none() && !provhash_stdin && time_zone.is_none() {
                return Err(Error::usage(
                    "nothing to update: give --endpoint URL, --provhash-stdin, --time-zone TZ \
                     or --clear-time-zone",
                ));
            }
            // A missing store has no such connection: nothing is created to say so.
            let Some(store) = ctx.existing_store().await? else {
                return Err(not_found(&name));
            };
            if store.connection_summary(&name).await?.is_none() {
                return Err(not_found(&name));
            }
            let provhash = if provhash_stdin {
                read_secret("provisioning hash", "--provhash-stdin", true, true)?
            } else {
                None
            };
            let patch = ConnectionPatch {
                endpoint: ctx.global.endpoint.clone(),
                provhash,
                time_zone,
            };
            let updated = match store.update_connection(&name, patch).await {
                Err(StoreError::NotFound { .. }) => return Err(not_found(&name)),
                other => other?,
            };
            write_one(ctx.format, ctx.stdout(), &record(updated, Some("updated")))?;
            Ok(())
        }
        ConnectionCmd::Test { name } => {
            let ctx2;
            let ctx = if let Some(n) = name {
                ctx2 = Ctx::new(super::GlobalArgs {
                    connection: Some(n),
                    format: Some(ctx.format),
                    ..ctx.global.clone()
                });
                &ctx2
            } else {
                ctx
            };
            let built = ctx.built()?;
            let client = &built.client;
            let page = client.user_page(&UserQuery::default(), 1, 0).await?;
            let rec = ConnectionRecord {
                name: built.source.clone(),
                account: client.cid().to_string(),
                endpoint: built.endpoint.to_string(),
                auth_type: "api_key",
                time_zone: None,
                status: Some("ok".into()),
                users: Some(page.total),
            };
            write_one(ctx.format, ctx.stdout(), &rec)?;
            Ok(())
        }
        ConnectionCmd::Remove { name } => {
            let removed = match ctx.existing_store().await? {
                Some(store) => store.delete_connection(&name).await?,
                None => false,
            };
            if removed {
                crate::note!("removed connection {:?}", name.as_str());
                Ok(())
            } else {
                Err(not_found(&name))
            }
        }
    }
}

fn not_found(name: &ConnectionId) -> Error {
    Error::NotFound(format!(
        "no connection named {:?} (see `lpbridge connection list`)",
        name.as_str()
    ))
}
