//! The console's home page, `/console/connections`: the LastPass accounts lpbridge works on, the
//! PSA integrations the MSP import reads, and the MSP account's LastPass REST API key.
//!
//! | route | what it does |
//! |---|---|
//! | `GET /console/connections` | the three lists and their Add forms |
//! | `POST /console/connections/lastpass` | add a LastPass account, after one probe with its credentials |
//! | `POST /console/connections/lastpass/{id}/test` | one probe with the stored credentials (htmx: the result inline) |
//! | `POST /console/connections/lastpass/{id}/remove` | forget a connection |
//! | `POST /console/connections/psa` | add a ConnectWise Manage or Datto Autotask integration (`kind`), after its check call |
//! | `POST /console/connections/psa/{id}/test` | the PSA's check call with the stored credentials |
//! | `POST /console/connections/psa/{id}/remove` | forget an integration (refused while an import holds its lock) |
//! | `POST /console/connections/msp` | check and store the MSP account's REST API key |
//!
//! Credentials are checked before anything is stored: a refused form answers 422 with the
//! problem next to its field (or as the form's error, worded as the product words it) and
//! stores nothing. Adding and removing needs a read-write principal not limited to some
//! connections; the others see the lists (and may test, a read like `POST /connections/{id}/test`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lastpass::Client;
use lp_types::{Cid, ConnectionId, Secret};
use maud::{Markup, html};

use super::ui::{self, FlashKind, FormData, Input, Nav, Problems};
use super::{Posted, Session};
use crate::error::Error;
use crate::http::App;
use crate::msp::{self, MspError, wizard};
use crate::store::{
    AutotaskSettings, ConnectWiseSettings, ConnectionSummary, NewConnection, NewPsaIntegration,
    PsaIntegrationSummary, PsaSecrets, PsaSettings, StoreError,
};

const HOME: &str = "/console/connections";

pub fn router() -> Router<App> {
    Router::new()
        .route("/connections", get(index))
        .route("/connections/lastpass", post(add_lastpass))
        .route("/connections/lastpass/{id}/test", post(test_lastpass))
        .route("/connections/lastpass/{id}/remove", post(remove_lastpass))
        .route("/connections/psa", post(add_psa))
        .route("/connections/psa/{id}/test", post(test_psa))
        .route("/connections/psa/{id}/remove", post(remove_psa))
        .route("/connections/msp", post(set_msp))
}

// ---- the page -----------------------------------------------------------------------------

/// Which form came back refused, with what was typed and what was wrong.
#[derive(Default)]
struct Refused {
    form: Option<Which>,
    values: FormData,
    problems: Problems,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    LastPass,
    ConnectWise,
    Autotask,
    Msp,
}

impl Refused {
    fn new(form: Which, values: FormData, problems: Problems) -> Self {
        Refused {
            form: Some(form),
            values,
            problems,
        }
    }

    /// The problems of `form` (none for the other forms on the page).
    fn problems(&self, form: Which) -> Problems {
        if self.form == Some(form) {
            self.problems.clone()
        } else {
            Problems::default()
        }
    }

    /// What was typed in `form`'s field `name` (empty for the other forms).
    fn value(&self, form: Which, name: &str) -> &str {
        if self.form == Some(form) {
            self.values.one(name).unwrap_or_default()
        } else {
            ""
        }
    }
}

async fn index(State(app): State<App>, s: Session) -> Response {
    render(&app, &s, StatusCode::OK, &Refused::default()).await
}

/// The page again, 422, with `form`'s input kept (never its secrets) and its problems.
async fn refuse(app: &App, s: &Session, which: Which, form: &FormData, p: Problems) -> Response {
    let refused = Refused::new(which, form.clone(), p);
    render(app, s, StatusCode::UNPROCESSABLE_ENTITY, &refused).await
}

/// One PSA integration as the table shows it.
struct PsaRow {
    summary: PsaIntegrationSummary,
    lock: Option<msp::lock::LockStatus>,
}

async fn render(app: &App, s: &Session, status: StatusCode, refused: &Refused) -> Response {
    let loaded = async {
        let conns = app.usable_connections(Some(&s.key)).await?;
        let mut psa = Vec::new();
        for summary in app.store.list_psa_integrations().await? {
            // The lock is shown when it can be read; the list does not fail for it.
            let lock = msp::lock::status(&app.store, summary.id.as_str())
                .await
                .ok();
            psa.push(PsaRow { summary, lock });
        }
        let msp = app.store.msp_settings_summary().await?;
        Ok::<_, Error>((conns, psa, msp))
    }
    .await;
    let (conns, psa, msp_settings) = match loaded {
        Ok(x) => x,
        Err(e) => return ui::error_page(Some(s), &e),
    };
    let admin = s.require_admin().is_ok();
    let body = html! {
        h1 { "Connections" }
        p.lead { "The LastPass Business accounts lpbridge works on, the PSA integrations the import reads, and the MSP account's API key." }
        @if !admin {
            (ui::alert("info", html! { p { (s.label) " may look at these lists but not change them (read-only, or limited to some connections)." } }))
        }
        (lastpass_section(s, &conns, admin, refused))
        (psa_section(s, &psa, admin, refused))
        (msp_section(s, msp_settings.as_ref(), admin, refused))
    };
    ui::page_with_status(status, s, Nav::Connections, "Connections", body)
}

fn lastpass_section(
    s: &Session,
    conns: &[ConnectionSummary],
    admin: bool,
    refused: &Refused,
) -> Markup {
    let p = refused.problems(Which::LastPass);
    let v = |name| refused.value(Which::LastPass, name);
    let endpoint = match v("endpoint") {
        "" if refused.form != Some(Which::LastPass) => lastpass::DEFAULT_ENDPOINT,
        e => e,
    };
    html! {
        section aria-labelledby="lp-h" {
            h2 #lp-h { "LastPass accounts" }
            @if conns.is_empty() {
                p.muted { "No LastPass account yet." }
            } @else {
                div.table-wrap {
                    table.responsive.conn-table {
                        thead { tr {
                            th scope="col" { "ID" }
                            th scope="col" { "CID" }
                            th scope="col" { "Endpoint" }
                            th scope="col" { "Time zone" }
                            th scope="col" { "Created" }
                            th scope="col" { "Updated" }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for (i, c) in conns.iter().enumerate() {
                                @let id = c.id.as_str();
                                @let result_id = format!("lp-test-{i}");
                                @let base = format!("{HOME}/lastpass/{}", seg(id));
                                tr {
                                    td data-label="ID" { strong.nowrap { (id) } }
                                    td data-label="CID" { (c.cid) }
                                    td data-label="Endpoint" { code { (c.endpoint.as_str()) } }
                                    td data-label="Time zone" {
                                        @match c.time_zone {
                                            Some(tz) => (tz.name()),
                                            None => span.muted { "US/Eastern (default)" },
                                        }
                                    }
                                    td data-label="Created" { (ui::time_el(&c.created_at)) }
                                    td data-label="Updated" { (ui::time_el(&c.updated_at)) }
                                    td data-label="Actions" { (row_actions(s, &base, id, &result_id, admin, &format!(
                                        "Remove the connection {id}? lpbridge forgets its CID and provisioning hash; \
                                         nothing changes in LastPass, and its collected events and webhooks are kept."
                                    ))) }
                                }
                            }
                        }
                    }
                }
            }
            @if admin {
                div.panel.tight {
                    h3 #lp-add-h { "Add a LastPass account" }
                    p.muted { "The credentials are checked with one call to LastPass before anything is stored." }
                    (ui::error_summary(&p))
                    form.stack method="post" action={ (HOME) "/lastpass" } aria-labelledby="lp-add-h" {
                        (ui::csrf(s))
                        (Input::new("id", "Connection ID").value(v("id")).required().autocomplete("off")
                            .help("1-64 letters, digits, '-', '_' or '.'; API clients pick it with x-account-id").render(&p))
                        (Input::new("cid", "Account number (CID)").value(v("cid")).required().autocomplete("off")
                            .help("The LastPass Business account number (Admin Console → Advanced → Enterprise API)").render(&p))
                        (Input::new("provhash", "Provisioning hash").kind("password").required().autocomplete("off").render(&p))
                        (Input::new("endpoint", "Endpoint").kind("url").value(endpoint)
                            .help("LastPass US by default; https://lastpass.eu/enterpriseapi.php for the EU").render(&p))
                        (Input::new("time_zone", "Time zone").value(v("time_zone")).placeholder("US/Eastern").autocomplete("off")
                            .help("The account's IANA time zone (e.g. Europe/Berlin); empty: US/Eastern").render(&p))
                        div.actions { button type="submit" { "Check and add" } }
                    }
                }
            }
        }
    }
}

fn psa_section(s: &Session, rows: &[PsaRow], admin: bool, refused: &Refused) -> Markup {
    let cw = refused.problems(Which::ConnectWise);
    let at = refused.problems(Which::Autotask);
    let cwv = |name| refused.value(Which::ConnectWise, name);
    let atv = |name| refused.value(Which::Autotask, name);
    html! {
        section aria-labelledby="psa-h" {
            h2 #psa-h { "PSA integrations" }
            @if rows.is_empty() {
                p.muted { "No PSA integration yet." }
            } @else {
                div.table-wrap {
                    table.responsive.conn-table {
                        thead { tr {
                            th scope="col" { "ID" }
                            th scope="col" { "PSA" }
                            th scope="col" { "Site / account" }
                            th scope="col" { "Import lock" }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for (i, r) in rows.iter().enumerate() {
                                @let id = r.summary.id.as_str();
                                @let result_id = format!("psa-test-{i}");
                                @let base = format!("{HOME}/psa/{}", seg(id));
                                tr {
                                    td data-label="ID" { strong.nowrap { (id) } }
                                    td data-label="PSA" { (msp::psa_display_name(r.summary.kind)) }
                                    td data-label="Site / account" { div {
                                        @match &r.summary.settings {
                                            PsaSettings::ConnectWise(c) => {
                                                code { (c.site) } br;
                                                span.muted { "company " (c.company_id) }
                                            }
                                            PsaSettings::Autotask(a) => {
                                                (a.username) br;
                                                span.muted { (a.discovery_url.as_deref().unwrap_or("default zone discovery")) }
                                            }
                                        }
                                    } }
                                    td data-label="Import lock" { div {
                                        @match &r.lock {
                                            Some(l) if l.locked => {
                                                (ui::badge("warn", "In use"))
                                                " " span.muted {
                                                    (l.holder.as_deref().unwrap_or("another admin"))
                                                    @if let Some(t) = &l.expires_at { " until " (ui::time_el(t)) }
                                                }
                                            }
                                            Some(_) => (ui::badge("ok", "Free")),
                                            None => (ui::badge("muted", "Unknown")),
                                        }
                                    } }
                                    td data-label="Actions" { (row_actions(s, &base, id, &result_id, admin, &format!(
                                        "Remove the PSA integration {id}? lpbridge forgets its stored credentials; the \
                                         mappings of past imports are kept, and nothing changes in the PSA or in LastPass."
                                    ))) }
                                }
                            }
                        }
                    }
                }
            }
            @if admin {
                div.grid2 {
                    section.panel.tight aria-labelledby="cw-add-h" {
                        h3 #cw-add-h { "Add ConnectWise Manage" }
                        (ui::error_summary(&cw))
                        form.stack method="post" action={ (HOME) "/psa" } {
                            (ui::csrf(s))
                            input type="hidden" name="kind" value="connectwise";
                            (Input::new("cw_id", "Integration ID").value(cwv("cw_id")).required().autocomplete("off").render(&cw))
                            (Input::new("cw_site", "Site").value(cwv("cw_site")).required().placeholder("na.myconnectwise.net")
                                .help("The host you sign in to, or its URL").render(&cw))
                            (Input::new("cw_company_id", "Company ID").value(cwv("cw_company_id")).required().autocomplete("off")
                                .help("The company typed at login").render(&cw))
                            (Input::new("cw_public_key", "Public key").value(cwv("cw_public_key")).required().autocomplete("off").render(&cw))
                            (Input::new("cw_private_key", "Private key").kind("password").required().autocomplete("off").render(&cw))
                            (Input::new("cw_client_id", "Client ID").value(cwv("cw_client_id")).required().autocomplete("off")
                                .help("The integration's clientId GUID from developer.connectwise.com").render(&cw))
                            div.actions { button type="submit" { "Check and add ConnectWise Manage" } }
                        }
                    }
                    section.panel.tight aria-labelledby="at-add-h" {
                        h3 #at-add-h { "Add Datto Autotask" }
                        (ui::error_summary(&at))
                        form.stack method="post" action={ (HOME) "/psa" } {
                            (ui::csrf(s))
                            input type="hidden" name="kind" value="autotask";
                            (Input::new("at_id", "Integration ID").value(atv("at_id")).required().autocomplete("off").render(&at))
                            (Input::new("at_username", "API username").value(atv("at_username")).required().autocomplete("off")
                                .help("The API user's username (e-mail-like)").render(&at))
                            (Input::new("at_secret", "Secret").kind("password").required().autocomplete("off").render(&at))
                            (Input::new("at_integration_code", "Integration code").kind("password").required().autocomplete("off")
                                .help("The API tracking identifier").render(&at))
                            (Input::new("at_discovery_url", "Zone discovery URL").kind("url").value(atv("at_discovery_url"))
                                .help("Empty: Autotask's default (https://webservices2.autotask.net/atservicesrest)").render(&at))
                            div.actions { button type="submit" { "Check and add Datto Autotask" } }
                        }
                    }
                }
            }
        }
    }
}

fn msp_section(
    s: &Session,
    settings: Option<&crate::store::msp::MspSettingsSummary>,
    admin: bool,
    refused: &Refused,
) -> Markup {
    let p = refused.problems(Which::Msp);
    let typed = refused.value(Which::Msp, "msp_base_url");
    let base = match (typed, settings) {
        ("", Some(m)) if refused.form != Some(Which::Msp) => m.base_url.as_str(),
        ("", None) if refused.form != Some(Which::Msp) => lastpass::rest::DEFAULT_BASE_URL,
        (t, _) => t,
    };
    html! {
        section aria-labelledby="msp-h" {
            h2 #msp-h { "MSP account" }
            p.muted { "The LastPass REST API key of the MSP account: the PSA import creates managed companies and their users with it." }
            dl.props {
                dt { "API key" }
                dd {
                    @match settings {
                        Some(m) if m.api_key_set => (ui::badge("ok", "Set")),
                        _ => (ui::badge("warn", "Not set")),
                    }
                }
                @if let Some(m) = settings {
                    dt { "Base URL" } dd { code { (m.base_url) } }
                    dt { "Updated" } dd { (ui::time_el(&m.updated_at)) }
                }
            }
            @if admin {
                div.panel.tight {
                    h3 #msp-add-h { "Set the API key" }
                    p.muted { "The key is checked with one call before it is stored; it is never shown again." }
                    (ui::error_summary(&p))
                    form.stack method="post" action={ (HOME) "/msp" } aria-labelledby="msp-add-h" {
                        (ui::csrf(s))
                        (Input::new("msp_base_url", "REST API base URL").kind("url").value(base).render(&p))
                        (Input::new("msp_api_key", "REST API key").kind("password").autocomplete("off").render(&p))
                        div.actions { button type="submit" { "Check and save" } }
                    }
                }
            }
        }
    }
}

/// A row's Test button with its inline result, and Remove (admins, after `confirm`).
fn row_actions(
    s: &Session,
    base: &str,
    id: &str,
    result_id: &str,
    admin: bool,
    confirm: &str,
) -> Markup {
    html! {
        div {
            div.actions.conn-actions {
                (test_button(s, &format!("{base}/test"), result_id, &format!("Test {id}")))
                @if admin {
                    form.inline method="post" action={ (base) "/remove" } {
                        (ui::csrf(s))
                        button.danger type="submit" aria-label={ "Remove " (id) } data-confirm=(confirm) { "Remove" }
                    }
                }
            }
            output.test-result id=(result_id) aria-live="polite" {}
        }
    }
}

/// A Test button: htmx puts the result in `result_id`; without scripts it posts and the
/// result comes back as a flash message.
fn test_button(s: &Session, action: &str, result_id: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) hx-post=(action)
            hx-target={ "#" (result_id) } hx-swap="innerHTML" {
            (ui::csrf(s))
            button.secondary type="submit" aria-label=(label) { "Test" }
            span.htmx-indicator.muted { " Testing…" }
        }
    }
}

/// The result of a Test: a fragment for htmx, a flash message otherwise.
fn test_answer(s: &Session, outcome: Result<String, String>) -> Response {
    if s.htmx {
        let body = match &outcome {
            Ok(text) => html! { (ui::badge("ok", "OK")) " " (text) },
            Err(text) => html! { (ui::badge("danger", "Failed")) " " span.field-error { (text) } },
        };
        return ui::fragment(StatusCode::OK, body);
    }
    match outcome {
        Ok(text) => ui::redirect_with(s, HOME, FlashKind::Ok, format!("Test passed: {text}")),
        Err(text) => ui::redirect_with(s, HOME, FlashKind::Error, format!("Test failed: {text}")),
    }
}

/// A path segment: ids are plain (letters, digits, `-_.`), anything else is escaped.
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@' | b'+') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The first line of an error as the JSON API words it.
fn message_of(e: &Error) -> String {
    let (_, p) = Problems::of(e);
    p.general_messages().join(" ")
}

// ---- LastPass accounts ----------------------------------------------------------------------

/// The same probe as `me` and `POST /connections/{id}/test`: one one-user `getuserdata` page,
/// whose answer also says how many users the account has.
async fn probe(client: &Client) -> Result<u64, Error> {
    let page = client
        .user_page(&lastpass::UserQuery::default(), 1, 0)
        .await?;
    Ok(page.total)
}

fn users_text(n: u64) -> String {
    if n == 1 {
        "1 user".into()
    } else {
        format!("{n} users")
    }
}

async fn add_lastpass(State(app): State<App>, Posted { session: s, form }: Posted) -> Response {
    if let Err(e) = s.require_admin() {
        return ui::error_page(Some(&s), &e);
    }
    let mut p = Problems::default();
    let id = match form.text("id").map(ConnectionId::new) {
        Some(Ok(id)) => match crate::store::validate_connection_id(&id) {
            Ok(()) => Some(id),
            Err(v) => {
                p.field("id", ui::sentence(&v.reason));
                None
            }
        },
        _ => {
            p.field("id", "Enter an ID for this connection.");
            None
        }
    };
    let cid = match form.text("cid") {
        None => {
            p.field("cid", "Enter the account number.");
            None
        }
        Some(raw) => match raw.parse::<Cid>() {
            Ok(c) => Some(c),
            Err(_) => {
                p.field(
                    "cid",
                    "Must be a positive whole number (the account number).",
                );
                None
            }
        },
    };
    let provhash = Secret::new(form.one("provhash").unwrap_or_default().trim());
    if provhash.is_empty() {
        p.field("provhash", "Enter the provisioning hash.");
    }
    let endpoint = match form.text("endpoint") {
        None => lastpass::parse_endpoint(lastpass::DEFAULT_ENDPOINT).map_err(Error::from),
        Some(e) => crate::http::parse_endpoint(&app, e),
    };
    let endpoint = match endpoint {
        Ok(u) => Some(u),
        Err(e) => {
            p.field("endpoint", field_message(&e));
            None
        }
    };
    let time_zone = match form
        .text("time_zone")
        .map(crate::http::parse_tz)
        .transpose()
    {
        Ok(tz) => tz,
        Err(e) => {
            p.field("time_zone", field_message(&e));
            None
        }
    };
    let refuse = |p: Problems| refuse(&app, &s, Which::LastPass, &form, p);
    let (Some(id), Some(cid), Some(endpoint), true) = (id, cid, endpoint, p.is_empty()) else {
        return refuse(p).await;
    };
    match app.store.get_connection(&id).await {
        Ok(Some(_)) => {
            p.field(
                "id",
                format!("A connection named {} already exists.", id.as_str()),
            );
            return refuse(p).await;
        }
        Ok(None) => {}
        Err(e) => return ui::error_page(Some(&s), &e.into()),
    }
    // Checked before anything is stored: bad credentials leave no row behind.
    let checked = match app.build_client(cid, provhash.clone(), endpoint.clone()) {
        Ok(client) => probe(&client).await,
        Err(e) => Err(e),
    };
    let total = match checked {
        Ok(n) => n,
        Err(e) => {
            match &e {
                Error::LastPass(lastpass::Error::Auth) => {
                    p.field(
                        "provhash",
                        "LastPass refused this account number and provisioning hash: check both \
                         (nothing was stored).",
                    );
                }
                Error::LastPass(
                    lastpass::Error::Transport { .. }
                    | lastpass::Error::Upstream { .. }
                    | lastpass::Error::Decode { .. },
                ) => {
                    p.field(
                        "endpoint",
                        format!(
                            "No LastPass Enterprise API answered here ({}); nothing was stored.",
                            e
                        ),
                    );
                }
                _ => p.general(format!("{} (nothing was stored)", message_of(&e))),
            }
            return refuse(p).await;
        }
    };
    let new = NewConnection {
        id: id.clone(),
        cid,
        endpoint,
        provhash,
        time_zone,
    };
    match app.store.create_connection(new, false).await {
        Ok(c) => {
            tracing::info!(target: "lpbridge::console", connection = %c.id, actor = s.actor_id(), "connection added");
            ui::redirect_with(
                &s,
                HOME,
                FlashKind::Ok,
                format!(
                    "Added the LastPass account {} (CID {}): the credentials work, {}.",
                    c.id.as_str(),
                    c.cid,
                    users_text(total)
                ),
            )
        }
        Err(StoreError::Conflict { .. }) => {
            p.field(
                "id",
                format!("A connection named {} already exists.", id.as_str()),
            );
            refuse(p).await
        }
        Err(StoreError::Invalid(v)) => {
            let field = match v.field.as_ref() {
                "connection" => "id",
                other => other,
            };
            p.field(field, ui::sentence(&v.reason));
            refuse(p).await
        }
        Err(e) => ui::error_page(Some(&s), &e.into()),
    }
}

/// An error's text for a field: an invalid value's reason, else the error's message.
fn field_message(e: &Error) -> String {
    match e {
        Error::Invalid(v) | Error::LastPass(lastpass::Error::InvalidInput(v)) => {
            ui::sentence(&v.reason)
        }
        other => message_of(other),
    }
}

fn path_id(raw: &str) -> Result<ConnectionId, Error> {
    ConnectionId::new(raw)
        .map_err(|_| Error::NotFound(format!("no connection {:?}", lp_types::shown(raw))))
}

async fn test_lastpass(
    State(app): State<App>,
    Path(id): Path<String>,
    Posted { session: s, .. }: Posted,
) -> Response {
    let outcome = async {
        let conn = app.account_by_id(path_id(&id)?, Some(&s.key)).await?;
        let total = probe(&conn.client).await?;
        Ok::<_, Error>(format!(
            "CID {}: LastPass answered, {}.",
            conn.client.cid(),
            users_text(total)
        ))
    }
    .await;
    test_answer(&s, outcome.map_err(|e| message_of(&e)))
}

async fn remove_lastpass(
    State(app): State<App>,
    Path(id): Path<String>,
    Posted { session: s, .. }: Posted,
) -> Response {
    if let Err(e) = s.require_admin() {
        return ui::error_page(Some(&s), &e);
    }
    let removed = async {
        let id = path_id(&id)?;
        if !app.store.delete_connection(&id).await? {
            return Err(Error::NotFound(format!(
                "no connection {:?} (removed meanwhile?)",
                id.as_str()
            )));
        }
        app.forget_client(&id);
        Ok::<_, Error>(id)
    }
    .await;
    match removed {
        Ok(id) => {
            tracing::info!(target: "lpbridge::console", connection = %id, actor = s.actor_id(), "connection removed");
            ui::redirect_with(
                &s,
                HOME,
                FlashKind::Ok,
                format!(
                    "Removed the connection {}: its stored credentials are gone; nothing changed in LastPass.",
                    id.as_str()
                ),
            )
        }
        Err(e) => ui::redirect_with(&s, HOME, FlashKind::Error, message_of(&e)),
    }
}

// ---- PSA integrations -----------------------------------------------------------------------

/// A PSA failure as the product words it, and its technical detail.
fn psa_problem(p: &mut Problems, e: &psa::Error) {
    p.general(e.kind.user_message());
    if !e.detail.is_empty() && e.kind != psa::ErrorKind::CredentialsMissing {
        p.general(format!("Detail: {}", e.detail));
    }
}

async fn add_psa(State(app): State<App>, Posted { session: s, form }: Posted) -> Response {
    if let Err(e) = s.require_admin() {
        return ui::error_page(Some(&s), &e);
    }
    let (which, prefix) = match form.one("kind") {
        Some("connectwise") => (Which::ConnectWise, "cw_"),
        Some("autotask") => (Which::Autotask, "at_"),
        _ => {
            return ui::error_page(
                Some(&s),
                &Error::Usage("unknown PSA: reload the page and try again".into()),
            );
        }
    };
    let f = |name: &str| {
        form.one(&format!("{prefix}{name}"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let mut p = Problems::default();
    let id_field = format!("{prefix}id");
    let id = match ConnectionId::new(f("id")) {
        Ok(id) => match crate::store::validate_psa_id(&id) {
            Ok(()) => Some(id),
            Err(v) => {
                p.field(&id_field, ui::sentence(&v.reason));
                None
            }
        },
        Err(_) => {
            p.field(&id_field, "Enter an ID for this integration.");
            None
        }
    };
    let (settings, secrets, required): (PsaSettings, PsaSecrets, &[&str]) = match which {
        Which::ConnectWise => (
            PsaSettings::ConnectWise(ConnectWiseSettings {
                site: f("site"),
                company_id: f("company_id"),
                public_key: f("public_key"),
                client_id: f("client_id"),
            }),
            PsaSecrets::ConnectWise {
                private_key: Secret::new(f("private_key")),
            },
            &[
                "site",
                "company_id",
                "public_key",
                "private_key",
                "client_id",
            ],
        ),
        _ => (
            PsaSettings::Autotask(AutotaskSettings {
                username: f("username"),
                discovery_url: Some(f("discovery_url")).filter(|u| !u.is_empty()),
            }),
            PsaSecrets::Autotask {
                secret: Secret::new(f("secret")),
                integration_code: Secret::new(f("integration_code")),
            },
            &["username", "secret", "integration_code"],
        ),
    };
    // The product's one message for an incomplete form, and each empty field marked.
    let empty: Vec<&str> = required
        .iter()
        .copied()
        .filter(|n| f(n).is_empty())
        .collect();
    if !empty.is_empty() {
        p.general(msp::messages::CREDENTIALS_REQUIRED);
        for n in empty {
            p.field(&format!("{prefix}{n}"), "Required.");
        }
    }
    let refuse = |p: Problems| refuse(&app, &s, which, &form, p);
    let (Some(id), true) = (id, p.is_empty()) else {
        return refuse(p).await;
    };
    match app.store.psa_integration_summary(&id).await {
        Ok(Some(_)) => {
            p.field(
                &id_field,
                format!("An integration named {} already exists.", id.as_str()),
            );
            return refuse(p).await;
        }
        Ok(None) => {}
        Err(e) => return ui::error_page(Some(&s), &e.into()),
    }
    // The PSA's own check call before anything is stored.
    let checked = match crate::store::psa_directory(&settings, &secrets, &app.psa_tuning()) {
        Ok(dir) => dir.check().await,
        Err(e) => Err(e),
    };
    if let Err(e) = checked {
        psa_problem(&mut p, &e);
        return refuse(p).await;
    }
    let name = msp::psa_display_name(settings.kind());
    let new = NewPsaIntegration {
        id: id.clone(),
        settings,
        secrets,
    };
    match app.store.create_psa_integration(new, false).await {
        Ok(saved) => {
            tracing::info!(target: "lpbridge::console", psa = %saved.id, actor = s.actor_id(), "PSA integration added");
            ui::redirect_with(
                &s,
                HOME,
                FlashKind::Ok,
                format!(
                    "Added the {name} integration {}: the credentials work.",
                    saved.id.as_str()
                ),
            )
        }
        Err(StoreError::Conflict { .. }) => {
            p.field(
                &id_field,
                format!("An integration named {} already exists.", id.as_str()),
            );
            refuse(p).await
        }
        Err(StoreError::Invalid(v)) => {
            p.field(&id_field, ui::sentence(&v.reason));
            refuse(p).await
        }
        Err(e) => ui::error_page(Some(&s), &e.into()),
    }
}

async fn test_psa(
    State(app): State<App>,
    Path(id): Path<String>,
    Posted { session: s, .. }: Posted,
) -> Response {
    let outcome = async {
        let id = path_id(&id)?;
        let i = app
            .store
            .get_psa_integration(&id)
            .await?
            .ok_or_else(|| Error::Msp(msp::no_integration(id.as_str())))?;
        let name = msp::psa_display_name(i.kind());
        let dir = crate::store::psa_directory(&i.settings, &i.secrets, &app.psa_tuning());
        let checked = match dir {
            Ok(d) => d.check().await,
            Err(e) => Err(e),
        };
        Ok::<_, Error>(
            checked
                .map(|()| format!("{name} accepted the credentials."))
                .map_err(|e| format!("{} ({})", e.kind.user_message(), e.detail)),
        )
    }
    .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => Err(message_of(&e)),
    };
    test_answer(&s, outcome)
}

async fn remove_psa(
    State(app): State<App>,
    Path(id): Path<String>,
    Posted { session: s, .. }: Posted,
) -> Response {
    if let Err(e) = s.require_admin() {
        return ui::error_page(Some(&s), &e);
    }
    let removed = async {
        let id = path_id(&id)?;
        // An import in progress keeps its integration.
        let lock = msp::lock::status(&app.store, id.as_str())
            .await
            .map_err(Error::Msp)?;
        if lock.locked {
            return Err(Error::Msp(MspError::Locked {
                holder: lock.holder.unwrap_or_else(|| "another admin".into()),
                until: lock.expires_at.map(|t| ui::time(&t)).unwrap_or_default(),
            }));
        }
        if !app.store.delete_psa_integration(&id).await? {
            return Err(Error::Msp(msp::no_integration(id.as_str())));
        }
        Ok::<_, Error>(id)
    }
    .await;
    match removed {
        Ok(id) => {
            tracing::info!(target: "lpbridge::console", psa = %id, actor = s.actor_id(), "PSA integration removed");
            ui::redirect_with(
                &s,
                HOME,
                FlashKind::Ok,
                format!(
                    "Removed the PSA integration {}: its stored credentials are gone.",
                    id.as_str()
                ),
            )
        }
        Err(Error::Msp(m @ MspError::Locked { .. })) => ui::redirect_with(
            &s,
            HOME,
            FlashKind::Error,
            format!(
                "{}: it was not removed ({}).",
                m.user_message(),
                m.to_string().lines().nth(1).unwrap_or_default().trim()
            ),
        ),
        Err(e) => ui::redirect_with(&s, HOME, FlashKind::Error, message_of(&e)),
    }
}

// ---- the MSP account ------------------------------------------------------------------------

async fn set_msp(State(app): State<App>, Posted { session: s, form }: Posted) -> Response {
    if let Err(e) = s.require_admin() {
        return ui::error_page(Some(&s), &e);
    }
    let new = wizard::NewCredentials {
        base_url: form.text("msp_base_url").map(str::to_owned),
        api_key: form.one("msp_api_key").map(|k| Secret::new(k.trim())),
        check: true,
    };
    match wizard::put_credentials(&app, new).await {
        Ok(saved) => {
            tracing::info!(target: "lpbridge::console", actor = s.actor_id(), "MSP API key set");
            ui::redirect_with(
                &s,
                HOME,
                FlashKind::Ok,
                format!(
                    "Saved the MSP account's API key for {}: LastPass accepted it.",
                    saved.base_url
                ),
            )
        }
        Err(e) => {
            // Worded as the wizard's pages word it; an empty key is refused next to its field.
            let p = match &e.0 {
                Error::Msp(MspError::CredentialsRequired(_)) => {
                    let mut p = Problems::default();
                    p.field("msp_api_key", msp::messages::CREDENTIALS_REQUIRED);
                    p
                }
                other => {
                    let rename = |f: &str| match f {
                        "base_url" => Some("msp_base_url".to_owned()),
                        "api_key" => Some("msp_api_key".to_owned()),
                        _ => None,
                    };
                    crate::console::msp::problems_of(other, &rename).1
                }
            };
            refuse(&app, &s, Which::Msp, &form, p).await
        }
    }
}
