//! StackOne-shaped unified IAM models (snake_case, open enums as `{value, source_value}`) and
//! their mapping from LastPass records.

use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use lastpass::{FolderMember, SharedFolder, User};
use schemars::JsonSchema;
use serde::Serialize;

/// An open enum: the normalised `value` and the provider's `source_value`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EnumValue {
    pub value: String,
    pub source_value: serde_json::Value,
}

impl EnumValue {
    pub fn new(value: &str, source: impl Into<serde_json::Value>) -> Self {
        Self {
            value: value.to_owned(),
            source_value: source.into(),
        }
    }
}

/// `IamRole`. LastPass has two account-level roles, synthesised from the admin flag; folder
/// roles (admin / editor / viewer) appear only scoped to a resource in `resource_users`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct IamRole {
    pub id: String,
    pub remote_id: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub role_type: EnumValue,
    pub policies: Vec<serde_json::Value>,
    /// For folder roles: `{resource_type, resource_id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<RoleScope>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RoleScope {
    pub resource_type: String,
    pub resource_id: String,
}

/// The two account roles, by id.
pub const ROLE_IDS: [&str; 2] = ["admin", "basic"];

pub fn account_role(id: &str) -> Option<IamRole> {
    let (name, description, source) = match id {
        "admin" => (
            "Admin",
            "A LastPass Business administrator (admin flag set on the user).",
            "admin: true",
        ),
        "basic" => (
            "User",
            "A LastPass Business user without admin rights.",
            "admin: false",
        ),
        _ => return None,
    };
    Some(IamRole {
        id: id.to_owned(),
        remote_id: id.to_owned(),
        name: name.to_owned(),
        description: Some(description.to_owned()),
        role_type: EnumValue::new(id, source),
        policies: Vec::new(),
        scope: None,
        created_at: None,
        updated_at: None,
    })
}

/// A group as it appears inside a user, or on its own.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct IamGroup {
    /// The group's name: LastPass groups have no other id.
    pub id: String,
    pub remote_id: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub group_type: EnumValue,
    pub roles: Vec<IamRole>,
    pub parent_id: Option<String>,
    pub remote_parent_id: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// Members (on `/groups` only): compact references, or full users with `expand=users`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<serde_json::Value>>,
}

pub fn group(name: &str) -> IamGroup {
    IamGroup {
        id: name.to_owned(),
        remote_id: name.to_owned(),
        name: name.to_owned(),
        description: None,
        group_type: EnumValue::new("group", "group"),
        roles: Vec::new(),
        parent_id: None,
        remote_parent_id: None,
        created_at: None,
        updated_at: None,
        users: None,
    }
}

/// `IamUser`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct IamUser {
    /// The e-mail address (LastPass's key for every user command).
    pub id: String,
    /// LastPass's numeric user id (the e-mail for a pending invitee, who has none yet).
    pub remote_id: String,
    pub primary_email_address: String,
    pub username: String,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_bot_user: bool,
    /// `enabled`, `disabled` or `pending` (invited, not yet accepted).
    pub status: EnumValue,
    pub roles: Vec<IamRole>,
    pub groups: Vec<IamGroup>,
    pub permissions: Vec<serde_json::Value>,
    /// The MFA type LastPass reports (`multifactor`), as an open enum list.
    pub multi_factor_enabled: Vec<EnumValue>,
    pub last_login_at: Option<String>,
    pub last_active_at: Option<String>,
    pub created_at: Option<String>,
    /// LastPass exposes no modification time.
    pub updated_at: Option<String>,
    pub avatar: Option<serde_json::Value>,
    /// LastPass custom attributes (`attribs`).
    pub unified_custom_fields: serde_json::Map<String, serde_json::Value>,
}

/// A LastPass time (in the account's zone) as RFC 3339 UTC.
pub fn utc(t: Option<NaiveDateTime>, tz: Tz) -> Option<String> {
    let t = t?;
    let local = tz.from_local_datetime(&t).earliest()?;
    Some(
        local
            .with_timezone(&Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `first last` split at the first space: LastPass keeps one `fullname`.
pub fn split_name(full: &str) -> (Option<String>, Option<String>) {
    let full = full.trim();
    if full.is_empty() {
        return (None, None);
    }
    match full.split_once(char::is_whitespace) {
        Some((f, l)) => (Some(f.to_owned()), Some(l.trim().to_owned())),
        None => (Some(full.to_owned()), None),
    }
}

pub fn status_of(u: &User) -> EnumValue {
    if u.invited {
        EnumValue::new("pending", "invited")
    } else if u.disabled {
        EnumValue::new("disabled", "disabled")
    } else {
        EnumValue::new("enabled", "active")
    }
}

pub fn mfa_of(raw: Option<&str>) -> Vec<EnumValue> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Vec::new();
    };
    let lower = raw.to_ascii_lowercase();
    let value = if lower.contains("sms") {
        "sms"
    } else if lower.contains("yubikey") || lower.contains("securid") {
        "hardware_token"
    } else if lower.contains("duo") || lower.contains("lastpassauth") || lower.contains("okta") {
        "push"
    } else if lower.contains("google") || lower.contains("microsoft") || lower.contains("totp") {
        "totp"
    } else {
        "unknown"
    };
    vec![EnumValue::new(value, raw)]
}

pub fn user(u: &User, tz: Tz) -> IamUser {
    let role = if u.admin { "admin" } else { "basic" };
    let (first, last) = split_name(&u.fullname);
    IamUser {
        id: u.username.clone(),
        remote_id: u.id.as_str().to_owned(),
        primary_email_address: u.username.clone(),
        username: u.username.clone(),
        name: Some(u.fullname.clone()).filter(|n| !n.trim().is_empty()),
        first_name: first,
        last_name: last,
        is_bot_user: false,
        status: status_of(u),
        roles: account_role(role).into_iter().collect(),
        groups: u.groups.iter().map(|g| group(g)).collect(),
        permissions: Vec::new(),
        multi_factor_enabled: mfa_of(u.multifactor.as_deref()),
        last_login_at: utc(u.last_login, tz),
        last_active_at: None,
        created_at: utc(u.created, tz),
        updated_at: None,
        avatar: None,
        unified_custom_fields: u
            .attribs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    }
}

/// `IamOrganization`: the one account, identified by its CID.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct IamOrganization {
    pub id: String,
    pub remote_id: String,
    pub name: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

pub fn organization(cid: lastpass::Cid) -> IamOrganization {
    IamOrganization {
        id: cid.to_string(),
        remote_id: cid.to_string(),
        name: format!("LastPass Business account {cid}"),
        created_at: None,
        updated_at: None,
    }
}

/// `IamResource`: a shared folder.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct IamResource {
    pub id: String,
    pub remote_id: String,
    pub name: String,
    pub location: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: EnumValue,
    pub description: Option<String>,
    /// Members with a folder role (`can_administer` → admin, `readonly` → viewer, else editor).
    pub member_count: usize,
    pub deleted: bool,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// The resource type id LastPass exposes.
pub const RESOURCE_TYPE: &str = "shared_folder";
/// Accepted as a synonym of [`RESOURCE_TYPE`]: StackOne's own resource type for folders.
pub const RESOURCE_TYPE_ALIAS: &str = "folder";

pub fn resource(f: &SharedFolder) -> IamResource {
    IamResource {
        id: f.id.as_str().to_owned(),
        remote_id: f.id.as_str().to_owned(),
        name: f.name.clone(),
        location: Some(f.name.clone()),
        resource_type: EnumValue::new("folder", RESOURCE_TYPE),
        description: None,
        member_count: f.users.len(),
        deleted: f.deleted,
        created_at: None,
        updated_at: None,
    }
}

/// A folder member as StackOne's `resource_users` entry: an `IamUser`-shaped record whose
/// roles are scoped to the folder.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ResourceUser {
    pub id: String,
    pub remote_id: String,
    pub primary_email_address: Option<String>,
    pub username: String,
    pub name: Option<String>,
    /// `user` for a person, `group` when LastPass lists a group as the member.
    pub member_type: String,
    pub status: Option<EnumValue>,
    pub roles: Vec<IamRole>,
    pub groups: Vec<IamGroup>,
    pub permissions: Vec<serde_json::Value>,
}

pub fn folder_role(folder: &SharedFolder, m: &FolderMember) -> IamRole {
    let role = m.role();
    let (id, name) = match role {
        lastpass::FolderRole::Admin => ("admin", "Folder admin"),
        lastpass::FolderRole::Editor => ("editor", "Folder editor"),
        lastpass::FolderRole::Viewer => ("viewer", "Folder viewer"),
    };
    IamRole {
        id: format!("{}:{id}", folder.id.as_str()),
        remote_id: id.to_owned(),
        name: name.to_owned(),
        description: None,
        role_type: EnumValue::new(
            id,
            serde_json::json!({
                "readonly": m.readonly, "give": m.give, "can_administer": m.can_administer,
            }),
        ),
        policies: Vec::new(),
        scope: Some(RoleScope {
            resource_type: RESOURCE_TYPE.to_owned(),
            resource_id: folder.id.as_str().to_owned(),
        }),
        created_at: None,
        updated_at: None,
    }
}

/// `IamCredentials` for `/me`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct IamCredentials {
    pub name: String,
    pub auth_type: EnumValue,
    pub scopes: Vec<String>,
    pub permissions: Vec<serde_json::Value>,
    pub last_accessed_at: Option<String>,
    pub user: Option<serde_json::Value>,
}

/// StackOne's write result (`UpdateResult` / `DeleteResult`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct WriteResult {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    pub message: String,
    pub timestamp: String,
}

impl WriteResult {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            status_code: 200,
            message: message.into(),
            timestamp: now_rfc3339(),
        }
    }
}

/// Parses an RFC 3339 time for `filter[updated_after]`.
pub fn parse_time(field: &'static str, s: &str) -> Result<DateTime<Utc>, lp_types::InvalidValue> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            lp_types::InvalidValue::new(
                field,
                s,
                "must be an ISO 8601 / RFC 3339 time, e.g. 2026-01-31T00:00:00Z",
            )
        })
}
