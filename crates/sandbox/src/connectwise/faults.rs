//! Fault rules and request counters of the ConnectWise emulator (separate from the LastPass
//! fault layer in `crate::faults`, whose envelope parsing is LastPass-specific).
//!
//! A rule matches a request by an optional path substring (`path`, matched against the path
//! below the site, e.g. `company/contacts` or `login/companyinfo`), fires with `probability`
//! (seeded RNG) and, with a `count`, applies to that many firings and is then removed. Every
//! firing `delay` rule delays the request; the first other firing rule decides the answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CwFaultKind {
    /// 429 with `Retry-After: {retry_after}` and the documented body
    /// `{"error":"ConnectWiseAPI","message":"Too many requests. Please try again in N seconds."}`.
    RateLimit {
        #[serde(default = "one")]
        retry_after: u64,
    },
    /// This status (5xx usually) with `{"code":"ConnectWiseApi","message":…}`.
    Status {
        status: u16,
        #[serde(default)]
        message: Option<String>,
    },
    /// This status with an HTML page (an IIS / Cloudflare error page), `text/html`.
    Html {
        #[serde(default = "bad_gateway")]
        status: u16,
    },
    /// The real answer, cut in half (status and headers kept).
    Truncate,
    /// The real answer, `ms` milliseconds late.
    Delay { ms: u64 },
}

fn one() -> u64 {
    1
}

fn bad_gateway() -> u16 {
    502
}

fn p_one() -> f64 {
    1.0
}

/// A fault rule as the control API and [`super::ConnectWiseConfig::faults`] take it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CwFaultRule {
    #[serde(flatten)]
    pub kind: CwFaultKind,
    /// Only requests whose path (below the site) contains this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default = "p_one")]
    pub probability: f64,
    /// Fire this many times, then disappear; `None`: forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl CwFaultRule {
    pub fn new(kind: CwFaultKind) -> Self {
        Self {
            kind,
            path: None,
            probability: 1.0,
            count: None,
        }
    }

    pub fn path(mut self, p: &str) -> Self {
        self.path = Some(p.to_string());
        self
    }

    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }

    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    /// Why the rule is unusable, if it is.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err("probability must be within 0..=1".into());
        }
        match &self.kind {
            CwFaultKind::Status { status, .. } if !(400..=599).contains(status) => {
                Err("status must be within 400..=599".into())
            }
            CwFaultKind::Html { status } if !(200..=599).contains(status) => {
                Err("status must be within 200..=599".into())
            }
            CwFaultKind::Delay { ms } if *ms > 600_000 => Err("ms must be at most 600000".into()),
            CwFaultKind::RateLimit { retry_after } if *retry_after > 86_400 => {
                Err("retry_after must be at most 86400".into())
            }
            _ => Ok(()),
        }
    }
}

/// A rule with its id and how often it fired.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveCwRule {
    pub id: u64,
    #[serde(flatten)]
    pub rule: CwFaultRule,
    pub fired: u64,
}

/// Request counters: every request to `/cw` (discovery included), by endpoint and by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CwStats {
    pub total: u64,
    pub by_endpoint: BTreeMap<String, u64>,
    pub by_status: BTreeMap<u16, u64>,
}

impl CwStats {
    pub fn endpoint(&self, key: &str) -> u64 {
        self.by_endpoint.get(key).copied().unwrap_or(0)
    }
}

#[derive(Debug)]
struct Inner {
    rules: Vec<ActiveCwRule>,
    next_id: u64,
    rng: ChaCha8Rng,
    stats: CwStats,
}

/// The decision for one request.
#[derive(Debug, Default)]
pub struct Decision {
    pub delay_ms: u64,
    pub answer: Option<CwFaultKind>,
}

/// Shared fault state (cheap to clone).
#[derive(Debug, Clone)]
pub struct CwFaults(Arc<Mutex<Inner>>);

impl CwFaults {
    pub fn new(rules: Vec<CwFaultRule>, seed: u64) -> Self {
        let f = Self(Arc::new(Mutex::new(Inner {
            rules: Vec::new(),
            next_id: 1,
            rng: ChaCha8Rng::seed_from_u64(seed),
            stats: CwStats::default(),
        })));
        for r in rules {
            f.add(r);
        }
        f
    }

    pub fn add(&self, rule: CwFaultRule) -> u64 {
        let mut g = self.0.lock();
        let id = g.next_id;
        g.next_id += 1;
        g.rules.push(ActiveCwRule { id, rule, fired: 0 });
        id
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut g = self.0.lock();
        let before = g.rules.len();
        g.rules.retain(|r| r.id != id);
        g.rules.len() != before
    }

    pub fn clear(&self) {
        self.0.lock().rules.clear();
    }

    pub fn rules(&self) -> Vec<ActiveCwRule> {
        self.0.lock().rules.clone()
    }

    pub fn count_request(&self, endpoint: &str) {
        let mut g = self.0.lock();
        g.stats.total += 1;
        *g.stats.by_endpoint.entry(endpoint.to_string()).or_default() += 1;
    }

    pub fn count_status(&self, status: u16) {
        *self.0.lock().stats.by_status.entry(status).or_default() += 1;
    }

    pub fn stats(&self) -> CwStats {
        self.0.lock().stats.clone()
    }

    pub fn reset_stats(&self) {
        self.0.lock().stats = CwStats::default();
    }

    /// Evaluates the rules for a request to `path` (below the site).
    pub fn decide(&self, path: &str) -> Decision {
        let mut g = self.0.lock();
        let Inner { rules, rng, .. } = &mut *g;
        let mut d = Decision::default();
        let mut spent = Vec::new();
        for r in rules.iter_mut() {
            if r.rule.path.as_deref().is_some_and(|p| !path.contains(p)) {
                continue;
            }
            let is_delay = matches!(r.rule.kind, CwFaultKind::Delay { .. });
            if !is_delay && d.answer.is_some() {
                continue;
            }
            if r.rule.probability < 1.0 && rng.gen_range(0.0..1.0) >= r.rule.probability {
                continue;
            }
            r.fired += 1;
            if r.rule.count.is_some_and(|c| r.fired >= c) {
                spent.push(r.id);
            }
            match &r.rule.kind {
                CwFaultKind::Delay { ms } => d.delay_ms += ms,
                k => d.answer = Some(k.clone()),
            }
        }
        rules.retain(|r| !spent.contains(&r.id));
        d
    }
}
