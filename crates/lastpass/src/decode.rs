//! Decoding of every command's answer from the raw body bytes into the normalised
//! [`crate::model`] types. The body is sniffed, never the content type: the XML authorization
//! error becomes [`Error::Auth`], the status envelope is normalised (see [`crate::Error`]), and
//! every scalar variant the reference lists is accepted.
//!
//! These functions are public so that the CLI's `api call --decode` and the benchmarks can use
//! them on bytes they already hold; the [`crate::Client`] uses the same code.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDateTime;
use lp_types::{FolderId, UserId};
use serde::Deserialize;

use crate::envelope::{Ctx, Envelope, Scope, Status, decode_error, json_error, sniff};
use crate::error::Error;
use crate::lenient::{self, GroupMap, OrderedMap};
use crate::model::*;

// ---------------------------------------------------------------------------------------------
// Wire structs
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct WireEnv {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient::messages")]
    error: Vec<String>,
    #[serde(default, deserialize_with = "lenient::messages")]
    errors: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    message: Option<String>,
}

impl WireEnv {
    fn into_envelope(self) -> Envelope {
        envelope(self.status, self.error, self.errors, self.message)
    }
}

/// An [`Envelope`] from the [`WireEnv`] fields (also repeated in the `getuserdata` wire structs,
/// where flattening would buffer the whole answer): `error` and `errors` merged, in that order.
fn envelope(
    status: Option<String>,
    mut error: Vec<String>,
    errors: Vec<String>,
    message: Option<String>,
) -> Envelope {
    error.extend(errors);
    Envelope {
        status,
        errors: error,
        message,
    }
}

#[derive(Deserialize)]
struct WireUser {
    /// Only used when `Users` arrives as an array rather than an id-keyed object.
    #[serde(default, alias = "userid", deserialize_with = "lenient::opt_string")]
    id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    username: String,
    #[serde(default, deserialize_with = "lenient::string")]
    fullname: String,
    #[serde(default, deserialize_with = "lenient::score")]
    mpstrength: Option<f64>,
    #[serde(default, deserialize_with = "lenient::score")]
    totalscore: Option<f64>,
    #[serde(default, deserialize_with = "lenient::datetime")]
    created: Option<NaiveDateTime>,
    #[serde(default, deserialize_with = "lenient::datetime")]
    last_pw_change: Option<NaiveDateTime>,
    #[serde(default, deserialize_with = "lenient::datetime")]
    last_login: Option<NaiveDateTime>,
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    neverloggedin: Option<bool>,
    #[serde(default, deserialize_with = "lenient::flag")]
    disabled: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    admin: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    duousername: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    linked: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    multifactor: Option<String>,
    #[serde(
        default,
        rename = "hasSharingKeys",
        alias = "hassharingkeys",
        deserialize_with = "lenient::opt_flag"
    )]
    has_sharing_keys: Option<bool>,
    #[serde(default, deserialize_with = "lenient::counter")]
    sites: Option<u64>,
    #[serde(default, deserialize_with = "lenient::counter")]
    notes: Option<u64>,
    #[serde(default, deserialize_with = "lenient::counter")]
    formfills: Option<u64>,
    #[serde(default, deserialize_with = "lenient::counter")]
    applications: Option<u64>,
    #[serde(default, deserialize_with = "lenient::counter")]
    attachments: Option<u64>,
    #[serde(default, deserialize_with = "lenient::flag")]
    password_reset_required: bool,
    #[serde(default, deserialize_with = "lenient::opt_string_list")]
    groups: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient::attribs")]
    attribs: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct WireUserPage {
    #[serde(default, deserialize_with = "lenient::counter")]
    total: Option<u64>,
    #[serde(default, deserialize_with = "lenient::counter")]
    count: Option<u64>,
    #[serde(default, rename = "Users")]
    users: OrderedMap<WireUser>,
    #[serde(default, rename = "Groups")]
    groups: Option<GroupMap>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    invited: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient::messages")]
    error: Vec<String>,
    #[serde(default, deserialize_with = "lenient::messages")]
    errors: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    message: Option<String>,
}

#[derive(Deserialize)]
struct WireToggle {
    #[serde(flatten)]
    env: WireEnv,
    #[serde(default, deserialize_with = "lenient::string_list")]
    disabled_users: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    enabled_users: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    unchanged_users: Vec<String>,
}

#[derive(Deserialize)]
struct WireMember {
    #[serde(
        default,
        alias = "user",
        alias = "name",
        deserialize_with = "lenient::string"
    )]
    username: String,
    #[serde(default, deserialize_with = "lenient::flag")]
    readonly: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    give: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    can_administer: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    superadmin: bool,
    #[serde(default, deserialize_with = "lenient::opt_string_list")]
    sites: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct WireFolder {
    #[serde(default, alias = "name", deserialize_with = "lenient::string")]
    sharedfoldername: String,
    #[serde(default, deserialize_with = "lenient::score")]
    score: Option<f64>,
    #[serde(default, deserialize_with = "lenient::flag")]
    deleted: bool,
    #[serde(default)]
    users: OrderedMap<WireMember>,
}

#[derive(Deserialize)]
struct WireEvent {
    #[serde(
        default,
        rename = "Time",
        alias = "time",
        deserialize_with = "lenient::datetime"
    )]
    time: Option<NaiveDateTime>,
    #[serde(
        default,
        rename = "Username",
        alias = "username",
        deserialize_with = "lenient::string"
    )]
    username: String,
    #[serde(
        default,
        rename = "IP_Address",
        alias = "ip_address",
        alias = "IPAddress",
        deserialize_with = "lenient::string"
    )]
    ip_address: String,
    #[serde(
        default,
        rename = "Action",
        alias = "action",
        deserialize_with = "lenient::string"
    )]
    action: String,
    #[serde(
        default,
        rename = "Data",
        alias = "data",
        deserialize_with = "lenient::string"
    )]
    data: String,
    #[serde(
        default,
        rename = "ID",
        alias = "id",
        alias = "Id",
        deserialize_with = "lenient::opt_string"
    )]
    id: Option<String>,
}

#[derive(Deserialize)]
struct WireEvents {
    #[serde(flatten)]
    env: WireEnv,
    #[serde(default, deserialize_with = "lenient::cursor")]
    next: Option<i64>,
    #[serde(default)]
    data: OrderedMap<WireEvent>,
    /// The `format:"siem"` shape.
    #[serde(default)]
    events: OrderedMap<WireEvent>,
}

#[derive(Deserialize, Default)]
struct WireContinuation {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    token: Option<String>,
    #[serde(default, deserialize_with = "lenient::counter")]
    remaining_item_count: Option<u64>,
}

#[derive(Deserialize)]
struct WireExpiredItem {
    #[serde(default, deserialize_with = "lenient::counter")]
    user_id: Option<u64>,
    #[serde(default, alias = "username", deserialize_with = "lenient::string")]
    user_name: String,
    #[serde(default, deserialize_with = "lenient::datetime")]
    last_pw_change: Option<NaiveDateTime>,
}

#[derive(Deserialize)]
struct WireExpired {
    #[serde(flatten)]
    env: WireEnv,
    #[serde(default)]
    continuation: Option<WireContinuation>,
    #[serde(default)]
    items: OrderedMap<WireExpiredItem>,
}

#[derive(Deserialize)]
struct WirePush {
    #[serde(flatten)]
    env: WireEnv,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    psid: Option<String>,
}

fn parse<'a, T: Deserialize<'a>>(ctx: &Ctx<'_>, body: &'a [u8]) -> Result<T, Error> {
    sniff(ctx, body)?;
    serde_json::from_slice(body).map_err(|e| json_error(ctx, body, e))
}

// ---------------------------------------------------------------------------------------------
// getuserdata
// ---------------------------------------------------------------------------------------------

pub(crate) fn user_page_ctx(ctx: &Ctx<'_>, body: &[u8]) -> Result<UserPage, Error> {
    user_page_with_total(ctx, body).map(|(page, _)| page)
}

/// The page, and whether LastPass reported `total` (when it did not, `total` is `count` and a
/// pager must walk to an empty page instead).
pub(crate) fn user_page_with_total(ctx: &Ctx<'_>, body: &[u8]) -> Result<(UserPage, bool), Error> {
    let w: WireUserPage = parse(ctx, body)?;
    envelope(w.status, w.error, w.errors, w.message).check(ctx, Scope::Single(None))?;

    let invited: HashSet<String> = w.invited.iter().map(|s| s.to_lowercase()).collect();
    let wire_users = w.users.0;
    let mut users = Vec::with_capacity(wire_users.len());
    // Indices of the users without a `groups` key (they may take theirs from `Groups`).
    let mut without_groups: Vec<usize> = Vec::new();
    for (key, u) in wire_users {
        let id = if key.is_empty() { u.id } else { Some(key) };
        let id = id
            .and_then(|k| UserId::new(k).ok())
            .ok_or_else(|| decode_error(ctx, body, "a user has no id"))?;
        let is_invited = !invited.is_empty() && invited.contains(&u.username.to_lowercase());
        if u.groups.is_none() {
            without_groups.push(users.len());
        }
        users.push(User {
            id,
            never_logged_in: u.neverloggedin.unwrap_or(u.last_login.is_none()),
            username: u.username,
            fullname: u.fullname,
            mpstrength: u.mpstrength,
            totalscore: u.totalscore,
            created: u.created,
            last_pw_change: u.last_pw_change,
            last_login: u.last_login,
            disabled: u.disabled,
            admin: u.admin,
            duo_username: u.duousername,
            linked: u.linked,
            multifactor: u.multifactor,
            has_sharing_keys: u.has_sharing_keys,
            sites: u.sites,
            notes: u.notes,
            formfills: u.formfills,
            applications: u.applications,
            attachments: u.attachments,
            password_reset_required: u.password_reset_required,
            groups: u.groups.unwrap_or_default(),
            attribs: u.attribs,
            invited: is_invited,
        });
    }

    let groups: BTreeMap<String, Vec<String>> = match w.groups {
        Some(GroupMap(g)) => {
            let groups: BTreeMap<String, Vec<String>> = g.into_iter().collect();
            if !without_groups.is_empty() {
                // Users without a `groups` key take their memberships from `Groups`.
                let mut by_member: HashMap<String, Vec<String>> = HashMap::new();
                for (name, members) in &groups {
                    for m in members {
                        by_member
                            .entry(m.to_lowercase())
                            .or_default()
                            .push(name.clone());
                    }
                }
                for i in without_groups {
                    let u = &mut users[i];
                    if let Some(g) = by_member.get(&u.username.to_lowercase()) {
                        u.groups = g.clone();
                    }
                }
            }
            groups
        }
        None => {
            // A paged answer without `Groups`: the users' own arrays are the source.
            let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for u in &users {
                for g in &u.groups {
                    groups
                        .entry(g.clone())
                        .or_default()
                        .push(u.username.clone());
                }
            }
            groups
        }
    };

    let count = w.count.unwrap_or(users.len() as u64);
    let reported = w.total.is_some();
    Ok((
        UserPage {
            total: w.total.unwrap_or(count),
            count,
            users,
            groups,
            invited: w.invited,
        },
        reported,
    ))
}

/// Only the `Groups` map (and the envelope) of a `getuserdata` answer: `Users` is skipped
/// without building records, so a whole-directory answer costs little more than its bytes.
#[derive(Deserialize)]
struct WireGroupsOnly {
    #[serde(default, rename = "Groups")]
    groups: Option<GroupMap>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient::messages")]
    error: Vec<String>,
    #[serde(default, deserialize_with = "lenient::messages")]
    errors: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    message: Option<String>,
}

/// `Ok(None)` when the answer carries no `Groups` map.
pub(crate) fn groups_ctx(
    ctx: &Ctx<'_>,
    body: &[u8],
) -> Result<Option<BTreeMap<String, Vec<String>>>, Error> {
    let w: WireGroupsOnly = parse(ctx, body)?;
    envelope(w.status, w.error, w.errors, w.message).check(ctx, Scope::Single(None))?;
    Ok(w.groups.map(|GroupMap(g)| g.into_iter().collect()))
}

/// A `getuserdata` answer (a page or the whole directory).
pub fn user_page(body: &[u8]) -> Result<UserPage, Error> {
    user_page_ctx(&Ctx::new("getuserdata"), body)
}

/// A `getuserdata` answer to a `username` lookup: `Ok(None)` for `{"Users":[]}` or an
/// unknown-user error.
pub fn user_lookup(body: &[u8], username: &str) -> Result<Option<User>, Error> {
    lookup_ctx(&Ctx::new("getuserdata"), body, username)
}

pub(crate) fn lookup_ctx(
    ctx: &Ctx<'_>,
    body: &[u8],
    username: &str,
) -> Result<Option<User>, Error> {
    match user_page_ctx(ctx, body) {
        Ok(page) => Ok(page
            .users
            .into_iter()
            .find(|u| u.username.eq_ignore_ascii_case(username))),
        Err(Error::UnknownUser { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a `getuserdata` answer says of `username`: a user, a pending invitee, or nothing.
pub(crate) fn lookup_any_ctx(
    ctx: &Ctx<'_>,
    body: &[u8],
    username: &str,
) -> Result<UserLookup, Error> {
    match user_page_ctx(ctx, body) {
        Ok(page) => {
            if let Some(u) = page
                .users
                .into_iter()
                .find(|u| u.username.eq_ignore_ascii_case(username))
            {
                return Ok(UserLookup::User(Box::new(u)));
            }
            Ok(
                match page
                    .invited
                    .into_iter()
                    .find(|u| u.eq_ignore_ascii_case(username))
                {
                    Some(name) => UserLookup::Invited(name),
                    None => UserLookup::Absent,
                },
            )
        }
        Err(Error::UnknownUser { .. }) => Ok(UserLookup::Absent),
        Err(e) => Err(e),
    }
}

/// Whether `username` exists in a `getuserdata` answer, as a user or a pending invitee.
pub(crate) fn exists_ctx(ctx: &Ctx<'_>, body: &[u8], username: &str) -> Result<bool, Error> {
    match user_page_ctx(ctx, body) {
        Ok(page) => Ok(page
            .users
            .iter()
            .any(|u| u.username.eq_ignore_ascii_case(username))
            || page
                .invited
                .iter()
                .any(|u| u.eq_ignore_ascii_case(username))),
        Err(Error::UnknownUser { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

pub(crate) fn status_ctx(ctx: &Ctx<'_>, body: &[u8], scope: Scope<'_>) -> Result<(), Error> {
    let w: WireEnv = parse(ctx, body)?;
    w.into_envelope().check(ctx, scope)
}

/// A status-only answer (`{"status":"OK"}` and its failure variants) of a command that targets
/// one user (`target`) or, with `None`, a batch.
pub fn write_status(cmd: &str, body: &[u8], target: Option<&str>) -> Result<(), Error> {
    let scope = match target {
        Some(t) => Scope::Single(Some(t)),
        None => Scope::Bulk,
    };
    status_ctx(&Ctx::new(cmd), body, scope)
}

pub(crate) fn toggle_ctx(ctx: &Ctx<'_>, body: &[u8]) -> Result<ToggleOutcome, Error> {
    let w: WireToggle = parse(ctx, body)?;
    let mut changed = w.disabled_users;
    changed.extend(w.enabled_users);
    let env = w.env.into_envelope();
    let troubled = !env.errors.is_empty()
        || matches!(
            Status::parse(env.status.as_deref()),
            Status::Fail | Status::Warn
        );
    if troubled {
        if changed.is_empty() && w.unchanged_users.is_empty() {
            // Nothing is in the requested state: a plain failure (or one unknown user).
            let env = Envelope {
                status: Some("FAIL".into()),
                ..env.clone()
            };
            env.check(ctx, Scope::Bulk)?;
        }
        let mut errors: Vec<String> = env.errors.iter().map(|e| ctx.scrub(e)).collect();
        if errors.is_empty() {
            errors.push(format!("status {:?}", env.status.unwrap_or_default()));
        }
        // Users already in the requested state count as done.
        changed.extend(w.unchanged_users);
        return Err(Error::Partial {
            succeeded: changed,
            errors,
        });
    }
    env.check(ctx, Scope::Bulk)?;
    Ok(ToggleOutcome {
        changed,
        unchanged: w.unchanged_users,
    })
}

/// A `disableuser` / `enableuser` answer.
pub fn toggle(cmd: &str, body: &[u8]) -> Result<ToggleOutcome, Error> {
    toggle_ctx(&Ctx::new(cmd), body)
}

pub(crate) fn push_ctx(ctx: &Ctx<'_>, body: &[u8]) -> Result<String, Error> {
    let w: WirePush = parse(ctx, body)?;
    w.env.into_envelope().check(ctx, Scope::Bulk)?;
    w.psid
        .ok_or_else(|| decode_error(ctx, body, "the answer has no psid"))
}

/// A `pushsitestousers` answer: the `psid` (sent as a string or a number).
pub fn push_site(body: &[u8]) -> Result<String, Error> {
    push_ctx(&Ctx::new("pushsitestousers"), body)
}

// ---------------------------------------------------------------------------------------------
// Shared folders
// ---------------------------------------------------------------------------------------------

const ENVELOPE_KEYS: [&str; 4] = ["status", "error", "errors", "message"];

fn folder_from(id: FolderId, w: WireFolder) -> SharedFolder {
    SharedFolder {
        id,
        name: w.sharedfoldername,
        score: w.score,
        deleted: w.deleted,
        users: w
            .users
            .0
            .into_iter()
            .map(|(_, m)| FolderMember {
                username: m.username,
                readonly: m.readonly,
                give: m.give,
                can_administer: m.can_administer,
                superadmin: m.superadmin,
                sites: m.sites,
            })
            .collect(),
    }
}

fn looks_like_folder(map: &serde_json::Map<String, serde_json::Value>) -> bool {
    map.contains_key("sharedfoldername") || map.contains_key("users") || map.contains_key("name")
}

pub(crate) fn folders_ctx(ctx: &Ctx<'_>, body: &[u8]) -> Result<Vec<SharedFolder>, Error> {
    let v: serde_json::Value = parse(ctx, body)?;
    let mut env = WireEnv::default();
    let mut folders = Vec::new();
    let bad = |e: serde_json::Error| json_error(ctx, body, e);
    match v {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                if ENVELOPE_KEYS.contains(&key.as_str()) {
                    match key.as_str() {
                        "status" => env.status = lenient_string_value(value),
                        "message" => env.message = lenient_string_value(value),
                        "error" => env.error = lenient::messages_from_value(value),
                        _ => env.errors = lenient::messages_from_value(value),
                    }
                    continue;
                }
                let serde_json::Value::Object(obj) = value else {
                    continue; // e.g. `"count": 3`: not a folder
                };
                if !looks_like_folder(&obj) {
                    continue;
                }
                let Ok(id) = FolderId::new(key) else { continue };
                let w: WireFolder =
                    serde_json::from_value(serde_json::Value::Object(obj)).map_err(bad)?;
                folders.push(folder_from(id, w));
            }
        }
        serde_json::Value::Array(items) => {
            // PHP's empty map, or (defensively) a list of folders carrying their own id.
            for item in items {
                let serde_json::Value::Object(obj) = item else {
                    continue;
                };
                let id = ["id", "shareid", "sharedfolderid"]
                    .iter()
                    .find_map(|k| obj.get(*k).and_then(scalar_string))
                    .and_then(|s| FolderId::new(s).ok())
                    .ok_or_else(|| decode_error(ctx, body, "a shared folder has no id"))?;
                let w: WireFolder =
                    serde_json::from_value(serde_json::Value::Object(obj)).map_err(bad)?;
                folders.push(folder_from(id, w));
            }
        }
        serde_json::Value::Null => {}
        _ => {
            return Err(decode_error(
                ctx,
                body,
                "unexpected JSON shape: expected an object keyed by shared-folder id",
            ));
        }
    }
    env.into_envelope().check(ctx, Scope::Bulk)?;
    Ok(folders)
}

fn scalar_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lenient_string_value(v: serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) if s.is_empty() => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// A `getsfdata` / `getdetailedsfdata` answer (non-folder keys such as `status` are skipped;
/// a `FAIL` status becomes an error).
pub fn shared_folders(cmd: &str, body: &[u8]) -> Result<Vec<SharedFolder>, Error> {
    folders_ctx(&Ctx::new(cmd), body)
}

// ---------------------------------------------------------------------------------------------
// reporting
// ---------------------------------------------------------------------------------------------

fn event_index(key: &str) -> Option<u64> {
    let digits = key.trim_start_matches(|c: char| !c.is_ascii_digit());
    if digits.is_empty() {
        None
    } else {
        digits.parse().ok()
    }
}

pub(crate) fn events_ctx(ctx: &Ctx<'_>, body: &[u8]) -> Result<EventPage, Error> {
    let w: WireEvents = parse(ctx, body)?;
    w.env.into_envelope().check(ctx, Scope::Bulk)?;
    let mut wire = w.data.0;
    wire.extend(w.events.0);
    // `Event1..N` is newest first; keep that order even if the keys were re-sorted as strings.
    if wire.iter().all(|(k, _)| event_index(k).is_some()) {
        wire.sort_by_key(|(k, _)| event_index(k));
    }
    let mut events = Vec::with_capacity(wire.len());
    for (key, e) in wire {
        let time = e
            .time
            .ok_or_else(|| decode_error(ctx, body, format!("event {key:?} has no Time")))?;
        events.push(Event {
            time,
            username: e.username,
            ip_address: e.ip_address,
            action: e.action,
            data: e.data,
            id: e.id,
        });
    }
    Ok(EventPage {
        events,
        next: w.next,
    })
}

/// A `reporting` answer, in the default (`Event1…`) or `siem` (`events: […]`) format.
pub fn event_page(body: &[u8]) -> Result<EventPage, Error> {
    events_ctx(&Ctx::new("reporting"), body)
}

// ---------------------------------------------------------------------------------------------
// expiredmasterpwlist
// ---------------------------------------------------------------------------------------------

pub(crate) fn expired_ctx(ctx: &Ctx<'_>, body: &[u8]) -> Result<ExpiredPage, Error> {
    let w: WireExpired = parse(ctx, body)?;
    w.env.into_envelope().check(ctx, Scope::Bulk)?;
    let mut items = Vec::with_capacity(w.items.0.len());
    for (_, it) in w.items.0 {
        let user_id = it
            .user_id
            .ok_or_else(|| decode_error(ctx, body, "an item has no user_id"))?;
        items.push(ExpiredPassword {
            user_id,
            user_name: it.user_name,
            last_pw_change: it.last_pw_change,
        });
    }
    let cont = w.continuation.unwrap_or_default();
    Ok(ExpiredPage {
        items,
        token: cont.token,
        remaining: cont.remaining_item_count,
    })
}

/// An `expiredmasterpwlist` answer.
pub fn expired_page(body: &[u8]) -> Result<ExpiredPage, Error> {
    expired_ctx(&Ctx::new("expiredmasterpwlist"), body)
}
