//! The SCIM provider over one LastPass connection: Users and Groups read from LastPass and the
//! store, and written to both.
//!
//! # Where each attribute lives
//!
//! | SCIM | LastPass | store |
//! |---|---|---|
//! | `id` | — | `scim_users.id` / `scim_groups.id` (random UUIDs, never reused) |
//! | `userName` | username (`updateemail` to change it) | the client's spelling; a pending change |
//! | `name`, `displayName` | `fullname` (`updateuser`) | the parts LastPass cannot hold |
//! | `active` | disabled (`enableuser` / `disableuser`) | as last set, for invitees LastPass does not show |
//! | `externalId`, `emails`, enterprise attributes, … | — | `attributes` |
//! | `groups` (read-only), Group `members` | group memberships (`batchchangegrp`) | — |
//! | Group `displayName` | the group name | `scim_groups.display_name` |
//!
//! A LastPass user or group seen for the first time gets a row (and so an id) then.
//!
//! # Groups LastPass cannot manage
//!
//! LastPass has no command that creates, renames or deletes a group. A group without members
//! lives only in the store until it gets one; the first member is added with `batchadd` (an
//! update of an existing user whose `groups` list names the new group creates it), later ones
//! with `batchchangegrp`. A rename moves every member from the old name to the new one; a delete
//! removes every membership (the emptied LastPass group stays, unlisted).
//!
//! # Upstream calls
//!
//! Reads use the connection's directory snapshot when it is fresh. Otherwise a lookup of one user
//! (`GET /Users/{id}`, `filter=userName eq "…"`) costs one `getuserdata`; a listing with any
//! other filter sweeps the directory. lpbridge's own writes patch the snapshot in place, so a
//! provisioning burst keeps it fresh.
//!
//! Writes on one connection are serialised in this process; replicas sharing a store rely on the
//! store's unique indexes for ids and names.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use lastpass::{
    DeleteAction, Email, GroupChange, GroupName, NewUser, User, UserLookup, UserUpdate,
};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::error::ScimError;
use super::list::{ListResponse, SearchRequest, list_resources};
use super::schema::ResourceSchema;
use super::{
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PatchRequest, USER_SCHEMA, replace_resource,
    resource_from_request, strip_nulls,
};
use crate::snapshot::{Directory, bare_invitee};
use crate::store::Store;
use crate::store::scim::{ScimGroupRow, ScimUserRow};
use crate::unified::Conn;

/// What `DELETE /Users/{id}` does to an account (an invitation is always withdrawn).
pub const DEFAULT_DELETE_ACTION: DeleteAction = DeleteAction::Deactivate;

/// The provider for one connection.
#[derive(Clone)]
pub struct Provider {
    pub conn: Conn,
    pub store: Store,
    /// The `/scim/v2` URL as clients reach it, for `meta.location` and `$ref`.
    pub base: String,
    pub delete_action: DeleteAction,
    /// The domain for users whose `userName` is not an e-mail and who have no `emails`.
    pub email_domain: Option<String>,
    /// Serialises this connection's writes in this process.
    pub write_lock: Arc<tokio::sync::Mutex<()>>,
}

type Result<T> = std::result::Result<T, ScimError>;

/// What LastPass says of one username.
#[derive(Debug, Clone)]
enum Live {
    User(Box<User>),
    /// A pending invitation: LastPass shows its name and its memberships only.
    Invited {
        groups: Vec<String>,
    },
    Absent,
}

impl Live {
    fn from_directory(dir: &Directory, username: &str) -> Live {
        match dir.user(username) {
            Some(u) if u.invited => Live::Invited {
                groups: u.groups.clone(),
            },
            Some(u) => Live::User(Box::new(u.clone())),
            None => Live::Absent,
        }
    }

    fn groups(&self) -> &[String] {
        match self {
            Live::User(u) => &u.groups,
            Live::Invited { groups } => groups,
            Live::Absent => &[],
        }
    }

    fn exists(&self) -> bool {
        !matches!(self, Live::Absent)
    }
}

fn from_app(e: crate::error::Error) -> ScimError {
    let (status, _, message, _, _) = crate::http::error::classify(&e);
    match status.as_u16() {
        400 => ScimError::invalid_value(message),
        409 => ScimError::uniqueness(message),
        s => ScimError::new(s, None, message),
    }
}

fn lp(e: lastpass::Error) -> ScimError {
    from_app(e.into())
}

fn db(e: crate::store::StoreError) -> ScimError {
    from_app(e.into())
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A weak ETag over the resource's content (without `meta`).
fn version_of(resource: &Value) -> String {
    let mut copy = resource.clone();
    if let Value::Object(m) = &mut copy {
        m.remove("meta");
    }
    let digest = Sha256::digest(copy.to_string().as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// The full name SCIM attributes stand for: `displayName`, else `name.formatted`, else the
/// given and family names joined.
fn fullname_of(resource: &Value) -> String {
    if let Some(d) = resource.get("displayName").and_then(Value::as_str)
        && !d.trim().is_empty()
    {
        return d.trim().to_owned();
    }
    let name = resource.get("name");
    if let Some(f) = name
        .and_then(|n| n.get("formatted"))
        .and_then(Value::as_str)
        .filter(|f| !f.trim().is_empty())
    {
        return f.trim().to_owned();
    }
    ["givenName", "middleName", "familyName"]
        .iter()
        .filter_map(|k| name.and_then(|n| n.get(*k)).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `userName` (required by the schema check before this).
fn scim_user_name(resource: &Value) -> Result<String> {
    resource
        .get("userName")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ScimError::invalid_value("userName is required"))
}

/// The e-mail a new user gets in LastPass: `userName` when it is an e-mail address, else the
/// primary (or first) of `emails`, else `<userName>@<domain>` when a domain is configured.
fn lastpass_email(resource: &Value, domain: Option<&str>) -> Result<Email> {
    let user_name = scim_user_name(resource)?;
    if let Ok(e) = Email::parse(&user_name) {
        return Ok(e);
    }
    let emails = resource
        .get("emails")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let primary = emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str);
    match primary {
        Some(v) => Email::parse(v.trim()).map_err(|e| {
            ScimError::invalid_value(format!(
                "emails value {v:?} is not an e-mail address LastPass accepts: {}",
                e.reason
            ))
        }),
        None => match domain {
            Some(d) => Email::parse(&format!("{}@{d}", user_name.to_lowercase())).map_err(|e| {
                ScimError::invalid_value(format!(
                    "userName {user_name:?} does not make an e-mail address with the \
                     configured domain {d:?}: {}",
                    e.reason
                ))
            }),
            None => Err(ScimError::invalid_value(format!(
                "userName {user_name:?} is not an e-mail address and no e-mail is given in \
                 emails: a LastPass user needs one (or configure scim_email_domain)"
            ))),
        },
    }
}

fn group_name(name: &str) -> Result<GroupName> {
    GroupName::new(name.trim()).map_err(|e| {
        ScimError::invalid_value(format!(
            "displayName {name:?} is not a LastPass group name: {}",
            e.reason
        ))
    })
}

/// `body` with `active` set to `default` when it has none (`active` is required in the schema
/// because LastPass always has a status, but clients may leave it out).
fn with_active(body: &Value, default: bool) -> Value {
    let mut body = body.clone();
    if let Value::Object(m) = &mut body
        && super::get_ci(m, "active").is_none_or(|(_, v)| v.is_null())
    {
        m.insert("active".into(), Value::Bool(default));
    }
    body
}

fn active_of(resource: &Value) -> bool {
    resource
        .get("active")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// Records a written resource in its row.
fn record(row: &mut ScimUserRow, user_name: &str, fullname: &str, active: bool, resource: &Value) {
    row.user_name = user_name.to_lowercase();
    row.fullname = Some(fullname.to_owned());
    row.active = active;
    row.external_id = resource
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    row.attributes = stored_part(resource);
    row.updated_at = Utc::now();
}

/// Whether the row's `userName` is its LastPass e-mail (or the pending new one), so that the
/// e-mail follows `userName`; otherwise `userName` is a login name of the client's own.
fn follows_email(row: &ScimUserRow) -> bool {
    row.user_name == row.username || row.pending_username.as_deref() == Some(row.user_name.as_str())
}

/// What is kept in `scim_users.attributes`: the resource minus what LastPass or the row holds.
fn stored_part(resource: &Value) -> Value {
    let mut copy = resource.clone();
    if let Value::Object(m) = &mut copy {
        for k in [
            "id",
            "meta",
            "groups",
            "active",
            "password",
            "externalId",
            "schemas",
        ] {
            m.remove(k);
        }
    }
    copy
}

impl Provider {
    fn id(&self) -> &lp_types::ConnectionId {
        &self.conn.id
    }

    fn location(&self, kind: &str, id: &str) -> String {
        format!("{}/{kind}/{id}", self.base)
    }

    /// The directory when it is fresh, without any upstream call.
    fn fresh_directory(&self) -> Option<Arc<Directory>> {
        self.conn.snapshots.cached_directory(self.id())
    }

    /// The directory, swept when stale.
    async fn directory(&self) -> Result<Arc<Directory>> {
        self.conn
            .snapshots
            .directory(self.id(), &self.conn.client)
            .await
            .map_err(lp)
    }

    /// What LastPass says of one username: from the fresh directory, else one `getuserdata`.
    async fn live(&self, username: &str) -> Result<Live> {
        if let Some(d) = self.fresh_directory() {
            return Ok(Live::from_directory(&d, username));
        }
        let Ok(email) = Email::parse(username) else {
            return Ok(Live::Absent);
        };
        Ok(
            match self.conn.client.lookup_user(&email).await.map_err(lp)? {
                UserLookup::User(u) => Live::User(u),
                UserLookup::Invited(_) => Live::Invited { groups: Vec::new() },
                UserLookup::Absent => Live::Absent,
            },
        )
    }

    /// The row's LastPass state, following a pending e-mail change LastPass has completed.
    async fn live_for_row(&self, row: &mut ScimUserRow) -> Result<Live> {
        let live = self.live(&row.username).await?;
        if live.exists() {
            return Ok(live);
        }
        let Some(pending) = row.pending_username.clone() else {
            return Ok(Live::Absent);
        };
        let live = self.live(&pending).await?;
        if live.exists() {
            row.username = pending;
            row.pending_username = None;
            row.updated_at = Utc::now();
            self.store
                .update_scim_user(self.id(), row)
                .await
                .map_err(db)?;
        }
        Ok(live)
    }

    /// Group name (lower-cased) → group row, creating rows for LastPass groups without one.
    async fn group_rows(&self, names: &[&String]) -> Result<HashMap<String, ScimGroupRow>> {
        let load = || async {
            Ok::<_, ScimError>(
                self.store
                    .scim_groups(self.id())
                    .await
                    .map_err(db)?
                    .into_iter()
                    .map(|r| (r.display_name.to_lowercase(), r))
                    .collect::<HashMap<_, _>>(),
            )
        };
        let rows = load().await?;
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !rows.contains_key(&n.to_lowercase()))
            .map(|n| (*n).clone())
            .collect();
        if missing.is_empty() {
            return Ok(rows);
        }
        self.store
            .ensure_scim_groups(self.id(), &missing)
            .await
            .map_err(db)?;
        load().await
    }

    // ---- users: reading ---------------------------------------------------------------

    /// The SCIM resource of a row and its LastPass state.
    fn user_resource(
        &self,
        row: &ScimUserRow,
        live: &Live,
        groups: &HashMap<String, ScimGroupRow>,
    ) -> Value {
        let mut r = match &row.attributes {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let lp_name = match live {
            Live::User(u) => u.username.clone(),
            _ => row.username.clone(),
        };
        // An e-mail userName follows LastPass (and a pending change); another login name is
        // the client's own.
        let email_form = follows_email(row);
        // LastPass's e-mail as it will be once a pending change completes.
        let email_shown = row.pending_username.clone().unwrap_or(lp_name);
        let shown = if email_form {
            email_shown.clone()
        } else {
            row.user_name.clone()
        };
        let keep_spelling = r
            .get("userName")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case(&shown));
        if !keep_spelling {
            r.insert("userName".into(), Value::String(shown.clone()));
        }
        if let Live::User(u) = live
            && row.fullname.as_deref() != Some(u.fullname.as_str())
        {
            // Changed outside SCIM (or never seen): LastPass's full name wins.
            let (first, last) = crate::unified::model::split_name(&u.fullname);
            if u.fullname.trim().is_empty() {
                r.remove("displayName");
                r.remove("name");
            } else {
                r.insert("displayName".into(), Value::String(u.fullname.clone()));
                let mut name = Map::new();
                name.insert("formatted".into(), Value::String(u.fullname.clone()));
                if let Some(f) = first {
                    name.insert("givenName".into(), Value::String(f));
                }
                if let Some(l) = last {
                    name.insert("familyName".into(), Value::String(l));
                }
                r.insert("name".into(), Value::Object(name));
            }
        }
        // A user SCIM never wrote shows its LastPass e-mail.
        if row.attributes.as_object().is_none_or(Map::is_empty) && !r.contains_key("emails") {
            r.insert(
                "emails".into(),
                json!([{"value": email_shown, "type": "work", "primary": true}]),
            );
        }
        let active = match live {
            Live::User(u) => !u.disabled,
            _ => row.active,
        };
        r.insert("active".into(), Value::Bool(active));
        if let Some(x) = &row.external_id {
            r.insert("externalId".into(), Value::String(x.clone()));
        }
        let member_of: Vec<Value> = live
            .groups()
            .iter()
            .filter_map(|g| groups.get(&g.to_lowercase()))
            .map(|g| {
                json!({
                    "value": g.id,
                    "$ref": self.location("Groups", &g.id),
                    "display": g.display_name,
                    "type": "direct",
                })
            })
            .collect();
        if !member_of.is_empty() {
            r.insert("groups".into(), Value::Array(member_of));
        }
        let mut schemas = vec![Value::String(USER_SCHEMA.into())];
        if r.contains_key(ENTERPRISE_USER_SCHEMA) {
            schemas.push(Value::String(ENTERPRISE_USER_SCHEMA.into()));
        }
        r.insert("schemas".into(), Value::Array(schemas));
        r.insert("id".into(), Value::String(row.id.clone()));
        let mut v = Value::Object(r);
        strip_nulls(&mut v);
        let version = version_of(&v);
        if let Value::Object(m) = &mut v {
            m.insert(
                "meta".into(),
                json!({
                    "resourceType": "User",
                    "created": ts(row.created_at),
                    "lastModified": ts(row.updated_at),
                    "location": self.location("Users", &row.id),
                    "version": version,
                }),
            );
        }
        v
    }

    /// The resource of a row and its LastPass state, with its groups' ids.
    async fn render_user(&self, row: &ScimUserRow, live: &Live) -> Result<Value> {
        let names: Vec<&String> = live.groups().iter().collect();
        let groups = self.group_rows(&names).await?;
        Ok(self.user_resource(row, live, &groups))
    }

    /// Patches an account's name and status into the snapshot after lpbridge wrote them.
    fn patch_account(&self, live: Live, fullname: String, active: bool) -> Live {
        match live {
            Live::User(mut u) => {
                u.fullname = fullname;
                u.disabled = !active;
                let copy = (*u).clone();
                self.conn
                    .snapshots
                    .modify_directory(self.id(), move |d| d.upsert(copy));
                Live::User(u)
            }
            other => other,
        }
    }

    /// A user by id: its row, LastPass state and resource; 404 when either is gone.
    async fn load_user(&self, id: &str) -> Result<(ScimUserRow, Live, Value)> {
        let not_found = || ScimError::not_found(format!("no User with id {id:?}"));
        let mut row = self
            .store
            .scim_user(self.id(), id)
            .await
            .map_err(db)?
            .filter(|r| r.deleted_at.is_none())
            .ok_or_else(not_found)?;
        let live = self.live_for_row(&mut row).await?;
        if !live.exists() {
            return Err(not_found());
        }
        let resource = self.render_user(&row, &live).await?;
        Ok((row, live, resource))
    }

    pub async fn get_user(&self, id: &str) -> Result<Value> {
        Ok(self.load_user(id).await?.2)
    }

    /// `GET /Users` and `POST /Users/.search`.
    pub async fn list_users(&self, req: &SearchRequest) -> Result<ListResponse> {
        let schema = ResourceSchema::USER;
        // `userName eq "x"` (what Okta and Entra send) needs one user, not the directory.
        if let Some(name) = req.filter.as_ref().and_then(|f| f.user_name_eq()) {
            let row = self
                .store
                .scim_user_by_user_name(self.id(), &name)
                .await
                .map_err(db)?;
            let resources = match row {
                Some(row) if row.deleted_at.is_some() => Vec::new(),
                Some(row) => match self.load_user(&row.id).await {
                    Ok((_, _, r)) => vec![r],
                    Err(e) if e.status == 404 => Vec::new(),
                    Err(e) => return Err(e),
                },
                // A LastPass user SCIM has not seen yet (unless another row holds the name).
                None => match self.live(&name).await? {
                    live if live.exists()
                        && self
                            .store
                            .scim_user_by_lastpass_name(self.id(), &name)
                            .await
                            .map_err(db)?
                            .is_none() =>
                    {
                        self.store
                            .ensure_scim_users(self.id(), std::slice::from_ref(&name))
                            .await
                            .map_err(db)?;
                        match self
                            .store
                            .scim_user_by_user_name(self.id(), &name)
                            .await
                            .map_err(db)?
                        {
                            Some(row) => vec![self.render_user(&row, &live).await?],
                            None => Vec::new(),
                        }
                    }
                    _ => Vec::new(),
                },
            };
            return Ok(list_resources(resources, req, &schema));
        }
        let dir = self.directory().await?;
        let mut rows = self.store.scim_users(self.id()).await.map_err(db)?;
        let known: BTreeSet<String> = rows
            .iter()
            .flat_map(|r| std::iter::once(r.username.clone()).chain(r.pending_username.clone()))
            .collect();
        let missing: Vec<String> = dir
            .users
            .iter()
            .map(|u| u.username.to_lowercase())
            .filter(|u| !known.contains(u))
            .collect();
        if !missing.is_empty() {
            self.store
                .ensure_scim_users(self.id(), &missing)
                .await
                .map_err(db)?;
            rows = self.store.scim_users(self.id()).await.map_err(db)?;
        }
        let names: Vec<&String> = dir.groups.keys().collect();
        let groups = self.group_rows(&names).await?;
        let resources: Vec<Value> = rows
            .iter()
            .filter(|r| r.deleted_at.is_none())
            .filter_map(|r| {
                let mut live = Live::from_directory(&dir, &r.username);
                if !live.exists()
                    && let Some(p) = &r.pending_username
                {
                    live = Live::from_directory(&dir, p);
                }
                live.exists().then(|| self.user_resource(r, &live, &groups))
            })
            .collect();
        Ok(list_resources(resources, req, &schema))
    }

    // ---- users: writing ---------------------------------------------------------------

    /// `POST /Users`.
    pub async fn create_user(&self, body: &Value) -> Result<Value> {
        let schema = ResourceSchema::USER;
        let resource = resource_from_request(&with_active(body, true), &schema)?;
        let user_name = scim_user_name(&resource)?;
        let email = lastpass_email(&resource, self.email_domain.as_deref())?;
        let _guard = self.write_lock.lock().await;
        let key = email.as_str().to_lowercase();
        // Deleted through SCIM with another e-mail: the name is free again, and that row is
        // dropped once this user is written (a refused create leaves it as it was).
        let freed = self
            .store
            .scim_user_by_user_name(self.id(), &user_name)
            .await
            .map_err(db)?
            .filter(|r| r.username != key);
        if let Some(other) = freed.as_ref().filter(|r| r.deleted_at.is_none()) {
            return Err(ScimError::uniqueness(format!(
                "a User with userName {user_name:?} exists (id {})",
                other.id
            )));
        }
        let existing = self
            .store
            .scim_user_by_lastpass_name(self.id(), &key)
            .await
            .map_err(db)?;
        let live = self.live(&key).await?;
        if let Some(row) = existing.as_ref().filter(|r| r.deleted_at.is_none())
            && live.exists()
        {
            return Err(ScimError::uniqueness(format!(
                "a User with userName {:?} exists (id {})",
                user_name, row.id
            )));
        }
        if live.exists() && existing.is_none() {
            return Err(ScimError::uniqueness(format!(
                "LastPass already has a user {:?}",
                email.as_str()
            )));
        }
        let fullname = fullname_of(&resource);
        let active = active_of(&resource);
        let is_new = existing.is_none();
        let mut row = match existing {
            // Deleted through SCIM (LastPass kept it deactivated), or gone from LastPass: the
            // id is kept, so an identity provider that re-creates the user finds it again.
            Some(mut r) => {
                r.deleted_at = None;
                r.pending_username = None;
                r.username = key.clone();
                r.created_at = Utc::now();
                r
            }
            None => ScimUserRow::new(&key),
        };
        let written: Result<()> = async {
            match &live {
                Live::Absent => {
                    let mut nu = NewUser::new(email.clone());
                    nu.fullname = Some(fullname.clone()).filter(|f| !f.is_empty());
                    // Okta sends a password even without password sync: it is dropped, and
                    // LastPass invites the user.
                    self.conn.client.batch_add(&[nu]).await.map_err(lp)?;
                }
                Live::User(u) => {
                    if u.fullname != fullname {
                        self.update_fullname(&email, &fullname).await?;
                    }
                }
                Live::Invited { .. } => {}
            }
            let was_active = match &live {
                Live::User(u) => !u.disabled,
                _ => true,
            };
            if active != was_active {
                self.set_active(&email, active).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = written {
            self.conn.distrust_directory().await;
            return Err(e);
        }
        record(&mut row, &user_name, &fullname, active, &resource);
        if let Some(other) = freed.filter(|o| o.id != row.id) {
            self.store
                .delete_scim_user(self.id(), &other.id)
                .await
                .map_err(db)?;
        }
        let saved = if is_new {
            self.store.insert_scim_user(self.id(), &row).await
        } else {
            self.store.update_scim_user(self.id(), &row).await
        }
        .map_err(db)?;
        if !saved {
            // Only another row with the same names can refuse it: a concurrent create.
            return Err(ScimError::uniqueness(format!(
                "a User with userName {user_name:?} was created concurrently"
            )));
        }
        let new_live = match live {
            Live::Absent | Live::Invited { .. } => {
                let mut u = bare_invitee(email.as_str().to_owned());
                u.fullname = fullname;
                u.disabled = !active;
                self.conn
                    .snapshots
                    .modify_directory(self.id(), move |d| d.upsert(u));
                Live::Invited { groups: Vec::new() }
            }
            user => self.patch_account(user, fullname, active),
        };
        self.conn.announce_write().await;
        self.render_user(&row, &new_live).await
    }

    async fn update_fullname(&self, email: &Email, fullname: &str) -> Result<()> {
        let upd = UserUpdate {
            username: email.clone(),
            fullname: Some(fullname.to_owned()),
            duo_username: None,
            securid_username: None,
        };
        self.conn.client.update_user(&upd).await.map_err(lp)
    }

    async fn set_active(&self, email: &Email, active: bool) -> Result<()> {
        let list = std::slice::from_ref(email);
        if active {
            self.conn.client.enable_users(list).await.map_err(lp)?;
        } else {
            self.conn.client.disable_users(list).await.map_err(lp)?;
        }
        Ok(())
    }

    /// `PUT /Users/{id}`.
    pub async fn replace_user(&self, id: &str, body: &Value) -> Result<Value> {
        let _guard = self.write_lock.lock().await;
        let (row, live, current) = self.load_user(id).await?;
        let body = with_active(body, active_of(&current));
        let next = replace_resource(&current, &body, &ResourceSchema::USER)?;
        self.write_user(row, live, &current, next).await
    }

    /// `PATCH /Users/{id}`.
    pub async fn patch_user(&self, id: &str, body: &Value) -> Result<Value> {
        let patch = PatchRequest::from_json(body)?;
        let _guard = self.write_lock.lock().await;
        let (row, live, current) = self.load_user(id).await?;
        let next = patch.apply(&current, &ResourceSchema::USER)?;
        self.write_user(row, live, &current, next).await
    }

    /// Applies the difference between `current` and `next` to LastPass, then to the store.
    async fn write_user(
        &self,
        mut row: ScimUserRow,
        live: Live,
        current: &Value,
        next: Value,
    ) -> Result<Value> {
        let old_name = scim_user_name(current)?;
        let new_name = scim_user_name(&next)?;
        let renamed = !old_name.eq_ignore_ascii_case(&new_name);
        // LastPass's e-mail follows userName only while userName is that e-mail.
        let email_form = follows_email(&row);
        // A login name that is not an e-mail leaves LastPass's e-mail as it is.
        let new_email = if renamed && email_form {
            Email::parse(&new_name).ok()
        } else {
            None
        };
        if renamed {
            self.check_rename(&row, &live, &new_name, new_email.as_ref())
                .await?;
        }
        let fullname = fullname_of(&next);
        let (cur_fullname, cur_active) = match &live {
            Live::User(u) => (u.fullname.clone(), !u.disabled),
            _ => (row.fullname.clone().unwrap_or_default(), row.active),
        };
        // `active` removed by a PATCH: LastPass always has a status, so it stays.
        let active = next
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(cur_active);
        // LastPass's own name for the account (the old one until a rename completes).
        let lp_email = match &live {
            Live::User(u) => Email::parse(&u.username).map_err(|e| {
                ScimError::internal(format!("LastPass username {:?}: {}", u.username, e.reason))
            })?,
            _ => Email::parse(&row.username).map_err(|e| {
                ScimError::internal(format!("stored username {:?}: {}", row.username, e.reason))
            })?,
        };
        let mut applied_rename = false;
        let written: Result<()> = async {
            if let Some(new_email) = &new_email {
                self.conn
                    .client
                    .update_email(&lp_email, new_email)
                    .await
                    .map_err(|e| match &e {
                        lastpass::Error::Failed { message, .. }
                            if message.contains("not activated") =>
                        {
                            ScimError::mutability(format!(
                                "userName cannot change from {old_name:?} to {new_name:?}: \
                                 LastPass changes the e-mail of an activated account only, and \
                                 this user has not accepted the invitation yet (LastPass: \
                                 {message})"
                            ))
                        }
                        _ => lp(e),
                    })?;
                applied_rename = true;
            }
            if fullname != cur_fullname {
                self.update_fullname(&lp_email, &fullname).await?;
            }
            if active != cur_active {
                self.set_active(&lp_email, active).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = &written {
            self.conn.distrust_directory().await;
            if !applied_rename {
                return Err(e.clone());
            }
        }
        if applied_rename {
            row.pending_username = Some(new_name.to_lowercase());
            row.user_name = new_name.to_lowercase();
        }
        if written.is_ok() {
            record(&mut row, &new_name, &fullname, active, &next);
        }
        row.updated_at = Utc::now();
        let saved = self
            .store
            .update_scim_user(self.id(), &row)
            .await
            .map_err(db)?;
        // Saved what LastPass applied (the e-mail change) before reporting the failure.
        written?;
        if !saved {
            // Another replica took the userName (or deleted the user) meanwhile.
            self.conn.distrust_directory().await;
            return Err(ScimError::uniqueness(format!(
                "LastPass applied the change, but userName {new_name:?} was taken (or the \
                 User deleted) by a concurrent request; GET the User and retry"
            )));
        }
        let new_live = self.patch_account(live, fullname, active);
        self.conn.announce_write().await;
        self.render_user(&row, &new_live).await
    }

    /// A new `userName` must be free in the store and, when LastPass's e-mail follows it, in
    /// LastPass; an invitee's e-mail cannot change.
    async fn check_rename(
        &self,
        row: &ScimUserRow,
        live: &Live,
        new_name: &str,
        new_email: Option<&Email>,
    ) -> Result<()> {
        if let Some(other) = self
            .store
            .scim_user_by_user_name(self.id(), new_name)
            .await
            .map_err(db)?
            .filter(|o| o.id != row.id)
        {
            return Err(ScimError::uniqueness(format!(
                "userName {new_name:?} belongs to User {}",
                other.id
            )));
        }
        let Some(new_email) = new_email else {
            return Ok(());
        };
        if matches!(live, Live::Invited { .. }) {
            return Err(ScimError::mutability(format!(
                "userName cannot change to {new_name:?}: LastPass changes the e-mail of an \
                 activated account only, and this user has not accepted the invitation yet"
            )));
        }
        let key = new_email.as_str().to_lowercase();
        if self
            .store
            .scim_user_by_lastpass_name(self.id(), &key)
            .await
            .map_err(db)?
            .is_some_and(|o| o.id != row.id)
            || self.live(&key).await?.exists()
        {
            return Err(ScimError::uniqueness(format!(
                "LastPass already has a user {:?}",
                new_email.as_str()
            )));
        }
        Ok(())
    }

    /// `DELETE /Users/{id}`: `deluser` with the configured action (an invitation is withdrawn).
    /// The user is gone for SCIM afterwards, whatever LastPass keeps.
    pub async fn delete_user(&self, id: &str) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        let (mut row, live, _) = self.load_user(id).await?;
        let email = match &live {
            Live::User(u) => u.username.clone(),
            _ => row.username.clone(),
        };
        let email = Email::parse(&email)
            .map_err(|e| ScimError::internal(format!("username {email:?}: {}", e.reason)))?;
        let action = match live {
            Live::Invited { .. } => DeleteAction::Uninvite,
            _ => self.delete_action,
        };
        if let Err(e) = self.conn.client.delete_user(&email, action).await {
            self.conn.distrust_directory().await;
            return Err(lp(e));
        }
        let key = email.as_str().to_owned();
        match action {
            DeleteAction::Deactivate => {
                // LastPass keeps the account: the row stays, hidden, so a re-create finds it.
                row.deleted_at = Some(Utc::now());
                row.active = false;
                row.updated_at = Utc::now();
                // `false`: the row went meanwhile, which leaves the user gone as asked.
                self.store
                    .update_scim_user(self.id(), &row)
                    .await
                    .map_err(db)?;
                self.conn.snapshots.modify_directory(self.id(), move |d| {
                    if let Some(mut u) = d.user(&key).cloned() {
                        u.disabled = true;
                        d.upsert(u);
                    }
                });
            }
            _ => {
                self.store
                    .delete_scim_user(self.id(), &row.id)
                    .await
                    .map_err(db)?;
                self.conn
                    .snapshots
                    .modify_directory(self.id(), move |d| _ = d.remove(&key));
            }
        }
        self.conn.announce_write().await;
        Ok(())
    }

    // ---- groups -----------------------------------------------------------------------

    fn group_resource(&self, row: &ScimGroupRow, member_ids: &[String]) -> Value {
        let mut r = Map::new();
        r.insert("schemas".into(), json!([GROUP_SCHEMA]));
        r.insert("id".into(), Value::String(row.id.clone()));
        r.insert(
            "displayName".into(),
            Value::String(row.display_name.clone()),
        );
        if let Some(x) = &row.external_id {
            r.insert("externalId".into(), Value::String(x.clone()));
        }
        r.insert(
            "members".into(),
            Value::Array(
                member_ids
                    .iter()
                    // No `display`: a member reads back exactly as a client wrote it.
                    .map(|id| {
                        json!({
                            "value": id,
                            "$ref": self.location("Users", id),
                            "type": "User",
                        })
                    })
                    .collect(),
            ),
        );
        let mut v = Value::Object(r);
        let version = version_of(&v);
        if let Value::Object(m) = &mut v {
            m.insert(
                "meta".into(),
                json!({
                    "resourceType": "Group",
                    "created": ts(row.created_at),
                    "lastModified": ts(row.updated_at),
                    "location": self.location("Groups", &row.id),
                    "version": version,
                }),
            );
        }
        v
    }

    /// Every user row by lower-cased username (and by a pending new username, which LastPass
    /// lists once the change completes), creating rows for `usernames` without one.
    async fn user_rows_for(
        &self,
        usernames: &BTreeSet<String>,
    ) -> Result<HashMap<String, ScimUserRow>> {
        let index = |rows: Vec<ScimUserRow>| -> HashMap<String, ScimUserRow> {
            rows.into_iter()
                .filter(|r| r.deleted_at.is_none())
                .flat_map(|r| {
                    let pending = r.pending_username.clone().map(|p| (p, r.clone()));
                    std::iter::once((r.username.clone(), r)).chain(pending)
                })
                .collect()
        };
        let mut rows = index(self.store.scim_users(self.id()).await.map_err(db)?);
        let missing: Vec<String> = usernames
            .iter()
            .filter(|u| !rows.contains_key(*u))
            .cloned()
            .collect();
        if !missing.is_empty() {
            self.store
                .ensure_scim_users(self.id(), &missing)
                .await
                .map_err(db)?;
            rows = index(self.store.scim_users(self.id()).await.map_err(db)?);
        }
        Ok(rows)
    }

    /// Every LastPass member of the group `name` (lower-cased usernames), shown by SCIM or not.
    fn lastpass_members(dir: &Directory, name: &str) -> BTreeSet<String> {
        dir.groups
            .get(name)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The LastPass members of the group `name`, its name matched case-insensitively.
    fn members_ci<'d>(dir: &'d Directory, name: &str) -> &'d [String] {
        dir.groups
            .iter()
            .find(|(g, _)| g.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, m)| m.as_slice())
    }

    /// The user ids of the group `name`'s members, in LastPass's (username) order.
    fn members_of(
        dir: &Directory,
        name: &str,
        users: &HashMap<String, ScimUserRow>,
    ) -> Vec<String> {
        Self::members_ci(dir, name)
            .iter()
            .filter_map(|u| users.get(u).map(|r| r.id.clone()))
            .collect()
    }

    async fn all_groups(&self) -> Result<Vec<Value>> {
        let dir = self.directory().await?;
        let names: Vec<&String> = dir.groups.keys().collect();
        let rows = self.group_rows(&names).await?;
        let members: BTreeSet<String> = dir.groups.values().flatten().cloned().collect();
        let users = self.user_rows_for(&members).await?;
        Ok(rows
            .values()
            .map(|g| self.group_resource(g, &Self::members_of(&dir, &g.display_name, &users)))
            .collect())
    }

    pub async fn list_groups(&self, req: &SearchRequest) -> Result<ListResponse> {
        let all = self.all_groups().await?;
        Ok(list_resources(all, req, &ResourceSchema::GROUP))
    }

    async fn load_group(&self, id: &str) -> Result<(ScimGroupRow, Arc<Directory>, Value)> {
        let row = self
            .store
            .scim_group(self.id(), id)
            .await
            .map_err(db)?
            .ok_or_else(|| ScimError::not_found(format!("no Group with id {id:?}")))?;
        let dir = self.directory().await?;
        let members: BTreeSet<String> = Self::members_ci(&dir, &row.display_name)
            .iter()
            .cloned()
            .collect();
        let users = self.user_rows_for(&members).await?;
        let resource =
            self.group_resource(&row, &Self::members_of(&dir, &row.display_name, &users));
        Ok((row, dir, resource))
    }

    pub async fn get_group(&self, id: &str) -> Result<Value> {
        Ok(self.load_group(id).await?.2)
    }

    /// Member ids of a resource → the usernames LastPass lists them under (lower-cased: a
    /// completed e-mail change is followed); unknown ids, and users LastPass no longer has, are
    /// skipped (a membership write must never invite a user anew).
    async fn member_usernames(
        &self,
        dir: &Directory,
        resource: &Value,
    ) -> Result<BTreeSet<String>> {
        let Some(members) = resource.get("members").and_then(Value::as_array) else {
            return Ok(BTreeSet::new());
        };
        if members.is_empty() {
            return Ok(BTreeSet::new());
        }
        let by_id: HashMap<String, ScimUserRow> = self
            .store
            .scim_users(self.id())
            .await
            .map_err(db)?
            .into_iter()
            .filter(|r| r.deleted_at.is_none())
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut out = BTreeSet::new();
        for m in members {
            if m.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("group"))
            {
                return Err(ScimError::invalid_value(
                    "members: LastPass groups cannot contain groups",
                ));
            }
            let Some(id) = m.get("value").and_then(Value::as_str) else {
                return Err(ScimError::invalid_value("members[].value is required"));
            };
            // An unknown id is skipped, not refused: identity providers replay membership
            // lists that may name users already gone (scim-sanity expects 200 here too).
            let Some(row) = by_id.get(id) else {
                tracing::info!(
                    member = id,
                    "SCIM group member is not a known User; skipped"
                );
                continue;
            };
            match std::iter::once(&row.username)
                .chain(row.pending_username.as_ref())
                .find(|n| dir.user(n).is_some())
            {
                Some(name) => {
                    out.insert(name.clone());
                }
                None => tracing::info!(
                    member = id,
                    "SCIM group member is not in LastPass any more; skipped"
                ),
            }
        }
        Ok(out)
    }

    /// A group name must be free: no other row and no LastPass group with members.
    fn check_group_name(
        dir: &Directory,
        rows: &[ScimGroupRow],
        name: &str,
        except: Option<&str>,
    ) -> Result<()> {
        if let Some(r) = rows
            .iter()
            .find(|r| r.display_name.eq_ignore_ascii_case(name) && Some(r.id.as_str()) != except)
        {
            return Err(ScimError::uniqueness(format!(
                "a Group named {name:?} exists (id {})",
                r.id
            )));
        }
        let in_lastpass = dir.groups.keys().any(|g| g.eq_ignore_ascii_case(name));
        if in_lastpass && except.is_none() {
            return Err(ScimError::uniqueness(format!(
                "LastPass already has a group named {name:?}"
            )));
        }
        Ok(())
    }

    /// `POST /Groups`.
    pub async fn create_group(&self, body: &Value) -> Result<Value> {
        let resource = resource_from_request(body, &ResourceSchema::GROUP)?;
        let name = resource
            .get("displayName")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_value("displayName is required"))?
            .trim()
            .to_owned();
        let group = group_name(&name)?;
        let _guard = self.write_lock.lock().await;
        let dir = self.directory().await?;
        let rows = self.store.scim_groups(self.id()).await.map_err(db)?;
        Self::check_group_name(&dir, &rows, &name, None)?;
        let members = self.member_usernames(&dir, &resource).await?;
        let mut row = ScimGroupRow::new(group.as_str());
        row.external_id = resource
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if !self
            .store
            .insert_scim_group(self.id(), &row)
            .await
            .map_err(db)?
        {
            return Err(ScimError::uniqueness(format!(
                "a Group named {name:?} was created concurrently"
            )));
        }
        let changes: Vec<(String, Vec<String>, Vec<String>)> = members
            .iter()
            .map(|u| (u.clone(), vec![row.display_name.clone()], Vec::new()))
            .collect();
        if let Err(e) = self.change_memberships(&dir, changes).await {
            // Nothing of the group is kept when its members could not be added.
            let _ = self.store.delete_scim_group(self.id(), &row.id).await;
            return Err(e);
        }
        let (_, _, resource) = self.load_group(&row.id).await?;
        Ok(resource)
    }

    /// `PUT /Groups/{id}`.
    pub async fn replace_group(&self, id: &str, body: &Value) -> Result<Value> {
        let _guard = self.write_lock.lock().await;
        let (row, dir, current) = self.load_group(id).await?;
        let next = replace_resource(&current, body, &ResourceSchema::GROUP)?;
        self.write_group(row, &dir, &current, next).await
    }

    /// `PATCH /Groups/{id}`.
    pub async fn patch_group(&self, id: &str, body: &Value) -> Result<Value> {
        let patch = PatchRequest::from_json(body)?;
        let _guard = self.write_lock.lock().await;
        let (row, dir, current) = self.load_group(id).await?;
        let next = patch.apply(&current, &ResourceSchema::GROUP)?;
        self.write_group(row, &dir, &current, next).await
    }

    async fn write_group(
        &self,
        mut row: ScimGroupRow,
        dir: &Directory,
        current: &Value,
        next: Value,
    ) -> Result<Value> {
        let new_name = next
            .get("displayName")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_value("displayName is required"))?
            .trim()
            .to_owned();
        let renamed = new_name != row.display_name;
        if renamed {
            group_name(&new_name)?;
            let rows = self.store.scim_groups(self.id()).await.map_err(db)?;
            Self::check_group_name(dir, &rows, &new_name, Some(&row.id))?;
            if !new_name.eq_ignore_ascii_case(&row.display_name)
                && dir.groups.keys().any(|g| g.eq_ignore_ascii_case(&new_name))
            {
                return Err(ScimError::uniqueness(format!(
                    "LastPass already has a group named {new_name:?}"
                )));
            }
        }
        let before = self.member_usernames(dir, current).await?;
        let after = self.member_usernames(dir, &next).await?;
        let old = row.display_name.clone();
        // LastPass may hold members SCIM does not show (users deleted through SCIM but kept,
        // deactivated): a rename moves them too, or the old name would live on.
        let hidden: BTreeSet<String> = Self::lastpass_members(dir, &old)
            .difference(&before)
            .cloned()
            .collect();
        let mut changes: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
        for u in before.union(&after).chain(hidden.iter()) {
            let (was, is) = (
                before.contains(u) || hidden.contains(u),
                after.contains(u) || hidden.contains(u),
            );
            let mut add = Vec::new();
            let mut del = Vec::new();
            if renamed {
                if was {
                    del.push(old.clone());
                }
                if is {
                    add.push(new_name.clone());
                }
            } else if was && !is {
                del.push(old.clone());
            } else if is && !was {
                add.push(old.clone());
            }
            if !add.is_empty() || !del.is_empty() {
                changes.push((u.clone(), add, del));
            }
        }
        // The store first: a rename that LastPass then refuses is put back.
        let previous = row.clone();
        row.display_name = new_name;
        row.external_id = next
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        row.updated_at = Utc::now();
        if !self
            .store
            .update_scim_group(self.id(), &row)
            .await
            .map_err(db)?
        {
            return Err(ScimError::uniqueness(format!(
                "a Group named {:?} exists",
                row.display_name
            )));
        }
        if let Err(e) = self.change_memberships(dir, changes).await {
            let _ = self.store.update_scim_group(self.id(), &previous).await;
            return Err(e);
        }
        Ok(self.load_group(&row.id).await?.2)
    }

    /// `DELETE /Groups/{id}`: every membership is removed, then the row.
    pub async fn delete_group(&self, id: &str) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        let (row, dir, current) = self.load_group(id).await?;
        let mut members = self.member_usernames(&dir, &current).await?;
        // Members SCIM does not show are removed too, or the group would come back.
        members.extend(Self::lastpass_members(&dir, &row.display_name));
        let changes = members
            .into_iter()
            .map(|u| (u, Vec::new(), vec![row.display_name.clone()]))
            .collect();
        self.change_memberships(&dir, changes).await?;
        self.store
            .delete_scim_group(self.id(), &row.id)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Applies (username, add, del) membership changes: `batchchangegrp` for groups LastPass
    /// has, `batchadd` (an update naming the user's whole group list) where a group is new.
    async fn change_memberships(
        &self,
        dir: &Directory,
        changes: Vec<(String, Vec<String>, Vec<String>)>,
    ) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        // LastPass group names are matched exactly: a case-only rename is a new group.
        let exists = |g: &str| dir.groups.contains_key(g);
        let mut plain = Vec::new();
        let mut creating = Vec::new();
        let mut final_groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (user, add, del) in &changes {
            let email = Email::parse(user)
                .map_err(|e| ScimError::internal(format!("username {user:?}: {}", e.reason)))?;
            let current: Vec<String> = dir.user(user).map(|u| u.groups.clone()).unwrap_or_default();
            let mut groups: Vec<String> =
                current.into_iter().filter(|g| !del.contains(g)).collect();
            for a in add {
                if !groups.contains(a) {
                    groups.push(a.clone());
                }
            }
            final_groups.insert(user.clone(), groups.clone());
            let names = |v: &[String]| -> Result<Vec<GroupName>> {
                v.iter().map(|g| group_name(g)).collect()
            };
            if add.iter().all(|a| exists(a)) {
                plain.push(GroupChange {
                    username: email,
                    add: names(add)?,
                    del: names(del)?,
                });
            } else {
                let mut nu = NewUser::new(email);
                nu.groups = names(&groups)?;
                creating.push(nu);
            }
        }
        let done: Result<()> = async {
            if !creating.is_empty() {
                self.conn.client.batch_add(&creating).await.map_err(lp)?;
            }
            if !plain.is_empty() {
                self.conn.client.change_groups(&plain).await.map_err(lp)?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = done {
            self.conn.distrust_directory().await;
            return Err(e);
        }
        self.conn.snapshots.modify_directory(self.id(), move |d| {
            for (user, groups) in final_groups {
                if let Some(mut u) = d.user(&user).cloned() {
                    u.groups = groups;
                    d.upsert(u);
                }
            }
        });
        self.conn.announce_write().await;
        Ok(())
    }
}
