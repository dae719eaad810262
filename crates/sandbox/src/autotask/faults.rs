//! Autotask fault rules, the thread and hourly limits, and request counters.
//!
//! A rule matches requests by `endpoint` (the entity path segment such as `Companies`, or
//! `ZoneInformation`, `VersionInformation`, `ThresholdInformation`; `*` or absent for all) and
//! `op` (`query`, `next`, `count`, `get`, `children`, `fields`, `zone`, `versions`,
//! `threshold`). Rules are evaluated in the order they were added: every firing `latency` rule
//! delays the request, the first other firing rule decides the answer. `skip` lets the first N
//! matching requests through (to fault page 2 of a listing), `count` removes the rule after it
//! fired that often, `probability` draws from one seeded RNG.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// This HTTP status with `{"errors":[message]}` (a default message per status).
    Status {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Seconds for a `Retry-After` header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// An IIS-style HTML error page with this status (`text/html`).
    Html { status: u16 },
    /// The real answer cut in half (invalid JSON).
    Truncate,
    /// Delay by `min_ms` (or a uniform draw up to `max_ms`), then go on.
    Latency {
        min_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_ms: Option<u64>,
    },
    /// HTTP 200 whose body is `{"errors":[message]}`.
    #[serde(rename = "errors_in_200")]
    ErrorsIn200 {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The thread-limit error, as if a fourth concurrent call were made.
    ThreadLimit,
    /// The hourly threshold error, as if the database were over its limit.
    Threshold,
    /// The missing-permission error, as 403 or as 500 (both are seen [AT4]).
    Permission {
        #[serde(default = "default_403")]
        status: u16,
    },
    /// The locked-user 401.
    Locked,
}

fn default_403() -> u16 {
    403
}

fn one() -> f64 {
    1.0
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub probability: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default)]
    pub skip: u64,
}

impl FaultRule {
    /// A rule that always fires on `endpoint` (`*` for all).
    pub fn new(endpoint: &str, kind: FaultKind) -> Self {
        Self {
            endpoint: (endpoint != "*").then(|| endpoint.to_string()),
            op: None,
            kind,
            probability: 1.0,
            count: None,
            skip: 0,
        }
    }

    pub fn op(mut self, op: &str) -> Self {
        self.op = Some(op.to_string());
        self
    }

    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }

    pub fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    /// Refuses out-of-range values: `(field, message)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(("probability", "must be between 0 and 1".into()));
        }
        match &self.kind {
            FaultKind::Status { status, .. } | FaultKind::Html { status }
                if !(400..=599).contains(status) =>
            {
                Err(("status", "must be an HTTP error status (400-599)".into()))
            }
            FaultKind::Permission { status } if !matches!(status, 403 | 500) => {
                Err(("status", "must be 403 or 500".into()))
            }
            FaultKind::Latency { min_ms, max_ms } => {
                if max_ms.is_some_and(|m| m < *min_ms) {
                    Err(("max_ms", "must not be below min_ms".into()))
                } else if max_ms.unwrap_or(*min_ms).max(*min_ms) > 600_000 {
                    Err(("max_ms", "latency is capped at 600000 ms".into()))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    fn matches(&self, endpoint: &str, op: &str) -> bool {
        let ep = self
            .endpoint
            .as_deref()
            .is_none_or(|e| e == "*" || e.eq_ignore_ascii_case(endpoint));
        let o = self
            .op
            .as_deref()
            .is_none_or(|o| o == "*" || o.eq_ignore_ascii_case(op));
        ep && o
    }
}

/// A rule with its id and how often it fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveRule {
    pub id: u64,
    #[serde(flatten)]
    pub rule: FaultRule,
    pub fired: u64,
    pub seen: u64,
}

/// The outcome of the fault rules for one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub delay: Duration,
    pub fault: Option<FaultKind>,
}

/// Request counters, by `Endpoint/op` (e.g. `Companies/query`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Every request to the Autotask surface (discovery included).
    pub total: u64,
    pub by_endpoint: BTreeMap<String, u64>,
    /// Answered by a fault rule (latency alone does not count).
    pub faulted: u64,
    pub thread_limited: u64,
    pub threshold_limited: u64,
    /// 401 and 500 authentication refusals.
    pub auth_failed: u64,
    /// The most requests in flight at once, per endpoint (the client's semaphore shows here).
    pub max_in_flight: BTreeMap<String, usize>,
}

impl Stats {
    /// Requests to `key` (`Companies/query`, `Contacts/query/next`, …).
    pub fn get(&self, key: &str) -> u64 {
        self.by_endpoint.get(key).copied().unwrap_or(0)
    }
}

#[derive(Debug)]
struct Inner {
    rules: Vec<ActiveRule>,
    next_id: u64,
    rng: ChaCha8Rng,
    stats: Stats,
    in_flight: HashMap<String, usize>,
    /// Requests per second-since-start over the last hour (the rolling window).
    window: VecDeque<(u64, u64)>,
}

/// Shared fault and limit state.
#[derive(Debug, Clone)]
pub struct Faults {
    inner: Arc<Mutex<Inner>>,
    start: Instant,
}

/// The rolling window of the hourly limit.
pub const WINDOW_SECS: u64 = 3600;

impl Faults {
    pub fn new(rules: Vec<FaultRule>, seed: u64) -> Self {
        let f = Self {
            inner: Arc::new(Mutex::new(Inner {
                rules: Vec::new(),
                next_id: 1,
                rng: ChaCha8Rng::seed_from_u64(seed),
                stats: Stats::default(),
                in_flight: HashMap::new(),
                window: VecDeque::new(),
            })),
            start: Instant::now(),
        };
        for r in rules {
            f.add(r);
        }
        f
    }

    pub fn add(&self, rule: FaultRule) -> u64 {
        let mut g = self.inner.lock();
        let id = g.next_id;
        g.next_id += 1;
        g.rules.push(ActiveRule {
            id,
            rule,
            fired: 0,
            seen: 0,
        });
        id
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut g = self.inner.lock();
        let before = g.rules.len();
        g.rules.retain(|r| r.id != id);
        g.rules.len() != before
    }

    pub fn clear(&self) {
        self.inner.lock().rules.clear();
    }

    pub fn rules(&self) -> Vec<ActiveRule> {
        self.inner.lock().rules.clone()
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock().stats.clone()
    }

    pub fn reset_stats(&self) {
        self.inner.lock().stats = Stats::default();
    }

    pub fn count(&self, key: &str) {
        let mut g = self.inner.lock();
        g.stats.total += 1;
        *g.stats.by_endpoint.entry(key.to_string()).or_default() += 1;
    }

    pub fn note(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.inner.lock().stats);
    }

    /// Evaluates the rules for one request.
    pub fn decide(&self, endpoint: &str, op: &str) -> Decision {
        let mut g = self.inner.lock();
        let Inner { rules, rng, .. } = &mut *g;
        let mut d = Decision::default();
        let mut spent = Vec::new();
        for r in rules.iter_mut() {
            if !r.rule.matches(endpoint, op) {
                continue;
            }
            let is_latency = matches!(r.rule.kind, FaultKind::Latency { .. });
            if !is_latency && d.fault.is_some() {
                continue;
            }
            r.seen += 1;
            if r.seen <= r.rule.skip {
                continue;
            }
            if r.rule.probability < 1.0 && !rng.gen_bool(r.rule.probability) {
                continue;
            }
            r.fired += 1;
            if r.rule.count.is_some_and(|c| r.fired >= c) {
                spent.push(r.id);
            }
            match &r.rule.kind {
                FaultKind::Latency { min_ms, max_ms } => {
                    let ms = match max_ms {
                        Some(max) if *max > *min_ms => rng.gen_range(*min_ms..=*max),
                        _ => *min_ms,
                    };
                    d.delay += Duration::from_millis(ms);
                }
                other => d.fault = Some(other.clone()),
            }
        }
        g.rules.retain(|r| !spent.contains(&r.id));
        if d.fault.is_some() {
            g.stats.faulted += 1;
        }
        d
    }

    fn now_sec(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// Requests counted in the current rolling hour.
    pub fn usage(&self) -> u64 {
        let now = self.now_sec();
        let mut g = self.inner.lock();
        prune(&mut g.window, now);
        g.window.iter().map(|(_, n)| n).sum()
    }

    /// Counts one request against `limit`; `false` (not counted) when the hour is used up.
    pub fn take_hourly(&self, limit: Option<u64>) -> bool {
        let now = self.now_sec();
        let mut g = self.inner.lock();
        prune(&mut g.window, now);
        if let Some(limit) = limit {
            let used: u64 = g.window.iter().map(|(_, n)| n).sum();
            if used >= limit {
                g.stats.threshold_limited += 1;
                return false;
            }
        }
        match g.window.back_mut() {
            Some((s, n)) if *s == now => *n += 1,
            _ => g.window.push_back((now, 1)),
        }
        true
    }

    pub fn reset_usage(&self) {
        self.inner.lock().window.clear();
    }

    /// Takes one of `limit` thread slots of `endpoint`; `None` when all are taken.
    pub fn enter(&self, endpoint: &str, limit: usize) -> Option<SlotGuard> {
        let mut g = self.inner.lock();
        let n = g.in_flight.entry(endpoint.to_string()).or_default();
        if *n >= limit {
            g.stats.thread_limited += 1;
            return None;
        }
        *n += 1;
        let now = *n;
        let max = g
            .stats
            .max_in_flight
            .entry(endpoint.to_string())
            .or_default();
        *max = (*max).max(now);
        Some(SlotGuard {
            faults: self.clone(),
            endpoint: endpoint.to_string(),
        })
    }
}

fn prune(window: &mut VecDeque<(u64, u64)>, now: u64) {
    while window
        .front()
        .is_some_and(|(s, _)| now.saturating_sub(*s) >= WINDOW_SECS)
    {
        window.pop_front();
    }
}

/// Holds one thread slot; frees it when dropped (also when the client hangs up mid-request).
#[derive(Debug)]
pub struct SlotGuard {
    faults: Faults,
    endpoint: String,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut g = self.faults.inner.lock();
        if let Some(n) = g.in_flight.get_mut(&self.endpoint) {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_count_and_latency() {
        let f = Faults::new(vec![], 1);
        f.add(
            FaultRule::new("Companies", FaultKind::Truncate)
                .skip(1)
                .count(1),
        );
        f.add(FaultRule::new(
            "*",
            FaultKind::Latency {
                min_ms: 5,
                max_ms: None,
            },
        ));
        let a = f.decide("Companies", "query");
        assert_eq!(a.fault, None);
        assert_eq!(a.delay, Duration::from_millis(5));
        assert_eq!(
            f.decide("Companies", "next").fault,
            Some(FaultKind::Truncate)
        );
        assert_eq!(f.decide("Companies", "next").fault, None);
        assert_eq!(f.rules().len(), 1);
        assert_eq!(f.decide("Contacts", "query").fault, None);
    }

    #[test]
    fn slots_and_hourly() {
        let f = Faults::new(vec![], 1);
        let a = f.enter("Companies", 2);
        let b = f.enter("Companies", 2);
        assert!(a.is_some() && b.is_some());
        assert!(f.enter("Companies", 2).is_none());
        assert!(f.enter("Contacts", 2).is_some());
        drop(a);
        assert!(f.enter("Companies", 2).is_some());
        assert!(f.take_hourly(Some(2)));
        assert!(f.take_hourly(Some(2)));
        assert!(!f.take_hourly(Some(2)));
        assert_eq!(f.usage(), 2);
        f.reset_usage();
        assert!(f.take_hourly(Some(2)));
        let s = f.stats();
        assert_eq!((s.thread_limited, s.threshold_limited), (1, 1));
    }
}
