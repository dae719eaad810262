//! `lpbridge groups …`.

use std::path::PathBuf;

use clap::Subcommand;
use lastpass::{Email, GroupName};

use super::users::{emit_plan, emit_results};
use super::{Ctx, dedup_emails};
use crate::admin::check_results;
use crate::admin::groups::{self, DEFAULT_BATCH_SIZE, GroupInfo};
use crate::error::{Error, Result};
use crate::output::{Emitter, write_one};

#[derive(Debug, Subcommand)]
pub enum GroupsCmd {
    /// Every group with its members (from getuserdata).
    #[command(after_help = "Example:\n  lpbridge groups list --format json")]
    List,
    /// One group and its members.
    #[command(after_help = "Example:\n  lpbridge groups get Sales")]
    Get {
        /// Group name (case-sensitive).
        name: GroupName,
    },
    /// Add users to a group (batchchangegrp).
    #[command(
        after_help = "Example:\n  lpbridge groups add-members Sales ann@example.com bob@example.com"
    )]
    AddMembers {
        /// Group name (case-sensitive; the group must exist).
        group: GroupName,
        /// Users' e-mail addresses.
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Remove users from a group (batchchangegrp).
    #[command(after_help = "Example:\n  lpbridge groups remove-members Sales ann@example.com")]
    RemoveMembers {
        /// Group name (case-sensitive).
        group: GroupName,
        /// Users' e-mail addresses.
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Apply membership changes from a CSV file with the header `email,group,action`
    /// (action: add|remove). Plans first (no-ops and unknown users skipped), then applies.
    #[command(
        after_help = "Example:\n  printf 'email,group,action\\nann@example.com,Sales,add\\n' > changes.csv\n  \
        lpbridge groups apply changes.csv --dry-run\n  lpbridge groups apply changes.csv"
    )]
    Apply {
        /// CSV file with the header row `email,group,action`.
        file: PathBuf,
        /// Users per batchchangegrp call.
        #[arg(long, default_value_t = DEFAULT_BATCH_SIZE as u64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch_size: u64,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(ctx: &Ctx, cmd: GroupsCmd) -> Result<()> {
    match cmd {
        GroupsCmd::List => {
            let all = groups::all_groups(ctx.client()?).await?;
            let mut e = Emitter::new::<GroupInfo>(ctx.format, ctx.stdout());
            for g in &all {
                e.emit(g)?;
            }
            e.finish()?;
            Ok(())
        }
        GroupsCmd::Get { name } => {
            let all = groups::all_groups(ctx.client()?).await?;
            let g = all.iter().find(|g| g.name == name.as_str());
            let Some(g) = g else {
                // Group names are case-sensitive; point at a near miss.
                let hint = all
                    .iter()
                    .find(|g| g.name.eq_ignore_ascii_case(name.as_str()))
                    .map(|g| format!(" (did you mean {:?}?)", g.name))
                    .unwrap_or_default();
                return Err(Error::NotFound(format!("no such group: {name}{hint}")));
            };
            write_one(ctx.format, ctx.stdout(), &groups::GroupDetail(g))?;
            Ok(())
        }
        GroupsCmd::AddMembers { group, emails } => members(ctx, group, emails, true).await,
        GroupsCmd::RemoveMembers { group, emails } => members(ctx, group, emails, false).await,
        GroupsCmd::Apply {
            file,
            batch_size,
            dry_run,
        } => {
            let (label, f) = super::open_input(&file)?;
            let rows = groups::parse_csv(&label, f)?;
            let client = ctx.client()?;
            let current = groups::current_memberships(client, &rows).await?;
            let plan = groups::plan(rows, &current, batch_size as usize);
            crate::note!(
                "plan: {} row(s): {} change(s) in {} batchchangegrp call(s), {} skipped",
                plan.items.len(),
                plan.changes(),
                plan.calls.len(),
                plan.items.len() - plan.changes()
            );
            if dry_run {
                return emit_plan(ctx, &plan, &plan.items, &plan.calls);
            }
            let results = groups::apply(client, plan).await;
            emit_results(ctx, &results)?;
            check_results(&results)
        }
    }
}

async fn members(ctx: &Ctx, group: GroupName, emails: Vec<Email>, add: bool) -> Result<()> {
    let emails = dedup_emails(emails);
    let results = groups::change_members(ctx.client()?, &group, &emails, add).await?;
    emit_results(ctx, &results)?;
    check_results(&results)
}
