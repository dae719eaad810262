//! RFC 7644 §3.5.2 PATCH: [`PatchRequest::from_json`] reads the body, [`apply_patch`] applies
//! its operations, in order and all-or-nothing, to a copy of a JSON resource.
//!
//! The engine is schema-driven ([`ResourceSchema`]): attribute names are matched in any case and
//! stored in their canonical spelling, values are type-checked, `null`s are dropped, read-only,
//! immutable and required attributes are protected.
//!
//! Identity-provider quirks (research notes §2.5), each covered by a test named after it:
//! - Q1 `op` in any case (`"Replace"`);
//! - Q2 booleans sent as strings in any case (`"False"`);
//! - Q3 a path-less replace whose keys are paths (`name.givenName`, `urn:…:User:employeeNumber`);
//! - Q4/Q10 removing members by a `value` list, or by a `members[value eq "…"]` path;
//! - Q5 a filtered add/replace that matches nothing creates the entry the filter describes;
//! - Q6 several operations in one request, `userName` replaced;
//! - Q8 a path-less replace carrying the unchanged read-only `id`;
//! - Q12 `remove` without a path → 400 `noTarget`;
//! - Q13 `null` sub-attributes accepted and dropped.
//!
//! Errors: unknown attribute or malformed path → `invalidPath`; a filter that matches nothing and
//! describes no entry → `noTarget`; a wrong type → `invalidValue`; a read-only, immutable or
//! required attribute changed or removed → `mutability`; a malformed body → `invalidSyntax`.

use std::fmt;

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{CompValue, Filter, matches_element};
use super::path::{AttrPath, PatchPath};
use super::schema::{AttrDef, AttrType, Mutability, Resolved, ResourceSchema};
use super::{PATCH_OP_SCHEMA, get_ci, key_ci};

/// `add`, `remove` or `replace`, read in any case (Entra sends `"Add"`, quirk Q1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    Add,
    Remove,
    Replace,
}

impl PatchOp {
    pub fn parse(s: &str) -> Option<Self> {
        [PatchOp::Add, PatchOp::Remove, PatchOp::Replace]
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PatchOp::Add => "add",
            PatchOp::Remove => "remove",
            PatchOp::Replace => "replace",
        }
    }
}

impl fmt::Display for PatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOp,
    pub path: Option<PatchPath>,
    /// As sent; `Some(Value::Null)` is an explicit null.
    pub value: Option<Value>,
}

impl PatchOperation {
    pub fn new(op: PatchOp, path: Option<&str>, value: Option<Value>) -> Result<Self, ScimError> {
        Ok(Self {
            op,
            path: path.map(PatchPath::parse).transpose()?,
            value,
        })
    }
}

/// A PATCH request body.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Reads `{"schemas":[PatchOp], "Operations":[{op, path?, value?}]}`. Member names are
    /// matched in any case (Entra: "don't require a case-sensitive match on structural
    /// elements"); a missing `schemas` is tolerated, a wrong one is not.
    pub fn from_json(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(obj) = body else {
            return Err(ScimError::invalid_syntax(
                "a PATCH body must be a JSON object",
            ));
        };
        if let Some((_, schemas)) = get_ci(obj, "schemas") {
            let ok = schemas.as_array().is_some_and(|a| {
                a.iter().any(|s| {
                    s.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
                })
            });
            if !ok {
                return Err(ScimError::invalid_syntax(format!(
                    "a PATCH body's schemas must contain {PATCH_OP_SCHEMA}"
                )));
            }
        }
        let Some((_, Value::Array(ops))) = get_ci(obj, "Operations") else {
            return Err(ScimError::invalid_syntax(
                "a PATCH body needs an `Operations` array",
            ));
        };
        let operations = ops
            .iter()
            .enumerate()
            .map(|(i, op)| read_operation(op).map_err(|e| prefixed(e, i)))
            .collect::<Result<_, _>>()?;
        Ok(Self { operations })
    }

    /// [`apply_patch`] with this request.
    pub fn apply(&self, resource: &Value, schema: &ResourceSchema) -> Result<Value, ScimError> {
        apply_patch(resource, &self.operations, schema)
    }
}

fn read_operation(op: &Value) -> Result<PatchOperation, ScimError> {
    let Value::Object(o) = op else {
        return Err(ScimError::invalid_syntax(
            "an operation must be a JSON object",
        ));
    };
    let kind = match get_ci(o, "op") {
        Some((_, Value::String(s))) => PatchOp::parse(s).ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "unknown op {s:?} (expected add, remove or replace)"
            ))
        })?,
        _ => {
            return Err(ScimError::invalid_syntax(
                "an operation needs an `op` string",
            ));
        }
    };
    let path = match get_ci(o, "path") {
        None | Some((_, Value::Null)) => None,
        Some((_, Value::String(s))) if s.trim().is_empty() => None,
        Some((_, Value::String(s))) => Some(PatchPath::parse(s)?),
        Some(_) => return Err(ScimError::invalid_path("`path` must be a string")),
    };
    Ok(PatchOperation {
        op: kind,
        path,
        value: get_ci(o, "value").map(|(_, v)| v.clone()),
    })
}

fn prefixed(mut e: ScimError, index: usize) -> ScimError {
    e.detail = format!("Operations[{index}]: {}", e.detail);
    e
}

/// Applies `operations` in order to a copy of `resource` and returns it; on any error the
/// resource is untouched (RFC 7644 §3.5.2: a PATCH is atomic).
pub fn apply_patch(
    resource: &Value,
    operations: &[PatchOperation],
    schema: &ResourceSchema,
) -> Result<Value, ScimError> {
    let Value::Object(map) = resource else {
        return Err(ScimError::internal(
            "the stored resource is not a JSON object",
        ));
    };
    let mut engine = Engine {
        schema,
        res: map.clone(),
    };
    for (i, op) in operations.iter().enumerate() {
        engine.apply(op).map_err(|e| prefixed(e, i))?;
    }
    Ok(Value::Object(engine.res))
}

struct Engine<'s> {
    schema: &'s ResourceSchema,
    res: Map<String, Value>,
}

/// How a value is read: the whole attribute (an array for a multi-valued one) or one element.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Whole,
    Element,
}

impl Engine<'_> {
    fn apply(&mut self, op: &PatchOperation) -> Result<(), ScimError> {
        match (&op.path, op.op) {
            (None, PatchOp::Remove) => Err(ScimError::no_target(
                "a remove operation needs a path (RFC 7644 §3.5.2.2)",
            )),
            (None, kind) => match &op.value {
                Some(Value::Object(members)) => {
                    for (key, value) in members {
                        self.pathless_member(kind, key, value)?;
                    }
                    Ok(())
                }
                _ => Err(ScimError::invalid_value(format!(
                    "{kind} without a path needs an object value of attributes"
                ))),
            },
            (Some(path), kind) => self.at_path(kind, path, op.value.as_ref()),
        }
    }

    /// One member of a path-less add/replace value: an attribute, a path (Q3: `name.givenName`,
    /// `urn:…:User:employeeNumber`) or a whole extension object.
    fn pathless_member(
        &mut self,
        kind: PatchOp,
        key: &str,
        value: &Value,
    ) -> Result<(), ScimError> {
        // Structural or server-managed: `schemas` follows the attributes, `meta` is ours.
        if key.eq_ignore_ascii_case("schemas") || key.eq_ignore_ascii_case("meta") {
            return Ok(());
        }
        if let Some(ext) = self.schema.extension(key) {
            return self.whole_extension(kind, ext.id, Some(value));
        }
        let attr = AttrPath::parse(key)?;
        self.at_path(kind, &PatchPath { attr, filter: None }, Some(value))
    }

    /// add/replace/remove on a whole extension object (`urn:…:enterprise:2.0:User`).
    fn whole_extension(
        &mut self,
        kind: PatchOp,
        urn: &str,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let ext = self
            .schema
            .extension(urn)
            .ok_or_else(|| ScimError::invalid_path(format!("unknown schema extension {urn}")))?;
        if kind == PatchOp::Remove {
            if let Some(k) = key_ci(&self.res, ext.id) {
                self.res.remove(&k);
            }
            self.tidy_extension(ext.id);
            return Ok(());
        }
        let Some(Value::Object(members)) = value else {
            return Err(ScimError::invalid_value(format!(
                "{} must be an object",
                ext.id
            )));
        };
        for (key, v) in members {
            // A whole-extension value may carry its own `schemas` (scim2-tester sends it).
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            let mut attr = AttrPath::parse(key)?;
            if attr.urn.is_some() {
                return Err(ScimError::invalid_path(format!(
                    "{key:?} inside {} must be a plain attribute name",
                    ext.id
                )));
            }
            attr.urn = Some(ext.id.to_owned());
            self.at_path(kind, &PatchPath { attr, filter: None }, Some(v))?;
        }
        Ok(())
    }

    fn at_path(
        &mut self,
        kind: PatchOp,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if path.filter.is_none()
            && let Some(ext) = self.schema.extension_named_by(&path.attr)
        {
            return self.whole_extension(kind, ext.id, value);
        }
        let r = self.schema.resolve(&path.attr).ok_or_else(|| {
            ScimError::invalid_path(format!(
                "{} has no attribute {}",
                self.schema.name, path.attr
            ))
        })?;
        if path.filter.is_some() && !(r.attr.multi_valued && r.attr.ty == AttrType::Complex) {
            return Err(ScimError::invalid_path(format!(
                "a value filter needs a multi-valued complex attribute; {} is not one",
                r.attr.name
            )));
        }
        let label = match r.sub {
            Some(s) => format!("{}.{}", r.attr.name, s.name),
            None => r.attr.name.to_owned(),
        };
        match kind {
            PatchOp::Remove => self.remove(&r, path, value, &label),
            PatchOp::Add | PatchOp::Replace => {
                let shape = if path.filter.is_some() && r.sub.is_none() {
                    Shape::Element
                } else {
                    Shape::Whole
                };
                let new = match value {
                    None => {
                        return Err(ScimError::invalid_value(format!(
                            "{kind} {label} needs a value"
                        )));
                    }
                    Some(v) => normalize(r.target(), v, shape, &label)?,
                };
                match new {
                    // An explicit null unassigns (RFC 7643 §2.5); adding nothing changes nothing.
                    None if kind == PatchOp::Replace => self.remove(&r, path, None, &label),
                    None => Ok(()),
                    Some(new) => self.set(kind, &r, path, new, &label),
                }
            }
        }
    }

    /// The object holding the attribute: the resource, or its extension object.
    fn container(
        &mut self,
        ext: Option<&'static str>,
        create: bool,
    ) -> Option<&mut Map<String, Value>> {
        let Some(urn) = ext else {
            return Some(&mut self.res);
        };
        let key = match key_ci(&self.res, urn) {
            Some(k) => k,
            None if create => {
                self.res.insert(urn.to_owned(), Value::Object(Map::new()));
                add_schema(&mut self.res, urn);
                urn.to_owned()
            }
            None => return None,
        };
        let slot = self.res.get_mut(&key)?;
        if !slot.is_object() {
            if !create {
                return None;
            }
            *slot = Value::Object(Map::new());
        }
        slot.as_object_mut()
    }

    /// Drops an emptied extension object and its URN from `schemas`.
    fn tidy_extension(&mut self, urn: &str) {
        let empty = match key_ci(&self.res, urn) {
            Some(k) => {
                let empty = self
                    .res
                    .get(&k)
                    .is_none_or(|v| v.as_object().is_none_or(Map::is_empty));
                if empty {
                    self.res.remove(&k);
                }
                empty
            }
            None => true,
        };
        if empty && let Some(Value::Array(schemas)) = self.res.get_mut("schemas") {
            schemas.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)));
        }
    }

    fn set(
        &mut self,
        kind: PatchOp,
        r: &Resolved,
        path: &PatchPath,
        new: Value,
        label: &str,
    ) -> Result<(), ScimError> {
        let target = r.target();
        if target.mutability == Mutability::ReadOnly || r.attr.mutability == Mutability::ReadOnly {
            // Okta's group rename repeats the read-only `id` (Q8): an unchanged value is fine.
            if path.filter.is_none() && self.current(r).as_ref() == Some(&new) {
                return Ok(());
            }
            return Err(ScimError::mutability(format!("{label} is read-only")));
        }
        let attr = r.attr;
        let schema = self.schema;
        let Some(container) = self.container(r.extension, true) else {
            return Err(ScimError::internal("could not create the extension object"));
        };
        let key = key_ci(container, attr.name).unwrap_or_else(|| attr.name.to_owned());
        match (&path.filter, r.sub) {
            (None, None) if attr.multi_valued => {
                let items = match new {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                if kind == PatchOp::Replace {
                    if items.is_empty() {
                        container.remove(&key);
                    } else {
                        let touched: Vec<usize> = (0..items.len()).collect();
                        let mut items = items;
                        fix_primary(&mut items, &touched);
                        container.insert(key, Value::Array(items));
                    }
                    return Ok(());
                }
                let slot = array_slot(container, &key).ok_or_else(slot_error)?;
                let mut touched = Vec::new();
                for item in items {
                    match slot.iter().position(|e| *e == item) {
                        Some(i) => touched.push(i),
                        None => {
                            slot.push(item);
                            touched.push(slot.len() - 1);
                        }
                    }
                }
                fix_primary(slot, &touched);
                if slot.is_empty() {
                    container.remove(&key);
                }
            }
            (None, None) => match (container.get_mut(&key), new) {
                // A complex attribute merges: sub-attributes not given stay (RFC 7644 §3.5.2.3).
                (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
                (_, new) => {
                    container.insert(key, new);
                }
            },
            (None, Some(sub)) => {
                if attr.multi_valued {
                    return Err(ScimError::invalid_path(format!(
                        "{label}: pick the {} entry with a value filter, e.g. {}[type eq \"work\"].{}",
                        attr.name, attr.name, sub.name
                    )));
                }
                let obj = object_slot(container, &key).ok_or_else(slot_error)?;
                obj.insert(sub.name.to_owned(), new);
            }
            (Some(filter), sub) => {
                let parent = AttrPath::new(attr.name);
                let ce = schema.with_prefix(r);
                let slot = array_slot(container, &key).ok_or_else(slot_error)?;
                let matched: Vec<usize> = slot
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| matches_element(filter, e, &parent, &ce))
                    .map(|(i, _)| i)
                    .collect();
                if matched.is_empty() {
                    // Quirk Q5: Entra replaces `emails[type eq "work"].value` on a user with no work
                    // e-mail and expects it created; build the entry the filter describes.
                    let mut element = element_from_filter(filter, attr).ok_or_else(|| {
                        ScimError::no_target(format!("no {} entry matches [{filter}]", attr.name))
                    })?;
                    match (sub, new) {
                        (Some(sub), new) => {
                            element.insert(sub.name.to_owned(), new);
                        }
                        (None, Value::Object(fields)) => element.extend(fields),
                        (None, _) => {
                            return Err(ScimError::invalid_value(format!(
                                "{label} must be an object"
                            )));
                        }
                    }
                    slot.push(Value::Object(element));
                    let last = slot.len() - 1;
                    fix_primary(slot, &[last]);
                    return Ok(());
                }
                for &i in &matched {
                    let Some(Value::Object(element)) = slot.get_mut(i) else {
                        continue;
                    };
                    match (sub, &new) {
                        (Some(sub), new) => {
                            if sub.mutability == Mutability::Immutable
                                && element.get(sub.name).is_some_and(|old| old != new)
                            {
                                return Err(ScimError::mutability(format!("{label} is immutable")));
                            }
                            element.insert(sub.name.to_owned(), new.clone());
                        }
                        (None, Value::Object(fields)) if kind == PatchOp::Add => {
                            element.extend(fields.clone());
                        }
                        // RFC 7644 §3.5.2.3: "all matching record values SHALL be replaced".
                        (None, Value::Object(fields)) => *element = fields.clone(),
                        (None, _) => {
                            return Err(ScimError::invalid_value(format!(
                                "{label} must be an object"
                            )));
                        }
                    }
                }
                fix_primary(slot, &matched);
            }
        }
        Ok(())
    }

    fn remove(
        &mut self,
        r: &Resolved,
        path: &PatchPath,
        value: Option<&Value>,
        label: &str,
    ) -> Result<(), ScimError> {
        let target = r.target();
        if target.required && path.filter.is_none() {
            return Err(ScimError::mutability(format!(
                "{label} is required and cannot be removed"
            )));
        }
        if matches!(
            target.mutability,
            Mutability::ReadOnly | Mutability::Immutable
        ) || r.attr.mutability == Mutability::ReadOnly
        {
            return Err(ScimError::mutability(format!(
                "{label} is {} and cannot be removed",
                if target.mutability == Mutability::Immutable {
                    "immutable"
                } else {
                    "read-only"
                }
            )));
        }
        let attr = r.attr;
        let schema = self.schema;
        // Removing what is not there changes nothing and succeeds (idempotent).
        let Some(container) = self.container(r.extension, false) else {
            return Ok(());
        };
        let Some(key) = key_ci(container, attr.name) else {
            return Ok(());
        };
        let parent = AttrPath::new(attr.name);
        let ce = schema.with_prefix(r);
        match (&path.filter, r.sub) {
            (None, None) => {
                let selectors = match value {
                    Some(v) if attr.multi_valued && !v.is_null() => {
                        normalize(attr, v, Shape::Whole, label)?
                    }
                    _ => None,
                };
                match (selectors, container.get_mut(&key)) {
                    // Quirks Q4/Q10: `{"op":"Remove","path":"members","value":[{"value":"u1"}]}`
                    // removes just those members.
                    (Some(Value::Array(selectors)), Some(Value::Array(items))) => {
                        let value_exact = attr.sub("value").is_some_and(|d| d.case_exact);
                        items.retain(|e| !selectors.iter().any(|s| same_entry(e, s, value_exact)));
                    }
                    _ => {
                        container.remove(&key);
                    }
                }
            }
            (None, Some(sub)) => match container.get_mut(&key) {
                Some(Value::Array(items)) => {
                    for e in items.iter_mut() {
                        if let Value::Object(o) = e
                            && let Some(k) = key_ci(o, sub.name)
                        {
                            o.remove(&k);
                        }
                    }
                    items.retain(|e| !e.as_object().is_some_and(Map::is_empty));
                }
                Some(Value::Object(o)) => {
                    if let Some(k) = key_ci(o, sub.name) {
                        o.remove(&k);
                    }
                }
                _ => {}
            },
            (Some(filter), sub) => {
                if let Some(Value::Array(items)) = container.get_mut(&key) {
                    match sub {
                        // Removing a filter that matches nothing succeeds with no change.
                        None => items.retain(|e| !matches_element(filter, e, &parent, &ce)),
                        Some(sub) => {
                            for e in items.iter_mut() {
                                if matches_element(filter, e, &parent, &ce)
                                    && let Value::Object(o) = e
                                    && let Some(k) = key_ci(o, sub.name)
                                {
                                    o.remove(&k);
                                }
                            }
                            items.retain(|e| !e.as_object().is_some_and(Map::is_empty));
                        }
                    }
                }
            }
        }
        // An emptied attribute is unassigned.
        let emptied = match container.get(&key) {
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if emptied {
            container.remove(&key);
        }
        if let Some(urn) = r.extension {
            self.tidy_extension(urn);
        }
        Ok(())
    }

    /// The attribute's current value (no filter), for the read-only "unchanged" check.
    fn current(&self, r: &Resolved) -> Option<Value> {
        let container = match r.extension {
            None => &self.res,
            Some(urn) => get_ci(&self.res, urn)?.1.as_object()?,
        };
        let (_, v) = get_ci(container, r.attr.name)?;
        match r.sub {
            None => Some(v.clone()),
            Some(sub) => Some(get_ci(v.as_object()?, sub.name)?.1.clone()),
        }
    }
}

impl ResourceSchema {
    /// A `caseExact` lookup for a bracketed filter: `matches_element` asks about `attr.sub`
    /// unqualified, so route the question through the resolved attribute's extension.
    fn with_prefix(&self, r: &Resolved) -> impl Fn(&AttrPath) -> bool + '_ {
        let ext = r.extension;
        move |p: &AttrPath| {
            let mut p = p.clone();
            if p.urn.is_none() {
                p.urn = ext.map(str::to_owned);
            }
            super::filter::CaseExact::case_exact(self, &p)
        }
    }
}

/// The list stored under `key`, created if missing; a single value stored where a list belongs
/// becomes its first element. `None` only if the map misbehaves (never, in practice).
fn array_slot<'a>(container: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Vec<Value>> {
    let slot = container
        .entry(key.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        let old = std::mem::take(slot);
        *slot = Value::Array(if old.is_null() { Vec::new() } else { vec![old] });
    }
    slot.as_array_mut()
}

/// The object stored under `key`, created (or replacing a non-object) if needed.
fn object_slot<'a>(
    container: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let slot = container
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

fn slot_error() -> ScimError {
    ScimError::internal("the stored resource could not be updated")
}

fn add_schema(res: &mut Map<String, Value>, urn: &str) {
    let schemas = res
        .entry("schemas")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = schemas
        && !list
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
    {
        list.push(Value::String(urn.to_owned()));
    }
}

/// RFC 7644 §3.5.2: when a value becomes `primary`, the others stop being primary.
fn fix_primary(items: &mut [Value], touched: &[usize]) {
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let Some(&keep) = touched
        .iter()
        .rev()
        .find(|&&i| items.get(i).is_some_and(is_primary))
    else {
        return;
    };
    for (i, item) in items.iter_mut().enumerate() {
        if i != keep
            && is_primary(item)
            && let Value::Object(o) = item
        {
            o.insert("primary".into(), Value::Bool(false));
        }
    }
}

/// Whether a stored element is the one a remove-by-value selector names: same `value` when the
/// selector has one (Entra sends `{"value":"u1","$ref":null}`), else the same object.
fn same_entry(element: &Value, selector: &Value, value_exact: bool) -> bool {
    match (selector.get("value"), element.get("value")) {
        (Some(Value::String(a)), Some(Value::String(b))) => {
            if value_exact {
                a == b
            } else {
                a.to_lowercase() == b.to_lowercase()
            }
        }
        (Some(a), Some(b)) => a == b,
        _ => element == selector,
    }
}

/// The entry a conjunction of equalities describes (`type eq "work"` → `{"type":"work"}`).
fn element_from_filter(filter: &Filter, attr: &AttrDef) -> Option<Map<String, Value>> {
    let mut element = Map::new();
    for (path, value) in filter.equalities()? {
        let def = attr.sub(&path.name)?;
        let v = match value {
            CompValue::Null => return None,
            CompValue::Bool(b) => Value::Bool(*b),
            CompValue::Number(n) => Value::Number(n.clone()),
            CompValue::String(s) => Value::String(s.clone()),
        };
        element.insert(def.name.to_owned(), v);
    }
    Some(element)
}

/// Checks a value against its definition and puts it in canonical form: canonical sub-attribute
/// names, `null`s dropped (Q13), booleans from `"True"`/`"false"` strings (Q2), a single value
/// for a multi-valued attribute wrapped in an array. `None` when nothing but nulls was given.
pub(crate) fn normalize(
    def: &AttrDef,
    v: &Value,
    shape: Shape,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    if v.is_null() {
        return Ok(None);
    }
    if def.multi_valued && shape == Shape::Whole {
        let items: &[Value] = match v {
            Value::Array(a) => a,
            other => std::slice::from_ref(other),
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(x) = normalize(def, item, Shape::Element, label)? {
                out.push(x);
            }
        }
        return Ok(Some(Value::Array(out)));
    }
    let bad = |what: &str| ScimError::invalid_value(format!("{label} must be {what}, not {v}"));
    let out = match (def.ty, v) {
        (AttrType::Complex, Value::Object(o)) => {
            let mut out = Map::new();
            for (k, x) in o {
                let sub = def.sub(k).ok_or_else(|| {
                    ScimError::invalid_value(format!("{label} has no sub-attribute {k:?}"))
                })?;
                if let Some(x) = normalize(sub, x, Shape::Whole, &format!("{label}.{}", sub.name))?
                {
                    out.insert(sub.name.to_owned(), x);
                }
            }
            if out.is_empty() {
                return Ok(None);
            }
            Value::Object(out)
        }
        // A bare string for an entry of a list of objects stands for its `value`.
        (AttrType::Complex, Value::String(_)) if def.multi_valued && def.sub("value").is_some() => {
            let mut out = Map::new();
            out.insert("value".into(), v.clone());
            Value::Object(out)
        }
        (AttrType::Complex, _) => return Err(bad("an object")),
        (AttrType::Boolean, Value::Bool(_)) => v.clone(),
        (AttrType::Boolean, Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => {
            Value::Bool(true)
        }
        (AttrType::Boolean, Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => {
            Value::Bool(false)
        }
        (AttrType::Boolean, _) => return Err(bad("true or false")),
        (AttrType::String | AttrType::Reference | AttrType::Binary, Value::String(_)) => v.clone(),
        (AttrType::String | AttrType::Reference | AttrType::Binary, _) => {
            return Err(bad("a string"));
        }
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => v.clone(),
        (AttrType::Integer, _) => return Err(bad("an integer")),
        (AttrType::Decimal, Value::Number(_)) => v.clone(),
        (AttrType::Decimal, _) => return Err(bad("a number")),
        (AttrType::DateTime, Value::String(s))
            if chrono::DateTime::parse_from_rfc3339(s).is_ok() =>
        {
            v.clone()
        }
        (AttrType::DateTime, _) => return Err(bad("an RFC 3339 date-time string")),
    };
    Ok(Some(out))
}
