//! The client's one error type. Every status envelope, transport failure and decode failure of the
//! Enterprise API ends up as one of these variants.

use std::time::Duration;

use lp_types::InvalidValue;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The XML `<lastpass rc="Authorization Error"/>` body: wrong cid or provisioning hash.
    #[error(
        "authentication failed: LastPass refused the account number (cid) or provisioning hash"
    )]
    Auth,
    /// The user does not exist (`{"Users":[]}`, `No such user: …`, `user not found: …`).
    #[error("no such user: {email}")]
    UnknownUser { email: String },
    /// Some items were applied and some were not (`WARN` + `errors`, or a bulk answer with `error`).
    #[error("partially applied: {} item(s) failed: {}", errors.len(), errors.join("; "))]
    Partial {
        /// Items that LastPass reports as done (where the answer says so).
        succeeded: Vec<String>,
        /// Per-item error messages, as LastPass wrote them.
        errors: Vec<String>,
    },
    /// A `FAIL` envelope (or another non-success status) that is not an unknown user.
    #[error("LastPass refused {cmd}: {message}")]
    Failed { cmd: String, message: String },
    /// HTTP 429, after the retry budget was spent.
    #[error("rate limited by LastPass (HTTP 429) on {cmd}")]
    RateLimited {
        cmd: String,
        retry_after: Option<Duration>,
    },
    /// HTTP 5xx (or another unexpected status), after the retry budget was spent.
    #[error("LastPass server error on {cmd}: HTTP {status}")]
    Upstream { cmd: String, status: u16 },
    /// Connection refused/reset, TLS, or a request timeout. `ambiguous` is true when the request
    /// may have reached LastPass (so a write may or may not have been applied).
    #[error("transport error on {cmd}: {message}")]
    Transport {
        cmd: String,
        message: String,
        ambiguous: bool,
    },
    /// A body that is neither the XML auth error nor the JSON shape we expect. `excerpt` is a
    /// short, secret-free prefix of the body.
    #[error("could not decode the {cmd} response: {reason} (body starts with {excerpt:?})")]
    Decode {
        cmd: String,
        reason: String,
        excerpt: String,
    },
    /// Input refused before any call was made.
    #[error(transparent)]
    InvalidInput(#[from] InvalidValue),
    /// Missing or inconsistent configuration (endpoint, credentials).
    #[error("configuration error: {0}")]
    Config(String),
}

impl Error {
    /// Whether retrying the same request could succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. } | Error::Upstream { .. } | Error::Transport { .. }
        )
    }
}
