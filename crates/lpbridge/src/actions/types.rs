//! The input type of every action. Each derives its JSON Schema (`schemars`; doc comments become
//! descriptions) and refuses unknown fields; [`Validate`] adds the checks serde cannot express.

use std::collections::BTreeMap;

use lastpass::{InvalidValue, MAX_EVENTS_PER_CALL, MAX_USER_PAGE_SIZE};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::input::{
    DeleteChoice, EmailAddr, FolderIdArg, GroupArg, Password, Validate, check_len, check_range,
};

/// Most items in one bulk request (users to create, delete, enable or disable; membership
/// changes). Bounded so that one request stays one reasonable unit of work.
pub const MAX_BULK_ITEMS: usize = 1000;
/// Most addresses in `lastpass_list_users`'s `emails` (one lookup each).
pub const MAX_LOOKUP_EMAILS: usize = 100;
/// Most users one `lastpass_list_users` answer carries (page with `page_size` for more).
pub const MAX_LIST_LIMIT: u64 = 10_000;
/// `lastpass_list_users` without `limit`.
pub const DEFAULT_LIST_LIMIT: u64 = 2000;
/// `lastpass_list_events` without `limit`.
pub const DEFAULT_EVENT_LIMIT: u64 = 1000;
/// Most groups in one `lastpass_change_user_groups` call.
pub const MAX_GROUPS_PER_USER: usize = 100;
/// Largest unified `page_size`.
pub const MAX_UNIFIED_PAGE_SIZE: u64 = 1000;

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

/// Invite one user (batchadd). Without `default_password` the user gets an invitation e-mail;
/// with one, the account is created with that master password.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteUserInput {
    /// The new user's e-mail address (their LastPass username).
    pub email: EmailAddr,
    /// Full name.
    #[serde(default)]
    pub full_name: Option<String>,
    /// A default master password (temporary or permanent, see `password_reset_required`).
    #[serde(default)]
    pub default_password: Option<Password>,
    /// With `default_password`: whether the user must change it at first login (LastPass's
    /// default: true). `false` without `default_password` is refused.
    #[serde(default)]
    pub password_reset_required: Option<bool>,
    /// Groups to add the user to (at most 100).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub groups: Vec<GroupArg>,
}

impl Validate for InviteUserInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        if self.default_password.is_none() && self.password_reset_required == Some(false) {
            return Err(InvalidValue::new(
                "password_reset_required",
                "false",
                "only applies with default_password (an invited user sets their own password)",
            ));
        }
        check_len("groups", &self.groups, 0, MAX_GROUPS_PER_USER)
    }
}

/// Change a user's e-mail address (updateemail). LastPass e-mails the user, and the change
/// completes when they next log in.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEmailInput {
    /// The current address.
    pub old_email: EmailAddr,
    /// The new address.
    pub new_email: EmailAddr,
}

impl Validate for UpdateEmailInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        if self.old_email == self.new_email {
            return Err(InvalidValue::new(
                "new_email",
                self.new_email.0.as_str(),
                "is the same as old_email",
            ));
        }
        Ok(())
    }
}

/// One user, by e-mail address.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// The user's e-mail address (case-insensitive).
    pub email: EmailAddr,
}

impl Validate for UserInput {}

/// Which users a listing keeps, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatusFilter {
    Active,
    Disabled,
    /// Pending invitations.
    Invited,
    #[default]
    All,
}

/// List users (getuserdata): the integrator's filters (e-mails, status, admin, limit) and the
/// unified connector's server-side paging.
///
/// Without `page_size`, users are read 2000 per call until `limit` is reached. With
/// `page_size`, exactly one `getuserdata` page is read (`page_index` from 0) and the answer says
/// `total` and `next_page_index`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListUsersInput {
    /// Only these users (one lookup each, at most 100).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub emails: Vec<EmailAddr>,
    /// Only users in this state (`invited`: pending invitations). Default `all`.
    #[serde(default)]
    pub status: UserStatusFilter,
    /// `true`: only admins; `false`: only non-admins. Default: both.
    #[serde(default)]
    pub admin: Option<bool>,
    /// Only members of this group.
    #[serde(default)]
    pub group: Option<GroupArg>,
    /// At most this many users (default 2000, at most 10000). Not used with `page_size`.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub limit: Option<u64>,
    /// Read one server-side page of this size (1–2000) instead of streaming.
    #[serde(default)]
    #[schemars(range(min = 1, max = 2000))]
    pub page_size: Option<u32>,
    /// Zero-based page, with `page_size` (default 0).
    #[serde(default)]
    pub page_index: Option<u32>,
}

impl Validate for ListUsersInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_len("emails", &self.emails, 0, MAX_LOOKUP_EMAILS)?;
        check_range("limit", self.limit, 1, MAX_LIST_LIMIT)?;
        check_range(
            "page_size",
            self.page_size.map(u64::from),
            1,
            u64::from(MAX_USER_PAGE_SIZE),
        )?;
        if let Some(i) = self.page_index
            && self.page_size.is_none()
        {
            return Err(InvalidValue::new(
                "page_index",
                i.to_string(),
                "requires page_size",
            ));
        }
        if self.page_size.is_some() {
            if !self.emails.is_empty() {
                return Err(InvalidValue::new(
                    "page_size",
                    self.page_size.unwrap_or_default().to_string(),
                    "cannot be combined with emails (each address is one lookup)",
                ));
            }
            if let Some(l) = self.limit {
                return Err(InvalidValue::new(
                    "limit",
                    l.to_string(),
                    "is not used with page_size (the page size bounds the answer)",
                ));
            }
        }
        Ok(())
    }
}

/// Update a user's attributes (updateuser). At least one field besides `email`.
/// (LastPass cannot change admin rights through the API.)
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserInput {
    /// The user's current e-mail address.
    pub email: EmailAddr,
    /// New full name.
    #[serde(default)]
    pub full_name: Option<String>,
    /// New Duo Security username.
    #[serde(default)]
    pub duo_username: Option<String>,
    /// New RSA SecurID username.
    #[serde(default)]
    pub securid_username: Option<String>,
}

impl Validate for UpdateUserInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        if self.full_name.is_none()
            && self.duo_username.is_none()
            && self.securid_username.is_none()
        {
            return Err(InvalidValue::new(
                "full_name",
                "",
                "give at least one of full_name, duo_username, securid_username",
            ));
        }
        Ok(())
    }
}

/// Deactivate, remove or delete one user (deluser).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteUserInput {
    /// The user's e-mail address.
    pub email: EmailAddr,
    /// What to do (required; no default).
    #[serde(alias = "deleteaction")]
    pub delete_action: DeleteChoice,
}

impl Validate for DeleteUserInput {}

/// Deactivate, remove or delete many users (one deluser call each, 4 at a time).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDeleteUsersInput {
    /// The users' e-mail addresses (1–1000; repeats are dropped).
    #[schemars(length(min = 1, max = 1000))]
    pub emails: Vec<EmailAddr>,
    /// What to do with each (required; no default).
    #[serde(alias = "deleteaction")]
    pub delete_action: DeleteChoice,
}

impl Validate for BulkDeleteUsersInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_len("emails", &self.emails, 1, MAX_BULK_ITEMS)
    }
}

/// One user for `lastpass_bulk_create_users`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserInput {
    /// E-mail address (LastPass username).
    pub email: EmailAddr,
    #[serde(default)]
    pub full_name: Option<String>,
    /// Group names.
    #[serde(default)]
    pub groups: Vec<GroupArg>,
    /// Custom attributes (e.g. `Department`).
    #[serde(default)]
    pub attribs: BTreeMap<String, String>,
    #[serde(default)]
    pub duo_username: Option<String>,
    #[serde(default)]
    pub securid_username: Option<String>,
    /// Default master password; without it the user is invited.
    #[serde(default)]
    pub default_password: Option<Password>,
    /// With `default_password`: must the user change it at first login (default true).
    #[serde(default)]
    pub password_reset_required: Option<bool>,
}

/// Create (invite) many users (batchadd, 500 per call). Users that already exist (or are
/// already invited) are skipped, found with the fewest `getuserdata` calls.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkCreateUsersInput {
    /// 1–1000 users; each e-mail at most once.
    #[schemars(length(min = 1, max = 1000))]
    pub users: Vec<NewUserInput>,
    /// Only plan: report what would be created and skipped, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

impl Validate for BulkCreateUsersInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_len("users", &self.users, 1, MAX_BULK_ITEMS)?;
        let mut seen = std::collections::HashMap::new();
        for (i, u) in self.users.iter().enumerate() {
            if let Some(first) = seen.insert(u.email.0.folded().to_owned(), i) {
                return Err(InvalidValue::new(
                    "users",
                    u.email.0.as_str(),
                    format!("users[{i}].email repeats users[{first}].email"),
                ));
            }
            if u.default_password.is_none() && u.password_reset_required == Some(false) {
                return Err(InvalidValue::new(
                    "users",
                    u.email.0.as_str(),
                    format!(
                        "users[{i}].password_reset_required=false only applies with default_password"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// One or more users: `email`, or `emails` (1–1000), not both.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsersInput {
    /// One user's e-mail address.
    #[serde(default)]
    pub email: Option<EmailAddr>,
    /// Several users (one call for all of them; repeats are dropped).
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub emails: Vec<EmailAddr>,
}

impl UsersInput {
    pub fn addresses(&self) -> Vec<lastpass::Email> {
        crate::admin::dedup_emails(
            self.email
                .iter()
                .chain(&self.emails)
                .map(|e| e.0.clone())
                .collect(),
        )
    }
}

impl Validate for UsersInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        match (&self.email, self.emails.is_empty()) {
            (None, true) => Err(InvalidValue::new("email", "", "give email or emails")),
            (Some(e), false) => Err(InvalidValue::new(
                "emails",
                e.0.as_str(),
                "give email or emails, not both",
            )),
            _ => check_len("emails", &self.emails, 0, MAX_BULK_ITEMS),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------------

/// Add one user to groups and/or remove them from groups (one batchchangegrp call).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeUserGroupsInput {
    /// The user's e-mail address.
    pub email: EmailAddr,
    /// Groups to add the user to (at most 100).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub add: Vec<GroupArg>,
    /// Groups to remove the user from (at most 100).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub remove: Vec<GroupArg>,
}

impl Validate for ChangeUserGroupsInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        if self.add.is_empty() && self.remove.is_empty() {
            return Err(InvalidValue::new(
                "add",
                "",
                "give at least one group in add or remove",
            ));
        }
        check_len("add", &self.add, 0, MAX_GROUPS_PER_USER)?;
        check_len("remove", &self.remove, 0, MAX_GROUPS_PER_USER)?;
        if let Some(g) = self.add.iter().find(|g| self.remove.contains(g)) {
            return Err(InvalidValue::new(
                "remove",
                g.0.as_str(),
                "is also in add: a user cannot be added to and removed from one group at once",
            ));
        }
        Ok(())
    }
}

/// One user and some groups (one batchchangegrp call).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserGroupsInput {
    /// The user's e-mail address.
    pub email: EmailAddr,
    /// Group names (1–100).
    #[schemars(length(min = 1, max = 100))]
    pub groups: Vec<GroupArg>,
}

impl Validate for UserGroupsInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_len("groups", &self.groups, 1, MAX_GROUPS_PER_USER)
    }
}

/// `add` or `remove`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MembershipVerb {
    Add,
    Remove,
}

/// One membership change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipChangeInput {
    pub email: EmailAddr,
    pub group: GroupArg,
    pub action: MembershipVerb,
}

/// Add users to and remove users from groups in bulk: plan first (no-ops and unknown users are
/// skipped, with the reason), then batchchangegrp calls of up to 500 users.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeGroupMembersInput {
    /// 1–1000 changes; each (email, group) pair at most once.
    #[schemars(length(min = 1, max = 1000))]
    pub changes: Vec<MembershipChangeInput>,
    /// Only plan: report what would change, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

impl Validate for ChangeGroupMembersInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_len("changes", &self.changes, 1, MAX_BULK_ITEMS)?;
        let mut seen = std::collections::HashMap::new();
        for (i, c) in self.changes.iter().enumerate() {
            let key = (c.email.0.folded().to_owned(), c.group.0.as_str().to_owned());
            if let Some(first) = seen.insert(key, i) {
                return Err(InvalidValue::new(
                    "changes",
                    format!("{} / {}", c.email.0, c.group.0),
                    format!("changes[{i}] repeats the user and group of changes[{first}]"),
                ));
            }
        }
        Ok(())
    }
}

/// No input.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

impl Validate for NoInput {}

/// One group, by name (groups have no other id).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    /// The group's name (case-sensitive).
    pub name: GroupArg,
}

impl Validate for GroupInput {}

// ---------------------------------------------------------------------------------------------
// Shared folders
// ---------------------------------------------------------------------------------------------

/// All shared folders with members and their sites (getdetailedsfdata, paged).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetailedFoldersInput {
    /// Folders per getdetailedsfdata call (1–1000, default 100): the unpaged call can be
    /// refused with HTTP 429 on large accounts.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: Option<u32>,
}

impl Validate for DetailedFoldersInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_range("page_size", self.page_size.map(u64::from), 1, 1000)
    }
}

/// One shared folder's permission set (its policy), by the shared folder id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderPolicyInput {
    /// The shared folder id (the policy's id).
    pub id: FolderIdArg,
}

impl Validate for FolderPolicyInput {}

/// A shared-folder role key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FolderRoleKey {
    /// `can_administer`.
    Admin,
    /// Neither `can_administer` nor `readonly`.
    Editor,
    /// `readonly` (without `can_administer`).
    Viewer,
}

/// One shared-folder role, by key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderRoleInput {
    /// `admin`, `editor` or `viewer`.
    pub id: FolderRoleKey,
}

impl Validate for FolderRoleInput {}

// ---------------------------------------------------------------------------------------------
// Sites
// ---------------------------------------------------------------------------------------------

/// How a pushed site's username is filled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsernameTypeInput {
    /// The user's full e-mail address.
    #[default]
    Email,
    /// The local part of the user's e-mail address.
    Username,
    /// The value of `username`.
    Custom,
}

/// Push a site into users' vaults (pushsitestousers).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushSitesInput {
    /// `all` (every user), a user's e-mail address, or a group name. A value with `@` that is
    /// a valid address is a user; anything else but `all` is a group.
    pub push_to: String,
    /// Site URL (absolute).
    pub url: String,
    /// The site's name in the vaults.
    pub label: String,
    /// How the username is filled (default `email`).
    #[serde(default)]
    pub username_type: UsernameTypeInput,
    /// The username, with `username_type` `custom` (required then, refused otherwise).
    #[serde(default)]
    pub username: Option<String>,
    /// The site password.
    #[serde(default)]
    pub password: Option<Password>,
    #[serde(default)]
    pub notes: Option<String>,
    /// Vault folder name.
    #[serde(default)]
    pub folder: Option<String>,
    /// Mark as favourite.
    #[serde(default)]
    pub favorite: bool,
    /// Also push to users who join the account or group later.
    #[serde(default)]
    pub persistent: bool,
    /// The shared folder whose key encrypted the data; leave out when not encrypted.
    #[serde(default)]
    pub shared_folder_id: Option<FolderIdArg>,
}

impl Validate for PushSitesInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        if self.push_to.trim().is_empty() {
            return Err(InvalidValue::new(
                "push_to",
                &self.push_to,
                "must be all, an e-mail address or a group name",
            ));
        }
        match url::Url::parse(self.url.trim()) {
            Ok(u) if !u.cannot_be_a_base() => {}
            Ok(_) => {
                return Err(InvalidValue::new(
                    "url",
                    &self.url,
                    "must be an absolute URL",
                ));
            }
            Err(e) => return Err(InvalidValue::new("url", &self.url, e.to_string())),
        }
        if self.label.trim().is_empty() {
            return Err(InvalidValue::new("label", &self.label, "must not be empty"));
        }
        match (self.username_type, &self.username) {
            (UsernameTypeInput::Custom, None) => Err(InvalidValue::new(
                "username",
                "",
                "is required with username_type custom",
            )),
            (UsernameTypeInput::Custom, Some(u)) if u.trim().is_empty() => Err(InvalidValue::new(
                "username",
                u,
                "must not be empty with username_type custom",
            )),
            (UsernameTypeInput::Email | UsernameTypeInput::Username, Some(u)) => Err(
                InvalidValue::new("username", u, "is only used with username_type custom"),
            ),
            _ => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// Audit events in a time window, newest first (reporting, walking `next`). Times are in the
/// account's time zone, as LastPass uses them: `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DDTHH:MM:SS`,
/// `YYYY-MM-DD HH:MM` or `YYYY-MM-DD` (`from`: 00:00:00, `to`: 23:59:59 of that day).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListEventsInput {
    /// Start of the window.
    pub from: String,
    /// End of the window (default: now, taken in the easternmost time zone so that no event
    /// written so far is left out).
    #[serde(default)]
    pub to: Option<String>,
    /// Only events whose fields contain this text.
    #[serde(default)]
    pub search: Option<String>,
    /// Only this user's events (default: all users).
    #[serde(default)]
    pub user: Option<EmailAddr>,
    /// Only admin events.
    #[serde(default, alias = "admin")]
    pub admin_only: bool,
    /// At most this many events (1–10000, default 1000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub limit: Option<u64>,
}

impl Validate for ListEventsInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_range("limit", self.limit, 1, MAX_EVENTS_PER_CALL as u64)
    }
}

// ---------------------------------------------------------------------------------------------
// Passthrough
// ---------------------------------------------------------------------------------------------

/// Send any Enterprise API command with the connection's credentials to the connection's
/// endpoint, and return the answer as received.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiCallInput {
    /// The Enterprise API command (`getuserdata`, `reporting`, …): letters, digits, `_`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_]{1,64}$"))]
    pub cmd: String,
    /// The command's `data` (object, array or string), sent as is. Never `cid`/`provhash`.
    #[serde(default)]
    pub data: Option<Value>,
    /// HTTP method: only `POST` (the Enterprise API takes nothing else). Default `POST`.
    #[serde(default)]
    pub method: Option<String>,
    /// Request headers: `Content-Type` and `Accept` are accepted and ignored; any other header
    /// is refused (lpbridge adds the authentication itself).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query string: the Enterprise API takes none, so only an empty one is accepted.
    #[serde(default)]
    pub query: Option<Value>,
}

impl Validate for ApiCallInput {}

// ---------------------------------------------------------------------------------------------
// Unified IAM (served by the unified module; schemas only)
// ---------------------------------------------------------------------------------------------

/// `filter` of unified list reads.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnifiedFilter {
    /// Only records updated after this instant (RFC 3339). Where LastPass exposes no update
    /// time, the unified module documents how it applies this.
    #[serde(default)]
    pub updated_after: Option<String>,
}

/// `filter` of the unified user list.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnifiedUserFilter {
    /// Only records updated after this instant (RFC 3339).
    #[serde(default)]
    pub updated_after: Option<String>,
    /// Only this e-mail address (applied client-side).
    #[serde(default)]
    pub email: Option<EmailAddr>,
}

/// Unified list paging and shaping.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnifiedListInput {
    /// Records per page (1–1000, default 25).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: Option<u64>,
    /// The cursor from the previous page's `next`.
    #[serde(default)]
    pub next: Option<String>,
    /// Comma-separated fields to return.
    #[serde(default)]
    pub fields: Option<String>,
    /// Comma-separated relations to expand.
    #[serde(default)]
    pub expand: Option<String>,
    #[serde(default)]
    pub filter: Option<UnifiedFilter>,
    /// Include the upstream calls (secrets redacted).
    #[serde(default)]
    pub raw: Option<bool>,
}

impl Validate for UnifiedListInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_range("page_size", self.page_size, 1, MAX_UNIFIED_PAGE_SIZE)
    }
}

/// Unified user list.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnifiedListUsersInput {
    /// Records per page (1–1000, default 25).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: Option<u64>,
    /// The cursor from the previous page's `next`.
    #[serde(default)]
    pub next: Option<String>,
    /// Comma-separated fields to return.
    #[serde(default)]
    pub fields: Option<String>,
    /// Comma-separated relations to expand (e.g. `groups`).
    #[serde(default)]
    pub expand: Option<String>,
    #[serde(default)]
    pub filter: Option<UnifiedUserFilter>,
    /// Include the upstream calls (secrets redacted).
    #[serde(default)]
    pub raw: Option<bool>,
}

impl Validate for UnifiedListUsersInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_range("page_size", self.page_size, 1, MAX_UNIFIED_PAGE_SIZE)
    }
}

/// One unified record by id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnifiedGetInput {
    /// The record's id (users: e-mail address; groups: name; organizations: the CID).
    #[schemars(length(min = 1))]
    pub id: String,
    /// Comma-separated fields to return.
    #[serde(default)]
    pub fields: Option<String>,
    /// Comma-separated relations to expand.
    #[serde(default)]
    pub expand: Option<String>,
    /// Include the upstream calls (secrets redacted).
    #[serde(default)]
    pub raw: Option<bool>,
}

impl Validate for UnifiedGetInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        if self.id.trim().is_empty() {
            return Err(InvalidValue::new("id", &self.id, "must not be empty"));
        }
        Ok(())
    }
}

/// A synthesized account-level role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnifiedRoleId {
    Admin,
    Basic,
}

/// One unified role: `admin` or `basic` (any other id is refused).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnifiedGetRoleInput {
    pub id: UnifiedRoleId,
    /// Comma-separated fields to return.
    #[serde(default)]
    pub fields: Option<String>,
    /// Include the upstream calls (secrets redacted).
    #[serde(default)]
    pub raw: Option<bool>,
}

impl Validate for UnifiedGetRoleInput {}

/// The only unified resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnifiedResourceType {
    SharedFolder,
}

/// Who has access to one shared folder (role from the flags: `can_administer` → admin, `give`
/// → editor, `readonly` → viewer). Both `resource_type` and `resource_id` are required.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnifiedResourceUsersInput {
    pub resource_type: UnifiedResourceType,
    /// The shared folder id.
    pub resource_id: FolderIdArg,
    /// Records per page (1–1000, default 25).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: Option<u64>,
    /// The cursor from the previous page's `next`.
    #[serde(default)]
    pub next: Option<String>,
    /// Comma-separated fields to return.
    #[serde(default)]
    pub fields: Option<String>,
    /// Include the upstream calls (secrets redacted).
    #[serde(default)]
    pub raw: Option<bool>,
}

impl Validate for UnifiedResourceUsersInput {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_range("page_size", self.page_size, 1, MAX_UNIFIED_PAGE_SIZE)
    }
}

/// The connection's identity probe.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnifiedMeInput {
    /// Include the upstream calls (secrets redacted).
    #[serde(default)]
    pub raw: Option<bool>,
}

impl Validate for UnifiedMeInput {}
