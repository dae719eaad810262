//! How the client's types look as output records (table/CSV columns; JSON is their serde form).

use lastpass::{Event, ExpiredPassword, FolderMember, FolderRole, SharedFolder, User, UserStatus};
use serde::Serialize;

use crate::output::{Record, cell};

fn dt(v: &Option<chrono::NaiveDateTime>) -> String {
    v.map(|d| d.format(lastpass::DATETIME_FORMAT).to_string())
        .unwrap_or_default()
}

/// A user with its derived status: a directory record, or a pending invitee that LastPass lists
/// only by name (in `getuserdata`'s top-level `invited`).
#[derive(Serialize)]
#[serde(untagged)]
pub enum UserRecord {
    Known(Box<KnownUser>),
    Invited(InvitedUser),
}

#[derive(Serialize)]
pub struct KnownUser {
    #[serde(flatten)]
    pub user: User,
    pub status: UserStatus,
}

/// A pending invitation with no directory record yet.
#[derive(Serialize)]
pub struct InvitedUser {
    pub username: String,
    pub status: UserStatus,
    pub invited: bool,
}

impl From<User> for UserRecord {
    fn from(user: User) -> Self {
        let status = user.status();
        UserRecord::Known(Box::new(KnownUser { user, status }))
    }
}

impl UserRecord {
    pub fn invited(username: String) -> Self {
        UserRecord::Invited(InvitedUser {
            username,
            status: UserStatus::Invited,
            invited: true,
        })
    }
}

fn status_str(s: UserStatus) -> &'static str {
    match s {
        UserStatus::Active => "active",
        UserStatus::Disabled => "disabled",
        UserStatus::Invited => "invited",
    }
}

impl Record for UserRecord {
    fn headers() -> &'static [&'static str] {
        &[
            "id",
            "username",
            "fullname",
            "status",
            "admin",
            "groups",
            "last_login",
            "created",
            "multifactor",
            "password_reset_required",
        ]
    }
    fn row(&self) -> Vec<String> {
        match self {
            UserRecord::Known(k) => {
                let u = &k.user;
                vec![
                    u.id.to_string(),
                    u.username.clone(),
                    u.fullname.clone(),
                    status_str(k.status).into(),
                    u.admin.to_string(),
                    u.groups.join(";"),
                    dt(&u.last_login),
                    dt(&u.created),
                    cell(&u.multifactor),
                    u.password_reset_required.to_string(),
                ]
            }
            UserRecord::Invited(i) => {
                // Sized by the headers: index 1 is `username`, 3 is `status`.
                let mut row = vec![String::new(); Self::headers().len()];
                row[1] = i.username.clone();
                row[3] = status_str(i.status).into();
                row
            }
        }
    }
}

/// `folders list`.
#[derive(Serialize)]
pub struct FolderRecord {
    pub id: String,
    pub name: String,
    pub score: Option<f64>,
    pub deleted: bool,
    pub member_count: usize,
}

impl From<&SharedFolder> for FolderRecord {
    fn from(f: &SharedFolder) -> Self {
        Self {
            id: f.id.to_string(),
            name: f.name.clone(),
            score: f.score,
            deleted: f.deleted,
            member_count: f.users.len(),
        }
    }
}

impl Record for FolderRecord {
    fn headers() -> &'static [&'static str] {
        &["id", "name", "score", "deleted", "member_count"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            cell(&self.score),
            self.deleted.to_string(),
            self.member_count.to_string(),
        ]
    }
}

/// One (folder, member) permission with the derived role.
#[derive(Serialize)]
pub struct PermissionRecord {
    pub folder_id: String,
    pub folder_name: String,
    pub username: String,
    pub role: FolderRole,
    pub readonly: bool,
    pub give: bool,
    pub can_administer: bool,
    pub superadmin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
}

impl PermissionRecord {
    pub fn new(folder: &SharedFolder, m: &FolderMember) -> Self {
        Self {
            folder_id: folder.id.to_string(),
            folder_name: folder.name.clone(),
            username: m.username.clone(),
            role: m.role(),
            readonly: m.readonly,
            give: m.give,
            can_administer: m.can_administer,
            superadmin: m.superadmin,
            sites: m.sites.clone(),
        }
    }
}

fn role_str(r: FolderRole) -> &'static str {
    match r {
        FolderRole::Admin => "admin",
        FolderRole::Editor => "editor",
        FolderRole::Viewer => "viewer",
    }
}

impl Record for PermissionRecord {
    fn headers() -> &'static [&'static str] {
        &[
            "folder_id",
            "folder_name",
            "username",
            "role",
            "readonly",
            "give",
            "can_administer",
            "superadmin",
            "sites",
        ]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.folder_id.clone(),
            self.folder_name.clone(),
            self.username.clone(),
            role_str(self.role).into(),
            self.readonly.to_string(),
            self.give.to_string(),
            self.can_administer.to_string(),
            self.superadmin.to_string(),
            self.sites.as_ref().map(|s| s.join(";")).unwrap_or_default(),
        ]
    }
}

impl Record for Event {
    fn headers() -> &'static [&'static str] {
        &["time", "username", "ip_address", "action", "data", "id"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.time.format(lastpass::DATETIME_FORMAT).to_string(),
            self.username.clone(),
            self.ip_address.clone(),
            self.action.clone(),
            self.data.clone(),
            cell(&self.id),
        ]
    }
}

impl Record for ExpiredPassword {
    fn headers() -> &'static [&'static str] {
        &["user_id", "user_name", "last_pw_change"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.user_id.to_string(),
            self.user_name.clone(),
            dt(&self.last_pw_change),
        ]
    }
}

/// `connection list` / `connection test`.
#[derive(Serialize)]
pub struct ConnectionRecord {
    pub name: String,
    pub account: String,
    pub endpoint: String,
    pub auth_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
}

impl Record for ConnectionRecord {
    fn headers() -> &'static [&'static str] {
        &[
            "name",
            "account",
            "endpoint",
            "auth_type",
            "time_zone",
            "status",
            "users",
        ]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.account.clone(),
            self.endpoint.clone(),
            self.auth_type.into(),
            cell(&self.time_zone),
            cell(&self.status),
            cell(&self.users),
        ]
    }
}

/// `apikey list` (never the key itself).
#[derive(Serialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    /// `read-only` or `read-write`.
    pub access: &'static str,
    /// `active` or `revoked`.
    pub status: &'static str,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<crate::store::ApiKeyInfo> for ApiKeyRecord {
    fn from(k: crate::store::ApiKeyInfo) -> Self {
        Self {
            access: if k.read_only {
                "read-only"
            } else {
                "read-write"
            },
            status: if k.is_revoked() { "revoked" } else { "active" },
            id: k.id,
            name: k.name,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

impl Record for ApiKeyRecord {
    fn headers() -> &'static [&'static str] {
        &[
            "id",
            "name",
            "access",
            "status",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
    }
    fn row(&self) -> Vec<String> {
        let t = |v: &Option<chrono::DateTime<chrono::Utc>>| {
            v.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        };
        vec![
            self.id.clone(),
            self.name.clone(),
            self.access.into(),
            self.status.into(),
            t(&Some(self.created_at)),
            t(&self.last_used_at),
            t(&self.revoked_at),
        ]
    }
}

/// `sites push`.
#[derive(Serialize)]
pub struct PushRecord {
    pub psid: String,
    pub target: String,
    pub url: String,
    pub label: String,
}

impl Record for PushRecord {
    fn headers() -> &'static [&'static str] {
        &["psid", "target", "url", "label"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.psid.clone(),
            self.target.clone(),
            self.url.clone(),
            self.label.clone(),
        ]
    }
}
