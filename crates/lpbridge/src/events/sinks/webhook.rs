//! The webhook sink: one signed HTTP POST per batch, retried with exponential backoff.
//!
//! # Request
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! User-Agent: lpbridge/<version>
//! X-Lpbridge-Timestamp: <unix seconds>
//! X-Lpbridge-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//! X-Lpbridge-Delivery: <32 hex digits>
//! X-Lpbridge-Attempt: <1, 2, …>
//!
//! {"events":[<EventRecord>, …]}
//! ```
//!
//! One request carries the whole batch (fewer requests than one per event; the batch size is the
//! dispatcher's). [`super::signature`] documents how a receiver verifies the signature.
//!
//! **Idempotency.** `X-Lpbridge-Delivery` is derived from the batch's event ids (the first 128
//! bits of SHA-256 over `lpbridge/delivery/v1` and each id followed by `\n`, in hex), so every
//! retry and every redelivery of the same batch carries the same value. Batches are not
//! guaranteed to be cut the same way after a restart, so receivers that need exactly-once
//! should de-duplicate on each event's `id` as well.
//!
//! # Outcomes
//!
//! - `2xx`: delivered.
//! - Connection errors, timeouts, other transport errors, `408`, `429` and `5xx`: retried, up to
//!   `max_attempts` attempts in all. The wait is `Retry-After` when the response has one
//!   (seconds or an HTTP date, capped at `retry_after_max_secs`), else exponential backoff with
//!   equal jitter: half of `min(backoff_max, backoff_base × 2^(retry-1))` plus a random part up
//!   to the other half.
//! - Anything else (other `4xx`, `3xx`: redirects are not followed, as the signed body must not
//!   go elsewhere): not retried.
//!
//! Giving up returns [`SinkError::DeadLetter`] with the attempts made and the last error, so the
//! caller stores a dead letter. Messages name the URL's origin only: the path or query may hold
//! a token.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use lp_types::Secret;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::config::{WebhookConfig, validate_webhook};
use super::signature::{
    ATTEMPT_HEADER, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, unix_now,
};
use super::{Sink, SinkError};
use crate::events::EventRecord;

/// At most this much of a refusing response's body is quoted in the error.
const BODY_EXCERPT: usize = 256;

pub struct WebhookSink {
    name: String,
    url: url::Url,
    /// `scheme://host:port`, the only part of the URL shown in messages.
    origin: String,
    secret: Secret,
    client: reqwest::Client,
    max_attempts: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    retry_after_max: Duration,
    rng: Mutex<StdRng>,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Body<'a> {
    events: &'a [EventRecord],
}

/// Why one attempt failed.
enum Failure {
    /// Worth another attempt, after `retry_after` if the receiver said so.
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Another attempt would fail the same way.
    Permanent(String),
}

impl WebhookSink {
    /// Validates `config` and builds the HTTP client (no request is sent).
    pub fn new(name: impl Into<String>, config: &WebhookConfig) -> Result<Self, SinkError> {
        let url = validate_webhook(config)?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lpbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SinkError::Http(error_chain(&e.without_url())))?;
        Ok(Self {
            name: name.into(),
            origin: url.origin().ascii_serialization(),
            url,
            secret: config.secret.clone(),
            client,
            max_attempts: config.max_attempts,
            backoff_base: Duration::from_millis(config.backoff_base_ms),
            backoff_max: Duration::from_millis(config.backoff_max_ms),
            retry_after_max: Duration::from_secs(config.retry_after_max_secs),
            rng: Mutex::new(StdRng::from_entropy()),
        })
    }

    /// Makes the backoff jitter deterministic (tests).
    pub fn with_jitter_seed(self, seed: u64) -> Self {
        *self.rng.lock() = StdRng::seed_from_u64(seed);
        self
    }

    /// The wait before retry number `retry` (1 for the first retry), before jitter is drawn.
    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        let d = exp.min(self.backoff_max);
        let half = d / 2;
        let jitter_nanos = self.rng.lock().gen_range(0..=half.as_nanos().max(1));
        half + Duration::from_nanos(u64::try_from(jitter_nanos).unwrap_or(u64::MAX))
    }

    async fn attempt(&self, body: &Bytes, delivery: &str, attempt: u32) -> Result<(), Failure> {
        let timestamp = unix_now();
        let signature = sign(&self.secret, timestamp, body);
        let sent = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, delivery)
            .header(ATTEMPT_HEADER, attempt.to_string())
            .body(body.clone())
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_builder() => {
                return Err(Failure::Permanent(format!(
                    "POST {}: {}",
                    self.origin,
                    error_chain(&e.without_url())
                )));
            }
            // Connect errors, timeouts, resets: transient as far as we can tell.
            Err(e) => {
                return Err(Failure::Retry {
                    message: format!("POST {}: {}", self.origin, error_chain(&e.without_url())),
                    retry_after: None,
                });
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = retry_after(resp.headers());
        let excerpt = excerpt(&mut resp).await;
        let message = format!("POST {}: HTTP {status}{excerpt}", self.origin);
        if status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
        {
            Err(Failure::Retry {
                message,
                retry_after,
            })
        } else if status.is_redirection() {
            Err(Failure::Permanent(format!(
                "{message} (redirects are not followed: configure the final URL)"
            )))
        } else {
            Err(Failure::Permanent(message))
        }
    }
}

impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, batch: &'a [EventRecord]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(());
            }
            let body =
                serde_json::to_vec(&Body { events: batch }).map_err(|e| SinkError::Encode {
                    id: batch.first().map(|r| r.id.to_string()).unwrap_or_default(),
                    message: e.to_string(),
                })?;
            let body = Bytes::from(body);
            let delivery = delivery_id(batch);
            let mut attempts = 0;
            loop {
                attempts += 1;
                let (message, retry_after) = match self.attempt(&body, &delivery, attempts).await {
                    Ok(()) => return Ok(()),
                    Err(Failure::Permanent(last_error)) => {
                        return Err(SinkError::DeadLetter {
                            attempts,
                            last_error,
                        });
                    }
                    Err(Failure::Retry {
                        message,
                        retry_after,
                    }) => (message, retry_after),
                };
                if attempts >= self.max_attempts {
                    return Err(SinkError::DeadLetter {
                        attempts,
                        last_error: message,
                    });
                }
                let wait = match retry_after {
                    Some(d) => d.min(self.retry_after_max),
                    None => self.backoff(attempts),
                };
                tracing::debug!(
                    sink = %self.name,
                    attempt = attempts,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    error = %message,
                    "webhook delivery failed; retrying"
                );
                tokio::time::sleep(wait).await;
            }
        })
    }
}

/// The `X-Lpbridge-Delivery` value of `batch` (module docs).
pub fn delivery_id(batch: &[EventRecord]) -> String {
    let mut h = Sha256::new();
    h.update(b"lpbridge/delivery/v1");
    for r in batch {
        h.update(r.id.to_string().as_bytes());
        h.update(b"\n");
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `Retry-After` as a wait: delta-seconds, or an HTTP date (a past date is no wait).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// `": <start of the body>"` for error messages, or nothing. Reads at most a few chunks.
async fn excerpt(resp: &mut reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < BODY_EXCERPT {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    let cut = buf.len() > BODY_EXCERPT;
    buf.truncate(BODY_EXCERPT);
    let text: String = String::from_utf8_lossy(&buf)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else if cut {
        format!(": {text}…")
    } else {
        format!(": {text}")
    }
}

/// `e` and its sources, `: `-separated (reqwest's own message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        src = s.source();
    }
    out
}
