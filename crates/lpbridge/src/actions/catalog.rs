//! The catalog (one entry per action, stable order), the product-description mapping, and the
//! name → handler dispatch.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::input::{Validate, parse_input};
use super::passthrough::ProxyRequest;
use super::types::*;
use super::{
    ActionError, ActionKind, ActionOutput, ActionSpec, events, folders, groups, passthrough, sites,
    users,
};
use crate::admin::bulk::UserOp;

/// The integrator's LastPass module description (Boost.space Integrator).
pub const SOURCE_INTEGRATOR: &str = "integrator-lastpass-module";
/// The unified connector's LastPass action list.
pub const SOURCE_UNIFIED: &str = "unified-connector-lastpass-actions";

const I: &[&str] = &[SOURCE_INTEGRATOR];
const U: &[&str] = &[SOURCE_UNIFIED];
const IU: &[&str] = &[SOURCE_INTEGRATOR, SOURCE_UNIFIED];
const NONE: &[&str] = &[];

/// One item of a product description and the action that implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductItem {
    pub source: &'static str,
    pub item: &'static str,
    pub action: &'static str,
}

const fn item(source: &'static str, item: &'static str, action: &'static str) -> ProductItem {
    ProductItem {
        source,
        item,
        action,
    }
}

/// Every item of both product descriptions → its action (the module documentation's table).
pub const PRODUCT_ITEMS: &[ProductItem] = &[
    item(SOURCE_INTEGRATOR, "Invite a user", "lastpass_invite_user"),
    item(
        SOURCE_INTEGRATOR,
        "Update user email",
        "lastpass_update_email",
    ),
    item(
        SOURCE_INTEGRATOR,
        "Reinvite a user",
        "lastpass_reinvite_user",
    ),
    item(SOURCE_INTEGRATOR, "List users", "lastpass_list_users"),
    item(
        SOURCE_INTEGRATOR,
        "Delete a user (deactivate/remove/delete)",
        "lastpass_delete_user",
    ),
    item(
        SOURCE_INTEGRATOR,
        "Push sites to users",
        "lastpass_push_sites",
    ),
    item(
        SOURCE_INTEGRATOR,
        "Add/Remove a user in groups",
        "lastpass_change_user_groups",
    ),
    item(
        SOURCE_INTEGRATOR,
        "Require master password change",
        "lastpass_require_password_change",
    ),
    item(
        SOURCE_INTEGRATOR,
        "Disable multifactor",
        "lastpass_disable_mfa",
    ),
    item(
        SOURCE_INTEGRATOR,
        "Watch new reports (trigger)",
        "lastpass_list_events",
    ),
    item(SOURCE_INTEGRATOR, "Make an API call", "lastpass_api_call"),
    item(
        SOURCE_UNIFIED,
        "Retrieve audit event logs",
        "lastpass_list_events",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve all groups and their members",
        "lastpass_list_groups",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve a specific group and its members",
        "lastpass_get_group",
    ),
    item(
        SOURCE_UNIFIED,
        "Add or remove users from groups in bulk",
        "lastpass_change_group_members",
    ),
    item(
        SOURCE_UNIFIED,
        "Return the authentication type and identity",
        "lastpass_unified_me",
    ),
    item(
        SOURCE_UNIFIED,
        "List all groups (unified group schema)",
        "lastpass_unified_list_groups",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve a single group (unified group schema)",
        "lastpass_unified_get_group",
    ),
    item(
        SOURCE_UNIFIED,
        "Return the single organization",
        "lastpass_unified_list_organizations",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve the single organization by its CID",
        "lastpass_unified_get_organization",
    ),
    item(
        SOURCE_UNIFIED,
        "List users and groups with access to shared folders",
        "lastpass_unified_list_resource_users",
    ),
    item(
        SOURCE_UNIFIED,
        "Return the resource types",
        "lastpass_unified_list_resource_types",
    ),
    item(
        SOURCE_UNIFIED,
        "Return the two account-level roles",
        "lastpass_unified_list_roles",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve a single synthesized role",
        "lastpass_unified_get_role",
    ),
    item(
        SOURCE_UNIFIED,
        "List all users (unified user schema)",
        "lastpass_unified_list_users",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve a single user (unified user schema)",
        "lastpass_unified_get_user",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve shared folder data containing permission sets",
        "lastpass_list_shared_folder_permission_sets",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve shared folder data to look up a specific policy by ID",
        "lastpass_get_shared_folder_policy",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve shared folder data containing role permission sets",
        "lastpass_list_shared_folder_roles",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve shared folder data to look up a specific role by ID",
        "lastpass_get_shared_folder_role",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve a list of all shared folders",
        "lastpass_list_shared_folders",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve detailed information about all shared folders",
        "lastpass_list_shared_folders_detailed",
    ),
    item(
        SOURCE_UNIFIED,
        "Distribute credential entries (sites) to users",
        "lastpass_push_sites",
    ),
    item(
        SOURCE_UNIFIED,
        "Retrieve detailed account data for users (getuserdata)",
        "lastpass_list_users",
    ),
    item(
        SOURCE_UNIFIED,
        "Bulk-create one or more users (batchadd)",
        "lastpass_bulk_create_users",
    ),
    item(
        SOURCE_UNIFIED,
        "Update attributes for an existing user",
        "lastpass_update_user",
    ),
    item(
        SOURCE_UNIFIED,
        "Deactivate, remove, or permanently delete a user (deluser)",
        "lastpass_delete_user",
    ),
    item(
        SOURCE_UNIFIED,
        "Delete multiple users in a single call",
        "lastpass_bulk_delete_users",
    ),
    item(
        SOURCE_UNIFIED,
        "Deactivate a user account while preserving their vault data",
        "lastpass_disable_user",
    ),
    item(
        SOURCE_UNIFIED,
        "Re-enable a previously disabled user account",
        "lastpass_enable_user",
    ),
    item(
        SOURCE_UNIFIED,
        "Resend an invitation email",
        "lastpass_reinvite_user",
    ),
    item(
        SOURCE_UNIFIED,
        "Disable multifactor authentication for a user",
        "lastpass_disable_mfa",
    ),
    item(
        SOURCE_UNIFIED,
        "Send a master password reset email",
        "lastpass_reset_password",
    ),
    item(
        SOURCE_UNIFIED,
        "Require a user to change their master password",
        "lastpass_require_password_change",
    ),
    item(
        SOURCE_UNIFIED,
        "Update a user's primary email address",
        "lastpass_update_email",
    ),
];

/// The JSON Schema of `T`: draft 2020-12, every subschema inlined (no `$ref`/`$defs`), so that
/// it can be embedded anywhere (an OpenAPI 3.1 document included).
fn schema<T: JsonSchema>() -> Value {
    let mut v = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    // An input without fields still says so (`properties: {}`), so every schema has one shape.
    if let Some(m) = v.as_object_mut()
        && m.get("type").and_then(Value::as_str) == Some("object")
    {
        m.entry("properties")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    v
}

fn check<T: DeserializeOwned + Validate>(input: &Value) -> Result<(), ActionError> {
    parse_input::<T>(input).map(|_| ())
}

/// An entry, with its input type named once for both the schema and the validator.
macro_rules! spec {
    ($name:literal, $kind:ident, write = $write:literal, $ty:ty, $source:expr,
     summary = $summary:literal, description = $desc:literal, example = $example:literal $(,)?) => {
        (
            ActionSpec {
                name: $name,
                summary: $summary,
                description: $desc,
                kind: ActionKind::$kind,
                write: $write,
                input_schema: schema::<$ty>,
                source: $source,
                example: $example,
            },
            check::<$ty> as fn(&Value) -> Result<(), ActionError>,
        )
    };
}

type Entry = (ActionSpec, fn(&Value) -> Result<(), ActionError>);

const ENTRIES: &[Entry] = &[
    // ---- users ------------------------------------------------------------------------
    spec!(
        "lastpass_invite_user",
        Direct,
        write = true,
        InviteUserInput,
        I,
        summary = "Invite a new user (batchadd).",
        description = "Invites one user by e-mail (batchadd). Without default_password LastPass e-mails an invitation; with one the account is created with that master password, and password_reset_required (default true) says whether it must be changed at first login. An existing user or pending invitation is refused with a conflict (checked with getuserdata first).",
        example = r#"{"email": "ann@example.com", "full_name": "Ann Lee", "groups": ["Sales"]}"#
    ),
    spec!(
        "lastpass_update_email",
        Direct,
        write = true,
        UpdateEmailInput,
        IU,
        summary = "Change a user's e-mail address (updateemail).",
        description = "Changes a user's e-mail address (updateemail, held to LastPass's 10 per second). LastPass e-mails the user, and the change completes when they next log in; until then the old address is listed.",
        example = r#"{"old_email": "ann@example.com", "new_email": "ann.lee@example.com"}"#
    ),
    spec!(
        "lastpass_reinvite_user",
        Direct,
        write = true,
        UserInput,
        IU,
        summary = "Resend the invitation e-mail (reinviteuser).",
        description = "Sends a pending user's invitation e-mail again (reinviteuser). Not retried after an ambiguous failure, so that no second e-mail is sent.",
        example = r#"{"email": "ann@example.com"}"#
    ),
    spec!(
        "lastpass_list_users",
        Direct,
        write = false,
        ListUsersInput,
        IU,
        summary = "List users with filters (getuserdata).",
        description = "Lists users (getuserdata) with the integrator's filters: emails (one lookup each), status (active, disabled, invited, all), admin, group, limit (default 2000, at most 10000; the answer says truncated). With page_size (at most 2000) one server-side page is read instead (page_index from 0), answering total and next_page_index.",
        example = r#"{"status": "active", "admin": false, "limit": 100}"#
    ),
    spec!(
        "lastpass_get_user",
        Direct,
        write = false,
        UserInput,
        NONE,
        summary = "One user by e-mail (getuserdata).",
        description = "One user by e-mail address (getuserdata with username), including a pending invitee known only by name. Unknown address: not found.",
        example = r#"{"email": "ann@example.com"}"#
    ),
    spec!(
        "lastpass_update_user",
        Direct,
        write = true,
        UpdateUserInput,
        U,
        summary = "Update a user's name or MFA usernames (updateuser).",
        description = "Updates full_name, duo_username and/or securid_username of a user (updateuser); at least one. Admin rights cannot be changed through the API.",
        example = r#"{"email": "ann@example.com", "full_name": "Ann Lee-Smith"}"#
    ),
    spec!(
        "lastpass_delete_user",
        Direct,
        write = true,
        DeleteUserInput,
        IU,
        summary = "Deactivate, remove or delete a user (deluser).",
        description = "Deactivates, removes or deletes one user (deluser). delete_action is required, with no default: deactivate (0: block login, keep the vault and membership), remove (1: remove from the Business account; the user keeps a free personal account), delete (2: delete the account, irreversible), uninvite (3: cancel a pending invitation); by name or code.",
        example = r#"{"email": "ann@example.com", "delete_action": "deactivate"}"#
    ),
    spec!(
        "lastpass_bulk_create_users",
        Direct,
        write = true,
        BulkCreateUsersInput,
        U,
        summary = "Create (invite) many users (batchadd).",
        description = "Creates or invites up to 1000 users (batchadd, 500 per call). Existing users and pending invitations are skipped (found with the fewest getuserdata calls); each user gets an outcome (created, skipped, failed, not_attempted). dry_run answers the plan without changing anything.",
        example = r#"{"users": [{"email": "ann@example.com", "full_name": "Ann Lee", "groups": ["Sales"], "attribs": {"Department": "Sales"}}, {"email": "bob@example.com"}]}"#
    ),
    spec!(
        "lastpass_bulk_delete_users",
        Direct,
        write = true,
        BulkDeleteUsersInput,
        U,
        summary = "Deactivate, remove or delete many users (deluser).",
        description = "Applies one delete_action (required, no default; see lastpass_delete_user) to up to 1000 users: one deluser call each, 4 at a time, one outcome per address.",
        example = r#"{"emails": ["ann@example.com", "bob@example.com"], "delete_action": 1}"#
    ),
    spec!(
        "lastpass_disable_user",
        Direct,
        write = true,
        UsersInput,
        U,
        summary = "Disable users, keeping their vaults (disableuser).",
        description = "Disables one user (email) or up to 1000 (emails) in one disableuser call; vault data is kept. Each address is reported as ok (disabled now), unchanged (already disabled) or failed.",
        example = r#"{"email": "ann@example.com"}"#
    ),
    spec!(
        "lastpass_enable_user",
        Direct,
        write = true,
        UsersInput,
        U,
        summary = "Re-enable disabled users (enableuser).",
        description = "Re-enables one user (email) or up to 1000 (emails) in one enableuser call. Each address is reported as ok, unchanged (already enabled) or failed.",
        example = r#"{"emails": ["ann@example.com", "bob@example.com"]}"#
    ),
    spec!(
        "lastpass_disable_mfa",
        Direct,
        write = true,
        UserInput,
        IU,
        summary = "Disable a user's multifactor authentication (disablemultifactor).",
        description = "Turns off a user's multifactor authentication (disablemultifactor).",
        example = r#"{"email": "ann@example.com"}"#
    ),
    spec!(
        "lastpass_reset_password",
        Direct,
        write = true,
        UserInput,
        U,
        summary = "Send a master password reset e-mail (resetpassword).",
        description = "Sends a master password reset e-mail to a user (resetpassword). Not retried after an ambiguous failure, so that no second e-mail is sent.",
        example = r#"{"email": "ann@example.com"}"#
    ),
    spec!(
        "lastpass_require_password_change",
        Direct,
        write = true,
        UserInput,
        IU,
        summary = "Require a master password change at next login (requiremasterpasswordchange).",
        description = "Requires a user to change their master password at their next login (requiremasterpasswordchange).",
        example = r#"{"email": "ann@example.com"}"#
    ),
    // ---- sites -------------------------------------------------------------------------
    spec!(
        "lastpass_push_sites",
        Direct,
        write = true,
        PushSitesInput,
        IU,
        summary = "Push a site into users' vaults (pushsitestousers).",
        description = "Pushes a site to all users, a group or one user (pushsitestousers); answers the push id (psid). push_to is all, an e-mail address or a group name. username_type: email (default), username (local part) or custom (username required). A user must have logged in to the browser extension once to receive it. Not retried after an ambiguous failure.",
        example = r#"{"push_to": "Sales", "url": "https://crm.example.com", "label": "CRM", "username_type": "custom", "username": "sales-team", "password": "correct horse battery staple", "folder": "Work", "favorite": true}"#
    ),
    // ---- groups ------------------------------------------------------------------------
    spec!(
        "lastpass_change_user_groups",
        Direct,
        write = true,
        ChangeUserGroupsInput,
        I,
        summary = "Add a user to and/or remove them from groups (batchchangegrp).",
        description = "Adds one user to the groups in add and removes them from the groups in remove, in one batchchangegrp call; one outcome per group (LastPass's warnings attributed to the groups they name).",
        example = r#"{"email": "ann@example.com", "add": ["Sales"], "remove": ["Support"]}"#
    ),
    spec!(
        "lastpass_add_user_to_groups",
        Direct,
        write = true,
        UserGroupsInput,
        NONE,
        summary = "Add a user to groups (batchchangegrp).",
        description = "Shorthand of lastpass_change_user_groups with add only.",
        example = r#"{"email": "ann@example.com", "groups": ["Sales", "EMEA"]}"#
    ),
    spec!(
        "lastpass_remove_user_from_groups",
        Direct,
        write = true,
        UserGroupsInput,
        NONE,
        summary = "Remove a user from groups (batchchangegrp).",
        description = "Shorthand of lastpass_change_user_groups with remove only.",
        example = r#"{"email": "ann@example.com", "groups": ["Support"]}"#
    ),
    spec!(
        "lastpass_change_group_members",
        Direct,
        write = true,
        ChangeGroupMembersInput,
        U,
        summary = "Add users to and remove users from groups in bulk (batchchangegrp).",
        description = "Applies up to 1000 membership changes ({email, group, action: add|remove}). A plan comes first: adding a member or removing a non-member is skipped, as is an unknown user (each with its reason); the rest goes out in batchchangegrp calls of up to 500 users, each change with its outcome. dry_run answers the plan only. LastPass has no command to create groups.",
        example = r#"{"changes": [{"email": "ann@example.com", "group": "Sales", "action": "add"}, {"email": "bob@example.com", "group": "Sales", "action": "remove"}]}"#
    ),
    spec!(
        "lastpass_list_groups",
        Direct,
        write = false,
        NoInput,
        U,
        summary = "All groups with their members (getuserdata).",
        description = "Every group with its members, pending invitees and empty groups included (one unpaged getuserdata whose Groups map is read). Groups are identified by name.",
        example = r#"{}"#
    ),
    spec!(
        "lastpass_get_group",
        Direct,
        write = false,
        GroupInput,
        U,
        summary = "One group with its members (getuserdata).",
        description = "One group by name, with its members. Unknown name: not found.",
        example = r#"{"name": "Sales"}"#
    ),
    // ---- shared folders -----------------------------------------------------------------
    spec!(
        "lastpass_list_shared_folders",
        Direct,
        write = false,
        NoInput,
        U,
        summary = "All shared folders (getsfdata).",
        description = "Every shared folder (getsfdata): id, name, score, deleted, member_count. Deleted folders are listed with deleted true.",
        example = r#"{}"#
    ),
    spec!(
        "lastpass_list_shared_folders_detailed",
        Direct,
        write = false,
        DetailedFoldersInput,
        U,
        summary = "All shared folders with members, permissions and sites (getdetailedsfdata).",
        description = "Every shared folder with its members, their permission flags, derived role and sites (getdetailedsfdata, paged with page_size folders per call, default 100, because the unpaged call can be refused with HTTP 429).",
        example = r#"{"page_size": 50}"#
    ),
    spec!(
        "lastpass_list_shared_folder_permission_sets",
        Direct,
        write = false,
        NoInput,
        U,
        summary = "Every shared folder's permission set (getsfdata).",
        description = "One permission set per shared folder (getsfdata): its id is the folder id, and it lists every member with readonly, give, can_administer, superadmin and the derived role (can_administer → admin, readonly → viewer, otherwise editor).",
        example = r#"{}"#
    ),
    spec!(
        "lastpass_get_shared_folder_policy",
        Direct,
        write = false,
        FolderPolicyInput,
        U,
        summary = "One shared folder's permission set (policy) by id (getsfdata).",
        description = "The policy of one shared folder, i.e. its permission set, by the shared folder id (getsfdata, filtered here). Unknown id: not found.",
        example = r#"{"id": "101"}"#
    ),
    spec!(
        "lastpass_list_shared_folder_roles",
        Direct,
        write = false,
        NoInput,
        U,
        summary = "The shared-folder roles with who holds them (getsfdata).",
        description = "The three shared-folder roles derived from the permission flags (admin: can_administer; editor: neither can_administer nor readonly; viewer: readonly), each with its definition and every (folder, member) assignment (getsfdata).",
        example = r#"{}"#
    ),
    spec!(
        "lastpass_get_shared_folder_role",
        Direct,
        write = false,
        FolderRoleInput,
        U,
        summary = "One shared-folder role by id: admin, editor or viewer (getsfdata).",
        description = "One shared-folder role by its key (admin, editor, viewer; any other id is refused as invalid input) with every (folder, member) assignment (getsfdata).",
        example = r#"{"id": "viewer"}"#
    ),
    // ---- events ------------------------------------------------------------------------
    spec!(
        "lastpass_list_events",
        Direct,
        write = false,
        ListEventsInput,
        IU,
        summary = "Audit events in a time window (reporting).",
        description = "Audit events (reporting), newest first, walking LastPass's next cursor: from (required), to (default now), search, user, admin_only, limit (default 1000, at most 10000; the answer says truncated). Times are in the account's time zone. This is also what the integrator's watch-new-reports trigger reads.",
        example = r#"{"from": "2026-01-01", "to": "2026-01-31 23:59:59", "search": "Login", "limit": 100}"#
    ),
    // ---- passthrough -------------------------------------------------------------------
    spec!(
        "lastpass_api_call",
        Direct,
        write = true,
        ApiCallInput,
        I,
        summary = "Any Enterprise API command, passed through (raw).",
        description = "Sends any Enterprise API command (cmd) with its data to the connection's own endpoint with the connection's credentials, and answers status, content_type and the body as received (JSON, or text). No URL or host can be supplied. method: only POST (default POST). headers: Content-Type and Accept are ignored, any other is refused. cid/provhash in data are refused: the connection's are used. An authorization error or a non-2xx status is an error. Counted as a write, since any command can be sent.",
        example = r#"{"cmd": "reporting", "data": {"from": "2026-01-01 00:00:00", "to": "2026-01-31 23:59:59", "user": "allusers"}, "method": "POST"}"#
    ),
    // ---- unified IAM (served by the unified module) --------------------------------------
    spec!(
        "lastpass_unified_list_users",
        Unified,
        write = false,
        UnifiedListUsersInput,
        U,
        summary = "Users in the unified IAM user schema.",
        description = "Users mapped to the StackOne IAM user schema (getuserdata): status enabled/disabled/pending, roles synthesized from the admin flag, groups, last_login_at, created_at. Cursor paging (page_size, next); filter.email applied client-side. Served as GET /unified/iam/users.",
        example = r#"{"page_size": 25, "filter": {"email": "ann@example.com"}}"#
    ),
    spec!(
        "lastpass_unified_get_user",
        Unified,
        write = false,
        UnifiedGetInput,
        U,
        summary = "One user (by e-mail) in the unified IAM user schema.",
        description = "One user by e-mail address (its id) in the StackOne IAM user schema (getuserdata with username). Served as GET /unified/iam/users/{id}.",
        example = r#"{"id": "ann@example.com"}"#
    ),
    spec!(
        "lastpass_unified_list_groups",
        Unified,
        write = false,
        UnifiedListInput,
        U,
        summary = "Groups in the unified IAM group schema.",
        description = "Groups (getuserdata's Groups map) in the StackOne IAM group schema; the name is the id. Served as GET /unified/iam/groups.",
        example = r#"{"page_size": 25}"#
    ),
    spec!(
        "lastpass_unified_get_group",
        Unified,
        write = false,
        UnifiedGetInput,
        U,
        summary = "One group (by name) in the unified IAM group schema.",
        description = "One group by name (its id) with members, in the StackOne IAM group schema. Served as GET /unified/iam/groups/{id}.",
        example = r#"{"id": "Sales"}"#
    ),
    spec!(
        "lastpass_unified_list_roles",
        Unified,
        write = false,
        UnifiedListInput,
        U,
        summary = "The two account roles, admin and basic.",
        description = "The two synthesized account-level roles, admin and basic (from the users' admin flag), after a getuserdata probe. Served as GET /unified/iam/roles.",
        example = r#"{}"#
    ),
    spec!(
        "lastpass_unified_get_role",
        Unified,
        write = false,
        UnifiedGetRoleInput,
        U,
        summary = "One account role: admin or basic.",
        description = "One synthesized role by id: admin or basic; any other id is refused. Served as GET /unified/iam/roles/{id}.",
        example = r#"{"id": "admin"}"#
    ),
    spec!(
        "lastpass_unified_list_organizations",
        Unified,
        write = false,
        UnifiedListInput,
        U,
        summary = "The account's one organization.",
        description = "The single organization of the account, identified by the CID, after a getuserdata probe. Served as GET /unified/iam/organizations.",
        example = r#"{}"#
    ),
    spec!(
        "lastpass_unified_get_organization",
        Unified,
        write = false,
        UnifiedGetInput,
        U,
        summary = "The organization by CID.",
        description = "The single organization by its CID (its id). Served as GET /unified/iam/organizations/{id}.",
        example = r#"{"id": "8771312"}"#
    ),
    spec!(
        "lastpass_unified_list_resource_types",
        Unified,
        write = false,
        UnifiedListInput,
        U,
        summary = "Resource types: shared_folder.",
        description = "The one resource type, shared_folder, after a getuserdata probe. Served as GET /unified/iam/resource_types.",
        example = r#"{}"#
    ),
    spec!(
        "lastpass_unified_list_resource_users",
        Unified,
        write = false,
        UnifiedResourceUsersInput,
        U,
        summary = "Who has access to a shared folder, with roles.",
        description = "Users and groups with access to one shared folder (getsfdata), role from the flags: can_administer → admin, give → editor, readonly → viewer. resource_type (shared_folder) and resource_id are both required. Served as GET /unified/iam/resource_users.",
        example = r#"{"resource_type": "shared_folder", "resource_id": "101"}"#
    ),
    spec!(
        "lastpass_unified_me",
        Unified,
        write = false,
        UnifiedMeInput,
        U,
        summary = "The connection's identity: auth_type api_key, named after the CID.",
        description = "The connection's identity (auth_type api_key, named after the CID) confirmed by a getuserdata probe, so bad credentials surface as 401/403. Served as GET /unified/iam/me.",
        example = r#"{}"#
    ),
];

/// Every action's spec (built once from [`ENTRIES`]).
pub(super) static CATALOG: std::sync::LazyLock<Vec<ActionSpec>> =
    std::sync::LazyLock::new(|| ENTRIES.iter().map(|(s, _)| *s).collect());

/// Parses `input` as the action's input type (Direct and Unified alike).
pub(super) fn validate(name: &str, input: &Value) -> Result<(), ActionError> {
    match ENTRIES.iter().find(|(s, _)| s.name == name) {
        Some((_, check)) => check(input),
        None => Err(ActionError::UnknownAction {
            name: name.to_owned(),
        }),
    }
}

/// The proxy body's schema (for `POST /unified/proxy` in OpenAPI).
pub fn proxy_request_schema() -> Value {
    schema::<ProxyRequest>()
}

/// Parses the input as the handler's type, then runs it.
pub(super) async fn dispatch(
    client: &lastpass::Client,
    name: &str,
    input: &Value,
) -> Result<ActionOutput, ActionError> {
    match name {
        "lastpass_invite_user" => users::invite(client, parse_input(input)?).await,
        "lastpass_update_email" => users::update_email(client, parse_input(input)?).await,
        "lastpass_reinvite_user" => {
            users::single_op(client, UserOp::Reinvite, parse_input(input)?).await
        }
        "lastpass_list_users" => users::list(client, parse_input(input)?).await,
        "lastpass_get_user" => users::get(client, parse_input(input)?).await,
        "lastpass_update_user" => users::update(client, parse_input(input)?).await,
        "lastpass_delete_user" => users::delete(client, parse_input(input)?).await,
        "lastpass_bulk_create_users" => users::bulk_create(client, parse_input(input)?).await,
        "lastpass_bulk_delete_users" => users::bulk_delete(client, parse_input(input)?).await,
        "lastpass_disable_user" => users::toggle(client, false, parse_input(input)?).await,
        "lastpass_enable_user" => users::toggle(client, true, parse_input(input)?).await,
        "lastpass_disable_mfa" => {
            users::single_op(client, UserOp::DisableMfa, parse_input(input)?).await
        }
        "lastpass_reset_password" => {
            users::single_op(client, UserOp::ResetPassword, parse_input(input)?).await
        }
        "lastpass_require_password_change" => {
            users::single_op(client, UserOp::RequirePasswordChange, parse_input(input)?).await
        }
        "lastpass_push_sites" => sites::push(client, parse_input(input)?).await,
        "lastpass_change_user_groups" => groups::change_user(client, parse_input(input)?).await,
        "lastpass_add_user_to_groups" => groups::add_user(client, parse_input(input)?).await,
        "lastpass_remove_user_from_groups" => {
            groups::remove_user(client, parse_input(input)?).await
        }
        "lastpass_change_group_members" => {
            groups::change_members(client, parse_input(input)?).await
        }
        "lastpass_list_groups" => {
            parse_input::<NoInput>(input)?;
            groups::list(client).await
        }
        "lastpass_get_group" => groups::get(client, parse_input(input)?).await,
        "lastpass_list_shared_folders" => {
            parse_input::<NoInput>(input)?;
            folders::list(client).await
        }
        "lastpass_list_shared_folders_detailed" => {
            folders::detailed(client, parse_input(input)?).await
        }
        "lastpass_list_shared_folder_permission_sets" => {
            parse_input::<NoInput>(input)?;
            folders::permission_sets(client).await
        }
        "lastpass_get_shared_folder_policy" => folders::policy(client, parse_input(input)?).await,
        "lastpass_list_shared_folder_roles" => {
            parse_input::<NoInput>(input)?;
            folders::roles(client).await
        }
        "lastpass_get_shared_folder_role" => folders::role(client, parse_input(input)?).await,
        "lastpass_list_events" => events::list(client, parse_input(input)?).await,
        "lastpass_api_call" => passthrough::api_call(client, parse_input(input)?).await,
        other => Err(ActionError::Unsupported(format!(
            "{other} has no runner (a unified action, served by the unified IAM API)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{catalog as all, find};
    use serde_json::json;

    /// A small JSON Schema checker for the keywords the generated schemas use.
    fn conforms(schema: &Value, v: &Value, path: &str) -> Result<(), String> {
        let fail = |why: String| Err(format!("{path}: {why}"));
        if let Some(alts) = schema.get("oneOf").or_else(|| schema.get("anyOf")) {
            let ok = alts
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| conforms(s, v, path).is_ok())
                .count();
            let one = schema.get("oneOf").is_some();
            if (one && ok != 1) || ok == 0 {
                return fail(format!("{ok} alternatives match {v}"));
            }
        }
        if let Some(t) = schema.get("type") {
            let types: Vec<&str> = match t {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let is = |t: &str| match t {
                "object" => v.is_object(),
                "array" => v.is_array(),
                "string" => v.is_string(),
                "integer" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                "null" => v.is_null(),
                _ => true,
            };
            if !types.iter().any(|t| is(t)) {
                return fail(format!("{v} is not of type {types:?}"));
            }
        }
        if let Some(e) = schema.get("enum").and_then(Value::as_array)
            && !e.contains(v)
        {
            return fail(format!("{v} not in {e:?}"));
        }
        if let Some(c) = schema.get("const")
            && c != v
        {
            return fail(format!("{v} is not {c}"));
        }
        if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64())
            && n < min
        {
            return fail(format!("{n} < {min}"));
        }
        if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Value::as_f64), v.as_f64())
            && n > max
        {
            return fail(format!("{n} > {max}"));
        }
        if let (Some(min), Some(s)) = (schema.get("minLength").and_then(Value::as_u64), v.as_str())
            && (s.chars().count() as u64) < min
        {
            return fail(format!("{s:?} shorter than {min}"));
        }
        if let Some(o) = v.as_object() {
            let props = schema.get("properties").and_then(Value::as_object);
            for r in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let r = r.as_str().unwrap_or_default();
                if !o.contains_key(r) {
                    return fail(format!("missing required {r}"));
                }
            }
            for (k, x) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => conforms(s, x, &format!("{path}.{k}"))?,
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => return fail(format!("unexpected {k}")),
                        Some(s @ Value::Object(_)) => conforms(s, x, &format!("{path}.{k}"))?,
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Some(a)) = (schema.get("items"), v.as_array()) {
            for (i, x) in a.iter().enumerate() {
                conforms(items, x, &format!("{path}[{i}]"))?;
            }
        }
        Ok(())
    }

    fn has_ref(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.contains_key("$ref") || m.values().any(has_ref),
            Value::Array(a) => a.iter().any(has_ref),
            _ => false,
        }
    }

    #[test]
    fn names_are_unique_and_follow_the_scheme() {
        let mut seen = std::collections::HashSet::new();
        for a in all() {
            assert!(seen.insert(a.name), "duplicate {}", a.name);
            assert!(a.name.starts_with("lastpass_"), "{}", a.name);
            assert!(
                a.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                a.name
            );
            assert_eq!(
                a.name.starts_with("lastpass_unified_"),
                a.kind == ActionKind::Unified
            );
            assert!(
                !a.summary.is_empty() && !a.description.is_empty(),
                "{}",
                a.name
            );
            assert!(find(a.name).is_some());
        }
        assert!(find("lastpass_nope").is_none());
    }

    #[test]
    fn every_schema_is_a_self_contained_object_schema_and_every_example_conforms() {
        for a in all() {
            let s = (a.input_schema)();
            assert_eq!(s["type"], "object", "{}", a.name);
            assert!(s["properties"].is_object(), "{}: {s}", a.name);
            assert_eq!(
                s["additionalProperties"], false,
                "{}: unknown fields refused",
                a.name
            );
            assert!(!has_ref(&s), "{}: no $ref", a.name);
            assert!(s.get("$defs").is_none(), "{}", a.name);
            let ex: Value = serde_json::from_str(a.example)
                .unwrap_or_else(|e| panic!("{}: example is not JSON: {e}", a.name));
            conforms(&s, &ex, a.name).unwrap_or_else(|e| panic!("{e}\nschema: {s}"));
            validate(a.name, &ex).unwrap_or_else(|e| panic!("{}: example refused: {e}", a.name));
        }
        // The checker itself refuses what the schemas forbid.
        let s = (find("lastpass_delete_user").unwrap().input_schema)();
        assert!(conforms(&s, &json!({"email": "a@x.io"}), "x").is_err());
        assert!(conforms(&s, &json!({"email": "a@x.io", "delete_action": 7}), "x").is_err());
        assert!(
            conforms(
                &s,
                &json!({"email": "a@x.io", "delete_action": 2, "x": 1}),
                "x"
            )
            .is_err()
        );
        assert!(
            conforms(
                &s,
                &json!({"email": "a@x.io", "delete_action": "remove"}),
                "x"
            )
            .is_ok()
        );
    }

    #[test]
    fn every_product_item_maps_to_one_existing_action_and_the_doc_table_agrees() {
        let doc = include_str!("mod.rs");
        let mut items = std::collections::HashSet::new();
        for it in PRODUCT_ITEMS {
            assert!(
                items.insert((it.source, it.item)),
                "item listed twice: {}",
                it.item
            );
            let spec = find(it.action).unwrap_or_else(|| panic!("no action {}", it.action));
            assert!(
                spec.source.contains(&it.source),
                "{} should list {}",
                it.action,
                it.source
            );
            let source = if it.source == SOURCE_INTEGRATOR {
                "integrator"
            } else {
                "unified connector"
            };
            let row = format!("//! | {source} | {} | `{}` |", it.item, it.action);
            assert!(doc.contains(&row), "module doc lacks the row {row}");
        }
        for a in all() {
            for s in a.source {
                assert!(
                    PRODUCT_ITEMS
                        .iter()
                        .any(|i| i.action == a.name && i.source == *s),
                    "{} claims {s} but no item of it maps to it",
                    a.name
                );
            }
        }
        assert_eq!(
            PRODUCT_ITEMS
                .iter()
                .filter(|i| i.source == SOURCE_INTEGRATOR)
                .count(),
            11
        );
        assert_eq!(
            PRODUCT_ITEMS
                .iter()
                .filter(|i| i.source == SOURCE_UNIFIED)
                .count(),
            34
        );
    }

    #[test]
    fn list_bounds_that_validation_enforces_are_in_the_schemas() {
        for (action, field, max) in [
            ("lastpass_disable_user", "emails", 1000),
            ("lastpass_enable_user", "emails", 1000),
            ("lastpass_change_user_groups", "add", 100),
            ("lastpass_change_user_groups", "remove", 100),
            ("lastpass_invite_user", "groups", 100),
        ] {
            let s = (find(action).unwrap().input_schema)();
            assert_eq!(
                s["properties"][field]["maxItems"], max,
                "{action}.{field}: {s}"
            );
            let mut input = json!({field: vec!["a@x.io"; max + 1]});
            if field != "emails" {
                input["email"] = json!("a@x.io");
            }
            assert!(validate(action, &input).is_err(), "{action}.{field}");
        }
    }

    #[test]
    fn the_proxy_schema_is_an_object_schema() {
        let s = proxy_request_schema();
        assert_eq!(s["type"], "object");
        assert!(s["properties"]["body"].is_object());
        assert!(!has_ref(&s));
    }
}
