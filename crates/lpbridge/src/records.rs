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
    /// The connections the key may use; `*` for all.
    pub connections: String,
    /// `api` (the REST API) or `scim` (a SCIM bearer token).
    pub purpose: &'static str,
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
            connections: k.connections.map_or_else(
                || "*".to_owned(),
                |c| c.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(","),
            ),
            purpose: k.purpose.as_str(),
        }
    }
}

/// `console user list`.
#[derive(Serialize)]
pub struct ConsoleUserRecord {
    pub username: String,
    /// `read-only` or `read-write`.
    pub access: &'static str,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<crate::store::console::ConsoleUser> for ConsoleUserRecord {
    fn from(u: crate::store::console::ConsoleUser) -> Self {
        Self {
            access: if u.read_only {
                "read-only"
            } else {
                "read-write"
            },
            username: u.username,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

impl Record for ConsoleUserRecord {
    fn headers() -> &'static [&'static str] {
        &["username", "access", "created_at", "last_login_at"]
    }
    fn row(&self) -> Vec<String> {
        let t = |v: &Option<chrono::DateTime<chrono::Utc>>| {
            v.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        };
        vec![
            self.username.clone(),
            self.access.into(),
            t(&Some(self.created_at)),
            t(&self.last_login_at),
        ]
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
            "connections",
            "purpose",
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
            self.connections.clone(),
            self.purpose.into(),
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

/// `psa list` / `psa connect` / `psa test` (never a secret).
#[derive(Serialize)]
pub struct PsaIntegrationRecord {
    pub name: String,
    pub kind: psa::PsaKind,
    /// ConnectWise: site, company_id, public_key, client_id; Autotask: username, discovery_url.
    pub settings: crate::store::PsaSettings,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl From<crate::store::PsaIntegrationSummary> for PsaIntegrationRecord {
    fn from(s: crate::store::PsaIntegrationSummary) -> Self {
        Self {
            name: s.id.into_inner(),
            kind: s.kind,
            settings: s.settings,
            created_at: Some(s.created_at),
            updated_at: Some(s.updated_at),
            status: None,
        }
    }
}

impl Record for PsaIntegrationRecord {
    fn headers() -> &'static [&'static str] {
        &[
            "name",
            "kind",
            "endpoint",
            "login",
            "client_id",
            "created_at",
            "updated_at",
            "status",
        ]
    }
    fn row(&self) -> Vec<String> {
        use crate::store::PsaSettings;
        let t = |v: &Option<chrono::DateTime<chrono::Utc>>| {
            v.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        };
        let (endpoint, login, client_id) = match &self.settings {
            PsaSettings::ConnectWise(s) => (
                s.site.clone(),
                format!("{}+{}", s.company_id, s.public_key),
                s.client_id.clone(),
            ),
            PsaSettings::Autotask(s) => (
                s.discovery_url
                    .clone()
                    .unwrap_or_else(|| psa::autotask::DEFAULT_DISCOVERY_URL.into()),
                s.username.clone(),
                String::new(),
            ),
        };
        vec![
            self.name.clone(),
            self.kind.to_string(),
            endpoint,
            login,
            client_id,
            t(&self.created_at),
            t(&self.updated_at),
            cell(&self.status),
        ]
    }
}

/// `psa attributes`: one filterable value (a company type or status).
#[derive(Serialize)]
pub struct PsaAttributeRecord {
    /// `type` (use with `--type ID`) or `status` (`--status ID`).
    pub attribute: &'static str,
    pub id: String,
    pub name: String,
}

impl Record for PsaAttributeRecord {
    fn headers() -> &'static [&'static str] {
        &["attribute", "id", "name"]
    }
    fn row(&self) -> Vec<String> {
        vec![self.attribute.into(), self.id.clone(), self.name.clone()]
    }
}

/// `psa companies`: the client's [`psa::Company`] (its JSON form as is).
#[derive(Serialize)]
#[serde(transparent)]
pub struct PsaCompanyRecord(pub psa::Company);

impl Record for PsaCompanyRecord {
    fn headers() -> &'static [&'static str] {
        &[
            "id",
            "name",
            "type_id",
            "type",
            "status_id",
            "status",
            "active",
        ]
    }
    fn row(&self) -> Vec<String> {
        let c = &self.0;
        let id = |v: &Option<psa::AttributeValue>| v.as_ref().map(|a| a.id.clone());
        let name = |v: &Option<psa::AttributeValue>| v.as_ref().map(|a| a.name.clone());
        vec![
            c.id.clone(),
            c.name.clone(),
            id(&c.company_type).unwrap_or_default(),
            name(&c.company_type).unwrap_or_default(),
            id(&c.status).unwrap_or_default(),
            name(&c.status).unwrap_or_default(),
            c.active.to_string(),
        ]
    }
}

/// `psa contacts`: the client's [`psa::Contact`] (its JSON form as is); e-mails `;`-joined in
/// table and CSV output.
#[derive(Serialize)]
#[serde(transparent)]
pub struct PsaContactRecord(pub psa::Contact);

impl Record for PsaContactRecord {
    fn headers() -> &'static [&'static str] {
        &[
            "id",
            "company_id",
            "first_name",
            "last_name",
            "emails",
            "invalid_emails",
            "active",
        ]
    }
    fn row(&self) -> Vec<String> {
        let c = &self.0;
        vec![
            c.id.clone(),
            c.company_id.clone(),
            c.first_name.clone(),
            c.last_name.clone(),
            c.emails
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            c.invalid_emails.join(";"),
            c.active.to_string(),
        ]
    }
}
