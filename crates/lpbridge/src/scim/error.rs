//! The SCIM error body (RFC 7644 §3.12) as one type, [`ScimError`].
//!
//! Every protocol piece in [`crate::scim`] fails with a `ScimError`, so the endpoints can answer
//! with it unchanged: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],
//! "status":"400","scimType":"invalidFilter","detail":"…"}`. `status` is serialised as a JSON
//! **string** (Okta's spec test asserts `"401"`/`"404"`); reading accepts a string or a number.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{CONTENT_TYPE, ERROR_SCHEMA};

/// The `scimType` values of RFC 7644 §3.12, table 9 (plus the cursor ones of RFC 9865 that
/// scim2-models knows, so a body we read never fails on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
    InvalidCursor,
    ExpiredCursor,
    InvalidCount,
}

impl ScimType {
    /// The wire spelling, e.g. `invalidFilter`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::ExpiredCursor => "expiredCursor",
            ScimType::InvalidCount => "invalidCount",
        }
    }
}

impl std::fmt::Display for ScimType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SCIM error response: HTTP status, optional `scimType` and a human-readable `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SCIM {status}{}: {detail}", scim_type.map(|t| format!(" {t}")).unwrap_or_default())]
pub struct ScimError {
    /// The HTTP status code (also the body's `status`, as a string).
    pub status: u16,
    /// The RFC 7644 `scimType`; only meaningful with 400, 409 and 403.
    pub scim_type: Option<ScimType>,
    /// What went wrong, for a person: names the attribute, the position or the value.
    pub detail: String,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 with a `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    /// 400 without a `scimType` (a malformed body that fits no RFC keyword).
    pub fn bad_request_plain(detail: impl Into<String>) -> Self {
        Self::new(400, None, detail)
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }

    /// 400 `tooMany`: a filter matched more than `filter.maxResults`.
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::TooMany, detail)
    }

    /// 409 `uniqueness` (Okta's spec test R8 requires 409 on a duplicate `userName`).
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }

    /// 401: a missing or wrong bearer token (Okta R11 wants a body with a non-empty `detail`).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }

    /// 404: no such resource (Okta R4/R12 want a body with a non-empty `detail`).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 405: a write to `/ServiceProviderConfig`, `/ResourceTypes` or `/Schemas` (scim2-tester).
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(405, None, detail)
    }

    /// 413: a body over the advertised size.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(413, None, detail)
    }

    /// 500: an internal failure; the detail must not leak secrets.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, None, detail)
    }

    /// The RFC 7644 §3.12 body.
    pub fn to_body(&self) -> serde_json::Value {
        // Serialising a struct of strings cannot fail.
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::Value::Null)
    }
}

/// The wire shape, shared by `Serialize` and `Deserialize`.
#[derive(Serialize, Deserialize)]
struct Wire {
    schemas: Vec<String>,
    #[serde(serialize_with = "status_as_string", deserialize_with = "status_any")]
    status: u16,
    #[serde(rename = "scimType", default, skip_serializing_if = "Option::is_none")]
    scim_type: Option<ScimType>,
    #[serde(default)]
    detail: String,
}

fn status_as_string<S: Serializer>(status: &u16, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&status.to_string())
}

fn status_any<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Num(u16),
        Str(String),
    }
    match Either::deserialize(d)? {
        Either::Num(n) => Ok(n),
        Either::Str(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

impl Serialize for ScimError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            schemas: vec![ERROR_SCHEMA.to_owned()],
            status: self.status,
            scim_type: self.scim_type,
            detail: self.detail.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ScimError {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        Ok(ScimError {
            status: w.status,
            scim_type: w.scim_type,
            detail: w.detail,
        })
    }
}

impl axum::response::IntoResponse for ScimError {
    fn into_response(self) -> axum::response::Response {
        let status = http::StatusCode::from_u16(self.status)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (status, [(http::header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_string_status_and_scim_type() {
        let e = ScimError::invalid_filter("unexpected `)` at position 4");
        assert_eq!(
            e.to_body(),
            serde_json::json!({
                "schemas": [ERROR_SCHEMA],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "unexpected `)` at position 4",
            })
        );
    }

    #[test]
    fn scim_type_is_omitted_when_absent() {
        let body = ScimError::not_found("no User with id x").to_body();
        assert_eq!(body["status"], "404");
        assert!(body.get("scimType").is_none());
    }

    #[test]
    fn reads_string_or_numeric_status() {
        let a: ScimError = serde_json::from_value(serde_json::json!({
            "schemas": [ERROR_SCHEMA], "status": "409", "scimType": "uniqueness", "detail": "dup"
        }))
        .unwrap();
        assert_eq!(a, ScimError::uniqueness("dup"));
        let b: ScimError = serde_json::from_value(serde_json::json!({
            "schemas": [ERROR_SCHEMA], "status": 404, "detail": "gone"
        }))
        .unwrap();
        assert_eq!(b, ScimError::not_found("gone"));
    }

    #[test]
    fn display_names_status_and_type() {
        assert_eq!(
            ScimError::no_target("x").to_string(),
            "SCIM 400 noTarget: x"
        );
        assert_eq!(ScimError::not_found("y").to_string(), "SCIM 404: y");
    }
}
