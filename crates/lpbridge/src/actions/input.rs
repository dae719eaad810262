//! Input parsing for actions: JSON → typed input struct, with every refusal naming the JSON path
//! of the field (`users[2].email`) and the value found there, plus the validated newtypes
//! ([`EmailAddr`], [`GroupArg`], [`Password`], [`FolderIdArg`], [`DeleteChoice`]) whose JSON
//! Schemas say what they accept.

use std::borrow::Cow;

use lastpass::{DeleteAction, Email, FolderId, GroupName, InvalidValue, Secret};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::ActionError;

/// Checks that serde cannot express (ranges, "at least one of", cross-field rules). Runs after
/// a successful parse; every refusal names its field.
pub trait Validate {
    fn validate(&self) -> Result<(), InvalidValue> {
        Ok(())
    }
}

/// Parses an action's input: `null` counts as `{}`; anything but an object is refused; a wrong
/// type, a missing or unknown field, or a value a newtype refuses becomes
/// [`ActionError::InvalidInput`] naming the JSON path and the value; then [`Validate`] runs.
pub fn parse_input<T: DeserializeOwned + Validate>(input: &Value) -> Result<T, ActionError> {
    let empty = Value::Object(serde_json::Map::new());
    let input = if input.is_null() { &empty } else { input };
    if !input.is_object() {
        return Err(ActionError::InvalidInput(InvalidValue::new(
            "input",
            shown_value(input),
            "must be a JSON object",
        )));
    }
    let parsed: T = serde_path_to_error::deserialize(input).map_err(|e| {
        let segments: Vec<Seg> = e.path().iter().filter_map(Seg::from_serde).collect();
        ActionError::InvalidInput(describe_error(input, segments, &e.inner().to_string()))
    })?;
    parsed.validate().map_err(ActionError::InvalidInput)?;
    Ok(parsed)
}

/// One step of a JSON path.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn from_serde(s: &serde_path_to_error::Segment) -> Option<Self> {
        match s {
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            // Enum variants and unknown steps add nothing a caller could act on.
            _ => None,
        }
    }
}

fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn lookup<'a>(root: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(root, |v, s| match s {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::Index(i) => v.get(*i),
    })
}

/// Field names whose values are never quoted back (they are secrets). Case-insensitive: header
/// names (`headers.Authorization`) and unknown keys (`Provhash`) come in any case.
fn is_secret_field(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "password" | "default_password" | "provhash" | "authorization" | "api_key"
    )
}

/// Turns a serde message at `path` into a named refusal. serde reports a missing or unknown
/// field at the parent's path, so the field's name is taken from the message.
fn describe_error(root: &Value, mut path: Vec<Seg>, message: &str) -> InvalidValue {
    let between = |m: &str, prefix: &str| -> Option<String> {
        m.strip_prefix(prefix)
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned())
    };
    let reason;
    if let Some(name) = between(message, "missing field `") {
        path.push(Seg::Key(name));
        reason = "is required".to_owned();
    } else if let Some(name) = between(message, "unknown field `") {
        let known = message
            .split_once(", expected ")
            .map(|(_, e)| format!(" (expected {e})"))
            .unwrap_or_default();
        // serde_path_to_error already ends the path with the unknown key.
        if !matches!(path.last(), Some(Seg::Key(k)) if *k == name) {
            path.push(Seg::Key(name));
        }
        reason = format!("is not a field of this input{known}");
    } else {
        reason = message.to_owned();
    }
    let rendered = render(&path);
    let last_is_secret = matches!(path.last(), Some(Seg::Key(k)) if is_secret_field(k));
    let value = match lookup(root, &path) {
        _ if last_is_secret => "***".to_owned(),
        Some(v) => shown_value(v),
        None => String::new(),
    };
    // serde quotes the value in its messages (`integer `12345``): not for a secret.
    let reason = if last_is_secret && !reason.starts_with("is ") && !reason.starts_with("must ") {
        "must be a non-empty string (the value given is not shown: the field is secret)".to_owned()
    } else {
        reason
    };
    // A long path (hostile input) is cut like a value.
    let field = if rendered.is_empty() {
        "input".to_owned()
    } else {
        lp_types::shown(&rendered).into_owned()
    };
    InvalidValue::new(field, value, reason)
}

/// A value as quoted back in a refusal: strings as they are, anything else as compact JSON,
/// cut to 200 characters (a refusal must not carry a megabyte of input).
pub(crate) fn shown_value(v: &Value) -> String {
    const MAX: usize = 200;
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

// ---------------------------------------------------------------------------------------------
// Validated newtypes
// ---------------------------------------------------------------------------------------------

/// An e-mail address, validated as [`Email`] while parsing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddr(pub Email);

impl<'de> Deserialize<'de> for EmailAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s)
            .map(EmailAddr)
            .map_err(|e| D::Error::custom(format!("not an e-mail address: {}", e.reason)))
    }
}

impl JsonSchema for EmailAddr {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Email".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "email", "minLength": 3, "maxLength": 254})
    }
}

/// A group name (not blank).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupArg(pub GroupName);

impl<'de> Deserialize<'de> for GroupArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        GroupName::new(s)
            .map(GroupArg)
            .map_err(|e| D::Error::custom(e.reason))
    }
}

impl JsonSchema for GroupArg {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "GroupName".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "minLength": 1, "maxLength": 256})
    }
}

/// A shared-folder id (not blank).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FolderIdArg(pub FolderId);

impl<'de> Deserialize<'de> for FolderIdArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Ids are object keys ("101"); a number is accepted too, as callers often send one.
        let s = match Value::deserialize(d)? {
            Value::String(s) => s,
            Value::Number(n) if n.is_u64() => n.to_string(),
            other => {
                return Err(D::Error::custom(format!(
                    "expected a shared folder id (string or non-negative integer), got {other}"
                )));
            }
        };
        FolderId::new(s)
            .map(FolderIdArg)
            .map_err(|e| D::Error::custom(e.reason))
    }
}

impl JsonSchema for FolderIdArg {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "SharedFolderId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "integer"],
            "minLength": 1,
            "minimum": 0,
            "description": "Shared folder id, as listed by lastpass_list_shared_folders (e.g. \"101\")."
        })
    }
}

/// A password (default master password, site password): never printed, never echoed.
#[derive(Clone)]
pub struct Password(pub Secret);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Secret::deserialize(d)?;
        if s.is_empty() {
            return Err(D::Error::custom("must not be empty (leave the field out)"));
        }
        Ok(Password(s))
    }
}

impl JsonSchema for Password {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Password".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "minLength": 1, "writeOnly": true})
    }
}

/// `deluser`'s `deleteaction`: a name or its code (0–3), as a number or a numeric string.
/// Required wherever it appears: the choice is irreversible, so there is no default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteChoice(pub DeleteAction);

impl DeleteChoice {
    fn parse(s: &str) -> Option<DeleteAction> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "deactivate" | "0" => DeleteAction::Deactivate,
            "remove" | "1" => DeleteAction::Remove,
            "delete" | "2" => DeleteAction::Delete,
            "uninvite" | "3" => DeleteAction::Uninvite,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for DeleteChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let parsed = match &v {
            Value::String(s) => DeleteChoice::parse(s),
            Value::Number(n) => n
                .as_u64()
                .filter(|n| *n <= 3)
                .and_then(|n| DeleteChoice::parse(&n.to_string())),
            _ => None,
        };
        parsed.map(DeleteChoice).ok_or_else(|| {
            D::Error::custom(
                "must be deactivate (0), remove (1), delete (2) or uninvite (3) — by name or code",
            )
        })
    }
}

impl JsonSchema for DeleteChoice {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "DeleteAction".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "deluser deleteaction: deactivate (0: block login, keep the vault and membership), remove (1: remove from the Business account; the user keeps a free personal account), delete (2: delete the account and its vault, irreversible), uninvite (3: cancel a pending invitation). A name or its code, as a number or a string. Required: there is no default.",
            "oneOf": [
                {"type": "string", "enum": ["deactivate", "remove", "delete", "uninvite", "0", "1", "2", "3"]},
                {"type": "integer", "enum": [0, 1, 2, 3]}
            ]
        })
    }
}

/// Refuses `value` outside `min..=max`, naming `field`.
pub(crate) fn check_range(
    field: &'static str,
    value: Option<u64>,
    min: u64,
    max: u64,
) -> Result<(), InvalidValue> {
    match value {
        Some(v) if v < min || v > max => Err(InvalidValue::new(
            field,
            v.to_string(),
            format!("must be between {min} and {max}"),
        )),
        _ => Ok(()),
    }
}

/// Refuses a list longer than `max` (or shorter than `min`), naming `field`.
pub(crate) fn check_len<T>(
    field: &'static str,
    items: &[T],
    min: usize,
    max: usize,
) -> Result<(), InvalidValue> {
    if items.len() < min || items.len() > max {
        return Err(InvalidValue::new(
            field,
            format!("{} item(s)", items.len()),
            format!("must hold between {min} and {max} items"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        email: EmailAddr,
        #[serde(default)]
        password: Option<Password>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        users: Vec<Inner>,
        #[serde(default)]
        limit: Option<u32>,
    }

    impl Validate for Outer {}

    fn refusal(v: Value) -> InvalidValue {
        match parse_input::<Outer>(&v) {
            Err(ActionError::InvalidInput(iv)) => iv,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn refusals_name_the_json_path_and_value() {
        let e = refusal(json!({"users": [{"email": "a@x.io"}, {"email": "nope"}]}));
        assert_eq!(e.field, "users[1].email");
        assert_eq!(e.value, "nope");
        assert!(e.reason.contains("no '@'"), "{e}");

        let e = refusal(json!({"users": [], "limit": "ten"}));
        assert_eq!(e.field, "limit");
        assert_eq!(e.value, "ten");
        assert!(e.reason.contains("invalid type"), "{e}");

        let e = refusal(json!({"users": [{}]}));
        assert_eq!(e.field, "users[0].email");
        assert_eq!(e.reason, "is required");

        let e = refusal(json!({"users": [{"email": "a@x.io", "colour": 5}]}));
        assert_eq!(e.field, "users[0].colour");
        assert_eq!(e.value, "5");
        assert!(e.reason.contains("expected"), "{e}");

        let e = refusal(json!({}));
        assert_eq!(e.field, "users");

        let e = refusal(json!([1, 2]));
        assert_eq!(e.field, "input");
    }

    #[test]
    fn secrets_are_never_quoted_back() {
        let e = refusal(json!({"users": [{"email": "a@x.io", "password": ""}]}));
        assert_eq!(e.field, "users[0].password");
        assert_eq!(e.value, "***");
        let e = refusal(json!({"users": [{"email": "a@x.io", "password": 12345}]}));
        assert_eq!(e.value, "***");
        assert!(!e.to_string().contains("12345"), "{e}");
        // Any case: an unknown `Provhash` key, a header named `Authorization`.
        let e = refusal(json!({"users": [], "Provhash": "hash-s3cret"}));
        assert_eq!((e.field.as_ref(), e.value.as_str()), ("Provhash", "***"));
        assert!(!e.to_string().contains("hash-s3cret"), "{e}");
        let e = refusal(json!({"users": [{"email": "a@x.io", "Password": "pw-s3cret"}]}));
        assert_eq!(e.value, "***");
        assert!(!e.to_string().contains("pw-s3cret"), "{e}");
    }

    #[test]
    fn long_values_and_paths_are_bounded() {
        let long = "x".repeat(10_000);
        let e = refusal(json!({"users": [], "limit": long}));
        assert!(e.value.chars().count() <= 201);
        let key = "k".repeat(500);
        let e = refusal(json!({"users": [], key.clone(): 1}));
        assert!(e.field.chars().count() <= 101, "over-long paths are cut");
        assert!(e.field.starts_with("kkk"), "{e}");
    }

    #[test]
    fn delete_choice_accepts_names_and_codes() {
        for (v, want) in [
            (json!("deactivate"), DeleteAction::Deactivate),
            (json!(1), DeleteAction::Remove),
            (json!("2"), DeleteAction::Delete),
            (json!("Uninvite"), DeleteAction::Uninvite),
        ] {
            let got: DeleteChoice = serde_json::from_value(v).unwrap();
            assert_eq!(got.0, want);
        }
        for bad in [json!(4), json!(-1), json!("purge"), json!(true), json!(1.5)] {
            assert!(serde_json::from_value::<DeleteChoice>(bad).is_err());
        }
    }
}
