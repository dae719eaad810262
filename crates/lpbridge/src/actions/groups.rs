//! Group actions: list and get (with members), one user's memberships, bulk membership changes
//! (the same plan and apply as `lpbridge groups apply`).

use lastpass::{Client, GroupChange, GroupName};
use serde::Serialize;
use serde_json::json;

use super::types::*;
use super::{ActionError, ActionOutput, to_data};
use crate::admin::groups::{self as admin_groups, MembershipAction, MembershipRow};
use crate::admin::{Outcome, attribute_errors};

pub(super) async fn list(client: &Client) -> Result<ActionOutput, ActionError> {
    let groups = admin_groups::all_groups(client).await?;
    Ok(ActionOutput::read(json!({
        "groups": to_data(&groups),
        "count": groups.len(),
    })))
}

pub(super) async fn get(client: &Client, i: GroupInput) -> Result<ActionOutput, ActionError> {
    let groups = admin_groups::all_groups(client).await?;
    let g = groups
        .into_iter()
        .find(|g| g.name == i.name.0.as_str())
        .ok_or_else(|| ActionError::NotFound(format!("no such group: {}", i.name.0)))?;
    Ok(ActionOutput::read(to_data(&g)))
}

/// One group's outcome for one user.
#[derive(Serialize)]
struct GroupResult {
    group: String,
    action: &'static str,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// One `batchchangegrp` call for one user; one result per group, LastPass's `WARN` errors
/// attributed to the groups they name (all groups when they name none).
pub(super) async fn change_user(
    client: &Client,
    i: ChangeUserGroupsInput,
) -> Result<ActionOutput, ActionError> {
    let change = GroupChange {
        username: i.email.0.clone(),
        add: i.add.iter().map(|g| g.0.clone()).collect(),
        del: i.remove.iter().map(|g| g.0.clone()).collect(),
    };
    let errors = match client.change_groups(std::slice::from_ref(&change)).await {
        Ok(()) => Vec::new(),
        Err(lastpass::Error::Partial { errors, .. }) => errors,
        Err(e) => return Err(e.into()),
    };
    let groups: Vec<(&GroupName, &'static str)> = change
        .add
        .iter()
        .map(|g| (g, "add"))
        .chain(change.del.iter().map(|g| (g, "remove")))
        .collect();
    // Attributed by group name: every item is this one user, so a message naming the user
    // concerns all of them, and one naming a group concerns that group.
    let email = i.email.0.as_str();
    let keys: Vec<(&str, Vec<&str>)> = groups
        .iter()
        .map(|(g, _)| (email, vec![g.as_str()]))
        .collect();
    let messages = attribute_errors(&errors, &keys);
    let results: Vec<GroupResult> = groups
        .iter()
        .zip(messages)
        .map(|((g, action), message)| GroupResult {
            group: g.to_string(),
            action,
            outcome: if message.is_some() {
                Outcome::Failed
            } else {
                Outcome::Ok
            },
            message,
        })
        .collect();
    let failed = results
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .count();
    Ok(ActionOutput::wrote(json!({
        "email": i.email.0.as_str(),
        "results": to_data(&results),
        "succeeded": results.len() - failed,
        "failed": failed,
    })))
}

pub(super) async fn add_user(
    client: &Client,
    i: UserGroupsInput,
) -> Result<ActionOutput, ActionError> {
    change_user(
        client,
        ChangeUserGroupsInput {
            email: i.email,
            add: i.groups,
            remove: Vec::new(),
        },
    )
    .await
}

pub(super) async fn remove_user(
    client: &Client,
    i: UserGroupsInput,
) -> Result<ActionOutput, ActionError> {
    change_user(
        client,
        ChangeUserGroupsInput {
            email: i.email,
            add: Vec::new(),
            remove: i.groups,
        },
    )
    .await
}

pub(super) async fn change_members(
    client: &Client,
    i: ChangeGroupMembersInput,
) -> Result<ActionOutput, ActionError> {
    // `line` is the 1-based position in `changes` (the plan's row number).
    let rows: Vec<MembershipRow> = i
        .changes
        .into_iter()
        .enumerate()
        .map(|(n, c)| MembershipRow {
            line: n as u64 + 1,
            email: c.email.0,
            group: c.group.0,
            action: match c.action {
                MembershipVerb::Add => MembershipAction::Add,
                MembershipVerb::Remove => MembershipAction::Remove,
            },
        })
        .collect();
    let current = admin_groups::current_memberships(client, &rows).await?;
    let plan = admin_groups::plan(rows, &current, admin_groups::DEFAULT_BATCH_SIZE);
    if i.dry_run {
        return Ok(ActionOutput::read(json!({
            "dry_run": true,
            "changes": plan.changes(),
            "plan": to_data(&plan),
        })));
    }
    let changes = plan.changes();
    let results = admin_groups::apply(client, plan).await;
    let failed = results.iter().filter(|r| r.outcome.is_failure()).count();
    let skipped = results
        .iter()
        .filter(|r| r.outcome == Outcome::Skipped)
        .count();
    Ok(ActionOutput {
        data: json!({
            "results": to_data(&results),
            "succeeded": results.len() - failed - skipped,
            "skipped": skipped,
            "failed": failed,
        }),
        changed_directory: changes > 0,
    })
}
