//! `lpbridge folders …`: shared folders and who has access to them.

use clap::Subcommand;
use futures::StreamExt;
use lastpass::FolderId;

use super::Ctx;
use crate::error::{Error, Result};
use crate::output::Emitter;
use crate::records::{FolderRecord, PermissionRecord};

/// Folders per `getdetailedsfdata` page.
const DETAILED_PAGE_SIZE: u32 = 100;

#[derive(Debug, Subcommand)]
pub enum FoldersCmd {
    /// Every shared folder (getsfdata).
    #[command(after_help = "Example:\n  lpbridge folders list")]
    List,
    /// One shared folder's members and their roles.
    #[command(after_help = "Example:\n  lpbridge folders get 101")]
    Get {
        /// Shared folder id (see `lpbridge folders list`).
        id: FolderId,
        /// Include each member's sites (paged getdetailedsfdata).
        #[arg(long)]
        detailed: bool,
    },
    /// Who has access to which folder: one row per (folder, member) with the role derived from
    /// the flags (can_administer → admin, readonly → viewer, else editor).
    #[command(after_help = "Example:\n  lpbridge folders permissions --detailed --format csv")]
    Permissions {
        /// Include sites (paged getdetailedsfdata instead of getsfdata).
        #[arg(long)]
        detailed: bool,
        /// Only this folder.
        #[arg(long)]
        folder: Option<FolderId>,
    },
}

pub async fn run(ctx: &Ctx, cmd: FoldersCmd) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        FoldersCmd::List => {
            let folders = client.shared_folders().await?;
            let mut e = Emitter::new::<FolderRecord>(ctx.format, ctx.stdout());
            for f in &folders {
                e.emit(&FolderRecord::from(f))?;
            }
            e.finish()?;
            Ok(())
        }
        FoldersCmd::Get { id, detailed } => {
            let found = permissions(ctx, detailed, Some(&id)).await?;
            if found == 0 {
                return Err(Error::NotFound(format!("no such shared folder: {id}")));
            }
            Ok(())
        }
        FoldersCmd::Permissions { detailed, folder } => {
            let found = permissions(ctx, detailed, folder.as_ref()).await?;
            match folder {
                Some(id) if found == 0 => {
                    Err(Error::NotFound(format!("no such shared folder: {id}")))
                }
                _ => Ok(()),
            }
        }
    }
}

/// Streams permission rows; returns how many folders matched.
async fn permissions(ctx: &Ctx, detailed: bool, only: Option<&FolderId>) -> Result<usize> {
    let client = ctx.client()?;
    // Both sources as one stream of folders: paged getdetailedsfdata, or one getsfdata answer.
    let mut folders = if detailed {
        client.detailed_shared_folders_paged(DETAILED_PAGE_SIZE)
    } else {
        futures::stream::iter(client.shared_folders().await?.into_iter().map(Ok)).boxed()
    };
    let mut e = Emitter::new::<PermissionRecord>(ctx.format, ctx.stdout());
    let mut matched = 0;
    while let Some(f) = folders.next().await {
        let f = f?;
        if only.is_some_and(|id| *id != f.id) {
            continue;
        }
        matched += 1;
        for m in &f.users {
            e.emit(&PermissionRecord::new(&f, m))?;
        }
    }
    if matched > 0 || only.is_none() {
        e.finish()?;
    }
    Ok(matched)
}
