//! The watcher's cursor and de-duplication state: which window to read next and which events
//! of it are new. Pure and serialisable (serde JSON), so the watcher saves it in the same
//! transaction as the events it hands to the outbox.
//!
//! # How a watcher uses it
//!
//! ```text
//! loop {
//!     let Some(w) = state.plan(now, tz, overlap) else { sleep; continue };   // persist state
//!     for page in reporting(from = w.from, to = w.to) walking `next` {        // newest first
//!         let obs = state.observe(page, tz)?;
//!         commit { outbox += obs.new; saved_state = state.to_json() }         // one transaction
//!     }
//!     state.complete();  commit { saved_state = state }
//! }
//! ```
//!
//! It may stop after any committed page (per-cycle limit, crash, SIGKILL): the next `plan`, on
//! the saved state, resumes the unfinished window.
//!
//! # Exactly once: the invariants
//!
//! 1. **Whole seconds.** Every bound sent is a whole, unambiguous account-zone second (`to`
//!    inclusive to the end of its second), outside any DST fold ([`super::time::before_fold`]):
//!    a window holds each wall-clock second it touches completely, both passes of a folded hour
//!    or neither. Page cuts may fall anywhere: the walk's [`Sequencer`] spans pages.
//! 2. **Ids count, not name, identical events** ([`super::normalize`]): a second with `c`
//!    identical events yields ids `…-0 … …-(c-1)` in every window that reads it.
//! 3. **`seen` is the high-water mark**: for each (second, content) it holds the largest count
//!    any walk has observed, which is the number of such events emitted. A walk emits an event
//!    iff its occurrence is ≥ that mark. Events are never removed upstream, so counts only grow.
//! 4. **Retention.** `seen` keeps every second ≥ `next_from` (the lowest second any future
//!    window reads), plus, during a walk, the seconds a resumed walk would read again: the
//!    resume second, and a fold being walked. Everything else is pruned after each page:
//!    memory is bounded by the overlap, one page and (once a year) a folded hour — not by the
//!    backlog.
//! 5. **Resume at a whole second.** After a page whose oldest second `s` is unambiguous, every
//!    newer second of the window is done; a resumed walk re-reads `[from, s]`, `s` whole (its
//!    already-emitted part is in `seen`). Inside a fold the resume point does not move.
//! 6. **Pages are newest first** (LastPass's order across `Event1..N` and `next`), so a second
//!    newer than a page's oldest is never seen again in the same walk.
//!
//! Late events (LastPass listing an event after the window covering its second was read) are
//! delivered when the next window still covers that second: the `overlap` passed to
//! [`DedupState::plan`] is the largest lateness tolerated. Later than that, they are lost and
//! counted in [`Observed::below_floor`] if they ever show up.
//!
//! The configured time zone matters only for folds (which seconds are ambiguous) and for
//! `now` → `to`; a wrong zone shifts windows but never changes ids.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::normalize::{ContentHash, EventRecord, Sequencer, wire_time};
use super::time::{fold_safe_from, fold_safe_to, is_ambiguous, local_to_utc};

/// Version of the serialised state; [`DedupState::from_json`] refuses others.
pub const STATE_VERSION: u32 = 1;

/// A wall-clock second in the account zone, serialised as LastPass writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalSecond(#[serde(with = "wire_time")] pub NaiveDateTime);

/// One `reporting` window to read, in the account zone, both ends inclusive (as
/// [`lastpass::EventQuery`] takes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    #[serde(with = "wire_time")]
    pub from: NaiveDateTime,
    #[serde(with = "wire_time")]
    pub to: NaiveDateTime,
}

/// What one page held.
#[derive(Debug, Default)]
pub struct Observed {
    /// Events not delivered before, newest first: hand these to the sinks.
    pub new: Vec<EventRecord>,
    /// Events already delivered (overlap, resumed walk).
    pub duplicates: usize,
    /// Events older than the retention floor (should not happen; see the module docs).
    pub below_floor: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DedupError {
    #[error("no window is being read: call plan() before observe()")]
    NoWindow,
    #[error("unsupported event-cursor state version {0} (expected {STATE_VERSION})")]
    Version(u32),
    #[error("invalid event-cursor state: {0}")]
    Json(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Walk {
    window: Window,
    /// Re-read `[window.from, resume]` after a restart; `None`: the whole window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resume: Option<LocalSecond>,
    /// `from` of the window after this one.
    next_from: LocalSecond,
}

/// The persisted cursor + de-duplication state of one connection's watcher (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DedupState {
    v: u32,
    /// `from` of the next window; also the retention floor once no walk is running.
    next_from: LocalSecond,
    /// Last second to read (a backfill's `--to`); `None` follows the present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<LocalSecond>,
    /// A backfill read its last window.
    #[serde(default)]
    done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    walk: Option<Walk>,
    /// second → content → count emitted (invariant 3).
    #[serde(default)]
    seen: BTreeMap<LocalSecond, BTreeMap<ContentHash, u32>>,
    /// Occurrence counts of the walk in progress; rebuilt by every `plan`, never persisted.
    #[serde(skip)]
    seq: Sequencer,
}

impl PartialEq for DedupState {
    fn eq(&self, o: &Self) -> bool {
        (
            self.v,
            self.next_from,
            self.end,
            self.done,
            &self.walk,
            &self.seen,
        ) == (o.v, o.next_from, o.end, o.done, &o.walk, &o.seen)
    }
}

impl DedupState {
    /// A watcher that starts reading at `start` and then follows the present.
    pub fn starting_at(start: DateTime<Utc>, tz: Tz) -> Self {
        Self {
            v: STATE_VERSION,
            next_from: LocalSecond(fold_safe_from(start, tz)),
            end: None,
            done: false,
            walk: None,
            seen: BTreeMap::new(),
            seq: Sequencer::new(),
        }
    }

    /// A backfill of `[from, to]` (both inclusive); `to` is read once it is in the past.
    pub fn backfill(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Self {
        let mut s = Self::starting_at(from, tz);
        // A `to` inside a fold is moved to the first second after the fold (not before it:
        // events asked for would be missing); bounded, a fold lasts at most a few hours.
        let mut end = super::time::utc_to_local(to, tz);
        for _ in 0..(6 * 3600) {
            if !is_ambiguous(end, tz) {
                break;
            }
            end += Duration::seconds(1);
        }
        s.end = Some(LocalSecond(end));
        s
    }

    /// The window to read now, or `None` when there is nothing to read yet (or a backfill is
    /// done). Resumes an unfinished window first. Persist the state after calling it.
    ///
    /// `now` is the current time; the window ends at the last whole second before it (moved
    /// before a DST fold in progress). `overlap` is re-read by the next window (late events).
    pub fn plan(&mut self, now: DateTime<Utc>, tz: Tz, overlap: Duration) -> Option<Window> {
        self.seq = Sequencer::new();
        if let Some(w) = &self.walk {
            let to = w.resume.map_or(w.window.to, |r| r.0);
            return Some(Window {
                from: w.window.from,
                to,
            });
        }
        let from = self.next_from.0;
        if self.end.is_some_and(|e| e.0 < from) {
            self.done = true;
        }
        if self.done {
            return None;
        }
        let mut to = fold_safe_to(now - Duration::seconds(1), tz);
        if let Some(end) = self.end {
            to = to.min(end.0);
        }
        if to < from {
            return None;
        }
        let overlap = overlap.max(Duration::zero());
        let next = fold_safe_from(local_to_utc(to, tz) + Duration::seconds(1) - overlap, tz);
        let window = Window { from, to };
        self.walk = Some(Walk {
            window,
            resume: None,
            next_from: LocalSecond(next.max(from)),
        });
        Some(window)
    }

    /// Counts one page of the current window (newest first) and returns its new events.
    pub fn observe(&mut self, page: Vec<lastpass::Event>, tz: Tz) -> Result<Observed, DedupError> {
        let walk = self.walk.as_mut().ok_or(DedupError::NoWindow)?;
        let floor = walk.window.from;
        let mut out = Observed::default();
        let mut oldest: Option<NaiveDateTime> = None;
        for e in page {
            if e.time < floor {
                out.below_floor += 1;
                continue;
            }
            oldest = Some(oldest.map_or(e.time, |o| o.min(e.time)));
            let h = ContentHash::of(&e);
            let n = self.seq.next(h, e.time);
            let mark = self
                .seen
                .entry(LocalSecond(e.time))
                .or_default()
                .entry(h)
                .or_insert(0);
            if n >= *mark {
                *mark = n.saturating_add(1);
                out.new.push(EventRecord::with_hash(e, h, n, tz));
            } else {
                out.duplicates += 1;
            }
        }
        if let Some(oldest) = oldest {
            self.seq.end_page(oldest, tz);
            if !is_ambiguous(oldest, tz) {
                // Invariant 5: everything newer than `oldest` is done. Invariant 4: what is
                // done and below the next window is not needed any more.
                walk.resume = Some(LocalSecond(oldest));
                let (lo, hi) = (LocalSecond(oldest), walk.next_from);
                if lo < hi {
                    let dead: Vec<LocalSecond> = self
                        .seen
                        .range(lo..hi)
                        .map(|(k, _)| *k)
                        .filter(|k| *k > lo)
                        .collect();
                    for k in dead {
                        self.seen.remove(&k);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The current window was read to its end (`next` was null): move the cursor on.
    pub fn complete(&mut self) {
        self.seq = Sequencer::new();
        let Some(walk) = self.walk.take() else {
            return;
        };
        self.next_from = walk.next_from;
        if self.end.is_some_and(|e| walk.window.to >= e.0) {
            self.done = true;
        }
        // Invariant 4: nothing below the next window is read again.
        self.seen = self.seen.split_off(&self.next_from);
    }

    /// `from` of the next new window: the lowest second still remembered.
    pub fn floor(&self) -> NaiveDateTime {
        self.walk
            .as_ref()
            .map_or(self.next_from.0, |w| w.window.from)
    }

    /// The window being read, if any.
    pub fn current_window(&self) -> Option<Window> {
        self.walk.as_ref().map(|w| w.window)
    }

    /// A backfill has read its last window.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Number of (second, content) marks held: the state's size.
    pub fn remembered(&self) -> usize {
        self.seen.values().map(BTreeMap::len).sum()
    }

    pub fn to_json(&self) -> String {
        // Serialising plain maps, strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Self, DedupError> {
        #[derive(Deserialize)]
        struct Head {
            v: u32,
        }
        let head: Head = serde_json::from_str(s).map_err(|e| DedupError::Json(e.to_string()))?;
        if head.v != STATE_VERSION {
            return Err(DedupError::Version(head.v));
        }
        serde_json::from_str(s).map_err(|e| DedupError::Json(e.to_string()))
    }
}
