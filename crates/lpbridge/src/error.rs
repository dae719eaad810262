//! The application's one error type, mapped in one place to a CLI message and an exit code.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | error (LastPass refused, transport, authentication, configuration, I/O…) |
//! | 2 | usage: bad flags, invalid input (e-mail, CSV row, output format) refused before any API call |
//! | 3 | partial failure: one or more items of a bulk change failed (the per-item report on stdout says which) |

use lp_types::InvalidValue;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: an error.
pub const EXIT_ERROR: u8 = 1;
/// Exit code: a usage error or invalid input, refused before any API call.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a bulk change partially failed.
pub const EXIT_PARTIAL: u8 = 3;

/// One problem in an input file, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong or conflicting flags, a missing confirmation, a prompt without a terminal.
    #[error("{0}")]
    Usage(String),
    /// A value refused at the boundary (names the field and the value).
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// An input file with invalid rows; every problem is listed with its line number.
    #[error("{path}: {} invalid row(s):\n{}", problems.len(), join_problems(problems))]
    InvalidFile {
        path: String,
        problems: Vec<LineProblem>,
    },
    /// Anything the LastPass client reported.
    #[error(transparent)]
    LastPass(#[from] lastpass::Error),
    /// Some items of a bulk change failed (the per-item report was already printed).
    #[error("{failed} of {total} item(s) failed")]
    Partial { failed: usize, total: usize },
    /// The requested object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The account's current state forbids the change (e.g. inviting an existing user).
    #[error("{0}")]
    Conflict(String),
    /// Missing credentials, unreadable profile store, wrong master key…
    #[error("{0}")]
    Config(String),
    /// The operator answered "no" at a confirmation prompt; nothing was changed.
    #[error("aborted: nothing was changed")]
    Aborted,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The store (database, connections, API keys). Never carries a secret.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The service refused the caller: no API key, or an unknown or revoked one.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller's key may not do this (a read-only key on a write, a connection outside its
    /// scope).
    #[error("{0}")]
    Forbidden(String),
    /// A PSA (ConnectWise, Autotask) failure: the import's wording for its category, then the
    /// technical detail (never a secret).
    #[error("{}\n  detail: {}", .0.kind.user_message(), .0)]
    Psa(#[from] psa::Error),
    /// A request body over the service's limit.
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The MSP import refused or failed as a whole (its first line is the product's message
    /// where the product has one).
    #[error(transparent)]
    Msp(#[from] crate::msp::MspError),
}

impl From<crate::crypto::CryptoError> for Error {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Error::Store(e.into())
    }
}

fn join_problems(problems: &[LineProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    pub fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }

    /// The process exit code for this error (see the module documentation).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Invalid(_) | Error::InvalidFile { .. } => EXIT_USAGE,
            Error::LastPass(lastpass::Error::InvalidInput(_)) => EXIT_USAGE,
            Error::Partial { .. } | Error::LastPass(lastpass::Error::Partial { .. }) => {
                EXIT_PARTIAL
            }
            Error::LastPass(_)
            | Error::NotFound(_)
            | Error::Conflict(_)
            | Error::Config(_)
            | Error::Aborted
            | Error::Io(_)
            | Error::Unauthorized(_)
            | Error::Forbidden(_)
            | Error::TooLarge { .. } => EXIT_ERROR,
            // Checked locally, before any call.
            Error::Psa(e) if e.kind == psa::ErrorKind::CredentialsMissing => EXIT_USAGE,
            Error::Psa(_) => EXIT_ERROR,
            Error::Store(crate::store::StoreError::Invalid(_)) => EXIT_USAGE,
            Error::Store(_) => EXIT_ERROR,
            Error::Msp(e) => e.exit_code(),
        }
    }

    /// Whether this is a closed pipe on stdout (`lpbridge users list | head`): not an error.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The message printed on stderr (`error: …`). Secrets never reach it: every secret is a
    /// [`lp_types::Secret`], whose `Display` is `***`.
    pub fn message(&self) -> String {
        let hint = match self {
            Error::LastPass(lastpass::Error::Auth) => {
                "\nhint: check the account number (cid) and provisioning hash \
                 (`lpbridge connection test`)"
            }
            Error::LastPass(lastpass::Error::RateLimited { .. }) => {
                "\nhint: LastPass is rate limiting this account; retry later"
            }
            Error::LastPass(lastpass::Error::Upstream {
                status: 400 | 404 | 405,
                ..
            }) => {
                "\nhint: is the endpoint right? (--endpoint, LPBRIDGE_ENDPOINT or the profile's; \
                 LastPass serves the API at https://lastpass.com/enterpriseapi.php)"
            }
            _ => "",
        };
        format!("{self}{hint}")
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_in_one_place() {
        assert_eq!(Error::usage("x").exit_code(), EXIT_USAGE);
        assert_eq!(
            Error::Invalid(InvalidValue::new("email", "x", "has no '@'")).exit_code(),
            EXIT_USAGE
        );
        assert_eq!(
            Error::InvalidFile {
                path: "a.csv".into(),
                problems: vec![]
            }
            .exit_code(),
            EXIT_USAGE
        );
        assert_eq!(
            Error::Partial {
                failed: 1,
                total: 2
            }
            .exit_code(),
            EXIT_PARTIAL
        );
        assert_eq!(
            Error::LastPass(lastpass::Error::Partial {
                succeeded: vec![],
                errors: vec!["a".into()]
            })
            .exit_code(),
            EXIT_PARTIAL
        );
        assert_eq!(
            Error::LastPass(lastpass::Error::Auth).exit_code(),
            EXIT_ERROR
        );
        assert_eq!(
            Error::LastPass(lastpass::Error::Upstream {
                cmd: "getuserdata".into(),
                status: 503
            })
            .exit_code(),
            EXIT_ERROR
        );
        assert_eq!(Error::config("no creds").exit_code(), EXIT_ERROR);
        assert_eq!(Error::NotFound("x".into()).exit_code(), EXIT_ERROR);
    }

    #[test]
    fn invalid_file_lists_every_line() {
        let e = Error::InvalidFile {
            path: "users.csv".into(),
            problems: vec![
                LineProblem {
                    line: 3,
                    message: "bad email".into(),
                },
                LineProblem {
                    line: 7,
                    message: "duplicate".into(),
                },
            ],
        };
        let m = e.message();
        assert!(m.contains("users.csv: 2 invalid row(s)"), "{m}");
        assert!(m.contains("line 3: bad email"), "{m}");
        assert!(m.contains("line 7: duplicate"), "{m}");
    }

    #[test]
    fn broken_pipe_is_recognised() {
        let e = Error::Io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(e.is_broken_pipe());
        assert!(!Error::usage("x").is_broken_pipe());
    }

    #[test]
    fn a_wrong_endpoint_gets_a_hint() {
        let m = Error::LastPass(lastpass::Error::Upstream {
            cmd: "getuserdata".into(),
            status: 404,
        })
        .message();
        assert!(m.contains("is the endpoint right?"), "{m}");
        let m = Error::LastPass(lastpass::Error::Upstream {
            cmd: "getuserdata".into(),
            status: 503,
        })
        .message();
        assert!(!m.contains("endpoint"), "{m}");
    }

    #[test]
    fn psa_errors_use_the_import_wording_and_keep_the_detail() {
        let e = Error::from(psa::Error::new(
            psa::ErrorKind::Authentication,
            "HTTP 401 from system/info",
        ));
        let m = e.message();
        assert!(
            m.starts_with(
                "Authentication error. Check your credentials for your PSA provider and try again"
            ),
            "{m}"
        );
        assert!(m.contains("HTTP 401 from system/info"), "{m}");
        assert_eq!(e.exit_code(), EXIT_ERROR);
        let e = Error::from(psa::Error::credentials_missing("public_key"));
        assert!(e.message().starts_with("Credentials are required"));
        assert!(e.message().contains("public_key"));
        assert_eq!(e.exit_code(), EXIT_USAGE);
    }

    #[test]
    fn auth_error_message_has_a_hint() {
        let m = Error::LastPass(lastpass::Error::Auth).message();
        assert!(m.contains("authentication failed"));
        assert!(m.contains("connection test"));
    }
}
