//! SCIM filters (RFC 7644 §3.4.2.2): a typed AST ([`Filter`]), a parser ([`Filter::parse`]), a
//! printer (`Display`, which the parser reads back to the same AST) and an evaluator
//! ([`Filter::matches`]) over `serde_json::Value` resources.
//!
//! Grammar accepted (case-insensitive keywords, operators and attribute names):
//!
//! ```text
//! filter    = or
//! or        = and *("or" and)                ; `and` binds tighter than `or`
//! and       = unary *("and" unary)
//! unary     = "not" "(" filter ")" / "(" filter ")" / attrExp
//! attrExp   = attrPath "pr"
//!           / attrPath compareOp compValue
//!           / attrPath "[" valFilter "]" [ "." subAttr ( "pr" / compareOp compValue ) ]
//! valFilter = the same grammar over sub-attribute names, without nested brackets
//! compValue = false / null / true / number / JSON string
//! ```
//!
//! `emails[type eq "work"].value eq "x"` (Entra's lookup) is accepted although the RFC's ABNF
//! has no sub-attribute after a value filter. Leniency: a bare unquoted token after `eq`
//! (`externalId eq jyoung`, in Entra's own docs) reads as a string. `gt/ge/lt/le/co/sw/ew` with
//! `true`, `false` or `null` are refused (RFC: booleans can't be ordered).
//!
//! Errors are [`FilterError`]s carrying a character position; they convert to
//! 400 `invalidFilter`.

use std::fmt;

mod eval;
pub(crate) mod parse;

pub use eval::CaseExact;
pub(crate) use eval::matches_element;

use super::error::ScimError;
use super::path::AttrPath;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath pr` or `attrPath op value`.
    Attr {
        path: AttrPath,
        test: Test,
    },
    /// `attrPath[valFilter]`, optionally followed by `.sub test` (`emails[type eq "work"].value
    /// eq "x"`). `path.sub` is always `None` here; `filter` names sub-attributes of `path`.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
        then: Option<SubTest>,
    },
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

/// What an attribute is tested for.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `pr`: has a non-empty value.
    Present,
    Compare(CompareOp, CompValue),
}

/// The `.sub test` after a value filter.
#[derive(Debug, Clone, PartialEq)]
pub struct SubTest {
    pub sub: String,
    pub test: Test,
}

/// `eq ne co sw ew gt ge lt le`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// Parses an operator, case-insensitively.
    pub fn from_str_ci(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(s))
    }

    /// `gt ge lt le co sw ew`: the operators that make no sense on booleans and null.
    pub fn needs_string_or_number(self) -> bool {
        !matches!(self, CompareOp::Eq | CompareOp::Ne)
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `compValue = false / null / true / number / string`.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            // JSON string syntax is the filter's string syntax.
            CompValue::String(s) => f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?),
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Test::Present => f.write_str("pr"),
            Test::Compare(op, v) => write!(f, "{op} {v}"),
        }
    }
}

/// A parse error: what was wrong and where (0-based character position).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

impl FilterError {
    pub(crate) fn message_with_position(&self) -> String {
        self.to_string()
    }
}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        ScimError::invalid_filter(format!("invalid filter: {e}"))
    }
}

impl Filter {
    /// The value of a filter that is exactly `userName eq "x"` (any case, optionally with the
    /// core User URN), lower-cased: the one-user lookup identity providers make.
    pub fn user_name_eq(&self) -> Option<String> {
        match self {
            Filter::Attr {
                path,
                test: Test::Compare(CompareOp::Eq, CompValue::String(v)),
            } if path.sub.is_none()
                && path.name.eq_ignore_ascii_case("userName")
                && path
                    .urn
                    .as_deref()
                    .is_none_or(|u| u.eq_ignore_ascii_case(super::USER_SCHEMA)) =>
            {
                Some(v.to_lowercase())
            }
            _ => None,
        }
    }

    /// Parses a filter (e.g. the `filter` query parameter, already URL-decoded).
    pub fn parse(s: &str) -> Result<Self, FilterError> {
        parse::parse_filter(s)
    }

    /// [`Filter::parse`], with the error already a SCIM 400 `invalidFilter`.
    pub fn parse_scim(s: &str) -> Result<Self, ScimError> {
        Ok(Self::parse(s)?)
    }

    /// Whether `resource` matches. `case_exact` says, per attribute path, whether string
    /// comparisons are case-sensitive (the schema's `caseExact`).
    pub fn matches(&self, resource: &serde_json::Value, case_exact: &dyn CaseExact) -> bool {
        eval::matches(self, resource, case_exact)
    }

    pub fn and(self, other: Filter) -> Filter {
        Filter::And(Box::new(self), Box::new(other))
    }

    pub fn or(self, other: Filter) -> Filter {
        Filter::Or(Box::new(self), Box::new(other))
    }

    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }

    /// `path op value`.
    pub fn compare(path: AttrPath, op: CompareOp, value: CompValue) -> Filter {
        Filter::Attr {
            path,
            test: Test::Compare(op, value),
        }
    }

    /// The `attr eq "value"` pairs of a conjunction of equalities (`type eq "work" and primary eq
    /// true`), or `None` if the filter is anything else. PATCH uses this to create the entry an
    /// unmatched value filter describes (quirk Q5).
    pub fn equalities(&self) -> Option<Vec<(&AttrPath, &CompValue)>> {
        match self {
            Filter::Attr {
                path,
                test: Test::Compare(CompareOp::Eq, v),
            } if !matches!(v, CompValue::Null) => Some(vec![(path, v)]),
            Filter::And(a, b) => {
                let mut out = a.equalities()?;
                out.extend(b.equalities()?);
                Some(out)
            }
            _ => None,
        }
    }

    /// The attribute `eq` value if this filter is exactly `attr eq "string"` for `attr` (any
    /// case): lets callers answer Okta/Entra's `userName eq "…"` lookup from an index.
    pub fn as_string_equality(&self, attr: &AttrPath) -> Option<&str> {
        match self {
            Filter::Attr {
                path,
                test: Test::Compare(CompareOp::Eq, CompValue::String(s)),
            } if path.same_attribute(attr)
                && match (&path.sub, &attr.sub) {
                    (None, None) => true,
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    _ => false,
                } =>
            {
                Some(s)
            }
            _ => None,
        }
    }
}

/// Binding strength for printing: `or` < `and` < unary.
fn precedence(f: &Filter) -> u8 {
    match f {
        Filter::Or(..) => 0,
        Filter::And(..) => 1,
        _ => 2,
    }
}

/// Writes `f`, in parentheses when its precedence is below `min`.
fn write_operand(out: &mut fmt::Formatter<'_>, f: &Filter, min: u8) -> fmt::Result {
    if precedence(f) < min {
        write!(out, "({f})")
    } else {
        write!(out, "{f}")
    }
}

impl fmt::Display for Filter {
    /// Prints with the fewest parentheses that parse back to the same tree (operators are
    /// left-associative, so a right operand of equal precedence is parenthesised).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Attr { path, test } => write!(f, "{path} {test}"),
            Filter::ValuePath { path, filter, then } => {
                write!(f, "{path}[{filter}]")?;
                if let Some(SubTest { sub, test }) = then {
                    write!(f, ".{sub} {test}")?;
                }
                Ok(())
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::And(a, b) => {
                write_operand(f, a, 1)?;
                f.write_str(" and ")?;
                write_operand(f, b, 2)
            }
            Filter::Or(a, b) => {
                write_operand(f, a, 0)?;
                f.write_str(" or ")?;
                write_operand(f, b, 1)
            }
        }
    }
}
