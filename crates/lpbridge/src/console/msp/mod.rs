//! The PSA import wizard in the browser, `/console/msp`: LastPass's "Import from <PSA name>"
//! flow (`lastpass-psa-import.txt`) step by step, with its exact steps, tab names, column names,
//! statuses, dialogs, buttons and error messages. Every step calls [`crate::msp::wizard`], the
//! service layer the JSON endpoints (`/msp/…`) call too; this module only renders and parses.
//!
//! | route | what it does |
//! |---|---|
//! | `GET /console/msp` | start: the MSP account's API key, the PSA integrations with their locks, resume |
//! | `POST /console/msp/credentials` | store the MSP account's REST API key (empty: "Credentials are required") |
//! | `GET /console/msp/psa/{psa}` | step 1: "A list of attributes set up for your PSA" (types, statuses) |
//! | `POST /console/msp/psa/{psa}` | Continue: takes the integration's lock and downloads both lists |
//! | `GET /console/msp/imports/{id}` | the wizard's current step |
//! | `GET /console/msp/imports/{id}/companies[/not-in-psa]` | step 2: the tabs "Companies in <PSA>" and "Companies not in <PSA>" |
//! | `POST /console/msp/imports/{id}/companies` | Continue: saves which companies take part |
//! | `GET /console/msp/imports/{id}/choices` | step 3: "Companies with active PSA integration", Manage per company |
//! | `GET/POST /console/msp/imports/{id}/choices/{company}` | the "Company details" dialog and its Save |
//! | `GET /console/msp/imports/{id}/choices/{company}/search` | its search of managed companies (htmx) |
//! | `GET /console/msp/imports/{id}/users` | step 4: "Companies to Import and Map", Manage users per company |
//! | `GET/POST /console/msp/imports/{id}/users/{company}` | the "Manage users" dialog and its Save |
//! | `GET/POST /console/msp/imports/{id}/users/{company}/details` | the "User details" dialog and its Save |
//! | `GET /console/msp/imports/{id}/users/{company}/search` | its search of the managed company's users (htmx) |
//! | `POST /console/msp/imports/{id}/apply` | Continue: Import and Map, in the background |
//! | `GET /console/msp/imports/{id}/result` | the progress (polled every second), then the result page |
//! | `GET /console/msp/imports/{id}/progress` | the progress fragment |
//! | `POST /console/msp/imports/{id}/finish` | Finish: ends the wizard and releases the lock |
//! | `POST /console/msp/imports/{id}/cancel` | Cancel import (before Import and Map): the same, nothing imported |
//!
//! A wizard holds its integration's lock from step 1's Continue until Finish or Cancel import
//! (or 15 idle minutes): another admin sees "Another admin is already working with this
//! integration", who holds it and until when, and can change nothing. Pages are readable by
//! every principal; changes need a read-write principal not limited to some connections, as
//! the JSON endpoints do, and only the wizard's creator may change it.

mod dialogs;
mod run;
mod steps;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use lastpass::rest::CompanyId;
use lp_types::Secret;
use maud::{Markup, html};
use psa::CompanyFilter;

use super::connections::seg;
use super::ui::{self, FlashKind, FormData, Input, Nav, Problems};
use super::{Posted, Session};
use crate::error::Error;
use crate::http::App;
use crate::msp::lock::{self, Owner};
use crate::msp::plan::{CompanyAction, ImportStatus};
use crate::msp::wizard::{self, Actor, CompanySummary, ImportView, Integration};
use crate::msp::{self as msp_core, MspError, messages};

/// Where the wizard lives.
const BASE: &str = "/console/msp";

pub fn router() -> Router<App> {
    Router::new()
        .route("/msp", get(start))
        .route("/msp/credentials", post(set_credentials))
        .route("/msp/psa/{psa}", get(filters).post(create))
        .route("/msp/imports/{id}", get(current_step))
        .route(
            "/msp/imports/{id}/companies",
            get(steps::select).post(steps::save_selection),
        )
        .route(
            "/msp/imports/{id}/companies/not-in-psa",
            get(steps::not_in_psa),
        )
        .route("/msp/imports/{id}/choices", get(steps::choices))
        .route(
            "/msp/imports/{id}/choices/{company}",
            get(dialogs::company).post(dialogs::save_company),
        )
        .route(
            "/msp/imports/{id}/choices/{company}/search",
            get(dialogs::search_companies),
        )
        .route("/msp/imports/{id}/users", get(steps::users))
        .route(
            "/msp/imports/{id}/users/{company}",
            get(dialogs::users).post(dialogs::save_users),
        )
        .route(
            "/msp/imports/{id}/users/{company}/details",
            get(dialogs::user_details).post(dialogs::save_user),
        )
        .route(
            "/msp/imports/{id}/users/{company}/search",
            get(dialogs::search_users),
        )
        .route("/msp/imports/{id}/apply", post(run::apply))
        .route("/msp/imports/{id}/result", get(run::result))
        .route("/msp/imports/{id}/progress", get(run::progress))
        .route("/msp/imports/{id}/finish", post(run::finish))
        .route("/msp/imports/{id}/cancel", post(run::cancel))
}

// ---- shared -----------------------------------------------------------------------------------

/// The signed-in principal as the wizard's actor (the creator a wizard remembers, and how the
/// lock names it to other admins).
fn actor(s: &Session) -> Actor {
    Actor {
        id: s.actor_id().to_owned(),
        label: s.actor_label(),
    }
}

/// A wizard's URL (`tail` empty or starting with `/`).
fn wizard_url(id: &str, tail: &str) -> String {
    format!("{BASE}/imports/{}{tail}", seg(id))
}

/// A company's URL inside a wizard (`section`: `choices` or `users`).
fn company_url(id: &str, section: &str, company: &str, tail: &str) -> String {
    format!(
        "{BASE}/imports/{}/{section}/{}{tail}",
        seg(id),
        seg(company)
    )
}

/// The wizard's steps, for the step indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Filters,
    Select,
    Companies,
    Users,
    Result,
}

fn steps_nav(current: Step) -> Markup {
    const ALL: [(Step, &str); 5] = [
        (Step::Filters, "Filter the attributes"),
        (Step::Select, "Select companies"),
        (Step::Companies, "Companies with active PSA integration"),
        (Step::Users, "Companies to Import and Map"),
        (Step::Result, "Result"),
    ];
    html! {
        nav aria-label="Import steps" {
            ol.steps {
                @for (step, label) in ALL {
                    li aria-current=[(step == current).then_some("step")] { (label) }
                }
            }
        }
    }
}

/// Who holds a lock, as other admins read it (a wizard's holder names no host).
fn holder_text(raw: &str) -> &str {
    raw.strip_suffix(" on lpbridge serve").unwrap_or(raw)
}

fn until_text(raw: &str) -> String {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| ui::time(&t.with_timezone(&Utc)))
        .unwrap_or_else(|_| raw.to_owned())
}

/// "Another admin is already working with this integration", with who and until when.
fn locked_alert(holder: Option<&str>, until: Option<&DateTime<Utc>>) -> Markup {
    ui::alert(
        "warn",
        html! {
            p { strong.msp-locked { (messages::LOCKED) } }
            @if let Some(h) = holder {
                p {
                    (holder_text(h)) " holds the integration"
                    @if let Some(t) = until { " until " (ui::time_el(t)) }
                    ". It is free again when they finish or cancel their import, or after 15 idle minutes."
                }
            }
        },
    )
}

/// The problems of a refused wizard call, worded as the product words them: invalid values
/// next to their fields (renamed by `rename`); the product's message and its detail otherwise.
pub(crate) fn problems_of(
    e: &Error,
    rename: &dyn Fn(&str) -> Option<String>,
) -> (StatusCode, Problems) {
    let (status, p) = Problems::from_error(e, rename);
    let Error::Msp(m) = e else {
        return (status, p);
    };
    let mut out = Problems::default();
    match m {
        MspError::LastPass {
            source: lastpass::rest::Error::InvalidInput(v),
        } => {
            out.invalid(v, rename);
            return (StatusCode::UNPROCESSABLE_ENTITY, out);
        }
        MspError::Locked { holder, until } => {
            out.general(messages::LOCKED);
            out.general(format!(
                "{} holds the integration until {}.",
                holder_text(holder),
                until_text(until)
            ));
        }
        MspError::CredentialsRequired(_) | MspError::Psa(_) | MspError::LastPass { .. } => {
            out.general(m.user_message());
            if let Some(d) = m.to_string().lines().nth(1) {
                out.general(format!(
                    "Detail: {}",
                    d.trim().trim_start_matches("detail: ")
                ));
            }
        }
        _ => return (status, p),
    }
    (status, out)
}

/// Puts every invalid value next to one field (a form with one field, or a dialog's choice).
fn rename_all(to: &'static str) -> impl Fn(&str) -> Option<String> {
    move |_| Some(to.to_owned())
}

/// The wizard, or an error page (or fragment) when it cannot be read.
async fn load(app: &App, s: &Session, id: &str) -> Result<ImportView, Response> {
    wizard::get_import(app, id)
        .await
        .map_err(|e| ui::error_page(Some(s), &e.0))
}

/// Whether this principal may change the wizard: its creator, read-write.
pub(super) fn may_change(s: &Session, v: &ImportView) -> bool {
    v.created_by == s.actor_id() && s.require_admin().is_ok()
}

/// Why the page is read-only for this principal (nothing when they may change it).
fn read_only_note(s: &Session, v: &ImportView) -> Markup {
    if may_change(s, v) {
        return html! {};
    }
    if v.created_by != s.actor_id() {
        let holder = v.lock.holder.as_deref();
        return locked_alert(holder, v.lock.expires_at.as_ref());
    }
    ui::alert(
        "info",
        html! { p { (s.label) " may look at this import but not change it (read-only, or limited to some connections)." } },
    )
}

/// The step a wizard is at when it is opened again: its result once applied.
async fn current_step(State(app): State<App>, s: Session, Path(id): Path<String>) -> Response {
    let v = match load(&app, &s, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let to = if v.run.is_some() {
        wizard_url(&v.id, "/result")
    } else {
        wizard_url(&v.id, "/companies")
    };
    ui::redirect_to(false, &to)
}

/// A badge for an import status: green, blue or amber, and always its words.
fn status_badge(st: ImportStatus) -> Markup {
    let kind = match st {
        ImportStatus::Mapped => "ok",
        ImportStatus::Unmapped => "info",
        ImportStatus::PotentialDuplicate => "warn",
    };
    ui::badge(kind, st.as_str())
}

/// Managed company id → name for the rows' facts and chosen mappings (a mapping chosen in the
/// Company details search is looked up; one call each, none when the name is known).
async fn managed_names(app: &App, rows: &[CompanySummary]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for r in rows {
        if let Some(m) = &r.mapped_to {
            names.insert(m.id.clone(), m.name.clone());
        }
        for d in &r.duplicates {
            names.insert(d.id.clone(), d.name.clone());
        }
    }
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| r.choice.import)
        .filter_map(|r| r.choice.managed_company_id.clone())
        .filter(|id| !names.contains_key(id))
        .collect();
    if !missing.is_empty()
        && let Ok(client) = msp_core::rest_client(&app.store).await
    {
        for id in missing {
            if let Ok(c) = client.get_company(&CompanyId::new(id.clone())).await {
                names.insert(id, c.name);
            }
        }
    }
    names
}

/// What happens to a company in LastPass, in the product's words.
fn action_text(r: &CompanySummary, names: &HashMap<String, String>) -> Markup {
    let target = r.choice.managed_company_id.as_deref().map(|id| {
        names
            .get(id)
            .map_or_else(|| format!("managed company {id}"), Clone::clone)
    });
    html! {
        @match (r.choice.action, target) {
            (CompanyAction::Create, _) => "Create a new managed company",
            (CompanyAction::Unmap, _) => "Unmap and create as a new managed company",
            (CompanyAction::Keep, Some(t)) => { "Map to " strong { (t) } span.msp-note { "Mapped before: the existing managed company is kept." } }
            (CompanyAction::Map, Some(t)) => { "Map to " strong { (t) } }
            (_, None) => "Map to an existing managed company (none chosen)",
        }
    }
}

/// A date or "Never".
fn date_or_never(t: Option<&DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => ui::time_el(t),
        None => html! { span.muted { "Never" } },
    }
}

// ---- start --------------------------------------------------------------------------------

/// The wizard this principal has open on an integration: the one the lock's token names, or,
/// when the lock is free (it lapsed after idle minutes), the newest one they left open, which
/// takes the lock again on its next change.
async fn own_wizard(app: &App, s: &Session, integration: &str) -> Option<String> {
    let lease = app.store.lease(&lock::lease_name(integration)).await.ok()?;
    match lease {
        Some(lease) => {
            let owner = Owner::decode(&lease.owner)?;
            let w = app.store.msp_wizard(&owner.token).await.ok()??;
            (w.created_by == s.actor_id()).then_some(w.id)
        }
        None => app
            .store
            .latest_msp_wizard_of(s.actor_id(), integration)
            .await
            .ok()?
            .map(|w| w.id),
    }
}

async fn start(State(app): State<App>, s: Session) -> Response {
    render_start(&app, &s, StatusCode::OK, &Problems::default()).await
}

async fn render_start(app: &App, s: &Session, status: StatusCode, p: &Problems) -> Response {
    let loaded = async {
        let creds = wizard::get_credentials(app).await?;
        let integrations = wizard::list_integrations(app).await?;
        Ok::<_, crate::http::ApiError>((creds, integrations))
    }
    .await;
    let (creds, integrations) = match loaded {
        Ok(x) => x,
        Err(e) => return ui::error_page(Some(s), &e.0),
    };
    let mut rows = Vec::new();
    for i in integrations {
        let own = own_wizard(app, s, i.id.as_str()).await;
        rows.push((i, own));
    }
    let admin = s.require_admin().is_ok();
    let key_set = creds.as_ref().is_some_and(|c| c.api_key_set);
    let body = html! {
        h1 { "PSA import" }
        p.lead { "Import companies from your PSA as LastPass managed companies, and their contacts as users. Imports are incremental: a company imported before is kept, not created again." }
        @if !admin {
            (ui::alert("info", html! { p { (s.label) " may look at imports but not start or change them (read-only, or limited to some connections)." } }))
        }
        (credentials_section(s, creds.as_ref(), key_set, admin, p))
        section aria-labelledby="psa-h" {
            h2 #psa-h { "PSA integrations" }
            @if rows.is_empty() {
                p { "No PSA integration is set up yet. Add a ConnectWise Manage or Datto Autotask integration on the "
                    a href="/console/connections" { "Connections" } " page first." }
            } @else {
                div.table-wrap {
                    table.responsive.msp-table.msp-integrations {
                        thead { tr {
                            th scope="col" { "Integration" }
                            th scope="col" { "PSA" }
                            th scope="col" { "Import lock" }
                            th scope="col" { span.msp-vh { "Actions" } }
                        } }
                        tbody {
                            @for (i, own) in &rows { (integration_row(s, i, own.as_deref(), admin, key_set)) }
                        }
                    }
                }
            }
        }
    };
    ui::page_with_status(status, s, Nav::Import, "PSA import", body)
}

fn integration_row(
    s: &Session,
    i: &Integration,
    own: Option<&str>,
    admin: bool,
    key_set: bool,
) -> Markup {
    let start = format!("{BASE}/psa/{}", seg(i.id.as_str()));
    let locked_by_other = i.lock.locked && own.is_none();
    html! {
        tr {
            td data-label="Integration" { div.msp-cell { code.nowrap { (i.id.as_str()) } } }
            td data-label="PSA" { div.msp-cell { (i.psa_name) } }
            td data-label="Import lock" { div.msp-cell {
                @if own.is_some() {
                    (ui::badge("info", "Your import is open"))
                    @if let Some(t) = &i.lock.expires_at { span.msp-note { "Held until " (ui::time_el(t)) } }
                } @else if locked_by_other {
                    (locked_alert(i.lock.holder.as_deref(), i.lock.expires_at.as_ref()))
                } @else {
                    (ui::badge("muted", "Free"))
                }
            } }
            td data-label="Actions" { div.msp-cell {
                div.actions {
                    @if let Some(w) = own {
                        a.button href=(wizard_url(w, "")) { "Resume the import from " (i.psa_name) }
                        @if admin {
                            form.inline method="post" action=(wizard_url(w, "/cancel")) {
                                (ui::csrf(s))
                                button.secondary type="submit" data-confirm="Cancel this import? Nothing is imported, and the integration is free for other admins." { "Cancel import" }
                            }
                        }
                    } @else if admin && key_set {
                        a.button href=(start) { "Import from " (i.psa_name) }
                    } @else if admin {
                        span.muted { "Set the MSP account's API key first." }
                    }
                }
            } }
        }
    }
}

fn credentials_section(
    s: &Session,
    creds: Option<&crate::store::msp::MspSettingsSummary>,
    key_set: bool,
    admin: bool,
    p: &Problems,
) -> Markup {
    let form = html! {
        (ui::error_summary(p))
        form.stack method="post" action={ (BASE) "/credentials" } aria-labelledby="msp-key-h" {
            (ui::csrf(s))
            (Input::new("api_key", "LastPass REST API key").kind("password").autocomplete("off")
                .help("The MSP account's key (lpkey_…). It is checked with one call before it is stored, sealed at rest, and never shown again.")
                .render(p))
            div.actions { button type="submit" { "Check and save" } }
        }
    };
    html! {
        section aria-labelledby="msp-acct-h" {
            h2 #msp-acct-h { "MSP account" }
            dl.props {
                dt { "REST API key" }
                dd {
                    @if key_set { (ui::badge("ok", "Set")) } @else { (ui::badge("warn", "Not set")) }
                }
                @if let Some(c) = creds {
                    dt { "Base URL" } dd { code { (c.base_url) } }
                    dt { "Updated" } dd { (ui::time_el(&c.updated_at)) }
                }
            }
            @if admin {
                @if !key_set || !p.is_empty() {
                    div.panel {
                        h3 #msp-key-h { "Set the API key" }
                        p.muted { "The import creates managed companies and their users with it. The same form is on the "
                            a href="/console/connections" { "Connections" } " page." }
                        (form)
                    }
                } @else {
                    details.panel.msp-replace {
                        summary { "Replace the API key" }
                        h3 #msp-key-h { "Set the API key" }
                        (form)
                    }
                }
            }
        }
    }
}

async fn set_credentials(State(app): State<App>, Posted { session: s, form }: Posted) -> Response {
    if let Err(e) = s.require_admin() {
        return ui::error_page(Some(&s), &e);
    }
    let new = wizard::NewCredentials {
        base_url: None,
        api_key: form.one("api_key").map(|k| Secret::new(k.trim())),
        check: true,
    };
    // Kept as stored: the form only replaces the key.
    let new = match wizard::get_credentials(&app).await {
        Ok(Some(c)) => wizard::NewCredentials {
            base_url: Some(c.base_url),
            ..new
        },
        _ => new,
    };
    match wizard::put_credentials(&app, new).await {
        Ok(_) => {
            tracing::info!(target: "lpbridge::console", actor = s.actor_id(), "MSP API key set");
            ui::redirect_with(
                &s,
                BASE,
                FlashKind::Ok,
                "Saved the MSP account's REST API key: LastPass accepted it.",
            )
        }
        Err(e) => {
            let (status, p) = match &e.0 {
                Error::Msp(MspError::CredentialsRequired(_)) => {
                    let mut p = Problems::default();
                    p.field("api_key", messages::CREDENTIALS_REQUIRED);
                    (StatusCode::UNPROCESSABLE_ENTITY, p)
                }
                other => problems_of(other, &rename_all("api_key")),
            };
            let status = if status.is_success() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                status
            };
            render_start(&app, &s, status, &p).await
        }
    }
}

// ---- step 1: filters ------------------------------------------------------------------------

async fn integration(app: &App, psa: &str) -> Result<Integration, Error> {
    wizard::list_integrations(app)
        .await
        .map_err(|e| e.0)?
        .into_iter()
        .find(|i| i.id.as_str() == psa.trim())
        .ok_or_else(|| Error::Msp(msp_core::no_integration(psa)))
}

async fn filters(State(app): State<App>, s: Session, Path(psa): Path<String>) -> Response {
    let i = match integration(&app, &psa).await {
        Ok(i) => i,
        Err(e) => return ui::error_page(Some(&s), &e),
    };
    render_filters(
        &app,
        &s,
        &i,
        StatusCode::OK,
        &CompanyFilter::default(),
        &Problems::default(),
    )
    .await
}

async fn render_filters(
    app: &App,
    s: &Session,
    i: &Integration,
    status: StatusCode,
    chosen: &CompanyFilter,
    p: &Problems,
) -> Response {
    let own = own_wizard(app, s, i.id.as_str()).await;
    let (attrs, problems, failed) = match wizard::attributes(app, i.id.as_str()).await {
        Ok(a) => (Some(a), p.clone(), None),
        Err(e) => {
            let (failed, mut q) = problems_of(&e.0, &|_| None);
            for g in p.general_messages() {
                q.general(g.clone());
            }
            (None, q, Some(failed))
        }
    };
    // The attributes' own failure status (404, 401, 502…) unless the form already failed.
    let status = match failed {
        Some(f) if status.is_success() => f,
        _ => status,
    };
    let locked_by_other = i.lock.locked && own.is_none();
    let title = format!("Import from {}", i.psa_name);
    let url = format!("{BASE}/psa/{}", seg(i.id.as_str()));
    let admin = s.require_admin().is_ok();
    let form = html! {
        form #msp-filters method="post" action=(url) hx-post=(url) hx-target="this" hx-swap="outerHTML"
            hx-indicator="find .msp-fetching" hx-disabled-elt="find button[type=submit]" {
            (ui::csrf(s))
            // Inside the form, so a refused Continue replaces what the page said before.
            @if !problems.is_empty() {
                (ui::error_summary(&problems))
            } @else if let Some(w) = &own {
                (ui::alert("info", html! { p { "You already have an import open for this integration. "
                    a href=(wizard_url(w, "")) { "Resume it" } " or cancel it before starting another." } }))
            } @else if locked_by_other {
                (locked_alert(i.lock.holder.as_deref(), i.lock.expires_at.as_ref()))
            }
            @if let Some(a) = &attrs {
                div.grid2 {
                    fieldset {
                        legend { "Company types" }
                        div.checks {
                            @for t in &a.types {
                                label { input type="checkbox" name="type" value=(t.id) checked[chosen.types.contains(&t.id)]; " " (t.name) }
                            }
                        }
                    }
                    fieldset {
                        legend { "Statuses" }
                        div.checks {
                            @for t in &a.statuses {
                                label { input type="checkbox" name="status" value=(t.id) checked[chosen.statuses.contains(&t.id)]; " " (t.name) }
                            }
                        }
                    }
                }
                p.muted { "A company is downloaded when it has one of the ticked types and one of the ticked statuses; a group with nothing ticked does not filter." }
                @if admin {
                    div.actions {
                        button type="submit" { "Continue" }
                        a.button.secondary href=(BASE) { "Back" }
                        span.msp-fetching.htmx-indicator role="status" { "Downloading the companies and their contacts…" }
                    }
                }
            } @else {
                div.actions { a.button.secondary href=(BASE) { "Back" } }
            }
        }
    };
    if s.htmx {
        return ui::fragment(status, form);
    }
    let body = html! {
        (steps_nav(Step::Filters))
        h1 { (title) }
        p.lead { "A list of attributes set up for your PSA. Filter the attributes to import the desired accounts and emails, then click Continue." }
        (form)
    };
    ui::page_with_status(status, s, Nav::Import, &title, body)
}

/// Continue: takes the lock and downloads both lists (the wizard is created only when all went well).
async fn create(
    State(app): State<App>,
    Path(psa): Path<String>,
    Posted { session: s, form }: Posted,
) -> Response {
    if let Err(e) = s.require_admin() {
        return ui::error_page(Some(&s), &e);
    }
    let i = match integration(&app, &psa).await {
        Ok(i) => i,
        Err(e) => return ui::error_page(Some(&s), &e),
    };
    let filter = filter_of(&form);
    let new = wizard::NewImport {
        psa: i.id.as_str().to_owned(),
        filter: filter.clone(),
    };
    match wizard::create_import(&app, &actor(&s), new).await {
        Ok(v) => {
            tracing::info!(target: "lpbridge::console", actor = s.actor_id(), wizard = %v.id, psa = %i.id.as_str(), "MSP import wizard started");
            let n = v.lists.companies_in_psa.len();
            ui::redirect_with(
                &s,
                &wizard_url(&v.id, "/companies"),
                FlashKind::Info,
                format!(
                    "Downloaded {n} compan{} from {}.",
                    if n == 1 { "y" } else { "ies" },
                    i.psa_name
                ),
            )
        }
        Err(e) => {
            let (status, p) = problems_of(&e.0, &|_| None);
            // The integration's lock as it is now (another admin may just have taken it).
            let i = integration(&app, &psa).await.unwrap_or(i);
            render_filters(&app, &s, &i, status, &filter, &p).await
        }
    }
}

fn filter_of(form: &FormData) -> CompanyFilter {
    let list = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = form
            .all(name)
            .into_iter()
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect();
        v.dedup();
        v
    };
    CompanyFilter {
        types: list("type"),
        statuses: list("status"),
    }
}
