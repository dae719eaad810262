//! Sink configuration: what an operator writes (TOML or JSON), its defaults and its validation.
//!
//! One sink is a table tagged by `type`:
//!
//! ```toml
//! [[sinks]]
//! type = "stdout"
//!
//! [[sinks]]
//! type = "file"
//! path = "/var/lib/lpbridge/events.jsonl"
//! max_bytes = 104857600      # rotate before the file would exceed this (default 100 MiB)
//! keep = 5                   # rotated files kept: events.jsonl.1 … .5 (default 5; 0 keeps none)
//!
//! [[sinks]]
//! type = "webhook"
//! url = "https://siem.example.com/lastpass"
//! secret = "…"               # HMAC key; never printed
//! max_attempts = 8           # per batch, then a dead letter (default 8)
//! timeout_secs = 10          # per request (default 10)
//! backoff_base_ms = 500      # first retry waits about this long, doubling (default 500)
//! backoff_max_ms = 60000     # cap of one backoff wait (default 60 s)
//! retry_after_max_secs = 600 # cap of an honoured Retry-After (default 600)
//!
//! [[sinks]]
//! type = "nats"
//! url = "nats://127.0.0.1:4222"  # default; several servers: "nats://a:4222,nats://b:4222"
//! subject = "lastpass.events"
//! stream = "LASTPASS_EVENTS"     # optional: created (capturing `subject`) when absent
//! ```
//!
//! Every variant also takes an optional `name`: the key under which the dispatcher remembers
//! the sink's delivery position. Without it the name is derived from the target
//! ([`SinkConfig::name`]), so changing the target starts a new sink.
//!
//! Parsing checks the shape (unknown `type` or field → an error naming it); [`SinkConfig::validate`]
//! checks the values. Neither ever shows the webhook secret: [`Secret`] prints `***`, and
//! passwords in URLs are replaced by `***` in messages.

use std::path::PathBuf;

use lp_types::{InvalidValue, Secret};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

/// Default `file.max_bytes`: 100 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Default `file.keep`.
pub const DEFAULT_KEEP: u32 = 5;
/// Default `webhook.max_attempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Default `webhook.timeout_secs`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;
/// Default `webhook.backoff_base_ms`.
pub const DEFAULT_BACKOFF_BASE_MS: u64 = 500;
/// Default `webhook.backoff_max_ms`.
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 60_000;
/// Default `webhook.retry_after_max_secs`.
pub const DEFAULT_RETRY_AFTER_MAX_SECS: u64 = 600;
/// Default `nats.url`.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// Upper bounds that catch typos (`keep = 50000`) rather than express policy.
const MAX_KEEP: u32 = 1000;
const MAX_ATTEMPTS_LIMIT: u32 = 100;
const MAX_NAME_CHARS: usize = 100;

const TYPES: &str = "stdout, file, webhook or nats";

/// A refused sink configuration. Names the field and the value; never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkConfigError {
    /// `type` is not one of the known sink types.
    #[error("sink type {0:?} is unknown: expected stdout, file, webhook or nats")]
    UnknownType(String),
    /// A field's value is refused.
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// Two sinks share a name, so their delivery positions would collide.
    #[error("sink name {0:?} is used by more than one sink: names must be unique")]
    DuplicateName(String),
}

/// One configured sink (see the module docs for the format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    /// JSON Lines on standard output.
    Stdout(StdoutConfig),
    /// JSON Lines appended to a rotating file.
    File(FileConfig),
    /// Signed HTTP POSTs of whole batches.
    Webhook(WebhookConfig),
    /// JetStream publishes, de-duplicated by event id.
    Nats(NatsConfig),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// The active file; rotated files are `<path>.1` (newest) … `<path>.<keep>`.
    pub path: PathBuf,
    /// Rotate before a write would make the active file larger than this. A single record
    /// larger than this still goes whole into a file of its own.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept; 0 discards the active file's content at rotation.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// `http` or `https`. May carry basic-auth credentials; redirects are not followed.
    pub url: String,
    /// The HMAC-SHA256 key of `X-Lpbridge-Signature`.
    pub secret: Secret,
    /// Attempts per batch (the first included) before the batch becomes a dead letter.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Per request: connecting, sending and reading the response.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The wait before the first retry, doubled for each further one (with jitter).
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// The longest one backoff wait may be.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// A receiver's `Retry-After` is honoured up to this many seconds.
    #[serde(default = "default_retry_after_max_secs")]
    pub retry_after_max_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// One server URL (`nats://` or `tls://`), or several separated by commas.
    #[serde(default = "default_nats_url")]
    pub url: String,
    /// The subject every event is published on.
    pub subject: String,
    /// A JetStream stream capturing `subject`, created when absent. Without it a stream must
    /// already capture `subject`.
    #[serde(default)]
    pub stream: Option<String>,
}

fn default_max_bytes() -> u64 {
    DEFAULT_MAX_BYTES
}
fn default_keep() -> u32 {
    DEFAULT_KEEP
}
fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}
fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}
fn default_backoff_base_ms() -> u64 {
    DEFAULT_BACKOFF_BASE_MS
}
fn default_backoff_max_ms() -> u64 {
    DEFAULT_BACKOFF_MAX_MS
}
fn default_retry_after_max_secs() -> u64 {
    DEFAULT_RETRY_AFTER_MAX_SECS
}
fn default_nats_url() -> String {
    DEFAULT_NATS_URL.to_owned()
}

impl FileConfig {
    /// A file sink at `path` with the default rotation.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            name: None,
            path: path.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
        }
    }
}

impl WebhookConfig {
    /// A webhook sink with the default retry policy.
    pub fn new(url: impl Into<String>, secret: Secret) -> Self {
        Self {
            name: None,
            url: url.into(),
            secret,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            backoff_base_ms: DEFAULT_BACKOFF_BASE_MS,
            backoff_max_ms: DEFAULT_BACKOFF_MAX_MS,
            retry_after_max_secs: DEFAULT_RETRY_AFTER_MAX_SECS,
        }
    }
}

impl NatsConfig {
    /// A NATS sink on the default server, without stream creation.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            name: None,
            url: default_nats_url(),
            subject: subject.into(),
            stream: None,
        }
    }
}

impl<'de> Deserialize<'de> for SinkConfig {
    /// Hand-written so an unknown `type` is reported in our words (serde's internally tagged
    /// enums say "unknown variant"), and so a mistyped secret is never echoed.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let ty = match map.remove("type") {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "sink type {other} is not a string: expected {TYPES}"
                )));
            }
            None => {
                return Err(D::Error::custom(format!(
                    "missing field `type`: expected {TYPES}"
                )));
            }
        };
        if ty == "webhook" && map.get("secret").is_some_and(|s| !s.is_string()) {
            // serde's own message would quote the value ("invalid type: integer `1234`").
            return Err(D::Error::custom("webhook sink: secret must be a string"));
        }
        let rest = serde_json::Value::Object(map);
        match ty.as_str() {
            "stdout" => variant::<_, D::Error>(&ty, rest).map(Self::Stdout),
            "file" => variant::<_, D::Error>(&ty, rest).map(Self::File),
            "webhook" => variant::<_, D::Error>(&ty, rest).map(Self::Webhook),
            "nats" => variant::<_, D::Error>(&ty, rest).map(Self::Nats),
            _ => Err(D::Error::custom(SinkConfigError::UnknownType(ty))),
        }
    }
}

fn variant<T: DeserializeOwned, E: serde::de::Error>(
    ty: &str,
    v: serde_json::Value,
) -> Result<T, E> {
    serde_json::from_value(v).map_err(|e| E::custom(format!("{ty} sink: {e}")))
}

impl SinkConfig {
    /// The sink type as written in `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stdout(_) => "stdout",
            Self::File(_) => "file",
            Self::Webhook(_) => "webhook",
            Self::Nats(_) => "nats",
        }
    }

    /// The configured `name`, or one derived from the target: `stdout`, `file:<path>`,
    /// `webhook:<scheme://host:port>#<8 hex digits of SHA-256 of the URL>` (the URL itself may
    /// hold a token, so only its origin is shown), `nats:<subject>`.
    pub fn name(&self) -> String {
        let explicit = match self {
            Self::Stdout(c) => &c.name,
            Self::File(c) => &c.name,
            Self::Webhook(c) => &c.name,
            Self::Nats(c) => &c.name,
        };
        if let Some(n) = explicit {
            return n.clone();
        }
        match self {
            Self::Stdout(_) => "stdout".to_owned(),
            Self::File(c) => format!("file:{}", c.path.display()),
            Self::Webhook(c) => {
                let digest = Sha256::digest(c.url.as_bytes());
                let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
                let origin = url::Url::parse(&c.url)
                    .map(|u| u.origin().ascii_serialization())
                    .unwrap_or_else(|_| "invalid-url".to_owned());
                format!("webhook:{origin}#{short}")
            }
            Self::Nats(c) => format!("nats:{}", c.subject),
        }
    }

    /// Checks the values: the webhook URL is http(s) and parses, the secret is not empty, the
    /// file path names a file, the NATS subject is a literal subject (no spaces or wildcards),
    /// counts and durations are in range.
    pub fn validate(&self) -> Result<(), SinkConfigError> {
        let name = match self {
            Self::Stdout(c) => &c.name,
            Self::File(c) => &c.name,
            Self::Webhook(c) => &c.name,
            Self::Nats(c) => &c.name,
        };
        if let Some(n) = name {
            validate_name(n)?;
        }
        match self {
            Self::Stdout(_) => Ok(()),
            Self::File(c) => validate_file(c),
            Self::Webhook(c) => validate_webhook(c).map(|_| ()),
            Self::Nats(c) => validate_nats(c).map(|_| ()),
        }
    }

    /// [`SinkConfig::validate`] for each, and names (explicit or derived) unique.
    pub fn validate_all(configs: &[SinkConfig]) -> Result<(), SinkConfigError> {
        let mut seen = std::collections::HashSet::new();
        for c in configs {
            c.validate()?;
            let name = c.name();
            if !seen.insert(name.clone()) {
                return Err(SinkConfigError::DuplicateName(name));
            }
        }
        Ok(())
    }
}

fn invalid(
    field: &'static str,
    value: impl Into<String>,
    reason: impl Into<String>,
) -> SinkConfigError {
    SinkConfigError::Invalid(InvalidValue::new(field, value, reason))
}

fn validate_name(name: &str) -> Result<(), SinkConfigError> {
    if name.trim().is_empty() {
        return Err(invalid("sink name", name, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(invalid(
            "sink name",
            name,
            format!("expected at most {MAX_NAME_CHARS} characters, no control characters"),
        ));
    }
    Ok(())
}

fn validate_file(c: &FileConfig) -> Result<(), SinkConfigError> {
    let shown = c.path.display().to_string();
    if c.path.as_os_str().is_empty() {
        return Err(invalid("file path", shown, "must not be empty"));
    }
    // `dir/` or `..` name no file to append to (and rotation appends `.1` to the name).
    if c.path.file_name().is_none() || shown.ends_with('/') || shown.ends_with('\\') {
        return Err(invalid(
            "file path",
            shown,
            "must name a file, not a directory",
        ));
    }
    if c.max_bytes == 0 {
        return Err(invalid("file max_bytes", "0", "must be at least 1"));
    }
    if c.keep > MAX_KEEP {
        return Err(invalid(
            "file keep",
            c.keep.to_string(),
            format!("must be at most {MAX_KEEP}"),
        ));
    }
    Ok(())
}

/// Validates and returns the parsed URL.
pub(super) fn validate_webhook(c: &WebhookConfig) -> Result<url::Url, SinkConfigError> {
    let url = match url::Url::parse(&c.url) {
        Ok(u) => u,
        Err(e) => {
            return Err(invalid(
                "webhook url",
                c.url.clone(),
                format!("not a URL: {e}"),
            ));
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            "webhook url",
            shown_url(&c.url, &url),
            "expected an http or https URL",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(
            "webhook url",
            shown_url(&c.url, &url),
            "has no host",
        ));
    }
    if c.secret.is_empty() {
        return Err(invalid("webhook secret", "", "must not be empty"));
    }
    if c.max_attempts == 0 || c.max_attempts > MAX_ATTEMPTS_LIMIT {
        return Err(invalid(
            "webhook max_attempts",
            c.max_attempts.to_string(),
            format!("expected 1 to {MAX_ATTEMPTS_LIMIT}"),
        ));
    }
    if c.timeout_secs == 0 {
        return Err(invalid("webhook timeout_secs", "0", "must be at least 1"));
    }
    if c.backoff_base_ms == 0 {
        return Err(invalid(
            "webhook backoff_base_ms",
            "0",
            "must be at least 1",
        ));
    }
    if c.backoff_max_ms < c.backoff_base_ms {
        return Err(invalid(
            "webhook backoff_max_ms",
            c.backoff_max_ms.to_string(),
            format!("must be at least backoff_base_ms ({})", c.backoff_base_ms),
        ));
    }
    Ok(url)
}

/// Validates and returns the server list.
pub(super) fn validate_nats(c: &NatsConfig) -> Result<Vec<String>, SinkConfigError> {
    let servers: Vec<String> = c.url.split(',').map(|s| s.trim().to_owned()).collect();
    for s in &servers {
        let url = if s.contains("://") {
            url::Url::parse(s)
        } else {
            url::Url::parse(&format!("nats://{s}"))
        };
        let shown = url.as_ref().map_or_else(|_| s.clone(), |u| shown_url(s, u));
        match url {
            Err(e) => return Err(invalid("nats url", shown, format!("not a URL: {e}"))),
            Ok(u) if !matches!(u.scheme(), "nats" | "tls") => {
                return Err(invalid(
                    "nats url",
                    shown,
                    "expected a nats:// or tls:// URL",
                ));
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                return Err(invalid("nats url", shown, "has no host"));
            }
            Ok(_) => {}
        }
    }
    let subject = &c.subject;
    if subject.is_empty() {
        return Err(invalid("nats subject", "", "must not be empty"));
    }
    if subject
        .chars()
        .any(|ch| ch.is_whitespace() || ch.is_control())
    {
        return Err(invalid(
            "nats subject",
            subject.clone(),
            "must not contain spaces",
        ));
    }
    if subject
        .split('.')
        .any(|t| t == "*" || t == ">" || t.contains(['*', '>']))
    {
        return Err(invalid(
            "nats subject",
            subject.clone(),
            "must not contain wildcards (* or >): events are published on one literal subject",
        ));
    }
    if subject.split('.').any(str::is_empty) {
        return Err(invalid(
            "nats subject",
            subject.clone(),
            "must not have empty tokens (a leading, trailing or doubled '.')",
        ));
    }
    if let Some(stream) = &c.stream {
        // JetStream stream names become subject tokens and file names.
        if stream.is_empty()
            || stream
                .chars()
                .any(|ch| ch.is_whitespace() || ch.is_control() || ".*>/\\".contains(ch))
        {
            return Err(invalid(
                "nats stream",
                stream.clone(),
                "must be non-empty, without spaces, '.', '*', '>', '/' or '\\'",
            ));
        }
    }
    Ok(servers)
}

/// The URL as written, or with its password replaced by `***` if it has one.
fn shown_url(raw: &str, parsed: &url::Url) -> String {
    if parsed.password().is_some() {
        redact_url(parsed)
    } else {
        raw.to_owned()
    }
}

/// `url` with any password replaced by `***`, for messages.
fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}
