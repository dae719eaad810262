//! The sandbox's virtual clock. Every timestamp the emulators write (user creation, events,
//! `next` cursors) comes from here, so tests can freeze time and advance it deterministically.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Real time shifted by an offset (microseconds).
    Running { offset_us: i64 },
    /// Time stands still at this instant (microseconds since the Unix epoch).
    Frozen { at_us: i64 },
}

/// A cheap-to-clone handle to one shared virtual clock.
#[derive(Debug, Clone)]
pub struct Clock {
    mode: Arc<Mutex<Mode>>,
    /// Wakes waiters (e.g. the activity generator) when time is moved by hand.
    moved: Arc<tokio::sync::Notify>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

/// Earliest instant the virtual clock shows: 0001-01-01 00:00:00 UTC.
pub const MIN_US: i64 = -62_135_596_800_000_000;
/// Latest instant the virtual clock shows: 9999-12-31 23:59:59.999999 UTC. Together with
/// [`MIN_US`] this keeps every instant printable as `YYYY-MM-DD HH:MM:SS` and leaves ample
/// headroom for `now ± years` arithmetic in the emulators (no i64 overflow).
pub const MAX_US: i64 = 253_402_300_799_999_999;

fn real_now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl Clock {
    fn with_mode(mode: Mode) -> Self {
        Self {
            mode: Arc::new(Mutex::new(mode)),
            moved: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Follows real time.
    pub fn system() -> Self {
        Self::with_mode(Mode::Running { offset_us: 0 })
    }

    /// Frozen at `at_us` microseconds since the Unix epoch until advanced.
    pub fn frozen(at_us: i64) -> Self {
        Self::with_mode(Mode::Frozen { at_us })
    }

    /// Microseconds since the Unix epoch, in virtual time.
    pub fn now_us(&self) -> i64 {
        match *self.mode.lock() {
            Mode::Running { offset_us } => real_now_us().saturating_add(offset_us),
            Mode::Frozen { at_us } => at_us,
        }
        .clamp(MIN_US, MAX_US)
    }

    /// Whole seconds since the Unix epoch, in virtual time.
    pub fn now_secs(&self) -> i64 {
        self.now_us().div_euclid(1_000_000)
    }

    pub fn is_frozen(&self) -> bool {
        matches!(*self.mode.lock(), Mode::Frozen { .. })
    }

    /// Moves virtual time forward (negative values are refused by returning `false`); time stops
    /// at [`MAX_US`].
    pub fn advance_us(&self, delta_us: i64) -> bool {
        if delta_us < 0 {
            return false;
        }
        {
            let mut m = self.mode.lock();
            *m = match *m {
                Mode::Running { offset_us } => Mode::Running {
                    offset_us: offset_us.saturating_add(delta_us).min(MAX_US),
                },
                Mode::Frozen { at_us } => Mode::Frozen {
                    at_us: at_us.saturating_add(delta_us).min(MAX_US),
                },
            };
        }
        self.moved.notify_waiters();
        true
    }

    /// Sets virtual time, clamped to [`MIN_US`]..=[`MAX_US`]; keeps the current mode (a running
    /// clock keeps running from there).
    pub fn set_us(&self, at_us: i64) {
        let at_us = at_us.clamp(MIN_US, MAX_US);
        {
            let mut m = self.mode.lock();
            *m = match *m {
                Mode::Running { .. } => Mode::Running {
                    offset_us: at_us - real_now_us(),
                },
                Mode::Frozen { .. } => Mode::Frozen { at_us },
            };
        }
        self.moved.notify_waiters();
    }

    /// Stops time at its current value.
    pub fn freeze(&self) {
        let now = self.now_us();
        *self.mode.lock() = Mode::Frozen { at_us: now };
        self.moved.notify_waiters();
    }

    /// Lets time run again from its current value.
    pub fn resume(&self) {
        let now = self.now_us();
        *self.mode.lock() = Mode::Running {
            offset_us: now - real_now_us(),
        };
        self.moved.notify_waiters();
    }

    /// Resolves the next time the clock is moved by hand (advance/set/freeze/resume).
    pub async fn moved(&self) {
        self.moved.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_advanced() {
        let c = Clock::frozen(1_000_000);
        assert_eq!(c.now_us(), 1_000_000);
        assert!(c.advance_us(2_500_000));
        assert_eq!(c.now_us(), 3_500_000);
        assert_eq!(c.now_secs(), 3);
        assert!(!c.advance_us(-1));
        c.set_us(42);
        assert_eq!(c.now_us(), 42);
    }

    #[test]
    fn running_clock_keeps_offset() {
        let c = Clock::system();
        let before = c.now_us();
        c.advance_us(3_600_000_000);
        assert!(c.now_us() >= before + 3_600_000_000);
        c.freeze();
        let f = c.now_us();
        assert_eq!(c.now_us(), f);
        c.resume();
        assert!(c.now_us() >= f);
    }
}
