//! The one mapping from [`crate::Error`] to an HTTP status and a StackOne-shaped body:
//! `{statusCode, message, timestamp, errorCode, data{statusCode, message, headers},
//! provider_errors[]}`. Internal causes (database, I/O) are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::Error;
use crate::store::StoreError;

/// An error on its way out of a handler.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

/// What the body says about an upstream (LastPass) failure.
fn provider_error(status: u16, e: &lastpass::Error) -> Value {
    json!({ "status": status, "url": null, "raw": { "error": e.to_string() }, "headers": {} })
}

/// Status, machine code, message, provider errors and `Retry-After` for an error.
pub fn classify(e: &Error) -> (StatusCode, &'static str, String, Vec<Value>, Option<u64>) {
    use lastpass::Error as Lp;
    let (status, code, providers, retry) = match e {
        Error::Usage(_)
        | Error::Invalid(_)
        | Error::InvalidFile { .. }
        | Error::Store(StoreError::Invalid(_)) => {
            (StatusCode::BAD_REQUEST, "ValidationError", vec![], None)
        }
        Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "Unauthorized", vec![], None),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden", vec![], None),
        Error::TooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            vec![],
            None,
        ),
        Error::NotFound(_) | Error::Store(StoreError::NotFound { .. }) => {
            (StatusCode::NOT_FOUND, "NotFound", vec![], None)
        }
        Error::Conflict(_) | Error::Store(StoreError::Conflict { .. }) => {
            (StatusCode::CONFLICT, "Conflict", vec![], None)
        }
        Error::Partial { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "PartialFailure",
            vec![],
            None,
        ),
        Error::LastPass(lp) => {
            let (status, code, upstream, retry) = match lp {
                Lp::InvalidInput(_) => (StatusCode::BAD_REQUEST, "ValidationError", 0, None),
                Lp::Auth => (
                    StatusCode::UNAUTHORIZED,
                    "ProviderAuthenticationError",
                    200,
                    None,
                ),
                Lp::UnknownUser { .. } => (StatusCode::NOT_FOUND, "NotFound", 200, None),
                Lp::Partial { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "ProviderPartialFailure",
                    200,
                    None,
                ),
                Lp::Failed { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "ProviderRejected",
                    200,
                    None,
                ),
                Lp::RateLimited { retry_after, .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "ProviderRateLimited",
                    429,
                    Some(retry_after.map_or(1, |d| d.as_secs().max(1))),
                ),
                Lp::Upstream { status, .. } => {
                    (StatusCode::BAD_GATEWAY, "ProviderError", *status, None)
                }
                Lp::Transport { .. } => (StatusCode::BAD_GATEWAY, "ProviderUnreachable", 0, None),
                Lp::Decode { .. } => (StatusCode::BAD_GATEWAY, "ProviderBadResponse", 200, None),
                Lp::Config(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError", 0, None),
            };
            let providers = if upstream > 0 {
                vec![provider_error(upstream, lp)]
            } else {
                vec![]
            };
            (status, code, providers, retry)
        }
        Error::Psa(p) => {
            use psa::ErrorKind as K;
            let (status, code) = match p.kind {
                K::CredentialsMissing => (StatusCode::BAD_REQUEST, "ValidationError"),
                K::Authentication => (StatusCode::UNAUTHORIZED, "ProviderAuthenticationError"),
                K::Forbidden => (StatusCode::FORBIDDEN, "ProviderForbidden"),
                K::ServerError => (StatusCode::BAD_GATEWAY, "ProviderError"),
                K::InvalidResponse => (StatusCode::BAD_GATEWAY, "ProviderBadResponse"),
                K::Unknown => (StatusCode::BAD_GATEWAY, "ProviderUnreachable"),
            };
            (status, code, vec![], None)
        }
        Error::Msp(m) => return crate::msp::http::classify(m),
        Error::Config(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "ConfigurationError",
            vec![],
            None,
        ),
        // Database and I/O details stay in the log.
        Error::Store(_) | Error::Io(_) | Error::Aborted => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "internal error (see the service log)".into(),
                vec![],
                None,
            );
        }
    };
    (status, code, e.to_string(), providers, retry)
}

/// The StackOne error body.
pub fn body(status: StatusCode, code: &str, message: &str, providers: Vec<Value>) -> Value {
    json!({
        "statusCode": status.as_u16(),
        "message": message,
        "timestamp": crate::unified::model::now_rfc3339(),
        "errorCode": code,
        "data": { "statusCode": status.as_u16(), "message": message, "headers": {} },
        "provider_errors": providers,
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, providers, retry) = classify(&self.0);
        if status.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
        } else {
            tracing::debug!(error = %self.0, status = status.as_u16(), "request refused");
        }
        let mut resp = (status, Json(body(status, code, &message, providers))).into_response();
        if status == StatusCode::UNAUTHORIZED && code == "Unauthorized" {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lpbridge\", Basic realm=\"lpbridge\""),
            );
        }
        if let Some(secs) = retry
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
