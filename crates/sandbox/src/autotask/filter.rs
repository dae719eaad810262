//! The Autotask query language: parsing a `QueryModel` body (`filter`, `MaxRecords`,
//! `IncludeFields`; keys case-insensitive) and evaluating its filter against rows.
//!
//! Reference §2.6: a filter is `{"op","field","value","udf"?}` or a group
//! `{"op":"and"|"or","items":[...]}`; the top-level array is AND-ed. Operators: `eq noteq gt gte
//! lt lte beginsWith endsWith contains exist notExist in notIn`. Field names and operators are
//! matched case-insensitively, as are string values (Autotask sits on a case-insensitive SQL
//! collation: **GUESS**). Values are coerced to the field's type once, at compile time.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::data::{Entity, FieldType, FieldVal, Projection, field_index, format_date};

/// The most rows one page may hold, and the `MaxRecords` default.
pub const MAX_RECORDS: u64 = 500;

/// The cap on OR conditions (items of `or` groups plus `in`/`notIn` list entries) [AT6].
pub const MAX_OR_CONDITIONS: usize = 500;

/// The message of the OR-cap error, word for word from the SOAP documentation [AT6].
pub const OR_LIMIT_MESSAGE: &str =
    "Invalid query syntax. Queries are limited to 500 or fewer 'OR' conditions.";

/// A query the emulator refuses with 400 `{"errors":[message]}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

fn bad(msg: impl Into<String>) -> QueryError {
    QueryError(msg.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    NotEq,
    Gt,
    Gte,
    Lt,
    Lte,
    BeginsWith,
    EndsWith,
    Contains,
    Exist,
    NotExist,
    In,
    NotIn,
}

impl Op {
    pub const ALL: [(&'static str, Op); 13] = [
        ("eq", Op::Eq),
        ("noteq", Op::NotEq),
        ("gt", Op::Gt),
        ("gte", Op::Gte),
        ("lt", Op::Lt),
        ("lte", Op::Lte),
        ("beginsWith", Op::BeginsWith),
        ("endsWith", Op::EndsWith),
        ("contains", Op::Contains),
        ("exist", Op::Exist),
        ("notExist", Op::NotExist),
        ("in", Op::In),
        ("notIn", Op::NotIn),
    ];

    fn parse(s: &str) -> Option<Op> {
        Self::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(_, o)| *o)
    }
}

/// A filter value coerced to the field's type. Strings are kept lowercased.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Int(i64),
    Bool(bool),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    None,
    One(Scalar),
    Many(Vec<Scalar>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldRef {
    Std(usize),
    Udf(String),
}

/// A compiled filter tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Cond {
        field: FieldRef,
        op: Op,
        value: Operand,
    },
}

/// A parsed `QueryModel`.
#[derive(Debug, Clone)]
pub struct Query {
    pub filter: Filter,
    pub max_records: u64,
    pub include: Option<Projection>,
    /// Whether `IncludeFields` (if any) holds `id` (needed past 500 rows [AT6]).
    pub includes_id: bool,
    /// A hash of the filter and `IncludeFields`, tying paging cursors to their query.
    pub fingerprint: u64,
}

/// FNV-1a, enough to tell queries apart in a cursor.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn get_ci<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Parses a `QueryModel` for entity `T`.
pub fn parse_query<T: Entity>(body: &Value) -> Result<Query, QueryError> {
    let Some(obj) = body.as_object() else {
        return Err(bad("The query must be a JSON object."));
    };
    let filter_v = get_ci(obj, "filter").ok_or_else(|| bad("The filter is required."))?;
    let Some(items) = filter_v.as_array() else {
        return Err(bad("The filter must be an array."));
    };
    let mut ors = 0usize;
    let filter = Filter::And(
        items
            .iter()
            .map(|f| compile::<T>(f, &mut ors))
            .collect::<Result<_, _>>()?,
    );
    if ors > MAX_OR_CONDITIONS {
        return Err(bad(OR_LIMIT_MESSAGE));
    }
    let max_records = match get_ci(obj, "MaxRecords") {
        None | Some(Value::Null) => MAX_RECORDS,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_RECORDS).contains(&n) => n,
            _ => return Err(bad("MaxRecords must be between 1 and 500.")),
        },
    };
    let (include, includes_id) = match get_ci(obj, "IncludeFields") {
        None | Some(Value::Null) => (None, true),
        Some(Value::Array(a)) if a.is_empty() => (None, true),
        Some(Value::Array(a)) => {
            let mut p = Projection {
                fields: Vec::new(),
                udfs: false,
            };
            for f in a {
                let Some(name) = f.as_str() else {
                    return Err(bad("IncludeFields must be an array of field names."));
                };
                if name.eq_ignore_ascii_case("userDefinedFields") {
                    p.udfs = true;
                    continue;
                }
                let i = field_index::<T>(name).ok_or_else(|| unknown_field::<T>(name))?;
                if !p.fields.contains(&i) {
                    p.fields.push(i);
                }
            }
            let has_id = p.fields.iter().any(|&i| T::fields()[i].name == "id");
            (Some(p), has_id)
        }
        Some(_) => return Err(bad("IncludeFields must be an array of field names.")),
    };
    let fp_src = format!(
        "{}|{}",
        filter_v,
        get_ci(obj, "IncludeFields").unwrap_or(&Value::Null)
    );
    Ok(Query {
        filter,
        max_records,
        include,
        includes_id,
        fingerprint: fnv1a(fp_src.as_bytes()),
    })
}

fn unknown_field<T: Entity>(name: &str) -> QueryError {
    bad(format!(
        "Unable to find {name} in the {} Entity.",
        T::KIND.singular()
    ))
}

fn compile<T: Entity>(v: &Value, ors: &mut usize) -> Result<Filter, QueryError> {
    let Some(obj) = v.as_object() else {
        return Err(bad("Each filter must be an object."));
    };
    let op_s = get_ci(obj, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("Each filter needs an op."))?;
    if op_s.eq_ignore_ascii_case("and") || op_s.eq_ignore_ascii_case("or") {
        let is_or = op_s.eq_ignore_ascii_case("or");
        let items = get_ci(obj, "items")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("The {op_s} group needs an items array.")))?;
        if is_or {
            *ors += items.len();
        }
        let items = items
            .iter()
            .map(|i| compile::<T>(i, ors))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if is_or {
            Filter::Or(items)
        } else {
            Filter::And(items)
        });
    }
    let op = Op::parse(op_s).ok_or_else(|| bad(format!("Invalid operator: {op_s}.")))?;
    let name = get_ci(obj, "field")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("Each filter needs a field."))?;
    let udf = get_ci(obj, "udf").is_some_and(|u| u.as_bool() == Some(true));
    let (field, ty) = if udf {
        (FieldRef::Udf(name.to_lowercase()), FieldType::String)
    } else {
        let i = field_index::<T>(name).ok_or_else(|| unknown_field::<T>(name))?;
        (FieldRef::Std(i), T::fields()[i].ty)
    };
    let raw = get_ci(obj, "value");
    let value = match op {
        Op::Exist | Op::NotExist => Operand::None,
        Op::In | Op::NotIn => {
            let Some(list) = raw.and_then(Value::as_array) else {
                return Err(bad(format!(
                    "The {op_s} operator requires an array value for {name}."
                )));
            };
            *ors += list.len();
            Operand::Many(
                list.iter()
                    .map(|x| coerce(x, ty, name))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => match raw {
            None => return Err(bad(format!("A value is required for {name}."))),
            Some(Value::Array(_) | Value::Object(_)) => {
                return Err(bad(format!("The value of {name} must be a single value.")));
            }
            Some(x) => Operand::One(coerce(x, ty, name)?),
        },
    };
    Ok(Filter::Cond { field, op, value })
}

fn parse_date(s: &str) -> Option<String> {
    let secs = if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        d.timestamp()
    } else if let Ok(d) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        d.and_utc().timestamp()
    } else if let Ok(d) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        d.and_utc().timestamp()
    } else {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
            .and_utc()
            .timestamp()
    };
    Some(format_date(secs).to_lowercase())
}

/// Coerces a filter value to the field type: numbers from numbers or numeric strings (and
/// `true`/`false` as 1/0, **GUESS**, for int flags like a contact's `isActive`), booleans from
/// `true`/`false`/`1`/`0`, dates from RFC 3339 or `YYYY-MM-DD`.
fn coerce(v: &Value, ty: FieldType, name: &str) -> Result<Scalar, QueryError> {
    let fail = || {
        bad(format!(
            "The value {v} is not valid for {name} ({}).",
            ty.as_str()
        ))
    };
    if v.is_null() {
        return Ok(Scalar::Null);
    }
    Ok(match ty {
        FieldType::Integer | FieldType::Long => match v {
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Scalar::Int(i),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Scalar::Int(f as i64),
                _ => return Err(fail()),
            },
            Value::String(s) => Scalar::Int(s.trim().parse().map_err(|_| fail())?),
            Value::Bool(b) => Scalar::Int(i64::from(*b)),
            _ => return Err(fail()),
        },
        FieldType::Boolean => match v {
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) if n.as_i64() == Some(1) => Scalar::Bool(true),
            Value::Number(n) if n.as_i64() == Some(0) => Scalar::Bool(false),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Scalar::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Scalar::Bool(false),
            _ => return Err(fail()),
        },
        FieldType::String => match v {
            Value::String(s) => Scalar::Str(s.to_lowercase()),
            Value::Number(n) => Scalar::Str(n.to_string()),
            Value::Bool(b) => Scalar::Str(b.to_string()),
            _ => return Err(fail()),
        },
        FieldType::DateTime => match v {
            Value::String(s) => Scalar::Str(parse_date(s.trim()).ok_or_else(fail)?),
            _ => return Err(fail()),
        },
    })
}

fn as_scalar(v: FieldVal<'_>) -> Scalar {
    match v {
        FieldVal::Null => Scalar::Null,
        FieldVal::Int(i) => Scalar::Int(i),
        FieldVal::Bool(b) => Scalar::Bool(b),
        FieldVal::Str(s) => Scalar::Str(s.to_lowercase()),
    }
}

fn cmp(a: &Scalar, b: &Scalar) -> Option<Ordering> {
    match (a, b) {
        (Scalar::Int(x), Scalar::Int(y)) => Some(x.cmp(y)),
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x.cmp(y)),
        (Scalar::Str(x), Scalar::Str(y)) => Some(x.as_str().cmp(y.as_str())),
        _ => None,
    }
}

fn text(s: &Scalar) -> Option<String> {
    match s {
        Scalar::Null => None,
        Scalar::Int(i) => Some(i.to_string()),
        Scalar::Bool(b) => Some(b.to_string()),
        Scalar::Str(s) => Some(s.clone()),
    }
}

/// An empty string counts as absent (`exist` is false for it: **GUESS**, SQL `NULL` or `''`).
fn exists(s: &Scalar) -> bool {
    match s {
        Scalar::Null => false,
        Scalar::Str(s) => !s.is_empty(),
        _ => true,
    }
}

fn eq(a: &Scalar, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::Null, Scalar::Null) => true,
        (Scalar::Null, _) | (_, Scalar::Null) => false,
        _ => cmp(a, b) == Some(Ordering::Equal),
    }
}

impl Filter {
    /// Whether `row` matches.
    pub fn matches<T: Entity>(&self, row: &T) -> bool {
        match self {
            Filter::And(items) => items.iter().all(|f| f.matches(row)),
            Filter::Or(items) => items.iter().any(|f| f.matches(row)),
            Filter::Cond { field, op, value } => {
                let v = match field {
                    FieldRef::Std(i) => as_scalar((T::fields()[*i].get)(row)),
                    FieldRef::Udf(name) => row
                        .udfs()
                        .iter()
                        .find(|u| u.name.to_lowercase() == *name)
                        .and_then(|u| u.value.as_deref())
                        .map_or(Scalar::Null, |s| Scalar::Str(s.to_lowercase())),
                };
                eval(&v, *op, value)
            }
        }
    }

    /// The company ids a contact filter pins down at its top level (`companyID eq N` or
    /// `companyID in [...]`), so the emulator can use its index instead of a scan.
    pub fn pinned_ids(&self, field: usize) -> Option<Vec<i64>> {
        let Filter::And(items) = self else {
            return None;
        };
        items.iter().find_map(|f| match f {
            Filter::Cond {
                field: FieldRef::Std(i),
                op,
                value,
            } if *i == field => match (op, value) {
                (Op::Eq, Operand::One(Scalar::Int(n))) => Some(vec![*n]),
                (Op::In, Operand::Many(list)) => Some(
                    list.iter()
                        .filter_map(|s| match s {
                            Scalar::Int(n) => Some(*n),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => None,
            },
            _ => None,
        })
    }
}

fn eval(v: &Scalar, op: Op, operand: &Operand) -> bool {
    match (op, operand) {
        (Op::Exist, _) => exists(v),
        (Op::NotExist, _) => !exists(v),
        (Op::In, Operand::Many(list)) => list.iter().any(|x| eq(v, x)),
        // **GUESS**: a null field is "not in" any list and "not equal" to any value.
        (Op::NotIn, Operand::Many(list)) => !list.iter().any(|x| eq(v, x)),
        (Op::Eq, Operand::One(x)) => eq(v, x),
        (Op::NotEq, Operand::One(x)) => !eq(v, x),
        (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Operand::One(x)) => match cmp(v, x) {
            None => false,
            Some(o) => match op {
                Op::Gt => o == Ordering::Greater,
                Op::Gte => o != Ordering::Less,
                Op::Lt => o == Ordering::Less,
                _ => o != Ordering::Greater,
            },
        },
        (Op::BeginsWith | Op::EndsWith | Op::Contains, Operand::One(x)) => {
            match (text(v), text(x)) {
                (Some(h), Some(n)) => match op {
                    Op::BeginsWith => h.starts_with(&n),
                    Op::EndsWith => h.ends_with(&n),
                    _ => h.contains(&n),
                },
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::{Company, Contact, Db, SeedSpec};
    use super::*;
    use serde_json::json;

    fn db() -> Db {
        Db::seed(SeedSpec {
            companies: 300,
            contacts: 900,
            seed: 5,
        })
    }

    fn ids<T: Entity + Clone>(rows: impl Iterator<Item = T>, q: &Value) -> Vec<i64> {
        let q = parse_query::<T>(q).expect("valid query");
        rows.filter(|r| q.filter.matches(r))
            .map(|r| r.id())
            .collect()
    }

    #[test]
    fn operators_on_companies() {
        let db = db();
        let all = || db.companies.values().cloned();
        let q = |f: Value| ids::<Company>(all(), &json!({ "filter": [f] }));
        let customers = q(json!({"op":"eq","field":"companyType","value":1}));
        assert!(!customers.is_empty());
        assert!(
            customers
                .iter()
                .all(|id| db.companies[id].company_type == 1)
        );
        // Field names and operators are case-insensitive; numeric strings coerce.
        assert_eq!(
            customers,
            q(json!({"op":"EQ","field":"CompanyType","value":"1"}))
        );
        let inactive = q(json!({"op":"eq","field":"isActive","value":false}));
        assert!(inactive.iter().all(|id| !db.companies[id].is_active));
        assert_eq!(
            q(json!({"op":"noteq","field":"isActive","value":true})),
            inactive
        );
        let gt = q(json!({"op":"gt","field":"id","value":200}));
        assert!(gt.iter().all(|id| *id > 200));
        assert_eq!(
            q(json!({"op":"gte","field":"id","value":0})).len(),
            db.companies.len()
        );
        let bw = q(json!({"op":"beginsWith","field":"companyName","value":"blue"}));
        assert!(
            bw.iter()
                .all(|id| db.companies[id].name.starts_with("Blue"))
        );
        let inlist = q(json!({"op":"in","field":"companyType","value":[7,8]}));
        assert!(
            inlist
                .iter()
                .all(|id| matches!(db.companies[id].company_type, 7 | 8))
        );
        let notin = q(json!({"op":"notIn","field":"companyType","value":[7,8]}));
        assert_eq!(inlist.len() + notin.len(), db.companies.len());
        let web = q(json!({"op":"exist","field":"webAddress"}));
        let noweb = q(json!({"op":"notExist","field":"webAddress"}));
        assert_eq!(web.len() + noweb.len(), db.companies.len());
        assert!(!noweb.is_empty());
        let udf = q(json!({"op":"eq","field":"Customer Tier","udf":true,"value":"gold"}));
        assert!(!udf.is_empty());
        let date = q(json!({"op":"lt","field":"createDate","value":"2015-01-01"}));
        assert!(!date.is_empty());
    }

    #[test]
    fn groups_and_contacts() {
        let db = db();
        let f = json!({"filter":[{"op":"or","items":[
            {"op":"eq","field":"companyType","value":7},
            {"op":"and","items":[{"op":"eq","field":"companyType","value":1},{"op":"eq","field":"isActive","value":false}]}
        ]}]});
        let got = ids::<Company>(db.companies.values().cloned(), &f);
        let want: Vec<i64> = db
            .companies
            .values()
            .filter(|c| c.company_type == 7 || (c.company_type == 1 && !c.is_active))
            .map(|c| c.id)
            .collect();
        assert_eq!(got, want);
        let active = ids::<Contact>(
            db.contacts.values().cloned(),
            &json!({"filter":[{"op":"eq","field":"isActive","value":1}]}),
        );
        let active_bool = ids::<Contact>(
            db.contacts.values().cloned(),
            &json!({"filter":[{"op":"eq","field":"isActive","value":true}]}),
        );
        assert_eq!(active, active_bool);
        assert!(active.len() < db.contacts.len());
    }

    #[test]
    fn refusals() {
        let e = |q: Value| parse_query::<Company>(&q).err().map(|e| e.0);
        assert!(e(json!({})).is_some());
        assert!(e(json!({"filter":[],"MaxRecords":0})).is_some());
        assert!(e(json!({"filter":[],"MaxRecords":501})).is_some());
        assert!(e(json!({"filter":[],"maxrecords":500})).is_none());
        assert_eq!(
            e(json!({"filter":[{"op":"eq","field":"nope","value":1}]})),
            Some("Unable to find nope in the Company Entity.".into())
        );
        assert!(e(json!({"filter":[{"op":"like","field":"id","value":1}]})).is_some());
        assert!(e(json!({"filter":[{"op":"in","field":"id","value":1}]})).is_some());
        assert!(e(json!({"filter":[{"op":"eq","field":"id"}]})).is_some());
        let many: Vec<i64> = (0..501).collect();
        assert_eq!(
            e(json!({"filter":[{"op":"in","field":"id","value":many}]})),
            Some(OR_LIMIT_MESSAGE.into())
        );
        assert!(e(json!({"filter":[],"IncludeFields":["bogus"]})).is_some());
    }
}
