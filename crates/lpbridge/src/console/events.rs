//! The console's events pages (being written).

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use maud::html;

use super::Session;
use super::ui::{self, Nav};
use crate::http::App;

pub fn router() -> Router<App> {
    Router::new().route("/events", get(index))
}

async fn index(s: Session) -> Response {
    ui::page(&s, Nav::Events, "Events", html! { h1 { "Events" } })
}
