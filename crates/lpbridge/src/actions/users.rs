//! User actions: invite, list, get, update, e-mail change, delete, enable/disable, per-user
//! e-mails and MFA, bulk create and bulk delete. Bulk behaviour is [`crate::admin`]'s.

use lastpass::{Client, Email, MAX_USER_PAGE_SIZE, NewUser, UserQuery, UserUpdate};
use serde::Serialize;
use serde_json::{Value, json};

use super::input::{GroupArg, Password};
use super::types::*;
use super::{ActionError, ActionOutput, to_data};
use crate::admin::bulk::{UserOp, run_user_op, toggle_users};
use crate::admin::dedup_emails;
use crate::admin::directory::{self, Lookup, StatusFilter, UserFilter};
use crate::admin::import::{self, ImportRow};
use crate::admin::{ItemResult, Outcome};
use crate::records::UserRecord;

/// A batchadd user; `password_reset_required` only counts with a password.
fn new_user(
    email: Email,
    full_name: Option<String>,
    groups: &[GroupArg],
    password: Option<Password>,
    password_reset_required: Option<bool>,
) -> NewUser {
    let mut user = NewUser::new(email);
    user.fullname = full_name;
    user.groups = groups.iter().map(|g| g.0.clone()).collect();
    user.password = password.map(|p| p.0);
    user.password_reset_required = user.password.as_ref().and(password_reset_required);
    user
}

/// A per-item report plus its counts.
#[derive(Serialize)]
struct Report<'a> {
    results: &'a [ItemResult],
    succeeded: usize,
    failed: usize,
}

fn report(results: &[ItemResult]) -> Value {
    let failed = results.iter().filter(|r| r.outcome.is_failure()).count();
    to_data(&Report {
        results,
        succeeded: results.len() - failed,
        failed,
    })
}

fn one(email: &Email, action: &str) -> Value {
    to_data(&ItemResult::for_email(email, action, None))
}

pub(super) async fn invite(
    client: &Client,
    i: InviteUserInput,
) -> Result<ActionOutput, ActionError> {
    let email = i.email.0;
    // batchadd does not say whether the address existed; look first, as the CLI does.
    match directory::lookup(client, &email).await? {
        Lookup::Missing => {}
        Lookup::User(_) => {
            return Err(ActionError::Conflict(format!(
                "user {email} already exists"
            )));
        }
        Lookup::Invited(_) => {
            return Err(ActionError::Conflict(format!(
                "{email} is already invited (lastpass_reinvite_user sends the invitation again)"
            )));
        }
    }
    let created = i.default_password.is_some();
    let user = new_user(
        email.clone(),
        i.full_name,
        &i.groups,
        i.default_password,
        i.password_reset_required,
    );
    client.batch_add(std::slice::from_ref(&user)).await?;
    let r = ItemResult {
        row: None,
        email: email.to_string(),
        action: if created { "create" } else { "invite" }.into(),
        outcome: Outcome::Created,
        message: None,
    };
    Ok(ActionOutput::wrote(to_data(&r)))
}

pub(super) async fn update_email(
    client: &Client,
    i: UpdateEmailInput,
) -> Result<ActionOutput, ActionError> {
    client.update_email(&i.old_email.0, &i.new_email.0).await?;
    Ok(ActionOutput::wrote(json!({
        "old_email": i.old_email.0.as_str(),
        "new_email": i.new_email.0.as_str(),
        "outcome": "ok",
        // LastPass finishes the change when the user next logs in.
        "status": "pending_confirmation",
    })))
}

pub(super) async fn single_op(
    client: &Client,
    op: UserOp,
    i: UserInput,
) -> Result<ActionOutput, ActionError> {
    let email = &i.email.0;
    op.call(client, email).await?;
    // Reinvitations and reset e-mails change nothing in the directory listing.
    let changes = !matches!(op, UserOp::Reinvite | UserOp::ResetPassword);
    Ok(ActionOutput {
        data: one(email, op.name()),
        changed_directory: changes,
    })
}

pub(super) async fn delete(
    client: &Client,
    i: DeleteUserInput,
) -> Result<ActionOutput, ActionError> {
    let action = i.delete_action.0;
    client.delete_user(&i.email.0, action).await?;
    let mut r = one(&i.email.0, UserOp::Delete(action).name());
    if let Some(m) = r.as_object_mut() {
        m.insert("delete_action".into(), action.code().into());
    }
    Ok(ActionOutput::wrote(r))
}

pub(super) async fn bulk_delete(
    client: &Client,
    i: BulkDeleteUsersInput,
) -> Result<ActionOutput, ActionError> {
    let emails = dedup_emails(i.emails.into_iter().map(|e| e.0).collect());
    let results = run_user_op(client, UserOp::Delete(i.delete_action.0), &emails).await;
    let mut data = report(&results);
    if let Some(m) = data.as_object_mut() {
        m.insert("delete_action".into(), i.delete_action.0.code().into());
    }
    Ok(ActionOutput::wrote(data))
}

pub(super) async fn toggle(
    client: &Client,
    enable: bool,
    i: UsersInput,
) -> Result<ActionOutput, ActionError> {
    let results = toggle_users(client, enable, &i.addresses()).await?;
    Ok(ActionOutput::wrote(report(&results)))
}

pub(super) async fn get(client: &Client, i: UserInput) -> Result<ActionOutput, ActionError> {
    let record = match directory::lookup(client, &i.email.0).await? {
        Lookup::User(u) => UserRecord::from(*u),
        Lookup::Invited(name) => UserRecord::invited(name),
        Lookup::Missing => {
            return Err(ActionError::NotFound(format!(
                "no such user: {}",
                i.email.0
            )));
        }
    };
    Ok(ActionOutput::read(to_data(&record)))
}

pub(super) async fn update(
    client: &Client,
    i: UpdateUserInput,
) -> Result<ActionOutput, ActionError> {
    let mut fields = Vec::new();
    for (name, v) in [
        ("full_name", &i.full_name),
        ("duo_username", &i.duo_username),
        ("securid_username", &i.securid_username),
    ] {
        if v.is_some() {
            fields.push(name);
        }
    }
    client
        .update_user(&UserUpdate {
            username: i.email.0.clone(),
            fullname: i.full_name,
            duo_username: i.duo_username,
            securid_username: i.securid_username,
        })
        .await?;
    let mut r = one(&i.email.0, "update");
    if let Some(m) = r.as_object_mut() {
        m.insert("updated_fields".into(), json!(fields));
    }
    Ok(ActionOutput::wrote(r))
}

pub(super) async fn list(client: &Client, i: ListUsersInput) -> Result<ActionOutput, ActionError> {
    if let Some(page_size) = i.page_size {
        return list_page(client, &i, page_size).await;
    }
    let limit = i.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    let filter = UserFilter {
        emails: dedup_emails(i.emails.iter().map(|e| e.0.clone()).collect()),
        status: status_filter(i.status),
        admin: i.admin == Some(true),
        group: i.group.as_ref().map(|g| g.0.clone()),
        // One more than asked, to tell whether the answer was cut. `admin: false` is filtered
        // here (the directory filter only knows "admins"), so the listing cannot stop early.
        limit: (i.admin != Some(false)).then_some(limit + 1),
    };
    let not_admin_only = i.admin == Some(false);
    let mut users: Vec<UserRecord> = Vec::new();
    directory::list_users(client, &filter, &mut |r| {
        let keep = !not_admin_only
            || matches!(&r, UserRecord::Known(k) if !k.user.admin)
            || matches!(&r, UserRecord::Invited(_));
        if keep && users.len() as u64 <= limit {
            users.push(r);
        }
        Ok(())
    })
    .await?;
    let truncated = users.len() as u64 > limit;
    users.truncate(limit as usize);
    Ok(ActionOutput::read(json!({
        "users": to_data(&users),
        "count": users.len(),
        "truncated": truncated,
    })))
}

fn status_filter(s: UserStatusFilter) -> StatusFilter {
    match s {
        UserStatusFilter::Active => StatusFilter::Active,
        UserStatusFilter::Disabled => StatusFilter::Disabled,
        UserStatusFilter::Invited => StatusFilter::Invited,
        UserStatusFilter::All => StatusFilter::All,
    }
}

/// One server-side page: `getuserdata` with `pagesize`/`pageindex`; the status and group filters
/// apply to the page's users.
async fn list_page(
    client: &Client,
    i: &ListUsersInput,
    page_size: u32,
) -> Result<ActionOutput, ActionError> {
    let page_size = page_size.min(MAX_USER_PAGE_SIZE);
    let page_index = i.page_index.unwrap_or(0);
    let status = status_filter(i.status);
    let query = UserQuery {
        username: None,
        disabled: status.disabled_query(),
        admin: i.admin,
    };
    let page = client.user_page(&query, page_size, page_index).await?;
    let returned = page.users.len() as u64;
    let users: Vec<UserRecord> = page
        .users
        .into_iter()
        .filter(|u| status.keeps(u.status()))
        .filter(|u| i.admin.is_none_or(|a| u.admin == a))
        .filter(|u| {
            i.group
                .as_ref()
                .is_none_or(|g| u.groups.iter().any(|x| x == g.0.as_str()))
        })
        .map(UserRecord::from)
        .collect();
    let seen = u64::from(page_index) * u64::from(page_size) + returned;
    let next_page_index = (returned > 0 && seen < page.total)
        .then(|| page_index.checked_add(1))
        .flatten();
    Ok(ActionOutput::read(json!({
        "users": to_data(&users),
        "count": users.len(),
        "total": page.total,
        "page_size": page_size,
        "page_index": page_index,
        "next_page_index": next_page_index,
        "invited": page.invited,
    })))
}

pub(super) async fn bulk_create(
    client: &Client,
    i: BulkCreateUsersInput,
) -> Result<ActionOutput, ActionError> {
    let rows: Vec<ImportRow> = i
        .users
        .into_iter()
        .enumerate()
        .map(|(n, u)| {
            let mut user = new_user(
                u.email.0,
                u.full_name,
                &u.groups,
                u.default_password,
                u.password_reset_required,
            );
            user.attribs = u.attribs;
            user.duo_username = u.duo_username;
            user.securid_username = u.securid_username;
            // `line` is the 1-based position in `users` (the import plan's row number).
            ImportRow {
                line: n as u64 + 1,
                user,
            }
        })
        .collect();
    let plan = import::build_plan(client, rows, import::DEFAULT_BATCH_SIZE).await?;
    if i.dry_run {
        return Ok(ActionOutput::read(json!({
            "dry_run": true,
            "to_create": plan.to_create(),
            "skipped": plan.skipped(),
            "plan": to_data(&plan),
        })));
    }
    let results = import::apply(client, plan, &mut |_| {}).await;
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    let (created, skipped) = (count(Outcome::Created), count(Outcome::Skipped));
    let mut data = report(&results);
    if let Some(m) = data.as_object_mut() {
        m.insert("created".into(), created.into());
        m.insert("skipped".into(), skipped.into());
    }
    Ok(ActionOutput {
        data,
        changed_directory: created > 0 || results.iter().any(|r| r.outcome.is_failure()),
    })
}
