//! Status-envelope normalisation: `OK`, `WARN`+`errors`, `FAIL` with a string or array `error`,
//! `errors` plural, `success`, `Success`, no status at all on reads, optional `message` — all
//! become `Ok(())` or one typed [`Error`].

use crate::error::Error;

/// What a decoder knows about the call, for errors: the command and the secret to scrub.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub cmd: &'a str,
    pub secret: Option<&'a str>,
    /// Other secrets the request carried (`password` fields), scrubbed the same way.
    pub passwords: &'a [&'a str],
}

impl<'a> Ctx<'a> {
    pub fn new(cmd: &'a str) -> Self {
        Self {
            cmd,
            secret: None,
            passwords: &[],
        }
    }

    /// Removes every occurrence of the provisioning hash (defence in depth: LastPass has never
    /// been seen echoing it, but an error message or excerpt must never carry it).
    pub fn scrub(&self, s: &str) -> String {
        let mut out = match self.secret {
            Some(secret) if !secret.is_empty() && s.contains(secret) => s.replace(secret, "***"),
            _ => s.to_owned(),
        };
        // A server echoing a rejected password back must not put it into an error either.
        for p in self.passwords {
            if !p.is_empty() && out.contains(p) {
                out = out.replace(p, "***");
            }
        }
        out
    }
}

/// Prefix of `Error::Decode::reason` for bodies that are not well-formed (truncated, empty,
/// HTML from a proxy): such bodies are worth a retry, while a well-formed answer of the wrong
/// shape is not.
pub(crate) const MALFORMED: &str = "malformed body";

/// The maximum excerpt length in characters.
pub(crate) const EXCERPT_CHARS: usize = 120;

/// A short, secret-free excerpt of a body for [`Error::Decode`].
pub(crate) fn excerpt(ctx: &Ctx<'_>, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    let scrubbed = ctx.scrub(&text);
    let mut out: String = scrubbed.chars().take(EXCERPT_CHARS).collect();
    // A secret cut in half by the truncation must not leak its first half either.
    if let Some(secret) = ctx.secret.filter(|s| s.len() >= 8) {
        let max = secret.len().min(out.len());
        for k in (6..max).rev() {
            if secret.is_char_boundary(k) && out.ends_with(&secret[..k]) {
                let cut = out.len() - k;
                out.truncate(cut);
                out.push_str("***");
                break;
            }
        }
    }
    out
}

pub(crate) fn decode_error(ctx: &Ctx<'_>, body: &[u8], reason: impl Into<String>) -> Error {
    Error::Decode {
        cmd: ctx.cmd.to_owned(),
        reason: ctx.scrub(&reason.into()),
        excerpt: excerpt(ctx, body),
    }
}

pub(crate) fn json_error(ctx: &Ctx<'_>, body: &[u8], e: serde_json::Error) -> Error {
    use serde_json::error::Category;
    let reason = match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => format!("{MALFORMED}: {e}"),
        Category::Data => format!("unexpected JSON shape: {e}"),
    };
    decode_error(ctx, body, reason)
}

pub(crate) fn is_malformed(e: &Error) -> bool {
    matches!(e, Error::Decode { reason, .. } if reason.starts_with(MALFORMED))
}

/// Rejects what is not JSON before typed decoding: the XML authorization error becomes
/// [`Error::Auth`] (whatever the HTTP status and content type), other markup or an empty body a
/// malformed-body [`Error::Decode`].
pub(crate) fn sniff(ctx: &Ctx<'_>, body: &[u8]) -> Result<(), Error> {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let mut rest = &body[start..];
    if let Some(r) = rest.strip_prefix(b"\xEF\xBB\xBF".as_slice()) {
        rest = r;
    }
    match rest.first() {
        None => Err(decode_error(ctx, body, format!("{MALFORMED}: empty body"))),
        Some(b'<') => {
            if is_auth_error(rest) {
                Err(Error::Auth)
            } else {
                Err(decode_error(
                    ctx,
                    body,
                    format!("{MALFORMED}: markup instead of JSON"),
                ))
            }
        }
        Some(_) => Ok(()),
    }
}

/// `<lastpass rc="Authorization Error"/>` (tolerating quoting/spacing differences).
pub(crate) fn is_auth_error(body: &[u8]) -> bool {
    let hay = &body[..body.len().min(2048)];
    memfind(hay, b"Authorization Error") || memfind(hay, b"authorization error")
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The normalised status of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// No `status` key (read commands).
    Absent,
    /// `OK`, `success`, `Success`.
    Ok,
    /// `WARN`: partially applied.
    Warn,
    /// `FAIL` (or `error`/`failure`).
    Fail,
    Other(String),
}

impl Status {
    pub fn parse(s: Option<&str>) -> Self {
        let Some(s) = s.map(str::trim) else {
            return Status::Absent;
        };
        match s.to_ascii_lowercase().as_str() {
            "" => Status::Absent,
            "ok" | "success" | "succeeded" | "done" => Status::Ok,
            "warn" | "warning" | "partial" => Status::Warn,
            "fail" | "failed" | "failure" | "error" => Status::Fail,
            _ => Status::Other(s.to_owned()),
        }
    }
}

/// The envelope keys of any answer.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub status: Option<String>,
    /// `error` and `errors` merged, in that order.
    pub errors: Vec<String>,
    pub message: Option<String>,
}

/// Whether the command targets one user (an unknown-user message is then the whole answer) or a
/// batch (a per-item error is a partial success).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    Single(Option<&'a str>),
    Bulk,
}

/// Extracts the user from `No such user: x`, `user not found: x`, `x does not exist`.
pub(crate) fn unknown_user_in(message: &str) -> Option<String> {
    let m = message.trim();
    let lower = m.to_ascii_lowercase();
    let clean = |s: &str| {
        s.trim()
            .trim_matches(|c: char| c == '"' || c == '\'' || c == '.' || c == ':')
            .trim()
            .to_owned()
    };
    for prefix in [
        "no such user",
        "user not found",
        "unknown user",
        "user does not exist",
    ] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let rest = &m[m.len() - rest.len()..];
            return Some(clean(rest));
        }
    }
    for suffix in [" does not exist", " doesn't exist", " not found"] {
        if let Some(head) = lower.strip_suffix(suffix) {
            let head = &m[..head.len()];
            let head = head
                .strip_prefix("User ")
                .or_else(|| head.strip_prefix("user "))
                .unwrap_or(head);
            return Some(clean(head));
        }
    }
    None
}

impl Envelope {
    pub fn check(&self, ctx: &Ctx<'_>, scope: Scope<'_>) -> Result<(), Error> {
        let errors: Vec<String> = self.errors.iter().map(|e| ctx.scrub(e)).collect();
        let unknown = |target: Option<&str>| -> Option<Error> {
            let mut it = errors.iter().filter_map(|e| unknown_user_in(e));
            let first = it.next()?;
            let email = if first.is_empty() {
                target.unwrap_or_default().to_owned()
            } else {
                first
            };
            Some(Error::UnknownUser { email })
        };
        let failed = |status: &str| {
            let message = if errors.is_empty() {
                self.message
                    .as_deref()
                    .map(|m| ctx.scrub(m))
                    .unwrap_or_else(|| format!("status {status:?} without an error message"))
            } else {
                errors.join("; ")
            };
            Error::Failed {
                cmd: ctx.cmd.to_owned(),
                message,
            }
        };
        match Status::parse(self.status.as_deref()) {
            Status::Ok | Status::Absent if errors.is_empty() => {
                if let Some(m) = &self.message {
                    tracing::info!(cmd = ctx.cmd, message = %ctx.scrub(m), "LastPass message");
                }
                Ok(())
            }
            Status::Ok | Status::Warn => Err(match scope {
                Scope::Single(t) if errors.len() == 1 => {
                    unknown(t).unwrap_or_else(|| partial(errors))
                }
                _ => partial(errors),
            }),
            status @ (Status::Absent | Status::Fail) => {
                let label = if status == Status::Fail { "FAIL" } else { "" };
                Err(match scope {
                    Scope::Single(t) => unknown(t).unwrap_or_else(|| failed(label)),
                    Scope::Bulk if errors.len() == 1 => {
                        unknown(None).unwrap_or_else(|| failed(label))
                    }
                    Scope::Bulk => failed(label),
                })
            }
            Status::Other(s) => Err(failed(&s)),
        }
    }
}

fn partial(errors: Vec<String>) -> Error {
    Error::Partial {
        succeeded: Vec::new(),
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_messages() {
        assert_eq!(
            unknown_user_in("No such user: someone@example.com").as_deref(),
            Some("someone@example.com")
        );
        assert_eq!(
            unknown_user_in("user not found: someone@example.com").as_deref(),
            Some("someone@example.com")
        );
        assert_eq!(
            unknown_user_in("user2@lastpass.com does not exist").as_deref(),
            Some("user2@lastpass.com")
        );
        assert_eq!(unknown_user_in("Please select a valid user."), None);
    }

    #[test]
    fn passwords_are_scrubbed_too() {
        let ctx = Ctx {
            cmd: "batchadd",
            secret: Some("provhash-value"),
            passwords: &["hunter2!", "pa55word"],
        };
        assert_eq!(
            ctx.scrub("Invalid password hunter2! for a; provhash-value; pa55word"),
            "Invalid password *** for a; ***; ***"
        );
    }

    #[test]
    fn excerpt_is_short_and_scrubbed() {
        let secret = "0123456789abcdef0123456789abcdef";
        let ctx = Ctx {
            cmd: "x",
            secret: Some(secret),
            passwords: &[],
        };
        let body = format!("oops {secret} {}", "z".repeat(500));
        let e = excerpt(&ctx, body.as_bytes());
        assert!(e.chars().count() <= EXCERPT_CHARS);
        assert!(!e.contains(secret));
        assert!(e.contains("***"));
        // Cut in the middle by truncation.
        let body = format!("{}{secret}", "a".repeat(EXCERPT_CHARS - 10));
        let e = excerpt(&ctx, body.as_bytes());
        assert!(!e.contains(&secret[..10]), "{e}");
    }

    #[test]
    fn statuses() {
        for s in ["OK", "ok", "success", "Success"] {
            assert_eq!(Status::parse(Some(s)), Status::Ok);
        }
        assert_eq!(Status::parse(None), Status::Absent);
        assert_eq!(Status::parse(Some("WARN")), Status::Warn);
        assert_eq!(Status::parse(Some("FAIL")), Status::Fail);
    }
}
