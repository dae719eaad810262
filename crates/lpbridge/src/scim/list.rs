//! Listing and searching (RFC 7644 §3.4.2, §3.4.3): paging with `startIndex`/`count`
//! ([`PageRequest`], [`ListResponse`]), `attributes`/`excludedAttributes` ([`Projection`]), and
//! the query of `GET /Users?…` or a `POST /.search` body as one value ([`SearchRequest`]).
//!
//! Order is the caller's concern only through [`list_resources`], which sorts by `id` so pages are
//! stable across requests (Okta pages with `startIndex += count`).

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::Filter;
use super::path::AttrPath;
use super::schema::{ResourceSchema, Returned};
use super::{LIST_RESPONSE_SCHEMA, SEARCH_REQUEST_SCHEMA, get_ci, strip_nulls};

/// Attributes returned whatever `attributes`/`excludedAttributes` say (RFC 7643 §3.1/§7:
/// `id` is `returned: always`; lpbridge always returns `schemas` and `meta` too).
const ALWAYS: [&str; 3] = ["id", "schemas", "meta"];

/// A validated page: 1-based `start_index`, and at most `count` resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub start_index: usize,
    pub count: usize,
}

impl PageRequest {
    /// RFC 7644 §3.4.2.4: a `startIndex` below 1 is 1; a negative `count` is 0; no `count` or a
    /// larger one than the server's maximum is the maximum.
    pub fn new(start_index: Option<i64>, count: Option<i64>, max_count: usize) -> Self {
        let start_index =
            start_index.map_or(1, |s| usize::try_from(s.max(1)).unwrap_or(usize::MAX));
        let count = count.map_or(max_count, |c| {
            usize::try_from(c.max(0))
                .unwrap_or(usize::MAX)
                .min(max_count)
        });
        Self { start_index, count }
    }

    /// From the query parameters' text; a non-integer is 400 `invalidValue`.
    pub fn from_query(
        start_index: Option<&str>,
        count: Option<&str>,
        max_count: usize,
    ) -> Result<Self, ScimError> {
        let int = |name: &str, v: Option<&str>| {
            v.map(|s| {
                s.trim().parse::<i64>().map_err(|_| {
                    ScimError::invalid_value(format!("{name} must be an integer, not {s:?}"))
                })
            })
            .transpose()
        };
        Ok(Self::new(
            int("startIndex", start_index)?,
            int("count", count)?,
            max_count,
        ))
    }
}

/// A `ListResponse` (RFC 7644 §3.4.2). Serialises with integer `totalResults`, `startIndex`,
/// `itemsPerPage` (Okta requires integers) and always a `Resources` array, empty for `count=0`
/// (scim-sanity's boundary probe).
#[derive(Debug, Clone, PartialEq)]
pub struct ListResponse {
    pub total_results: usize,
    pub start_index: usize,
    pub items_per_page: usize,
    pub resources: Vec<Value>,
}

impl ListResponse {
    /// The page `page` of `all` (already filtered and in a stable order).
    pub fn from_page(all: Vec<Value>, page: PageRequest) -> Self {
        let total_results = all.len();
        let resources: Vec<Value> = all
            .into_iter()
            .skip(page.start_index.saturating_sub(1))
            .take(page.count)
            .collect();
        Self {
            total_results,
            start_index: page.start_index,
            items_per_page: resources.len(),
            resources,
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "schemas": [LIST_RESPONSE_SCHEMA],
            "totalResults": self.total_results,
            "startIndex": self.start_index,
            "itemsPerPage": self.items_per_page,
            "Resources": self.resources,
        })
    }
}

impl Serialize for ListResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// Which attributes a response carries (RFC 7644 §3.4.2.5).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Projection {
    /// Everything `returned: default` or `always`.
    #[default]
    Default,
    /// `attributes=…`: only these, plus the always-returned ones.
    Include(Vec<AttrPath>),
    /// `excludedAttributes=…`: everything but these (always-returned ones stay).
    Exclude(Vec<AttrPath>),
}

impl Projection {
    /// From the comma-separated query parameters; `attributes` wins when both are given.
    pub fn from_query(attributes: Option<&str>, excluded: Option<&str>) -> Result<Self, ScimError> {
        let list = |s: &str| {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(AttrPath::parse)
                .collect::<Result<Vec<_>, _>>()
        };
        match (attributes, excluded) {
            (Some(a), _) if !a.trim().is_empty() => Ok(Self::Include(list(a)?)),
            (_, Some(e)) if !e.trim().is_empty() => Ok(Self::Exclude(list(e)?)),
            _ => Ok(Self::Default),
        }
    }

    /// The projected copy of `resource`, without `null`s and never with `returned: never`
    /// attributes (`password`).
    pub fn apply(&self, resource: &Value, schema: &ResourceSchema) -> Value {
        let Value::Object(src) = resource else {
            return resource.clone();
        };
        let mut out = Map::new();
        for (key, value) in src {
            if let Some(v) = self.project_member(key, value, schema) {
                out.insert(key.clone(), v);
            }
        }
        let mut out = Value::Object(out);
        strip_nulls(&mut out);
        out
    }

    /// One top-level member: an attribute or an extension object.
    fn project_member(&self, key: &str, value: &Value, schema: &ResourceSchema) -> Option<Value> {
        if ALWAYS.iter().any(|a| a.eq_ignore_ascii_case(key)) {
            return Some(value.clone());
        }
        if let Some(ext) = schema.extension(key) {
            let Value::Object(members) = value else {
                return None;
            };
            let names_whole =
                |p: &AttrPath| schema.extension_named_by(p).is_some_and(|e| e.id == ext.id);
            let projected: Map<String, Value> = match self {
                Projection::Include(paths) if paths.iter().any(names_whole) => {
                    self.members_of(members, Some(ext.id), schema, true)
                }
                Projection::Exclude(paths) if paths.iter().any(names_whole) => return None,
                _ => self.members_of(members, Some(ext.id), schema, false),
            };
            return (!projected.is_empty()).then_some(Value::Object(projected));
        }
        self.attribute(key, value, None, schema, false)
    }

    fn members_of(
        &self,
        members: &Map<String, Value>,
        ext: Option<&'static str>,
        schema: &ResourceSchema,
        whole: bool,
    ) -> Map<String, Value> {
        members
            .iter()
            .filter_map(|(k, v)| {
                self.attribute(k, v, ext, schema, whole)
                    .map(|v| (k.clone(), v))
            })
            .collect()
    }

    /// One attribute (top-level or inside extension `ext`); `whole` when its extension was
    /// requested as a whole.
    fn attribute(
        &self,
        name: &str,
        value: &Value,
        ext: Option<&'static str>,
        schema: &ResourceSchema,
        whole: bool,
    ) -> Option<Value> {
        let here = AttrPath {
            urn: ext.map(str::to_owned),
            name: name.to_owned(),
            sub: None,
        };
        let def = schema.resolve(&here);
        let returned = def.map_or(Returned::Default, |d| d.attr.returned);
        match returned {
            Returned::Never => return None,
            Returned::Always => return Some(value.clone()),
            _ => {}
        }
        // A path names this attribute if the names match and it is qualified by this extension
        // or not at all (unqualified extension attribute names are accepted, leniently).
        let names_this = |p: &AttrPath| {
            p.name.eq_ignore_ascii_case(name)
                && match (p.extension_urn(), ext) {
                    (None, _) => true,
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    (Some(_), None) => false,
                }
        };
        match self {
            Projection::Default => (returned != Returned::Request).then(|| value.clone()),
            Projection::Include(paths) => {
                let mine: Vec<&AttrPath> = paths.iter().filter(|p| names_this(p)).collect();
                if whole || mine.iter().any(|p| p.sub.is_none()) {
                    return Some(value.clone());
                }
                if mine.is_empty() {
                    return None;
                }
                let subs: Vec<&str> = mine.iter().filter_map(|p| p.sub.as_deref()).collect();
                keep_subs(value, &subs, true)
            }
            Projection::Exclude(paths) => {
                if returned == Returned::Request {
                    return None;
                }
                let mine: Vec<&AttrPath> = paths.iter().filter(|p| names_this(p)).collect();
                if mine.iter().any(|p| p.sub.is_none()) {
                    return None;
                }
                let subs: Vec<&str> = mine.iter().filter_map(|p| p.sub.as_deref()).collect();
                if subs.is_empty() {
                    return Some(value.clone());
                }
                keep_subs(value, &subs, false)
            }
        }
    }
}

/// Keeps (`keep = true`) or drops the listed sub-attributes of a complex value or of each
/// element of a multi-valued one; `None` if nothing is left.
fn keep_subs(value: &Value, subs: &[&str], keep: bool) -> Option<Value> {
    let listed = |k: &str| subs.iter().any(|s| s.eq_ignore_ascii_case(k));
    let pick = |o: &Map<String, Value>| -> Map<String, Value> {
        o.iter()
            .filter(|(k, _)| listed(k) == keep)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    match value {
        Value::Object(o) => {
            let m = pick(o);
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .filter_map(|e| match e {
                    Value::Object(o) => {
                        let m = pick(o);
                        (!m.is_empty()).then_some(Value::Object(m))
                    }
                    other => (!keep).then(|| other.clone()),
                })
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => (!keep).then(|| other.clone()),
    }
}

/// A list or search query: the `GET` query parameters or a `POST /.search` body.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub filter: Option<Filter>,
    pub page: PageRequest,
    pub projection: Projection,
}

impl SearchRequest {
    /// From URL-decoded query pairs (`filter`, `startIndex`, `count`, `attributes`,
    /// `excludedAttributes`; names in any case). Unknown parameters are ignored.
    pub fn from_query<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        max_count: usize,
    ) -> Result<Self, ScimError> {
        let (mut filter, mut start, mut count, mut attrs, mut excluded) =
            (None, None, None, None, None);
        for (k, v) in pairs {
            let slot = match k.to_ascii_lowercase().as_str() {
                "filter" => &mut filter,
                "startindex" => &mut start,
                "count" => &mut count,
                "attributes" => &mut attrs,
                "excludedattributes" => &mut excluded,
                _ => continue,
            };
            *slot = Some(v);
        }
        Ok(Self {
            filter: filter
                .filter(|f| !f.trim().is_empty())
                .map(Filter::parse_scim)
                .transpose()?,
            page: PageRequest::from_query(start, count, max_count)?,
            projection: Projection::from_query(attrs, excluded)?,
        })
    }

    /// From a `POST /.search` body (RFC 7644 §3.4.3): `attributes`/`excludedAttributes` are
    /// arrays of strings there; `startIndex`/`count` are integers.
    pub fn from_json(body: &Value, max_count: usize) -> Result<Self, ScimError> {
        let Value::Object(o) = body else {
            return Err(ScimError::invalid_syntax(
                "a search body must be a JSON object",
            ));
        };
        if let Some((_, schemas)) = get_ci(o, "schemas") {
            let ok = schemas.as_array().is_some_and(|a| {
                a.iter().any(|s| {
                    s.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST_SCHEMA))
                })
            });
            if !ok {
                return Err(ScimError::invalid_syntax(format!(
                    "a search body's schemas must contain {SEARCH_REQUEST_SCHEMA}"
                )));
            }
        }
        let text = |name: &str| -> Result<Option<String>, ScimError> {
            match get_ci(o, name).map(|(_, v)| v) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_owned).ok_or_else(|| {
                            ScimError::invalid_value(format!("{name} must list strings"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| Some(v.join(","))),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be a string or a list"
                ))),
            }
        };
        let int = |name: &str| -> Result<Option<i64>, ScimError> {
            match get_ci(o, name).map(|(_, v)| v) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .map(Some)
                    .ok_or_else(|| ScimError::invalid_value(format!("{name} must be an integer"))),
            }
        };
        let filter = text("filter")?;
        Ok(Self {
            filter: filter
                .as_deref()
                .filter(|f| !f.trim().is_empty())
                .map(Filter::parse_scim)
                .transpose()?,
            page: PageRequest::new(int("startIndex")?, int("count")?, max_count),
            projection: Projection::from_query(
                text("attributes")?.as_deref(),
                text("excludedAttributes")?.as_deref(),
            )?,
        })
    }
}

/// Filters, sorts by `id` (a stable order), pages and projects `resources`.
pub fn list_resources(
    resources: impl IntoIterator<Item = Value>,
    request: &SearchRequest,
    schema: &ResourceSchema,
) -> ListResponse {
    let mut matching: Vec<Value> = resources
        .into_iter()
        .filter(|r| request.filter.as_ref().is_none_or(|f| f.matches(r, schema)))
        .collect();
    matching.sort_by(|a, b| {
        let id = |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_owned);
        id(a).cmp(&id(b))
    });
    let mut page = ListResponse::from_page(matching, request.page);
    for r in &mut page.resources {
        *r = request.projection.apply(r, schema);
    }
    page
}
