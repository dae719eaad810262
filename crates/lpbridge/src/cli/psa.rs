//! `lpbridge psa connect|list|remove|test|attributes|companies|contacts`: PSA integrations
//! (ConnectWise Manage, Datto Autotask) stored encrypted, and the directory reads the MSP import
//! makes.

use std::io::IsTerminal;

use clap::{Args, Subcommand};
use futures::{Stream, StreamExt as _};
use lp_types::{ConnectionId, Secret};
use psa::{CompanyFilter, PsaDirectory};

use super::Ctx;
use crate::error::{Error, Result};
use crate::output::{Emitter, Record, write_one};
use crate::records::{
    PsaAttributeRecord, PsaCompanyRecord, PsaContactRecord, PsaIntegrationRecord,
};
use crate::store::{
    AutotaskSettings, ConnectWiseSettings, NewPsaIntegration, PsaIntegration, PsaSecrets,
    PsaSettings, PsaTuning, StoreError,
};

#[derive(Debug, Subcommand)]
pub enum PsaCmd {
    /// Store a PSA integration (secrets encrypted at rest), after checking it with one
    /// authenticated call. Secrets are read from stdin or hidden prompts, never from arguments.
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge psa connect connectwise acme-cw --site na.myconnectwise.net --company-id acme \\\n      --public-key AbCdEf0123456789 --client-id 3f2c…-guid --private-key-stdin < cw-private.txt\n  printf '%s\\n%s\\n' \"$AT_SECRET\" \"$AT_CODE\" | lpbridge psa connect autotask acme-at \\\n      --username api@acme.example --secrets-stdin"
    )]
    Connect(ConnectCmd),
    /// List stored PSA integrations (never their secrets).
    #[command(after_help = "Example:\n  lpbridge psa list --format table")]
    List,
    /// Remove a stored PSA integration.
    #[command(after_help = "Example:\n  lpbridge psa remove acme-cw")]
    Remove {
        /// Integration name.
        name: ConnectionId,
    },
    /// Check a stored integration's credentials with one authenticated call.
    #[command(after_help = "Example:\n  lpbridge psa test acme-cw")]
    Test {
        /// Integration name (optional while exactly one is stored).
        name: Option<ConnectionId>,
    },
    /// The filterable company attributes: types (for --type) and statuses (for --status).
    #[command(after_help = "Example:\n  lpbridge psa attributes --psa acme-cw --format table")]
    Attributes {
        #[command(flatten)]
        pick: Pick,
    },
    /// List companies, streamed page by page; filters are applied by the PSA. Values of one
    /// option are OR-ed, the options AND-ed.
    #[command(
        after_help = "Example:\n  lpbridge psa companies --psa acme-cw --type 1 --type 3 --status 1 --format csv > customers.csv"
    )]
    Companies {
        #[command(flatten)]
        pick: Pick,
        /// Company type id (see `lpbridge psa attributes`); repeatable.
        #[arg(long = "type", value_name = "ID")]
        types: Vec<String>,
        /// Company status id (see `lpbridge psa attributes`; Autotask: active or inactive);
        /// repeatable.
        #[arg(long = "status", value_name = "ID")]
        statuses: Vec<String>,
    },
    /// A company's contacts (active and inactive) with their e-mail addresses.
    #[command(after_help = "Example:\n  lpbridge psa contacts 19342 --psa acme-cw --format table")]
    Contacts {
        /// The company's id in the PSA (see `lpbridge psa companies`).
        company_id: String,
        #[command(flatten)]
        pick: Pick,
    },
}

/// `--psa NAME`.
#[derive(Debug, Clone, Args)]
pub struct Pick {
    /// Stored PSA integration to use (optional while exactly one is stored).
    #[arg(long, value_name = "NAME")]
    pub psa: Option<ConnectionId>,
}

#[derive(Debug, Subcommand)]
pub enum ConnectCmd {
    /// ConnectWise Manage (PSA): an API member's public and private keys, the login company
    /// id and the integration's clientId. The private key is read from stdin
    /// (--private-key-stdin) or a hidden prompt.
    #[command(
        name = "connectwise",
        after_help = "Example:\n  lpbridge psa connect connectwise acme-cw --site na.myconnectwise.net --company-id acme \\\n      --public-key AbCdEf0123456789 --client-id 3f2c…-guid --private-key-stdin < cw-private.txt"
    )]
    ConnectWise(ConnectWiseArgs),
    /// Datto Autotask: an API user's username, secret and API tracking identifier
    /// (integration code). With --secrets-stdin, stdin holds two lines: the secret first,
    /// then the integration code; otherwise both are asked for at hidden prompts.
    #[command(
        name = "autotask",
        after_help = "Example:\n  printf '%s\\n%s\\n' \"$AT_SECRET\" \"$AT_CODE\" | lpbridge psa connect autotask acme-at \\\n      --username api@acme.example --secrets-stdin"
    )]
    Autotask(AutotaskArgs),
}

/// What both `connect` commands take.
#[derive(Debug, Clone, Args)]
pub struct ConnectCommon {
    /// Integration name: 1-64 letters, digits, '-', '_', '.' (use it with --psa NAME).
    pub name: ConnectionId,
    /// Replace an existing integration of that name.
    #[arg(long)]
    pub overwrite: bool,
    /// Store without the check call (the credentials are still checked for empty fields).
    #[arg(long)]
    pub no_check: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ConnectWiseArgs {
    #[command(flatten)]
    pub common: ConnectCommon,
    /// The site: a host (na.myconnectwise.net, cw.example.com) or URL.
    #[arg(long, value_name = "URL")]
    pub site: String,
    /// The company id typed at login.
    #[arg(long, value_name = "ID")]
    pub company_id: String,
    /// The API member's public key.
    #[arg(long, value_name = "KEY")]
    pub public_key: String,
    /// The integration's clientId (a GUID from developer.connectwise.com).
    #[arg(long, value_name = "GUID")]
    pub client_id: String,
    /// Read the private key from stdin instead of prompting.
    #[arg(long)]
    pub private_key_stdin: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AutotaskArgs {
    #[command(flatten)]
    pub common: ConnectCommon,
    /// The API user's username (e-mail-like).
    #[arg(long, value_name = "USER")]
    pub username: String,
    /// Where zoneInformation is asked [default: https://webservices2.autotask.net/atservicesrest].
    #[arg(long, value_name = "URL")]
    pub discovery_url: Option<String>,
    /// Read the secret (first line) and the integration code (second line) from stdin instead
    /// of prompting.
    #[arg(long)]
    pub secrets_stdin: bool,
}

pub async fn run(ctx: &Ctx, cmd: PsaCmd) -> Result<()> {
    match cmd {
        PsaCmd::Connect(c) => connect(ctx, c).await,
        PsaCmd::List => {
            let list = match ctx.existing_store().await? {
                Some(store) => store.list_psa_integrations().await?,
                None => Vec::new(),
            };
            let mut e = Emitter::new::<PsaIntegrationRecord>(ctx.format, ctx.stdout());
            for s in list {
                e.emit(&PsaIntegrationRecord::from(s))?;
            }
            e.finish()?;
            Ok(())
        }
        PsaCmd::Remove { name } => {
            let removed = match ctx.existing_store().await? {
                Some(store) => store.delete_psa_integration(&name).await?,
                None => false,
            };
            if removed {
                crate::note!("removed PSA integration {:?}", name.as_str());
                Ok(())
            } else {
                Err(not_found(&name))
            }
        }
        PsaCmd::Test { name } => {
            let integration = pick(ctx, name).await?;
            let dir = directory(ctx, &integration)?;
            let checked = dir.check().await;
            calls_note(ctx, dir.as_ref());
            checked?;
            let mut rec = PsaIntegrationRecord::from(integration.summary());
            rec.status = Some("ok".into());
            write_one(ctx.format, ctx.stdout(), &rec)?;
            Ok(())
        }
        PsaCmd::Attributes { pick: p } => {
            let integration = pick(ctx, p.psa).await?;
            let dir = directory(ctx, &integration)?;
            let attrs = dir.attributes().await;
            calls_note(ctx, dir.as_ref());
            let attrs = attrs?;
            let mut e = Emitter::new::<PsaAttributeRecord>(ctx.format, ctx.stdout());
            let rows = attrs
                .types
                .into_iter()
                .map(|v| ("type", v))
                .chain(attrs.statuses.into_iter().map(|v| ("status", v)));
            for (attribute, v) in rows {
                e.emit(&PsaAttributeRecord {
                    attribute,
                    id: v.id,
                    name: v.name,
                })?;
            }
            e.finish()?;
            Ok(())
        }
        PsaCmd::Companies {
            pick: p,
            types,
            statuses,
        } => {
            let integration = pick(ctx, p.psa).await?;
            let dir = directory(ctx, &integration)?;
            let filter = CompanyFilter { types, statuses };
            let out = emit(ctx, dir.companies(&filter).map(|r| r.map(PsaCompanyRecord))).await;
            calls_note(ctx, dir.as_ref());
            out
        }
        PsaCmd::Contacts {
            company_id,
            pick: p,
        } => {
            let integration = pick(ctx, p.psa).await?;
            let dir = directory(ctx, &integration)?;
            let out = async {
                // A clear "no such company" instead of an empty list.
                if dir.company(&company_id).await?.is_none() {
                    return Err(Error::NotFound(format!(
                        "PSA integration {:?} has no company with id {:?} (see `lpbridge psa \
                         companies`)",
                        integration.id.as_str(),
                        lp_types::shown(&company_id)
                    )));
                }
                emit(
                    ctx,
                    dir.contacts(&company_id).map(|r| r.map(PsaContactRecord)),
                )
                .await
            }
            .await;
            calls_note(ctx, dir.as_ref());
            out
        }
    }
}

async fn connect(ctx: &Ctx, cmd: ConnectCmd) -> Result<()> {
    let (common, settings) = match &cmd {
        ConnectCmd::ConnectWise(a) => (
            &a.common,
            PsaSettings::ConnectWise(ConnectWiseSettings {
                site: a.site.trim().to_owned(),
                company_id: a.company_id.trim().to_owned(),
                public_key: a.public_key.trim().to_owned(),
                client_id: a.client_id.trim().to_owned(),
            }),
        ),
        ConnectCmd::Autotask(a) => (
            &a.common,
            PsaSettings::Autotask(AutotaskSettings {
                username: a.username.trim().to_owned(),
                discovery_url: a
                    .discovery_url
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned),
            }),
        ),
    };
    let name = &common.name;
    // Checked before anything is opened or read.
    crate::store::validate_psa_id(name)?;
    let store = ctx.store().await?;
    // Refused before prompting; the insert refuses a duplicate again (atomically).
    if !common.overwrite && store.psa_integration_summary(name).await?.is_some() {
        return Err(already_exists(name));
    }
    let secrets = match &cmd {
        ConnectCmd::ConnectWise(a) => {
            let mut v = read_secrets(&["private key"], "--private-key-stdin", a.private_key_stdin)?;
            PsaSecrets::ConnectWise {
                private_key: v.remove(0),
            }
        }
        ConnectCmd::Autotask(a) => {
            let mut v = read_secrets(
                &["secret", "integration code"],
                "--secrets-stdin",
                a.secrets_stdin,
            )?;
            let integration_code = v.remove(1);
            PsaSecrets::Autotask {
                secret: v.remove(0),
                integration_code,
            }
        }
    };
    // Empty fields are refused here (the import's "Credentials are required"), check or not.
    let dir = crate::store::psa_directory(&settings, &secrets, &tuning(ctx))?;
    if !common.no_check {
        let checked = dir.check().await;
        calls_note(ctx, dir.as_ref());
        checked?;
    }
    let new = NewPsaIntegration {
        id: name.clone(),
        settings,
        secrets,
    };
    let saved = match store.create_psa_integration(new, common.overwrite).await {
        Err(StoreError::Conflict { .. }) => return Err(already_exists(name)),
        other => other?,
    };
    let mut rec = PsaIntegrationRecord::from(saved);
    rec.status = Some(
        if common.no_check {
            "saved (not checked)"
        } else {
            "saved"
        }
        .into(),
    );
    write_one(ctx.format, ctx.stdout(), &rec)?;
    Ok(())
}

/// The client's timeout and attempts from the global flags.
pub(super) fn tuning(ctx: &Ctx) -> PsaTuning {
    PsaTuning {
        timeout: ctx.global.timeout.map(std::time::Duration::from_secs),
        attempts: ctx.global.attempts,
    }
}

fn directory(ctx: &Ctx, i: &PsaIntegration) -> Result<Box<dyn PsaDirectory>> {
    Ok(crate::store::psa_directory(
        &i.settings,
        &i.secrets,
        &tuning(ctx),
    )?)
}

/// The integration named, or the only one stored; a clear error listing them otherwise.
pub(super) async fn pick(ctx: &Ctx, name: Option<ConnectionId>) -> Result<PsaIntegration> {
    let Some(store) = ctx.existing_store().await? else {
        return Err(match name {
            Some(n) => not_found(&n),
            None => none_stored(),
        });
    };
    let name = match name {
        Some(n) => n,
        None => {
            let list = store.list_psa_integrations().await?;
            match list.as_slice() {
                [] => return Err(none_stored()),
                [only] => only.id.clone(),
                many => {
                    let names = many
                        .iter()
                        .map(|s| format!("{} ({})", s.id.as_str(), s.kind))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(Error::usage(format!(
                        "{} PSA integrations are stored ({names}): pick one with --psa NAME",
                        many.len()
                    )));
                }
            }
        }
    };
    store
        .get_psa_integration(&name)
        .await?
        .ok_or_else(|| not_found(&name))
}

/// Writes the records of `stream` as they arrive.
async fn emit<R: Record>(
    ctx: &Ctx,
    mut stream: impl Stream<Item = psa::Result<R>> + Unpin,
) -> Result<()> {
    let mut e = Emitter::new::<R>(ctx.format, ctx.stdout());
    while let Some(item) = stream.next().await {
        e.emit(&item?)?;
    }
    e.finish()?;
    Ok(())
}

/// With `-v`, the upstream call count on stderr.
fn calls_note(ctx: &Ctx, dir: &dyn PsaDirectory) {
    if ctx.global.verbose > 0 {
        crate::note!("lpbridge: {} calls: {}", dir.kind(), dir.calls());
    }
}

/// Reads one secret per name: from stdin (one a line, in order; a missing line is an empty
/// value, refused later as "Credentials are required") with `from_stdin`, else hidden prompts.
fn read_secrets(names: &[&str], flag: &str, from_stdin: bool) -> Result<Vec<Secret>> {
    if from_stdin {
        let mut buf = Vec::new();
        let read = std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf);
        let parsed = read
            .map_err(|e| Error::usage(format!("cannot read stdin ({flag}): {e}")))
            .and_then(|_| split_secret_lines(&buf, names, flag));
        buf.iter_mut().for_each(|b| *b = 0);
        return parsed;
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(format!(
            "{}: no terminal to prompt on; pipe {} in with {flag}",
            names.join(", "),
            if names.len() > 1 {
                "them (one a line)"
            } else {
                "it"
            }
        )));
    }
    names
        .iter()
        .map(
            |what| match rpassword::prompt_password(format!("{what}: ")) {
                Ok(s) => Ok(Secret::new(s)),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Err(Error::usage(format!("{what}: nothing was entered")))
                }
                Err(e) => Err(e.into()),
            },
        )
        .collect()
}

/// Splits stdin into `names.len()` secrets, one a line (`\r\n` accepted). Missing lines are
/// empty values; extra non-empty lines are refused (the wrong input was probably piped).
fn split_secret_lines(buf: &[u8], names: &[&str], flag: &str) -> Result<Vec<Secret>> {
    let text = std::str::from_utf8(buf)
        .map_err(|_| Error::usage(format!("stdin ({flag}) is not UTF-8 text")))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let out: Vec<Secret> = names
        .iter()
        .map(|_| Secret::new(lines.next().unwrap_or_default()))
        .collect();
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(Error::usage(format!(
            "stdin ({flag}) has more than {} line(s): expected {}",
            names.len(),
            names.join(", then ")
        )));
    }
    Ok(out)
}

fn none_stored() -> Error {
    Error::config(
        "no PSA integration is stored: add one with `lpbridge psa connect connectwise|autotask \
         NAME …`",
    )
}

fn not_found(name: &ConnectionId) -> Error {
    Error::NotFound(format!(
        "no PSA integration named {:?} (see `lpbridge psa list`)",
        name.as_str()
    ))
}

fn already_exists(name: &ConnectionId) -> Error {
    Error::Conflict(format!(
        "a PSA integration named {:?} already exists; pass --overwrite to replace it",
        name.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_secrets_are_one_a_line() {
        let names = ["secret", "integration code"];
        let v = split_secret_lines(b"s3cr3t\r\nCODE\n", &names, "--secrets-stdin").unwrap();
        assert_eq!(v[0].expose(), "s3cr3t");
        assert_eq!(v[1].expose(), "CODE");
        let v = split_secret_lines(b"only", &names, "--secrets-stdin").unwrap();
        assert_eq!(v[0].expose(), "only");
        assert!(v[1].is_empty());
        let e = split_secret_lines(b"AAA\nBBB\nCCC\n", &names, "--secrets-stdin").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("more than 2 line(s)") && !m.contains("CCC"),
            "{m}"
        );
        let v = split_secret_lines(b"key\n", &["private key"], "--private-key-stdin").unwrap();
        assert_eq!(v[0].expose(), "key");
    }
}
