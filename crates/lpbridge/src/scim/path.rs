//! Attribute paths (RFC 7644 §3.10): `attrPath = [URI ":"] ATTRNAME *1subAttr`, and the PATCH
//! `path` (`attrPath / valuePath [subAttr]`, §3.5.2).
//!
//! Names keep the spelling they were written with (so printing round-trips); comparisons are
//! case-insensitive, as RFC 7643 §2.1 requires.

use std::fmt;

use super::error::ScimError;
use super::filter::{self, Filter};
use super::{CORE_SCHEMA_PREFIX, get_ci};

/// `[urn:]name[.sub]`, e.g. `name.givenName` or
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// The schema URN prefix, without the trailing `:` (`None` when unqualified).
    pub urn: Option<String>,
    /// The attribute name.
    pub name: String,
    /// The sub-attribute name, for a complex attribute.
    pub sub: Option<String>,
}

impl AttrPath {
    /// An unqualified attribute without sub-attribute.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            urn: None,
            name: name.into(),
            sub: None,
        }
    }

    /// The same path with a sub-attribute.
    pub fn with_sub(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }

    /// The same path qualified with a schema URN.
    pub fn with_urn(mut self, urn: impl Into<String>) -> Self {
        self.urn = Some(urn.into());
        self
    }

    /// Parses a whole string as an attribute path (no value filter). Errors are `invalidPath`.
    pub fn parse(s: &str) -> Result<Self, ScimError> {
        match scan_attr_path(s, 0) {
            Ok((path, end)) if end == s.len() => Ok(path),
            Ok((_, end)) => Err(ScimError::invalid_path(format!(
                "invalid attribute path {s:?}: unexpected character at position {}",
                char_pos(s, end)
            ))),
            Err((pos, msg)) => Err(ScimError::invalid_path(format!(
                "invalid attribute path {s:?}: {msg} at position {}",
                char_pos(s, pos)
            ))),
        }
    }

    /// The URN when it names an extension (so the attribute lives under that key), `None` for an
    /// unqualified or core-schema path (the attribute lives at the top level).
    pub fn extension_urn(&self) -> Option<&str> {
        self.urn
            .as_deref()
            .filter(|u| !starts_with_ci(u, CORE_SCHEMA_PREFIX))
    }

    /// The same attribute (ignoring the sub-attribute) compared case-insensitively.
    pub fn same_attribute(&self, other: &AttrPath) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && match (self.extension_urn(), other.extension_urn()) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
    }

    /// The whole path (`urn:name` without the sub-attribute) as one string; an extension's bare
    /// URN (`urn:…:enterprise:2.0:User`) parses as `urn:…:enterprise:2.0` + `User`, and this
    /// joins it back so callers can compare it with an extension id.
    pub fn joined_without_sub(&self) -> String {
        match &self.urn {
            Some(u) => format!("{u}:{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The value(s) this path selects in `resource`, flattened: a multi-valued attribute yields
    /// each element, `emails.value` yields each element's `value`. Missing → empty.
    ///
    /// An unqualified name not found at the top level is looked up in the extension objects,
    /// leniently (clients write `employeeNumber` for the enterprise attribute).
    pub fn select<'a>(&self, resource: &'a serde_json::Value) -> Vec<&'a serde_json::Value> {
        let Some(obj) = resource.as_object() else {
            return Vec::new();
        };
        let found = match self.extension_urn() {
            Some(urn) => get_ci(obj, urn)
                .and_then(|(_, ext)| ext.as_object())
                .and_then(|ext| get_ci(ext, &self.name)),
            None => get_ci(obj, &self.name).or_else(|| {
                obj.iter()
                    .filter(|(k, _)| starts_with_ci(k, "urn:"))
                    .filter_map(|(_, ext)| ext.as_object())
                    .find_map(|ext| get_ci(ext, &self.name))
            }),
        };
        let Some((_, value)) = found else {
            return Vec::new();
        };
        let top = flatten(value);
        match &self.sub {
            None => top,
            Some(sub) => top
                .into_iter()
                .filter_map(|v| v.as_object())
                .filter_map(|o| get_ci(o, sub).map(|(_, v)| v))
                .flat_map(flatten)
                .collect(),
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// A PATCH operation's `path`: an attribute path, optionally with a value filter, e.g.
/// `members[value eq "2819c223"]` or `emails[type eq "work"].value`.
///
/// With a filter, `attr.sub` is the sub-attribute *after* the brackets (`.value` above).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
}

impl PatchPath {
    /// Parses a PATCH path. Errors are `invalidPath` and name the position.
    pub fn parse(s: &str) -> Result<Self, ScimError> {
        filter::parse::parse_patch_path(s).map_err(|e| {
            ScimError::invalid_path(format!("invalid path {s:?}: {}", e.message_with_position()))
        })
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.filter {
            None => self.attr.fmt(f),
            Some(filter) => {
                if let Some(u) = &self.attr.urn {
                    write!(f, "{u}:")?;
                }
                write!(f, "{}[{filter}]", self.attr.name)?;
                if let Some(s) = &self.attr.sub {
                    write!(f, ".{s}")?;
                }
                Ok(())
            }
        }
    }
}

/// A multi-valued attribute's elements, or the value itself.
pub(crate) fn flatten(value: &serde_json::Value) -> Vec<&serde_json::Value> {
    match value {
        serde_json::Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

pub(crate) fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The 0-based character position of byte offset `byte` (error messages count characters).
pub(crate) fn char_pos(s: &str, byte: usize) -> usize {
    s.get(..byte).map_or(byte, |p| p.chars().count())
}

/// A character allowed in an attribute path token (names, URNs, `.` and `$ref`).
pub(crate) fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$' | ':' | '.' | '+' | '%')
}

/// Scans an attribute path starting at byte `start`; returns it and the byte offset after it.
/// Errors carry a byte offset and a message.
pub(crate) fn scan_attr_path(
    src: &str,
    start: usize,
) -> Result<(AttrPath, usize), (usize, String)> {
    let rest = &src[start..];
    let len = rest
        .char_indices()
        .find(|&(_, c)| !is_path_char(c))
        .map_or(rest.len(), |(i, _)| i);
    if len == 0 {
        return Err((start, "expected an attribute name".to_owned()));
    }
    let token = &rest[..len];
    let end = start + len;
    let (urn, local, local_start) = if starts_with_ci(token, "urn:") {
        // The URN itself may contain dots (`2.0`), so split at the last colon first.
        match token.rfind(':') {
            Some(i) if i > 4 => (Some(&token[..i]), &token[i + 1..], start + i + 1),
            _ => {
                return Err((
                    start,
                    "a schema URN must be followed by `:attribute`".to_owned(),
                ));
            }
        }
    } else {
        if let Some(i) = token.find(':') {
            return Err((start + i, "unexpected `:` in an attribute name".to_owned()));
        }
        (None, token, start)
    };
    let mut parts = local.splitn(3, '.');
    let name = parts.next().unwrap_or_default();
    let sub = parts.next();
    if parts.next().is_some() {
        let second_dot = local_start + name.len() + 1 + sub.map_or(0, str::len);
        return Err((
            second_dot,
            "at most one sub-attribute level is allowed".to_owned(),
        ));
    }
    check_name(name, local_start)?;
    if let Some(sub) = sub {
        check_name(sub, local_start + name.len() + 1)?;
    }
    Ok((
        AttrPath {
            urn: urn.map(str::to_owned),
            name: name.to_owned(),
            sub: sub.map(str::to_owned),
        },
        end,
    ))
}

/// `ATTRNAME = ALPHA *(nameChar)`, plus the special `$ref`.
fn check_name(name: &str, at: usize) -> Result<(), (usize, String)> {
    if name.eq_ignore_ascii_case("$ref") {
        return Ok(());
    }
    let mut chars = name.chars();
    match chars.next() {
        None => return Err((at, "empty attribute name".to_owned())),
        Some(c) if !c.is_ascii_alphabetic() => {
            return Err((
                at,
                format!("attribute name {name:?} must start with a letter"),
            ));
        }
        Some(_) => {}
    }
    if let Some(i) = name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map(|(i, _)| i)
    {
        return Err((
            at + i,
            format!("invalid character in attribute name {name:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_plain_sub_and_urn_paths() {
        assert_eq!(
            AttrPath::parse("userName").unwrap(),
            AttrPath::new("userName")
        );
        assert_eq!(
            AttrPath::parse("name.givenName").unwrap(),
            AttrPath::new("name").with_sub("givenName")
        );
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(
            (p.name.as_str(), p.sub.as_deref()),
            ("manager", Some("value"))
        );
        assert_eq!(
            p.to_string(),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
        );
        assert_eq!(
            AttrPath::parse("members.$ref").unwrap().sub.as_deref(),
            Some("$ref")
        );
    }

    #[test]
    fn core_urn_is_top_level() {
        let p = AttrPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:userName").unwrap();
        assert_eq!(p.extension_urn(), None);
        assert!(p.same_attribute(&AttrPath::new("USERNAME")));
    }

    #[test]
    fn rejects_bad_paths_with_positions() {
        for (bad, pos) in [
            ("", 0),
            ("1abc", 0),
            ("a.b.c", 3),
            ("a:b", 1),
            ("urn:", 0),
            ("na me", 2),
        ] {
            let e = AttrPath::parse(bad).unwrap_err();
            assert_eq!(
                e.scim_type,
                Some(crate::scim::ScimType::InvalidPath),
                "{bad}"
            );
            assert!(
                e.detail.contains(&format!("position {pos}")),
                "{bad}: {}",
                e.detail
            );
        }
    }

    #[test]
    fn select_flattens_multi_valued_and_extensions() {
        let r = json!({
            "userName": "a",
            "emails": [{"value": "x", "type": "work"}, {"value": "y"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "7"}
        });
        assert_eq!(
            AttrPath::parse("Emails.VALUE").unwrap().select(&r),
            vec![&json!("x"), &json!("y")]
        );
        assert_eq!(
            AttrPath::parse("employeeNumber").unwrap().select(&r),
            vec![&json!("7")]
        );
        assert_eq!(
            AttrPath::parse(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
            )
            .unwrap()
            .select(&r),
            vec![&json!("7")]
        );
        assert!(AttrPath::parse("title").unwrap().select(&r).is_empty());
    }
}
