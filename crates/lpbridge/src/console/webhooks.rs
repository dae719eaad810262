//! The console's Webhooks pages: the subscriptions of the connections the principal may use
//! (what `/webhooks` of the JSON API manages), their delivery state, dead letters and replay.
//!
//! - `GET /console/webhooks`: every subscription with its state, and the form to add one.
//! - `GET /console/webhooks/{id}`: one subscription: delivery state (refreshing itself), its
//!   dead letters, replay (one, or all of them as a background job with progress), changes,
//!   pause/resume and delete.
//!
//! Delivery state comes from the store: the subscription's position in the connection's
//! outbox (events after it are waiting), and its dead letters (the errors, attempts and times
//! of batches the dispatcher gave up on). Retries in progress live only in the dispatcher's
//! memory and its log, so the page shows them as events waiting.
//!
//! The signing secret is write-only, as in the JSON API: the console shows it once, and only
//! when it generated it for an empty field.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use lp_types::{ConnectionId, Secret};
use maud::{Markup, html};

use super::events::{category_label, category_tag, thousands};
use super::ui::{self, FlashKind, FormData, Input, Nav, Problems};
use super::{PREFIX, Posted, Session, jobs};
use crate::error::Error;
use crate::events::Category;
use crate::events::dispatch::{self, SinkResolver};
use crate::http::App;
use crate::store::{
    ConnectionSummary, DeadLetter, DeadLetterQuery, NewWebhook, Store, WebhookPatch, WebhookSummary,
};

/// Events counted as waiting at most (the page says "more than" beyond).
const PENDING_CAP: usize = 10_000;
/// Attempts per dead letter on a replay from the console (as the JSON API's replay: the page
/// answers within about two webhook timeouts per dead letter).
const REPLAY_ATTEMPTS: u32 = 2;
/// How often the delivery state refreshes itself.
const POLL: &str = "every 5s";

pub fn router() -> Router<App> {
    Router::new()
        .route("/webhooks", get(index).post(create))
        .route("/webhooks/{id}", get(detail))
        .route("/webhooks/{id}/state", get(state_fragment))
        .route("/webhooks/{id}/enabled", post(set_enabled))
        .route("/webhooks/{id}/edit", post(edit))
        .route("/webhooks/{id}/delete", post(delete))
        .route("/webhooks/{id}/replay", post(replay))
}

fn detail_url(id: &str) -> String {
    format!(
        "{PREFIX}/webhooks/{}",
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    )
}

/// The subscription `id`, if the principal may use its connection (as the JSON API checks).
async fn visible(app: &App, s: &Session, id: &str) -> Result<WebhookSummary, Error> {
    crate::events::http::webhook_for(app, &s.key, &s.label, id).await
}

async fn usable_connections(app: &App, s: &Session) -> Result<Vec<ConnectionSummary>, Error> {
    app.usable_connections(Some(&s.key)).await
}

fn categories_text(c: &Option<Vec<Category>>) -> Markup {
    match c {
        None => html! { "All categories" },
        Some(list) if list.is_empty() => html! { "None" },
        Some(list) => html! {
            @for (i, c) in list.iter().enumerate() {
                @if i > 0 { ", " }
                (category_tag(*c))
            }
        },
    }
}

// ---- delivery state --------------------------------------------------------------------------

/// What the store knows about a subscription's deliveries.
struct Delivery {
    /// Matching events collected after the subscription's position.
    pending: usize,
    pending_capped: bool,
    /// The oldest of them.
    oldest_pending: Option<DateTime<Utc>>,
    /// The time of the last event handed on (delivered, filtered out or dead-lettered).
    position_time: Option<DateTime<Utc>>,
    /// When the position last moved.
    moved_at: Option<DateTime<Utc>>,
    /// Dead letters not replayed yet.
    waiting: Vec<DeadLetter>,
    /// The most recent failure (replayed or not).
    last_failure: Option<DeadLetter>,
}

async fn delivery(store: &Store, w: &WebhookSummary) -> Result<Delivery, Error> {
    let conn = ConnectionId::new(w.connection_id.clone())?;
    let pos = store
        .sink_position(&conn, &w.sink_name())
        .await?
        .unwrap_or(0);
    let moved_at = store.sink_moved_at(&conn, &w.sink_name()).await?;
    let after = store.events_after(&conn, pos, PENDING_CAP + 1).await?;
    let pending_capped = after.len() > PENDING_CAP;
    let wanted: Vec<_> = after
        .iter()
        .take(PENDING_CAP)
        .filter(|e| {
            w.categories
                .as_ref()
                .is_none_or(|c| c.contains(&e.record.category))
        })
        .collect();
    let oldest_pending = wanted.iter().map(|e| e.record.time_utc).min();
    let position_time = if pos > 0 {
        store
            .events_after(&conn, pos - 1, 1)
            .await?
            .first()
            .filter(|e| e.seq == pos)
            .map(|e| e.record.time_utc)
    } else {
        None
    };
    let all = store
        .list_dead_letters(&DeadLetterQuery {
            webhook_id: Some(w.id.clone()),
            include_replayed: true,
            ..DeadLetterQuery::default()
        })
        .await?;
    let last_failure = all.iter().max_by_key(|d| d.id).cloned();
    let waiting = all
        .into_iter()
        .filter(|d| d.replayed_at.is_none())
        .collect();
    Ok(Delivery {
        pending: wanted.len(),
        pending_capped,
        oldest_pending,
        position_time,
        moved_at,
        waiting,
        last_failure,
    })
}

fn seconds(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn time_s(t: &DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (seconds(t)) } }
}

/// The state badge of a subscription: paused, up to date, or behind.
fn state_badge(w: &WebhookSummary, d: &Delivery) -> Markup {
    let pending = if d.pending_capped {
        format!("more than {} waiting", thousands(PENDING_CAP))
    } else {
        format!("{} waiting", thousands(d.pending))
    };
    html! {
        @if !w.enabled {
            (ui::badge("muted", "Paused"))
            @if d.pending > 0 { " " span.nowrap { (pending) } }
        } @else if d.pending == 0 {
            (ui::badge("ok", "Up to date"))
        } @else {
            (ui::badge("info", "Delivering")) " " span.nowrap { (pending) }
        }
    }
}

fn dead_badge(w: &WebhookSummary, d: &Delivery) -> Markup {
    let n = d.waiting.len();
    html! {
        @if n == 0 { span.muted { "None" } }
        @else {
            a href={ (detail_url(&w.id)) "#dead-letters-h" } {
                (ui::badge("danger", &format!("{n} dead letter{}", if n == 1 { "" } else { "s" })))
            }
        }
    }
}

/// The delivery state of one subscription (refreshes itself every few seconds).
fn state_panel(w: &WebhookSummary, d: &Delivery) -> Markup {
    let url = format!("{}/state", detail_url(&w.id));
    let now = Utc::now();
    html! {
        div #delivery-state hx-get=(url) hx-trigger=(POLL) hx-swap="outerHTML" {
            dl.props {
                dt { "State" }
                dd #delivery-badge { (state_badge(w, d)) }
                dt { "Position" }
                dd {
                    @match &d.position_time {
                        Some(t) => { "after the event of " (time_s(t)) }
                        None => span.muted { "nothing yet (it receives events collected after it was created)" },
                    }
                }
                dt { "Last progress" }
                dd #delivery-moved {
                    @match &d.moved_at {
                        Some(t) => { (time_s(t)) }
                        None => span.muted { "never" },
                    }
                }
                dt { "Waiting" }
                dd #delivery-pending {
                    @if d.pending == 0 { "No events waiting." }
                    @else {
                        @if d.pending_capped { "More than " (thousands(PENDING_CAP)) } @else { (thousands(d.pending)) }
                        " event" @if d.pending != 1 { "s" } " waiting"
                        @if let Some(t) = &d.oldest_pending { ", the oldest from " (time_s(t)) }
                        "."
                        @if !w.enabled { " Resume the webhook to deliver them." }
                    }
                }
                dt { "Dead letters" }
                dd #delivery-dead {
                    @if d.waiting.is_empty() { "None waiting." }
                    @else {
                        @let events: i64 = d.waiting.iter().map(|x| x.event_count).sum();
                        (d.waiting.len()) " waiting for replay (" (events) " event" @if events != 1 { "s" } ")."
                    }
                }
                dt { "Last failure" }
                dd #delivery-error {
                    @match &d.last_failure {
                        Some(f) => {
                            (time_s(&f.created_at)) ", after " (f.attempts) " attempt" @if f.attempts != 1 { "s" } ": "
                            code.error-text { (f.error) }
                            @if f.replayed_at.is_some() { " " (ui::badge("ok", "replayed since")) }
                        }
                        None => span.muted { "none" },
                    }
                }
            }
            p.muted.updated { "Updated " (now.format("%H:%M:%S")) " UTC · refreshes every 5 seconds. Events up to the position were delivered, left out by the category filter, or kept as dead letters; a failing delivery is retried (up to 8 attempts) before it becomes a dead letter." }
        }
    }
}

// ---- the list ---------------------------------------------------------------------------------

/// The create form's values, as typed (never the secret).
#[derive(Default)]
struct CreateForm {
    conn: String,
    url: String,
    categories: Vec<String>,
    paused: bool,
}

/// `GET /console/webhooks`.
async fn index(State(app): State<App>, s: Session) -> Response {
    list_page(
        &app,
        &s,
        StatusCode::OK,
        &CreateForm::default(),
        &Problems::default(),
    )
    .await
}

async fn list_page(
    app: &App,
    s: &Session,
    status: StatusCode,
    form: &CreateForm,
    p: &Problems,
) -> Response {
    let result = async {
        let conns = usable_connections(app, s).await?;
        let mut hooks = app.store.list_webhooks(None).await?;
        hooks.retain(|w| {
            ConnectionId::new(w.connection_id.clone()).is_ok_and(|id| s.key.may_use(&id))
        });
        let mut rows = Vec::new();
        for w in hooks {
            let d = delivery(&app.store, &w).await?;
            rows.push((w, d));
        }
        Ok::<_, Error>((conns, rows))
    }
    .await;
    let (conns, rows) = match result {
        Ok(x) => x,
        Err(e) => return ui::error_page(Some(s), &e),
    };
    let several = conns.len() > 1;
    let body = html! {
        h1 { "Webhooks" }
        p.lead { "Each webhook receives a connection's collected events as signed HTTP POSTs (" code { "{\"events\":[…]}" } ", header " code { "X-Lpbridge-Signature" } "), from the moment it is created." }
        (ui::error_summary(p))
        section aria-labelledby="subs-h" {
            h2 #subs-h { "Subscriptions" }
            @if rows.is_empty() {
                p #no-webhooks { "No webhooks yet." }
            } @else {
                div.table-wrap {
                    table.responsive #webhooks {
                        thead { tr {
                            th scope="col" { "URL" }
                            @if several { th scope="col" { "Connection" } }
                            th scope="col" { "Categories" }
                            th scope="col" { "Delivery" }
                            th scope="col" { "Last failure" }
                            th scope="col" { "Dead letters" }
                            @if !s.key.read_only { th scope="col" { "Action" } }
                        } }
                        tbody {
                            @for (w, d) in &rows {
                                tr {
                                    td data-label="URL" .url { a href=(detail_url(&w.id)) { (w.url) } }
                                    @if several { td data-label="Connection" { (w.connection_id) } }
                                    td data-label="Categories" { (categories_text(&w.categories)) }
                                    td data-label="Delivery" { (state_badge(w, d)) }
                                    td data-label="Last failure" {
                                        @match &d.last_failure {
                                            Some(f) => { time datetime=(f.created_at.to_rfc3339()) { (ui::time(&f.created_at)) } br; span.error-text { (lp_types::shown(&f.error)) } }
                                            None => span.muted { "none" },
                                        }
                                    }
                                    td data-label="Dead letters" { (dead_badge(w, d)) }
                                    @if !s.key.read_only {
                                        td data-label="Action" { (enable_button(s, w, &format!("{PREFIX}/webhooks"))) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if s.key.read_only {
            p.muted { "You are signed in read-only: you can look, not change." }
        } @else if conns.is_empty() {
            (ui::alert("info", html! { p { "Add a connection first: a webhook delivers one connection's events. "
                a href={ (PREFIX) "/connections" } { "Connections" } } }))
        } @else {
            (create_form(s, &conns, form, p))
        }
    };
    ui::page_with_status(status, s, Nav::Webhooks, "Webhooks", body)
}

/// Pause or Resume; `back` is the page to return to.
fn enable_button(s: &Session, w: &WebhookSummary, back: &str) -> Markup {
    html! {
        form.inline method="post" action={ (detail_url(&w.id)) "/enabled" } {
            (ui::csrf(s))
            input type="hidden" name="back" value=(back);
            @if w.enabled {
                input type="hidden" name="enabled" value="false";
                button.secondary type="submit" aria-label={ "Pause " (w.url) } { "Pause" }
            } @else {
                input type="hidden" name="enabled" value="true";
                button type="submit" aria-label={ "Resume " (w.url) } { "Resume" }
            }
        }
    }
}

fn category_checks(name: &str, chosen: &[String], p: &Problems, legend: &str) -> Markup {
    let help_id = format!("{}-help", ui::field_id(name));
    html! {
        fieldset aria-describedby=(help_id) {
            legend { (legend) }
            (ui::field_error(p, name))
            div.checks {
                @for c in Category::ALL {
                    @let id = format!("{}-{}", ui::field_id(name), c.as_str());
                    label for=(id) {
                        input type="checkbox" id=(id) name=(name) value=(c.as_str())
                            checked[chosen.iter().any(|x| x == c.as_str())];
                        " " (category_label(c))
                    }
                }
            }
            span.help id=(help_id) { "None ticked: every category." }
        }
    }
}

fn create_form(s: &Session, conns: &[ConnectionSummary], f: &CreateForm, p: &Problems) -> Markup {
    let conn_id = ui::field_id("conn");
    html! {
        section.panel aria-labelledby="new-h" {
            h2 #new-h { "Add a webhook" }
            form.stack #new-webhook method="post" action={ (PREFIX) "/webhooks" } novalidate {
                (ui::csrf(s))
                @if conns.len() > 1 {
                    div.field {
                        label for=(conn_id) { "Connection" }
                        (ui::field_error(p, "conn"))
                        select id=(conn_id) name="conn" aria-invalid=[p.get("conn").map(|_| "true")] {
                            @for c in conns {
                                option value=(c.id.as_str()) selected[c.id.as_str() == f.conn] { (c.id.as_str()) }
                            }
                        }
                    }
                } @else if let Some(c) = conns.first() {
                    input type="hidden" name="conn" value=(c.id.as_str());
                    (ui::field_error(p, "conn"))
                    p.muted { "Events of connection " strong { (c.id.as_str()) } "." }
                }
                (Input::new("url", "Receiver URL").kind("url").value(&f.url).required()
                    .placeholder("https://siem.example.com/lastpass")
                    .help("http or https. Redirects are not followed.").render(p))
                (Input::new("secret", "Signing secret").kind("password").autocomplete("new-password")
                    .help("The receiver checks X-Lpbridge-Signature with it. Leave empty and lpbridge makes one, shown once.").render(p))
                (category_checks("categories", &f.categories, p, "Categories"))
                div.field {
                    label for="f-paused" {
                        input type="checkbox" id="f-paused" name="paused" value="true" checked[f.paused];
                        " Create it paused (deliver nothing until resumed)"
                    }
                }
                div.actions { button type="submit" { "Add webhook" } }
            }
        }
    }
}

/// API field names → the form's.
fn rename(field: &str) -> Option<String> {
    match field {
        "webhook url" | "url" => Some("url".into()),
        "webhook secret" | "secret" => Some("secret".into()),
        "connection_id" | "connection id" | "id" => Some("conn".into()),
        "categories" | "category" => Some("categories".into()),
        _ => None,
    }
}

fn parse_categories(form: &FormData, p: &mut Problems) -> Option<Vec<Category>> {
    let mut out = Vec::new();
    for v in form.all("categories") {
        match v.parse::<Category>() {
            Ok(c) if !out.contains(&c) => out.push(c),
            Ok(_) => {}
            Err(_) => p.field("categories", "Choose categories from the list."),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `POST /console/webhooks`.
async fn create(State(app): State<App>, posted: Posted) -> Response {
    let Posted { session: s, form } = posted;
    if let Err(e) = s.require_write() {
        return ui::error_page(Some(&s), &e);
    }
    let typed = CreateForm {
        conn: form.text("conn").unwrap_or_default().to_owned(),
        url: form.text("url").unwrap_or_default().to_owned(),
        categories: form
            .all("categories")
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        paused: form.checked("paused"),
    };
    let mut p = Problems::default();
    if typed.url.is_empty() {
        p.field("url", "Enter the URL that receives the events.");
    }
    let categories = parse_categories(&form, &mut p);
    let conn = match ConnectionId::new(typed.conn.clone()) {
        // An existing connection only (as the JSON API): a webhook made for a name that is
        // added later would receive that account's whole audit log.
        Ok(c) if s.key.may_use(&c) => match app.store.get_connection(&c).await {
            Ok(Some(_)) => Some(c),
            Ok(None) => {
                p.field("conn", "Choose a connection you may use.");
                None
            }
            Err(e) => return ui::error_page(Some(&s), &e.into()),
        },
        _ => {
            p.field("conn", "Choose a connection you may use.");
            None
        }
    };
    let (Some(conn), true) = (conn, p.is_empty()) else {
        return list_page(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, &typed, &p).await;
    };
    let typed_secret = form.one("secret").unwrap_or_default();
    let generated = typed_secret.trim().is_empty();
    let secret = if generated {
        Secret::new(format!("whsec_{}", crate::msp::random_hex(24)))
    } else {
        Secret::new(typed_secret)
    };
    let created = app
        .store
        .create_webhook(NewWebhook {
            connection_id: conn,
            url: typed.url.clone(),
            secret: secret.clone(),
            categories,
            enabled: !typed.paused,
        })
        .await;
    match created {
        Ok(w) if generated => {
            tracing::info!(target: "lpbridge::console", webhook = %w.id, by = %s.actor_label(), "webhook created");
            // Not a redirect: the generated secret is shown on this answer only (no-store).
            let body = html! {
                h1 { "Webhook created" }
                (ui::alert("ok", html! {
                    p { "The webhook to " strong { (w.url) } " was created. "
                        @if w.enabled { "It receives the events collected from now on." } @else { "It is paused." } }
                }))
                section.panel aria-labelledby="secret-h" {
                    h2 #secret-h { "Its signing secret" }
                    p { "Give it to the receiver now: lpbridge keeps it sealed and " strong { "never shows it again" } "." }
                    p { code #new-secret .secret { (secret.expose()) } }
                    p.muted { "The receiver recomputes HMAC-SHA256 over \"<X-Lpbridge-Timestamp>.<body>\" with it and compares it with X-Lpbridge-Signature." }
                }
                p { a.button href=(detail_url(&w.id)) { "Go to the webhook" } " " a.button.secondary href={ (PREFIX) "/webhooks" } { "All webhooks" } }
            };
            ui::page_with_status(
                StatusCode::CREATED,
                &s,
                Nav::Webhooks,
                "Webhook created",
                body,
            )
        }
        Ok(w) => {
            tracing::info!(target: "lpbridge::console", webhook = %w.id, by = %s.actor_label(), "webhook created");
            ui::redirect_with(
                &s,
                &detail_url(&w.id),
                FlashKind::Ok,
                format!("Webhook to {} created with your secret.", w.url),
            )
        }
        Err(e) => {
            let (status, p) = Problems::from_error(&Error::from(e), &rename);
            list_page(&app, &s, status, &typed, &p).await
        }
    }
}

// ---- one subscription -------------------------------------------------------------------------

/// `GET /console/webhooks/{id}` (`?replayed=1` lists replayed dead letters too).
async fn detail(
    State(app): State<App>,
    s: Session,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let with_replayed = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .any(|(k, v)| k == "replayed" && v != "0");
    detail_page(
        &app,
        &s,
        &id,
        with_replayed,
        StatusCode::OK,
        None,
        &Problems::default(),
    )
    .await
}

/// The edit form's values, as typed.
struct EditForm {
    url: String,
    categories: Vec<String>,
}

async fn detail_page(
    app: &App,
    s: &Session,
    id: &str,
    with_replayed: bool,
    status: StatusCode,
    edit: Option<&EditForm>,
    p: &Problems,
) -> Response {
    let result = async {
        let w = visible(app, s, id).await?;
        let d = delivery(&app.store, &w).await?;
        let letters = if with_replayed {
            app.store
                .list_dead_letters(&DeadLetterQuery {
                    webhook_id: Some(w.id.clone()),
                    include_replayed: true,
                    ..DeadLetterQuery::default()
                })
                .await?
        } else {
            d.waiting.clone()
        };
        Ok::<_, Error>((w, d, letters))
    }
    .await;
    let (w, d, mut letters) = match result {
        Ok(x) => x,
        Err(e) => return ui::error_page(Some(s), &e),
    };
    // Newest first.
    letters.reverse();
    let base = detail_url(&w.id);
    let edit_values = match edit {
        Some(e) => EditForm {
            url: e.url.clone(),
            categories: e.categories.clone(),
        },
        None => EditForm {
            url: w.url.clone(),
            categories: w
                .categories
                .iter()
                .flatten()
                .map(|c| c.as_str().to_owned())
                .collect(),
        },
    };
    let writer = !s.key.read_only;
    let body = html! {
        p { a href={ (PREFIX) "/webhooks" } { "← All webhooks" } }
        h1 { "Webhook " span.url { (w.url) } }
        (ui::error_summary(p))
        dl.props #webhook-props {
            dt { "URL" } dd.url { (w.url) }
            dt { "Connection" } dd { (w.connection_id) }
            dt { "Categories" } dd { (categories_text(&w.categories)) }
            dt { "Enabled" } dd {
                @if w.enabled { (ui::badge("ok", "Enabled")) } @else { (ui::badge("muted", "Paused")) }
            }
            dt { "Created" } dd { (time_s(&w.created_at)) }
            dt { "Changed" } dd { (time_s(&w.updated_at)) }
            dt { "Id" } dd { code { (w.id) } }
        }
        @if writer {
            div.actions {
                (enable_button(s, &w, &base))
                form.inline method="post" action={ (base) "/delete" } {
                    (ui::csrf(s))
                    button.danger type="submit"
                        data-confirm={ "Delete the webhook to " (w.url) " with its " (d.waiting.len()) " dead letters? This cannot be undone." } {
                        "Delete webhook"
                    }
                }
            }
        }
        section aria-labelledby="delivery-h" {
            h2 #delivery-h { "Delivery" }
            (state_panel(&w, &d))
        }
        section aria-labelledby="dead-letters-h" {
            h2 #dead-letters-h { "Dead letters" }
            p.muted { "A batch the receiver refused after every retry is kept here, so delivery goes on with the next events. Replaying sends it again (two attempts each) with the current URL and secret." }
            @if writer && !d.waiting.is_empty() {
                form.actions method="post" action={ (base) "/replay" } {
                    (ui::csrf(s))
                    button type="submit" {
                        @if d.waiting.len() == 1 { "Replay 1 dead letter" }
                        @else { "Replay all " (d.waiting.len()) " dead letters" }
                    }
                }
            }
            @if letters.is_empty() {
                p #no-dead-letters { @if with_replayed { "No dead letters." } @else { "No dead letters waiting." } }
            } @else {
                div.table-wrap {
                    table.responsive #dead-letters aria-labelledby="dead-letters-h" {
                        thead { tr {
                            th scope="col" { "Dead letter" }
                            th scope="col" { "Failed at" }
                            th scope="col" .num { "Events" }
                            th scope="col" .num { "Attempts" }
                            th scope="col" { "Last error" }
                            th scope="col" { "Replayed" }
                            @if writer { th scope="col" { "Action" } }
                        } }
                        tbody {
                            @for l in &letters {
                                tr {
                                    td data-label="Dead letter" { "#" (l.id) }
                                    td data-label="Failed at" .nowrap { (time_s(&l.created_at)) }
                                    td data-label="Events" .num { (l.event_count) }
                                    td data-label="Attempts" .num { (l.attempts) }
                                    td data-label="Last error" { code.error-text { (l.error) } }
                                    td data-label="Replayed" {
                                        @match &l.replayed_at {
                                            Some(t) => { (ui::badge("ok", "Replayed")) " " (time_s(t)) }
                                            None => (ui::badge("warn", "Waiting")),
                                        }
                                    }
                                    @if writer {
                                        td data-label="Action" {
                                            @if l.replayed_at.is_none() {
                                                form.inline method="post" action={ (base) "/replay" } {
                                                    (ui::csrf(s))
                                                    input type="hidden" name="dead_letter" value=(l.id);
                                                    button.secondary type="submit" aria-label={ "Replay dead letter " (l.id) } { "Replay" }
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
            p {
                @if with_replayed { a href=(base) { "Show only the ones waiting" } }
                @else { a href={ (base) "?replayed=1" } { "Show replayed dead letters too" } }
            }
        }
        @if writer {
            section.panel aria-labelledby="edit-h" {
                h2 #edit-h { "Change the webhook" }
                form.stack method="post" action={ (base) "/edit" } novalidate {
                    (ui::csrf(s))
                    (Input::new("url", "Receiver URL").kind("url").value(&edit_values.url).required().render(p))
                    (Input::new("secret", "New signing secret").kind("password").autocomplete("new-password")
                        .help("Leave empty to keep the current one.").render(p))
                    (category_checks("categories", &edit_values.categories, p, "Categories"))
                    div.actions { button type="submit" { "Save changes" } }
                }
            }
        }
    };
    ui::page_with_status(status, s, Nav::Webhooks, "Webhook", body)
}

/// `GET /console/webhooks/{id}/state`: the delivery state (htmx polls it).
async fn state_fragment(State(app): State<App>, s: Session, Path(id): Path<String>) -> Response {
    let result = async {
        let w = visible(&app, &s, &id).await?;
        let d = delivery(&app.store, &w).await?;
        Ok::<_, Error>(state_panel(&w, &d))
    }
    .await;
    match result {
        Ok(m) => ui::fragment(StatusCode::OK, m),
        // A deleted webhook or a lost permission: say so and stop polling.
        Err(e) => ui::error_page(Some(&s), &e),
    }
}

/// `POST /console/webhooks/{id}/enabled`: pause or resume.
async fn set_enabled(State(app): State<App>, Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { session: s, form } = posted;
    let result = async {
        s.require_write()?;
        let w = visible(&app, &s, &id).await?;
        let on = form.one("enabled") == Some("true");
        let patch = WebhookPatch {
            enabled: Some(on),
            ..WebhookPatch::default()
        };
        let w2 = app.store.update_webhook(&w.id, patch).await?;
        Ok::<_, Error>(w2)
    }
    .await;
    match result {
        Ok(w) => {
            let text = if w.enabled {
                format!(
                    "Webhook to {} resumed: waiting events are delivered within a few seconds.",
                    w.url
                )
            } else {
                format!(
                    "Webhook to {} paused: events wait for it until it is resumed.",
                    w.url
                )
            };
            let back = form
                .text("back")
                .filter(|b| b.starts_with(&format!("{PREFIX}/webhooks")))
                .map(str::to_owned)
                .unwrap_or_else(|| detail_url(&w.id));
            ui::redirect_with(&s, &back, FlashKind::Ok, text)
        }
        Err(e) => ui::error_page(Some(&s), &e),
    }
}

/// `POST /console/webhooks/{id}/edit`: URL, categories, a new secret.
async fn edit(State(app): State<App>, Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { session: s, form } = posted;
    if let Err(e) = s.require_write() {
        return ui::error_page(Some(&s), &e);
    }
    let w = match visible(&app, &s, &id).await {
        Ok(w) => w,
        Err(e) => return ui::error_page(Some(&s), &e),
    };
    let typed = EditForm {
        url: form.text("url").unwrap_or_default().to_owned(),
        categories: form
            .all("categories")
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
    };
    let mut p = Problems::default();
    if typed.url.is_empty() {
        p.field("url", "Enter the URL that receives the events.");
    }
    let categories = parse_categories(&form, &mut p);
    if !p.is_empty() {
        return detail_page(
            &app,
            &s,
            &w.id,
            false,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&typed),
            &p,
        )
        .await;
    }
    let secret = form
        .one("secret")
        .filter(|v| !v.trim().is_empty())
        .map(Secret::new);
    let patch = WebhookPatch {
        url: (typed.url != w.url).then(|| typed.url.clone()),
        secret,
        categories: (categories != w.categories).then_some(categories),
        enabled: None,
    };
    if patch.is_empty() {
        return ui::redirect_with(
            &s,
            &detail_url(&w.id),
            FlashKind::Info,
            "Nothing to change.",
        );
    }
    let rotated = patch.secret.is_some();
    match app.store.update_webhook(&w.id, patch).await {
        Ok(w2) => ui::redirect_with(
            &s,
            &detail_url(&w2.id),
            FlashKind::Ok,
            format!(
                "Webhook saved{}. Deliveries use the new settings within a few seconds.",
                if rotated { " with its new secret" } else { "" }
            ),
        ),
        Err(e) => {
            let (status, p) = Problems::from_error(&Error::from(e), &rename);
            detail_page(&app, &s, &w.id, false, status, Some(&typed), &p).await
        }
    }
}

/// `POST /console/webhooks/{id}/delete`.
async fn delete(State(app): State<App>, Path(id): Path<String>, posted: Posted) -> Response {
    let s = posted.session;
    let result = async {
        s.require_write()?;
        let w = visible(&app, &s, &id).await?;
        app.store.delete_webhook(&w.id).await?;
        Ok::<_, Error>(w)
    }
    .await;
    match result {
        Ok(w) => {
            tracing::info!(target: "lpbridge::console", webhook = %w.id, by = %s.actor_label(), "webhook deleted");
            ui::redirect_with(
                &s,
                &format!("{PREFIX}/webhooks"),
                FlashKind::Ok,
                format!("Webhook to {} deleted, with its dead letters.", w.url),
            )
        }
        Err(e) => ui::error_page(Some(&s), &e),
    }
}

/// `POST /console/webhooks/{id}/replay`: one dead letter (`dead_letter`) at once, or every
/// waiting one as a background job whose page shows the progress and the outcome of each.
async fn replay(State(app): State<App>, Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { session: s, form } = posted;
    if let Err(e) = s.require_write() {
        return ui::error_page(Some(&s), &e);
    }
    let w = match visible(&app, &s, &id).await {
        Ok(w) => w,
        Err(e) => return ui::error_page(Some(&s), &e),
    };
    let back = detail_url(&w.id);
    let resolver = || {
        SinkResolver::new(app.store.clone(), Vec::new()).with_subscription_attempts(REPLAY_ATTEMPTS)
    };
    if let Some(raw) = form.text("dead_letter") {
        let Ok(n) = raw.parse::<i64>() else {
            return ui::redirect_with(
                &s,
                &back,
                FlashKind::Error,
                "That is not a dead letter of this webhook; nothing was replayed.",
            );
        };
        let query = DeadLetterQuery {
            webhook_id: Some(w.id.clone()),
            id: Some(n),
            ..DeadLetterQuery::default()
        };
        return match dispatch::replay(&app.store, &query, &mut resolver()).await {
            Ok(out) => match out.first() {
                None => ui::redirect_with(
                    &s,
                    &back,
                    FlashKind::Info,
                    format!(
                        "Dead letter #{n} is not waiting any more (already replayed or deleted); nothing was sent."
                    ),
                ),
                Some(r) => match &r.error {
                    None => ui::redirect_with(
                        &s,
                        &back,
                        FlashKind::Ok,
                        format!("Dead letter #{n} delivered ({} events).", r.events),
                    ),
                    Some(err) => ui::redirect_with(
                        &s,
                        &back,
                        FlashKind::Error,
                        format!("Dead letter #{n} failed again and stays waiting: {err}"),
                    ),
                },
            },
            Err(e) => ui::error_page(Some(&s), &e.into()),
        };
    }
    let waiting = match app
        .store
        .list_dead_letters(&DeadLetterQuery {
            webhook_id: Some(w.id.clone()),
            ..DeadLetterQuery::default()
        })
        .await
    {
        Ok(l) => l,
        Err(e) => return ui::error_page(Some(&s), &e.into()),
    };
    if waiting.is_empty() {
        return ui::redirect_with(
            &s,
            &back,
            FlashKind::Info,
            "No dead letters are waiting; nothing was sent.",
        );
    }
    let events: i64 = waiting.iter().map(|d| d.event_count).sum();
    let job = jobs::start(
        &s,
        format!(
            "Replay {} dead letter{} ({events} events) to {}",
            waiting.len(),
            if waiting.len() == 1 { "" } else { "s" },
            w.url
        ),
        waiting.len(),
        &back,
    );
    tracing::info!(target: "lpbridge::console", webhook = %w.id, dead_letters = waiting.len(), by = %s.actor_label(), "replay started");
    let worker = Arc::clone(&job);
    let store = app.store.clone();
    let mut res = resolver();
    let hook = w.id.clone();
    tokio::spawn(async move {
        for d in waiting {
            let label = format!("Dead letter #{} ({} events)", d.id, d.event_count);
            let query = DeadLetterQuery {
                webhook_id: Some(hook.clone()),
                id: Some(d.id),
                ..DeadLetterQuery::default()
            };
            match dispatch::replay(&store, &query, &mut res).await {
                Ok(out) => match out.first().and_then(|r| r.error.clone()) {
                    None => worker.ok(),
                    Some(err) => {
                        worker.failed(&label, format!("failed again and stays waiting: {err}"))
                    }
                },
                // Worded as the JSON API words it: internal details stay in the log.
                Err(e) => worker.failed(
                    &label,
                    Problems::of(&e.into()).1.general_messages().join(" "),
                ),
            }
        }
        worker.finish();
    });
    ui::redirect_to(s.htmx, &job.url())
}
