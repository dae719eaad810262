//! The wizard's dialogs, loaded by htmx into the step page's `<dialog>`: **Company details**
//! (step 3's Manage: search and select the managed company to map to, or unmap and create a new
//! one), **Manage users** (step 4: select which e-mails to grant access) and **User details**
//! (search and select the LastPass user to map a contact to, or unmap and create a new user).
//!
//! A Save that the wizard refuses answers 422 with the dialog again, the problem next to its
//! field and the input kept; nothing is saved. Opened without htmx (a new tab), a dialog is a
//! page of its own.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::steps::{DIALOG, saved};
use super::{actor, company_url, managed_names, problems_of, rename_all, status_badge, wizard_url};
use crate::console::ui::{self, Nav, Problems};
use crate::console::{Posted, Session};
use crate::error::Error;
use crate::http::App;
use crate::msp::plan::CompanyAction;
use crate::msp::plan::ImportStatus;
use crate::msp::wizard::{self, CompanyEdit, UserEdits, UsersView};

/// A dialog's content: a fragment for htmx, else a page of its own (with the same target id,
/// so its forms work there too).
fn dialog_or_page(s: &Session, status: StatusCode, title: &str, body: Markup) -> Response {
    if s.htmx {
        return ui::fragment(status, body);
    }
    ui::page_with_status(
        status,
        s,
        Nav::Import,
        title,
        html! { div #(DIALOG) { (body) } },
    )
}

/// An error inside the dialog (or as a page).
/// The dialogs that search the MSP account (its managed companies, their users) are for the
/// admin who may change this wizard only, as their Manage buttons are.
async fn may_search(app: &App, s: &Session, id: &str) -> Result<(), Response> {
    let v = wizard::get_import(app, id)
        .await
        .map_err(|e| dialog_error(s, &e.0))?;
    if super::may_change(s, &v) {
        return Ok(());
    }
    Err(dialog_error(
        s,
        &Error::Forbidden(format!(
            "only {} may change this import",
            v.lock
                .holder
                .as_deref()
                .unwrap_or("the admin who started it")
        )),
    ))
}

fn dialog_error(s: &Session, e: &Error) -> Response {
    let (status, p) = problems_of(e, &|_| None);
    let body = html! {
        div.dialog-body {
            h2 #msp-dialog-title { "Something went wrong" }
            (ui::error_summary(&p))
            div.actions { button.secondary type="button" data-close-dialog { "Close" } }
        }
    };
    dialog_or_page(s, status, "Something went wrong", body)
}

/// What a refused Save says at the top of a dialog: only what no field shows (the rest is
/// next to its field).
fn dialog_problems(p: &Problems) -> Markup {
    html! {
        @if !p.general_messages().is_empty() {
            div.alert.error role="alert" {
                @for g in p.general_messages() { p { (g) } }
            }
        }
    }
}

/// A field's error, announced when the dialog is re-rendered with it (nothing was saved).
fn field_error(p: &Problems, name: &str) -> Markup {
    html! {
        @if let Some(e) = p.get(name) {
            p.field-error id={ (ui::field_id(name)) "-error" } role="alert" { (e) " Nothing was saved." }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

fn target_sel() -> String {
    format!("#{DIALOG}")
}

// ---- Company details ------------------------------------------------------------------------

pub(super) async fn company(
    State(app): State<App>,
    s: Session,
    Path((id, company)): Path<(String, String)>,
) -> Response {
    if let Err(r) = may_search(&app, &s, &id).await {
        return r;
    }
    render_company(
        &app,
        &s,
        &id,
        &company,
        StatusCode::OK,
        "",
        None,
        &Problems::default(),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn render_company(
    app: &App,
    s: &Session,
    id: &str,
    company: &str,
    status: StatusCode,
    q: &str,
    chosen: Option<&str>,
    p: &Problems,
) -> Response {
    let lists = match wizard::list_companies(app, id).await {
        Ok(l) => l,
        Err(e) => return dialog_error(s, &e.0),
    };
    let Some(row) = lists
        .companies_in_psa
        .iter()
        .find(|r| r.psa_company_id == company)
    else {
        return dialog_error(
            s,
            &Error::NotFound(format!(
                "no company {:?} in this import",
                lp_types::shown(company)
            )),
        );
    };
    let names = managed_names(app, &lists.companies_in_psa).await;
    let hits = company_hits(app, id, company, q, chosen).await;
    let url = company_url(id, "choices", company, "");
    let search = company_url(id, "choices", company, "/search");
    let mapped = row.mapped_to.as_ref().filter(|m| m.exists);
    let err = p.get("choice").is_some();
    let body = html! {
        div.dialog-body {
            h2 #msp-dialog-title { "Company details" }
            p { strong { (row.name) } " " (status_badge(row.import_status)) }
            p { "Now: " (super::action_text(row, &names)) }
            (dialog_problems(p))
            form method="post" action=(url) hx-post=(url) hx-target=(target_sel()) hx-swap="innerHTML" {
                (ui::csrf(s))
                fieldset aria-describedby=[err.then_some("f-choice-error")] {
                    legend { "Action in LastPass" }
                    (field_error(p, "choice"))
                    div.msp-choices #f-choice {
                        @if let Some(m) = mapped {
                            label { input type="radio" name="choice" value="keep" checked[chosen == Some("keep")]; " Keep the mapping to " (m.name) }
                        }
                        @if row.import_status == ImportStatus::Unmapped {
                            label { input type="radio" name="choice" value="create" checked[chosen == Some("create")]; " Create a new managed company" }
                        }
                        @if mapped.is_some() || !row.duplicates.is_empty() {
                            label { input type="radio" name="choice" value="unmap" checked[chosen == Some("unmap")]; " Unmap and create as a new managed company" }
                        }
                    }
                    div.field {
                        label for="msp-company-q" { "Search managed companies" }
                        input #msp-company-q type="search" name="q" value=(q) autocomplete="off" autofocus
                            hx-get=(search) hx-trigger="input changed delay:300ms, search"
                            hx-target="#msp-company-hits" hx-swap="innerHTML";
                    }
                    p.muted #msp-company-hits-h { "Select the managed company to map to:" }
                    div.msp-hits #msp-company-hits role="group" aria-labelledby="msp-company-hits-h" { (hits) }
                }
                div.actions {
                    button type="submit" { "Save" }
                    button.secondary type="button" data-close-dialog { "Cancel" }
                }
            }
        }
    };
    dialog_or_page(s, status, "Company details", body)
}

/// The managed companies matching `q`, as radio buttons `map:<id>`.
async fn company_hits(app: &App, id: &str, company: &str, q: &str, chosen: Option<&str>) -> Markup {
    match wizard::search_managed_companies(app, id, q, None).await {
        Ok(found) => html! {
            @if found.items.is_empty() {
                p.muted { "No managed company matches." }
            }
            @for h in &found.items {
                @let value = format!("map:{}", h.company.id.as_str());
                @let others: Vec<&String> = h.used_by.iter().filter(|u| u.as_str() != company).collect();
                label {
                    input type="radio" name="choice" value=(value) checked[chosen == Some(value.as_str())];
                    " " (h.company.name)
                    span.msp-note {
                        "ID " (h.company.id.as_str())
                        @if !others.is_empty() {
                            " · already mapped to PSA company "
                            (others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
                        }
                    }
                }
            }
            @if found.next_page_token.is_some() {
                p.muted { "More managed companies match: narrow the search." }
            }
        },
        Err(e) => {
            let (_, p) = problems_of(&e.0, &|_| None);
            ui::error_summary(&p)
        }
    }
}

pub(super) async fn search_companies(
    State(app): State<App>,
    s: Session,
    Path((id, company)): Path<(String, String)>,
    Query(q): Query<SearchQuery>,
) -> Response {
    if let Err(r) = may_search(&app, &s, &id).await {
        return r;
    }
    let hits = company_hits(
        &app,
        &id,
        &company,
        q.q.as_deref().unwrap_or_default(),
        None,
    )
    .await;
    dialog_or_page(&s, StatusCode::OK, "Managed companies", hits)
}

pub(super) async fn save_company(
    State(app): State<App>,
    Path((id, company)): Path<(String, String)>,
    Posted { session: s, form }: Posted,
) -> Response {
    if let Err(e) = s.require_admin() {
        return dialog_error(&s, &e);
    }
    let q = form.one("q").unwrap_or_default().to_owned();
    let chosen = form.text("choice").map(str::to_owned);
    let mut edit = CompanyEdit {
        company: company.clone(),
        ..CompanyEdit::default()
    };
    let mut p = Problems::default();
    match chosen.as_deref() {
        None => p.field(
            "choice",
            "Choose what to do with this company: select the managed company to map to, or another action.",
        ),
        Some("keep") => edit.action = Some(CompanyAction::Keep),
        Some("create") => edit.action = Some(CompanyAction::Create),
        Some("unmap") => edit.action = Some(CompanyAction::Unmap),
        Some(other) => match other.strip_prefix("map:").map(str::trim) {
            Some(m) if !m.is_empty() => {
                edit.action = Some(CompanyAction::Map);
                edit.managed_company_id = Some(m.to_owned());
            }
            _ => p.field("choice", "Is not one of the choices offered."),
        },
    }
    if !p.is_empty() {
        return render_company(
            &app,
            &s,
            &id,
            &company,
            StatusCode::UNPROCESSABLE_ENTITY,
            &q,
            chosen.as_deref(),
            &p,
        )
        .await;
    }
    match wizard::patch_companies(&app, &actor(&s), &id, &[edit]).await {
        Ok(lists) => {
            let name = lists
                .companies_in_psa
                .iter()
                .find(|r| r.psa_company_id == company)
                .map_or(company.as_str(), |r| r.name.as_str());
            saved(
                &s,
                &wizard_url(&id, "/choices"),
                format!("Saved the company details of {name}."),
            )
        }
        Err(e) => {
            let (status, p) = problems_of(&e.0, &rename_all("choice"));
            render_company(&app, &s, &id, &company, status, &q, chosen.as_deref(), &p).await
        }
    }
}

// ---- Manage users -----------------------------------------------------------------------------

pub(super) async fn users(
    State(app): State<App>,
    s: Session,
    Path((id, company)): Path<(String, String)>,
) -> Response {
    match wizard::get_users(&app, &id, &company).await {
        Ok(v) => {
            render_users(
                &app,
                &s,
                &id,
                &v,
                StatusCode::OK,
                None,
                None,
                &Problems::default(),
            )
            .await
        }
        Err(e) => dialog_error(&s, &e.0),
    }
}

/// LastPass user id → how to show it, for the contacts mapped to existing users.
async fn user_labels(app: &App, id: &str, company: &str, v: &UsersView) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if v.contacts.iter().all(|c| c.map_to_user.is_none()) {
        return out;
    }
    if let Ok(found) = wizard::search_company_users(app, id, company, "").await {
        for h in found.items {
            let label = match &h.user.name {
                Some(n) if !n.trim().is_empty() => format!("{n} ({})", h.user.email),
                _ => h.user.email.clone(),
            };
            out.insert(h.user.id.as_str().to_owned(), label);
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn render_users(
    app: &App,
    s: &Session,
    id: &str,
    v: &UsersView,
    status: StatusCode,
    ticked: Option<&HashSet<String>>,
    note: Option<&str>,
    p: &Problems,
) -> Response {
    let company = &v.company.psa_company_id;
    let url = company_url(id, "users", company, "");
    let labels = user_labels(app, id, company, v).await;
    let can_map = v.map_target.is_some();
    let is_ticked = |c: &wizard::ContactView| match (ticked, &c.contact.email) {
        (Some(t), Some(e)) => t.iter().any(|x| x.eq_ignore_ascii_case(e)),
        (Some(_), None) => false,
        (None, _) => c.selected,
    };
    let err = p.get("email").is_some();
    let body = html! {
        div.dialog-body {
            h2 #msp-dialog-title { "Manage users" }
            p { strong { (v.company.name) } }
            @if let Some(n) = note { (ui::alert("ok", html! { p { (n) } })) }
            (dialog_problems(p))
            form method="post" action=(url) hx-post=(url) hx-target=(target_sel()) hx-swap="innerHTML" {
                (ui::csrf(s))
                fieldset aria-describedby=[err.then_some("f-email-error")] {
                    legend { "Select which emails to grant access" }
                    p.muted { "Emails that were already imported before are selected by default." }
                    (field_error(p, "email"))
                    @if v.contacts.is_empty() {
                        p { "This company has no contacts in the PSA." }
                    } @else {
                        div.table-wrap #f-email {
                            table.responsive.msp-table #msp-contacts {
                                thead { tr {
                                    th scope="col" { input type="checkbox" data-select-all="email" aria-label="Select all emails"; }
                                    th scope="col" { "Name" }
                                    th scope="col" { "E-mail" }
                                    th scope="col" { "In LastPass" }
                                    @if can_map { th scope="col" { span.msp-vh { "User details" } } }
                                } }
                                tbody {
                                    @for c in &v.contacts {
                                        tr {
                                            td data-label="Grant access" { div.msp-cell {
                                                @if let Some(e) = &c.contact.email {
                                                    input type="checkbox" name="email" value=(e) checked[is_ticked(c)]
                                                        aria-label={ "Grant access to " (e) };
                                                } @else {
                                                    input type="checkbox" disabled aria-label={ "Grant access to " (c.contact.name) " (no valid e-mail)" };
                                                }
                                            } }
                                            td data-label="Name" { div.msp-cell {
                                                (c.contact.name)
                                                @if !c.contact.active { span.msp-note { "Not active in the PSA" } }
                                            } }
                                            td data-label="E-mail" { div.msp-cell {
                                                @match &c.contact.email {
                                                    Some(e) => (e),
                                                    None => span.muted { "No valid e-mail" },
                                                }
                                                @if !c.contact.invalid_emails.is_empty() {
                                                    span.msp-note { "Not valid: " (c.contact.invalid_emails.join(", ")) }
                                                }
                                            } }
                                            td data-label="In LastPass" { div.msp-cell {
                                                @if let Some(u) = &c.map_to_user {
                                                    "Map to " (labels.get(u).map_or(u.as_str(), String::as_str))
                                                } @else if c.unmap {
                                                    "Unmap and create as a new user"
                                                } @else if c.contact.imported {
                                                    "Imported before"
                                                    @if let Some(t) = &c.contact.last_import { span.msp-note { (ui::time_el(t)) } }
                                                } @else {
                                                    span.muted { "New user if selected" }
                                                }
                                            } }
                                            @if can_map {
                                                td data-label="" { div.msp-cell {
                                                    @if let Some(e) = &c.contact.email {
                                                        button.secondary type="submit" name="details" value=(e)
                                                            aria-label={ "User details for " (e) } { "User details" }
                                                    }
                                                } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !can_map {
                    p.muted { (v.company.name) " gets a new managed company: the selected contacts are added to it as new users (users can be mapped to existing LastPass users only in an existing managed company)." }
                }
                div.actions {
                    button type="submit" { "Save" }
                    button.secondary type="button" data-close-dialog { "Cancel" }
                }
            }
        }
    };
    dialog_or_page(s, status, "Manage users", body)
}

/// Case-insensitive membership.
fn has(list: &[String], e: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(e))
}

pub(super) async fn save_users(
    State(app): State<App>,
    Path((id, company)): Path<(String, String)>,
    Posted { session: s, form }: Posted,
) -> Response {
    if let Err(e) = s.require_admin() {
        return dialog_error(&s, &e);
    }
    let current = match wizard::get_users(&app, &id, &company).await {
        Ok(v) => v,
        Err(e) => return dialog_error(&s, &e.0),
    };
    let ticked: Vec<String> = form
        .all("email")
        .into_iter()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    // An unticked contact is granted nothing: its mapping choices go too.
    let map_users: BTreeMap<String, String> = current
        .choice
        .map_users
        .iter()
        .filter(|(e, _)| has(&ticked, e))
        .map(|(e, u)| (e.clone(), u.clone()))
        .collect();
    let unmap_users: Vec<String> = current
        .choice
        .unmap_users
        .iter()
        .filter(|e| has(&ticked, e))
        .cloned()
        .collect();
    let edits = UserEdits {
        emails: Some(ticked.clone()),
        map_users: Some(map_users),
        unmap_users: Some(unmap_users),
    };
    match wizard::patch_users(&app, &actor(&s), &id, &company, edits).await {
        Ok(v) => {
            if let Some(email) = form.text("details") {
                return render_user(
                    &app,
                    &s,
                    &id,
                    &v,
                    email,
                    StatusCode::OK,
                    "",
                    None,
                    &Problems::default(),
                )
                .await;
            }
            let n = v.company.selected_emails;
            saved(
                &s,
                &wizard_url(&id, "/users"),
                format!(
                    "Saved the users of {}: {n} e-mail{} selected.",
                    v.company.name,
                    if n == 1 { "" } else { "s" }
                ),
            )
        }
        Err(e) => {
            let (status, p) = problems_of(&e.0, &rename_all("email"));
            let set: HashSet<String> = ticked.into_iter().collect();
            render_users(&app, &s, &id, &current, status, Some(&set), None, &p).await
        }
    }
}

// ---- User details -----------------------------------------------------------------------------

pub(super) async fn user_details(
    State(app): State<App>,
    s: Session,
    Path((id, company)): Path<(String, String)>,
    Query(q): Query<SearchQuery>,
) -> Response {
    if let Err(r) = may_search(&app, &s, &id).await {
        return r;
    }
    let v = match wizard::get_users(&app, &id, &company).await {
        Ok(v) => v,
        Err(e) => return dialog_error(&s, &e.0),
    };
    let email = q.email.unwrap_or_default();
    render_user(
        &app,
        &s,
        &id,
        &v,
        &email,
        StatusCode::OK,
        q.q.as_deref().unwrap_or_default(),
        None,
        &Problems::default(),
    )
    .await
}

/// The users of the company's managed company matching `q`, as radio buttons `user:<id>`.
async fn user_hits(app: &App, id: &str, company: &str, q: &str, chosen: Option<&str>) -> Markup {
    match wizard::search_company_users(app, id, company, q).await {
        Ok(found) => html! {
            @if found.items.is_empty() { p.muted { "No user matches." } }
            @for h in &found.items {
                @let value = format!("user:{}", h.user.id.as_str());
                label {
                    input type="radio" name="target" value=(value) checked[chosen == Some(value.as_str())];
                    " " (h.user.email)
                    span.msp-note {
                        @if let Some(n) = h.user.name.as_deref().filter(|n| !n.trim().is_empty()) { (n) " · " }
                        "ID " (h.user.id.as_str())
                        @if !h.mapped_from.is_empty() { " · mapped from " (h.mapped_from.join(", ")) }
                    }
                }
            }
            @if found.more { p.muted { "More users match: narrow the search." } }
        },
        Err(e) => {
            let (_, p) = problems_of(&e.0, &|_| None);
            ui::error_summary(&p)
        }
    }
}

pub(super) async fn search_users(
    State(app): State<App>,
    s: Session,
    Path((id, company)): Path<(String, String)>,
    Query(q): Query<SearchQuery>,
) -> Response {
    if let Err(r) = may_search(&app, &s, &id).await {
        return r;
    }
    let hits = user_hits(
        &app,
        &id,
        &company,
        q.q.as_deref().unwrap_or_default(),
        None,
    )
    .await;
    dialog_or_page(&s, StatusCode::OK, "LastPass users", hits)
}

#[allow(clippy::too_many_arguments)]
async fn render_user(
    app: &App,
    s: &Session,
    id: &str,
    v: &UsersView,
    email: &str,
    status: StatusCode,
    q: &str,
    chosen: Option<&str>,
    p: &Problems,
) -> Response {
    let company = &v.company.psa_company_id;
    let Some(c) = v.contacts.iter().find(|c| {
        c.contact
            .email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(email.trim()))
    }) else {
        return dialog_error(
            s,
            &Error::NotFound(format!(
                "no contact with the e-mail {:?} in {}",
                lp_types::shown(email),
                v.company.name
            )),
        );
    };
    let address = c.contact.email.clone().unwrap_or_default();
    let url = company_url(id, "users", company, "/details");
    let back = company_url(id, "users", company, "");
    let search = company_url(id, "users", company, "/search");
    let err = p.get("target").is_some();
    let labels = user_labels(app, id, company, v).await;
    let body = html! {
        div.dialog-body {
            h2 #msp-dialog-title { "User details" }
            p { strong { (c.contact.name) } " · " (address) " · " (v.company.name) }
            p { "Now: "
                @if let Some(u) = &c.map_to_user { "Map to " (labels.get(u).map_or(u.as_str(), String::as_str)) }
                @else if c.unmap { "Unmap and create as a new user" }
                @else if c.contact.imported { "Imported before: the LastPass user is kept" }
                @else { "Create as a new user" }
            }
            (dialog_problems(p))
            @if v.map_target.is_none() {
                p { (v.company.name) " gets a new managed company: its contacts are added as new users, and cannot be mapped to existing LastPass users." }
                div.actions {
                    button.secondary type="button" hx-get=(back) hx-target=(target_sel()) hx-swap="innerHTML" { "Back" }
                }
            } @else {
                form method="post" action=(url) hx-post=(url) hx-target=(target_sel()) hx-swap="innerHTML" {
                    (ui::csrf(s))
                    input type="hidden" name="email" value=(address);
                    fieldset aria-describedby=[err.then_some("f-target-error")] {
                        legend { "Action in LastPass" }
                        (field_error(p, "target"))
                        div.msp-choices #f-target {
                            label {
                                input type="radio" name="target" value="default" checked[chosen == Some("default")];
                                @if c.contact.imported { " Keep the user imported before" } @else { " Create as a new user" }
                            }
                            @if c.contact.imported {
                                label { input type="radio" name="target" value="unmap" checked[chosen == Some("unmap")]; " Unmap and create as a new user" }
                            }
                        }
                        div.field {
                            label for="msp-user-q" { "Search users" }
                            input #msp-user-q type="search" name="q" value=(q) autocomplete="off" autofocus
                                hx-get=(search) hx-trigger="input changed delay:300ms, search"
                                hx-target="#msp-user-hits" hx-swap="innerHTML";
                        }
                        p.muted #msp-user-hits-h { "Select the user to map to:" }
                        div.msp-hits #msp-user-hits role="group" aria-labelledby="msp-user-hits-h" {
                            (user_hits(app, id, company, q, chosen).await)
                        }
                    }
                    div.actions {
                        button type="submit" { "Save" }
                        button.secondary type="button" hx-get=(back) hx-target=(target_sel()) hx-swap="innerHTML" { "Back" }
                        button.secondary type="button" data-close-dialog { "Cancel" }
                    }
                }
            }
        }
    };
    dialog_or_page(s, status, "User details", body)
}

pub(super) async fn save_user(
    State(app): State<App>,
    Path((id, company)): Path<(String, String)>,
    Posted { session: s, form }: Posted,
) -> Response {
    if let Err(e) = s.require_admin() {
        return dialog_error(&s, &e);
    }
    let current = match wizard::get_users(&app, &id, &company).await {
        Ok(v) => v,
        Err(e) => return dialog_error(&s, &e.0),
    };
    let email = form.text("email").unwrap_or_default().to_owned();
    let q = form.one("q").unwrap_or_default().to_owned();
    let chosen = form.text("target").map(str::to_owned);
    let mut emails = current.choice.emails.clone();
    let mut map_users = current.choice.map_users.clone();
    let mut unmap_users = current.choice.unmap_users.clone();
    map_users.retain(|k, _| !k.eq_ignore_ascii_case(&email));
    unmap_users.retain(|k| !k.eq_ignore_ascii_case(&email));
    let mut p = Problems::default();
    let mut what = String::new();
    match chosen.as_deref() {
        None => p.field(
            "target",
            "Choose what to do with this user: select the user to map to, or another action.",
        ),
        Some("default") => {
            let imported = current.contacts.iter().any(|c| {
                c.contact.imported
                    && c.contact
                        .email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(&email))
            });
            what = if imported {
                "kept as the LastPass user imported before".into()
            } else {
                "created as a new user".into()
            };
        }
        Some("unmap") => {
            unmap_users.push(email.clone());
            what = "unmapped and created as a new user".into();
        }
        Some(other) => match other.strip_prefix("user:").map(str::trim) {
            Some(u) if !u.is_empty() => {
                map_users.insert(email.clone(), u.to_owned());
                what = format!("mapped to the LastPass user {u}");
            }
            _ => p.field("target", "Is not one of the choices offered."),
        },
    }
    if !p.is_empty() {
        return render_user(
            &app,
            &s,
            &id,
            &current,
            &email,
            StatusCode::UNPROCESSABLE_ENTITY,
            &q,
            chosen.as_deref(),
            &p,
        )
        .await;
    }
    // A user given details is granted access.
    if !has(&emails, &email) {
        emails.push(email.clone());
    }
    let edits = UserEdits {
        emails: Some(emails),
        map_users: Some(map_users),
        unmap_users: Some(unmap_users),
    };
    match wizard::patch_users(&app, &actor(&s), &id, &company, edits).await {
        Ok(v) => {
            let note = format!("Saved the user details: {email} will be {what}.");
            render_users(
                &app,
                &s,
                &id,
                &v,
                StatusCode::OK,
                None,
                Some(&note),
                &Problems::default(),
            )
            .await
        }
        Err(e) => {
            let (status, p) = problems_of(&e.0, &rename_all("target"));
            render_user(
                &app,
                &s,
                &id,
                &current,
                &email,
                status,
                &q,
                chosen.as_deref(),
                &p,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_ignores_case() {
        let l = vec!["Ann@Example.com".to_owned()];
        assert!(has(&l, "ann@example.com"));
        assert!(!has(&l, "bob@example.com"));
    }
}
