//! Typed requests and responses for every Enterprise API command (reference §3).
//!
//! Response types are the *normalised* view: decoding accepts every wire variant the reference
//! lists and produces one shape. Request types validate their input on construction where the
//! API would otherwise fail late.
//!
//! NOTE for implementers: the public fields and types below are the contract used by the CLI and
//! later capabilities; decode helpers (`Deserialize` impls / wire structs) may be added freely.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use lp_types::{Email, FolderId, GroupName, Secret, UserId};
use serde::Serialize;

/// LastPass's date-time format, with no zone (`"2022-05-11 11:02:26"`).
pub const DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

// ---------------------------------------------------------------------------------------------
// Users (getuserdata, batchadd, updateuser, deluser, disableuser, enableuser, …)
// ---------------------------------------------------------------------------------------------

/// Derived lifecycle state of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Disabled,
    /// Listed in `invited` (pending invitation, never accepted).
    Invited,
}

/// One user from `getuserdata`, normalised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: UserId,
    /// The username (an e-mail address) exactly as LastPass returned it.
    pub username: String,
    pub fullname: String,
    /// `mpstrength`, sent as a string (`"100"`).
    pub mpstrength: Option<f64>,
    /// `totalscore`, a string or `null`.
    pub totalscore: Option<f64>,
    pub created: Option<NaiveDateTime>,
    pub last_pw_change: Option<NaiveDateTime>,
    /// `None` when `last_login` is `""` (never logged in).
    pub last_login: Option<NaiveDateTime>,
    pub never_logged_in: bool,
    pub disabled: bool,
    pub admin: bool,
    pub duo_username: Option<String>,
    pub linked: Option<String>,
    /// e.g. `"lastpassauth"`; `None` when absent or `""`.
    pub multifactor: Option<String>,
    pub has_sharing_keys: Option<bool>,
    /// Counters are `null` (or `""`) for users who never logged in.
    pub sites: Option<u64>,
    pub notes: Option<u64>,
    pub formfills: Option<u64>,
    pub applications: Option<u64>,
    pub attachments: Option<u64>,
    pub password_reset_required: bool,
    /// Group names; empty when the `groups` key is absent.
    pub groups: Vec<String>,
    pub attribs: BTreeMap<String, String>,
    /// True when the username is in the page's top-level `invited` list.
    pub invited: bool,
}

impl User {
    pub fn status(&self) -> UserStatus {
        if self.invited {
            UserStatus::Invited
        } else if self.disabled {
            UserStatus::Disabled
        } else {
            UserStatus::Active
        }
    }
}

/// One `getuserdata` answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct UserPage {
    /// All users matching the query (across pages).
    pub total: u64,
    /// Users in this page.
    pub count: u64,
    /// In the order LastPass sent them (ascending id in practice).
    pub users: Vec<User>,
    /// Group name → member usernames (empty when the key is absent).
    pub groups: BTreeMap<String, Vec<String>>,
    /// Pending invitees' usernames (empty when absent).
    pub invited: Vec<String>,
}

/// One username looked up with `getuserdata`.
#[derive(Debug, Clone, PartialEq)]
pub enum UserLookup {
    /// An account (its groups included).
    User(Box<User>),
    /// A pending invitation, listed by name only (as LastPass spelled it).
    Invited(String),
    Absent,
}

/// Server-side filters of `getuserdata`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Return only this user.
    pub username: Option<Email>,
    /// `Some(true)`: only disabled users; `Some(false)`: only enabled users.
    pub disabled: Option<bool>,
    /// `Some(true)`: only admins.
    pub admin: Option<bool>,
}

/// One user for `batchadd`.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Email,
    pub fullname: Option<String>,
    pub groups: Vec<GroupName>,
    pub attribs: BTreeMap<String, String>,
    pub duo_username: Option<String>,
    pub securid_username: Option<String>,
    /// Default master password; without it the user is invited.
    pub password: Option<Secret>,
    /// Only meaningful with `password`; LastPass defaults to `true`.
    pub password_reset_required: Option<bool>,
}

impl NewUser {
    pub fn new(username: Email) -> Self {
        Self {
            username,
            fullname: None,
            groups: Vec::new(),
            attribs: BTreeMap::new(),
            duo_username: None,
            securid_username: None,
            password: None,
            password_reset_required: None,
        }
    }
}

/// `updateuser`: only the fields that are `Some` are sent.
#[derive(Debug, Clone)]
pub struct UserUpdate {
    pub username: Email,
    pub fullname: Option<String>,
    pub duo_username: Option<String>,
    pub securid_username: Option<String>,
}

/// `deluser` `deleteaction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteAction {
    /// 0: block login, keep data and membership (`disabled:true`).
    Deactivate = 0,
    /// 1: remove from the Business account (becomes a free personal account).
    Remove = 1,
    /// 2: delete the account entirely.
    Delete = 2,
    /// 3: cancel a pending invitation.
    Uninvite = 3,
}

impl DeleteAction {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// `disableuser` / `enableuser` answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ToggleOutcome {
    /// `disabled_users` / `enabled_users`.
    pub changed: Vec<String>,
    /// `unchanged_users` (already in the requested state, or not changed).
    pub unchanged: Vec<String>,
}

/// One user's membership change for `batchchangegrp`.
#[derive(Debug, Clone)]
pub struct GroupChange {
    pub username: Email,
    pub add: Vec<GroupName>,
    pub del: Vec<GroupName>,
}

// ---------------------------------------------------------------------------------------------
// Shared folders (getsfdata, getdetailedsfdata)
// ---------------------------------------------------------------------------------------------

/// Role derived from a member's permission flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FolderRole {
    Admin,
    Editor,
    Viewer,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FolderMember {
    pub username: String,
    pub readonly: bool,
    /// `give`: passwords are visible to this member.
    pub give: bool,
    pub can_administer: bool,
    pub superadmin: bool,
    /// Only from `getdetailedsfdata`.
    pub sites: Option<Vec<String>>,
}

impl FolderMember {
    /// `can_administer` → admin, else `readonly` → viewer, else editor.
    pub fn role(&self) -> FolderRole {
        if self.can_administer {
            FolderRole::Admin
        } else if self.readonly {
            FolderRole::Viewer
        } else {
            FolderRole::Editor
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharedFolder {
    pub id: FolderId,
    pub name: String,
    pub score: Option<f64>,
    pub deleted: bool,
    pub users: Vec<FolderMember>,
}

// ---------------------------------------------------------------------------------------------
// Events (reporting)
// ---------------------------------------------------------------------------------------------

/// One reporting event. `time` is in the account's time zone, as LastPass sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub time: NaiveDateTime,
    pub username: String,
    pub ip_address: String,
    pub action: String,
    pub data: String,
    /// Present in the `siem` format only.
    pub id: Option<String>,
}

/// `reporting` request. `from`/`to` are in the account's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub search: Option<String>,
    /// `None` → `"allusers"`.
    pub user: Option<String>,
    pub admin_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct EventPage {
    /// Newest first, as LastPass orders `Event1..N`.
    pub events: Vec<Event>,
    /// Microseconds since the Unix epoch to continue from; `None` when complete.
    pub next: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// expiredmasterpwlist
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiredPassword {
    pub user_id: u64,
    pub user_name: String,
    pub last_pw_change: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ExpiredPage {
    pub items: Vec<ExpiredPassword>,
    /// `continuation.token`; `None` on the last page.
    pub token: Option<String>,
    pub remaining: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// pushsitestousers
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushTarget {
    /// `"all"`
    All,
    Group(GroupName),
    User(Email),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UsernameType {
    /// The user's full e-mail address.
    Email,
    /// The local part of the e-mail address.
    Username,
    /// The `username` field.
    Custom,
}

#[derive(Debug, Clone)]
pub struct PushSite {
    pub target: PushTarget,
    pub url: String,
    /// Site label in the vault (`name`).
    pub name: String,
    /// Vault folder (`group`).
    pub folder: Option<String>,
    pub username_type: UsernameType,
    /// Required when `username_type` is `Custom`.
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub notes: Option<String>,
    pub favorite: bool,
    pub persistent: bool,
    /// `decryptid`: shared folder whose key encrypted the data.
    pub shared_folder_id: Option<FolderId>,
}
