//! One error for both PSA clients, classified into the categories the MSP import reports.

use std::fmt;

/// The categories of PSA failure the import's error messages distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A required credential field is empty (checked locally, before any call).
    CredentialsMissing,
    /// Invalid, expired or revoked credentials.
    Authentication,
    /// The credentials lack a permission.
    Forbidden,
    /// 5xx (after retries), or rate limits that did not clear.
    ServerError,
    /// A body that is not what the API documents (HTML, truncated JSON, wrong shape, bad paging).
    InvalidResponse,
    /// Anything else: network and TLS failures, unexpected statuses.
    Unknown,
}

impl ErrorKind {
    /// The message LastPass's PSA import shows for this category, word for word.
    pub fn user_message(self) -> &'static str {
        match self {
            ErrorKind::CredentialsMissing => "Credentials are required",
            ErrorKind::Authentication => {
                "Authentication error. Check your credentials for your PSA provider and try again"
            }
            ErrorKind::Forbidden => "We received a Forbidden error from your PSA provider",
            ErrorKind::ServerError => "We received a server error from your PSA provider",
            ErrorKind::InvalidResponse => "We received an invalid response from your PSA provider",
            ErrorKind::Unknown => "Something went wrong",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::CredentialsMissing => "credentials_missing",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::ServerError => "server_error",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A PSA failure: its category, a technical detail (never a secret), and the HTTP status if any.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct Error {
    pub kind: ErrorKind,
    pub detail: String,
    pub status: Option<u16>,
}

impl Error {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// A required credential field is empty; names the field.
    pub fn credentials_missing(field: &str) -> Self {
        Self::new(
            ErrorKind::CredentialsMissing,
            format!("the credential field {field} is empty"),
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
