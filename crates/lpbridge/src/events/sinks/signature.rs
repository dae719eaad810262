//! Webhook signatures: how the webhook sink signs a request and how a receiver checks it.
//!
//! The scheme (Stripe-like):
//!
//! ```text
//! X-Lpbridge-Timestamp: <unix seconds when this attempt was sent>
//! X-Lpbridge-Signature: sha256=<lower-case hex of HMAC-SHA256(secret, "<timestamp>.<body>")>
//! ```
//!
//! `<body>` is the raw request body, byte for byte (verify before parsing it: re-serialised JSON
//! does not match). Each attempt is signed afresh with its own timestamp, so a retry after a long
//! backoff is still fresh.
//!
//! A receiver:
//! 1. reads both headers and the raw body;
//! 2. computes `HMAC-SHA256(secret, timestamp + "." + body)` and compares it in constant time
//!    with each `sha256=` entry of the signature header (entries are separated by `,`, so a
//!    sender rotating its secret may send two);
//! 3. refuses a timestamp further than its tolerance (5 minutes is usual) from its own clock,
//!    which bounds replays;
//! 4. de-duplicates on `X-Lpbridge-Delivery` and on each event's `id` (delivery is at least
//!    once).
//!
//! [`verify_signature`] does steps 2 and 3.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use lp_types::Secret;
use sha2::Sha256;

/// The request header holding the signing timestamp (unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Lpbridge-Timestamp";
/// The request header holding `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Lpbridge-Signature";
/// The request header identifying the batch (same value on every retry of it).
pub const DELIVERY_HEADER: &str = "X-Lpbridge-Delivery";
/// The request header counting attempts of this delivery, from 1.
pub const ATTEMPT_HEADER: &str = "X-Lpbridge-Attempt";

/// Why a signature was refused. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("timestamp {0:?} is not a number of unix seconds")]
    BadTimestamp(String),
    #[error("timestamp is {age_secs} s away from now, beyond the tolerance of {tolerance_secs} s")]
    OutsideTolerance { age_secs: u64, tolerance_secs: u64 },
    #[error("signature header has no sha256=<64 hex digits> entry")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
}

fn mac(secret: &Secret, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // Invariant: HMAC takes keys of any length (longer ones are hashed), so this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `X-Lpbridge-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    let tag = mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Checks a webhook request as a receiver would: `timestamp` and `header` are the values of
/// [`TIMESTAMP_HEADER`] and [`SIGNATURE_HEADER`], `body` the raw body, and `tolerance` how far
/// the timestamp may be from this machine's clock (either way). Comparison is constant-time.
pub fn verify_signature(
    secret: &Secret,
    timestamp: &str,
    body: &[u8],
    header: &str,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    verify_signature_at(
        secret,
        timestamp,
        body,
        header,
        tolerance,
        SystemTime::now(),
    )
}

/// [`verify_signature`] against the clock reading `now`.
pub fn verify_signature_at(
    secret: &Secret,
    timestamp: &str,
    body: &[u8],
    header: &str,
    tolerance: Duration,
    now: SystemTime,
) -> Result<(), SignatureError> {
    let ts_text = timestamp.trim();
    let ts: u64 = if !ts_text.is_empty() && ts_text.bytes().all(|b| b.is_ascii_digit()) {
        ts_text
            .parse()
            .map_err(|_| SignatureError::BadTimestamp(lp_types::shown(timestamp).into_owned()))?
    } else {
        return Err(SignatureError::BadTimestamp(
            lp_types::shown(timestamp).into_owned(),
        ));
    };
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let age = now_secs.abs_diff(ts);
    if age > tolerance.as_secs() {
        return Err(SignatureError::OutsideTolerance {
            age_secs: age,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    let expected = mac(secret, ts_text, body);
    let mut any = false;
    for entry in header.split(',') {
        let Some(hex) = entry.trim().strip_prefix("sha256=") else {
            continue;
        };
        let Some(tag) = decode_hex32(hex) else {
            continue;
        };
        any = true;
        if expected.clone().verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    Err(if any {
        SignatureError::Mismatch
    } else {
        SignatureError::Malformed
    })
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(bytes[2 * i])? << 4) | nibble(bytes[2 * i + 1])?;
    }
    Some(out)
}

/// Unix seconds now (0 if the clock is before 1970).
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let s = Secret::new("k");
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let sig = sign(&s, 1_700_000_000, b"{}");
        let tol = Duration::from_secs(300);
        assert_eq!(
            verify_signature_at(&s, "1700000000", b"{}", &sig, tol, now),
            Ok(())
        );
        assert_eq!(
            verify_signature_at(&s, "1700000000", b"{ }", &sig, tol, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature_at(&Secret::new("x"), "1700000000", b"{}", &sig, tol, now),
            Err(SignatureError::Mismatch)
        );
        let rotated = format!("sha256={}, {sig}", "0".repeat(64));
        assert_eq!(
            verify_signature_at(&s, "1700000000", b"{}", &rotated, tol, now),
            Ok(())
        );
        assert!(matches!(
            verify_signature_at(&s, "1699999000", b"{}", &sig, tol, now),
            Err(SignatureError::OutsideTolerance { age_secs: 1000, .. })
        ));
        assert_eq!(
            verify_signature_at(&s, "17e8", b"{}", &sig, tol, now),
            Err(SignatureError::BadTimestamp("17e8".into()))
        );
        assert_eq!(
            verify_signature_at(&s, "1700000000", b"{}", "md5=abc", tol, now),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256(key "secret", "1.{}"), computed independently.
        let sig = sign(&Secret::new("secret"), 1, b"{}");
        assert_eq!(
            sig,
            "sha256=1122767b193110cfec322b6f199b599edbf608ed087f2d27afb0b97d99523908"
        );
    }
}
