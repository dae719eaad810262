//! The console's directory of one LastPass account: users (search, status badges, paging, bulk
//! actions), one user with their actions, groups with their members, shared folders with who
//! has which role.
//!
//! | route | what it does |
//! |---|---|
//! | `GET /console/directory` | users: search by name or e-mail (htmx as you type; a plain GET form without scripts), status filter, pages; bulk Disable / Enable / Require password change |
//! | `GET /console/directory/groups` | groups, their member counts and members |
//! | `GET /console/directory/folders` | shared folders and each member's role and permissions |
//! | `GET /console/directory/users/{id}` | one user's properties and actions |
//! | `POST /console/directory/users/{id}/{action}` | `disable`, `enable`, `reinvite`, `require-password-change`, `reset-password`, `disable-mfa`, `add-group`, `remove-group` |
//! | `POST /console/directory/bulk` | one action on the selected users, in the background ([`super::jobs`]) |
//!
//! Every page takes `?connection=ID` (default: the first connection the principal may use).
//! Reads go through [`crate::unified`] (the directory snapshot), writes through
//! [`crate::actions::run`] followed by [`unified::Conn::distrust_directory`], exactly as
//! `POST /actions/{name}` does; a failure shows LastPass's error and changes nothing else.

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use lp_types::ConnectionId;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::connections::seg;
use super::ui::{self, FlashKind, Nav, Problems};
use super::{Posted, Session, jobs};
use crate::actions;
use crate::error::Error;
use crate::http::App;
use crate::store::ConnectionSummary;
use crate::unified::{self, MAX_PAGE_SIZE, Params};

const BASE: &str = "/console/directory";
/// Users per page of the users table.
const USERS_PER_PAGE: usize = 50;
/// Groups and shared folders per page.
const GROUPS_PER_PAGE: usize = 50;
const FOLDERS_PER_PAGE: usize = 25;
/// The most users one bulk action takes (the actions' own limit).
const MAX_BULK: usize = 1000;
/// The htmx target of the search (its answer is the results alone).
const RESULTS_ID: &str = "users-results";

pub fn router() -> Router<App> {
    Router::new()
        .route("/directory", get(users_page))
        .route("/directory/groups", get(groups_page))
        .route("/directory/folders", get(folders_page))
        .route("/directory/users/{id}", get(user_page))
        .route("/directory/users/{id}/{action}", post(user_action))
        .route("/directory/bulk", post(bulk))
}

// ---- common -------------------------------------------------------------------------------

/// The query every directory page understands; garbage is ignored rather than refused.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DirQuery {
    connection: Option<String>,
    q: Option<String>,
    status: Option<String>,
    page: Option<String>,
    next: Option<String>,
}

impl DirQuery {
    fn parse(raw: Option<&str>) -> Self {
        serde_urlencoded::from_str(raw.unwrap_or("")).unwrap_or_default()
    }
}

/// `a=1&b=2`, empty values left out.
fn qs(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let q = qs(pairs);
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

fn user_url(conn: &str, email: &str) -> String {
    with_query(
        &format!("{BASE}/users/{}", seg(email)),
        &[("connection", conn)],
    )
}

/// The connections the principal may use, and the one the page shows.
struct Picked {
    all: Vec<ConnectionSummary>,
    conn: unified::Conn,
}

/// `None` when the principal may use no connection at all.
async fn pick(app: &App, s: &Session, wanted: Option<&str>) -> Result<Option<Picked>, Error> {
    let all = app.usable_connections(Some(&s.key)).await?;
    let id = match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => ConnectionId::new(w)
            .map_err(|_| Error::NotFound(format!("no connection {:?}", lp_types::shown(w))))?,
        None => match all.first() {
            Some(c) => c.id.clone(),
            None => return Ok(None),
        },
    };
    let conn = app.account_by_id(id, Some(&s.key)).await?;
    Ok(Some(Picked { all, conn }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Users,
    Groups,
    Folders,
}

const TABS: &[(Tab, &str, &str)] = &[
    (Tab::Users, "Users", ""),
    (Tab::Groups, "Groups", "/groups"),
    (Tab::Folders, "Shared folders", "/folders"),
];

/// The title, the connection picker (with several connections) and the tabs.
fn header(picked: &Picked, tab: Tab) -> Markup {
    let current = picked.conn.id.as_str();
    let path = TABS
        .iter()
        .find(|(t, _, _)| *t == tab)
        .map_or(String::new(), |(_, _, p)| format!("{BASE}{p}"));
    html! {
        div.dir-head {
            h1 { "Directory" }
            @if picked.all.len() > 1 {
                form.conn-picker method="get" action=(path) {
                    label for="dir-connection" { "Connection" }
                    select #dir-connection name="connection" {
                        @for c in &picked.all {
                            option value=(c.id.as_str()) selected[c.id.as_str() == current] {
                                (c.id.as_str()) " (CID " (c.cid) ")"
                            }
                        }
                    }
                    button.secondary type="submit" { "Show" }
                }
            } @else {
                p.muted { "Connection " strong { (current) } " (CID " (picked.conn.client.cid()) ")" }
            }
        }
        nav.tabs aria-label="Directory sections" {
            @for (t, label, p) in TABS {
                a href=(with_query(&format!("{BASE}{p}"), &[("connection", current)]))
                    aria-current=[(*t == tab).then_some("page")] { (label) }
            }
        }
    }
}

/// The page when no connection may be used, or the chosen one failed.
fn unavailable(s: &Session, title: &str, e: Option<&Error>) -> Response {
    match e {
        Some(e) => {
            let (status, p) = Problems::of(e);
            let body = html! {
                h1 { (title) }
                (ui::error_summary(&p))
                p { a href=(BASE) { "Back to the directory" } " · " a href="/console/connections" { "Connections" } }
            };
            ui::page_with_status(status, s, Nav::Directory, title, body)
        }
        None => ui::page(
            s,
            Nav::Directory,
            title,
            html! {
                h1 { (title) }
                p { "There is no LastPass connection you may use yet. "
                    a href="/console/connections" { "Add one on the Connections page" } "." }
            },
        ),
    }
}

/// The page with the directory's header, or an error below the header when LastPass failed.
fn dir_page(
    s: &Session,
    picked: &Picked,
    tab: Tab,
    title: &str,
    body: Result<Markup, Error>,
) -> Response {
    let (status, content) = match body {
        Ok(m) => (StatusCode::OK, m),
        Err(e) => {
            let (status, p) = Problems::of(&e);
            (status, ui::error_summary(&p))
        }
    };
    let page = html! {
        (header(picked, tab))
        (content)
    };
    ui::page_with_status(status, s, Nav::Directory, title, page)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn status_of(v: &Value) -> &str {
    v.pointer("/status/value")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn is_admin(v: &Value) -> bool {
    v.get("roles")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|r| text(r, "id") == "admin"))
}

/// The MFA method LastPass reports (`googleauth`, `duo`…), if any.
fn mfa(v: &Value) -> Option<String> {
    let m = v.get("multi_factor_enabled")?.as_array()?.first()?;
    let source = m
        .get("source_value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value = text(m, "value");
    Some(if source.is_empty() || source == value {
        value.to_owned()
    } else {
        format!("{source} ({value})")
    })
}

fn group_names(v: &Value) -> Vec<&str> {
    v.get("groups")
        .and_then(Value::as_array)
        .map(|g| g.iter().map(|g| text(g, "name")).collect())
        .unwrap_or_default()
}

fn display_name(v: &Value) -> &str {
    match text(v, "name") {
        "" => text(v, "primary_email_address"),
        n => n,
    }
}

fn status_badge(status: &str) -> Markup {
    match status {
        "enabled" => ui::badge("ok", "Active"),
        "disabled" => ui::badge("danger", "Disabled"),
        "pending" => ui::badge("warn", "Invited"),
        "" => html! {},
        other => ui::badge("muted", other),
    }
}

/// A time from the unified model (RFC 3339), or a dash.
fn when(v: &Value, key: &str) -> Markup {
    match v.get(key).and_then(Value::as_str) {
        Some(t) => match DateTime::parse_from_rfc3339(t) {
            Ok(t) => ui::time_el(&t.with_timezone(&Utc)),
            Err(_) => html! { (t) },
        },
        None => html! { span.muted { "never" } },
    }
}

/// Every page of a unified list (`page_size` [`MAX_PAGE_SIZE`]).
async fn all_pages<F, Fut>(mut list: F, base: Params) -> Result<Vec<Value>, Error>
where
    F: FnMut(Params) -> Fut,
    Fut: std::future::Future<Output = Result<Value, Error>>,
{
    let mut p = Params {
        page_size: MAX_PAGE_SIZE,
        ..base
    };
    let mut out = Vec::new();
    loop {
        let mut v = list(p.clone()).await?;
        if let Some(Value::Array(a)) = v.get_mut("data").map(Value::take) {
            out.extend(a);
        }
        match v.get("next").and_then(Value::as_str) {
            Some(n) => p.next = Some(n.to_owned()),
            None => return Ok(out),
        }
    }
}

// ---- users --------------------------------------------------------------------------------

/// The status filter of the users table.
const STATUS_FILTERS: &[(&str, &str)] = &[
    ("", "All users"),
    ("enabled", "Active"),
    ("disabled", "Disabled"),
    ("pending", "Invited"),
    ("admin", "Admins"),
    ("no-mfa", "Without multifactor"),
];

fn matches_filter(v: &Value, q: &str, status: &str) -> bool {
    let ok_status = match status {
        "" => true,
        "admin" => is_admin(v),
        "no-mfa" => mfa(v).is_none(),
        s => status_of(v) == s,
    };
    ok_status
        && (q.is_empty()
            || text(v, "primary_email_address").to_lowercase().contains(q)
            || text(v, "name").to_lowercase().contains(q))
}

async fn users_page(
    State(app): State<App>,
    s: Session,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = DirQuery::parse(raw.as_deref());
    // The search box's htmx requests get the results alone (also when they fail: a whole page
    // must not land inside the results box).
    let htmx_target = headers.get("hx-target").and_then(|v| v.to_str().ok());
    let partial = s.htmx && htmx_target == Some(RESULTS_ID);
    let results_error = |e: &Error| {
        let (status, p) = Problems::of(e);
        ui::fragment(
            status,
            html! { div id=(RESULTS_ID) { (ui::error_summary(&p)) } },
        )
    };
    let picked = match pick(&app, &s, q.connection.as_deref()).await {
        Ok(Some(p)) => p,
        Ok(None) if partial => {
            return results_error(&Error::NotFound(
                "no connection you may use is configured".into(),
            ));
        }
        Ok(None) => return unavailable(&s, "Directory", None),
        Err(e) if partial => return results_error(&e),
        Err(e) => return unavailable(&s, "Directory", Some(&e)),
    };
    let search = q.q.as_deref().unwrap_or_default().trim().to_owned();
    let status = q
        .status
        .as_deref()
        .filter(|st| STATUS_FILTERS.iter().any(|(k, _)| k == st))
        .unwrap_or_default()
        .to_owned();
    let page: usize = q
        .page
        .as_deref()
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let conn = &picked.conn;
    let users = all_pages(
        |p| async move { conn.list_users(&p).await },
        Params::default(),
    )
    .await;
    let results = users.map(|all| {
        let needle = search.to_lowercase();
        let total = all.len();
        let found: Vec<Value> = all
            .into_iter()
            .filter(|u| matches_filter(u, &needle, &status))
            .collect();
        users_results(&s, conn.id.as_str(), &found, total, page, &search, &status)
    });
    if partial {
        return match results {
            Ok(m) => ui::fragment(StatusCode::OK, m),
            Err(e) => results_error(&e),
        };
    }
    let conn_id = conn.id.as_str();
    let body = results.map(|results| {
        html! {
            form.search method="get" action=(BASE) role="search"
                hx-get=(BASE) hx-target={ "#" (RESULTS_ID) } hx-swap="outerHTML" hx-push-url="true"
                hx-trigger="submit, input changed delay:300ms from:#dir-q, search from:#dir-q, change from:#dir-status" {
                input type="hidden" name="connection" value=(conn_id);
                div.field {
                    label for="dir-q" { "Search users" }
                    input #dir-q type="search" name="q" value=(search) autocomplete="off"
                        placeholder="Name or e-mail" aria-describedby="dir-q-help";
                    span.help #dir-q-help { "Part of a name or an e-mail address; results update as you type." }
                }
                div.field {
                    label for="dir-status" { "Show" }
                    select #dir-status name="status" {
                        @for (k, label) in STATUS_FILTERS {
                            option value=(k) selected[*k == status] { (label) }
                        }
                    }
                }
                div.actions { button type="submit" { "Search" } }
            }
            (results)
        }
    });
    dir_page(&s, &picked, Tab::Users, "Directory: users", body)
}

fn users_results(
    s: &Session,
    conn: &str,
    found: &[Value],
    total: usize,
    page: usize,
    search: &str,
    status: &str,
) -> Markup {
    let pages = found.len().div_ceil(USERS_PER_PAGE).max(1);
    let page = page.min(pages);
    let start = (page - 1) * USERS_PER_PAGE;
    let shown = &found[start.min(found.len())..(start + USERS_PER_PAGE).min(found.len())];
    let writer = s.require_write().is_ok();
    let page_url = |n: usize| {
        let n = n.to_string();
        with_query(
            BASE,
            &[
                ("connection", conn),
                ("q", search),
                ("status", status),
                ("page", if n == "1" { "" } else { &n }),
            ],
        )
    };
    html! {
        div #(RESULTS_ID) {
            p.count role="status" {
                @if found.is_empty() {
                    "No user matches."
                } @else if found.len() == total {
                    (total) " users"
                } @else {
                    (found.len()) " of " (total) " users match"
                }
                @if pages > 1 { " · page " (page) " of " (pages) }
            }
            @if !shown.is_empty() {
                form #bulk method="post" action={ (BASE) "/bulk" } {
                    (ui::csrf(s))
                    input type="hidden" name="connection" value=(conn);
                    @if writer {
                        fieldset.bulk {
                            legend { "With the selected users" }
                            div.actions {
                                button.danger type="submit" name="action" value="disable"
                                    data-confirm="Disable the selected users? They cannot log in until enabled again; their vaults are kept." { "Disable" }
                                button.secondary type="submit" name="action" value="enable" { "Enable" }
                                button.secondary type="submit" name="action" value="require-password-change"
                                    data-confirm="Require the selected users to change their master password at their next login?" { "Require password change" }
                            }
                        }
                    }
                    div.table-wrap {
                        table.responsive.users {
                            thead { tr {
                                @if writer {
                                    th scope="col" class="sel" {
                                        input type="checkbox" data-select-all="user" aria-label="Select all users on this page";
                                    }
                                }
                                th scope="col" { "Name" }
                                th scope="col" { "E-mail" }
                                th scope="col" { "Status" }
                                th scope="col" { "Multifactor" }
                                th scope="col" { "Groups" }
                                th scope="col" { "Last login" }
                            } }
                            tbody {
                                @for u in shown {
                                    @let email = text(u, "primary_email_address");
                                    tr {
                                        @if writer {
                                            td.sel data-label="Select" {
                                                input type="checkbox" name="user" value=(email) aria-label={ "Select " (email) };
                                            }
                                        }
                                        td data-label="Name" { a href=(user_url(conn, email)) { (display_name(u)) } }
                                        td data-label="E-mail" { (email) }
                                        td data-label="Status" {
                                            span.badges {
                                                (status_badge(status_of(u)))
                                                @if is_admin(u) { " " (ui::badge("info", "Admin")) }
                                            }
                                        }
                                        td data-label="Multifactor" {
                                            @match mfa(u) {
                                                Some(m) => (m),
                                                None => span.muted { "none" },
                                            }
                                        }
                                        td data-label="Groups" { (group_names(u).join(", ")) }
                                        td data-label="Last login" { (when(u, "last_login_at")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager aria-label="Pages of users" {
                    @if page > 1 { a href=(page_url(page - 1)) rel="prev" { "← Previous" } }
                    span { "Page " (page) " of " (pages) }
                    @if page < pages { a href=(page_url(page + 1)) rel="next" { "Next →" } }
                }
            }
        }
    }
}

// ---- groups -------------------------------------------------------------------------------

async fn groups_page(State(app): State<App>, s: Session, RawQuery(raw): RawQuery) -> Response {
    let q = DirQuery::parse(raw.as_deref());
    let picked = match pick(&app, &s, q.connection.as_deref()).await {
        Ok(Some(p)) => p,
        Ok(None) => return unavailable(&s, "Groups", None),
        Err(e) => return unavailable(&s, "Groups", Some(&e)),
    };
    let conn = &picked.conn;
    let p = Params {
        page_size: GROUPS_PER_PAGE,
        next: q.next.clone().filter(|n| !n.is_empty()),
        ..Params::default()
    };
    let body = conn.list_groups(&p).await.map(|v| {
        let groups = v
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let next = v.get("next").and_then(Value::as_str).map(str::to_owned);
        groups_table(conn.id.as_str(), &groups, next.as_deref(), p.next.is_some())
    });
    dir_page(&s, &picked, Tab::Groups, "Directory: groups", body)
}

fn groups_table(conn: &str, groups: &[Value], next: Option<&str>, not_first: bool) -> Markup {
    html! {
        @if groups.is_empty() {
            p.muted { "This account has no groups (LastPass has a group only while it has members)." }
        } @else {
            div.table-wrap {
                table.responsive.groups {
                    thead { tr {
                        th scope="col" { "Group" }
                        th scope="col" class="num" { "Members" }
                        th scope="col" { "Who" }
                    } }
                    tbody {
                        @for g in groups {
                            @let members = g.get("users").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                            @let name = text(g, "name");
                            tr {
                                td data-label="Group" { strong { (name) } }
                                td.num data-label="Members" { (members.len()) }
                                td data-label="Who" {
                                    details {
                                        summary { "Show the " (members.len()) " members of " (name) }
                                        ul.members {
                                            @for m in members {
                                                @let email = text(m, "primary_email_address");
                                                li {
                                                    a href=(user_url(conn, email)) { (display_name(m)) }
                                                    @if !text(m, "name").is_empty() { " " span.muted { (email) } }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager(&format!("{BASE}/groups"), conn, next, not_first, "groups"))
    }
}

/// Forward paging with the unified API's cursor.
fn pager(path: &str, conn: &str, next: Option<&str>, not_first: bool, what: &str) -> Markup {
    html! {
        @if next.is_some() || not_first {
            nav.pager aria-label={ "Pages of " (what) } {
                @if not_first { a href=(with_query(path, &[("connection", conn)])) { "← First page" } }
                @if let Some(n) = next { a href=(with_query(path, &[("connection", conn), ("next", n)])) rel="next" { "Next →" } }
            }
        }
    }
}

// ---- shared folders -----------------------------------------------------------------------

async fn folders_page(State(app): State<App>, s: Session, RawQuery(raw): RawQuery) -> Response {
    let q = DirQuery::parse(raw.as_deref());
    let picked = match pick(&app, &s, q.connection.as_deref()).await {
        Ok(Some(p)) => p,
        Ok(None) => return unavailable(&s, "Shared folders", None),
        Err(e) => return unavailable(&s, "Shared folders", Some(&e)),
    };
    let conn = &picked.conn;
    let p = Params {
        page_size: FOLDERS_PER_PAGE,
        next: q.next.clone().filter(|n| !n.is_empty()),
        ..Params::default()
    };
    let body = async {
        let v = conn.list_resources(&p).await?;
        let folders = v
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut with_members = Vec::with_capacity(folders.len());
        for f in folders {
            let base = Params {
                resource_type: Some(unified::model::RESOURCE_TYPE.into()),
                resource_id: Some(text(&f, "id").to_owned()),
                ..Params::default()
            };
            let members =
                all_pages(|p| async move { conn.list_resource_users(&p).await }, base).await?;
            with_members.push((f, members));
        }
        let next = v.get("next").and_then(Value::as_str).map(str::to_owned);
        Ok(folders_list(
            conn.id.as_str(),
            &with_members,
            next.as_deref(),
            p.next.is_some(),
        ))
    }
    .await;
    dir_page(&s, &picked, Tab::Folders, "Directory: shared folders", body)
}

/// A member's folder role (`admin`, `editor`, `viewer`) and its LastPass flags.
fn folder_role(m: &Value) -> (&str, &str, Vec<&'static str>) {
    let role = m
        .get("roles")
        .and_then(Value::as_array)
        .and_then(|r| r.first());
    let id = role.map_or("", |r| {
        r.pointer("/type/value")
            .and_then(Value::as_str)
            .unwrap_or_default()
    });
    let name = role.map_or("", |r| text(r, "name"));
    let flag = |k: &str| {
        role.and_then(|r| r.pointer(&format!("/type/source_value/{k}")))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let mut perms = Vec::new();
    if flag("can_administer") {
        perms.push("Admin");
    }
    if flag("readonly") {
        perms.push("Read-only");
    }
    if !flag("give") {
        perms.push("Hide passwords");
    }
    (id, name, perms)
}

fn role_badge(id: &str, name: &str) -> Markup {
    let kind = match id {
        "admin" => "info",
        "viewer" => "muted",
        _ => "ok",
    };
    ui::badge(kind, if name.is_empty() { id } else { name })
}

fn folders_list(
    conn: &str,
    folders: &[(Value, Vec<Value>)],
    next: Option<&str>,
    not_first: bool,
) -> Markup {
    html! {
        @if folders.is_empty() {
            p.muted { "This account has no shared folders." }
        }
        @for (i, (f, members)) in folders.iter().enumerate() {
            @let name = text(f, "name");
            @let admins = members.iter().filter(|m| folder_role(m).0 == "admin").count();
            @let heading = format!("folder-{i}");
            details.folder open[i == 0] {
                summary {
                    h2 #(heading) { (name) }
                    span.muted { " · " (members.len()) " members, " (admins) " admin" @if admins != 1 { "s" } }
                    @if f.get("deleted").and_then(Value::as_bool).unwrap_or(false) { " " (ui::badge("danger", "Deleted")) }
                }
                @if members.is_empty() {
                    p.muted { "No members." }
                } @else {
                    div.table-wrap {
                        table.responsive.folder-members aria-labelledby=(heading) {
                            thead { tr {
                                th scope="col" { "Member" }
                                th scope="col" { "Kind" }
                                th scope="col" { "Role" }
                                th scope="col" { "Permissions" }
                                th scope="col" { "Status" }
                            } }
                            tbody {
                                @for m in members {
                                    @let (role, role_name, perms) = folder_role(m);
                                    @let user = text(m, "member_type") == "user";
                                    tr {
                                        td data-label="Member" {
                                            @if user {
                                                a href=(user_url(conn, text(m, "username"))) { (display_member(m)) }
                                            } @else {
                                                (display_member(m))
                                            }
                                        }
                                        td data-label="Kind" { @if user { "User" } @else { "Group" } }
                                        td data-label="Role" { (role_badge(role, role_name)) }
                                        td data-label="Permissions" {
                                            @if perms.is_empty() { span.muted { "Can edit, passwords visible" } }
                                            @else { (perms.join(", ")) }
                                        }
                                        td data-label="Status" {
                                            @match m.pointer("/status/value").and_then(Value::as_str) {
                                                Some(st) => (status_badge(st)),
                                                None => span.muted { "—" },
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager(&format!("{BASE}/folders"), conn, next, not_first, "shared folders"))
    }
}

fn display_member(m: &Value) -> String {
    match (text(m, "name"), text(m, "username")) {
        ("", u) => u.to_owned(),
        (n, u) => format!("{n} ({u})"),
    }
}

// ---- one user -----------------------------------------------------------------------------

/// Every group name of the account (for "Add to group").
async fn group_names_of(conn: &unified::Conn) -> Result<Vec<String>, Error> {
    let base = Params {
        fields: Some(vec!["name".into()]),
        ..Params::default()
    };
    let groups = all_pages(|p| async move { conn.list_groups(&p).await }, base).await?;
    Ok(groups
        .iter()
        .map(|g| text(g, "name").to_owned())
        .filter(|n| !n.is_empty())
        .collect())
}

async fn user_page(
    State(app): State<App>,
    Path(id): Path<String>,
    s: Session,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = DirQuery::parse(raw.as_deref());
    let picked = match pick(&app, &s, q.connection.as_deref()).await {
        Ok(Some(p)) => p,
        Ok(None) => return unavailable(&s, "User", None),
        Err(e) => return unavailable(&s, "User", Some(&e)),
    };
    let conn = &picked.conn;
    let loaded = async {
        let user = conn.get_user(&id, &Params::default()).await?;
        let groups = group_names_of(conn).await?;
        Ok::<_, Error>((user.get("data").cloned().unwrap_or_default(), groups))
    }
    .await;
    let (u, all_groups) = match loaded {
        Ok(x) => x,
        Err(e) => {
            let title = format!("User {id}");
            return dir_page(&s, &picked, Tab::Users, &title, Err(e));
        }
    };
    let body = user_detail(&s, conn.id.as_str(), &u, &all_groups);
    let title = format!("User {}", display_name(&u));
    ui::page(&s, Nav::Directory, &title, body)
}

fn user_detail(s: &Session, conn: &str, u: &Value, all_groups: &[String]) -> Markup {
    let email = text(u, "primary_email_address");
    let status = status_of(u);
    let groups = group_names(u);
    let mine: BTreeSet<&str> = groups.iter().copied().collect();
    let others: Vec<&String> = all_groups
        .iter()
        .filter(|g| !mine.contains(g.as_str()))
        .collect();
    let writer = s.require_write().is_ok();
    let mfa = mfa(u);
    let action = |slug: &str| format!("{BASE}/users/{}/{slug}", seg(email));
    let button = |slug: &str, label: &str, class: &str, confirm: Option<String>| {
        html! {
            form.inline method="post" action=(action(slug)) {
                (ui::csrf(s))
                input type="hidden" name="connection" value=(conn);
                button type="submit" class=(class) data-confirm=[confirm] { (label) }
            }
        }
    };
    let custom = u
        .get("unified_custom_fields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    html! {
        p.crumbs { a href=(with_query(BASE, &[("connection", conn)])) { "← Users of " (conn) } }
        h1 { (display_name(u)) }
        p.badges {
            (status_badge(status))
            @if is_admin(u) { " " (ui::badge("info", "Admin")) }
            @if mfa.is_some() { " " (ui::badge("ok", "Multifactor on")) }
        }
        div.grid2 {
            section.panel.tight aria-labelledby="props-h" {
                h2 #props-h { "Properties" }
                dl.props {
                    dt { "E-mail" } dd { (email) }
                    dt { "Name" } dd { (text(u, "name")) }
                    dt { "Status" } dd {
                        @match status {
                            "enabled" => "Active",
                            "disabled" => "Disabled: cannot log in (vault kept)",
                            "pending" => "Invited: has not accepted the invitation yet",
                            other => (other),
                        }
                    }
                    dt { "Role" } dd { @if is_admin(u) { "Admin" } @else { "User" } }
                    dt { "Multifactor" } dd {
                        @match &mfa { Some(m) => (m), None => span.muted { "none" } }
                    }
                    dt { "Groups" } dd {
                        @if groups.is_empty() { span.muted { "none" } } @else { (groups.join(", ")) }
                    }
                    dt { "Last login" } dd { (when(u, "last_login_at")) }
                    dt { "Created" } dd { (when(u, "created_at")) }
                    dt { "LastPass ID" } dd { (text(u, "remote_id")) }
                    @for (k, v) in &custom {
                        dt { (k) } dd { (v.as_str().unwrap_or_default()) }
                    }
                }
            }
            @if writer {
                section.panel.tight aria-labelledby="actions-h" {
                    h2 #actions-h { "Actions" }
                    div.actions.user-actions {
                        @match status {
                            "enabled" => (button("disable", "Disable", "danger",
                                Some(format!("Disable {email}? They cannot log in until enabled again; their vault is kept.")))),
                            "disabled" => (button("enable", "Enable", "", None)),
                            _ => {}
                        }
                        @if status == "pending" {
                            (button("reinvite", "Resend invitation", "secondary", None))
                        }
                        (button("require-password-change", "Require password change", "secondary",
                            Some(format!("Require {email} to change their master password at their next login?"))))
                        (button("reset-password", "Send password reset e-mail", "secondary",
                            Some(format!("Send {email} a master password reset e-mail?"))))
                        @if mfa.is_some() {
                            (button("disable-mfa", "Disable multifactor", "danger",
                                Some(format!("Turn off multifactor authentication for {email}?"))))
                        }
                    }
                    h3 { "Groups" }
                    @if groups.is_empty() {
                        p.muted { "Not in any group." }
                    } @else {
                        ul.group-list {
                            @for g in &groups {
                                li {
                                    span { (g) }
                                    form.inline method="post" action=(action("remove-group")) {
                                        (ui::csrf(s))
                                        input type="hidden" name="connection" value=(conn);
                                        input type="hidden" name="group" value=(g);
                                        button.link type="submit" aria-label={ "Remove from " (g) }
                                            data-confirm={ "Remove " (email) " from " (g) "?" } { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                    @if !others.is_empty() {
                        form.add-group method="post" action=(action("add-group")) {
                            (ui::csrf(s))
                            input type="hidden" name="connection" value=(conn);
                            div.field {
                                label for="add-group" { "Add to group" }
                                select #add-group name="group" required {
                                    option value="" { "Choose a group…" }
                                    @for g in &others { option value=(g) { (g) } }
                                }
                            }
                            button.secondary type="submit" { "Add" }
                        }
                    }
                }
            }
        }
    }
}

/// The per-item failures an action's report lists (its call succeeds as a whole).
fn item_failures(data: &Value) -> Vec<String> {
    data.get("results")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter(|i| matches!(text(i, "outcome"), "failed" | "not_attempted"))
                .map(|i| match text(i, "message") {
                    "" => "LastPass did not apply it".to_owned(),
                    m => m.to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// True when every item of the report says it was already so.
fn all_unchanged(data: &Value) -> bool {
    data.get("results")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty() && r.iter().all(|i| text(i, "outcome") == "unchanged"))
}

/// Runs one Direct action as `POST /actions/{name}` does ([`unified::Conn::run_action`]).
async fn run_action(conn: &unified::Conn, name: &str, input: Value) -> Result<Value, Error> {
    Ok(conn
        .run_action(name, input)
        .await
        .map_err(Error::from)?
        .data)
}

/// One user action of the detail page: its LastPass action and what to say afterwards.
struct UserAction {
    action: &'static str,
    /// What was done (`{email}`, `{group}` are filled in).
    done: &'static str,
    /// What the failure message starts with.
    failed: &'static str,
    unchanged: &'static str,
    group: bool,
}

fn user_action_of(slug: &str) -> Option<UserAction> {
    let a = |action, done, failed, unchanged, group| UserAction {
        action,
        done,
        failed,
        unchanged,
        group,
    };
    Some(match slug {
        "disable" => a(
            "lastpass_disable_user",
            "Disabled {email}: they cannot log in until enabled again; their vault is kept.",
            "Could not disable {email}",
            "{email} was already disabled.",
            false,
        ),
        "enable" => a(
            "lastpass_enable_user",
            "Enabled {email}: they can log in again.",
            "Could not enable {email}",
            "{email} was already enabled.",
            false,
        ),
        "reinvite" => a(
            "lastpass_reinvite_user",
            "Sent the invitation to {email} again.",
            "Could not resend the invitation to {email}",
            "",
            false,
        ),
        "require-password-change" => a(
            "lastpass_require_password_change",
            "{email} must change their master password at their next login.",
            "Could not require a password change of {email}",
            "",
            false,
        ),
        "reset-password" => a(
            "lastpass_reset_password",
            "Sent a master password reset e-mail to {email}.",
            "Could not send a password reset e-mail to {email}",
            "",
            false,
        ),
        "disable-mfa" => a(
            "lastpass_disable_mfa",
            "Turned off multifactor authentication for {email}.",
            "Could not turn off multifactor authentication for {email}",
            "",
            false,
        ),
        "add-group" => a(
            "lastpass_add_user_to_groups",
            "Added {email} to {group}.",
            "Could not add {email} to {group}",
            "",
            true,
        ),
        "remove-group" => a(
            "lastpass_remove_user_from_groups",
            "Removed {email} from {group}.",
            "Could not remove {email} from {group}",
            "",
            true,
        ),
        _ => return None,
    })
}

async fn user_action(
    State(app): State<App>,
    Path((id, slug)): Path<(String, String)>,
    Posted { session: s, form }: Posted,
) -> Response {
    let Some(act) = user_action_of(&slug) else {
        return ui::error_page(
            Some(&s),
            &Error::NotFound(format!("no user action {:?}", lp_types::shown(&slug))),
        );
    };
    if let Err(e) = s.require_write() {
        return ui::error_page(Some(&s), &e);
    }
    let conn = match pick(&app, &s, form.text("connection")).await {
        Ok(Some(p)) => p.conn,
        Ok(None) => return unavailable(&s, "User", None),
        Err(e) => return ui::error_page(Some(&s), &e),
    };
    let back = user_url(conn.id.as_str(), &id);
    let group = form.text("group").unwrap_or_default();
    let fill = |t: &str| t.replace("{email}", &id).replace("{group}", group);
    if act.group && group.is_empty() {
        return ui::redirect_with(
            &s,
            &back,
            FlashKind::Error,
            "Choose a group first; nothing was changed.",
        );
    }
    let input = if act.group {
        json!({ "email": id, "groups": [group] })
    } else {
        json!({ "email": id })
    };
    let result = run_action(&conn, act.action, input).await;
    tracing::info!(target: "lpbridge::console", action = act.action, connection = %conn.id,
        actor = s.actor_id(), ok = result.is_ok(), "user action");
    match result {
        Ok(data) => {
            let failures = item_failures(&data);
            if !failures.is_empty() {
                ui::redirect_with(
                    &s,
                    &back,
                    FlashKind::Error,
                    format!(
                        "{}: LastPass answered: {}",
                        fill(act.failed),
                        failures.join("; ")
                    ),
                )
            } else if all_unchanged(&data) && !act.unchanged.is_empty() {
                ui::redirect_with(&s, &back, FlashKind::Info, fill(act.unchanged))
            } else {
                ui::redirect_with(&s, &back, FlashKind::Ok, fill(act.done))
            }
        }
        Err(e) => {
            let (_, p) = Problems::of(&e);
            ui::redirect_with(
                &s,
                &back,
                FlashKind::Error,
                format!("{}: {}", fill(act.failed), p.general_messages().join(" ")),
            )
        }
    }
}

// ---- bulk actions -------------------------------------------------------------------------

async fn bulk(State(app): State<App>, Posted { session: s, form }: Posted) -> Response {
    if let Err(e) = s.require_write() {
        return ui::error_page(Some(&s), &e);
    }
    let conn = match pick(&app, &s, form.text("connection")).await {
        Ok(Some(p)) => p.conn,
        Ok(None) => return unavailable(&s, "Directory", None),
        Err(e) => return ui::error_page(Some(&s), &e),
    };
    let back = with_query(BASE, &[("connection", conn.id.as_str())]);
    let (action, verb) = match form.one("action") {
        Some("disable") => ("lastpass_disable_user", "Disable"),
        Some("enable") => ("lastpass_enable_user", "Enable"),
        Some("require-password-change") => (
            "lastpass_require_password_change",
            "Require a password change of",
        ),
        _ => {
            return ui::redirect_with(
                &s,
                &back,
                FlashKind::Error,
                "Unknown bulk action; nothing was changed.",
            );
        }
    };
    let mut seen = BTreeSet::new();
    let users: Vec<String> = form
        .all("user")
        .into_iter()
        .map(str::trim)
        .filter(|u| !u.is_empty() && seen.insert(u.to_lowercase()))
        .map(str::to_owned)
        .collect();
    if users.is_empty() {
        return ui::redirect_with(
            &s,
            &back,
            FlashKind::Error,
            "Select at least one user first; nothing was changed.",
        );
    }
    if users.len() > MAX_BULK {
        return ui::redirect_with(
            &s,
            &back,
            FlashKind::Error,
            format!("At most {MAX_BULK} users at a time; nothing was changed."),
        );
    }
    let n = users.len();
    let title = format!("{verb} {n} user{}", if n == 1 { "" } else { "s" });
    let job = jobs::start(&s, title, n, &back);
    let worker = job.clone();
    tracing::info!(target: "lpbridge::console", action, connection = %conn.id, users = n,
        actor = s.actor_id(), job = %job.id, "bulk action started");
    tokio::spawn(async move {
        // One action per user, so that progress and failures are per user; the snapshot is
        // dropped once at the end (and after any failure, which may have been applied).
        let mut touched = false;
        for email in users {
            let out = actions::run(&conn.client, action, json!({ "email": email })).await;
            touched |= out.as_ref().map_or(true, |o| o.changed_directory);
            match out {
                Ok(o) => match item_failures(&o.data).first() {
                    Some(m) => worker.failed(&email, m.clone()),
                    None => worker.ok(),
                },
                Err(e) => {
                    let (_, p) = Problems::of(&Error::from(e));
                    worker.failed(&email, p.general_messages().join(" "));
                }
            }
        }
        if touched {
            conn.distrust_directory().await;
        }
        worker.finish();
    });
    ui::redirect_to(s.htmx, &job.url())
}
