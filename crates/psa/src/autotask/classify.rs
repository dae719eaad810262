//! Turning one Autotask HTTP answer into a verdict: a JSON body, a retry (rate limit or server
//! error), or a classified [`Error`] — reference §3.4, with the quirks of §2.2 and §2.8 (500 for a
//! bad integration code or a missing permission, `errors` inside a 200, `{"Message":…}` bodies).

use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, ErrorKind};

/// Why a request may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryKind {
    /// 429, the thread limit or the hourly threshold: wait (`Retry-After` if sent) and retry.
    RateLimit,
    /// 5xx without a more specific meaning: retry a bounded number of times.
    Server,
}

/// What to do with one answer.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// A 2xx JSON body without `errors`, left unparsed: callers deserialize it into their own
    /// types (no intermediate `Value` for pages of 500 rows).
    Ok(bytes::Bytes),
    /// 404 where the caller accepts it (a missing row).
    NotFound,
    Retry {
        kind: RetryKind,
        after: Option<Duration>,
        error: Error,
    },
    Fail(Error),
}

/// The message texts of an error body: `{"errors":["…"]}`, `{"errors":[{"message":…}]}` or
/// `{"Message":"…"}`.
pub fn messages(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(errs) = v.get("errors").and_then(Value::as_array) {
        for e in errs {
            match e {
                Value::String(s) => out.push(s.clone()),
                Value::Object(o) => {
                    let m = o
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("message"))
                        .and_then(|(_, v)| v.as_str());
                    out.push(m.map_or_else(|| e.to_string(), str::to_string));
                }
                other => out.push(other.to_string()),
            }
        }
    }
    if let Some(m) = v.get("Message").and_then(Value::as_str) {
        out.push(m.to_string());
    }
    out
}

fn snippet(body: &[u8]) -> String {
    crate::snippet(body, 120).replace(['\r', '\n'], " ")
}

/// Just enough of a 2xx body to see whether it carries `errors`; other fields are skipped
/// without being built.
#[derive(serde::Deserialize)]
struct Probe {
    #[serde(default)]
    errors: Option<Value>,
}

/// Classifies one answer. `what` names the call for the error detail (`Companies/query`).
pub fn classify(
    what: &str,
    status: u16,
    retry_after: Option<Duration>,
    body: bytes::Bytes,
    allow_404: bool,
) -> Verdict {
    let err = |kind: ErrorKind, text: &str| {
        Error::new(kind, format!("{what}: HTTP {status}: {text}")).with_status(status)
    };
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<Probe>(&body) {
            Err(_) => Verdict::Fail(err(
                ErrorKind::InvalidResponse,
                &format!("the body is not a JSON object: {}", snippet(&body)),
            )),
            Ok(p) => {
                let msgs = p
                    .errors
                    .map(|e| messages(&serde_json::json!({ "errors": e })))
                    .unwrap_or_default();
                if msgs.is_empty() {
                    Verdict::Ok(body)
                } else {
                    Verdict::Fail(err(
                        ErrorKind::InvalidResponse,
                        &format!("errors inside a successful answer: {}", msgs.join("; ")),
                    ))
                }
            }
        };
    }
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let msgs = json.as_ref().map(messages).unwrap_or_default();
    let joined = msgs.join("; ");
    let lower = joined.to_lowercase();
    let detail = if joined.is_empty() {
        snippet(&body)
    } else {
        joined.clone()
    };
    // The message decides before the status: Autotask says 500 for many client-side problems.
    if lower.contains("does not have the adequate permissions") {
        return Verdict::Fail(err(ErrorKind::Forbidden, &detail));
    }
    if lower.contains("integrationcode is invalid")
        || lower.contains("zone information could not be determined")
        || lower.contains("has been locked")
    {
        return Verdict::Fail(err(ErrorKind::Authentication, &detail));
    }
    if status == 429 || lower.contains("thread threshold") || lower.contains("threshold exceeded") {
        return Verdict::Retry {
            kind: RetryKind::RateLimit,
            after: retry_after,
            error: err(ErrorKind::ServerError, &detail),
        };
    }
    match status {
        401 => Verdict::Fail(err(ErrorKind::Authentication, &detail)),
        403 => Verdict::Fail(err(ErrorKind::Forbidden, &detail)),
        404 if allow_404 => Verdict::NotFound,
        405 => Verdict::Fail(err(
            ErrorKind::InvalidResponse,
            &format!("method not allowed ({detail})"),
        )),
        500..=599 => Verdict::Retry {
            kind: RetryKind::Server,
            after: retry_after,
            error: err(ErrorKind::ServerError, &detail),
        },
        _ => Verdict::Fail(err(ErrorKind::Unknown, &detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, body: &str) -> Option<ErrorKind> {
        match classify(
            "t",
            status,
            None,
            bytes::Bytes::copy_from_slice(body.as_bytes()),
            false,
        ) {
            Verdict::Fail(e) => Some(e.kind),
            Verdict::Retry { error, .. } => Some(error.kind),
            _ => None,
        }
    }

    #[test]
    fn the_reference_table() {
        use ErrorKind::*;
        assert_eq!(
            kind(500, r#"{"errors":["IntegrationCode is invalid."]}"#),
            Some(Authentication)
        );
        assert_eq!(
            kind(
                500,
                r#"{"errors":["Zone information could not be determined"]}"#
            ),
            Some(Authentication)
        );
        assert_eq!(kind(401, ""), Some(Authentication));
        assert_eq!(
            kind(401, r#"{"errors":["Authentication failed"]}"#),
            Some(Authentication)
        );
        assert_eq!(
            kind(
                500,
                r#"{"errors":["The logged in Resource does not have the adequate permissions to query this entity type."]}"#
            ),
            Some(Forbidden)
        );
        assert_eq!(kind(403, "{}"), Some(Forbidden));
        assert_eq!(kind(503, "<html>busy</html>"), Some(ServerError));
        assert_eq!(kind(429, r#"{"errors":["Too many"]}"#), Some(ServerError));
        assert_eq!(kind(200, r#"{"errors":["boom"]}"#), Some(InvalidResponse));
        assert_eq!(kind(200, "<html>"), Some(InvalidResponse));
        assert_eq!(kind(200, r#"{"items":[{"id":1"#), Some(InvalidResponse));
        assert_eq!(
            kind(
                405,
                r#"{"Message":"The requested resource does not support http method 'GET'."}"#
            ),
            Some(InvalidResponse)
        );
        assert_eq!(kind(400, r#"{"errors":["bad"]}"#), Some(Unknown));
        assert_eq!(kind(200, r#"{"items":[],"errors":[]}"#), None);
        assert!(matches!(
            classify("t", 404, None, bytes::Bytes::new(), true),
            Verdict::NotFound
        ));
        assert!(matches!(
            classify(
                "t",
                500,
                None,
                bytes::Bytes::from_static(
                    r#"{"errors":[{"message":"Thread Threshold Exceeded — x"}]}"#.as_bytes()
                ),
                false
            ),
            Verdict::Retry {
                kind: RetryKind::RateLimit,
                ..
            }
        ));
    }
}
