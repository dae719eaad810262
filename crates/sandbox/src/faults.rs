//! Fault injection and built-in limits in front of an emulated service.
//!
//! [`layer`] wraps any [`Router`] in a middleware that buffers the request body, reads the
//! LastPass envelope's `cmd` and `cid` (JSON or form-encoded; `cid` as number or string), puts the
//! body back and then, in this order:
//!
//! 1. counts the request (per `cid`, per `cmd`; see [`Stats`]);
//! 2. applies the optional per-account request-rate limit (token bucket per `cid`, HTTP 429);
//! 3. evaluates the fault rules in the order they were added: every matching `latency` rule that
//!    fires delays the request, the first other rule that fires decides the answer (an HTTP
//!    status, a dropped connection, or the real answer truncated / replaced by garbage).
//!
//! Probabilities are drawn from one seeded RNG ([`Faults::new`]), so a single-threaded test sees
//! the same sequence of faults on every run. A rule with a `count` applies to the next `count`
//! requests it fires on and is then removed.
//!
//! Answers produced here carry `Content-Type: text/xml;charset=UTF-8`, like every LastPass answer.
//! The syntax of [`FaultRule::from_str`] (used by `lpbridge sandbox --fault`) is documented in
//! `crates/sandbox/CONTROL.md`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::lastpass::{SandboxError, wire};

/// The content type of every LastPass answer, JSON or not.
pub const LASTPASS_CONTENT_TYPE: &str = "text/xml;charset=UTF-8";

/// Largest request body the middleware buffers (64 MiB).
const MAX_REQUEST_BODY: usize = 64 * 1024 * 1024;

/// Distinct command names counted before the rest go to `"(other)"`.
const MAX_CMD_KEYS: usize = 256;

/// Longer command names are counted under `"(other)"` (no real command comes close).
const MAX_CMD_LEN: usize = 64;

/// Garbage served by the `malformed` fault: not JSON, not XML, not UTF-8.
pub(crate) const MALFORMED_BODY: &[u8] =
    b"{\"status\":\"OK\",\"Users\":{\x00\xff\xfe<html><body>502 Bad Gateway</b";

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this HTTP status (e.g. 429, 500, 503) and a short XML body instead of calling
    /// the emulator.
    Status { status: u16 },
    /// Abort the connection without an answer.
    Drop,
    /// Delay the request by `min_ms` (or by a uniform draw from `min_ms..=max_ms`), then go on.
    Latency {
        min_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_ms: Option<u64>,
    },
    /// Serve the real answer cut in half (at least one byte removed).
    Truncate,
    /// Serve garbage bytes with status 200 instead of the real answer.
    Malformed,
}

fn one() -> f64 {
    1.0
}

/// One fault rule: which requests it matches, what it does, how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Command name (`getuserdata`, …); `None` or `"*"` matches every command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Only requests for this account; `None` matches every account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<u64>,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Chance that a matching request is faulted, in `[0, 1]` (default 1).
    #[serde(default = "one")]
    pub probability: f64,
    /// Fault only the next `count` requests it fires on, then disappear (`None`: forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl FaultRule {
    /// A rule that always fires on every request matching `cmd` (`"*"` for any).
    pub fn new(cmd: &str, kind: FaultKind) -> Self {
        Self {
            cmd: (cmd != "*").then(|| cmd.to_string()),
            cid: None,
            kind,
            probability: 1.0,
            count: None,
        }
    }

    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }

    pub fn cid(mut self, cid: u64) -> Self {
        self.cid = Some(cid);
        self
    }

    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), SandboxError> {
        if !(0.0..=1.0).contains(&self.probability) || self.probability.is_nan() {
            return Err(SandboxError::invalid(
                "probability",
                self.probability.to_string(),
                "must be between 0 and 1",
            ));
        }
        match self.kind {
            FaultKind::Status { status } if !(400..=599).contains(&status) => {
                return Err(SandboxError::invalid(
                    "status",
                    status.to_string(),
                    "must be an HTTP error status (400-599)",
                ));
            }
            FaultKind::Latency {
                min_ms,
                max_ms: Some(max),
            } if max < min_ms => {
                return Err(SandboxError::invalid(
                    "max_ms",
                    max.to_string(),
                    format!("must not be below min_ms ({min_ms})"),
                ));
            }
            FaultKind::Latency { min_ms, max_ms } if min_ms.max(max_ms.unwrap_or(0)) > 600_000 => {
                return Err(SandboxError::invalid(
                    "max_ms",
                    min_ms.max(max_ms.unwrap_or(0)).to_string(),
                    "latency is capped at 600000 ms",
                ));
            }
            _ => {}
        }
        if let Some(cmd) = &self.cmd
            && (cmd.is_empty() || cmd.contains(char::is_whitespace))
        {
            return Err(SandboxError::invalid(
                "cmd",
                cmd.clone(),
                "must be a command name or \"*\"",
            ));
        }
        Ok(())
    }

    fn matches(&self, cmd: Option<&str>, cid: Option<u64>) -> bool {
        let cmd_ok = match self.cmd.as_deref() {
            None | Some("*") => true,
            Some(want) => cmd == Some(want),
        };
        let cid_ok = match self.cid {
            None => true,
            Some(want) => cid == Some(want),
        };
        cmd_ok && cid_ok
    }
}

fn parse_ms(s: &str, default_unit_ms: u64) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else {
        (s, default_unit_ms)
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some((v * mult as f64).round() as u64)
}

fn parse_kind(s: &str, whole: &str) -> Result<FaultKind, SandboxError> {
    let bad = |reason: &str| {
        SandboxError::invalid("fault", whole.to_string(), format!("{reason} (kind {s:?})"))
    };
    match s {
        "drop" => return Ok(FaultKind::Drop),
        "truncate" | "truncated" => return Ok(FaultKind::Truncate),
        "malformed" | "garbage" => return Ok(FaultKind::Malformed),
        _ => {}
    }
    if let Some(rest) = s.strip_prefix("latency=") {
        let (a, b) = match rest.split_once("..") {
            Some((a, b)) => (a, Some(b)),
            None => (rest, None),
        };
        // A unit on the upper bound applies to a bare lower bound too ("50..200ms").
        let unit = match b.unwrap_or(a).trim() {
            t if t.ends_with("ms") => 1,
            t if t.ends_with('s') => 1000,
            _ => 1,
        };
        let min_ms =
            parse_ms(a, unit).ok_or_else(|| bad("latency must look like 50ms or 50..200ms"))?;
        let max_ms = match b {
            Some(b) => Some(
                parse_ms(b, unit).ok_or_else(|| bad("latency must look like 50ms or 50..200ms"))?,
            ),
            None => None,
        };
        return Ok(FaultKind::Latency { min_ms, max_ms });
    }
    if let Ok(status) = s.parse::<u16>() {
        return Ok(FaultKind::Status { status });
    }
    Err(bad(
        "unknown kind; expected an HTTP status (429, 500, 503…), drop, truncate, malformed or latency=MIN[..MAX]ms",
    ))
}

/// Parses `CMD[@CID]:KIND[:PROBABILITY[:COUNT]]`, e.g. `getuserdata:429:0.1`,
/// `*:latency=50..200ms:1.0`, `reporting@8771312:drop:1:3`, `getsfdata:truncate`.
impl FromStr for FaultRule {
    type Err = SandboxError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() < 2 || parts.len() > 4 {
            return Err(SandboxError::invalid(
                "fault",
                spec,
                "expected CMD[@CID]:KIND[:PROBABILITY[:COUNT]], e.g. getuserdata:429:0.1",
            ));
        }
        let (cmd, cid) = match parts[0].split_once('@') {
            Some((cmd, cid)) => {
                let cid = cid.parse::<u64>().map_err(|_| {
                    SandboxError::invalid("fault", spec, format!("cid {cid:?} is not a number"))
                })?;
                (cmd, Some(cid))
            }
            None => (parts[0], None),
        };
        if cmd.is_empty() {
            return Err(SandboxError::invalid(
                "fault",
                spec,
                "empty command (use * for any)",
            ));
        }
        let kind = parse_kind(parts[1], spec)?;
        let probability = match parts.get(2) {
            Some(p) => p.parse::<f64>().map_err(|_| {
                SandboxError::invalid("fault", spec, format!("probability {p:?} is not a number"))
            })?,
            None => 1.0,
        };
        let count = match parts.get(3) {
            Some(c) => Some(c.parse::<u64>().map_err(|_| {
                SandboxError::invalid("fault", spec, format!("count {c:?} is not a whole number"))
            })?),
            None => None,
        };
        let rule = FaultRule {
            cid,
            probability,
            count,
            ..FaultRule::new(cmd, kind)
        };
        rule.validate().map_err(|e| match e {
            SandboxError::Invalid { reason, field, .. } => {
                SandboxError::invalid("fault", spec, format!("{field}: {reason}"))
            }
            other => other,
        })?;
        Ok(rule)
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cmd.as_deref().unwrap_or("*"))?;
        if let Some(cid) = self.cid {
            write!(f, "@{cid}")?;
        }
        match &self.kind {
            FaultKind::Status { status } => write!(f, ":{status}")?,
            FaultKind::Drop => write!(f, ":drop")?,
            FaultKind::Truncate => write!(f, ":truncate")?,
            FaultKind::Malformed => write!(f, ":malformed")?,
            FaultKind::Latency {
                min_ms,
                max_ms: None,
            } => write!(f, ":latency={min_ms}ms")?,
            FaultKind::Latency {
                min_ms,
                max_ms: Some(max),
            } => write!(f, ":latency={min_ms}..{max}ms")?,
        }
        write!(f, ":{}", self.probability)?;
        if let Some(c) = self.count {
            write!(f, ":{c}")?;
        }
        Ok(())
    }
}

/// Fault rules and limits a sandbox starts with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FaultConfig {
    pub rules: Vec<FaultRule>,
    /// Seed of the RNG that decides probabilistic faults and latency draws.
    pub seed: u64,
    /// Per-account request-rate limit (requests per second, burst of the same size, at least 1);
    /// over it the answer is HTTP 429.
    pub rate_limit_rps: Option<f64>,
}

/// A rule as installed, with its id and how often it fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveRule {
    pub id: u64,
    #[serde(flatten)]
    pub rule: FaultRule,
    /// How many requests this rule has faulted so far.
    pub fired: u64,
}

/// Request counters for one account or one command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Requests seen (faulted or not).
    pub requests: u64,
    /// Requests answered by a fault (status, drop, truncate, malformed; latency not counted).
    pub faulted: u64,
    /// Requests refused by the per-account rate limit.
    pub rate_limited: u64,
}

impl Counter {
    fn add(&mut self, outcome: Outcome) {
        self.requests += 1;
        match outcome {
            Outcome::Passed => {}
            Outcome::Faulted => self.faulted += 1,
            Outcome::RateLimited => self.rate_limited += 1,
        }
    }
}

/// What the middleware saw since the last reset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub total: Counter,
    /// Keyed by the `cmd` field (`"?"` when the body had none; `"(other)"` past 256 names or
    /// for names over 64 bytes).
    pub by_cmd: BTreeMap<String, Counter>,
    /// Keyed by the `cid` field (requests without a readable cid are only in `total`).
    pub by_cid: BTreeMap<u64, Counter>,
    /// Requests delayed by a latency rule.
    pub delayed: u64,
}

impl Stats {
    /// Requests seen for `cmd` (0 if none).
    pub fn requests_for(&self, cmd: &str) -> u64 {
        self.by_cmd.get(cmd).map_or(0, |c| c.requests)
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    Passed,
    Faulted,
    RateLimited,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Inner {
    rules: Mutex<Vec<ActiveRule>>,
    next_id: AtomicU64,
    rng: Mutex<ChaCha8Rng>,
    seed: Mutex<u64>,
    stats: Mutex<Stats>,
    rate_limit: Mutex<Option<f64>>,
    buckets: Mutex<HashMap<u64, Bucket>>,
}

/// Shared fault state: rules, RNG, rate limiter and counters. Cheap to clone.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults")
            .field("rules", &*self.inner.rules.lock())
            .field("rate_limit_rps", &*self.inner.rate_limit.lock())
            .finish()
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self::new(FaultConfig::default())
    }
}

/// What [`Faults::judge`] decided for one request of another surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Serve it.
    Pass,
    /// Over the per-account rate limit: HTTP 429.
    RateLimited,
    /// Answer with this status instead of serving.
    Status(u16),
    /// Abort the connection.
    Drop,
    /// Serve, then cut the body in half.
    Truncate,
    /// Answer garbage with status 200.
    Malformed,
}

/// Decision for one request.
enum Action {
    Pass,
    Status(u16),
    Drop,
    Truncate,
    Malformed,
}

impl Faults {
    /// Installs the configured rules (invalid ones are refused by [`FaultConfig`] users via
    /// [`FaultRule::validate`]; here they are taken as given).
    pub fn new(config: FaultConfig) -> Self {
        let faults = Self {
            inner: Arc::new(Inner {
                rules: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
                rng: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed)),
                seed: Mutex::new(config.seed),
                stats: Mutex::new(Stats::default()),
                rate_limit: Mutex::new(config.rate_limit_rps),
                buckets: Mutex::new(HashMap::new()),
            }),
        };
        for rule in config.rules {
            faults.add(rule);
        }
        faults
    }

    /// Adds a rule at the end of the list; returns its id.
    pub fn add(&self, rule: FaultRule) -> u64 {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .rules
            .lock()
            .push(ActiveRule { id, rule, fired: 0 });
        id
    }

    /// Removes one rule; `false` if there was none with this id.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = self.inner.rules.lock();
        let before = rules.len();
        rules.retain(|r| r.id != id);
        rules.len() != before
    }

    /// Removes every rule (the rate limit stays).
    pub fn clear(&self) {
        self.inner.rules.lock().clear();
    }

    /// The installed rules; a rule with a `count` shows how many firings remain.
    pub fn rules(&self) -> Vec<ActiveRule> {
        self.inner.rules.lock().clone()
    }

    /// Restarts the RNG from `seed`.
    pub fn reseed(&self, seed: u64) {
        *self.inner.rng.lock() = ChaCha8Rng::seed_from_u64(seed);
        *self.inner.seed.lock() = seed;
    }

    pub fn seed(&self) -> u64 {
        *self.inner.seed.lock()
    }

    /// Sets (or with `None` lifts) the per-account request-rate limit.
    pub fn set_rate_limit(&self, rps: Option<f64>) {
        *self.inner.rate_limit.lock() = rps.filter(|r| *r > 0.0 && r.is_finite());
        self.inner.buckets.lock().clear();
    }

    pub fn rate_limit(&self) -> Option<f64> {
        *self.inner.rate_limit.lock()
    }

    pub fn stats(&self) -> Stats {
        self.inner.stats.lock().clone()
    }

    pub fn reset_stats(&self) {
        *self.inner.stats.lock() = Stats::default();
    }

    fn record(&self, cmd: Option<&str>, cid: Option<u64>, outcome: Outcome, delayed: bool) {
        let mut s = self.inner.stats.lock();
        s.total.add(outcome);
        // Command names come from clients: keep the map bounded, in entries and in key size.
        let key = match cmd {
            None => "?",
            Some(c) if c.len() > MAX_CMD_LEN => "(other)",
            Some(c) if s.by_cmd.len() >= MAX_CMD_KEYS && !s.by_cmd.contains_key(c) => "(other)",
            Some(c) => c,
        };
        // The key is allocated only the first time a command is seen.
        match s.by_cmd.get_mut(key) {
            Some(c) => c.add(outcome),
            None => s.by_cmd.entry(key.to_owned()).or_default().add(outcome),
        }
        if let Some(cid) = cid {
            s.by_cid.entry(cid).or_default().add(outcome);
        }
        if delayed {
            s.delayed += 1;
        }
    }

    /// Takes a token for `cid`; `false` means over the limit.
    fn admit(&self, cid: u64) -> bool {
        let Some(rps) = *self.inner.rate_limit.lock() else {
            return true;
        };
        let burst = rps.max(1.0);
        let now = Instant::now();
        let mut buckets = self.inner.buckets.lock();
        let b = buckets.entry(cid).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rps).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// One request of a surface other than the Enterprise API (the MSP REST API reuses the
    /// rules, the RNG, the per-account rate limit and the counters, keyed by operation name
    /// instead of `cmd`): counts it, applies the rate limit for `account`, evaluates the rules.
    /// Returns the latency to wait before answering and what to answer.
    pub(crate) fn judge(&self, key: &str, account: Option<u64>) -> (Duration, Verdict) {
        if let Some(a) = account
            && !self.admit(a)
        {
            self.record(Some(key), account, Outcome::RateLimited, false);
            return (Duration::ZERO, Verdict::RateLimited);
        }
        let (latency, action) = self.decide(Some(key), account);
        let verdict = match action {
            Action::Pass => Verdict::Pass,
            Action::Status(s) => Verdict::Status(s),
            Action::Drop => Verdict::Drop,
            Action::Truncate => Verdict::Truncate,
            Action::Malformed => Verdict::Malformed,
        };
        let outcome = if verdict == Verdict::Pass {
            Outcome::Passed
        } else {
            Outcome::Faulted
        };
        self.record(Some(key), account, outcome, !latency.is_zero());
        (latency, verdict)
    }

    /// Decides what happens to one request: the total latency to add and the final action.
    fn decide(&self, cmd: Option<&str>, cid: Option<u64>) -> (Duration, Action) {
        let mut rules = self.inner.rules.lock();
        if rules.is_empty() {
            return (Duration::ZERO, Action::Pass);
        }
        let mut rng = self.inner.rng.lock();
        let mut latency = Duration::ZERO;
        let mut action = Action::Pass;
        let mut exhausted = false;
        for r in rules.iter_mut() {
            if r.rule.count == Some(0) || !r.rule.matches(cmd, cid) {
                continue;
            }
            let is_latency = matches!(r.rule.kind, FaultKind::Latency { .. });
            if !is_latency && !matches!(action, Action::Pass) {
                continue;
            }
            let p = r.rule.probability;
            let fires = if p >= 1.0 {
                true
            } else if p <= 0.0 {
                false
            } else {
                rng.r#gen::<f64>() < p
            };
            if !fires {
                continue;
            }
            r.fired += 1;
            if let Some(c) = r.rule.count.as_mut() {
                *c -= 1;
                exhausted |= *c == 0;
            }
            match r.rule.kind {
                FaultKind::Latency { min_ms, max_ms } => {
                    let ms = match max_ms {
                        Some(max) if max > min_ms => rng.gen_range(min_ms..=max),
                        _ => min_ms,
                    };
                    // Saturating: rules given to `Faults::new` are not validated.
                    latency = latency.saturating_add(Duration::from_millis(ms));
                }
                FaultKind::Status { status } => action = Action::Status(status),
                FaultKind::Drop => action = Action::Drop,
                FaultKind::Truncate => action = Action::Truncate,
                FaultKind::Malformed => action = Action::Malformed,
            }
        }
        if exhausted {
            rules.retain(|r| r.rule.count != Some(0));
        }
        (latency, action)
    }
}

/// The request envelope fields the middleware needs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub cmd: Option<String>,
    pub cid: Option<u64>,
}

/// Reads `cmd` and `cid` from a LastPass request body (JSON or form-encoded) with the
/// emulator's own parser, so a rule for `getuserdata` also catches `"GetUserData"`, and a JSON
/// body sent as form data is seen as the JSON the emulator will run.
pub fn parse_envelope(content_type: Option<&str>, body: &[u8]) -> Envelope {
    match wire::decode_body(body, content_type) {
        Some(top) => Envelope {
            cmd: wire::cmd_of(&top),
            cid: wire::cid_of(&top),
        },
        None => Envelope::default(),
    }
}

/// `resp` with LastPass's content type.
fn lastpass_typed(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(LASTPASS_CONTENT_TYPE),
    );
    resp
}

fn xml_response(status: StatusCode, body: Vec<u8>) -> Response {
    lastpass_typed((status, body).into_response())
}

/// The answer of a status fault or of the rate limit.
pub fn status_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<lastpass rc=\"{reason}\"/>\n");
    xml_response(status, body.into_bytes())
}

/// A response whose body fails at once, which makes hyper abort the connection.
fn drop_response() -> Response {
    lastpass_typed(dropped_connection())
}

/// A response whose body fails at once, so hyper aborts the connection without writing a
/// status line: the `drop` fault of every surface.
pub(crate) fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: connection dropped",
        ))
    });
    Response::new(Body::from_stream(stream))
}

async fn middleware(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!(error = %e, "could not read request body");
            return status_response(413);
        }
    };
    let ct = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let env = parse_envelope(ct, &bytes);
    let req = Request::from_parts(parts, Body::from(bytes));
    let (cmd, cid) = (env.cmd.as_deref(), env.cid);

    if let Some(cid) = cid
        && !faults.admit(cid)
    {
        faults.record(cmd, Some(cid), Outcome::RateLimited, false);
        tracing::debug!(cid, cmd, "per-account rate limit: 429");
        return status_response(429);
    }

    let (latency, action) = faults.decide(cmd, cid);
    let outcome = if matches!(action, Action::Pass) {
        Outcome::Passed
    } else {
        Outcome::Faulted
    };
    faults.record(cmd, cid, outcome, !latency.is_zero());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match action {
        Action::Pass => next.run(req).await,
        Action::Status(s) => {
            tracing::debug!(cid, cmd, status = s, "fault: status");
            status_response(s)
        }
        Action::Drop => {
            tracing::debug!(cid, cmd, "fault: drop");
            drop_response()
        }
        Action::Malformed => {
            tracing::debug!(cid, cmd, "fault: malformed");
            xml_response(StatusCode::OK, MALFORMED_BODY.to_vec())
        }
        Action::Truncate => {
            tracing::debug!(cid, cmd, "fault: truncate");
            let resp = next.run(req).await;
            let (mut parts, body) = resp.into_parts();
            let full = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let keep = if full.len() <= 1 { 0 } else { full.len() / 2 };
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(full.slice(..keep)))
        }
    }
}

/// Wraps `router` (every route in it) in the fault / limit / counting middleware.
pub fn layer(router: Router, faults: Faults) -> Router {
    router.layer(axum::middleware::from_fn_with_state(faults, middleware))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_keys_stay_bounded() {
        let f = Faults::default();
        let long = "x".repeat(10_000);
        f.record(Some(&long), Some(1), Outcome::Passed, false);
        for i in 0..300 {
            f.record(Some(&format!("cmd{i}")), None, Outcome::Passed, false);
        }
        let s = f.stats();
        assert!(s.by_cmd.keys().all(|k| k.len() <= MAX_CMD_LEN));
        assert!(s.by_cmd.len() <= MAX_CMD_KEYS + 1);
        assert_eq!(s.total.requests, 301);
    }

    #[test]
    fn parses_specs() {
        let r: FaultRule = "getuserdata:429:0.1".parse().unwrap();
        assert_eq!(r.cmd.as_deref(), Some("getuserdata"));
        assert_eq!(r.kind, FaultKind::Status { status: 429 });
        assert_eq!(r.probability, 0.1);
        assert_eq!(r.count, None);

        let r: FaultRule = "*:latency=50..200ms:1.0".parse().unwrap();
        assert_eq!(r.cmd, None);
        assert_eq!(
            r.kind,
            FaultKind::Latency {
                min_ms: 50,
                max_ms: Some(200)
            }
        );

        let r: FaultRule = "reporting@8771312:drop:1:3".parse().unwrap();
        assert_eq!(r.cid, Some(8771312));
        assert_eq!(r.kind, FaultKind::Drop);
        assert_eq!(r.count, Some(3));

        let r: FaultRule = "getsfdata:latency=1s".parse().unwrap();
        assert_eq!(
            r.kind,
            FaultKind::Latency {
                min_ms: 1000,
                max_ms: None
            }
        );
        let r: FaultRule = "x:truncate".parse().unwrap();
        assert_eq!(r.to_string(), "x:truncate:1");
        let back: FaultRule = "reporting@7:latency=5..9ms:0.5:2"
            .parse::<FaultRule>()
            .unwrap()
            .to_string()
            .parse()
            .unwrap();
        assert_eq!(back.count, Some(2));
    }

    #[test]
    fn refuses_bad_specs_naming_the_value() {
        for bad in [
            "getuserdata",
            "getuserdata:418x",
            "getuserdata:429:1.5",
            "getuserdata:200",
            "getuserdata:429:0.5:many",
            "x@abc:429",
            "*:latency=200..50ms",
            ":429",
            "a:b:c:d:e",
        ] {
            let err = bad.parse::<FaultRule>().unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn json_rules_round_trip() {
        let r = FaultRule::new("getuserdata", FaultKind::Status { status: 503 }).count(2);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"cmd":"getuserdata","kind":"status","status":503,"probability":1.0,"count":2})
        );
        let back: FaultRule = serde_json::from_value(serde_json::json!({"kind":"drop"})).unwrap();
        assert_eq!(back.kind, FaultKind::Drop);
        assert_eq!(back.probability, 1.0);
    }

    #[test]
    fn reads_envelopes() {
        let e = parse_envelope(
            Some("application/json"),
            br#"{"cid":"8771312","provhash":"x","cmd":"getuserdata","data":{"pagesize":2}}"#,
        );
        assert_eq!(e.cid, Some(8771312));
        assert_eq!(e.cmd.as_deref(), Some("getuserdata"));
        let e = parse_envelope(None, br#"{"cid":12,"cmd":"reporting"}"#);
        assert_eq!(e.cid, Some(12));
        let e = parse_envelope(
            Some("application/x-www-form-urlencoded"),
            b"cid=5&provhash=x&cmd=getsfdata&data=all",
        );
        assert_eq!(e.cid, Some(5));
        assert_eq!(e.cmd.as_deref(), Some("getsfdata"));
        assert_eq!(parse_envelope(None, b"{nope"), Envelope::default());
        // The same reading as the emulator's: a JSON body whatever the content type claims,
        // `cmd` trimmed and lower-cased.
        let e = parse_envelope(
            Some("application/x-www-form-urlencoded"),
            br#"{"cid":7,"cmd":" GetUserData "}"#,
        );
        assert_eq!(e.cid, Some(7));
        assert_eq!(e.cmd.as_deref(), Some("getuserdata"));
    }

    #[test]
    fn probability_is_deterministic_and_count_exhausts() {
        let run = || {
            let f = Faults::new(FaultConfig {
                rules: vec![FaultRule::new("*", FaultKind::Drop).probability(0.5)],
                seed: 7,
                rate_limit_rps: None,
            });
            (0..64)
                .map(|_| !matches!(f.decide(Some("a"), None).1, Action::Pass))
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let hits = a.iter().filter(|h| **h).count();
        assert!((16..=48).contains(&hits), "{hits}");

        let f = Faults::default();
        f.add(FaultRule::new("a", FaultKind::Status { status: 500 }).count(2));
        assert!(matches!(f.decide(Some("b"), None).1, Action::Pass));
        assert!(matches!(f.decide(Some("a"), None).1, Action::Status(500)));
        assert_eq!(f.rules()[0].rule.count, Some(1));
        assert!(matches!(f.decide(Some("a"), None).1, Action::Status(500)));
        assert!(f.rules().is_empty());
        assert!(matches!(f.decide(Some("a"), None).1, Action::Pass));
    }

    #[test]
    fn rate_limit_buckets_per_cid() {
        let f = Faults::new(FaultConfig {
            rate_limit_rps: Some(1.0),
            ..Default::default()
        });
        assert!(f.admit(1));
        assert!(!f.admit(1));
        assert!(f.admit(2));
        f.set_rate_limit(None);
        assert!(f.admit(1));
    }
}
