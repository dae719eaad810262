//! Shared-folder reads: folders, detailed folders (sites), and the unified connector's
//! permission-set / policy / role views of `getsfdata` (see the module documentation of
//! [`super`] for what "policy" and "role" mean here).

use futures::TryStreamExt;
use lastpass::{Client, FolderMember, FolderRole, SharedFolder};
use serde::Serialize;
use serde_json::json;

use super::types::*;
use super::{ActionError, ActionOutput, to_data};
use crate::records::FolderRecord;

/// Folders per `getdetailedsfdata` call without `page_size`.
const DETAILED_PAGE_SIZE: u32 = 100;

/// One member's permissions on one folder.
#[derive(Serialize)]
struct Permission<'a> {
    username: &'a str,
    role: FolderRole,
    readonly: bool,
    give: bool,
    can_administer: bool,
    superadmin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sites: Option<&'a [String]>,
}

impl<'a> Permission<'a> {
    fn new(m: &'a FolderMember) -> Self {
        Self {
            username: &m.username,
            role: m.role(),
            readonly: m.readonly,
            give: m.give,
            can_administer: m.can_administer,
            superadmin: m.superadmin,
            sites: m.sites.as_deref(),
        }
    }
}

/// A folder's permission set (its policy).
#[derive(Serialize)]
struct PermissionSet<'a> {
    /// The shared folder id.
    id: &'a str,
    folder_name: &'a str,
    deleted: bool,
    member_count: usize,
    permissions: Vec<Permission<'a>>,
}

impl<'a> PermissionSet<'a> {
    fn new(f: &'a SharedFolder) -> Self {
        Self {
            id: f.id.as_str(),
            folder_name: &f.name,
            deleted: f.deleted,
            member_count: f.users.len(),
            permissions: f.users.iter().map(Permission::new).collect(),
        }
    }
}

pub(super) async fn list(client: &Client) -> Result<ActionOutput, ActionError> {
    let folders = client.shared_folders().await?;
    let records: Vec<FolderRecord> = folders.iter().map(FolderRecord::from).collect();
    Ok(ActionOutput::read(json!({
        "folders": to_data(&records),
        "count": records.len(),
    })))
}

pub(super) async fn detailed(
    client: &Client,
    i: DetailedFoldersInput,
) -> Result<ActionOutput, ActionError> {
    let page_size = i.page_size.unwrap_or(DETAILED_PAGE_SIZE);
    let folders: Vec<SharedFolder> = client
        .detailed_shared_folders_paged(page_size)
        .try_collect()
        .await?;
    let out: Vec<_> = folders
        .iter()
        .map(|f| {
            json!({
                "id": f.id.as_str(),
                "name": f.name,
                "score": f.score,
                "deleted": f.deleted,
                "member_count": f.users.len(),
                "members": to_data(&f.users.iter().map(Permission::new).collect::<Vec<_>>()),
            })
        })
        .collect();
    Ok(ActionOutput::read(json!({
        "folders": out,
        "count": folders.len(),
    })))
}

pub(super) async fn permission_sets(client: &Client) -> Result<ActionOutput, ActionError> {
    let folders = client.shared_folders().await?;
    let sets: Vec<PermissionSet> = folders.iter().map(PermissionSet::new).collect();
    Ok(ActionOutput::read(json!({
        "permission_sets": to_data(&sets),
        "count": sets.len(),
    })))
}

pub(super) async fn policy(
    client: &Client,
    i: FolderPolicyInput,
) -> Result<ActionOutput, ActionError> {
    let folders = client.shared_folders().await?;
    let f = folders
        .iter()
        .find(|f| f.id == i.id.0)
        .ok_or_else(|| ActionError::NotFound(format!("no such shared folder: {}", i.id.0)))?;
    Ok(ActionOutput::read(to_data(&PermissionSet::new(f))))
}

/// The three roles, in a stable order, with the flags that define them.
const ROLES: [(FolderRoleKey, FolderRole, &str, &str); 3] = [
    (
        FolderRoleKey::Admin,
        FolderRole::Admin,
        "admin",
        "can_administer: manages the folder's members and sites",
    ),
    (
        FolderRoleKey::Editor,
        FolderRole::Editor,
        "editor",
        "neither can_administer nor readonly: edits the folder's sites",
    ),
    (
        FolderRoleKey::Viewer,
        FolderRole::Viewer,
        "viewer",
        "readonly (without can_administer): uses the sites, cannot change them",
    ),
];

#[derive(Serialize)]
struct Assignment<'a> {
    folder_id: &'a str,
    folder_name: &'a str,
    username: &'a str,
    give: bool,
}

fn role_view<'a>(
    folders: &'a [SharedFolder],
    role: FolderRole,
    id: &str,
    definition: &str,
) -> serde_json::Value {
    let assignments: Vec<Assignment<'a>> = folders
        .iter()
        .flat_map(|f| {
            f.users
                .iter()
                .filter(move |m| m.role() == role)
                .map(move |m| Assignment {
                    folder_id: f.id.as_str(),
                    folder_name: &f.name,
                    username: &m.username,
                    give: m.give,
                })
        })
        .collect();
    json!({
        "id": id,
        "name": id,
        "definition": definition,
        "assignment_count": assignments.len(),
        "assignments": to_data(&assignments),
    })
}

pub(super) async fn roles(client: &Client) -> Result<ActionOutput, ActionError> {
    let folders = client.shared_folders().await?;
    let roles: Vec<_> = ROLES
        .iter()
        .map(|(_, role, id, def)| role_view(&folders, *role, id, def))
        .collect();
    Ok(ActionOutput::read(
        json!({ "roles": roles, "count": roles.len() }),
    ))
}

pub(super) async fn role(client: &Client, i: FolderRoleInput) -> Result<ActionOutput, ActionError> {
    let folders = client.shared_folders().await?;
    // Every key has an entry (`ROLES` lists all three); the fallback is unreachable.
    let Some((_, role, id, def)) = ROLES.iter().find(|(k, ..)| *k == i.id) else {
        return Err(ActionError::NotFound(format!("no such role: {:?}", i.id)));
    };
    Ok(ActionOutput::read(role_view(&folders, *role, id, def)))
}
