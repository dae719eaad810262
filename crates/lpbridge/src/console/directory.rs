//! The console's directory pages (being written).

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use maud::html;

use super::Session;
use super::ui::{self, Nav};
use crate::http::App;

pub fn router() -> Router<App> {
    Router::new().route("/directory", get(index))
}

async fn index(s: Session) -> Response {
    ui::page(
        &s,
        Nav::Directory,
        "Directory",
        html! { h1 { "Directory" } },
    )
}
