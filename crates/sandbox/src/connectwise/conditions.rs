//! The ConnectWise `conditions` / `childConditions` language: a parser into [`Expr`] and an
//! evaluator over any [`Record`].
//!
//! Grammar (Developer Guide, "Conditions"; spec §1.6):
//!
//! ```text
//! expr    := and ( OR and )*
//! and     := primary ( AND primary )*
//! primary := '(' expr ')' | field op value
//! field   := name ( '/' name )*            e.g. status/name, company/id, types/id
//! op      := = | != | < | <= | > | >= | contains | like | in | not contains | not like | not in
//! value   := "string" | number | true | false | null | [datetime] | '(' value ( ',' value )* ')'
//! ```
//!
//! Keywords are case-insensitive. Strings compare case-insensitively (SQL Server's default
//! collation); `=` with a `*` in the string is a wildcard match, `like` uses `%`. Field names are
//! resolved when parsing, through a [`Schema`], so an unknown name fails even on an empty table,
//! with the documented message `"{name} is not a recognized name."`.

use std::fmt;

/// The type of a field, which decides which literals and operators it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Int,
    Str,
    Bool,
    /// Seconds since the Unix epoch.
    Date,
}

/// Maps a (lower-cased) field path to an id the record understands.
pub trait Schema {
    /// `Some((field id, type))` when `path` (lower case, `/`-separated) is a known field.
    fn field(&self, path: &str) -> Option<(u16, FieldType)>;
}

/// A value of a record's field, borrowed from the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    Int(i64),
    Str(&'a str),
    Bool(bool),
    Date(i64),
    Null,
}

/// A record conditions are evaluated on. Array fields (`types/id`,
/// `communicationItems/value`) call `f` once per element; scalar fields once (with
/// [`Scalar::Null`] when unset).
pub trait Record {
    /// Calls `f` for each value of field `id` until it returns true; returns whether it did.
    fn any(&self, id: u16, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool;
}

/// A literal in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Date(i64),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    NotContains,
    Like,
    NotLike,
    In,
    NotIn,
}

impl Op {
    fn negated(self) -> bool {
        matches!(self, Op::Ne | Op::NotContains | Op::NotLike | Op::NotIn)
    }
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp {
        field: u16,
        ty: FieldType,
        op: Op,
        values: Vec<Literal>,
    },
}

/// Why a condition string was refused. `message` is what goes into the ConnectWise error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    pub message: String,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConditionError {}

fn err<T>(message: impl Into<String>) -> Result<T, ConditionError> {
    Err(ConditionError {
        message: message.into(),
    })
}

/// Parentheses nest at most this deep (a hostile query cannot overflow the stack).
const MAX_DEPTH: usize = 64;
/// Longest condition string accepted (the guide says URLs over ~10,000 chars need `/search`).
const MAX_LEN: usize = 16_384;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Op(&'static str),
    Word(String),
    Str(String),
    Num(f64),
    Date(i64),
}

fn tokenize(s: &str) -> Result<Vec<(usize, Tok)>, ConditionError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push((start, Tok::LParen));
                i += 1;
            }
            b')' => {
                out.push((start, Tok::RParen));
                i += 1;
            }
            b',' => {
                out.push((start, Tok::Comma));
                i += 1;
            }
            b'=' => {
                out.push((start, Tok::Op("=")));
                i += 1;
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                out.push((start, Tok::Op("!=")));
                i += 2;
            }
            b'<' | b'>' => {
                let eq = b.get(i + 1) == Some(&b'=');
                let op = match (c, eq) {
                    (b'<', true) => "<=",
                    (b'<', false) => "<",
                    (_, true) => ">=",
                    _ => ">",
                };
                out.push((start, Tok::Op(op)));
                i += if eq { 2 } else { 1 };
            }
            b'"' => {
                i += 1;
                let mut v = String::new();
                loop {
                    let Some(ch) = s[i..].chars().next() else {
                        return err(format!("Unterminated string starting at position {start}."));
                    };
                    i += ch.len_utf8();
                    match ch {
                        '"' => break,
                        '\\' => {
                            let Some(next) = s[i..].chars().next() else {
                                return err(format!(
                                    "Unterminated string starting at position {start}."
                                ));
                            };
                            i += next.len_utf8();
                            v.push(next);
                        }
                        other => v.push(other),
                    }
                }
                out.push((start, Tok::Str(v)));
            }
            b'[' => {
                let Some(end) = s[i..].find(']') else {
                    return err(format!("Unterminated date starting at position {start}."));
                };
                let text = &s[i + 1..i + end];
                let Some(t) = parse_date(text) else {
                    return err(format!("[{text}] is not a valid date."));
                };
                out.push((start, Tok::Date(t)));
                i += end + 1;
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                let text = &s[start..i];
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => out.push((start, Tok::Num(n))),
                    _ => return err(format!("{text} is not a valid number.")),
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'/')) {
                    i += 1;
                }
                out.push((start, Tok::Word(s[start..i].to_string())));
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return err(format!("Unexpected character '{ch}' at position {start}."));
            }
        }
    }
    Ok(out)
}

/// `2016-08-20T18:04:26Z`, with or without `Z`/offset, or a bare date.
fn parse_date(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp());
    }
    if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S") {
        return Some(d.and_utc().timestamp());
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
}

struct Parser<'s> {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    schema: &'s dyn Schema,
    allow_in: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn where_(&self) -> String {
        match self.toks.get(self.pos) {
            Some((p, _)) => format!("at position {p}"),
            None => "at the end of the condition".to_string(),
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, ConditionError> {
        if depth > MAX_DEPTH {
            return err("The condition is nested too deeply.");
        }
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ConditionError> {
        let mut left = self.primary(depth)?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.primary(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ConditionError> {
        match self.next() {
            Some(Tok::LParen) => {
                let e = self.expr(depth + 1)?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => {
                        self.pos -= 1;
                        err(format!("Expected ')' {}.", self.where_()))
                    }
                }
            }
            Some(Tok::Word(name)) => self.comparison(name),
            _ => {
                self.pos -= 1;
                err(format!("Expected a field name {}.", self.where_()))
            }
        }
    }

    fn comparison(&mut self, name: String) -> Result<Expr, ConditionError> {
        let lower = name.to_ascii_lowercase();
        let Some((field, ty)) = self.schema.field(&lower) else {
            return err(format!("{name} is not a recognized name."));
        };
        let op = match self.next() {
            Some(Tok::Op(o)) => match o {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            },
            Some(Tok::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "contains" => Op::Contains,
                "like" => Op::Like,
                "in" => Op::In,
                "not" => match self.next() {
                    Some(Tok::Word(w2)) => match w2.to_ascii_lowercase().as_str() {
                        "contains" => Op::NotContains,
                        "like" => Op::NotLike,
                        "in" => Op::NotIn,
                        _ => return err(format!("Unexpected '{w2}' after 'not'.")),
                    },
                    _ => {
                        self.pos -= 1;
                        return err(format!(
                            "Expected an operator after 'not' {}.",
                            self.where_()
                        ));
                    }
                },
                _ => return err(format!("'{w}' is not a valid operator.")),
            },
            _ => {
                self.pos -= 1;
                return err(format!(
                    "Expected an operator after {name} {}.",
                    self.where_()
                ));
            }
        };
        if matches!(op, Op::In | Op::NotIn) && !self.allow_in {
            return err("The operator 'in' is not supported in childConditions.");
        }
        let values = if matches!(op, Op::In | Op::NotIn) {
            if self.next() != Some(Tok::LParen) {
                self.pos -= 1;
                return err(format!("Expected '(' after 'in' {}.", self.where_()));
            }
            let mut vals = vec![self.literal(&name)?];
            loop {
                match self.next() {
                    Some(Tok::Comma) => vals.push(self.literal(&name)?),
                    Some(Tok::RParen) => break,
                    _ => {
                        self.pos -= 1;
                        return err(format!("Expected ',' or ')' {}.", self.where_()));
                    }
                }
            }
            vals
        } else {
            vec![self.literal(&name)?]
        };
        for v in &values {
            check_type(&name, ty, op, v)?;
        }
        Ok(Expr::Cmp {
            field,
            ty,
            op,
            values,
        })
    }

    fn literal(&mut self, name: &str) -> Result<Literal, ConditionError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Literal::Str(s)),
            Some(Tok::Num(n)) => Ok(Literal::Num(n)),
            Some(Tok::Date(d)) => Ok(Literal::Date(d)),
            Some(Tok::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => Ok(Literal::Bool(true)),
                "false" => Ok(Literal::Bool(false)),
                "null" => Ok(Literal::Null),
                _ => err(format!(
                    "'{w}' is not a valid value for {name}: strings must be in double quotes."
                )),
            },
            _ => {
                self.pos -= 1;
                err(format!("Expected a value for {name} {}.", self.where_()))
            }
        }
    }
}

fn check_type(name: &str, ty: FieldType, op: Op, v: &Literal) -> Result<(), ConditionError> {
    let text_op = matches!(op, Op::Contains | Op::NotContains | Op::Like | Op::NotLike);
    if text_op && ty != FieldType::Str {
        return err(format!("The operator is not valid for {name}."));
    }
    let ok = match (ty, v) {
        (_, Literal::Null) => matches!(op, Op::Eq | Op::Ne),
        (FieldType::Int, Literal::Num(n)) => n.fract() == 0.0,
        (FieldType::Str, Literal::Str(_) | Literal::Num(_)) => true,
        (FieldType::Bool, Literal::Bool(_)) => true,
        (FieldType::Date, Literal::Date(_)) => true,
        (FieldType::Date, Literal::Str(s)) => parse_date(s).is_some(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        err(format!("{} is not a valid value for {name}.", show(v)))
    }
}

fn show(v: &Literal) -> String {
    match v {
        Literal::Str(s) => format!("\"{s}\""),
        Literal::Num(n) => n.to_string(),
        Literal::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Literal::Date(d) => format!("[{d}]"),
        Literal::Null => "null".to_string(),
    }
}

/// Parses `conditions` (`allow_in`) or `childConditions` (no `in`, per the guide).
pub fn parse(input: &str, schema: &dyn Schema, allow_in: bool) -> Result<Expr, ConditionError> {
    if input.len() > MAX_LEN {
        return err("The condition is too long; use the /search endpoint.");
    }
    let toks = tokenize(input)?;
    if toks.is_empty() {
        return err("The condition is empty.");
    }
    let mut p = Parser {
        toks,
        pos: 0,
        schema,
        allow_in,
    };
    let e = p.expr(0)?;
    if p.pos < p.toks.len() {
        return err(format!("Unexpected token {}.", p.where_()));
    }
    Ok(e)
}

/// Whether `record` satisfies `expr`. Over an array field a positive comparison holds when any
/// element matches, a negated one (`!=`, `not like`, …) when no element matches the positive form.
pub fn eval(expr: &Expr, record: &dyn Record) -> bool {
    match expr {
        Expr::And(a, b) => eval(a, record) && eval(b, record),
        Expr::Or(a, b) => eval(a, record) || eval(b, record),
        Expr::Cmp {
            field, op, values, ..
        } => {
            let found = record.any(*field, &mut |s| values.iter().any(|v| matches(*op, s, v)));
            found != op.negated()
        }
    }
}

/// The positive form of `op` (`!=` as `=`, `not in` as `in`, …) applied to one value.
fn matches(op: Op, s: Scalar<'_>, v: &Literal) -> bool {
    use std::cmp::Ordering;
    if let Literal::Null = v {
        return matches!(s, Scalar::Null);
    }
    let ord: Option<Ordering> = match (s, v) {
        (Scalar::Int(a), Literal::Num(b)) => (a as f64).partial_cmp(b),
        (Scalar::Date(a), Literal::Date(b)) => Some(a.cmp(b)),
        (Scalar::Date(a), Literal::Str(b)) => parse_date(b).map(|b| a.cmp(&b)),
        (Scalar::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Scalar::Str(a), Literal::Str(b)) => {
            return str_matches(op, a, b);
        }
        (Scalar::Str(a), Literal::Num(b)) => {
            return str_matches(op, a, &b.to_string());
        }
        _ => None,
    };
    let Some(o) = ord else { return false };
    match op {
        Op::Eq | Op::Ne | Op::In | Op::NotIn => o == Ordering::Equal,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
        _ => false,
    }
}

fn str_matches(op: Op, a: &str, b: &str) -> bool {
    use std::cmp::Ordering;
    let cmp = || fold_cmp(a, b);
    match op {
        Op::Eq | Op::Ne | Op::In | Op::NotIn => {
            if b.contains('*') {
                wildcard(a, b, '*')
            } else {
                a.eq_ignore_ascii_case(b)
            }
        }
        Op::Lt => cmp() == Ordering::Less,
        Op::Le => cmp() != Ordering::Greater,
        Op::Gt => cmp() == Ordering::Greater,
        Op::Ge => cmp() != Ordering::Less,
        Op::Contains | Op::NotContains => a.to_ascii_lowercase().contains(&b.to_ascii_lowercase()),
        Op::Like | Op::NotLike => wildcard(a, b, '%'),
    }
}

fn fold_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// Case-insensitive match of `text` against `pattern`, where `any` matches any run of characters.
pub fn wildcard(text: &str, pattern: &str, any: char) -> bool {
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    // Iterative glob matching with single-star backtracking: linear-ish, no recursion.
    let (mut ti, mut pi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] != any && p[pi] == t[ti] {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == any {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == any {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct S;
    impl Schema for S {
        fn field(&self, path: &str) -> Option<(u16, FieldType)> {
            match path {
                "id" => Some((0, FieldType::Int)),
                "name" => Some((1, FieldType::Str)),
                "deletedflag" => Some((2, FieldType::Bool)),
                "types/id" => Some((3, FieldType::Int)),
                "lastupdated" => Some((4, FieldType::Date)),
                _ => None,
            }
        }
    }

    struct R {
        id: i64,
        name: &'static str,
        deleted: bool,
        types: Vec<i64>,
        updated: i64,
    }

    impl Record for R {
        fn any(&self, id: u16, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
            match id {
                0 => f(Scalar::Int(self.id)),
                1 => f(Scalar::Str(self.name)),
                2 => f(Scalar::Bool(self.deleted)),
                3 => self.types.iter().any(|t| f(Scalar::Int(*t))),
                _ => f(Scalar::Date(self.updated)),
            }
        }
    }

    fn r() -> R {
        R {
            id: 7,
            name: "Acme Dental",
            deleted: false,
            types: vec![1, 4],
            updated: 1_600_000_000,
        }
    }

    fn check(c: &str) -> bool {
        eval(&parse(c, &S, true).unwrap(), &r())
    }

    #[test]
    fn operators() {
        assert!(check("id = 7"));
        assert!(check("id != 8"));
        assert!(check("id < 8 AND id <= 7 and id > 6 and id >= 7"));
        assert!(check("name = \"acme dental\""));
        assert!(check("name = \"Acme*\""));
        assert!(check("name like \"%dent%\""));
        assert!(check("name not like \"B%\""));
        assert!(check("name contains \"ME D\""));
        assert!(check("name not contains \"x\""));
        assert!(check("id in (1, 7, 9)"));
        assert!(check("id not in (1,2)"));
        assert!(check("deletedFlag = false"));
        assert!(check("deletedFlag=False"));
        assert!(check("types/id = 4"));
        assert!(!check("types/id != 4"));
        assert!(check("lastUpdated > [2016-08-20T18:04:26Z]"));
        assert!(check("(id = 1 or id = 7) and (name like \"A%\")"));
        assert!(!check("id = 1 or id = 2 and id = 7"));
    }

    #[test]
    fn errors() {
        let e = parse("typeids = 1", &S, true).unwrap_err();
        assert_eq!(e.message, "typeids is not a recognized name.");
        for bad in [
            "id =",
            "id = 1 and",
            "(id = 1",
            "id = \"x",
            "name = bare",
            "id in 1",
            "id ~ 1",
            "",
            "deletedFlag like \"x\"",
            "id = \"abc\"",
            "id = 1)",
        ] {
            assert!(parse(bad, &S, true).is_err(), "{bad}");
        }
        assert!(parse("types/id in (1,2)", &S, false).is_err());
        let deep = format!("{}id = 1{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep, &S, true).is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("abc", "a%c", '%'));
        assert!(wildcard("abc", "%", '%'));
        assert!(!wildcard("abc", "a%d", '%'));
        assert!(wildcard("john@Outlook.com", "JOHN@outlook.com", '%'));
        assert!(wildcard("aXbXc", "a%b%c", '%'));
    }
}
