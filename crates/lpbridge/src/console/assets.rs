//! The console's static files, compiled into the binary (nothing comes from a CDN). Each is
//! served under a name that carries its content hash, so browsers may cache it for a year and a
//! new build is never served a stale copy.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        // htmx 2.0.11 (BSD Zero Clause), from the npm package `htmx.org`, dist/htmx.min.js.
        name: "htmx.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/console/htmx-2.0.11.min.js"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/console/console.js"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/console/console.css"),
    },
];

/// `name` → `name-<hash8>.<ext>`, computed once.
fn hashed() -> &'static Vec<(String, &'static Asset)> {
    static H: OnceLock<Vec<(String, &'static Asset)>> = OnceLock::new();
    H.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body);
                let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
                let (stem, ext) = a.name.rsplit_once('.').unwrap_or((a.name, ""));
                (format!("{stem}-{hex}.{ext}"), a)
            })
            .collect()
    })
}

/// The URL of an asset by its plain name (`console.css`).
pub fn url(name: &str) -> String {
    hashed().iter().find(|(_, a)| a.name == name).map_or_else(
        || format!("{}/assets/{name}", super::PREFIX),
        |(h, _)| format!("{}/assets/{h}", super::PREFIX),
    )
}

/// `GET /console/assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, a)) = hashed().iter().find(|(h, _)| *h == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut resp = a.body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
