//! Filter evaluation over JSON resources.
//!
//! Semantics (RFC 7644 §3.4.2.2, with the gaps filled the way SQL-backed providers do):
//! - a multi-valued attribute matches if **any** element matches;
//! - comparing a complex value (`emails co "@x"`) compares its `value` sub-attribute;
//! - a missing or `null` attribute matches no comparison (`ne` included), except `eq null`, which
//!   matches exactly when no non-null value exists, and `ne null`, its negation;
//! - strings compare case-insensitively unless the attribute is `caseExact`; ordering uses the
//!   same folding; two RFC 3339 timestamps compare as instants;
//! - numbers compare numerically; booleans only with `eq`/`ne`; mismatched types are unequal
//!   (so `ne` matches) and unordered (so `gt`… don't).

use std::cmp::Ordering;

use serde_json::Value;

use super::{CompValue, CompareOp, Filter, SubTest, Test};
use crate::scim::get_ci;
use crate::scim::path::{AttrPath, flatten};

/// The schema question the evaluator asks: is this attribute's string comparison case-exact?
/// For a sub-attribute inside a value filter (`emails[type eq "work"]`) the path asked is the
/// full one (`emails.type`).
pub trait CaseExact {
    fn case_exact(&self, path: &AttrPath) -> bool;
}

impl<F: Fn(&AttrPath) -> bool> CaseExact for F {
    fn case_exact(&self, path: &AttrPath) -> bool {
        self(path)
    }
}

pub(super) fn matches(filter: &Filter, resource: &Value, ce: &dyn CaseExact) -> bool {
    match filter {
        Filter::Attr { path, test } => run_test(&path.select(resource), test, ce.case_exact(path)),
        Filter::ValuePath { path, filter, then } => path
            .select(resource)
            .into_iter()
            .any(|element| element_matches(filter, then.as_ref(), element, path, ce)),
        Filter::Not(f) => !matches(f, resource, ce),
        Filter::And(a, b) => matches(a, resource, ce) && matches(b, resource, ce),
        Filter::Or(a, b) => matches(a, resource, ce) || matches(b, resource, ce),
    }
}

/// Whether one element of the multi-valued attribute `parent` matches a value filter (used by
/// PATCH to pick the elements a `members[value eq "…"]` path targets).
pub(crate) fn matches_element(
    filter: &Filter,
    element: &Value,
    parent: &AttrPath,
    ce: &dyn CaseExact,
) -> bool {
    element_matches(filter, None, element, parent, ce)
}

fn element_matches(
    filter: &Filter,
    then: Option<&SubTest>,
    element: &Value,
    parent: &AttrPath,
    ce: &dyn CaseExact,
) -> bool {
    if !in_element(filter, element, parent, ce) {
        return false;
    }
    match then {
        None => true,
        Some(SubTest { sub, test }) => {
            let path = sub_path(parent, sub);
            run_test(&sub_values(element, sub), test, ce.case_exact(&path))
        }
    }
}

/// Evaluates a bracketed filter against one element: its names are the element's sub-attributes.
fn in_element(filter: &Filter, element: &Value, parent: &AttrPath, ce: &dyn CaseExact) -> bool {
    match filter {
        Filter::Attr { path, test } => {
            let full = sub_path(parent, &path.name);
            run_test(&sub_values(element, &path.name), test, ce.case_exact(&full))
        }
        // The parser refuses nested value filters; nothing can match one.
        Filter::ValuePath { .. } => false,
        Filter::Not(f) => !in_element(f, element, parent, ce),
        Filter::And(a, b) => {
            in_element(a, element, parent, ce) && in_element(b, element, parent, ce)
        }
        Filter::Or(a, b) => {
            in_element(a, element, parent, ce) || in_element(b, element, parent, ce)
        }
    }
}

fn sub_path(parent: &AttrPath, sub: &str) -> AttrPath {
    AttrPath {
        urn: parent.urn.clone(),
        name: parent.name.clone(),
        sub: Some(sub.to_owned()),
    }
}

fn sub_values<'a>(element: &'a Value, sub: &str) -> Vec<&'a Value> {
    match element {
        Value::Object(o) => get_ci(o, sub).map(|(_, v)| flatten(v)).unwrap_or_default(),
        // A multi-valued attribute of simple values: `value` is the element itself (RFC 7643
        // §2.4 calls it the "value" sub-attribute).
        other if sub.eq_ignore_ascii_case("value") => vec![other],
        _ => Vec::new(),
    }
}

fn run_test(values: &[&Value], test: &Test, case_exact: bool) -> bool {
    // A complex value compared to a literal stands for its `value` sub-attribute.
    let scalars = values.iter().filter_map(|v| match v {
        Value::Object(o) if !matches!(test, Test::Present) => get_ci(o, "value").map(|(_, v)| v),
        other => Some(*other),
    });
    match test {
        Test::Present => values.iter().any(|v| is_present(v)),
        Test::Compare(CompareOp::Eq, CompValue::Null) => scalars.clone().all(Value::is_null),
        Test::Compare(CompareOp::Ne, CompValue::Null) => scalars.clone().any(|v| !v.is_null()),
        Test::Compare(op, lit) => scalars
            .filter(|v| !v.is_null())
            .any(|v| compare(v, *op, lit, case_exact)),
    }
}

/// RFC 7644: "if the attribute has a non-empty value, or if it contains a non-empty node for
/// complex attributes, there is a match".
fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present),
        Value::Object(o) => o.values().any(is_present),
        _ => true,
    }
}

fn compare(value: &Value, op: CompareOp, lit: &CompValue, case_exact: bool) -> bool {
    match (value, lit) {
        (Value::String(a), CompValue::String(b)) => compare_strings(a, op, b, case_exact),
        (Value::Number(a), CompValue::Number(b)) => match op {
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
            _ => number_cmp(a, b).is_some_and(|ord| ordering_matches(op, ord)),
        },
        (Value::Bool(a), CompValue::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        // Different types are never equal and never ordered.
        _ => op == CompareOp::Ne,
    }
}

fn compare_strings(a: &str, op: CompareOp, b: &str, case_exact: bool) -> bool {
    if !matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
        && let (Ok(x), Ok(y)) = (
            chrono::DateTime::parse_from_rfc3339(a),
            chrono::DateTime::parse_from_rfc3339(b),
        )
    {
        return ordering_matches(op, x.cmp(&y));
    }
    let (a, b) = if case_exact {
        (a.to_owned(), b.to_owned())
    } else {
        (a.to_lowercase(), b.to_lowercase())
    };
    match op {
        CompareOp::Co => a.contains(&b),
        CompareOp::Sw => a.starts_with(&b),
        CompareOp::Ew => a.ends_with(&b),
        _ => ordering_matches(op, a.cmp(&b)),
    }
}

fn ordering_matches(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// Exact for integers (i128 covers u64 and i64), f64 otherwise.
fn number_cmp(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    let int = |n: &serde_json::Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}
