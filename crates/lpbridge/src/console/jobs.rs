//! Console bulk actions that take a while: they run in the background while the browser polls
//! a progress fragment (`GET /console/jobs/{id}/progress`, htmx every second) and ends on a
//! summary of what succeeded and what failed, item by item.
//!
//! Usage from a page handler:
//!
//! ```ignore
//! let job = jobs::start(&s, "Disable 40 users", items.len(), "/console/directory");
//! let worker = job.clone();
//! tokio::spawn(async move {
//!     for item in items {
//!         match do_one(&item).await {
//!             Ok(()) => worker.ok(),
//!             Err(e) => worker.failed(&item, e.to_string()),
//!         }
//!     }
//!     worker.finish();
//! });
//! ui::redirect_to(s.htmx, &job.url())   // the progress page
//! ```
//!
//! Jobs live in this process's memory (a bulk action is a sequence of independent upstream
//! calls, each reported; nothing to resume). Behind several replicas the progress page needs
//! the replica that runs the job (sticky sessions); the JSON API's MSP import, which must
//! survive crashes, keeps its progress in the store instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use parking_lot::Mutex;

use super::Session;
use super::ui::{self, Nav};
use crate::error::Error;
use crate::http::App;

/// Finished jobs are kept this long for their summary page.
const KEEP: Duration = Duration::from_secs(3600);

/// One background job.
pub struct Job {
    pub id: String,
    pub title: String,
    /// The principal that started it (only they see it).
    owner: String,
    pub total: usize,
    /// Where the summary's "Back" link goes.
    pub back: String,
    done: AtomicUsize,
    failures: Mutex<Vec<(String, String)>>,
    finished: AtomicBool,
    started: Instant,
    ended: Mutex<Option<Instant>>,
}

impl Job {
    /// The progress page.
    pub fn url(&self) -> String {
        format!("{}/jobs/{}", super::PREFIX, self.id)
    }

    /// One item succeeded.
    pub fn ok(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// One item failed, with what to tell the admin.
    pub fn failed(&self, item: &str, message: impl Into<String>) {
        self.failures.lock().push((item.to_owned(), message.into()));
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// The job is over (also when it stopped early: the summary says how many were done).
    pub fn finish(&self) {
        *self.ended.lock() = Some(Instant::now());
        self.finished.store(true, Ordering::Release);
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> Vec<(String, String)> {
        self.failures.lock().clone()
    }
}

fn registry() -> &'static Mutex<HashMap<String, Arc<Job>>> {
    static R: OnceLock<Mutex<HashMap<String, Arc<Job>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Registers a job of `total` items for the session's principal; the caller runs it (see the
/// module doc) and calls [`Job::finish`].
pub fn start(s: &Session, title: impl Into<String>, total: usize, back: &str) -> Arc<Job> {
    let id = crate::msp::random_hex(8);
    let job = Arc::new(Job {
        id: id.clone(),
        title: title.into(),
        owner: s.actor_id().to_owned(),
        total,
        back: back.to_owned(),
        done: AtomicUsize::new(0),
        failures: Mutex::new(Vec::new()),
        finished: AtomicBool::new(false),
        started: Instant::now(),
        ended: Mutex::new(None),
    });
    let mut r = registry().lock();
    r.retain(|_, j| j.ended.lock().is_none_or(|t| t.elapsed() < KEEP));
    r.insert(id, job.clone());
    job
}

fn find(s: &Session, id: &str) -> Result<Arc<Job>, Error> {
    registry()
        .lock()
        .get(id)
        .filter(|j| j.owner == s.actor_id())
        .cloned()
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no job {:?} (jobs are kept for an hour on the server that ran them)",
                lp_types::shown(id)
            ))
        })
}

pub fn router() -> Router<App> {
    Router::new()
        .route("/jobs/{id}", get(page))
        .route("/jobs/{id}/progress", get(progress))
}

/// The progress region: polls itself until the job is over, then shows the summary.
pub fn progress_fragment(job: &Job) -> Markup {
    let done = job.done();
    let failures = job.failures();
    let finished = job.is_finished();
    let elapsed = job
        .ended
        .lock()
        .unwrap_or_else(Instant::now)
        .duration_since(job.started);
    let poll = format!("{}/progress", job.url());
    html! {
        div #job-progress aria-live="polite"
            hx-get=[(!finished).then_some(&poll)]
            hx-trigger=[(!finished).then_some("every 1s")]
            hx-swap="outerHTML" {
            label for="job-bar" {
                @if finished { "Finished: " } @else { "Working: " }
                (done) " of " (job.total) " done"
                @if !failures.is_empty() { ", " (failures.len()) " failed" }
                span.muted { " (" (format!("{:.1}", elapsed.as_secs_f64())) " s)" }
            }
            progress #job-bar max=(job.total.max(1)) value=(done) { (done) " of " (job.total) }
            @if finished {
                @let ok = done.saturating_sub(failures.len());
                @if failures.is_empty() {
                    (ui::alert("ok", html! { p { (ok) " of " (job.total) " succeeded." } }))
                } @else {
                    (ui::alert("error", html! {
                        p { (ok) " of " (job.total) " succeeded; " (failures.len()) " failed:" }
                        ul { @for (item, msg) in &failures { li { strong { (item) } ": " (msg) } } }
                    }))
                }
                @if done < job.total {
                    p { "The job stopped after " (done) " of " (job.total) " items; the others were not touched." }
                }
                p { a.button href=(job.back) { "Back" } }
            }
        }
    }
}

async fn page(s: Session, Path(id): Path<String>) -> Response {
    match find(&s, &id) {
        Ok(job) => ui::page(
            &s,
            Nav::None,
            &job.title,
            html! {
                h1 { (job.title) }
                (progress_fragment(&job))
            },
        ),
        Err(e) => ui::error_page(Some(&s), &e),
    }
}

async fn progress(s: Session, Path(id): Path<String>) -> Response {
    match find(&s, &id) {
        Ok(job) => ui::fragment(StatusCode::OK, progress_fragment(&job)),
        Err(e) => ui::error_page(Some(&s), &e),
    }
}
