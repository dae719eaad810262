//! Request bodies of `POST` (create) and `PUT` (replace) turned into a resource to store:
//! [`resource_from_request`] and [`replace_resource`].
//!
//! Both check values against the schema the way PATCH does (canonical names, types, `null`s
//! dropped — quirk Q13 — and `"True"`/`"False"` booleans), ignore read-only attributes (RFC 7644
//! §3.3/§3.5.1: `id`, `meta`, `groups` "SHALL be ignored"), tolerate unknown schema URIs next to the
//! core one (Entra's Group create carries a Microsoft URI), and require `required` attributes
//! (`userName`, Group `displayName`). Okta's PUT echoes the whole resource back (quirk Q9): its
//! read-only parts are ignored and the stored ones kept.
//!
//! What is *not* checked here: uniqueness (409) and `userName` changes LastPass refuses — those
//! need the store and the endpoint.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::get_ci;
use super::patch::{Shape, normalize};
use super::schema::{AttrDef, COMMON, Mutability, ResourceSchema, SchemaDef};

/// A `POST` body as a resource, without `id` and `meta` (the server assigns them).
pub fn resource_from_request(body: &Value, schema: &ResourceSchema) -> Result<Value, ScimError> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(
            "a resource must be a JSON object",
        ));
    };
    check_schemas(obj, schema)?;
    let mut out = Map::new();
    let mut ext_present = Vec::new();
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = schema.extension(key) {
            let members = read_members(ext, value)?;
            if !members.is_empty() {
                ext_present.push(ext.id);
                out.insert(ext.id.to_owned(), Value::Object(members));
            }
            continue;
        }
        if key.starts_with("urn:") || key.starts_with("URN:") {
            // An extension we don't serve: its schema was not in `schemas` as required, or it was
            // tolerated there; either way there is nothing to store.
            continue;
        }
        let def = find_def(schema, key)?;
        if let Some((name, v)) = read_attribute(def, value)? {
            out.insert(name, v);
        }
    }
    require(&out, schema.core, None)?;
    for ext in schema.extensions {
        if let Some(Value::Object(members)) = out.get(ext.id) {
            require(members, ext, Some(ext.id))?;
        }
    }
    let mut schemas = vec![Value::String(schema.core.id.to_owned())];
    schemas.extend(ext_present.into_iter().map(|e| Value::String(e.to_owned())));
    let mut resource = Map::new();
    resource.insert("schemas".into(), Value::Array(schemas));
    resource.extend(out);
    Ok(Value::Object(resource))
}

/// A `PUT` body applied to `current`: every writable attribute comes from the body (absent ones
/// are removed), read-only ones (`id`, `meta`, `groups`, …) stay as stored, and an immutable
/// attribute may not change once set (`mutability`).
pub fn replace_resource(
    current: &Value,
    body: &Value,
    schema: &ResourceSchema,
) -> Result<Value, ScimError> {
    let mut next = resource_from_request(body, schema)?;
    let (Value::Object(cur), Value::Object(new)) = (current, &mut next) else {
        return Err(ScimError::internal(
            "the stored resource is not a JSON object",
        ));
    };
    // Keep what the client may not set.
    for def in COMMON.iter().chain(schema.core.attributes) {
        if def.mutability == Mutability::ReadOnly
            && let Some((k, v)) = get_ci(cur, def.name)
        {
            new.insert(k.clone(), v.clone());
        }
        if def.mutability == Mutability::Immutable
            && let Some((_, old)) = get_ci(cur, def.name)
            && get_ci(new, def.name).is_some_and(|(_, v)| v != old)
        {
            return Err(ScimError::mutability(format!("{} is immutable", def.name)));
        }
    }
    Ok(next)
}

fn check_schemas(obj: &Map<String, Value>, schema: &ResourceSchema) -> Result<(), ScimError> {
    let Some((_, schemas)) = get_ci(obj, "schemas") else {
        // RFC 7643 §3 requires `schemas`; some clients omit it for the core schema alone.
        return Ok(());
    };
    let Value::Array(list) = schemas else {
        return Err(ScimError::invalid_syntax(
            "`schemas` must be a list of schema URIs",
        ));
    };
    let uris: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    if uris.len() != list.len() {
        return Err(ScimError::invalid_syntax(
            "`schemas` must be a list of schema URIs",
        ));
    }
    if !uris.iter().any(|u| u.eq_ignore_ascii_case(schema.core.id)) {
        return Err(ScimError::invalid_syntax(format!(
            "`schemas` must contain {} for a {} (got {})",
            schema.core.id,
            schema.name,
            uris.join(", ")
        )));
    }
    Ok(())
}

fn find_def(schema: &ResourceSchema, key: &str) -> Result<&'static AttrDef, ScimError> {
    COMMON
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(key))
        .or_else(|| schema.core.attribute(key))
        .ok_or_else(|| {
            ScimError::invalid_value(format!("{} has no attribute {key:?}", schema.name))
        })
}

/// One attribute, canonical name and value; `None` when read-only (ignored) or null.
fn read_attribute(def: &AttrDef, value: &Value) -> Result<Option<(String, Value)>, ScimError> {
    if def.mutability == Mutability::ReadOnly {
        return Ok(None);
    }
    Ok(normalize(def, value, Shape::Whole, def.name)?.map(|v| (def.name.to_owned(), v)))
}

fn read_members(ext: &SchemaDef, value: &Value) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(members) = value else {
        return Err(ScimError::invalid_value(format!(
            "{} must be an object",
            ext.id
        )));
    };
    let mut out = Map::new();
    for (key, v) in members {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let def = ext.attribute(key).ok_or_else(|| {
            ScimError::invalid_value(format!("{} has no attribute {key:?}", ext.id))
        })?;
        if let Some((name, v)) = read_attribute(def, v)? {
            out.insert(name, v);
        }
    }
    Ok(out)
}

fn require(
    attrs: &Map<String, Value>,
    schema: &SchemaDef,
    prefix: Option<&str>,
) -> Result<(), ScimError> {
    for def in schema.attributes.iter().filter(|d| d.required) {
        let present = attrs.get(def.name).is_some_and(|v| match v {
            Value::String(s) => !s.trim().is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        });
        if !present {
            let name = prefix.map_or_else(|| def.name.to_owned(), |p| format!("{p}:{}", def.name));
            return Err(ScimError::invalid_value(format!("{name} is required")));
        }
    }
    Ok(())
}
