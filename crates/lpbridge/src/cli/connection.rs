//! `lpbridge connection add|list|test|remove`.

use clap::Subcommand;
use lastpass::UserQuery;
use lp_types::{Cid, ConnectionId};

use super::{Ctx, read_secret};
use crate::connections::{Profile, ProfileStore, already_exists, endpoint_from_env};
use crate::error::{Error, Result};
use crate::output::{Emitter, write_one};
use crate::records::ConnectionRecord;

#[derive(Debug, Subcommand)]
pub enum ConnectionCmd {
    /// Store a connection (encrypted). The provisioning hash is read from stdin or a hidden
    /// prompt, never from arguments.
    #[command(
        after_help = "Example:\n  lpbridge connection add prod --cid 8771312 --endpoint https://lastpass.com/enterpriseapi.php --provhash-stdin < provhash.txt"
    )]
    Add {
        /// Profile name (use it with --connection NAME).
        name: ConnectionId,
        /// The account number (cid) from the Admin Console dashboard.
        #[arg(long)]
        cid: Cid,
        /// Read the provisioning hash from stdin instead of prompting.
        #[arg(long)]
        provhash_stdin: bool,
        /// Replace an existing profile of that name.
        #[arg(long)]
        overwrite: bool,
    },
    /// List stored connections (never their secrets).
    #[command(after_help = "Example:\n  lpbridge connection list --format json")]
    List,
    /// Probe the credentials with one `getuserdata` call and report the account (CID) and the
    /// auth type (`api_key`).
    #[command(after_help = "Example:\n  lpbridge connection test prod")]
    Test {
        /// Profile to test (default: the credentials lpbridge would use).
        name: Option<ConnectionId>,
    },
    /// Delete a stored connection.
    #[command(after_help = "Example:\n  lpbridge connection remove prod")]
    Remove {
        /// Profile name.
        name: ConnectionId,
    },
}

pub async fn run(ctx: &Ctx, cmd: ConnectionCmd) -> Result<()> {
    match cmd {
        ConnectionCmd::Add {
            name,
            cid,
            provhash_stdin,
            overwrite,
        } => {
            // The endpoint: `--endpoint URL`, else LPBRIDGE_ENDPOINT, else the US host.
            let endpoint = match ctx.global.endpoint.clone() {
                Some(e) => e,
                None => endpoint_from_env()?,
            };
            let store = ProfileStore::from_env()?;
            // Refused before prompting; `add` checks again under the store's lock.
            if !overwrite && store.get(&name)?.is_some() {
                return Err(already_exists(&name));
            }
            let provhash = read_secret(
                "provisioning hash",
                "--provhash-stdin",
                provhash_stdin,
                true,
            )?
            .ok_or_else(|| Error::usage("a provisioning hash is required"))?;
            let profile = Profile {
                name: name.clone(),
                cid,
                endpoint: endpoint.to_string(),
                provhash,
            };
            store.add(&profile, overwrite)?;
            let rec = ConnectionRecord {
                name: name.into_inner(),
                account: cid.to_string(),
                endpoint: endpoint.to_string(),
                auth_type: "api_key",
                status: Some("saved".into()),
                users: None,
            };
            write_one(ctx.format, ctx.stdout(), &rec)?;
            Ok(())
        }
        ConnectionCmd::List => {
            let store = ProfileStore::from_env()?;
            let mut e = Emitter::new::<ConnectionRecord>(ctx.format, ctx.stdout());
            for p in store.list()? {
                e.emit(&ConnectionRecord {
                    name: p.name.into_inner(),
                    account: p.cid.to_string(),
                    endpoint: p.endpoint,
                    auth_type: "api_key",
                    status: None,
                    users: None,
                })?;
            }
            e.finish()?;
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
                status: Some("ok".into()),
                users: Some(page.total),
            };
            write_one(ctx.format, ctx.stdout(), &rec)?;
            Ok(())
        }
        ConnectionCmd::Remove { name } => {
            let store = ProfileStore::from_env()?;
            if store.remove(&name)? {
                crate::note!("removed connection {:?}", name.as_str());
                Ok(())
            } else {
                Err(Error::NotFound(format!(
                    "no connection named {:?}",
                    name.as_str()
                )))
            }
        }
    }
}
