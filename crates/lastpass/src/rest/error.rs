//! The REST client's one error type, and the RFC 9457 ProblemDetails body the API answers
//! errors with. Every HTTP status, failed asynchronous request, transport failure and
//! undecodable body ends up as one [`Error`] variant; none of them ever holds the API key (the
//! client scrubs it out of anything the server echoes).

use std::fmt;
use std::time::Duration;

use lp_types::InvalidValue;
use serde::{Deserialize, Serialize};

/// One item of a ProblemDetails `errors` list: `pointer` names a body member (`#/email`),
/// `parameter` a query parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProblemItem {
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

/// An RFC 9457 ProblemDetails body `{"title","status","detail","instance","errors"}`
/// (reference §3.3), every member optional because servers omit some.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Problem {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub instance: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub errors: Vec<ProblemItem>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ProblemItem>, D::Error> {
    Ok(Option::<Vec<ProblemItem>>::deserialize(d)?.unwrap_or_default())
}

impl Problem {
    /// Whether the problem is about licences (title, detail or type mentions "license" /
    /// "licence"): how "not enough licenses" is told apart from other conflicts.
    pub fn is_about_licenses(&self) -> bool {
        [&self.title, &self.detail, &self.problem_type]
            .into_iter()
            .flatten()
            .any(|s| mentions_licenses(s))
    }

    /// `s` with `secret` replaced by `***` in every text member.
    pub(crate) fn scrubbed(mut self, scrub: &dyn Fn(&str) -> String) -> Self {
        for s in [
            &mut self.problem_type,
            &mut self.title,
            &mut self.detail,
            &mut self.instance,
        ]
        .into_iter()
        .flatten()
        {
            *s = scrub(s);
        }
        for e in &mut self.errors {
            for s in [&mut e.detail, &mut e.pointer, &mut e.parameter]
                .into_iter()
                .flatten()
            {
                *s = scrub(s);
            }
        }
        self
    }
}

/// Whether `text` has a word starting with "licen" (license, licence, licenses…). E-mail
/// addresses and host names are one word with their `@` and dots, so
/// `ann@licence.example` does not count.
fn mentions_licenses(text: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '@' | '.' | '-' | '_')))
        .map(|w| {
            w.trim_matches(|c: char| c == '.' || c == '-')
                .to_lowercase()
        })
        .any(|w| w.starts_with("licen") && !w.contains('@') && !w.contains('.'))
}

impl fmt::Display for Problem {
    /// `Title: detail (pointer: detail; …)`, or what of it is there.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.title, &self.detail) {
            (Some(t), Some(d)) => write!(f, "{t}: {d}")?,
            (Some(t), None) => f.write_str(t)?,
            (None, Some(d)) => f.write_str(d)?,
            (None, None) => f.write_str("no details")?,
        }
        if !self.errors.is_empty() {
            let items: Vec<String> = self
                .errors
                .iter()
                .map(|e| {
                    let at = e
                        .pointer
                        .as_deref()
                        .or(e.parameter.as_deref())
                        .unwrap_or("");
                    format!("{at}: {}", e.detail.as_deref().unwrap_or("invalid"))
                })
                .collect();
            write!(f, " ({})", items.join("; "))?;
        }
        Ok(())
    }
}

/// Shows `Some(problem)` as `: problem` and `None` as nothing.
struct Opt<'a>(&'a Option<Box<Problem>>);

impl fmt::Display for Opt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, ": {p}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// HTTP 401: the API key is missing, wrong or revoked.
    #[error("authentication failed: LastPass refused the API key{}", Opt(.problem))]
    Auth { problem: Option<Box<Problem>> },
    /// HTTP 403: the key may not do this.
    #[error("forbidden: the API key may not {op}{}", Opt(.problem))]
    Forbidden {
        op: String,
        problem: Option<Box<Problem>>,
    },
    /// HTTP 404: the managed company, user or request does not exist.
    #[error("not found ({op}){}", Opt(.problem))]
    NotFound {
        op: String,
        problem: Option<Box<Problem>>,
    },
    /// The MSP has no licence left to distribute (a 409 — or 402/403/422 — whose problem is
    /// about licences, answered directly or by a failed asynchronous request).
    #[error("not enough licenses ({op}){}", Opt(.problem))]
    NotEnoughLicenses {
        op: String,
        problem: Option<Box<Problem>>,
    },
    /// HTTP 409 about something else: the user already exists, "Can't detach without admins.".
    #[error("conflict ({op}){}", Opt(.problem))]
    Conflict {
        op: String,
        problem: Option<Box<Problem>>,
    },
    /// Another 4xx (400, 405, 422…): the request was refused as it is; retrying will not help.
    #[error("LastPass refused {op}: HTTP {status}{}", Opt(.problem))]
    Rejected {
        op: String,
        status: u16,
        problem: Option<Box<Problem>>,
    },
    /// HTTP 429 after the retry budget was spent (or a `Retry-After` longer than the client
    /// waits).
    #[error("rate limited by LastPass on {op} (HTTP 429)")]
    RateLimited {
        op: String,
        retry_after: Option<Duration>,
    },
    /// HTTP 5xx (or another unexpected status) after the retry budget was spent.
    #[error("LastPass server error on {op}: HTTP {status}{}", Opt(.problem))]
    Upstream {
        op: String,
        status: u16,
        problem: Option<Box<Problem>>,
    },
    /// A body that is not the JSON the operation answers. `excerpt` is a short, secret-free
    /// start of the body.
    #[error("could not decode the {op} response: {reason} (body starts with {excerpt:?})")]
    Decode {
        op: String,
        reason: String,
        excerpt: String,
    },
    /// No HTTP answer: connection refused or reset, TLS, a request timeout. `ambiguous` is true
    /// when the request may have reached LastPass (a write may or may not have been applied).
    #[error("transport error on {op}: {message}")]
    Transport {
        op: String,
        message: String,
        ambiguous: bool,
    },
    /// An asynchronous request was still pending when the poll deadline passed. It may still
    /// complete later; poll it again with its id.
    #[error("{op}: request {request_id} still pending after {waited:?}")]
    Timeout {
        op: String,
        request_id: String,
        waited: Duration,
    },
    /// Input refused before any call was made.
    #[error(transparent)]
    InvalidInput(#[from] InvalidValue),
    /// Missing or inconsistent configuration (base URL, key).
    #[error("configuration error: {0}")]
    Config(String),
}

impl Error {
    /// Whether retrying the same call later could succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. }
                | Error::Upstream { .. }
                | Error::Transport { .. }
                | Error::Timeout { .. }
        )
    }

    /// The ProblemDetails the server answered with, if any.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Auth { problem }
            | Error::Forbidden { problem, .. }
            | Error::NotFound { problem, .. }
            | Error::NotEnoughLicenses { problem, .. }
            | Error::Conflict { problem, .. }
            | Error::Rejected { problem, .. }
            | Error::Upstream { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }

    /// The error for an HTTP error `status` with an optional problem (also used for the problem
    /// of a failed asynchronous request, whose `status` member decides).
    pub(crate) fn from_status(
        op: &str,
        status: u16,
        problem: Option<Problem>,
        retry_after: Option<Duration>,
    ) -> Self {
        let op = op.to_string();
        let licenses = problem.as_ref().is_some_and(Problem::is_about_licenses);
        // Boxed: keeps `Result<_, Error>` small on every happy path.
        let problem = problem.map(Box::new);
        match status {
            401 => Error::Auth { problem },
            402 | 403 | 409 | 422 if licenses => Error::NotEnoughLicenses { op, problem },
            403 => Error::Forbidden { op, problem },
            404 | 410 => Error::NotFound { op, problem },
            409 => Error::Conflict { op, problem },
            429 => Error::RateLimited { op, retry_after },
            400..=499 => Error::Rejected {
                op,
                status,
                problem,
            },
            _ => Error::Upstream {
                op,
                status,
                problem,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(status: u16, title: &str, detail: &str) -> Option<Problem> {
        Some(Problem {
            title: Some(title.into()),
            status: Some(status),
            detail: Some(detail.into()),
            ..Problem::default()
        })
    }

    #[test]
    fn statuses_and_problems_classify() {
        let e = Error::from_status("users.add", 409, p(409, "Not enough licenses", "x"), None);
        assert!(matches!(e, Error::NotEnoughLicenses { .. }), "{e}");
        let e = Error::from_status(
            "users.add",
            422,
            p(422, "Unprocessable", "no licences left"),
            None,
        );
        assert!(matches!(e, Error::NotEnoughLicenses { .. }), "{e}");
        let e = Error::from_status(
            "users.add",
            409,
            p(409, "Conflict", "ann@licence.example exists"),
            None,
        );
        assert!(matches!(e, Error::Conflict { .. }), "{e}");
        let e = Error::from_status(
            "users.add",
            409,
            p(409, "Conflict", "No Licenses left."),
            None,
        );
        assert!(matches!(e, Error::NotEnoughLicenses { .. }), "{e}");
        let e = Error::from_status(
            "companies.detach",
            409,
            p(409, "Conflict", "Can't detach without admins."),
            None,
        );
        assert!(matches!(e, Error::Conflict { .. }));
        assert!(
            e.to_string().contains("Can't detach without admins."),
            "{e}"
        );
        assert!(matches!(
            Error::from_status("x", 401, None, None),
            Error::Auth { .. }
        ));
        assert!(matches!(
            Error::from_status("x", 403, None, None),
            Error::Forbidden { .. }
        ));
        assert!(matches!(
            Error::from_status("x", 404, None, None),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            Error::from_status("x", 400, None, None),
            Error::Rejected { status: 400, .. }
        ));
        assert!(matches!(
            Error::from_status("x", 429, None, None),
            Error::RateLimited { .. }
        ));
        assert!(matches!(
            Error::from_status("x", 503, None, None),
            Error::Upstream { status: 503, .. }
        ));
    }

    #[test]
    fn problems_display_their_items() {
        let pr = Problem {
            title: Some("Bad Request".into()),
            detail: Some("One or more validation errors occurred.".into()),
            errors: vec![ProblemItem {
                detail: Some("is required".into()),
                pointer: Some("#/name".into()),
                parameter: None,
            }],
            ..Problem::default()
        };
        assert_eq!(
            pr.to_string(),
            "Bad Request: One or more validation errors occurred. (#/name: is required)"
        );
        let pr: Problem = serde_json::from_str(r#"{"title":"X","errors":null}"#).unwrap();
        assert!(pr.errors.is_empty());
    }
}
