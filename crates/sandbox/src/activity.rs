//! Background user activity, so an event watcher polling `reporting` sees a live stream.
//!
//! The generator remembers the virtual instant up to which it has written events (`last`). On
//! every tick (real time) and whenever the clock is moved by hand, it writes events for
//! `[last, now)` into every account with [`LastPass::simulate_activity`] and moves `last` to
//! `now`. The seed of each window is derived from the base seed, the account and the window
//! start ([`window_seed`]), so a frozen clock advanced by the same steps yields the same events.
//! A frozen clock that is not moved generates nothing.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::lastpass::{LastPass, SandboxError};

/// How much background activity to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityConfig {
    /// About this many events per virtual hour, per account.
    pub per_hour: f64,
    /// How often (real time) a running clock's elapsed window is filled.
    pub tick: Duration,
    /// Base seed; each window's seed is derived from it.
    pub seed: u64,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        Self {
            per_hour: 60.0,
            tick: Duration::from_secs(1),
            seed: 1,
        }
    }
}

/// The seed for the window starting at `from_us` in account `cid` (splitmix64 of the inputs).
pub fn window_seed(base: u64, cid: u64, from_us: i64) -> u64 {
    let mut z = base ^ cid.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (from_us as u64).rotate_left(17);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes activity for `[from_us, to_us)` into one account; returns the number of events.
pub fn generate(
    lastpass: &LastPass,
    cid: u64,
    from_us: i64,
    to_us: i64,
    per_hour: f64,
    base_seed: u64,
) -> Result<usize, SandboxError> {
    if to_us <= from_us || per_hour <= 0.0 {
        return Ok(0);
    }
    lastpass.simulate_activity(
        cid,
        from_us,
        to_us,
        per_hour,
        window_seed(base_seed, cid, from_us),
    )
}

/// Writes activity for `[from_us, to_us)` into every account; returns the number of events.
pub fn generate_all(
    lastpass: &LastPass,
    from_us: i64,
    to_us: i64,
    per_hour: f64,
    base_seed: u64,
) -> usize {
    let mut total = 0;
    for cid in lastpass.cids() {
        match generate(lastpass, cid, from_us, to_us, per_hour, base_seed) {
            Ok(n) => total += n,
            Err(e) => tracing::warn!(cid, error = %e, "activity generation failed"),
        }
    }
    total
}

/// Runs the generator until `shutdown` becomes `true` (or its sender is dropped).
pub fn spawn(
    lastpass: LastPass,
    clock: Clock,
    config: ActivityConfig,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    // Read the start before the task runs, so a move made right after spawning is not lost.
    let mut last = clock.now_us();
    tokio::spawn(async move {
        let tick = config.tick.max(Duration::from_millis(1));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = interval.tick() => {}
                _ = clock.moved() => {}
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
            let now = clock.now_us();
            if now > last {
                let lp = lastpass.clone();
                let (from, per_hour, seed) = (last, config.per_hour, config.seed);
                // The emulator works under a lock; keep the runtime's workers free.
                let n = tokio::task::spawn_blocking(move || {
                    generate_all(&lp, from, now, per_hour, seed)
                })
                .await
                .unwrap_or(0);
                tracing::trace!(from, to = now, events = n, "activity window");
                last = now;
            } else if now < last {
                // The clock was set back: start again from there.
                last = now;
            }
        }
        tracing::debug!("activity generator stopped");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_seeds_differ_and_repeat() {
        assert_eq!(window_seed(1, 2, 3), window_seed(1, 2, 3));
        assert_ne!(window_seed(1, 2, 3), window_seed(1, 2, 4));
        assert_ne!(window_seed(1, 2, 3), window_seed(1, 3, 3));
        assert_ne!(window_seed(1, 2, 3), window_seed(2, 2, 3));
    }
}
