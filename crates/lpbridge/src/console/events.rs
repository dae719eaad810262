//! The console's Events page (`/console/events`): the audit log the watchers collected into
//! the store (what `GET /events` lists), filtered by connection, user, category, action and
//! time in a bookmarkable GET form, newest first with an "Older" cursor; a stacked bar chart
//! of events over time by category (inline SVG with a legend and the numbers as a table); and
//! each connection's watcher with pause/resume (what `PATCH /events/watcher` does).
//!
//! The first page refreshes itself (htmx polls [`live`] every few seconds with the same
//! filters); older pages stay still so paging and reading are not disturbed. Only a short
//! status line is an `aria-live` region ("3 new events"), updated out of band, so a screen
//! reader is not read the whole table every five seconds.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Datelike as _, Duration, DurationRound, TimeZone, Utc};
use lp_types::ConnectionId;
use maud::{Markup, html};

use super::ui::{self, FlashKind, Input, Nav, Problems};
use super::{PREFIX, Posted, Session};
use crate::error::Error;
use crate::events::{Category, Edge, parse_bound};
use crate::http::App;
use crate::store::{ConnectionSummary, EventListQuery, StoredEvent};

/// Rows per page of the table.
const PAGE_SIZE: usize = 50;
/// How often the first page refreshes itself.
const POLL: &str = "every 5s";
/// The chart's range when the filters give none.
const DEFAULT_CHART_SPAN_HOURS: i64 = 24;

pub fn router() -> Router<App> {
    Router::new()
        .route("/events", get(index))
        .route("/events/live", get(live))
        .route("/events/watcher", post(set_watcher))
}

/// A category as people read it.
pub fn category_label(c: Category) -> &'static str {
    match c {
        Category::Authentication => "Authentication",
        Category::UserLifecycle => "User lifecycle",
        Category::Admin => "Admin",
        Category::Groups => "Groups",
        Category::SharedFolders => "Shared folders",
        Category::VaultItems => "Vault items",
        Category::Policy => "Policy",
        Category::Api => "API",
        Category::Other => "Other",
    }
}

/// The colour class (`c0`…) of a category: its place in [`Category::ALL`].
pub fn category_class(c: Category) -> String {
    let i = Category::ALL.iter().position(|x| *x == c).unwrap_or(0);
    format!("c{i}")
}

/// A category with its colour swatch (the text carries the meaning, the colour matches the
/// chart).
pub fn category_tag(c: Category) -> Markup {
    html! {
        span.cat.nowrap {
            span class={ "swatch " (category_class(c)) } aria-hidden="true" {}
            (category_label(c))
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A time to the second: `2026-11-24 08:48:13`.
fn seconds(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

// ---- filters -----------------------------------------------------------------------------

/// The quick time ranges of the Period select: (value, label, length).
const PERIODS: &[(&str, &str, i64)] = &[
    ("1h", "Last hour", 3600),
    ("24h", "Last 24 hours", 86_400),
    ("7d", "Last 7 days", 7 * 86_400),
    ("30d", "Last 30 days", 30 * 86_400),
];

/// The filters as typed (kept to fill the form again and to build links).
#[derive(Debug, Clone, Default)]
struct Filters {
    conn: String,
    user: String,
    category: String,
    action: String,
    period: String,
    from: String,
    to: String,
    /// The "Older" cursor: `<time µs>_<seq>` of the last row of the previous page.
    before: String,
    /// The newest `seq` the browser has shown (rows above it are marked new).
    seen: Option<i64>,
}

impl Filters {
    fn parse(q: Option<&str>) -> Self {
        let mut f = Filters::default();
        for (k, v) in url::form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            let v = v.trim().to_owned();
            match k.as_ref() {
                "conn" => f.conn = v,
                "user" => f.user = v,
                "category" => f.category = v,
                "action" => f.action = v,
                "period" => f.period = v,
                "from" => f.from = v,
                "to" => f.to = v,
                "before" => f.before = v,
                "seen" => f.seen = v.parse().ok(),
                // Anything else (an old bookmark, a tracking parameter) is ignored.
                _ => {}
            }
        }
        f
    }

    /// The query string of these filters (without paging), `extra` appended.
    fn query(&self, extra: &[(&str, &str)]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("conn", &self.conn),
            ("user", &self.user),
            ("category", &self.category),
            ("action", &self.action),
            ("period", &self.period),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        s.finish()
    }

    fn url(&self, path: &str, extra: &[(&str, &str)]) -> String {
        let q = self.query(extra);
        if q.is_empty() {
            format!("{PREFIX}{path}")
        } else {
            format!("{PREFIX}{path}?{q}")
        }
    }

    /// The store query of these filters; what is wrong goes into `p` (next to its field).
    fn to_query(&self, now: DateTime<Utc>, p: &mut Problems) -> EventListQuery {
        let mut q = EventListQuery {
            user: Some(self.user.clone()).filter(|s| !s.is_empty()),
            action: Some(self.action.clone()).filter(|s| !s.is_empty()),
            ..EventListQuery::default()
        };
        if !self.category.is_empty() {
            match self.category.parse::<Category>() {
                Ok(c) => q.category = Some(c),
                Err(_) => p.field("category", "Choose one of the listed categories."),
            }
        }
        let bound = |field: &'static str, v: &str, edge: Edge, p: &mut Problems| {
            if v.is_empty() {
                return None;
            }
            // A browser's `datetime-local` writes `2026-11-24T08:00`.
            let v = if v.len() == 16 && v.as_bytes().get(10) == Some(&b'T') {
                v.replacen('T', " ", 1)
            } else {
                v.to_owned()
            };
            match parse_bound(field, &v, chrono_tz::UTC, edge) {
                // LastPass has no events before 1970 or after 9999; far-off bounds would only
                // make the chart's range huge.
                Ok(t) if !(1970..=9999).contains(&t.year()) => {
                    p.field(field, "Enter a time between the years 1970 and 9999.");
                    None
                }
                Ok(t) => Some(t),
                Err(_) => {
                    p.field(
                        field,
                        "Enter a date (2026-03-01), a time in UTC (2026-03-01 12:00) or an \
                         RFC 3339 time (2026-03-01T12:00:00Z).",
                    );
                    None
                }
            }
        };
        q.from = bound("from", &self.from, Edge::Start, p);
        q.to = bound("to", &self.to, Edge::End, p);
        if !self.period.is_empty() {
            match PERIODS.iter().find(|(v, _, _)| *v == self.period) {
                Some((_, _, secs)) if q.from.is_none() && q.to.is_none() => {
                    q.from = Some(now - Duration::seconds(*secs));
                }
                Some(_) => {}
                None => p.field("period", "Choose one of the listed periods."),
            }
        }
        if let (Some(f), Some(t)) = (q.from, q.to)
            && f > t
        {
            p.field("from", "Must not be after To.");
        }
        if !self.before.is_empty() {
            let parsed = self
                .before
                .split_once('_')
                .and_then(|(t, s)| Some((t.parse::<i64>().ok()?, s.parse::<i64>().ok()?)));
            match parsed {
                Some(c) => q.after = Some(c),
                None => p.general(
                    "This paging link is not valid: open the newest events and page from there.",
                ),
            }
        }
        q
    }

    fn filtered(&self) -> bool {
        !(self.user.is_empty()
            && self.category.is_empty()
            && self.action.is_empty()
            && self.period.is_empty()
            && self.from.is_empty()
            && self.to.is_empty())
    }
}

/// The connections the principal may use, and the one shown (or a problem with `conn`).
async fn connections(
    app: &App,
    s: &Session,
    f: &Filters,
) -> Result<(Vec<ConnectionSummary>, Option<ConnectionId>, Problems), Error> {
    let all = app.usable_connections(Some(&s.key)).await?;
    let mut p = Problems::default();
    let chosen = if f.conn.is_empty() {
        all.first().map(|c| c.id.clone())
    } else if let Some(c) = all.iter().find(|c| c.id.as_str() == f.conn) {
        Some(c.id.clone())
    } else {
        p.field("conn", "No such connection, or you may not use it.");
        None
    };
    Ok((all, chosen, p))
}

// ---- the page ----------------------------------------------------------------------------

/// `GET /console/events`.
async fn index(State(app): State<App>, s: Session, RawQuery(q): RawQuery) -> Response {
    let f = Filters::parse(q.as_deref());
    let (conns, chosen, mut problems) = match connections(&app, &s, &f).await {
        Ok(x) => x,
        Err(e) => return ui::error_page(Some(&s), &e),
    };
    let now = Utc::now();
    let query = f.to_query(now, &mut problems);
    let watchers = match watcher_panel(&app, &s, &conns).await {
        Ok(m) => m,
        Err(e) => return ui::error_page(Some(&s), &e),
    };
    let region = match &chosen {
        Some(id) if problems.is_empty() => match region(&app, id, &f, &query, now).await {
            Ok(r) => r,
            Err(e) => return ui::error_page(Some(&s), &e),
        },
        None if conns.is_empty() => html! {
            (ui::alert("info", html! {
                p { "No connection yet, so no events. "
                    a href={ (PREFIX) "/connections" } { "Add a LastPass account" }
                    " and its audit log is collected here." }
            }))
        },
        _ => html! {},
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = html! {
        h1 { "Events" }
        p.lead { "The LastPass audit log lpbridge collected, newest first. Times are in UTC." }
        (ui::error_summary(&problems))
        (filter_form(&f, &conns, &problems))
        // Announces new events only (the table itself is not read out on every refresh).
        p #events-news .muted role="status" aria-live="polite" {}
        (region)
        (watchers)
    };
    ui::page_with_status(status, &s, Nav::Events, "Events", body)
}

/// `GET /console/events/live`: the first page again (htmx), with the status line out of band.
async fn live(State(app): State<App>, s: Session, RawQuery(q): RawQuery) -> Response {
    let mut f = Filters::parse(q.as_deref());
    // Only the first page is live.
    f.before.clear();
    let now = Utc::now();
    let result = async {
        let (_, chosen, mut p) = connections(&app, &s, &f).await?;
        let query = f.to_query(now, &mut p);
        match chosen {
            Some(id) if p.is_empty() => region(&app, &id, &f, &query, now).await,
            _ => Err(Error::NotFound(
                "the filters or the connection are not valid any more: reload the page".into(),
            )),
        }
    }
    .await;
    match result {
        Ok(m) => ui::fragment(StatusCode::OK, m),
        Err(e) => {
            // Keep polling: a database hiccup should not stop the page updating.
            let (_, p) = Problems::of(&e);
            let url = live_url(&f, f.seen);
            ui::fragment(
                StatusCode::OK,
                html! {
                    div #events-live hx-get=(url) hx-trigger=(POLL) hx-swap="outerHTML" {
                        (ui::alert("error", html! {
                            p { "Could not refresh the events (trying again in a few seconds): "
                                @for g in p.general_messages() { (g) " " } }
                        }))
                    }
                },
            )
        }
    }
}

/// The URL the first page polls.
fn live_url(f: &Filters, seen: Option<i64>) -> String {
    match seen {
        Some(n) => f.url("/events/live", &[("seen", &n.to_string())]),
        None => f.url("/events/live", &[]),
    }
}

fn select_field(
    name: &str,
    label: &str,
    options: &[(String, String)],
    current: &str,
    p: &Problems,
) -> Markup {
    let id = ui::field_id(name);
    let err = p.get(name);
    html! {
        div.field {
            label for=(id) { (label) }
            (ui::field_error(p, name))
            select id=(id) name=(name) aria-invalid=[err.map(|_| "true")]
                aria-describedby=[err.map(|_| format!("{id}-error"))] {
                @for (v, l) in options {
                    option value=(v) selected[v == current] { (l) }
                }
            }
        }
    }
}

fn filter_form(f: &Filters, conns: &[ConnectionSummary], p: &Problems) -> Markup {
    let mut cats = vec![(String::new(), "All categories".to_owned())];
    cats.extend(
        Category::ALL
            .iter()
            .map(|c| (c.as_str().to_owned(), category_label(*c).to_owned())),
    );
    let mut periods = vec![(String::new(), "Any time".to_owned())];
    periods.extend(
        PERIODS
            .iter()
            .map(|(v, l, _)| ((*v).to_owned(), (*l).to_owned())),
    );
    let conn_opts: Vec<(String, String)> = conns
        .iter()
        .map(|c| (c.id.as_str().to_owned(), c.id.as_str().to_owned()))
        .collect();
    html! {
        section.panel aria-labelledby="filters-h" {
            h2 #filters-h { "Filter" }
            form.filters method="get" action={ (PREFIX) "/events" } {
                @if conns.len() > 1 || p.get("conn").is_some() {
                    (select_field("conn", "Connection", &conn_opts, &f.conn, p))
                }
                (Input::new("user", "User").value(&f.user).placeholder("name@example.com")
                    .help("The username, exactly (any case).").render(p))
                (select_field("category", "Category", &cats, &f.category, p))
                (Input::new("action", "Action").value(&f.action).placeholder("Log in").render(p))
                (select_field("period", "Period", &periods, &f.period, p))
                (Input::new("from", "From (UTC)").value(&f.from).placeholder("2026-03-01 or 2026-03-01 12:00").render(p))
                (Input::new("to", "To (UTC)").value(&f.to).placeholder("2026-03-01 or 2026-03-01 18:00")
                    .help("From and To win over Period.").render(p))
                div.actions {
                    button type="submit" { "Apply filters" }
                    @if f.filtered() {
                        a.button.secondary href={ (PREFIX) "/events" @if !f.conn.is_empty() { "?conn=" (url_part(&f.conn)) } } { "Clear filters" }
                    }
                }
            }
        }
    }
}

fn url_part(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---- the live region: chart and table --------------------------------------------------------

/// The chart and the table of one connection's events (the part that refreshes itself).
async fn region(
    app: &App,
    conn: &ConnectionId,
    f: &Filters,
    query: &EventListQuery,
    now: DateTime<Utc>,
) -> Result<Markup, Error> {
    let mut q = query.clone();
    q.limit = PAGE_SIZE + 1;
    let mut rows = app.store.list_events(conn, &q).await?;
    let more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    let first_page = f.before.is_empty();
    let top = rows.iter().map(|r| r.seq).max();
    // Rows above what the browser last showed are new (once it has shown something).
    let seen = f.seen.filter(|_| first_page);
    let new_count = seen.map_or(0, |seen| rows.iter().filter(|r| r.seq > seen).count());
    let seen_next = match (f.seen, top) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let chart = if first_page {
        Some(chart(app, conn, query, now).await?)
    } else {
        None
    };
    let older = match (more, rows.last()) {
        (true, Some(last)) => Some(f.url(
            "/events",
            &[(
                "before",
                &format!("{}_{}", last.record.time_utc.timestamp_micros(), last.seq),
            )],
        )),
        _ => None,
    };
    let poll_url = live_url(f, seen_next);
    Ok(html! {
        div #events-live
            hx-get=[first_page.then_some(&poll_url)]
            hx-trigger=[first_page.then_some(POLL)]
            hx-swap=[first_page.then_some("outerHTML")] {
            @if first_page {
                p.muted.updated {
                    "Updated " time datetime=(now.to_rfc3339()) { (now.format("%H:%M:%S")) " UTC" }
                    " · refreshes every 5 seconds"
                }
            } @else {
                (ui::alert("info", html! {
                    p { "Older events: this page does not refresh itself. "
                        a href=(f.url("/events", &[])) { "Back to the newest events" } }
                }))
            }
            @if let Some(ch) = chart { (ch) }
            section aria-labelledby="events-h" {
                h2 #events-h {
                    @if first_page { "Newest events" } @else { "Older events" }
                    " of " (conn.as_str())
                }
                (table(&rows, f, seen))
                nav.actions aria-label="Pages" {
                    @if !first_page { a.button.secondary href=(f.url("/events", &[])) { "Newest events" } }
                    @if let Some(o) = &older { a.button.secondary href=(o) rel="next" { "Older events" } }
                }
            }
        }
        @if new_count > 0 {
            p #events-news hx-swap-oob="innerHTML" {
                (new_count) " new event" @if new_count != 1 { "s" } " at " (now.format("%H:%M:%S")) " UTC."
            }
        }
    })
}

fn table(rows: &[StoredEvent], f: &Filters, seen: Option<i64>) -> Markup {
    if rows.is_empty() {
        return html! {
            p #events-empty {
                @if f.filtered() { "No events match these filters." }
                @else { "No events collected yet. The watcher polls LastPass's audit log; new events appear here by themselves." }
            }
        };
    }
    html! {
        div.table-wrap {
            table #events-table .responsive aria-labelledby="events-h" {
                thead { tr {
                    th scope="col" { "Time (UTC)" }
                    th scope="col" { "User" }
                    th scope="col" { "Action" }
                    th scope="col" { "Category" }
                    th scope="col" { "IP address" }
                    th scope="col" { "Details" }
                } }
                tbody {
                    @for r in rows {
                        @let e = &r.record;
                        @let new = seen.is_some_and(|s| r.seq > s);
                        tr class=[new.then_some("new")] {
                            td data-label="Time (UTC)" .nowrap {
                                time datetime=(e.time_utc.to_rfc3339()) title={ "LastPass time: " (e.time.format("%Y-%m-%d %H:%M:%S")) " " (e.time_zone.name()) } {
                                    (seconds(&e.time_utc))
                                }
                                @if new { " " (ui::badge("info", "New")) }
                            }
                            td data-label="User" {
                                @if e.username.is_empty() { span.muted { "none" } }
                                @else {
                                    a href=(Filters { user: e.username.clone(), ..f.clone() }.url("/events", &[]))
                                        title={ "Only events of " (e.username) } { (e.username) }
                                }
                            }
                            td data-label="Action" { (e.action) }
                            td data-label="Category" { (category_tag(e.category)) }
                            td data-label="IP address" { (e.ip_address) }
                            td data-label="Details" .details { (e.data) }
                        }
                    }
                }
            }
        }
    }
}

// ---- the chart --------------------------------------------------------------------------------

/// Bucket lengths the chart chooses from: the shortest that gives at most [`MAX_BUCKETS`].
const BUCKETS: &[i64] = &[
    60,
    5 * 60,
    15 * 60,
    3600,
    6 * 3600,
    86_400,
    7 * 86_400,
    30 * 86_400,
];
const MAX_BUCKETS: i64 = 60;

/// Counts per time bucket and category.
struct Series {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    bucket: i64,
    /// Per bucket, counts per category (in [`Category::ALL`] order).
    counts: Vec<[usize; 9]>,
    total: usize,
}

impl Series {
    fn bucket_start(&self, i: usize) -> DateTime<Utc> {
        self.start + Duration::seconds(self.bucket * i as i64)
    }

    fn per_category(&self) -> [usize; 9] {
        let mut out = [0; 9];
        for b in &self.counts {
            for (o, n) in out.iter_mut().zip(b) {
                *o += n;
            }
        }
        out
    }

    fn label(&self, t: DateTime<Utc>) -> String {
        if self.bucket >= 86_400 {
            t.format("%b %-d").to_string()
        } else if (self.end - self.start).num_seconds() > 86_400 {
            t.format("%b %-d %H:%M").to_string()
        } else {
            t.format("%H:%M").to_string()
        }
    }

    fn unit(&self) -> String {
        match self.bucket {
            60 => "minute".into(),
            300 => "5 minutes".into(),
            900 => "15 minutes".into(),
            3600 => "hour".into(),
            21_600 => "6 hours".into(),
            86_400 => "day".into(),
            604_800 => "week".into(),
            b => format!("{} days", b / 86_400),
        }
    }
}

/// The chart's range: the filters' (an open end is now), else the last 24 hours.
fn chart_range(q: &EventListQuery, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let end = q.to.unwrap_or(now);
    let start = q
        .from
        .unwrap_or(end - Duration::hours(DEFAULT_CHART_SPAN_HOURS));
    (start, end.max(start))
}

async fn series(
    app: &App,
    conn: &ConnectionId,
    query: &EventListQuery,
    now: DateTime<Utc>,
) -> Result<Series, Error> {
    let (from, to) = chart_range(query, now);
    let span = (to - from).num_seconds().max(1);
    let bucket = BUCKETS
        .iter()
        .copied()
        .find(|b| span / b < MAX_BUCKETS)
        // Longer spans: buckets of whole days, still at most MAX_BUCKETS of them.
        .unwrap_or_else(|| (span / MAX_BUCKETS / 86_400 + 1) * 86_400);
    let start = from
        .duration_trunc(Duration::seconds(bucket.min(86_400)))
        .unwrap_or(from);
    // Weeks and months start on the epoch's grid; that is fine for a sketch.
    let start = if bucket > 86_400 {
        Utc.timestamp_opt(start.timestamp() - start.timestamp().rem_euclid(bucket), 0)
            .single()
            .unwrap_or(start)
    } else {
        start
    };
    let n = usize::try_from(((to - start).num_seconds() / bucket) + 1).unwrap_or(1);
    let q = EventListQuery {
        from: Some(from),
        to: Some(to),
        after: None,
        ..query.clone()
    };
    // Counted by the store in one grouped query: the chart costs the same for ten events or
    // ten million.
    let grouped = app
        .store
        .count_events(conn, &q, start.timestamp_micros(), bucket * 1_000_000)
        .await?;
    let mut counts = vec![[0usize; 9]; n];
    let mut total = 0;
    for (b, category, c) in grouped {
        let ci = Category::ALL
            .iter()
            .position(|x| x.as_str() == category)
            .unwrap_or(8);
        let c = usize::try_from(c).unwrap_or(0);
        if let Some(slot) = usize::try_from(b).ok().and_then(|i| counts.get_mut(i)) {
            slot[ci] += c;
            total += c;
        }
    }
    Ok(Series {
        start,
        end: to,
        bucket,
        counts,
        total,
    })
}

/// The smallest of 1, 2, 5 × 10ⁿ at least `n`.
fn nice_max(n: usize) -> usize {
    let mut m = 1usize;
    loop {
        for k in [1, 2, 5] {
            if m.saturating_mul(k) >= n {
                return m.saturating_mul(k);
            }
        }
        m = m.saturating_mul(10);
    }
}

const W: f64 = 960.0;
const H: f64 = 200.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 30.0;

async fn chart(
    app: &App,
    conn: &ConnectionId,
    query: &EventListQuery,
    now: DateTime<Utc>,
) -> Result<Markup, Error> {
    let s = series(app, conn, query, now).await?;
    let per_cat = s.per_category();
    let max = nice_max(
        s.counts
            .iter()
            .map(|b| b.iter().sum())
            .max()
            .unwrap_or(0)
            .max(1),
    );
    let n = s.counts.len().max(1);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let bw = plot_w / n as f64;
    let y = |v: usize| TOP + plot_h - plot_h * (v as f64) / (max as f64);
    let label_every = n.div_ceil(8).max(1);
    let range_text = format!(
        "{} to {} UTC",
        s.start.format("%Y-%m-%d %H:%M"),
        s.end.format("%Y-%m-%d %H:%M")
    );
    let summary: Vec<String> = Category::ALL
        .iter()
        .zip(per_cat)
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| format!("{} {}", thousands(n), category_label(*c)))
        .collect();
    let desc = if s.total == 0 {
        format!("No events from {range_text}.")
    } else {
        format!(
            "{} event{} from {range_text}: {}.",
            thousands(s.total),
            if s.total == 1 { "" } else { "s" },
            summary.join(", ")
        )
    };
    let present: Vec<(usize, Category)> = Category::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| per_cat[*i] > 0)
        .map(|(i, c)| (i, *c))
        .collect();
    let bars: Vec<Bar> = s
        .counts
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let label = s.label(s.bucket_start(i));
            let mut acc = 0;
            let mut segments = Vec::new();
            for (class, count) in b.iter().copied().enumerate() {
                if count == 0 {
                    continue;
                }
                let (top, bottom) = (y(acc + count), y(acc));
                acc += count;
                segments.push(Segment {
                    class,
                    count,
                    y: top,
                    height: (bottom - top).max(0.5),
                });
            }
            Bar {
                x: LEFT + bw * i as f64 + bw * 0.1,
                width: (bw * 0.8).max(1.0),
                // No label that would run off the right edge.
                tick: (i % label_every == 0 && LEFT + bw * i as f64 + 90.0 < W)
                    .then(|| label.clone()),
                label,
                segments,
            }
        })
        .collect();
    Ok(html! {
        section.chart aria-labelledby="chart-h" {
            h2 #chart-h { "Events per " (s.unit()) " by category" }
            p.muted #chart-desc { (desc) }
            div.chart-scroll {
            svg viewBox={ "0 0 " (W) " " (H) } role="img" aria-labelledby="chart-title" aria-describedby="chart-desc"
                xmlns="http://www.w3.org/2000/svg" {
                title #chart-title { "Events per " (s.unit()) " by category, " (range_text) }
                // Grid lines and the value axis.
                @for v in ticks(max) {
                    line.grid x1=(LEFT) x2=(W - RIGHT) y1=(fmt(y(v))) y2=(fmt(y(v))) {}
                    text x=(LEFT - 6.0) y=(fmt(y(v) + 4.0)) text-anchor="end" { (v) }
                }
                line.axis x1=(LEFT) x2=(W - RIGHT) y1=(fmt(TOP + plot_h)) y2=(fmt(TOP + plot_h)) {}
                @for bar in &bars {
                    @for seg in &bar.segments {
                        rect class={ "c" (seg.class) } x=(fmt(bar.x)) y=(fmt(seg.y)) width=(fmt(bar.width))
                            height=(fmt(seg.height)) {
                            title { (bar.label) ": " (seg.count) " " (category_label(Category::ALL[seg.class])) }
                        }
                    }
                    @if let Some(t) = &bar.tick {
                        text x=(fmt(bar.x)) y=(fmt(H - 10.0)) text-anchor="start" { (t) }
                    }
                }
            }
            }
            @if present.is_empty() {
                p.muted { "No events in this range." }
            } @else {
                ul.legend aria-label="Legend" {
                    @for (i, c) in &present {
                        li { span class={ "swatch c" (i) } aria-hidden="true" {} (category_label(*c)) ": " (thousands(per_cat[*i])) }
                    }
                }
                details {
                    summary { "The chart's numbers as a table" }
                    div.table-wrap {
                        table.chart-data {
                            thead { tr {
                                th scope="col" { "From (UTC)" }
                                @for (_, c) in &present { th scope="col" .num { (category_label(*c)) } }
                                th scope="col" .num { "Total" }
                            } }
                            tbody {
                                @for (i, b) in s.counts.iter().enumerate() {
                                    @let total: usize = b.iter().sum();
                                    @if total > 0 {
                                        tr {
                                            th scope="row" { (s.bucket_start(i).format("%Y-%m-%d %H:%M")) }
                                            @for (ci, _) in &present { td.num { (b[*ci]) } }
                                            td.num { (total) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The values the axis marks: 0, half way (when whole) and the top.
fn ticks(max: usize) -> Vec<usize> {
    if max >= 2 && max.is_multiple_of(2) {
        vec![0, max / 2, max]
    } else {
        vec![0, max]
    }
}

/// One stacked bar of the chart.
struct Bar {
    x: f64,
    width: f64,
    /// The bucket's start as the axis writes it.
    label: String,
    /// Written under the bar (every few bars).
    tick: Option<String>,
    segments: Vec<Segment>,
}

struct Segment {
    /// The category's index (and colour class).
    class: usize,
    count: usize,
    y: f64,
    height: f64,
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

// ---- watchers ---------------------------------------------------------------------------------

async fn watcher_panel(
    app: &App,
    s: &Session,
    conns: &[ConnectionSummary],
) -> Result<Markup, Error> {
    let mut rows = Vec::new();
    for c in conns {
        if let Some(w) = app.store.watcher_status(&c.id).await? {
            rows.push(w);
        }
    }
    if rows.is_empty() {
        return Ok(html! {});
    }
    let now = Utc::now();
    Ok(html! {
        section.panel aria-labelledby="watchers-h" {
            h2 #watchers-h { "Collection" }
            p.muted { "lpbridge serve polls each watched connection's audit log. A paused connection keeps its events, and collecting resumes where it stopped. A poll that fails is retried; its error is written to the service log, and the last successful poll below stops moving." }
            div.table-wrap {
                table.responsive #watchers {
                    thead { tr {
                        th scope="col" { "Connection" }
                        th scope="col" { "State" }
                        th scope="col" .num { "Events stored" }
                        th scope="col" { "Last successful poll" }
                        @if !s.key.read_only { th scope="col" { "Action" } }
                    } }
                    tbody {
                        @for w in &rows {
                            tr {
                                td data-label="Connection" { (w.connection_id) }
                                td data-label="State" {
                                    @if w.events_watch { (ui::badge("ok", "Watching")) } @else { (ui::badge("muted", "Paused")) }
                                }
                                td data-label="Events stored" .num { (thousands(usize::try_from(w.events).unwrap_or(0))) }
                                td data-label="Last successful poll" {
                                    @match &w.updated_at {
                                        Some(t) => {
                                            time datetime=(t.to_rfc3339()) { (seconds(t)) }
                                            " " span.muted { "(" (ago(now, *t)) ")" }
                                        }
                                        None => span.muted { "never" },
                                    }
                                }
                                @if !s.key.read_only {
                                    td data-label="Action" {
                                        form.inline method="post" action={ (PREFIX) "/events/watcher" } {
                                            (ui::csrf(s))
                                            input type="hidden" name="conn" value=(w.connection_id);
                                            @if w.events_watch {
                                                input type="hidden" name="enabled" value="false";
                                                button.secondary type="submit" aria-label={ "Pause collecting " (w.connection_id) } { "Pause" }
                                            } @else {
                                                input type="hidden" name="enabled" value="true";
                                                button type="submit" aria-label={ "Resume collecting " (w.connection_id) } { "Resume" }
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
    })
}

/// `42 s ago`, `5 min ago`, `3 h ago`, `2 days ago`.
fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// `POST /console/events/watcher`: turns a connection's watching on or off.
async fn set_watcher(State(app): State<App>, posted: Posted) -> Response {
    let Posted { session: s, form } = posted;
    let back = format!("{PREFIX}/events");
    if let Err(e) = s.require_write() {
        return ui::error_page(Some(&s), &e);
    }
    let conn = match ConnectionId::new(form.text("conn").unwrap_or_default().to_owned()) {
        Ok(c) => c,
        Err(_) => {
            return ui::redirect_with(
                &s,
                &back,
                FlashKind::Error,
                "No connection was named; nothing was changed.",
            );
        }
    };
    if !s.key.may_use(&conn) {
        return ui::error_page(
            Some(&s),
            &Error::Forbidden(format!(
                "{} may not use connection {:?}",
                s.label,
                conn.as_str()
            )),
        );
    }
    let on = form.one("enabled") == Some("true");
    match app.store.set_events_watch(&conn, on).await {
        Ok(true) => {
            let text = if on {
                format!(
                    "Collecting events of {} again: the watcher starts within one poll interval.",
                    conn.as_str()
                )
            } else {
                format!(
                    "Paused collecting events of {}. Stored events stay; webhooks of it deliver what is stored.",
                    conn.as_str()
                )
            };
            ui::redirect_with(&s, &back, FlashKind::Ok, text)
        }
        Ok(false) => ui::redirect_with(
            &s,
            &back,
            FlashKind::Error,
            format!(
                "There is no connection {:?}; nothing was changed.",
                conn.as_str()
            ),
        ),
        Err(e) => ui::error_page(Some(&s), &e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_through_the_query_string() {
        let f = Filters::parse(Some(
            "user=a%40x.io&category=vault_items&from=2026-01-01&junk=1",
        ));
        assert_eq!(f.user, "a@x.io");
        assert_eq!(
            f.query(&[]),
            "user=a%40x.io&category=vault_items&from=2026-01-01"
        );
        let mut p = Problems::default();
        let q = f.to_query(Utc::now(), &mut p);
        assert!(p.is_empty());
        assert_eq!(q.category, Some(Category::VaultItems));
        assert_eq!(q.from.unwrap().to_rfc3339(), "2026-01-01T00:00:00+00:00");
    }

    #[test]
    fn bad_filters_are_named() {
        let f = Filters::parse(Some("from=yesterday&category=nope&period=2y"));
        let mut p = Problems::default();
        f.to_query(Utc::now(), &mut p);
        assert!(p.get("from").is_some());
        assert!(p.get("category").is_some());
        assert!(p.get("period").is_some());
        let f = Filters::parse(Some("from=2026-02-01&to=2026-01-01"));
        let mut p = Problems::default();
        f.to_query(Utc::now(), &mut p);
        assert!(p.get("from").is_some());
        let f = Filters::parse(Some("from=2026-02-01T10:30"));
        let mut p = Problems::default();
        let q = f.to_query(Utc::now(), &mut p);
        assert!(p.is_empty());
        assert_eq!(q.from.unwrap().to_rfc3339(), "2026-02-01T10:30:00+00:00");
    }

    #[test]
    fn numbers_and_scales() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(nice_max(1), 1);
        assert_eq!(nice_max(3), 5);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(501), 1000);
    }

    #[test]
    fn the_chart_range_defaults_to_a_day() {
        let now = Utc::now();
        let (a, b) = chart_range(&EventListQuery::default(), now);
        assert_eq!(b, now);
        assert_eq!((b - a).num_hours(), 24);
        let q = EventListQuery {
            from: Some(now - Duration::hours(2)),
            ..EventListQuery::default()
        };
        let (a, b) = chart_range(&q, now);
        assert_eq!((b - a).num_hours(), 2);
    }
}
