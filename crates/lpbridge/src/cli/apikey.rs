//! `lpbridge apikey create|list|revoke`: keys for `lpbridge serve`, in the same store (the same
//! `--data-dir` / `--database-url`) that a running service reads on every request.

use std::io::Write as _;

use clap::Subcommand;

use super::Ctx;
use crate::error::{Error, Result};
use crate::output::Emitter;
use crate::records::ApiKeyRecord;

#[derive(Debug, Subcommand)]
pub enum ApikeyCmd {
    /// Create a key and print it alone on stdout (one line; it is shown only this once).
    /// Notes go to stderr, so `KEY=$(lpbridge apikey create)` captures just the key.
    #[command(
        after_help = "Example:\n  KEY=$(lpbridge apikey create --read-only --name grafana --connection-scope prod)\n  curl -H \"Authorization: Bearer $KEY\" http://127.0.0.1:8080/unified/iam/users"
    )]
    Create {
        /// The key may only read (GET); writes are refused with 403.
        #[arg(long)]
        read_only: bool,
        /// A label to tell keys apart in `apikey list`.
        #[arg(long, value_name = "NAME", default_value = "cli")]
        name: String,
        /// Limit the key to this connection (repeatable); other `x-account-id`s answer 403 and
        /// the key cannot manage connections. Default: every connection.
        #[arg(long = "connection-scope", value_name = "ID")]
        connections: Vec<lp_types::ConnectionId>,
    },
    /// List keys (id, name, access, status, times), never the keys themselves.
    #[command(after_help = "Example:\n  lpbridge apikey list --format table")]
    List,
    /// Revoke a key by its id (the 12 characters after `lpb_`); every replica refuses it on
    /// its next request.
    #[command(after_help = "Example:\n  lpbridge apikey revoke k3v9x0q2m8ab")]
    Revoke {
        /// The key's id, as shown by `apikey list`.
        id: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: ApikeyCmd) -> Result<()> {
    match cmd {
        ApikeyCmd::Create {
            read_only,
            name,
            connections,
        } => {
            let store = ctx.store().await?;
            let scope = (!connections.is_empty()).then_some(connections.as_slice());
            let (info, key) = store.create_api_key_for(&name, read_only, scope).await?;
            // The key alone on stdout, flushed: scripts capture exactly this line.
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", key.expose())?;
            out.flush()?;
            crate::note!(
                "created API key {} ({:?}, {}) in {}; it is shown only once: store it now",
                info.id,
                info.name,
                if info.read_only {
                    "read-only"
                } else {
                    "read-write"
                },
                store.target()
            );
            Ok(())
        }
        ApikeyCmd::List => {
            let keys = match ctx.existing_store().await? {
                Some(store) => store.list_api_keys().await?,
                None => Vec::new(),
            };
            let mut e = Emitter::new::<ApiKeyRecord>(ctx.format, ctx.stdout());
            for k in keys {
                e.emit(&ApiKeyRecord::from(k))?;
            }
            e.finish()?;
            Ok(())
        }
        ApikeyCmd::Revoke { id } => {
            // A whole key (`lpb_<id>_<secret>`) is taken for its id: the secret part is
            // dropped here and never echoed.
            let id = id.trim();
            let id = id.strip_prefix(crate::store::API_KEY_PREFIX).unwrap_or(id);
            let id = id.split('_').next().unwrap_or_default();
            let revoked = match ctx.existing_store().await? {
                Some(store) => store.revoke_api_key(id).await?,
                None => false,
            };
            if revoked {
                crate::note!("revoked API key {id}");
                Ok(())
            } else {
                Err(Error::NotFound(format!(
                    "no active API key with id {:?} (see `lpbridge apikey list`)",
                    lp_types::shown(id)
                )))
            }
        }
    }
}
