//! The recursive-descent filter parser. Positions are byte offsets internally and characters in
//! errors. Nesting is capped so hostile input (`((((…`) cannot overflow the stack.

use super::{CompValue, CompareOp, Filter, FilterError, SubTest, Test};
use crate::scim::path::{AttrPath, PatchPath, char_pos, is_path_char, scan_attr_path};

/// Deepest nesting of parentheses, `not` and brackets accepted.
const MAX_DEPTH: usize = 64;

pub(crate) fn parse_filter(src: &str) -> Result<Filter, FilterError> {
    let mut p = Parser {
        src,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Err(p.error_at(0, "empty filter"));
    }
    let f = p.parse_or(false)?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error(format!("unexpected {}", p.describe_here())));
    }
    Ok(f)
}

/// `PATH = attrPath / valuePath [subAttr]` (RFC 7644 §3.5.2).
pub(crate) fn parse_patch_path(src: &str) -> Result<PatchPath, FilterError> {
    let mut p = Parser {
        src,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    let mut attr = p.attr_path()?;
    let mut filter = None;
    if p.peek() == Some('[') {
        if attr.sub.is_some() {
            return Err(p.error("a value filter must follow the attribute, not its sub-attribute"));
        }
        p.pos += 1;
        filter = Some(p.parse_or(true)?);
        p.skip_ws();
        p.expect(']')?;
        if p.peek() == Some('.') {
            p.pos += 1;
            attr.sub = Some(p.sub_attr_name()?);
        }
    }
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error(format!("unexpected {}", p.describe_here())));
    }
    Ok(PatchPath { attr, filter })
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// Skips whitespace; returns whether any was skipped.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
        self.pos > start
    }

    fn error_at(&self, byte: usize, msg: impl Into<String>) -> FilterError {
        FilterError {
            position: char_pos(self.src, byte),
            message: msg.into(),
        }
    }

    fn error(&self, msg: impl Into<String>) -> FilterError {
        self.error_at(self.pos, msg)
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "end of filter".to_owned(),
            Some(c) => format!("{c:?}"),
        }
    }

    fn expect(&mut self, c: char) -> Result<(), FilterError> {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(format!("expected {c:?}, found {}", self.describe_here())))
        }
    }

    /// Consumes keyword `kw` (any case) if it is next and is a whole word.
    fn keyword(&mut self, kw: &str) -> bool {
        let rest = self.rest();
        let Some(head) = rest.get(..kw.len()) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(kw) {
            return false;
        }
        if rest[kw.len()..].chars().next().is_some_and(is_path_char) {
            return false;
        }
        self.pos += kw.len();
        true
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("filter nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn parse_or(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        let mut left = self.parse_and(in_brackets)?;
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword("or") {
                let right = self.parse_and(in_brackets)?;
                left = Filter::Or(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    fn parse_and(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        let mut left = self.parse_unary(in_brackets)?;
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword("and") {
                let right = self.parse_unary(in_brackets)?;
                left = Filter::And(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    fn parse_unary(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        self.skip_ws();
        if self.at_end() {
            return Err(self.error("expected an expression, found end of filter"));
        }
        // `not` is only the operator when a `(` follows; otherwise it is an attribute name.
        let save = self.pos;
        if self.keyword("not") {
            self.skip_ws();
            if self.peek() == Some('(') {
                return self.group(in_brackets).map(|f| Filter::Not(Box::new(f)));
            }
            self.pos = save;
        }
        if self.peek() == Some('(') {
            return self.group(in_brackets);
        }
        self.attr_exp(in_brackets)
    }

    /// `( filter )`.
    fn group(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        self.enter()?;
        self.expect('(')?;
        let inner = self.parse_or(in_brackets)?;
        self.skip_ws();
        self.expect(')')?;
        self.depth -= 1;
        Ok(inner)
    }

    fn attr_path(&mut self) -> Result<AttrPath, FilterError> {
        match scan_attr_path(self.src, self.pos) {
            Ok((path, end)) => {
                self.pos = end;
                Ok(path)
            }
            Err((at, msg)) => Err(self.error_at(at, msg)),
        }
    }

    fn sub_attr_name(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        let path = self.attr_path()?;
        if path.urn.is_some() || path.sub.is_some() {
            return Err(self.error_at(start, "expected a sub-attribute name"));
        }
        Ok(path.name)
    }

    fn attr_exp(&mut self, in_brackets: bool) -> Result<Filter, FilterError> {
        let start = self.pos;
        let path = self.attr_path()?;
        if in_brackets && (path.urn.is_some() || path.sub.is_some()) {
            return Err(self.error_at(
                start,
                "inside a value filter, name a sub-attribute of the bracketed attribute",
            ));
        }
        if self.peek() == Some('[') {
            if in_brackets {
                return Err(self.error("value filters cannot be nested"));
            }
            if path.sub.is_some() {
                return Err(
                    self.error("a value filter must follow the attribute, not its sub-attribute")
                );
            }
            self.enter()?;
            self.pos += 1;
            let inner = self.parse_or(true)?;
            self.skip_ws();
            self.expect(']')?;
            self.depth -= 1;
            let then = if self.peek() == Some('.') {
                self.pos += 1;
                let sub = self.sub_attr_name()?;
                let test = self.test()?;
                Some(SubTest { sub, test })
            } else {
                None
            };
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(inner),
                then,
            });
        }
        let test = self.test()?;
        Ok(Filter::Attr { path, test })
    }

    /// ` pr` or ` op value`, after an attribute path.
    fn test(&mut self) -> Result<Test, FilterError> {
        if !self.skip_ws() {
            return Err(self.error(format!(
                "expected a space and an operator after the attribute, found {}",
                self.describe_here()
            )));
        }
        let start = self.pos;
        let len = self
            .rest()
            .char_indices()
            .find(|&(_, c)| !c.is_ascii_alphabetic())
            .map_or(self.rest().len(), |(i, _)| i);
        let word = &self.src[start..start + len];
        if word.eq_ignore_ascii_case("pr") {
            self.pos += len;
            return Ok(Test::Present);
        }
        let Some(op) = CompareOp::from_str_ci(word) else {
            return Err(self.error_at(
                start,
                if word.is_empty() {
                    format!("expected an operator, found {}", self.describe_here())
                } else {
                    format!("unknown operator {word:?} (expected eq ne co sw ew gt ge lt le pr)")
                },
            ));
        };
        self.pos += len;
        self.skip_ws();
        let value_at = self.pos;
        let value = self.comp_value(op)?;
        if op.needs_string_or_number() && matches!(value, CompValue::Null | CompValue::Bool(_)) {
            return Err(self.error_at(
                value_at,
                format!("operator {op} needs a string or number, not {value}"),
            ));
        }
        Ok(Test::Compare(op, value))
    }

    fn comp_value(&mut self, op: CompareOp) -> Result<CompValue, FilterError> {
        let start = self.pos;
        match self.peek() {
            None => Err(self.error("expected a value, found end of filter")),
            Some('"') => self.string().map(CompValue::String),
            Some(_) => {
                let len = self
                    .rest()
                    .char_indices()
                    .find(|&(_, c)| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"'))
                    .map_or(self.rest().len(), |(i, _)| i);
                if len == 0 {
                    return Err(
                        self.error(format!("expected a value, found {}", self.describe_here()))
                    );
                }
                let token = &self.src[start..start + len];
                self.pos += len;
                let value = if token.eq_ignore_ascii_case("true") {
                    CompValue::Bool(true)
                } else if token.eq_ignore_ascii_case("false") {
                    CompValue::Bool(false)
                } else if token.eq_ignore_ascii_case("null") {
                    CompValue::Null
                } else if let Some(n) = json_number(token) {
                    CompValue::Number(n)
                } else if op == CompareOp::Eq {
                    // Entra's documented sample sends `externalId eq jyoung`, unquoted.
                    CompValue::String(token.to_owned())
                } else {
                    return Err(self.error_at(
                        start,
                        format!(
                            "expected a quoted string, number, true, false or null, found {token:?}"
                        ),
                    ));
                };
                Ok(value)
            }
        }
    }

    /// A JSON string literal, escapes included.
    fn string(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        let mut chars = self.rest().char_indices().skip(1);
        let end = loop {
            match chars.next() {
                None => return Err(self.error_at(start, "unterminated string")),
                Some((_, '\\')) => {
                    chars.next();
                }
                Some((i, '"')) => break start + i + 1,
                Some(_) => {}
            }
        };
        let literal = &self.src[start..end];
        let s = serde_json::from_str::<String>(literal)
            .map_err(|e| self.error_at(start, format!("invalid string literal: {e}")))?;
        self.pos = end;
        Ok(s)
    }
}

/// A token in JSON number syntax, as a `serde_json::Number`; `None` for anything else
/// (including numbers too large for an `f64`).
fn json_number(token: &str) -> Option<serde_json::Number> {
    let b = token.as_bytes();
    let first = *b.first()?;
    if !(first == b'-' || first.is_ascii_digit()) {
        return None;
    }
    if !token
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    // serde_json enforces the exact JSON grammar (no `01`, no `1.`, no `+1`)...
    let n = serde_json::from_str::<serde_json::Number>(token).ok()?;
    if n.is_f64() {
        // ...but its default float parsing is not always correctly rounded; std's is, so a
        // printed float reads back to the same bits.
        return token
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64);
    }
    Some(n)
}
