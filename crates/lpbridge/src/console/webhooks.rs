//! The console's webhooks pages (being written).

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use maud::html;

use super::Session;
use super::ui::{self, Nav};
use crate::http::App;

pub fn router() -> Router<App> {
    Router::new().route("/webhooks", get(index))
}

async fn index(s: Session) -> Response {
    ui::page(&s, Nav::Webhooks, "Webhooks", html! { h1 { "Webhooks" } })
}
