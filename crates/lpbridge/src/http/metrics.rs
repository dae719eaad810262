//! Prometheus text exposition for `/metrics`: requests and latency by route, and upstream
//! LastPass calls by connection, command and outcome (read from each client's counters at
//! scrape time, so the hot path only bumps in-memory counters).
//!
//! Hand-written rather than a metrics crate: a registry per app instance (tests run several in
//! one process) and counters owned by the `lastpass` client are simpler to expose this way.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use parking_lot::Mutex;

/// Latency histogram bucket bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

type RouteKey = (String, String);

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<RouteKey, Histogram>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Prometheus label values escape `\`, `"` and newlines.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut lat = self.latency.lock();
        let h = lat
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        h.count += 1;
        h.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
    }

    /// The exposition text; `upstream` is (connection, stats) for every live client.
    pub fn render(&self, upstream: &[(String, lastpass::CallStats)]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP lpbridge_http_requests_total HTTP requests served, by route and status.\n",
        );
        out.push_str("# TYPE lpbridge_http_requests_total counter\n");
        for ((m, r, s), n) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "lpbridge_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{s}\"}} {n}",
                esc(m),
                esc(r)
            );
        }
        out.push_str(
            "# HELP lpbridge_http_request_duration_seconds HTTP request latency, by route.\n",
        );
        out.push_str("# TYPE lpbridge_http_request_duration_seconds histogram\n");
        for ((m, r), h) in self.latency.lock().iter() {
            let labels = format!("method=\"{}\",route=\"{}\"", esc(m), esc(r));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "lpbridge_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "lpbridge_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "lpbridge_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "lpbridge_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out.push_str(
            "# HELP lpbridge_upstream_requests_total LastPass Enterprise API requests (retries \
             included), by connection, command and outcome.\n",
        );
        out.push_str("# TYPE lpbridge_upstream_requests_total counter\n");
        for (conn, stats) in upstream {
            for (cmd, outcomes) in &stats.by_outcome {
                for (outcome, n) in outcomes {
                    let _ = writeln!(
                        out,
                        "lpbridge_upstream_requests_total{{connection=\"{}\",command=\"{}\",outcome=\"{outcome}\"}} {n}",
                        esc(conn),
                        esc(cmd)
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_upstream() {
        let m = Metrics::default();
        m.observe("GET", "/unified/iam/users", 200, Duration::from_millis(3));
        m.observe("GET", "/unified/iam/users", 200, Duration::from_millis(30));
        let mut stats = lastpass::CallStats::default();
        stats
            .by_outcome
            .entry("getuserdata".into())
            .or_default()
            .insert("ok", 4);
        let text = m.render(&[("prod\"x".into(), stats)]);
        assert!(text.contains(
            "lpbridge_http_requests_total{method=\"GET\",route=\"/unified/iam/users\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains("le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("le=\"0.05\"} 2"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains(
            "lpbridge_upstream_requests_total{connection=\"prod\\\"x\",command=\"getuserdata\",outcome=\"ok\"} 4"
        ), "{text}");
    }
}
