//! Steps 2 to 4 of the wizard: the two tabs "Companies in <PSA>" and "Companies not in <PSA>"
//! with the selection, "Companies with active PSA integration" (Manage per company) and
//! "Companies to Import and Map" (Manage users per company, Continue).

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::{
    Step, date_or_never, load, managed_names, may_change, problems_of, read_only_note, rename_all,
    status_badge, steps_nav, wizard_url,
};
use crate::console::ui::{self, FlashKind, Nav, Problems};
use crate::console::{Posted, Session};
use crate::http::App;
use crate::msp::wizard::{self, CompanyEdit, CompanySummary, ImportView};

/// The id of the dialog the Manage buttons load into.
pub(super) const DIALOG: &str = "msp-dialog";

/// The `<dialog>` the Manage and Manage users buttons fill (console.js opens it).
fn dialog() -> Markup {
    html! { dialog #(DIALOG) aria-labelledby="msp-dialog-title" data-empty-on-close {} }
}

/// A step page of a wizard that was applied is its result page.
fn applied(v: &ImportView) -> Option<Response> {
    let run = v.run.as_ref()?;
    (run.state != wizard::RunState::Interrupted)
        .then(|| ui::redirect_to(false, &wizard_url(&v.id, "/result")))
}

/// The Cancel import button (before Import and Map).
fn cancel_button(s: &Session, v: &ImportView) -> Markup {
    html! {
        form.inline method="post" action=(wizard_url(&v.id, "/cancel")) {
            (ui::csrf(s))
            button.secondary type="submit"
                data-confirm="Cancel this import? Nothing is imported, and the integration is free for other admins." { "Cancel import" }
        }
    }
}

// ---- step 2: select -------------------------------------------------------------------------

pub(super) async fn select(State(app): State<App>, s: Session, Path(id): Path<String>) -> Response {
    render_select(&app, &s, &id, StatusCode::OK, None, &Problems::default()).await
}

/// The selectable table (`ticked`: the selection as posted, when it was refused).
async fn render_select(
    app: &App,
    s: &Session,
    id: &str,
    status: StatusCode,
    ticked: Option<&HashSet<String>>,
    p: &Problems,
) -> Response {
    let v = match load(app, s, id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(r) = applied(&v) {
        return r;
    }
    let psa = &v.lists.psa_name;
    let rows = &v.lists.companies_in_psa;
    let change = may_change(s, &v);
    let is_ticked =
        |r: &CompanySummary| ticked.map_or(r.choice.import, |t| t.contains(&r.psa_company_id));
    let all = !rows.is_empty() && rows.iter().all(is_ticked);
    let form_url = wizard_url(&v.id, "/companies");
    let body = html! {
        (steps_nav(Step::Select))
        h1 { "Select which accounts and contacts to import" }
        (read_only_note(s, &v))
        (tabs(&v, true))
        p { "Companies that exist in your PSA with the filter at the time of import. This tab identifies if new companies were added to create a managed company in LastPass. "
            strong { "Unmapped companies are listed first." } }
        (status_legend())
        (ui::error_summary(p))
        @if rows.is_empty() {
            p { "No company in " (psa) " matches the filter. Cancel the import and start again with other filters." }
        } @else {
            form #msp-select method="post" action=(form_url) {
                (ui::csrf(s))
                (ui::field_error(p, "import"))
                div.table-wrap {
                    table.responsive.msp-table #msp-companies {
                        caption.msp-vh { "Companies in " (psa) }
                        thead { tr {
                            th scope="col" {
                                @if change {
                                    input #msp-all type="checkbox" data-select-all="import" checked[all] aria-label="Select all companies";
                                } @else { span.msp-vh { "Selected" } }
                            }
                            th scope="col" { "The name of the company" }
                            th scope="col" { "Import status" }
                            th scope="col" { "The type of account in your PSA" }
                            th scope="col" { "Status in " (psa) }
                            th scope="col" { "Last import date" }
                        } }
                        tbody {
                            @for r in rows {
                                tr {
                                    td data-label="Import" { div.msp-cell {
                                        input type="checkbox" name="import" value=(r.psa_company_id)
                                            checked[is_ticked(r)] disabled[!change]
                                            aria-label={ "Import " (r.name) };
                                    } }
                                    td data-label="Company" { div.msp-cell { (r.name) span.msp-note { "ID " (r.psa_company_id) } } }
                                    td data-label="Import status" { div.msp-cell {
                                        (status_badge(r.import_status))
                                        @if let Some(m) = r.mapped_to.as_ref().filter(|m| m.exists) {
                                            span.msp-note { "Managed company " (m.name) }
                                        } @else if !r.duplicates.is_empty() {
                                            span.msp-note { "Same name as a managed company in LastPass" }
                                        }
                                    } }
                                    td data-label="Type" { div.msp-cell { (r.psa_type.as_deref().unwrap_or("—")) } }
                                    td data-label={ "Status in " (psa) } { div.msp-cell {
                                        (r.psa_status.as_deref().unwrap_or("—"))
                                        span.msp-note { @if r.psa_active { "Active" } @else { "Not active" } }
                                    } }
                                    td data-label="Last import date" { div.msp-cell { (date_or_never(r.last_import.as_ref())) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if change {
            div.actions {
                @if !rows.is_empty() { button type="submit" form="msp-select" { "Continue" } }
                (cancel_button(s, &v))
            }
        }
    };
    ui::page_with_status(
        status,
        s,
        Nav::Import,
        "Select which accounts and contacts to import",
        body,
    )
}

/// The two tabs.
fn tabs(v: &ImportView, first: bool) -> Markup {
    let psa = &v.lists.psa_name;
    html! {
        nav.tabs aria-label="Lists" {
            a href=(wizard_url(&v.id, "/companies")) aria-current=[first.then_some("page")] {
                "Companies in " (psa) " (" (v.lists.companies_in_psa.len()) ")"
            }
            a href=(wizard_url(&v.id, "/companies/not-in-psa")) aria-current=[(!first).then_some("page")] {
                "Companies not in " (psa) " (" (v.lists.companies_not_in_psa.len()) ")"
            }
        }
    }
}

/// What the three statuses mean (the product's explanations).
fn status_legend() -> Markup {
    html! {
        details.msp-legend {
            summary { "What the import statuses mean" }
            dl.props {
                dt { (ui::badge("ok", "Mapped")) }
                dd { "The company was imported before. Our system tracks which companies you imported from your PSA and links them with managed companies in LastPass. Any further imports of the same company will not create new companies at every import event, just will keep the existing one." }
                dt { (ui::badge("info", "Unmapped")) }
                dd { "The company has not been imported. The import creates a new managed company for this item if selected." }
                dt { (ui::badge("warn", "Unmapped – potential duplicate")) }
                dd { "Your LastPass account has a managed company with the same name as the imported one. These companies may have been added manually, and will be mapped with the similarly-named company if selected." }
            }
        }
    }
}

pub(super) async fn not_in_psa(
    State(app): State<App>,
    s: Session,
    Path(id): Path<String>,
) -> Response {
    let v = match load(&app, &s, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(r) = applied(&v) {
        return r;
    }
    let psa = &v.lists.psa_name;
    let gone = &v.lists.companies_not_in_psa;
    let body = html! {
        (steps_nav(Step::Select))
        h1 { "Select which accounts and contacts to import" }
        (read_only_note(&s, &v))
        (tabs(&v, false))
        p { "Companies that were mapped before with an existing managed company in LastPass, but were not found at the time of import. This can be caused by selecting a filter that did not fit the company or the company was removed from your PSA. If a company needs to be removed this is done outside of the import process." }
        @if gone.is_empty() {
            p.muted { "Every company mapped before was found in " (psa) "." }
        } @else {
            div.table-wrap {
                table.responsive.msp-table {
                    caption.msp-vh { "Companies not in " (psa) }
                    thead { tr {
                        th scope="col" { "The name of the company" }
                        th scope="col" { "Import status" }
                        th scope="col" { "Managed company in LastPass" }
                        th scope="col" { "Last import date" }
                    } }
                    tbody {
                        @for g in gone {
                            tr {
                                td data-label="Company" { div.msp-cell { (g.name) span.msp-note { "ID " (g.psa_company_id) } } }
                                td data-label="Import status" { div.msp-cell { (status_badge(g.import_status)) } }
                                td data-label="Managed company" { div.msp-cell {
                                    (g.managed_company.name)
                                    @if !g.managed_company.exists { span.msp-note { "No longer in LastPass" } }
                                } }
                                td data-label="Last import date" { div.msp-cell { (date_or_never(g.last_import.as_ref())) } }
                            }
                        }
                    }
                }
            }
        }
        p.muted { "Nothing on this tab is changed by the import." }
        div.actions {
            a.button.secondary href=(wizard_url(&v.id, "/companies")) { "Back to Companies in " (psa) }
        }
    };
    ui::page(&s, Nav::Import, &format!("Companies not in {psa}"), body)
}

/// Continue: which companies take part (every row gets its flag); nothing is saved when the
/// wizard refuses it.
pub(super) async fn save_selection(
    State(app): State<App>,
    Path(id): Path<String>,
    Posted { session: s, form }: Posted,
) -> Response {
    if let Err(e) = s.require_admin() {
        return ui::error_page(Some(&s), &e);
    }
    let lists = match wizard::list_companies(&app, &id).await {
        Ok(l) => l,
        Err(e) => return ui::error_page(Some(&s), &e.0),
    };
    let ticked: HashSet<String> = form.all("import").into_iter().map(str::to_owned).collect();
    let mut p = Problems::default();
    for t in &ticked {
        if !lists
            .companies_in_psa
            .iter()
            .any(|r| &r.psa_company_id == t)
        {
            p.field("import", format!("{t:?} is not a company of this import."));
        }
    }
    if ticked.is_empty() {
        p.field("import", "Select at least one company to import.");
    }
    if !p.is_empty() {
        return render_select(
            &app,
            &s,
            &id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&ticked),
            &p,
        )
        .await;
    }
    let edits: Vec<CompanyEdit> = lists
        .companies_in_psa
        .iter()
        .map(|r| CompanyEdit {
            company: r.psa_company_id.clone(),
            import: Some(ticked.contains(&r.psa_company_id)),
            ..CompanyEdit::default()
        })
        .collect();
    match wizard::patch_companies(&app, &super::actor(&s), &id, &edits).await {
        Ok(_) => ui::redirect_to(s.htmx, &wizard_url(&id, "/choices")),
        Err(e) => {
            let (status, p) = problems_of(&e.0, &rename_all("import"));
            render_select(&app, &s, &id, status, Some(&ticked), &p).await
        }
    }
}

// ---- step 3: Companies with active PSA integration ------------------------------------------

pub(super) async fn choices(
    State(app): State<App>,
    s: Session,
    Path(id): Path<String>,
) -> Response {
    let v = match load(&app, &s, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(r) = applied(&v) {
        return r;
    }
    let change = may_change(&s, &v);
    let rows: Vec<&CompanySummary> = v
        .lists
        .companies_in_psa
        .iter()
        .filter(|r| r.choice.import)
        .collect();
    let names = managed_names(&app, &v.lists.companies_in_psa).await;
    let body = html! {
        (steps_nav(Step::Companies))
        h1 { "Companies with active PSA integration" }
        (read_only_note(&s, &v))
        p { "Create new managed companies for unmapped companies or use an existing managed company: "
            "a new managed company is created by default. To use an existing one, or to unmap a company, click Manage." }
        @if rows.is_empty() {
            p { "No company is selected. " a href=(wizard_url(&v.id, "/companies")) { "Select companies" } }
        } @else {
            div.table-wrap {
                table.responsive.msp-table #msp-choices {
                    thead { tr {
                        th scope="col" { "The name of the company" }
                        th scope="col" { "Import status" }
                        th scope="col" { "Action in LastPass" }
                        th scope="col" { span.msp-vh { "Manage" } }
                    } }
                    tbody {
                        @for r in &rows {
                            tr {
                                td data-label="Company" { div.msp-cell { (r.name) } }
                                td data-label="Import status" { div.msp-cell { (status_badge(r.import_status)) } }
                                td data-label="Action in LastPass" { div.msp-cell { (super::action_text(r, &names)) } }
                                td data-label="" { div.msp-cell {
                                    @if change {
                                        button.secondary type="button"
                                            hx-get=(super::company_url(&v.id, "choices", &r.psa_company_id, ""))
                                            hx-target={ "#" (DIALOG) } { "Manage" }
                                    }
                                } }
                            }
                        }
                    }
                }
            }
        }
        @if change {
            div.actions {
                @if !rows.is_empty() {
                    form.inline method="get" action=(wizard_url(&v.id, "/users")) {
                        button type="submit" { "Import and Map" }
                    }
                }
                a.button.secondary href=(wizard_url(&v.id, "/companies")) { "Back" }
                (cancel_button(&s, &v))
            }
        }
        (dialog())
    };
    ui::page(
        &s,
        Nav::Import,
        "Companies with active PSA integration",
        body,
    )
}

// ---- step 4: Companies to Import and Map -------------------------------------------------------

pub(super) async fn users(State(app): State<App>, s: Session, Path(id): Path<String>) -> Response {
    render_users(&app, &s, &id, StatusCode::OK, &Problems::default()).await
}

pub(super) async fn render_users(
    app: &App,
    s: &Session,
    id: &str,
    status: StatusCode,
    p: &Problems,
) -> Response {
    let v = match load(app, s, id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(r) = applied(&v) {
        return r;
    }
    let change = may_change(s, &v);
    let rows: Vec<&CompanySummary> = v
        .lists
        .companies_in_psa
        .iter()
        .filter(|r| r.choice.import)
        .collect();
    let names = managed_names(app, &v.lists.companies_in_psa).await;
    let emails: usize = rows.iter().map(|r| r.selected_emails).sum();
    let interrupted = v.run.is_some();
    let body = html! {
        (steps_nav(Step::Users))
        h1 { "Companies to Import and Map" }
        (read_only_note(s, &v))
        p { "Create LastPass access for users in your PSA: click Manage users next to a company and select which emails to grant access. "
            "Emails that were already imported before are selected by default. To map a user to an existing LastPass user, select the user and search in User details." }
        (ui::error_summary(p))
        @if interrupted {
            (ui::alert("warn", html! { p { "The last Import and Map of this wizard stopped before it finished. Continue runs it again: nothing is created twice." } }))
        }
        div.table-wrap {
            table.responsive.msp-table #msp-users {
                thead { tr {
                    th scope="col" { "The name of the company" }
                    th scope="col" { "Action in LastPass" }
                    th scope="col" { "Users" }
                    th scope="col" { span.msp-vh { "Manage users" } }
                } }
                tbody {
                    @for r in &rows {
                        tr {
                            td data-label="Company" { div.msp-cell { (r.name) } }
                            td data-label="Action in LastPass" { div.msp-cell { (super::action_text(r, &names)) } }
                            td data-label="Users" { div.msp-cell { (r.selected_emails) " of " (r.contacts) " contacts selected" } }
                            td data-label="" { div.msp-cell {
                                @if change {
                                    button.secondary type="button"
                                        hx-get=(super::company_url(&v.id, "users", &r.psa_company_id, ""))
                                        hx-target={ "#" (DIALOG) } { "Manage users" }
                                }
                            } }
                        }
                    }
                }
            }
        }
        p { strong { (rows.len()) } " compan" @if rows.len() == 1 { "y" } @else { "ies" } " and "
            strong { (emails) } " e-mail" @if emails != 1 { "s" } " will be imported." }
        @if change {
            div.actions {
                form.inline method="post" action=(wizard_url(&v.id, "/apply")) {
                    (ui::csrf(s))
                    button type="submit" { "Continue" }
                }
                a.button.secondary href=(wizard_url(&v.id, "/choices")) { "Back" }
                (cancel_button(s, &v))
            }
        }
        (dialog())
    };
    ui::page_with_status(status, s, Nav::Import, "Companies to Import and Map", body)
}

/// A flash after a dialog's Save, back on its step.
pub(super) fn saved(s: &Session, to: &str, text: String) -> Response {
    ui::redirect_with(s, to, FlashKind::Ok, text)
}
