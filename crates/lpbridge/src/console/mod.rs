//! The web console: server-rendered HTML pages (maud) under [`PREFIX`], made interactive with
//! htmx, all assets compiled into the binary. It owns no behaviour of its own: every page calls
//! the same [`crate::unified`], [`crate::actions`], [`crate::events`], [`crate::msp`] and
//! [`crate::store`] code the JSON API calls, with the permissions of the signed-in principal.
//!
//! | module | what it owns |
//! |---|---|
//! | [`auth`] | login (API key or console user), sessions (cookie + store), CSRF, security headers |
//! | [`ui`] | the page shell, navigation, flash messages, form fields with their errors |
//! | [`assets`] | htmx, `console.js`, `console.css`, served with content hashes |
//! | [`connections`] | LastPass accounts, PSA integrations and the MSP account's API key |
//! | [`directory`] | users, user detail and actions, groups, shared folders |
//! | [`events`] | the audit log: filters, live updates, the chart by category |
//! | [`webhooks`] | subscriptions, delivery state, dead letters, replay |
//! | [`msp`] | the PSA import wizard |
//! | [`jobs`] | bulk actions in the background, with a progress page |

pub mod assets;
pub mod auth;
pub mod connections;
pub mod directory;
pub mod events;
pub mod jobs;
pub mod msp;
pub mod ui;
pub mod webhooks;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::http::App;

pub use auth::{Posted, Session};

/// Where the console lives (`/` redirects here).
pub const PREFIX: &str = "/console";

/// The first page after login.
pub const HOME: &str = "/console/connections";

/// The console's routes, merged into the service's router.
pub fn router(app: App) -> Router<App> {
    let pages = Router::new()
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/assets/{file}", get(assets::serve))
        .merge(connections::router())
        .merge(directory::router())
        .merge(events::router())
        .merge(webhooks::router())
        .merge(msp::router())
        .merge(jobs::router())
        .fallback(ui::not_found)
        .layer(axum::middleware::from_fn_with_state(app, auth::guard));
    Router::new()
        .route("/", get(|| async { Redirect::to(HOME) }))
        .nest(PREFIX, pages)
}
