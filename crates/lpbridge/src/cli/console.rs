//! `lpbridge console user add|list|passwd|remove`: the people who sign in to the web console
//! of `lpbridge serve` with a name and a password (the other way in is an API key).

use clap::Subcommand;

use super::{Ctx, read_secret};
use crate::error::{Error, Result};
use crate::output::Emitter;
use crate::records::ConsoleUserRecord;

#[derive(Debug, Subcommand)]
pub enum ConsoleCmd {
    /// Console users (Argon2id password hashes in the store; sessions end when a user is
    /// removed or given a new password).
    #[command(
        subcommand,
        after_help = "Example:\n  lpbridge console user add alice\n  printf '%s' \"$PASSWORD\" | lpbridge console user add bob --password-stdin --read-only"
    )]
    User(UserCmd),
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user; the password (12 characters or more) is prompted for, or read from stdin.
    #[command(after_help = "Example:\n  lpbridge console user add alice")]
    Add {
        /// Letters, digits, '.', '_', '-' or '@' (an e-mail works); stored lower-case.
        username: String,
        /// Read the password from stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// The user may look but not change anything.
        #[arg(long)]
        read_only: bool,
    },
    /// List users (never their passwords).
    #[command(after_help = "Example:\n  lpbridge console user list --format table")]
    List,
    /// Give a user a new password; their sessions end.
    #[command(after_help = "Example:\n  lpbridge console user passwd alice")]
    Passwd {
        username: String,
        /// Read the password from stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user; their sessions end at once.
    #[command(after_help = "Example:\n  lpbridge console user remove alice")]
    Remove { username: String },
}

pub async fn run(ctx: &Ctx, cmd: ConsoleCmd) -> Result<()> {
    let ConsoleCmd::User(cmd) = cmd;
    match cmd {
        UserCmd::Add {
            username,
            password_stdin,
            read_only,
        } => {
            // The name is checked before the password is asked for.
            let name = crate::store::console::validate_username(&username)?;
            let password = read_secret("password", "--password-stdin", password_stdin, true)?
                .ok_or_else(|| Error::usage("a password is required"))?;
            let store = ctx.store().await?;
            let u = store
                .create_console_user(&name, &password, read_only)
                .await?;
            crate::note!(
                "added console user {:?}{}; sign in at http://<lpbridge serve>/console/login",
                u.username,
                if u.read_only { " (read-only)" } else { "" }
            );
            Ok(())
        }
        UserCmd::List => {
            let users = match ctx.existing_store().await? {
                Some(store) => store.list_console_users().await?,
                None => Vec::new(),
            };
            let mut e = Emitter::new::<ConsoleUserRecord>(ctx.format, ctx.stdout());
            for u in users {
                e.emit(&ConsoleUserRecord::from(u))?;
            }
            e.finish()?;
            Ok(())
        }
        UserCmd::Passwd {
            username,
            password_stdin,
        } => {
            let name = crate::store::console::validate_username(&username)?;
            let store = ctx.store().await?;
            if store.console_user(&name).await?.is_none() {
                return Err(no_user(&name));
            }
            let password = read_secret("new password", "--password-stdin", password_stdin, true)?
                .ok_or_else(|| Error::usage("a password is required"))?;
            if !store.set_console_password(&name, &password).await? {
                return Err(no_user(&name));
            }
            crate::note!("changed the password of console user {name:?}; their sessions ended");
            Ok(())
        }
        UserCmd::Remove { username } => {
            let name = username.trim().to_lowercase();
            let removed = match ctx.existing_store().await? {
                Some(store) => store.delete_console_user(&name).await?,
                None => false,
            };
            if !removed {
                return Err(no_user(&name));
            }
            crate::note!("removed console user {name:?}; their sessions ended");
            Ok(())
        }
    }
}

fn no_user(name: &str) -> Error {
    Error::NotFound(format!(
        "no console user {:?} (see `lpbridge console user list`)",
        lp_types::shown(name)
    ))
}
