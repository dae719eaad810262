//! The RFC 7643 schemas lpbridge serves (§4.1 User, §4.3 Enterprise User, §4.2 Group, and the
//! common attributes of §3.1) as static tables, so one source answers the evaluator's
//! `caseExact`, PATCH's `mutability`/`required`, projection's `returned`, and the `/Schemas`
//! endpoint ([`SchemaDef::to_json`]).
//!
//! Departures from RFC 7643 §8.7.1, on purpose: the `value` of `members`, `groups` and `manager`
//! is `caseExact` (they hold our case-sensitive ids, RFC 7643 §3.1), Group `displayName` is
//! `required` (LastPass groups are keyed by name), and `members.display` exists (Okta and Entra
//! send it).

use serde_json::{Map, Value, json};

use super::filter::CaseExact;
use super::path::{AttrPath, starts_with_ci};
use super::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, Copy)]
pub struct AttrDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttrDef],
    pub description: &'static str,
}

/// Builders, `const` so the tables below are plain statics.
impl AttrDef {
    const fn new(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
            description,
        }
    }
    const fn string(name: &'static str, description: &'static str) -> Self {
        Self::new(name, AttrType::String, description)
    }
    const fn complex(
        name: &'static str,
        subs: &'static [AttrDef],
        description: &'static str,
    ) -> Self {
        let mut a = Self::new(name, AttrType::Complex, description);
        a.sub_attributes = subs;
        a
    }
    const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    const fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    const fn unique(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }
    const fn refs(mut self, types: &'static [&'static str]) -> Self {
        self.reference_types = types;
        self
    }

    /// The sub-attribute `name`, case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&'static AttrDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The RFC 7643 §7 attribute JSON.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("name".into(), json!(self.name));
        o.insert("type".into(), json!(type_str(self.ty)));
        o.insert("multiValued".into(), json!(self.multi_valued));
        o.insert("description".into(), json!(self.description));
        o.insert("required".into(), json!(self.required));
        if !self.canonical_values.is_empty() {
            o.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if self.ty != AttrType::Complex {
            o.insert("caseExact".into(), json!(self.case_exact));
        }
        o.insert("mutability".into(), json!(mutability_str(self.mutability)));
        o.insert("returned".into(), json!(returned_str(self.returned)));
        if self.ty != AttrType::Complex && self.ty != AttrType::Boolean {
            o.insert("uniqueness".into(), json!(uniqueness_str(self.uniqueness)));
        }
        if !self.reference_types.is_empty() {
            o.insert("referenceTypes".into(), json!(self.reference_types));
        }
        if !self.sub_attributes.is_empty() {
            o.insert(
                "subAttributes".into(),
                Value::Array(self.sub_attributes.iter().map(AttrDef::to_json).collect()),
            );
        }
        Value::Object(o)
    }
}

fn type_str(t: AttrType) -> &'static str {
    match t {
        AttrType::String => "string",
        AttrType::Boolean => "boolean",
        AttrType::Decimal => "decimal",
        AttrType::Integer => "integer",
        AttrType::DateTime => "dateTime",
        AttrType::Binary => "binary",
        AttrType::Reference => "reference",
        AttrType::Complex => "complex",
    }
}
fn mutability_str(m: Mutability) -> &'static str {
    match m {
        Mutability::ReadOnly => "readOnly",
        Mutability::ReadWrite => "readWrite",
        Mutability::Immutable => "immutable",
        Mutability::WriteOnly => "writeOnly",
    }
}
fn returned_str(r: Returned) -> &'static str {
    match r {
        Returned::Always => "always",
        Returned::Never => "never",
        Returned::Default => "default",
        Returned::Request => "request",
    }
}
fn uniqueness_str(u: Uniqueness) -> &'static str {
    match u {
        Uniqueness::None => "none",
        Uniqueness::Server => "server",
        Uniqueness::Global => "global",
    }
}

/// One schema (RFC 7643 §7).
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttrDef],
}

impl SchemaDef {
    pub fn attribute(&self, name: &str) -> Option<&'static AttrDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The `/Schemas/{id}` resource (without `meta.location`, which needs the base URL).
    pub fn to_json(&self) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(AttrDef::to_json).collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema"},
        })
    }
}

use AttrType::{Boolean, DateTime, Reference};
use Mutability::{Immutable, ReadOnly, WriteOnly};

const EMAIL_SUBS: &[AttrDef] = &[
    AttrDef::string("value", "Email address."),
    AttrDef::string("display", "A human-readable name."),
    AttrDef::string("type", "work, home or other.").canonical(&["work", "home", "other"]),
    AttrDef::new("primary", Boolean, "The primary address."),
];
const PHONE_SUBS: &[AttrDef] = &[
    AttrDef::string("value", "Phone number."),
    AttrDef::string("display", "A human-readable name."),
    AttrDef::string("type", "work, home, mobile, fax, pager or other.")
        .canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
    AttrDef::new("primary", Boolean, "The primary number."),
];
const IMS_SUBS: &[AttrDef] = &[
    AttrDef::string("value", "Instant messaging address."),
    AttrDef::string("display", "A human-readable name."),
    AttrDef::string("type", "The service."),
    AttrDef::new("primary", Boolean, "The primary address."),
];
const PHOTO_SUBS: &[AttrDef] = &[
    AttrDef::new("value", Reference, "URL of a photo.")
        .case_exact()
        .refs(&["external"]),
    AttrDef::string("display", "A human-readable name."),
    AttrDef::string("type", "photo or thumbnail.").canonical(&["photo", "thumbnail"]),
    AttrDef::new("primary", Boolean, "The primary photo."),
];
const ADDRESS_SUBS: &[AttrDef] = &[
    AttrDef::string("formatted", "The full mailing address."),
    AttrDef::string("streetAddress", "Street."),
    AttrDef::string("locality", "City."),
    AttrDef::string("region", "State or region."),
    AttrDef::string("postalCode", "Zip or postal code."),
    AttrDef::string("country", "Country."),
    AttrDef::string("type", "work, home or other.").canonical(&["work", "home", "other"]),
    AttrDef::new("primary", Boolean, "The primary address."),
];
const GROUPS_SUBS: &[AttrDef] = &[
    AttrDef::string("value", "The group's id.")
        .case_exact()
        .mutability(ReadOnly),
    AttrDef::new("$ref", Reference, "The group's URI.")
        .case_exact()
        .mutability(ReadOnly)
        .refs(&["User", "Group"]),
    AttrDef::string("display", "The group's displayName.").mutability(ReadOnly),
    AttrDef::string("type", "direct or indirect.")
        .mutability(ReadOnly)
        .canonical(&["direct", "indirect"]),
];
const VALUE_SUBS: &[AttrDef] = &[
    AttrDef::string("value", "The value."),
    AttrDef::string("display", "A human-readable name."),
    AttrDef::string("type", "A label."),
    AttrDef::new("primary", Boolean, "The primary value."),
];
const X509_SUBS: &[AttrDef] = &[
    AttrDef::new("value", AttrType::Binary, "A DER certificate, base64.").case_exact(),
    AttrDef::string("display", "A human-readable name."),
    AttrDef::string("type", "A label."),
    AttrDef::new("primary", Boolean, "The primary certificate."),
];
const NAME_SUBS: &[AttrDef] = &[
    AttrDef::string("formatted", "The full name."),
    AttrDef::string("familyName", "Family name."),
    AttrDef::string("givenName", "Given name."),
    AttrDef::string("middleName", "Middle name."),
    AttrDef::string("honorificPrefix", "E.g. Ms."),
    AttrDef::string("honorificSuffix", "E.g. III."),
];

/// The core User schema (RFC 7643 §4.1 / §8.7.1).
pub static USER: SchemaDef = SchemaDef {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: &[
        AttrDef::string("userName", "The user's e-mail address in LastPass.")
            .required()
            .unique(),
        AttrDef::complex("name", NAME_SUBS, "The user's name."),
        AttrDef::string("displayName", "The name to display."),
        AttrDef::string("nickName", "Casual name."),
        AttrDef::new("profileUrl", Reference, "Profile URL.").refs(&["external"]),
        AttrDef::string("title", "Job title."),
        AttrDef::string("userType", "Organisation-to-user relationship."),
        AttrDef::string("preferredLanguage", "Preferred language."),
        AttrDef::string("locale", "Locale."),
        AttrDef::string("timezone", "Time zone (IANA)."),
        // Always has a value in LastPass; a request without it means true (a new user) or
        // unchanged (PUT).
        AttrDef::new(
            "active",
            Boolean,
            "Whether the account is enabled (default true).",
        )
        .required(),
        AttrDef::string("password", "Accepted and dropped.")
            .mutability(WriteOnly)
            .returned(Returned::Never),
        AttrDef::complex("emails", EMAIL_SUBS, "E-mail addresses.").multi(),
        AttrDef::complex("phoneNumbers", PHONE_SUBS, "Phone numbers.").multi(),
        AttrDef::complex("ims", IMS_SUBS, "Instant messaging addresses.").multi(),
        AttrDef::complex("photos", PHOTO_SUBS, "Photos.").multi(),
        AttrDef::complex("addresses", ADDRESS_SUBS, "Physical addresses.").multi(),
        AttrDef::complex(
            "groups",
            GROUPS_SUBS,
            "Groups the user belongs to (read-only).",
        )
        .multi()
        .mutability(ReadOnly),
        AttrDef::complex("entitlements", VALUE_SUBS, "Entitlements.").multi(),
        AttrDef::complex("roles", VALUE_SUBS, "Roles.").multi(),
        AttrDef::complex("x509Certificates", X509_SUBS, "Certificates.").multi(),
    ],
};

const MANAGER_SUBS: &[AttrDef] = &[
    AttrDef::string("value", "The manager's id.").case_exact(),
    AttrDef::new("$ref", Reference, "The manager's URI.")
        .case_exact()
        .refs(&["User"]),
    AttrDef::string("displayName", "The manager's name.").mutability(ReadOnly),
];

/// The enterprise User extension (RFC 7643 §4.3).
pub static ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        AttrDef::string("employeeNumber", "Employee number."),
        AttrDef::string("costCenter", "Cost center."),
        AttrDef::string("organization", "Organization."),
        AttrDef::string("division", "Division."),
        AttrDef::string("department", "Department."),
        AttrDef::complex("manager", MANAGER_SUBS, "The user's manager."),
    ],
};

const MEMBER_SUBS: &[AttrDef] = &[
    AttrDef::string("value", "The member's id.")
        .case_exact()
        .mutability(Immutable),
    AttrDef::new("$ref", Reference, "The member's URI.")
        .case_exact()
        .mutability(Immutable)
        .refs(&["User"]),
    // Read-only and not returned: LastPass keeps no member label, and a member reads back as
    // written. Accepted (and ignored) on input, as Okta sends it.
    AttrDef::string("display", "The member's name (accepted, not stored).")
        .mutability(ReadOnly)
        .returned(Returned::Never),
    AttrDef::string("type", "User (LastPass groups hold users only).")
        .mutability(Immutable)
        .canonical(&["User"]),
];

/// The core Group schema (RFC 7643 §4.2).
pub static GROUP: SchemaDef = SchemaDef {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: &[
        AttrDef::string("displayName", "The LastPass group name.").required(),
        AttrDef::complex("members", MEMBER_SUBS, "The group's members.").multi(),
    ],
};

const META_SUBS: &[AttrDef] = &[
    AttrDef::string("resourceType", "User or Group.")
        .case_exact()
        .mutability(ReadOnly),
    AttrDef::new("created", DateTime, "When created.").mutability(ReadOnly),
    AttrDef::new("lastModified", DateTime, "When last changed.").mutability(ReadOnly),
    AttrDef::new("location", Reference, "The resource URI.")
        .case_exact()
        .mutability(ReadOnly),
    AttrDef::string("version", "The ETag.")
        .case_exact()
        .mutability(ReadOnly),
];

/// The attributes every resource has (RFC 7643 §3.1); not listed in `/Schemas`.
pub static COMMON: &[AttrDef] = &[
    AttrDef::string("id", "Server-assigned, stable identifier.")
        .case_exact()
        .mutability(ReadOnly)
        .returned(Returned::Always)
        .unique(),
    AttrDef::string("externalId", "The client's identifier.").case_exact(),
    AttrDef::complex("meta", META_SUBS, "Resource metadata.").mutability(ReadOnly),
];

/// A resource type's schemas: the core one and its extensions.
#[derive(Debug, Clone, Copy)]
pub struct ResourceSchema {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub core: &'static SchemaDef,
    pub extensions: &'static [&'static SchemaDef],
}

/// Where an attribute path points, per the schema.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// The extension URN the attribute lives under, `None` for top-level attributes.
    pub extension: Option<&'static str>,
    pub attr: &'static AttrDef,
    /// The sub-attribute definition, when the path names one.
    pub sub: Option<&'static AttrDef>,
}

impl Resolved {
    /// The definition of the path's target: the sub-attribute if any, else the attribute.
    pub fn target(&self) -> &'static AttrDef {
        self.sub.unwrap_or(self.attr)
    }
}

impl ResourceSchema {
    pub const USER: ResourceSchema = ResourceSchema {
        name: "User",
        endpoint: "/Users",
        core: &USER,
        extensions: &[&ENTERPRISE_USER],
    };
    pub const GROUP: ResourceSchema = ResourceSchema {
        name: "Group",
        endpoint: "/Groups",
        core: &GROUP,
        extensions: &[],
    };

    /// The extension whose id is `urn` (any case).
    pub fn extension(&self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The extension a path names as a whole (`urn:…:enterprise:2.0:User` parses as URN
    /// `urn:…:enterprise:2.0` + attribute `User`).
    pub fn extension_named_by(&self, path: &AttrPath) -> Option<&'static SchemaDef> {
        if path.sub.is_some() || path.urn.is_none() {
            return None;
        }
        self.extension(&path.joined_without_sub())
    }

    /// Every schema URN of this resource type (core first).
    pub fn schema_ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.core.id).chain(self.extensions.iter().map(|s| s.id))
    }

    /// Resolves a path (any case) to its definitions; `None` for an unknown attribute or
    /// sub-attribute. Unqualified names are searched in the common attributes, the core schema,
    /// then the extensions.
    pub fn resolve(&self, path: &AttrPath) -> Option<Resolved> {
        let (extension, attr) = match path.urn.as_deref() {
            Some(urn) if urn.eq_ignore_ascii_case(self.core.id) => (
                None,
                find(COMMON, &path.name).or_else(|| self.core.attribute(&path.name))?,
            ),
            Some(urn) if starts_with_ci(urn, super::CORE_SCHEMA_PREFIX) => return None,
            Some(urn) => {
                let ext = self.extension(urn)?;
                (Some(ext.id), ext.attribute(&path.name)?)
            }
            None => find(COMMON, &path.name)
                .or_else(|| self.core.attribute(&path.name))
                .map(|a| (None, a))
                .or_else(|| {
                    self.extensions
                        .iter()
                        .find_map(|e| e.attribute(&path.name).map(|a| (Some(e.id), a)))
                })?,
        };
        let sub = match &path.sub {
            None => None,
            Some(s) => Some(attr.sub(s)?),
        };
        Some(Resolved {
            extension,
            attr,
            sub,
        })
    }

    /// The `/ResourceTypes/{name}` resource (without `meta.location`).
    pub fn resource_type_json(&self) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.core.description,
            "schema": self.core.id,
            "schemaExtensions": self.extensions.iter()
                .map(|e| json!({"schema": e.id, "required": false}))
                .collect::<Vec<_>>(),
            "meta": {"resourceType": "ResourceType"},
        })
    }
}

fn find(list: &'static [AttrDef], name: &str) -> Option<&'static AttrDef> {
    list.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

impl CaseExact for ResourceSchema {
    /// Unknown attributes compare case-insensitively (the RFC default, `caseExact: false`).
    fn case_exact(&self, path: &AttrPath) -> bool {
        self.resolve(path).is_some_and(|r| r.target().case_exact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_core_common_extension_and_sub_attributes() {
        let s = ResourceSchema::USER;
        let r = s.resolve(&AttrPath::parse("USERNAME").unwrap()).unwrap();
        assert_eq!((r.attr.name, r.extension), ("userName", None));
        assert!(r.attr.required);
        let r = s
            .resolve(&AttrPath::parse("emails.Value").unwrap())
            .unwrap();
        assert_eq!(r.target().name, "value");
        let r = s
            .resolve(&AttrPath::parse(&format!("{ENTERPRISE_USER_SCHEMA}:manager.value")).unwrap())
            .unwrap();
        assert_eq!(r.extension, Some(ENTERPRISE_USER_SCHEMA));
        assert!(r.target().case_exact);
        let r = s.resolve(&AttrPath::parse("department").unwrap()).unwrap();
        assert_eq!(r.extension, Some(ENTERPRISE_USER_SCHEMA));
        assert!(
            s.resolve(&AttrPath::parse("id").unwrap())
                .unwrap()
                .attr
                .case_exact
        );
        assert!(s.resolve(&AttrPath::parse("nosuch").unwrap()).is_none());
        assert!(
            s.resolve(&AttrPath::parse("name.nosuch").unwrap())
                .is_none()
        );
        let whole = AttrPath::parse(ENTERPRISE_USER_SCHEMA).unwrap();
        assert!(s.extension_named_by(&whole).is_some());
    }

    #[test]
    fn case_exact_follows_the_table() {
        let s = ResourceSchema::USER;
        assert!(!s.case_exact(&AttrPath::new("userName")));
        assert!(s.case_exact(&AttrPath::new("externalId")));
        assert!(ResourceSchema::GROUP.case_exact(&AttrPath::new("members").with_sub("value")));
    }

    #[test]
    fn schema_json_has_rfc_fields() {
        let j = USER.to_json();
        assert_eq!(j["id"], USER_SCHEMA);
        let user_name = &j["attributes"][0];
        assert_eq!(user_name["name"], "userName");
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["caseExact"], false);
        let emails = j["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "emails")
            .unwrap();
        assert_eq!(emails["multiValued"], true);
        assert_eq!(emails["subAttributes"].as_array().unwrap().len(), 4);
        assert_eq!(
            ResourceSchema::USER.resource_type_json()["schemaExtensions"][0]["schema"],
            ENTERPRISE_USER_SCHEMA
        );
    }
}
