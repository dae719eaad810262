//! `lpbridge sites push`.

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use lastpass::{Email, FolderId, GroupName, PushSite, PushTarget, UsernameType};

use super::{Ctx, read_secret};
use crate::error::{Error, Result};
use crate::output::write_one;
use crate::records::PushRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsernameTypeArg {
    /// The user's full e-mail address.
    Email,
    /// The local part of the user's e-mail address.
    Username,
    /// The value of --username.
    Custom,
}

#[derive(Debug, Subcommand)]
pub enum SitesCmd {
    /// Push a site into users' vaults (pushsitestousers). The site password is read from stdin
    /// (--password-stdin) or a hidden prompt on a terminal, never from arguments.
    #[command(
        after_help = "Example:\n  printf '%s' \"$PW\" | lpbridge sites push --group Sales --url https://crm.example.com \\\n      \
        --label CRM --username-type custom --username sales-team --password-stdin --folder Work --favorite"
    )]
    Push(PushArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["all", "group", "user"])))]
pub struct PushArgs {
    /// Push to every user in the account.
    #[arg(long)]
    all: bool,
    /// Push to the members of this group.
    #[arg(long)]
    group: Option<GroupName>,
    /// Push to this user.
    #[arg(long)]
    user: Option<Email>,
    /// Site URL.
    #[arg(long)]
    url: String,
    /// Site label (name) in the vault.
    #[arg(long)]
    label: String,
    /// How the site's username is filled.
    #[arg(long, value_enum, default_value = "email")]
    username_type: UsernameTypeArg,
    /// The username, with --username-type custom.
    #[arg(long)]
    username: Option<String>,
    /// Read the site password from stdin.
    #[arg(long)]
    password_stdin: bool,
    /// Notes stored with the site.
    #[arg(long)]
    notes: Option<String>,
    /// Vault folder name.
    #[arg(long)]
    folder: Option<String>,
    /// Mark as favourite.
    #[arg(long)]
    favorite: bool,
    /// Also add the site to users who join the account or group later.
    #[arg(long)]
    persistent: bool,
    /// Shared folder whose key encrypted the data.
    #[arg(long)]
    shared_folder_id: Option<FolderId>,
}

pub async fn run(ctx: &Ctx, cmd: SitesCmd) -> Result<()> {
    let SitesCmd::Push(a) = cmd;
    let username_type = match a.username_type {
        UsernameTypeArg::Email => UsernameType::Email,
        UsernameTypeArg::Username => UsernameType::Username,
        UsernameTypeArg::Custom => UsernameType::Custom,
    };
    match (username_type, &a.username) {
        (UsernameType::Custom, None) => {
            return Err(Error::usage("--username-type custom requires --username"));
        }
        (UsernameType::Email | UsernameType::Username, Some(_)) => {
            return Err(Error::usage(
                "--username is only used with --username-type custom",
            ));
        }
        _ => {}
    }
    url::Url::parse(&a.url).map_err(|e| Error::usage(format!("invalid --url {:?}: {e}", a.url)))?;
    if a.label.trim().is_empty() {
        return Err(Error::usage("--label must not be empty"));
    }
    let target = if a.all {
        PushTarget::All
    } else if let Some(g) = a.group.clone() {
        PushTarget::Group(g)
    } else if let Some(u) = a.user.clone() {
        PushTarget::User(u)
    } else {
        return Err(Error::usage("choose one of --all, --group or --user"));
    };
    let password = read_secret("site password", "--password-stdin", a.password_stdin, false)?;
    let target_label = match &target {
        PushTarget::All => "all".to_owned(),
        PushTarget::Group(g) => format!("group:{g}"),
        PushTarget::User(u) => format!("user:{u}"),
    };
    let site = PushSite {
        target,
        url: a.url.clone(),
        name: a.label.clone(),
        folder: a.folder,
        username_type,
        username: a.username,
        password,
        notes: a.notes,
        favorite: a.favorite,
        persistent: a.persistent,
        shared_folder_id: a.shared_folder_id,
    };
    // pushsitestousers is never re-sent after an ambiguous failure; say that it may be applied.
    let psid = match ctx.client()?.push_site(&site).await {
        Ok(psid) => psid,
        Err(e) if crate::admin::bulk::is_ambiguous(&e) => {
            return Err(Error::Config(crate::admin::bulk::describe(&e, true)));
        }
        Err(e) => return Err(e.into()),
    };
    write_one(
        ctx.format,
        ctx.stdout(),
        &PushRecord {
            psid,
            target: target_label,
            url: site.url.clone(),
            label: site.name.clone(),
        },
    )?;
    Ok(())
}
