//! The console's page shell and building blocks: navigation, flash messages, form parsing,
//! fields with their errors next to them, the error summary, badges, redirects.
//!
//! Conventions every page follows (the CSP forbids the rest): no inline `<script>`, no `style`
//! attributes, no `hx-on`; colours come from classes in `console.css`. Every input has a
//! `<label>`; an invalid one has `aria-invalid` and `aria-describedby` pointing at its error.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lp_types::InvalidValue;
use maud::{DOCTYPE, Markup, html};

use super::auth::{CSRF_FIELD, FLASH_COOKIE, Session};
use super::{PREFIX, assets};
use crate::error::Error;
use crate::msp::MspError;
use crate::store::StoreError;

/// The sections of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Connections,
    Directory,
    Events,
    Webhooks,
    Import,
    None,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Connections, "Connections", "/console/connections"),
    (Nav::Directory, "Directory", "/console/directory"),
    (Nav::Events, "Events", "/console/events"),
    (Nav::Webhooks, "Webhooks", "/console/webhooks"),
    (Nav::Import, "PSA import", "/console/msp"),
];

/// A one-time message shown on the next page (after a redirect), kept in a cookie.
#[derive(Debug, Clone)]
pub struct Flash {
    pub kind: FlashKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashKind {
    Ok,
    Error,
    Info,
}

impl Flash {
    fn encode(&self) -> String {
        let k = match self.kind {
            FlashKind::Ok => "ok",
            FlashKind::Error => "error",
            FlashKind::Info => "info",
        };
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("k", k)
            .append_pair("t", &self.text)
            .finish()
            // Cookie values may not hold `;` or `,` raw; `&` and `=` are fine.
            .replace(';', "%3B")
            .replace(',', "%2C")
    }

    pub fn decode(raw: &str) -> Option<Flash> {
        let mut kind = None;
        let mut text = None;
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            match k.as_ref() {
                "k" => {
                    kind = match v.as_ref() {
                        "ok" => Some(FlashKind::Ok),
                        "error" => Some(FlashKind::Error),
                        _ => Some(FlashKind::Info),
                    }
                }
                "t" => text = Some(v.chars().take(2000).collect()),
                _ => {}
            }
        }
        Some(Flash {
            kind: kind?,
            text: text?,
        })
    }
}

/// A posted form (`application/x-www-form-urlencoded`), with repeated fields (checkboxes).
#[derive(Debug, Default, Clone)]
pub struct FormData {
    pairs: Vec<(String, String)>,
}

impl FormData {
    pub fn parse(body: &[u8]) -> Self {
        FormData {
            pairs: url::form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The first value of a field.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value, trimmed; `None` when missing or blank.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.one(name).map(str::trim).filter(|s| !s.is_empty())
    }

    /// Every value of a field (checkboxes, multi-selects).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A checkbox: present and not `false`/`off`.
    pub fn checked(&self, name: &str) -> bool {
        self.one(name)
            .is_some_and(|v| !matches!(v, "false" | "off" | "0"))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// What went wrong with a form: messages per field, and general ones.
#[derive(Debug, Default, Clone)]
pub struct Problems {
    fields: BTreeMap<String, String>,
    general: Vec<String>,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }

    /// A message next to a field (the first one wins).
    pub fn field(&mut self, name: &str, msg: impl Into<String>) {
        self.fields
            .entry(name.to_owned())
            .or_insert_with(|| msg.into());
    }

    /// A message for the whole form.
    pub fn general(&mut self, msg: impl Into<String>) {
        self.general.push(msg.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// `InvalidValue`s by field; `rename` maps an API field name to the form's (or `None`
    /// to keep it).
    pub fn invalid(&mut self, v: &InvalidValue, rename: &dyn Fn(&str) -> Option<String>) {
        let name = rename(&v.field).unwrap_or_else(|| v.field.to_string());
        self.field(&name, sentence(&v.reason));
    }

    /// The problems an error reports, and the status to answer with. Invalid values go next
    /// to their fields (renamed by `rename`); anything else is a general message, worded as
    /// the JSON API words it (internal details stay in the log).
    pub fn from_error(e: &Error, rename: &dyn Fn(&str) -> Option<String>) -> (StatusCode, Self) {
        let mut p = Problems::default();
        match e {
            Error::Invalid(v) | Error::Store(StoreError::Invalid(v)) => {
                p.invalid(v, rename);
                return (StatusCode::UNPROCESSABLE_ENTITY, p);
            }
            Error::Msp(MspError::Invalid(list)) => {
                for v in list {
                    p.invalid(v, rename);
                }
                return (StatusCode::UNPROCESSABLE_ENTITY, p);
            }
            _ => {}
        }
        let (status, _, message, _, _) = crate::http::error::classify(e);
        if status.is_server_error() {
            tracing::error!(target: "lpbridge::console", error = %e, "console action failed");
        }
        p.general(message);
        (status, p)
    }

    /// Problems of a failed action from an error (fields keep their API names).
    pub fn of(e: &Error) -> (StatusCode, Self) {
        Self::from_error(e, &|_| None)
    }

    pub fn general_messages(&self) -> &[String] {
        &self.general
    }
}

/// `must not be empty` → `Must not be empty.`
pub fn sentence(s: &str) -> String {
    let mut c = s.trim().chars();
    let mut out: String = c
        .next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default();
    if !out.ends_with(['.', '!', '?', ')']) {
        out.push('.');
    }
    out
}

/// The HTML id of a field's input.
pub fn field_id(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("f-{safe}")
}

/// An input with its label, help and error.
pub struct Input<'a> {
    name: &'a str,
    label: &'a str,
    kind: &'a str,
    value: &'a str,
    help: Option<&'a str>,
    placeholder: Option<&'a str>,
    autocomplete: Option<&'a str>,
    required: bool,
}

impl<'a> Input<'a> {
    pub fn new(name: &'a str, label: &'a str) -> Self {
        Input {
            name,
            label,
            kind: "text",
            value: "",
            help: None,
            placeholder: None,
            autocomplete: None,
            required: false,
        }
    }
    pub fn kind(mut self, k: &'a str) -> Self {
        self.kind = k;
        self
    }
    pub fn value(mut self, v: &'a str) -> Self {
        self.value = v;
        self
    }
    pub fn help(mut self, h: &'a str) -> Self {
        self.help = Some(h);
        self
    }
    pub fn placeholder(mut self, h: &'a str) -> Self {
        self.placeholder = Some(h);
        self
    }
    pub fn autocomplete(mut self, a: &'a str) -> Self {
        self.autocomplete = Some(a);
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn render(&self, p: &Problems) -> Markup {
        let id = field_id(self.name);
        let err = p.get(self.name);
        let err_id = format!("{id}-error");
        let help_id = format!("{id}-help");
        let described = match (err.is_some(), self.help.is_some()) {
            (true, true) => Some(format!("{err_id} {help_id}")),
            (true, false) => Some(err_id.clone()),
            (false, true) => Some(help_id.clone()),
            (false, false) => None,
        };
        // A password is never sent back to the browser.
        let value = if self.kind == "password" {
            ""
        } else {
            self.value
        };
        html! {
            div.field {
                label for=(id) class=[self.required.then_some("req")] { (self.label) }
                @if let Some(e) = err { p.field-error id=(err_id) { (e) } }
                input id=(id) name=(self.name) type=(self.kind) value=(value)
                    placeholder=[self.placeholder] autocomplete=[self.autocomplete]
                    required[self.required] aria-invalid=[err.map(|_| "true")]
                    aria-describedby=[described];
                @if let Some(h) = self.help { span.help id=(help_id) { (h) } }
            }
        }
    }
}

/// The error message of a field without an [`Input`] (a checkbox group, a select).
pub fn field_error(p: &Problems, name: &str) -> Markup {
    let id = format!("{}-error", field_id(name));
    html! { @if let Some(e) = p.get(name) { p.field-error id=(id) { (e) } } }
}

/// The box at the top of a form that failed: general messages, and links to each field.
pub fn error_summary(p: &Problems) -> Markup {
    if p.is_empty() {
        return html! {};
    }
    html! {
        div.alert.error role="alert" tabindex="-1" {
            @if p.fields.is_empty() {
                @for g in &p.general { p { (g) } }
            } @else {
                p { strong { "Nothing was changed. " } "Fix the problem" @if p.fields.len() + p.general.len() > 1 { "s" } " below:" }
                ul {
                    @for g in &p.general { li { (g) } }
                    @for (name, msg) in &p.fields {
                        li { a href={ "#" (field_id(name)) } { (msg) } }
                    }
                }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(s.csrf); }
}

/// A coloured badge: `kind` is one of `ok`, `muted`, `info`, `warn`, `danger`.
pub fn badge(kind: &str, text: &str) -> Markup {
    html! { span class={ "badge " (kind) } { (text) } }
}

/// An alert box (`ok`, `error`, `info`, `warn`).
pub fn alert(kind: &str, body: Markup) -> Markup {
    let role = if kind == "error" { "alert" } else { "status" };
    html! { div class={ "alert " (kind) } role=(role) { (body) } }
}

fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · lpbridge" }
            @if let Some(c) = csrf { meta name="csrf-token" content=(c); }
            // 4xx answers carry forms with their errors: htmx swaps them like any answer.
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true,"responseHandling":[{"code":"204","swap":false},{"code":"[2345]..","swap":true}]}"#;
            // No favicon request (it would be a 404 of the JSON API).
            link rel="icon" href="data:,";
            link rel="stylesheet" href=(assets::url("console.css"));
            script src=(assets::url("htmx.js")) defer {}
            script src=(assets::url("console.js")) defer {}
        }
    }
}

/// A whole page with the navigation bar.
pub fn page(s: &Session, nav: Nav, title: &str, body: Markup) -> Response {
    page_with_status(StatusCode::OK, s, nav, title, body)
}

pub fn page_with_status(
    status: StatusCode,
    s: &Session,
    nav: Nav,
    title: &str,
    body: Markup,
) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(&s.csrf)))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(super::HOME) { "lpbridge" }
                    nav aria-label="Main" {
                        ul {
                            @for (n, label, href) in NAV {
                                li { a href=(href) aria-current=[(nav == *n).then_some("page")] { (label) } }
                            }
                        }
                    }
                    div.who {
                        span { "Signed in as " strong { (s.label) } @if s.key.read_only { " (read-only)" } }
                        form.inline method="post" action={ (PREFIX) "/logout" } {
                            (csrf(s))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    @if let Some(f) = &s.flash {
                        @let kind = match f.kind { FlashKind::Ok => "ok", FlashKind::Error => "error", FlashKind::Info => "info" };
                        (alert(kind, html! { p { (f.text) } }))
                    }
                    (body)
                }
            }
        }
    };
    let mut resp = (status, doc).into_response();
    if s.flash.is_some() {
        clear_flash(&mut resp);
    }
    resp
}

/// A page without navigation (login, errors before a session).
pub fn bare_page(status: StatusCode, title: &str, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body { main #main { (body) } }
        }
    };
    (status, doc).into_response()
}

/// An htmx fragment (no shell), with the flash cleared when it was shown in it.
pub fn fragment(status: StatusCode, body: Markup) -> Response {
    (status, body).into_response()
}

fn clear_flash(resp: &mut Response) {
    if let Ok(v) = HeaderValue::from_str(&format!("{FLASH_COOKIE}=; Path=/; Max-Age=0")) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// See other: a 303, or for htmx an `HX-Redirect` (a full page load).
pub fn redirect_to(htmx: bool, to: &str) -> Response {
    if htmx {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(to) {
            resp.headers_mut().insert("hx-redirect", v);
        }
        return resp;
    }
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// A redirect that shows `text` on the next page.
pub fn redirect_with(s: &Session, to: &str, kind: FlashKind, text: impl Into<String>) -> Response {
    let mut resp = redirect_to(s.htmx, to);
    let flash = Flash {
        kind,
        text: text.into(),
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{FLASH_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=60",
        flash.encode()
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// An error as a page (or, for htmx, as an alert fragment).
pub fn error_page(s: Option<&Session>, e: &Error) -> Response {
    let (status, p) = Problems::of(e);
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        s if s.is_server_error() => "Something went wrong",
        _ => "Request refused",
    };
    let body = html! {
        h1 { (title) }
        (error_summary(&p))
        p { a href=(super::HOME) { "Back to the console" } }
    };
    match s {
        Some(s) if s.htmx => fragment(status, error_summary(&p)),
        Some(s) => page_with_status(status, s, Nav::None, title, body),
        None => bare_page(status, title, body),
    }
}

/// The console's 404.
pub async fn not_found(
    axum::extract::State(app): axum::extract::State<crate::http::App>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: axum::http::HeaderMap,
) -> Response {
    if matches!(uri.path(), "/console" | "/console/") {
        return redirect_to(false, super::HOME);
    }
    let s = Session::from_cookie(&app, &headers).await.ok().flatten();
    let e = Error::NotFound(format!("no console page {}", uri.path()));
    error_page(s.as_ref(), &e)
}

/// Text for a time: `2026-11-24 08:15 UTC`.
pub fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A `<time>` element.
pub fn time_el(t: &chrono::DateTime<chrono::Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (time(t)) } }
}
