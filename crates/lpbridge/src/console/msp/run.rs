//! **Continue** on "Companies to Import and Map" (the background Import and Map run), its
//! progress (polled every second, from the run's row in the store), the result page with the
//! counts and every error in the product's words, **Finish** and **Cancel import**.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use lp_types::InvalidValue;
use maud::{Markup, html};

use super::{
    BASE, Step, actor, load, may_change, problems_of, read_only_note, steps::render_users,
    steps_nav, wizard_url,
};
use crate::console::ui::{self, FlashKind, Nav, Problems};
use crate::console::{Posted, Session};
use crate::http::App;
use crate::msp::wizard::{self, ImportView, RunState, RunView};

/// Continue: Import and Map. A refused run (invalid choices, a stale plan, the lock) changes
/// nothing and says why on the same step.
pub(super) async fn apply(
    State(app): State<App>,
    Path(id): Path<String>,
    Posted {
        session: s,
        form: _,
    }: Posted,
) -> Response {
    if let Err(e) = s.require_admin() {
        return ui::error_page(Some(&s), &e);
    }
    match wizard::apply(&app, &actor(&s), &id).await {
        Ok(started) => {
            tracing::info!(target: "lpbridge::console", actor = s.actor_id(), wizard = %id, run = %started.run_id, "MSP Import and Map started");
            ui::redirect_to(s.htmx, &wizard_url(&id, "/result"))
        }
        Err(e) => {
            let invalid = wizard::field_errors(&e);
            let (status, p) = if invalid.is_empty() {
                problems_of(&e.0, &|_| None)
            } else {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    general(&app, &id, &invalid).await,
                )
            };
            render_users(&app, &s, &id, status, &p).await
        }
    }
}

/// Invalid choices as general messages naming the company (step 4 has no field for them).
async fn general(app: &App, id: &str, invalid: &[InvalidValue]) -> Problems {
    let rows = wizard::list_companies(app, id)
        .await
        .map(|l| l.companies_in_psa)
        .unwrap_or_default();
    let mut p = Problems::default();
    p.general("Nothing was imported: fix these choices first.");
    for v in invalid {
        // `companies_in_psa[3].choice.emails[0]` names the fourth row.
        let company = v
            .field
            .strip_prefix("companies_in_psa[")
            .and_then(|r| r.split(']').next())
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| rows.get(i))
            .map(|r| r.name.clone());
        match company {
            Some(c) => p.general(format!("{c}: {} {}", v.value, v.reason)),
            None => p.general(format!("{} {}", v.value, v.reason).trim().to_owned()),
        }
    }
    p
}

/// The progress while the run goes, then the result.
pub(super) async fn result(State(app): State<App>, s: Session, Path(id): Path<String>) -> Response {
    let v = match load(&app, &s, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(run) = &v.run else {
        return ui::redirect_to(false, &wizard_url(&v.id, "/users"));
    };
    if run.state == RunState::Running {
        let body = html! {
            (steps_nav(Step::Result))
            h1 { "Importing the companies and users" }
            (progress_fragment(&v.id, run))
            p.muted { "The import goes on if you leave this page; its result is kept until you click Finish." }
        };
        return ui::page(&s, Nav::Import, "Importing", body);
    }
    ui::page(&s, Nav::Import, "Import result", result_body(&s, &v, run))
}

/// The polled progress region (`aria-live`: screen readers hear it move).
fn progress_fragment(id: &str, run: &RunView) -> Markup {
    let url = wizard_url(id, "/progress");
    let total = run.total.max(1);
    let pct = run.done.clamp(0, total) * 100 / total;
    html! {
        div #msp-progress aria-live="polite" hx-get=(url) hx-trigger="every 1s" hx-swap="outerHTML" {
            label for="msp-bar" { "Import and Map: " (run.done) " of " (run.total) " steps done (" (pct) " %)" }
            progress #msp-bar max=(total) value=(run.done.clamp(0, total)) { (run.done) " of " (run.total) }
            p.muted { "Companies first, then the users of each company." }
        }
    }
}

pub(super) async fn progress(
    State(app): State<App>,
    s: Session,
    Path(id): Path<String>,
) -> Response {
    let to = wizard_url(&id, "/result");
    match wizard::result(&app, &id).await {
        Ok(Some(run)) if run.state == RunState::Running && s.htmx => {
            ui::fragment(StatusCode::OK, progress_fragment(&id, &run))
        }
        // Over: the whole result page (htmx follows HX-Redirect with a page load).
        Ok(_) => ui::redirect_to(s.htmx, &to),
        Err(e) => ui::error_page(Some(&s), &e.0),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn result_body(s: &Session, v: &ImportView, run: &RunView) -> Markup {
    let r = &run.result;
    let change = may_change(s, v);
    html! {
        (steps_nav(Step::Result))
        h1 { "Import result" }
        (read_only_note(s, v))
        @match run.state {
            RunState::Succeeded => (ui::alert("ok", html! { p { "The companies and users are imported." } })),
            RunState::Partial => (ui::alert("warn", html! { p { "The import finished, but some items failed: see the errors below." } })),
            RunState::Failed => (ui::alert("error", html! { p { "The import failed: see the errors below." } })),
            RunState::Interrupted => (ui::alert("warn", html! { p { "The import stopped before it finished (the service stopped while it ran). Continue runs it again: nothing is created twice." } })),
            RunState::Running => {},
        }
        p.msp-summary {
            "You imported " strong { (plural(r.users_imported, "user", "users")) }
            " into " strong { (plural(r.companies_imported, "managed company", "managed companies")) } "."
        }
        div.grid2.msp-result {
            section.panel aria-labelledby="msp-r-users" {
                h2 #msp-r-users { "Users" }
                dl.props #msp-result-users {
                    dt { "Users imported" } dd { (r.users_imported) }
                    dt { "Added as new users" } dd { (r.users.added) }
                    dt { "Mapped to existing users" } dd { (r.users.mapped) }
                    dt { "Imported before, kept" } dd { (r.users.kept) }
                    dt { "Failed" } dd { (r.users.failed) }
                }
            }
            section.panel aria-labelledby="msp-r-companies" {
                h2 #msp-r-companies { "Companies" }
                dl.props #msp-result-companies {
                    dt { "Companies imported" } dd { (r.companies_imported) }
                    dt { "New managed companies" } dd { (r.companies.created) }
                    dt { "Mapped to existing managed companies" } dd { (r.companies.mapped) }
                    dt { "Mapped before, kept" } dd { (r.companies.kept) }
                    @if r.companies.resumed > 0 { dt { "Finished by an earlier run" } dd { (r.companies.resumed) } }
                    dt { "Failed" } dd { (r.companies.failed) }
                }
            }
        }
        section aria-labelledby="msp-r-errors" {
            h2 #msp-r-errors { "Errors" }
            @if r.errors.is_empty() {
                p { "There were no errors in the importing process." }
            } @else {
                div.table-wrap {
                    table.responsive.msp-table #msp-errors {
                        thead { tr {
                            th scope="col" { "Error message" }
                            th scope="col" { "Company" }
                            th scope="col" { "E-mail" }
                            th scope="col" { "Detail" }
                        } }
                        tbody {
                            @for e in &r.errors {
                                tr {
                                    td data-label="Error message" { div.msp-cell { strong { (e.message) } } }
                                    td data-label="Company" { div.msp-cell { (e.company.as_deref().unwrap_or("—")) } }
                                    td data-label="E-mail" { div.msp-cell { (e.email.as_deref().unwrap_or("—")) } }
                                    td data-label="Detail" { div.msp-cell { span.muted { (e.detail) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        dl.props.msp-times {
            dt { "Started" } dd { (ui::time_el(&r.started_at)) }
            @if let Some(t) = &r.finished_at { dt { "Finished" } dd { (ui::time_el(t)) } }
            dt { "Run" } dd { code { (r.run_id) } }
        }
        @if change {
            div.actions {
                @if run.state == RunState::Interrupted {
                    form.inline method="post" action=(wizard_url(&v.id, "/apply")) {
                        (ui::csrf(s))
                        button type="submit" { "Continue" }
                    }
                }
                form.inline method="post" action=(wizard_url(&v.id, "/finish")) {
                    (ui::csrf(s))
                    button type="submit" { "Finish" }
                }
            }
        }
    }
}

/// Ends a wizard (Finish or Cancel import): releases the lock and forgets the wizard.
async fn end(app: &App, s: &Session, id: &str, cancel: bool) -> Response {
    if let Err(e) = s.require_admin() {
        return ui::error_page(Some(s), &e);
    }
    let v = match load(app, s, id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let ran = v
        .run
        .as_ref()
        .is_some_and(|r| r.state != RunState::Interrupted);
    if cancel && ran {
        return ui::redirect_with(
            s,
            &wizard_url(&v.id, "/result"),
            FlashKind::Error,
            "The import has already run: Finish ends it.",
        );
    }
    let psa = v.lists.psa_name.clone();
    match wizard::delete_import(app, &actor(s), &v.id).await {
        Ok(_) => {
            tracing::info!(target: "lpbridge::console", actor = s.actor_id(), wizard = %v.id, cancel, "MSP import wizard ended");
            let text = if cancel {
                format!(
                    "Cancelled the import from {psa}: nothing was imported, and the integration is free for other admins."
                )
            } else {
                format!("Finished the import from {psa}: the integration is free for other admins.")
            };
            ui::redirect_with(
                s,
                BASE,
                if cancel {
                    FlashKind::Info
                } else {
                    FlashKind::Ok
                },
                text,
            )
        }
        Err(e) => {
            let (_, p) = problems_of(&e.0, &|_| None);
            let back = if v.run.is_some() {
                wizard_url(&v.id, "/result")
            } else {
                wizard_url(&v.id, "/companies")
            };
            ui::redirect_with(s, &back, FlashKind::Error, p.general_messages().join(" "))
        }
    }
}

pub(super) async fn finish(
    State(app): State<App>,
    Path(id): Path<String>,
    Posted {
        session: s,
        form: _,
    }: Posted,
) -> Response {
    end(&app, &s, &id, false).await
}

pub(super) async fn cancel(
    State(app): State<App>,
    Path(id): Path<String>,
    Posted {
        session: s,
        form: _,
    }: Posted,
) -> Response {
    end(&app, &s, &id, true).await
}
