//! The unified IAM API's behaviour: StackOne-shaped users, groups, roles, organizations,
//! resources (shared folders) and resource users over one connection, read through the
//! directory snapshot; user updates and deletes; query parameters (`page_size`, `next`,
//! `fields`, `expand`, `filter[...]`, `raw`) and opaque cursors.
//!
//! The HTTP layer only parses, authorises and formats; everything here is callable without it.

pub mod model;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono_tz::Tz;
use lastpass::{Client, DeleteAction, Email, RawCall, UserUpdate};
use lp_types::{ConnectionId, InvalidValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::snapshot::{Directory, Snapshots};
use model::{IamGroup, IamUser};

/// Default and maximum `page_size`.
pub const DEFAULT_PAGE_SIZE: usize = 25;
pub const MAX_PAGE_SIZE: usize = 1000;

/// One connection, as the unified functions need it.
#[derive(Clone)]
pub struct Conn {
    pub id: ConnectionId,
    pub client: Client,
    pub tz: Tz,
    pub snapshots: Arc<Snapshots>,
    /// Where directory writes are announced to other replicas (`None` in a bare test setup).
    pub store: Option<crate::store::Store>,
}

/// The query parameters every unified endpoint accepts (validated; unknown ones refused).
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub page_size: usize,
    pub next: Option<String>,
    pub fields: Option<Vec<String>>,
    pub expand: Vec<String>,
    pub raw: bool,
    pub updated_after: Option<chrono::DateTime<chrono::Utc>>,
    /// `filter[email]`: users only (case-insensitive exact match).
    pub email: Option<String>,
    /// `resource_type` / `resource_id` (resource_users only).
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// `delete_action` / `action` (DELETE users only).
    pub delete_action: Option<String>,
}

/// What a given endpoint allows beyond the common parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allow {
    pub expand: &'static [&'static str],
    pub email_filter: bool,
    pub resource_query: bool,
    pub delete_action: bool,
}

fn bool_param(field: &'static str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(InvalidValue::new(field, v, "must be true or false").into()),
    }
}

impl Params {
    /// Parses a raw query string.
    pub fn parse(query: Option<&str>, allow: Allow) -> Result<Params> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| InvalidValue::new("query", query.unwrap_or(""), e.to_string()))?;
        let mut p = Params {
            page_size: DEFAULT_PAGE_SIZE,
            ..Params::default()
        };
        for (k, v) in pairs {
            match k.as_str() {
                "page_size" => {
                    p.page_size = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                        .ok_or_else(|| {
                            InvalidValue::new(
                                "page_size",
                                &v,
                                format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                            )
                        })?;
                }
                "next" | "cursor" => p.next = Some(v).filter(|s| !s.is_empty()),
                "fields" => {
                    let list: Vec<String> = v
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect();
                    p.fields = Some(list).filter(|l| !l.is_empty());
                }
                "expand" => {
                    for e in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if !allow.expand.contains(&e) {
                            return Err(InvalidValue::new(
                                "expand",
                                e,
                                format!("is not expandable here (allowed: {:?})", allow.expand),
                            )
                            .into());
                        }
                        p.expand.push(e.to_owned());
                    }
                }
                "raw" => p.raw = bool_param("raw", &v)?,
                "filter[updated_after]" | "updated_after" => {
                    p.updated_after = Some(model::parse_time("filter[updated_after]", &v)?);
                }
                "filter[email]" | "filter[primary_email_address]" if allow.email_filter => {
                    p.email = Some(v);
                }
                "resource_type" if allow.resource_query => p.resource_type = Some(v),
                "resource_id" if allow.resource_query => p.resource_id = Some(v),
                "delete_action" | "action" if allow.delete_action => p.delete_action = Some(v),
                // StackOne's provider query passthrough has no meaning for a POST-only API.
                k if k.starts_with("proxy[") => {
                    return Err(InvalidValue::new(
                        "proxy",
                        k,
                        "query passthrough is not supported: the Enterprise API takes no query \
                         parameters (use POST /unified/proxy)",
                    )
                    .into());
                }
                "page" => {
                    return Err(InvalidValue::new(
                        "page",
                        v,
                        "is deprecated and not supported: follow the `next` cursor",
                    )
                    .into());
                }
                other => {
                    return Err(
                        InvalidValue::new("query", other, "is not a known parameter here").into(),
                    );
                }
            }
        }
        Ok(p)
    }
}

/// An opaque cursor: the endpoint it belongs to and the sort key of the last item served.
#[derive(Serialize, Deserialize)]
struct Cursor {
    k: String,
    a: String,
}

pub fn encode_cursor(kind: &str, after: &str) -> String {
    let body = serde_json::to_vec(&Cursor {
        k: kind.to_owned(),
        a: after.to_owned(),
    })
    .unwrap_or_default();
    B64.encode(body)
}

/// The sort key after which the page starts; refuses cursors of other endpoints and garbage.
pub fn decode_cursor(kind: &str, raw: &str) -> Result<String> {
    let bad = || InvalidValue::new("next", raw, "is not a cursor issued by this endpoint");
    let bytes = B64.decode(raw.trim()).map_err(|_| bad())?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if c.k != kind {
        return Err(bad().into());
    }
    Ok(c.a)
}

/// The `fields=` of a request for a list or object of `T`, checked once per request (also
/// when the page is empty): unknown names are refused.
fn fields_for<T: schemars::JsonSchema>(fields: &Option<Vec<String>>) -> Result<Option<&[String]>> {
    let Some(fields) = fields else {
        return Ok(None);
    };
    let allowed = field_names::<T>();
    for f in fields {
        if !allowed.iter().any(|a| a == f) {
            return Err(InvalidValue::new(
                "fields",
                f,
                format!(
                    "is not a field of this object (fields: {})",
                    allowed.join(",")
                ),
            )
            .into());
        }
    }
    Ok(Some(fields))
}

/// Keeps only the checked `fields` (all of them when `None`).
fn project(value: Value, fields: Option<&[String]>) -> Value {
    match (value, fields) {
        (Value::Object(m), Some(fields)) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| fields.iter().any(|f| f == k))
                .collect(),
        ),
        (other, _) => other,
    }
}

/// The top-level property names of a model's JSON Schema (what `fields=` may name).
pub fn field_names<T: schemars::JsonSchema>() -> Vec<String> {
    let schema = schemars::schema_for!(T);
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// `{data, next, raw?}`.
fn list_envelope(data: Vec<Value>, next: Option<String>, raw: Option<Vec<RawCall>>) -> Value {
    let mut m = Map::new();
    m.insert("data".into(), Value::Array(data));
    m.insert("next".into(), next.map_or(Value::Null, Value::String));
    with_raw(m, raw)
}

/// `{data, raw?}`.
fn one_envelope(data: Value, raw: Option<Vec<RawCall>>) -> Value {
    let mut m = Map::new();
    m.insert("data".into(), data);
    with_raw(m, raw)
}

/// Adds `raw` (the upstream calls made, for `raw=true`) to an envelope.
fn with_raw(mut m: Map<String, Value>, raw: Option<Vec<RawCall>>) -> Value {
    if let Some(raw) = raw {
        m.insert("raw".into(), to_value(&raw));
    }
    Value::Object(m)
}

fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// A page of `items` (already sorted by `key`), after the cursor.
fn page_of<'a, T>(
    items: &'a [T],
    key: impl Fn(&T) -> String,
    kind: &str,
    p: &Params,
) -> Result<(&'a [T], Option<String>)> {
    let start = match &p.next {
        Some(c) => {
            let after = decode_cursor(kind, c)?;
            items.partition_point(|t| key(t) <= after)
        }
        None => 0,
    };
    let end = (start + p.page_size).min(items.len());
    let slice = &items[start..end];
    let next = (end < items.len())
        .then(|| slice.last().map(|t| encode_cursor(kind, &key(t))))
        .flatten();
    Ok((slice, next))
}

impl Conn {
    /// Announces a directory write made through this connection: bumps the store's
    /// `directory_version` so other replicas drop their snapshots. A failure only costs them
    /// staleness until the TTL, so it is logged, not returned.
    pub async fn announce_write(&self) {
        let Some(store) = &self.store else { return };
        self.snapshots.begin_write(&self.id);
        match store.bump_directory_version(&self.id).await {
            Ok(v) => self.snapshots.end_write(&self.id, v),
            Err(e) => {
                self.snapshots.end_write(&self.id, None);
                tracing::warn!(connection = %self.id, error = %e, "cannot record a directory change")
            }
        }
    }

    /// After a write whose effect is not known exactly (one that failed, possibly part-way or
    /// after LastPass applied it, or an action or proxied command that changed the directory):
    /// what is cached here and on other replicas may be wrong, so it is dropped.
    pub async fn distrust_directory(&self) {
        self.snapshots.invalidate(&self.id);
        self.announce_write().await;
    }

    /// Runs a direct connector action ([`crate::actions::run`]) on this connection: a write
    /// that may have changed the directory drops the snapshot, also when it failed (it may
    /// have been applied). `POST /actions/{name}` and the console both run actions so.
    pub async fn run_action(
        &self,
        name: &str,
        input: Value,
    ) -> std::result::Result<crate::actions::ActionOutput, crate::actions::ActionError> {
        let write = crate::actions::find(name).is_some_and(|a| a.write);
        let out = crate::actions::run(&self.client, name, input).await;
        if out.as_ref().map_or(write, |o| o.changed_directory) {
            self.distrust_directory().await;
        }
        out
    }

    /// The user a write names: from the cached directory when one is fresh, else one live
    /// lookup (a write never waits for a whole sweep); 404 when LastPass does not know it.
    async fn existing_user(&self, email: &Email) -> Result<lastpass::User> {
        let cached = self
            .snapshots
            .cached_directory(&self.id)
            .and_then(|d| d.user(email.as_str()).cloned());
        match cached {
            Some(u) => Ok(u),
            None => self
                .client
                .get_user(email)
                .await?
                .ok_or_else(|| Error::NotFound(format!("no user {:?}", email.as_str()))),
        }
    }

    /// The directory: cached, or swept through a tapped client for `raw=true`.
    async fn directory(&self, raw: bool) -> Result<(Arc<Directory>, Option<Vec<RawCall>>)> {
        if raw {
            let (client, tap) = self.client.tapped();
            let d = self.snapshots.sweep_now(&self.id, &client).await?;
            return Ok((d, Some(tap.take())));
        }
        Ok((
            self.snapshots.directory(&self.id, &self.client).await?,
            None,
        ))
    }

    async fn folders(
        &self,
        raw: bool,
    ) -> Result<(Arc<Vec<lastpass::SharedFolder>>, Option<Vec<RawCall>>)> {
        if raw {
            let (client, tap) = self.client.tapped();
            let f = self.snapshots.folders(&self.id, &client, true).await?;
            return Ok((f, Some(tap.take())));
        }
        Ok((
            self.snapshots
                .folders(&self.id, &self.client, false)
                .await?,
            None,
        ))
    }

    // ---- users -------------------------------------------------------------------------

    pub async fn list_users(&self, p: &Params) -> Result<Value> {
        let fields = fields_for::<IamUser>(&p.fields)?;
        let (dir, raw) = self.directory(p.raw).await?;
        let wanted = p.email.as_deref().map(str::to_lowercase);
        let start = match &p.next {
            Some(c) => dir.position_after(&decode_cursor("users", c)?),
            None => 0,
        };
        let mut data = Vec::with_capacity(p.page_size);
        let mut last = None;
        let mut more = false;
        for u in &dir.users[start..] {
            if let Some(w) = &wanted
                && u.username.to_lowercase() != *w
            {
                continue;
            }
            if data.len() == p.page_size {
                more = true;
                break;
            }
            data.push(project(to_value(&model::user(u, self.tz)), fields));
            last = Some(u.username.to_lowercase());
        }
        let next = last.filter(|_| more).map(|l| encode_cursor("users", &l));
        Ok(list_envelope(data, next, raw))
    }

    /// A user by e-mail (or LastPass numeric id). Not in the snapshot → one live lookup, so a
    /// user created a moment ago elsewhere is still found.
    pub async fn get_user(&self, id: &str, p: &Params) -> Result<Value> {
        let fields = fields_for::<IamUser>(&p.fields)?;
        let (dir, mut raw) = self.directory(p.raw).await?;
        let found = dir.user(id).or_else(|| dir.user_by_id(id)).cloned();
        let user = match found {
            Some(u) => u,
            // A LastPass numeric id that is not (or no longer) in the directory.
            None if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(Error::NotFound(format!("no user {id:?}")));
            }
            None => {
                let email = parse_user_id(id)?;
                let (client, tap) = self.client.tapped();
                let live = client.get_user(&email).await?;
                if let Some(r) = raw.as_mut() {
                    r.extend(tap.take());
                }
                match live {
                    Some(u) => {
                        let copy = u.clone();
                        self.snapshots
                            .modify_directory(&self.id, move |d| d.upsert(copy));
                        u
                    }
                    None => return Err(Error::NotFound(format!("no user {id:?}"))),
                }
            }
        };
        let v = project(to_value(&model::user(&user, self.tz)), fields);
        Ok(one_envelope(v, raw))
    }

    /// PATCH: `name` / `first_name` / `last_name` through `updateuser`, `status` through
    /// `enableuser` / `disableuser`. Other IamUser fields cannot change in LastPass and are
    /// refused by name.
    pub async fn update_user(&self, id: &str, body: Value) -> Result<Value> {
        let email = parse_user_id(id)?;
        let Value::Object(obj) = body else {
            return Err(
                InvalidValue::new("body", body.to_string(), "must be a JSON object").into(),
            );
        };
        let mut fullname: Option<String> = None;
        let mut first: Option<String> = None;
        let mut last: Option<String> = None;
        let mut status: Option<bool> = None; // Some(true) = enable
        for (k, v) in &obj {
            match k.as_str() {
                "name" => fullname = Some(string_field("name", v)?),
                "first_name" => first = Some(string_field("first_name", v)?),
                "last_name" => last = Some(string_field("last_name", v)?),
                "status" => {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Object(m) => match m.get("value") {
                            Some(Value::String(s)) => s.clone(),
                            _ => {
                                return Err(InvalidValue::new(
                                    "status.value",
                                    v.to_string(),
                                    "must be \"enabled\" or \"disabled\"",
                                )
                                .into());
                            }
                        },
                        _ => {
                            return Err(InvalidValue::new(
                                "status",
                                v.to_string(),
                                "must be {\"value\": \"enabled\"|\"disabled\"}",
                            )
                            .into());
                        }
                    };
                    status = Some(match s.as_str() {
                        "enabled" => true,
                        "disabled" => false,
                        _ => {
                            return Err(InvalidValue::new(
                                "status.value",
                                s,
                                "must be \"enabled\" or \"disabled\" (LastPass cannot set pending)",
                            )
                            .into());
                        }
                    });
                }
                // Refused fields are named, never quoted: one may carry a password.
                "passthrough" => {
                    return Err(InvalidValue::new(
                        "passthrough",
                        "…",
                        "is not supported: use POST /unified/proxy or an action",
                    )
                    .into());
                }
                other => {
                    return Err(InvalidValue::new(
                        other.to_owned(),
                        "…",
                        "cannot be changed: LastPass allows name and status here (use the \
                         lastpass_update_email action for the e-mail)",
                    )
                    .into());
                }
            }
        }
        if fullname.is_none() && first.is_none() && last.is_none() && status.is_none() {
            return Err(InvalidValue::new("body", "{}", "names nothing to change").into());
        }
        // Refuse an unknown user before any write (LastPass may answer OK for one).
        let current = self.existing_user(&email).await?;
        if fullname.is_none() && (first.is_some() || last.is_some()) {
            // LastPass keeps one `fullname`: the half not sent is kept as it is.
            let (cur_first, cur_last) = model::split_name(&current.fullname);
            let joined = [first.or(cur_first), last.or(cur_last)]
                .into_iter()
                .flatten()
                .filter(|s| !s.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            fullname = Some(joined);
        }
        let written: Result<()> = async {
            if let Some(name) = &fullname {
                let upd = UserUpdate {
                    username: email.clone(),
                    fullname: Some(name.clone()),
                    duo_username: None,
                    securid_username: None,
                };
                self.client.update_user(&upd).await?;
            }
            if let Some(enable) = status {
                // `unchanged_users` means "already so": idempotent, like StackOne's PATCH.
                let list = std::slice::from_ref(&email);
                if enable {
                    self.client.enable_users(list).await?;
                } else {
                    self.client.disable_users(list).await?;
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = written {
            self.distrust_directory().await;
            return Err(e);
        }
        let key = email.as_str().to_owned();
        self.snapshots.modify_directory(&self.id, move |d| {
            if let Some(mut u) = d.user(&key).cloned() {
                if let Some(n) = fullname {
                    u.fullname = n;
                }
                if let Some(en) = status {
                    u.disabled = !en;
                }
                d.upsert(u);
            }
        });
        self.announce_write().await;
        Ok(to_value(&model::WriteResult::ok("User updated")))
    }

    /// DELETE through `deluser`. The action is `delete_action=deactivate|remove|delete`
    /// (or 0/1/2); the default is `deactivate`, the only reversible one.
    pub async fn delete_user(&self, id: &str, p: &Params) -> Result<Value> {
        let email = parse_user_id(id)?;
        let action = parse_delete_action(p.delete_action.as_deref())?;
        self.existing_user(&email).await?;
        if let Err(e) = self.client.delete_user(&email, action).await {
            self.distrust_directory().await;
            return Err(e.into());
        }
        let key = email.as_str().to_owned();
        match action {
            DeleteAction::Deactivate => self.snapshots.modify_directory(&self.id, move |d| {
                if let Some(mut u) = d.user(&key).cloned() {
                    u.disabled = true;
                    d.upsert(u);
                }
            }),
            _ => self
                .snapshots
                .modify_directory(&self.id, move |d| _ = d.remove(&key)),
        }
        self.announce_write().await;
        let verb = match action {
            DeleteAction::Deactivate => "deactivated",
            DeleteAction::Remove => "removed from the company",
            DeleteAction::Delete => "deleted",
            DeleteAction::Uninvite => "uninvited",
        };
        Ok(to_value(&model::WriteResult::ok(format!("User {verb}"))))
    }

    // ---- groups ------------------------------------------------------------------------

    fn group_value(&self, dir: &Directory, name: &str, members: &[String], p: &Params) -> Value {
        let mut g: IamGroup = model::group(name);
        let full = p.expand.iter().any(|e| e == "users");
        g.users = Some(
            members
                .iter()
                .filter_map(|m| dir.user(m))
                .map(|u| {
                    if full {
                        to_value(&model::user(u, self.tz))
                    } else {
                        json!({
                            "id": u.username,
                            "remote_id": u.id.as_str(),
                            "primary_email_address": u.username,
                            "name": Some(&u.fullname).filter(|n| !n.is_empty()),
                        })
                    }
                })
                .collect(),
        );
        to_value(&g)
    }

    pub async fn list_groups(&self, p: &Params) -> Result<Value> {
        let fields = fields_for::<IamGroup>(&p.fields)?;
        let (dir, raw) = self.directory(p.raw).await?;
        let groups: Vec<(&String, &Vec<String>)> = dir.groups.iter().collect();
        let (slice, next) = page_of(&groups, |(n, _)| (*n).clone(), "groups", p)?;
        let data = slice
            .iter()
            .map(|(n, m)| project(self.group_value(&dir, n, m, p), fields))
            .collect();
        Ok(list_envelope(data, next, raw))
    }

    pub async fn get_group(&self, id: &str, p: &Params) -> Result<Value> {
        let fields = fields_for::<IamGroup>(&p.fields)?;
        let (dir, raw) = self.directory(p.raw).await?;
        let members = dir
            .groups
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("no group {id:?} (groups are named, and a group without members does not exist in LastPass)")))?;
        let v = project(self.group_value(&dir, id, members, p), fields);
        Ok(one_envelope(v, raw))
    }

    // ---- roles, organization, me -------------------------------------------------------

    /// The auth probe the unified connector makes before synthesised answers: a bad
    /// provisioning hash surfaces as 401/403 instead of a made-up success.
    async fn probe(&self, raw: bool) -> Result<Option<Vec<RawCall>>> {
        let (client, tap) = self.client.tapped();
        client
            .user_page(&lastpass::UserQuery::default(), 1, 0)
            .await?;
        Ok(raw.then(|| tap.take()))
    }

    pub async fn list_roles(&self, p: &Params) -> Result<Value> {
        let fields = fields_for::<model::IamRole>(&p.fields)?;
        let raw = self.probe(p.raw).await?;
        let roles: Vec<_> = model::ROLE_IDS
            .iter()
            .filter_map(|id| model::account_role(id))
            .collect();
        let (slice, next) = page_of(&roles, |r| r.id.clone(), "roles", p)?;
        let data = slice.iter().map(|r| project(to_value(r), fields)).collect();
        Ok(list_envelope(data, next, raw))
    }

    pub async fn get_role(&self, id: &str, p: &Params) -> Result<Value> {
        let fields = fields_for::<model::IamRole>(&p.fields)?;
        // Refused before the probe: only the two synthesised roles exist.
        let role = model::account_role(id).ok_or_else(|| {
            InvalidValue::new("id", id, "LastPass has two account roles: admin and basic")
        })?;
        let raw = self.probe(p.raw).await?;
        Ok(one_envelope(project(to_value(&role), fields), raw))
    }

    pub async fn list_organizations(&self, p: &Params) -> Result<Value> {
        let fields = fields_for::<model::IamOrganization>(&p.fields)?;
        let raw = self.probe(p.raw).await?;
        let orgs = [model::organization(self.client.cid())];
        let (slice, next) = page_of(&orgs, |o| o.id.clone(), "organizations", p)?;
        let data = slice.iter().map(|o| project(to_value(o), fields)).collect();
        Ok(list_envelope(data, next, raw))
    }

    pub async fn get_organization(&self, id: &str, p: &Params) -> Result<Value> {
        let fields = fields_for::<model::IamOrganization>(&p.fields)?;
        let raw = self.probe(p.raw).await?;
        let cid = self.client.cid();
        if id != cid.to_string() {
            return Err(Error::NotFound(format!(
                "no organization {id:?}: this connection's account is {cid}"
            )));
        }
        let v = project(to_value(&model::organization(cid)), fields);
        Ok(one_envelope(v, raw))
    }

    pub async fn me(&self, p: &Params) -> Result<Value> {
        let raw = self.probe(p.raw).await?;
        let me = model::IamCredentials {
            name: self.client.cid().to_string(),
            auth_type: model::EnumValue::new("api_key", "provhash"),
            scopes: Vec::new(),
            permissions: Vec::new(),
            last_accessed_at: Some(model::now_rfc3339()),
            user: None,
        };
        Ok(one_envelope(to_value(&me), raw))
    }

    pub async fn list_resource_types(&self, p: &Params) -> Result<Value> {
        let raw = self.probe(p.raw).await?;
        Ok(list_envelope(
            vec![Value::String(model::RESOURCE_TYPE.into())],
            None,
            raw,
        ))
    }

    // ---- resources (shared folders) -----------------------------------------------------

    pub async fn list_resources(&self, p: &Params) -> Result<Value> {
        let fields = fields_for::<model::IamResource>(&p.fields)?;
        let (folders, raw) = self.folders(p.raw).await?;
        let mut sorted: Vec<&lastpass::SharedFolder> = folders.iter().collect();
        sorted.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        let (slice, next) = page_of(&sorted, |f| f.id.as_str().to_owned(), "resources", p)?;
        let data = slice
            .iter()
            .map(|f| project(to_value(&model::resource(f)), fields))
            .collect();
        Ok(list_envelope(data, next, raw))
    }

    pub async fn get_resource(&self, id: &str, p: &Params) -> Result<Value> {
        let fields = fields_for::<model::IamResource>(&p.fields)?;
        let (folders, raw) = self.folders(p.raw).await?;
        let f = folders
            .iter()
            .find(|f| f.id.as_str() == id)
            .ok_or_else(|| Error::NotFound(format!("no shared folder {id:?}")))?;
        Ok(one_envelope(
            project(to_value(&model::resource(f)), fields),
            raw,
        ))
    }

    /// Folder members with their folder role. Both `resource_type` and `resource_id` are
    /// required (StackOne's rule).
    pub async fn list_resource_users(&self, p: &Params) -> Result<Value> {
        let fields = fields_for::<model::ResourceUser>(&p.fields)?;
        let rt = p
            .resource_type
            .as_deref()
            .ok_or_else(|| InvalidValue::new("resource_type", "", "is required (shared_folder)"))?;
        if rt != model::RESOURCE_TYPE && rt != model::RESOURCE_TYPE_ALIAS {
            return Err(InvalidValue::new(
                "resource_type",
                rt,
                "LastPass has one resource type: shared_folder",
            )
            .into());
        }
        let rid = p
            .resource_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                InvalidValue::new("resource_id", "", "is required (a shared folder id)")
            })?;
        let (folders, raw) = self.folders(p.raw).await?;
        let folder = folders
            .iter()
            .find(|f| f.id.as_str() == rid)
            .ok_or_else(|| Error::NotFound(format!("no shared folder {rid:?}")))?;
        // Member details come from the snapshot when it is already there; a cold snapshot is
        // not swept just for names.
        let dir = self.snapshots.cached_directory(&self.id);
        let mut members: Vec<&lastpass::FolderMember> = folder.users.iter().collect();
        members.sort_by_cached_key(|m| m.username.to_lowercase());
        let (slice, next) = page_of(
            &members,
            |m| m.username.to_lowercase(),
            &format!("resource_users:{rid}"),
            p,
        )?;
        let data = slice
            .iter()
            .map(|m| {
                let u = dir.as_ref().and_then(|d| d.user(&m.username));
                let is_user = u.is_some() || m.username.contains('@');
                let ru = model::ResourceUser {
                    id: m.username.clone(),
                    remote_id: u.map_or_else(|| m.username.clone(), |u| u.id.as_str().to_owned()),
                    primary_email_address: is_user.then(|| m.username.clone()),
                    username: m.username.clone(),
                    name: u.map(|u| u.fullname.clone()).filter(|n| !n.is_empty()),
                    member_type: if is_user { "user" } else { "group" }.into(),
                    status: u.map(model::status_of),
                    roles: vec![model::folder_role(folder, m)],
                    groups: u
                        .map(|u| u.groups.iter().map(|g| model::group(g)).collect())
                        .unwrap_or_default(),
                    permissions: Vec::new(),
                };
                project(to_value(&ru), fields)
            })
            .collect();
        Ok(list_envelope(data, next, raw))
    }
}

fn string_field(field: &'static str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(InvalidValue::new(field, other.to_string(), "must be a string").into()),
    }
}

/// A user id in a path: an e-mail address.
pub fn parse_user_id(id: &str) -> Result<Email> {
    Email::parse_field("id", id).map_err(Error::from)
}

/// `deactivate|remove|delete` or `0|1|2`; default `deactivate`.
pub fn parse_delete_action(v: Option<&str>) -> Result<DeleteAction> {
    Ok(match v.map(str::trim) {
        None | Some("") | Some("deactivate") | Some("0") => DeleteAction::Deactivate,
        Some("remove") | Some("1") => DeleteAction::Remove,
        Some("delete") | Some("2") => DeleteAction::Delete,
        Some(other) => {
            return Err(InvalidValue::new(
                "delete_action",
                other,
                "must be deactivate (0), remove (1) or delete (2)",
            )
            .into());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_endpoints_and_garbage() {
        let c = encode_cursor("users", "a@x.com");
        assert_eq!(decode_cursor("users", &c).unwrap(), "a@x.com");
        assert!(decode_cursor("groups", &c).is_err());
        for bad in ["", "!!!", "eyJ4IjoxfQ", &B64.encode(b"[1,2]")] {
            let e = decode_cursor("users", bad).unwrap_err().to_string();
            assert!(e.contains("next"), "{e}");
        }
    }

    #[test]
    fn params_validate_and_name_the_field() {
        let allow = Allow {
            expand: &["roles", "groups"],
            email_filter: true,
            ..Allow::default()
        };
        let p = Params::parse(
            Some("page_size=10&fields=id,name&expand=roles&raw=true&filter%5Bemail%5D=A%40x.com&filter%5Bupdated_after%5D=2026-01-01T00:00:00Z"),
            allow,
        )
        .unwrap();
        assert_eq!(p.page_size, 10);
        assert_eq!(p.fields.as_deref().unwrap(), ["id", "name"]);
        assert!(p.raw);
        assert_eq!(p.email.as_deref(), Some("A@x.com"));
        assert!(p.updated_after.is_some());
        for (q, field) in [
            ("page_size=0", "page_size"),
            ("page_size=abc", "page_size"),
            ("page_size=1001", "page_size"),
            ("expand=policies", "expand"),
            ("raw=maybe", "raw"),
            (
                "filter%5Bupdated_after%5D=yesterday",
                "filter[updated_after]",
            ),
            ("bogus=1", "query"),
            ("resource_type=x", "query"),
        ] {
            let e = Params::parse(Some(q), allow).unwrap_err().to_string();
            assert!(e.contains(field), "{q}: {e}");
        }
    }

    #[test]
    fn paging_walks_every_item_once() {
        let items: Vec<String> = (0..53).map(|i| format!("k{i:03}")).collect();
        let mut p = Params {
            page_size: 10,
            ..Params::default()
        };
        let mut seen = Vec::new();
        loop {
            let (slice, next) = page_of(&items, |s| s.clone(), "t", &p).unwrap();
            seen.extend(slice.iter().cloned());
            match next {
                Some(n) => p.next = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn delete_actions() {
        assert_eq!(parse_delete_action(None).unwrap(), DeleteAction::Deactivate);
        assert_eq!(
            parse_delete_action(Some("2")).unwrap(),
            DeleteAction::Delete
        );
        assert_eq!(
            parse_delete_action(Some("remove")).unwrap(),
            DeleteAction::Remove
        );
        assert!(
            parse_delete_action(Some("nuke"))
                .unwrap_err()
                .to_string()
                .contains("delete_action")
        );
    }
}
