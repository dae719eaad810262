//! `lpbridge scim token create|list|revoke`: bearer tokens for the `/scim/v2` endpoints of
//! `lpbridge serve`. A token belongs to one connection (the LastPass account an identity
//! provider provisions) and opens nothing but SCIM.

use std::io::Write as _;

use clap::Subcommand;
use lp_types::ConnectionId;

use super::Ctx;
use crate::error::{Error, Result};
use crate::output::Emitter;
use crate::records::ApiKeyRecord;
use crate::store::KeyPurpose;

#[derive(Debug, Subcommand)]
pub enum ScimCmd {
    /// SCIM bearer tokens.
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge scim token create --connection prod\n  lpbridge scim token list --format table"
    )]
    Token(TokenCmd),
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token and print it alone on stdout (shown only this once). Paste it into the
    /// identity provider as the "Secret Token" / "API Token", with the tenant URL
    /// `http(s)://<host>/scim/v2`.
    #[command(
        after_help = "Example:\n  TOKEN=$(lpbridge scim token create --connection prod --name entra)\n  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/scim/v2/Users?count=1"
    )]
    Create {
        /// The connection the token provisions; may be omitted when exactly one exists.
        #[arg(long, value_name = "ID")]
        connection: Option<ConnectionId>,
        /// A label to tell tokens apart in `scim token list`.
        #[arg(long, value_name = "NAME", default_value = "scim")]
        name: String,
    },
    /// List SCIM tokens (never the tokens themselves).
    #[command(after_help = "Example:\n  lpbridge scim token list --format table")]
    List,
    /// Revoke a token by its id (as `scim token list` shows it); every replica refuses it on its
    /// next request.
    #[command(after_help = "Example:\n  lpbridge scim token revoke k3v9x0q2m8ab")]
    Revoke {
        /// The token's id, as shown by `scim token list`.
        id: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: ScimCmd) -> Result<()> {
    let ScimCmd::Token(cmd) = cmd;
    match cmd {
        TokenCmd::Create { connection, name } => {
            let store = ctx.store().await?;
            let conns = store.list_connections().await?;
            let id = match connection {
                Some(id) => {
                    if !conns.iter().any(|c| c.id == id) {
                        return Err(Error::NotFound(format!(
                            "no connection {:?} (see `lpbridge connection list`)",
                            id.as_str()
                        )));
                    }
                    id
                }
                None => match conns.as_slice() {
                    [only] => only.id.clone(),
                    [] => {
                        return Err(Error::Usage(
                            "no connection exists yet: add one with `lpbridge connection add` \
                             (or start `lpbridge serve` once for the sandbox)"
                                .into(),
                        ));
                    }
                    many => {
                        return Err(Error::Usage(format!(
                            "--connection is required: {} connections exist ({})",
                            many.len(),
                            many.iter()
                                .map(|c| c.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                },
            };
            let (info, token) = store.create_scim_token(&name, &id).await?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", token.expose())?;
            out.flush()?;
            crate::note!(
                "created SCIM token {} ({:?}) for connection {:?}; it is shown only once",
                info.id,
                info.name,
                id.as_str()
            );
            Ok(())
        }
        TokenCmd::List => {
            let keys = match ctx.existing_store().await? {
                Some(store) => store.list_api_keys().await?,
                None => Vec::new(),
            };
            let mut e = Emitter::new::<ApiKeyRecord>(ctx.format, ctx.stdout());
            for k in keys.into_iter().filter(|k| k.purpose == KeyPurpose::Scim) {
                e.emit(&ApiKeyRecord::from(k))?;
            }
            e.finish()?;
            Ok(())
        }
        TokenCmd::Revoke { id } => {
            let id = id.trim();
            let id = id.strip_prefix(crate::store::API_KEY_PREFIX).unwrap_or(id);
            let id = id.split('_').next().unwrap_or_default();
            let store = ctx.existing_store().await?;
            let is_scim = match &store {
                Some(s) => s
                    .list_api_keys()
                    .await?
                    .iter()
                    .any(|k| k.id == id && k.purpose == KeyPurpose::Scim),
                None => false,
            };
            let revoked = match (&store, is_scim) {
                (Some(s), true) => s.revoke_api_key(id).await?,
                _ => false,
            };
            if revoked {
                crate::note!("revoked SCIM token {id}");
                Ok(())
            } else {
                Err(Error::NotFound(format!(
                    "no active SCIM token with id {:?} (see `lpbridge scim token list`)",
                    lp_types::shown(id)
                )))
            }
        }
    }
}
