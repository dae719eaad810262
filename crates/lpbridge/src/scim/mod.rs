//! SCIM 2.0 service provider (issue 6): the protocol core the `/scim/v2` endpoints build on.
//!
//! The protocol core is pure: JSON in, JSON (or a [`ScimError`]) out, no I/O and no LastPass.
//!
//! - [`error`]: the RFC 7644 §3.12 error body, [`ScimError`], used by every other module.
//! - [`path`]: attribute paths (`name.givenName`, `urn:…:User:employeeNumber`) and PATCH paths
//!   (`emails[type eq "work"].value`).
//! - [`filter`]: the RFC 7644 §3.4.2.2 filter grammar: typed AST, parser, printer, evaluator.
//! - [`schema`]: the RFC 7643 User, Enterprise User and Group schemas as static tables
//!   (`caseExact`, `mutability`, `returned`, `required`, sub-attributes), and their `/Schemas` JSON.
//! - [`patch`]: RFC 7644 §3.5.2 PATCH applied to a resource, with the identity-provider quirks
//!   Q1–Q13 of the research notes (`shared/reference/unified-iam-and-scim.md` §2.5).
//! - [`resource`]: `POST`/`PUT` bodies checked and canonicalised into a resource to store.
//! - [`service`]: the provider over one connection: Users and Groups mapped onto LastPass and
//!   the store (the only part here that does I/O, with [`routes`]).
//! - [`routes`]: the `/scim/v2` endpoints, authentication and discovery resources.
//! - [`list`]: `ListResponse` paging (`startIndex`/`count`) and `attributes`/`excludedAttributes`
//!   projection.
//!
//! Resources are `serde_json::Value` objects in the wire shape: core attributes at the top level,
//! extension attributes under their schema URN (`"urn:…:enterprise:2.0:User": {…}`), canonical
//! attribute names (`userName`, not `username`).

pub mod error;
pub mod filter;
pub mod list;
pub mod patch;
pub mod path;
pub mod resource;
pub mod routes;
pub mod schema;
pub mod service;

pub use error::{ScimError, ScimType};
pub use filter::{CaseExact, CompValue, CompareOp, Filter, SubTest, Test};
pub use list::{ListResponse, PageRequest, Projection, SearchRequest, list_resources};
pub use patch::{PatchOp, PatchOperation, PatchRequest, apply_patch};
pub use path::{AttrPath, PatchPath};
pub use resource::{replace_resource, resource_from_request};
pub use schema::{AttrDef, ResourceSchema, SchemaDef};

/// The media type of every SCIM request and response body (RFC 7644 §3.1).
pub const CONTENT_TYPE: &str = "application/scim+json";
/// `schemas` of an error body.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// `schemas` of a list or search response.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// `schemas` of a PATCH request body.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// `schemas` of a `POST /.search` body.
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// The core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise User extension.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Every core schema URN starts with this; attributes under it live at the resource's top level.
pub const CORE_SCHEMA_PREFIX: &str = "urn:ietf:params:scim:schemas:core:2.0:";

/// Looks a key up in a JSON object case-insensitively (attribute names are case-insensitive,
/// RFC 7643 §2.1); an exact match wins.
pub(crate) fn get_ci<'a>(
    obj: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<(&'a String, &'a serde_json::Value)> {
    obj.get_key_value(key)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
}

/// The stored key matching `key` case-insensitively, if any.
pub(crate) fn key_ci(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<String> {
    get_ci(obj, key).map(|(k, _)| k.clone())
}

/// Removes JSON `null`s recursively (object members and array elements): SCIM treats a null as
/// "unassigned" (RFC 7643 §2.5) and Entra wants no nulls on output (quirk Q13).
pub fn strip_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => {
            items.retain(|v| !v.is_null());
            items.iter_mut().for_each(strip_nulls);
        }
        _ => {}
    }
}
