//! Typed requests and answers of the managed-companies part of the LastPass REST API
//! (reference §3.3): managed companies, their users and account statuses, asynchronous
//! requests, pages, and the list queries. Decoding is lenient where the reference is unsure:
//! ids may be numbers or strings, unknown enum values are kept as `Other`, optional members may
//! be missing or `null`.

use std::fmt;

use lp_types::{Email, InvalidValue};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::Problem;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        ///
        /// Decodes from a JSON number or string; encodes as a number when it is all digits.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as a JSON value: a number when it is all digits, else a string.
            pub fn to_json(&self) -> Value {
                match self.0.parse::<u64>() {
                    Ok(n) if !self.0.starts_with('0') || self.0 == "0" => Value::from(n),
                    _ => Value::from(self.0.clone()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v.to_string())
            }
        }

        impl From<&str> for $name {
            fn from(v: &str) -> Self {
                Self(v.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                match Value::deserialize(d)? {
                    Value::String(s) if !s.is_empty() => Ok(Self(s)),
                    Value::Number(n) => Ok(Self(n.to_string())),
                    other => Err(serde::de::Error::custom(format!(
                        "expected an id (number or string), got {other}"
                    ))),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.to_json().serialize(s)
            }
        }
    };
}

id_type!(
    /// A managed company's id (its LastPass account number).
    CompanyId
);
id_type!(
    /// A user's id inside a managed company.
    CompanyUserId
);
id_type!(
    /// An asynchronous request's id.
    RequestId
);

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        ///
        /// An unknown value decodes as `Other` (kept verbatim).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)+
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Other(s) => s,
                }
            }

            /// The value for a wire spelling (case-insensitive).
            pub fn parse(s: &str) -> Self {
                match s.to_ascii_lowercase().as_str() {
                    $($wire => $name::$variant,)+
                    _ => $name::Other(s.to_string()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(|s| Self::parse(&s))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// A managed company's status: `active` is billed at month end, `suspended` is not.
    CompanyStatus { Active = "active", Suspended = "suspended" }
);

wire_enum!(
    /// `managed` (a customer) or `managed-msp` (a managed company that is itself an MSP); `msp`
    /// appears in list filters.
    CompanyType { Msp = "msp", Managed = "managed", ManagedMsp = "managed-msp" }
);

wire_enum!(
    /// A managed company's add-on.
    Addon { Mfa = "mfa", Sso = "sso" }
);

wire_enum!(
    /// A user's account status (reference §3.3).
    AccountStatus {
        Enrolled = "enrolled",
        PendingInvitation = "pending-invitation",
        ExpiredInvitation = "expired-invitation",
        Staged = "staged",
        Disabled = "disabled",
        AwaitingApproval = "awaiting-approval",
    }
);

wire_enum!(
    /// How a new user gets their account: `invite` sends an activation e-mail, `stage` does not.
    CreationAccountAction { Invite = "invite", Stage = "stage" }
);

wire_enum!(
    /// Where an asynchronous request is. Anything but `pending` / `in-progress` / `queued` is
    /// final.
    RequestStatus {
        Pending = "pending",
        InProgress = "in-progress",
        Queued = "queued",
        Completed = "completed",
        Failed = "failed",
    }
);

impl RequestStatus {
    /// Whether the request may still change.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            RequestStatus::Pending | RequestStatus::InProgress | RequestStatus::Queued
        )
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A managed company as `GET /v1/managed-companies[/{id}]` answers it. The read schema is a
/// **GUESS** (the reference could not read it), so everything but `id` and `name` is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCompany {
    pub id: CompanyId,
    pub name: String,
    #[serde(default)]
    pub status: Option<CompanyStatus>,
    #[serde(default, rename = "type")]
    pub company_type: Option<CompanyType>,
    /// Licences allocated to the company.
    #[serde(default)]
    pub license_limit: Option<u32>,
    /// Users holding a licence.
    #[serde(default)]
    pub licenses_used: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub addons: Vec<Addon>,
    #[serde(default)]
    pub parent_id: Option<CompanyId>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// A company to create: `POST /v1/managed-companies`
/// `{"name","licenseLimit","type","addons","parentId"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewManagedCompany {
    pub name: String,
    pub license_limit: Option<u32>,
    pub company_type: Option<CompanyType>,
    pub addons: Vec<Addon>,
    pub parent_id: Option<CompanyId>,
}

impl NewManagedCompany {
    /// A company with this name and the server's defaults for the rest.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    pub fn with_license_limit(mut self, n: u32) -> Self {
        self.license_limit = Some(n);
        self
    }

    /// Refuses an empty name.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.name.trim().is_empty() {
            return Err(InvalidValue::new("name", &self.name, "must not be empty"));
        }
        Ok(())
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.name.trim().into());
        if let Some(l) = self.license_limit {
            m.insert("licenseLimit".into(), l.into());
        }
        if let Some(t) = &self.company_type {
            m.insert("type".into(), t.as_str().into());
        }
        if !self.addons.is_empty() {
            m.insert("addons".into(), addon_list(&self.addons));
        }
        if let Some(p) = &self.parent_id {
            m.insert("parentId".into(), p.to_json());
        }
        Value::Object(m)
    }
}

fn addon_list(a: &[Addon]) -> Value {
    a.iter().map(|x| Value::from(x.as_str())).collect()
}

/// Changes to a company: `PUT /v1/managed-companies/{id}` `{"licenseLimit","status","addons"}`.
/// Only the fields set are sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompanyUpdate {
    pub license_limit: Option<u32>,
    pub status: Option<CompanyStatus>,
    pub addons: Option<Vec<Addon>>,
}

impl CompanyUpdate {
    /// Refuses an update that changes nothing.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self == &Self::default() {
            return Err(InvalidValue::new(
                "update",
                "{}",
                "set at least one of license_limit, status, addons",
            ));
        }
        Ok(())
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(l) = self.license_limit {
            m.insert("licenseLimit".into(), l.into());
        }
        if let Some(s) = &self.status {
            m.insert("status".into(), s.as_str().into());
        }
        if let Some(a) = &self.addons {
            m.insert("addons".into(), addon_list(a));
        }
        Value::Object(m)
    }
}

/// A user of a managed company: `{"id","name","email","accountStatus"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyUser {
    pub id: CompanyUserId,
    #[serde(default)]
    pub name: Option<String>,
    pub email: String,
    pub account_status: AccountStatus,
}

impl CompanyUser {
    /// The e-mail, validated.
    pub fn email(&self) -> Result<Email, InvalidValue> {
        Email::parse(&self.email)
    }
}

/// A user to add: `POST /v1/managed-companies/{id}/users`
/// `{"email","name","creationAccountAction"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCompanyUser {
    pub email: Email,
    pub name: Option<String>,
    pub action: CreationAccountAction,
}

impl NewCompanyUser {
    /// A user invited by e-mail (holds a licence).
    pub fn invite(email: Email) -> Self {
        Self {
            email,
            name: None,
            action: CreationAccountAction::Invite,
        }
    }

    /// A staged user (no e-mail sent).
    pub fn stage(email: Email) -> Self {
        Self {
            email,
            name: None,
            action: CreationAccountAction::Stage,
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("email".into(), self.email.as_str().into());
        if let Some(n) = self
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            m.insert("name".into(), n.into());
        }
        m.insert("creationAccountAction".into(), self.action.as_str().into());
        Value::Object(m)
    }
}

/// The `202` answer of an asynchronous operation: `{"id","url"}` (`url` is where to poll).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub id: RequestId,
    pub url: String,
}

/// An asynchronous request as its poll URL answers it (**GUESS**: the reference names only
/// the `202` body). `resource_id` is the company once a create completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsyncRequest {
    pub id: RequestId,
    pub status: RequestStatus,
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(default)]
    pub resource_id: Option<CompanyId>,
    #[serde(default)]
    pub resource_url: Option<String>,
    #[serde(default)]
    pub error: Option<Problem>,
}

/// One page of a list: `{"nextPageToken": string|null, "items": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    bound(deserialize = "T: Deserialize<'de>", serialize = "T: Serialize")
)]
pub struct Page<T> {
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub items: Vec<T>,
}

/// What a list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Id,
    Name,
    /// Users only.
    Email,
}

/// `sort=FIELD:asc|desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub field: SortField,
    pub descending: bool,
}

impl Sort {
    /// `name:asc`, the order the reference shows.
    pub fn name_asc() -> Self {
        Self {
            field: SortField::Name,
            descending: false,
        }
    }

    pub(crate) fn param(&self) -> String {
        let f = match self.field {
            SortField::Id => "id",
            SortField::Name => "name",
            SortField::Email => "email",
        };
        format!("{f}:{}", if self.descending { "desc" } else { "asc" })
    }
}

fn csv<T: AsRef<str>>(items: &[T]) -> String {
    items
        .iter()
        .map(|x| x.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

macro_rules! as_ref_str {
    ($($t:ty),+) => {$(
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    )+};
}
as_ref_str!(CompanyStatus, CompanyType, Addon, AccountStatus);

/// Filters of `GET /v1/managed-companies` (all optional; lists are OR-ed within, filters
/// AND-ed across). `name` takes `%` wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanyQuery {
    pub name: Option<String>,
    pub parent_id: Option<CompanyId>,
    pub license_limit: Option<u32>,
    pub statuses: Vec<CompanyStatus>,
    pub types: Vec<CompanyType>,
    pub addons: Vec<Addon>,
    pub sort: Option<Sort>,
    /// `max-results` (1–500); `None`: 500, the fewest calls.
    pub page_size: Option<u32>,
}

impl CompanyQuery {
    /// Companies whose name matches `pattern` (`%` is a wildcard).
    pub fn named(pattern: impl Into<String>) -> Self {
        Self {
            name: Some(pattern.into()),
            ..Self::default()
        }
    }

    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![(
            "max-results",
            self.page_size.unwrap_or(super::MAX_PAGE_SIZE).to_string(),
        )];
        if let Some(n) = &self.name {
            p.push(("name", n.clone()));
        }
        if let Some(id) = &self.parent_id {
            p.push(("parent-id", id.to_string()));
        }
        if let Some(l) = self.license_limit {
            p.push(("license-limit", l.to_string()));
        }
        if !self.statuses.is_empty() {
            p.push(("status", csv(&self.statuses)));
        }
        if !self.types.is_empty() {
            p.push(("type", csv(&self.types)));
        }
        if !self.addons.is_empty() {
            p.push(("addon", csv(&self.addons)));
        }
        if let Some(s) = &self.sort {
            p.push(("sort", s.param()));
        }
        p
    }
}

/// Filters of `GET /v1/managed-companies/{id}/users` (**GUESS**: the reference does not list
/// them; the sandbox serves these).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// `%` wildcards.
    pub email: Option<String>,
    /// `%` wildcards.
    pub name: Option<String>,
    pub statuses: Vec<AccountStatus>,
    pub sort: Option<Sort>,
    /// `max-results` (1–500); `None`: 500.
    pub page_size: Option<u32>,
}

impl UserQuery {
    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![(
            "max-results",
            self.page_size.unwrap_or(super::MAX_PAGE_SIZE).to_string(),
        )];
        if let Some(e) = &self.email {
            p.push(("email", e.clone()));
        }
        if let Some(n) = &self.name {
            p.push(("name", n.clone()));
        }
        if !self.statuses.is_empty() {
            p.push(("account-status", csv(&self.statuses)));
        }
        if let Some(s) = &self.sort {
            p.push(("sort", s.param()));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_decode_from_numbers_and_strings() {
        let c: ManagedCompany = serde_json::from_value(json!({
            "id": 40001000, "name": "A", "parentId": "8771312", "addons": null, "type": "reseller"
        }))
        .unwrap();
        assert_eq!(c.id.as_str(), "40001000");
        assert_eq!(c.parent_id, Some(CompanyId::new("8771312")));
        assert!(c.addons.is_empty());
        assert_eq!(c.company_type, Some(CompanyType::Other("reseller".into())));
        assert_eq!(CompanyId::new("42").to_json(), json!(42));
        assert_eq!(CompanyId::new("007").to_json(), json!("007"));
        assert_eq!(CompanyId::new("ab-1").to_json(), json!("ab-1"));
    }

    #[test]
    fn bodies_send_only_what_is_set() {
        let n = NewManagedCompany {
            parent_id: Some(CompanyId::from(5)),
            addons: vec![Addon::Mfa],
            ..NewManagedCompany::named(" Acme ").with_license_limit(3)
        };
        assert_eq!(
            n.to_json(),
            json!({"name": "Acme", "licenseLimit": 3, "addons": ["mfa"], "parentId": 5})
        );
        let u = CompanyUpdate {
            status: Some(CompanyStatus::Suspended),
            ..CompanyUpdate::default()
        };
        assert_eq!(u.to_json(), json!({"status": "suspended"}));
        assert!(CompanyUpdate::default().validate().is_err());
        let user = NewCompanyUser::stage(Email::parse("a@b.example").unwrap()).with_name("Ann");
        assert_eq!(
            user.to_json(),
            json!({"email": "a@b.example", "name": "Ann", "creationAccountAction": "stage"})
        );
    }

    #[test]
    fn statuses_parse_leniently() {
        assert_eq!(
            AccountStatus::parse("Pending-Invitation"),
            AccountStatus::PendingInvitation
        );
        assert!(RequestStatus::parse("in-progress").is_pending());
        assert!(!RequestStatus::parse("done").is_pending());
        let q = CompanyQuery {
            statuses: vec![CompanyStatus::Active, CompanyStatus::Suspended],
            sort: Some(Sort::name_asc()),
            ..CompanyQuery::named("Blue%")
        };
        assert_eq!(
            q.params(),
            vec![
                ("max-results", "500".to_string()),
                ("name", "Blue%".to_string()),
                ("status", "active,suspended".to_string()),
                ("sort", "name:asc".to_string()),
            ]
        );
    }
}
