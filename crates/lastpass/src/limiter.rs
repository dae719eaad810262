//! An async token bucket (reservation style): each caller takes a token, possibly going into
//! debt, and sleeps exactly until its token is due. No polling, no busy loop, FIFO-fair, and it
//! runs on tokio's clock so tests can use paused time.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate_per_sec: f64,
    capacity: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `capacity` is the burst size (at least one token).
    pub fn new(rate_per_sec: f64, capacity: f64) -> Self {
        let capacity = capacity.max(1.0);
        Self {
            rate_per_sec,
            capacity,
            state: Mutex::new(State {
                tokens: capacity,
                last: Instant::now(),
            }),
        }
    }

    /// How long the caller must wait for its token (the token is reserved now).
    fn reserve(&self) -> Duration {
        let mut s = self.state.lock();
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * self.rate_per_sec).min(self.capacity);
        s.last = now;
        s.tokens -= 1.0;
        if s.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.tokens / self.rate_per_sec)
        }
    }

    pub async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Max number of instants in any half-open window of `width`.
    fn max_in_window(times: &[Instant], width: Duration) -> usize {
        let mut sorted = times.to_vec();
        sorted.sort();
        (0..sorted.len())
            .map(|i| {
                sorted[i..]
                    .iter()
                    .take_while(|t| **t - sorted[i] < width)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn holds_ten_per_second_under_concurrency() {
        let bucket = Arc::new(TokenBucket::new(10.0, 1.0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..35 {
            let b = bucket.clone();
            tasks.push(tokio::spawn(async move {
                b.acquire().await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        assert!(max_in_window(&times, Duration::from_secs(1)) <= 10);
        // 35 tokens at 10/s with one initial token: the last is due at 3.4 s.
        let last = *times.iter().max().unwrap();
        assert_eq!(last - start, Duration::from_millis(3400));
    }

    #[tokio::test(start_paused = true)]
    async fn refills_after_idle_but_not_beyond_capacity() {
        let bucket = TokenBucket::new(2.0, 2.0);
        tokio::time::advance(Duration::from_secs(60)).await;
        let start = Instant::now();
        for _ in 0..4 {
            bucket.acquire().await;
        }
        // Two from the burst, then two more at 0.5 s spacing.
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
    }
}
