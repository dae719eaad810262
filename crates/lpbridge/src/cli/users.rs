//! `lpbridge users …`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{ArgGroup, Subcommand, ValueEnum};
use lastpass::{DeleteAction, Email, GroupName, MAX_EXPIRED_LIMIT, NewUser, UserUpdate};

use super::{Ctx, dedup_emails, read_secret};
use crate::admin::bulk::{UserOp, run_user_op, toggle_users};
use crate::admin::directory::{self, Lookup};
use crate::admin::import::{self, DEFAULT_BATCH_SIZE, ImportPlan};
use crate::admin::{ItemResult, Outcome, PlanItem, PlannedCall, check_results};
use crate::error::{Error, Result};
use crate::output::{Emitter, Format, Record, write_one};
use crate::records::UserRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    Active,
    Disabled,
    Invited,
    All,
}

#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// List users, streamed page by page (getuserdata, 2000 per page).
    #[command(
        after_help = "Example:\n  lpbridge users list --status active --group Sales --format csv"
    )]
    List {
        /// Only these users (repeatable; one server-side lookup each).
        #[arg(long = "email", value_name = "EMAIL")]
        emails: Vec<Email>,
        /// Only users in this state (`invited`: pending invitations).
        #[arg(long, value_enum, default_value = "all")]
        status: StatusFilter,
        /// Only admins.
        #[arg(long)]
        admin: bool,
        /// Only members of this group.
        #[arg(long)]
        group: Option<GroupName>,
        /// At most this many users.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Show one user.
    #[command(after_help = "Example:\n  lpbridge users get ann@example.com")]
    Get {
        /// The user's e-mail address (case-insensitive).
        email: Email,
    },
    /// Invite (or, with a default password, create) one user (batchadd).
    #[command(
        after_help = "Example:\n  lpbridge users invite ann@example.com --name 'Ann Lee' --group Sales\n  \
        printf '%s' \"$TEMP_PW\" | lpbridge users invite bob@example.com \\\n      --password-stdin --no-reset-required"
    )]
    Invite {
        /// The new user's e-mail address.
        email: Email,
        /// Full name.
        #[arg(long)]
        name: Option<String>,
        /// Read a default master password from stdin (never from arguments).
        #[arg(long)]
        password_stdin: bool,
        /// Do not require the user to change the default password.
        #[arg(long, requires = "password_stdin")]
        no_reset_required: bool,
        /// Add to this group (repeatable).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<GroupName>,
    },
    /// Bulk-invite users from a CSV file: validate, plan (skipping existing users), apply in
    /// batchadd batches, report per row.
    #[command(
        after_help = "CSV columns: email (required), fullname, groups (';'-separated), duo_username,\n\
        securid_username, attrib.<Key>. Every row is validated first; errors name the line.\n\n\
        Example:\n  lpbridge users import new-hires.csv --dry-run\n  lpbridge users import new-hires.csv --batch-size 200"
    )]
    Import {
        /// CSV file with a header row.
        file: PathBuf,
        /// Users per batchadd call.
        #[arg(long, default_value_t = DEFAULT_BATCH_SIZE as u64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch_size: u64,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Update a user's name or MFA usernames (updateuser).
    #[command(group(ArgGroup::new("fields").required(true).multiple(true)),
        after_help = "Example:\n  lpbridge users update ann@example.com --name 'Ann Lee-Smith'")]
    Update {
        /// The user's current e-mail address.
        email: Email,
        /// New full name.
        #[arg(long, group = "fields")]
        name: Option<String>,
        /// New Duo Security username.
        #[arg(long, group = "fields")]
        duo_username: Option<String>,
        /// New RSA SecurID username.
        #[arg(long, group = "fields")]
        securid_username: Option<String>,
    },
    /// Change a user's e-mail address (updateemail; the user confirms by e-mail).
    #[command(
        after_help = "Example:\n  lpbridge users update-email ann@old.example ann@new.example"
    )]
    UpdateEmail {
        /// The current address.
        old: Email,
        /// The new address.
        new: Email,
    },
    /// Re-send invitations (reinviteuser).
    #[command(after_help = "Example:\n  lpbridge users reinvite ann@example.com bob@example.com")]
    Reinvite {
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Deactivate users: block login, keep data (deluser 0). Asks for confirmation.
    #[command(after_help = "Example:\n  lpbridge users deactivate ann@example.com --yes")]
    Deactivate {
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Remove users from the business account (deluser 1). Asks for confirmation.
    #[command(after_help = "Example:\n  lpbridge users remove ann@example.com")]
    Remove {
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Delete user accounts entirely (deluser 2). Asks for confirmation.
    #[command(after_help = "Example:\n  lpbridge users delete ann@example.com --yes")]
    Delete {
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Cancel pending invitations (deluser 3). Asks for confirmation.
    #[command(after_help = "Example:\n  lpbridge users uninvite ann@example.com --yes")]
    Uninvite {
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Disable users (one disableuser call).
    #[command(after_help = "Example:\n  lpbridge users disable ann@example.com bob@example.com")]
    Disable {
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Re-enable users (one enableuser call).
    #[command(after_help = "Example:\n  lpbridge users enable ann@example.com")]
    Enable {
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Require a master password change at next login (requiremasterpasswordchange).
    #[command(after_help = "Example:\n  lpbridge users require-password-change ann@example.com")]
    RequirePasswordChange {
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Send master password reset e-mails (resetpassword).
    #[command(after_help = "Example:\n  lpbridge users reset-password ann@example.com")]
    ResetPassword {
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Disable multifactor authentication (disablemultifactor).
    #[command(after_help = "Example:\n  lpbridge users disable-mfa ann@example.com")]
    DisableMfa {
        #[arg(required = true)]
        emails: Vec<Email>,
    },
    /// Users whose master password has expired (expiredmasterpwlist, streamed).
    #[command(after_help = "Example:\n  lpbridge users expired-passwords --format csv")]
    ExpiredPasswords {
        /// At most this many users.
        #[arg(long)]
        limit: Option<u64>,
    },
}

pub async fn run(ctx: &Ctx, cmd: UsersCmd) -> Result<()> {
    match cmd {
        UsersCmd::List {
            emails,
            status,
            admin,
            group,
            limit,
        } => {
            let filter = directory::UserFilter {
                emails: dedup_emails(emails),
                status: match status {
                    StatusFilter::Active => directory::StatusFilter::Active,
                    StatusFilter::Disabled => directory::StatusFilter::Disabled,
                    StatusFilter::Invited => directory::StatusFilter::Invited,
                    StatusFilter::All => directory::StatusFilter::All,
                },
                admin,
                group,
                limit,
            };
            list(ctx, filter).await
        }
        UsersCmd::Get { email } => {
            let client = ctx.client()?;
            let record = match directory::lookup(client, &email).await? {
                Lookup::User(u) => UserRecord::from(*u),
                Lookup::Invited(name) => UserRecord::invited(name),
                Lookup::Missing => {
                    return Err(Error::NotFound(format!("no such user: {email}")));
                }
            };
            write_one(ctx.format, ctx.stdout(), &record)?;
            Ok(())
        }
        UsersCmd::Invite {
            email,
            name,
            password_stdin,
            no_reset_required,
            groups,
        } => {
            let password = if password_stdin {
                read_secret("default master password", "--password-stdin", true, true)?
            } else {
                None
            };
            let client = ctx.client()?;
            match directory::lookup(client, &email).await? {
                Lookup::Missing => {}
                Lookup::User(_) => {
                    return Err(Error::Conflict(format!("user {email} already exists")));
                }
                Lookup::Invited(_) => {
                    return Err(Error::Conflict(format!(
                        "{email} is already invited (use `lpbridge users reinvite {email}`)"
                    )));
                }
            }
            let created = password.is_some();
            let mut user = NewUser::new(email.clone());
            user.fullname = name;
            user.groups = groups;
            user.password = password;
            user.password_reset_required = no_reset_required.then_some(false);
            client.batch_add(std::slice::from_ref(&user)).await?;
            let r = ItemResult {
                row: None,
                email: email.to_string(),
                action: if created { "create" } else { "invite" }.into(),
                outcome: Outcome::Created,
                message: None,
            };
            write_one(ctx.format, ctx.stdout(), &r)?;
            Ok(())
        }
        UsersCmd::Import {
            file,
            batch_size,
            dry_run,
        } => import_cmd(ctx, file, batch_size as usize, dry_run).await,
        UsersCmd::Update {
            email,
            name,
            duo_username,
            securid_username,
        } => {
            let client = ctx.client()?;
            client
                .update_user(&UserUpdate {
                    username: email.clone(),
                    fullname: name,
                    duo_username,
                    securid_username,
                })
                .await?;
            report_one(ctx, &email, "update")
        }
        UsersCmd::UpdateEmail { old, new } => {
            if old == new {
                return Err(Error::usage(
                    "the old and new e-mail addresses are the same",
                ));
            }
            ctx.client()?.update_email(&old, &new).await?;
            report_one(ctx, &old, &format!("update-email to {new}"))
        }
        UsersCmd::Reinvite { emails } => per_user(ctx, UserOp::Reinvite, emails).await,
        UsersCmd::Deactivate { emails } => {
            per_user(ctx, UserOp::Delete(DeleteAction::Deactivate), emails).await
        }
        UsersCmd::Remove { emails } => {
            per_user(ctx, UserOp::Delete(DeleteAction::Remove), emails).await
        }
        UsersCmd::Delete { emails } => {
            per_user(ctx, UserOp::Delete(DeleteAction::Delete), emails).await
        }
        UsersCmd::Uninvite { emails } => {
            per_user(ctx, UserOp::Delete(DeleteAction::Uninvite), emails).await
        }
        UsersCmd::RequirePasswordChange { emails } => {
            per_user(ctx, UserOp::RequirePasswordChange, emails).await
        }
        UsersCmd::ResetPassword { emails } => per_user(ctx, UserOp::ResetPassword, emails).await,
        UsersCmd::DisableMfa { emails } => per_user(ctx, UserOp::DisableMfa, emails).await,
        UsersCmd::Disable { emails } => toggle(ctx, false, emails).await,
        UsersCmd::Enable { emails } => toggle(ctx, true, emails).await,
        UsersCmd::ExpiredPasswords { limit } => {
            let client = ctx.client()?;
            super::emit_stream(ctx, client.expired_passwords(MAX_EXPIRED_LIMIT), limit).await
        }
    }
}

fn report_one(ctx: &Ctx, email: &Email, action: &str) -> Result<()> {
    write_one(
        ctx.format,
        ctx.stdout(),
        &ItemResult::for_email(email, action, None),
    )?;
    Ok(())
}

async fn list(ctx: &Ctx, filter: directory::UserFilter) -> Result<()> {
    let client = ctx.client()?;
    let mut out = Emitter::new::<UserRecord>(ctx.format, ctx.stdout());
    directory::list_users(client, &filter, &mut |r| Ok(out.emit(&r)?)).await?;
    out.finish()?;
    Ok(())
}

async fn per_user(ctx: &Ctx, op: UserOp, emails: Vec<Email>) -> Result<()> {
    let emails = dedup_emails(emails);
    if op.is_destructive() {
        let what = match emails.as_slice() {
            [one] => format!("{} {one}", op.name()),
            many => format!("{} {} users", op.name(), many.len()),
        };
        ctx.confirm(&what)?;
    }
    let client = ctx.client()?;
    let results = run_user_op(client, op, &emails).await;
    emit_results(ctx, &results)?;
    check_results(&results)
}

async fn toggle(ctx: &Ctx, enable: bool, emails: Vec<Email>) -> Result<()> {
    let emails = dedup_emails(emails);
    let results = toggle_users(ctx.client()?, enable, &emails).await?;
    emit_results(ctx, &results)?;
    check_results(&results)
}

pub(super) fn emit_results(ctx: &Ctx, results: &[ItemResult]) -> Result<()> {
    let mut e = Emitter::new::<ItemResult>(ctx.format, ctx.stdout());
    for r in results {
        e.emit(r)?;
    }
    e.finish()?;
    Ok(())
}

/// Prints a plan: the whole object as JSON, else its items (and, for tables, its calls).
pub(super) fn emit_plan<P: serde::Serialize>(
    ctx: &Ctx,
    plan: &P,
    items: &[PlanItem],
    calls: &[PlannedCall],
) -> Result<()> {
    if ctx.format == Format::Json {
        write_one(ctx.format, ctx.stdout(), &PlanJson(plan))?;
        return Ok(());
    }
    let mut e = Emitter::new::<PlanItem>(ctx.format, ctx.stdout());
    for i in items {
        e.emit(i)?;
    }
    let mut out = e.finish()?;
    if ctx.format == Format::Table {
        let mut t = Emitter::new::<CallRow>(Format::Table, Vec::new());
        for c in calls {
            t.emit(&CallRow(c.clone()))?;
        }
        writeln!(out, "\nAPI calls this plan makes:")?;
        out.write_all(&t.finish()?)?;
        out.flush()?;
    }
    Ok(())
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct PlanJson<'a, P: serde::Serialize>(&'a P);

impl<P: serde::Serialize> Record for PlanJson<'_, P> {
    fn headers() -> &'static [&'static str] {
        &[]
    }
    fn row(&self) -> Vec<String> {
        Vec::new()
    }
}

#[derive(serde::Serialize)]
struct CallRow(PlannedCall);

impl Record for CallRow {
    fn headers() -> &'static [&'static str] {
        &["call", "cmd", "items", "reason"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.0.id.clone(),
            self.0.cmd.into(),
            self.0.items.to_string(),
            self.0.reason.clone(),
        ]
    }
}

async fn import_cmd(ctx: &Ctx, file: PathBuf, batch_size: usize, dry_run: bool) -> Result<()> {
    let (label, f) = super::open_input(&file)?;
    let rows = import::parse_csv(&label, f)?;
    let client = ctx.client()?;
    let plan: ImportPlan = import::build_plan(client, rows, batch_size).await?;
    crate::note!(
        "plan: {} row(s): {} to create in {} batchadd call(s), {} skipped (already exist)",
        plan.items.len(),
        plan.to_create(),
        plan.calls.len(),
        plan.skipped()
    );
    if dry_run {
        return emit_plan(ctx, &plan, &plan.items, &plan.calls);
    }
    let bar = progress_bar(plan.to_create() as u64);
    let results = import::apply(client, plan, &mut |n| bar.inc(n)).await;
    bar.finish_and_clear();
    let failed = results.iter().filter(|r| r.outcome.is_failure()).count();
    let created = results
        .iter()
        .filter(|r| r.outcome == Outcome::Created)
        .count();
    crate::note!("import: {created} created, {failed} failed");
    emit_results(ctx, &results)?;
    check_results(&results)
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub(super) fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})",
    ) {
        bar.set_style(style);
    }
    bar
}
