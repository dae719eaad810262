//! Types shared by every lpbridge crate, defined once: the redacting [`Secret`], the validated
//! [`Email`], and identifier newtypes ([`Cid`], [`UserId`], [`GroupName`], [`FolderId`]) so that a
//! group name can never be passed where an e-mail address is expected.
//!
//! Every boundary (CLI argument, CSV cell, HTTP body) converts strings into these types at once, and
//! a refusal names the field and the value through [`InvalidValue`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// At most this many characters of a refused value are quoted back in messages.
pub const SHOWN_CHARS: usize = 100;

/// `value` cut to [`SHOWN_CHARS`] characters (on a char boundary) with `…` appended when cut,
/// so a multi-megabyte CSV cell never becomes a multi-megabyte error line.
pub fn shown(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(SHOWN_CHARS) {
        None => std::borrow::Cow::Borrowed(value),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}…", &value[..cut])),
    }
}

/// A value refused at a boundary: which field, which value, and why. `Display` quotes at most
/// [`SHOWN_CHARS`] characters of the value; the field keeps it whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {:?}: {reason}", shown(value))]
pub struct InvalidValue {
    /// The field's name or path (`cid`, `users[2].email`).
    pub field: std::borrow::Cow<'static, str>,
    pub value: String,
    pub reason: String,
}

impl InvalidValue {
    pub fn new(
        field: impl Into<std::borrow::Cow<'static, str>>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// A secret string (provisioning hash, API key, password). `Debug` and `Display` print `***`;
/// the only way to the value is [`Secret::expose`], which makes every use greppable.
///
/// It deserialises from a plain string but deliberately does not implement `Serialize`: writing a
/// secret anywhere must be an explicit `expose()`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call only where it must go on the wire or into encrypted storage.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Drop the secret's bytes when it goes out of scope (best effort; no extra dependency).
impl Drop for Secret {
    fn drop(&mut self) {
        // SAFETY-free zeroing: overwrite through the String's own API.
        let len = self.0.len();
        self.0.clear();
        self.0.extend(std::iter::repeat_n('\0', len));
        self.0.clear();
    }
}

/// A validated e-mail address. Keeps the spelling it was given (LastPass echoes usernames as
/// entered) but compares, hashes and orders case-insensitively.
#[derive(Clone)]
pub struct Email {
    original: String,
    folded: String,
}

impl Email {
    /// Validate an address. The rules are deliberately pragmatic (what LastPass and IdPs accept):
    /// one `@`, a non-empty local part, a dotted domain, no whitespace or control characters, at
    /// most 254 characters.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        Self::parse_field("email", value)
    }

    /// Like [`Email::parse`], naming `field` in the refusal.
    pub fn parse_field(field: &'static str, value: &str) -> Result<Self, InvalidValue> {
        let v = value.trim();
        let bad = |reason: &str| Err(InvalidValue::new(field, value, reason));
        if v.is_empty() {
            return bad("is empty");
        }
        if v.len() > 254 {
            return bad("is longer than 254 characters");
        }
        if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("contains whitespace or control characters");
        }
        let Some((local, domain)) = v.rsplit_once('@') else {
            return bad("has no '@'");
        };
        if local.is_empty() {
            return bad("has an empty local part");
        }
        if local.contains('@') {
            return bad("has more than one '@'");
        }
        if local.len() > 64 {
            return bad("has a local part longer than 64 characters");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return bad("has a misplaced '.' in the local part");
        }
        if domain.is_empty() || !domain.contains('.') {
            return bad("has no dotted domain");
        }
        for label in domain.split('.') {
            if label.is_empty() || label.len() > 63 {
                return bad("has an empty or over-long domain label");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return bad("has a domain label starting or ending with '-'");
            }
            if !label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
            {
                return bad("has an invalid character in the domain");
            }
        }
        Ok(Self {
            original: v.to_owned(),
            folded: v.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The lower-cased form used for comparison and lookup keys.
    pub fn folded(&self) -> &str {
        &self.folded
    }

    pub fn local_part(&self) -> &str {
        self.original
            .rsplit_once('@')
            .map(|(l, _)| l)
            .unwrap_or(&self.original)
    }

    pub fn domain(&self) -> &str {
        self.original.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.folded == other.folded
    }
}
impl Eq for Email {}

impl std::hash::Hash for Email {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.folded.hash(state);
    }
}

impl PartialOrd for Email {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Email {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.folded.cmp(&other.folded)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.original)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl FromStr for Email {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Email::parse(s)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.original)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A LastPass company (account) id. The API documents an integer; many clients send a numeric
/// string, so deserialisation accepts both and serialisation writes a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid(pub u64);

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Cid {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Cid(n)),
            _ => Err(InvalidValue::new(
                "cid",
                s,
                "must be a positive integer account number",
            )),
        }
    }
}

impl Serialize for Cid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Cid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n
                .as_u64()
                .filter(|n| *n > 0)
                .map(Cid)
                .ok_or_else(|| serde::de::Error::custom("cid must be a positive integer")),
            serde_json::Value::String(s) => s.parse().map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "cid must be a number or numeric string, got {other}"
            ))),
        }
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Refuses empty (or whitespace-only) values, naming the field.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
                let value = value.into();
                if value.trim().is_empty() {
                    return Err(InvalidValue::new($field, value, "must not be empty"));
                }
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}

string_id!(
    /// A LastPass user id: digits, used as an object key in `getuserdata` (`"449022543"`).
    UserId,
    "user id"
);
string_id!(
    /// A LastPass group name. Groups have no numeric id anywhere in the Enterprise API.
    GroupName,
    "group"
);
string_id!(
    /// A shared-folder id, an object key in `getsfdata` (`"101"`).
    FolderId,
    "shared folder id"
);
string_id!(
    /// The local name of a stored connection profile.
    ConnectionId,
    "connection"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2-provhash");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(***))");
        assert_eq!(s.expose(), "hunter2-provhash");
    }

    #[test]
    fn email_validation_names_field_and_value() {
        let e = Email::parse_field("username", "not-an-email").unwrap_err();
        assert_eq!(e.field, "username");
        assert_eq!(e.value, "not-an-email");
        assert!(e.to_string().contains("\"not-an-email\""));
        for bad in [
            "",
            "a@",
            "@b.com",
            "a b@c.com",
            "a@b",
            "a@@b.com",
            "a@b..com",
            ".a@b.com",
            "a@-b.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
        for good in ["a@b.co", "First.Last+tag@Example.COM", "x_y@sub.domain.io"] {
            assert!(Email::parse(good).is_ok(), "{good} should be accepted");
        }
    }

    #[test]
    fn email_is_case_insensitive_but_keeps_spelling() {
        let a = Email::parse("User@Example.com").unwrap();
        let b = Email::parse("user@example.COM").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "User@Example.com");
        assert_eq!(a.folded(), "user@example.com");
        assert_eq!(a.local_part(), "User");
        assert_eq!(a.domain(), "Example.com");
    }

    #[test]
    fn cid_accepts_number_and_string() {
        let a: Cid = serde_json::from_str("8771312").unwrap();
        let b: Cid = serde_json::from_str("\"8771312\"").unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_str::<Cid>("\"x1\"").is_err());
        assert!(serde_json::from_str::<Cid>("true").is_err());
        assert!(serde_json::from_str::<Cid>("0").is_err());
        assert_eq!("0".parse::<Cid>().unwrap_err().field, "cid");
        assert_eq!(serde_json::to_string(&a).unwrap(), "8771312");
    }

    #[test]
    fn long_values_are_quoted_cut() {
        let long = "é".repeat(5000);
        let e = Email::parse(&long).unwrap_err();
        let msg = e.to_string();
        assert!(msg.chars().count() < 200, "{msg}");
        assert!(msg.contains('…'));
        assert_eq!(e.value, long, "the field keeps the whole value");
        assert_eq!(shown("short"), "short");
    }

    #[test]
    fn ids_refuse_empty() {
        let e = GroupName::new("  ").unwrap_err();
        assert_eq!(e.field, "group");
        assert!(FolderId::new("101").is_ok());
    }

    proptest! {
        #[test]
        fn email_roundtrip_preserves_equality(local in "[a-zA-Z0-9._+-]{1,20}", dom in "[a-z]{1,10}\\.[a-z]{2,5}") {
            let raw = format!("{local}@{dom}");
            if let Ok(e) = Email::parse(&raw) {
                let again = Email::parse(&e.as_str().to_uppercase()).unwrap();
                prop_assert_eq!(e, again);
            }
        }
    }
}
