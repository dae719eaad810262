//! Event records: LastPass's event plus what lpbridge derives (UTC time, category, stable id).
//!
//! Owns the event id. LastPass has no ids (the `siem` format's `ID` is unproven upstream) and
//! identical-looking events can share a second, so the id is
//!
//! ```text
//! <content hash: 32 hex digits>-<occurrence>
//! ```
//!
//! - **content hash**: the first 128 bits of SHA-256 over the tag `lpbridge/event/v1`, then for
//!   each field its UTF-8 length as a little-endian u64 and its bytes; the fields *as LastPass
//!   sent them*, in this order: `Time` (the account-zone wall-clock text), `Username`,
//!   `IP_Address`, `Action`, `Data`. Not the UTC time and not the configured zone, so fixing a
//!   wrong zone does not change any id; not the `siem` `ID`, so switching formats does not either.
//! - **occurrence**: the event's rank among the events with the same content hash (= same
//!   second, same fields) in one walk over a window. Such events are indistinguishable, so only
//!   their number matters: a second holding `c` of them always yields the ids `…-0 … …-(c-1)`,
//!   whichever window or page order produced them.
//!
//! Ids are unique within one LastPass account (a store shared by connections keys events by
//! connection and id).
//!
//! [`Sequencer`] assigns occurrences over the pages of one walk. Its invariant, which the watcher
//! keeps (see [`super::dedup`]): **a walk reads every second it touches in full** (both passes of
//! a DST fold included). Window bounds are whole, unambiguous seconds (`to` is inclusive to the
//! end of its second); page cuts may fall anywhere, even inside a second (LastPass's `next` has
//! microsecond precision; the sandbox cuts at whole seconds unless one second exceeds a page)
//! because the sequencer carries its counts across pages.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::category::Category;
use super::time::{WIRE_FORMAT, is_ambiguous, local_to_utc};

/// 128 bits of SHA-256 over an event's wire fields (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 16]);

/// Bumped only with a deliberate id migration: every stored id depends on it.
const HASH_TAG: &[u8] = b"lpbridge/event/v1";

impl ContentHash {
    pub fn of(event: &lastpass::Event) -> Self {
        Self::of_fields(
            event.time,
            &event.username,
            &event.ip_address,
            &event.action,
            &event.data,
        )
    }

    pub fn of_fields(
        time: NaiveDateTime,
        username: &str,
        ip_address: &str,
        action: &str,
        data: &str,
    ) -> Self {
        let mut h = Sha256::new();
        h.update(HASH_TAG);
        let time = time.format(WIRE_FORMAT).to_string();
        // Length prefixes: ("ab","c") and ("a","bc") must not collide.
        for f in [time.as_str(), username, ip_address, action, data] {
            h.update((f.len() as u64).to_le_bytes());
            h.update(f.as_bytes());
        }
        let digest = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        Self(out)
    }

    pub fn to_hex(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(32);
        for b in self.0 {
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl std::fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        ContentHash::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid content hash {s:?}")))
    }
}

/// lpbridge's id for one event: `<content hash>-<occurrence>` (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    pub content: ContentHash,
    pub occurrence: u32,
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.content.to_hex(), self.occurrence)
    }
}

impl std::str::FromStr for EventId {
    type Err = lp_types::InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            lp_types::InvalidValue::new(
                "event id",
                s,
                "expected 32 lower-case hex digits, '-', an occurrence number",
            )
        };
        let (h, n) = s.split_once('-').ok_or_else(bad)?;
        let content = ContentHash::from_hex(h).ok_or_else(bad)?;
        // Canonical form only, so one event has one id string ("-007" is refused).
        if n.is_empty()
            || (n.len() > 1 && n.starts_with('0'))
            || h.chars().any(|c| c.is_ascii_uppercase())
        {
            return Err(bad());
        }
        let occurrence = n.parse().map_err(|_| bad())?;
        Ok(Self {
            content,
            occurrence,
        })
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One event as lpbridge stores and delivers it: the original fields, unchanged, plus `id`,
/// `time_utc`, `time_zone` (the zone `time_utc` was computed with) and `category`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: EventId,
    /// RFC 3339 in UTC (`2026-01-15T14:00:00Z`), from `time` read in `time_zone`
    /// ([`super::time::local_to_utc`] documents the DST rule).
    pub time_utc: DateTime<Utc>,
    /// `Time` exactly as LastPass sent it (account-zone wall clock, `YYYY-MM-DD HH:MM:SS`).
    #[serde(with = "wire_time")]
    pub time: NaiveDateTime,
    pub time_zone: Tz,
    pub username: String,
    pub ip_address: String,
    pub action: String,
    pub data: String,
    pub category: Category,
    /// The `siem` format's `ID`, when LastPass sent one (not used for `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siem_id: Option<String>,
}

impl EventRecord {
    /// Builds the record of `event`, the `occurrence`-th of its identical group (see
    /// [`Sequencer`]), with `time_utc` computed in `tz`.
    pub fn new(event: lastpass::Event, occurrence: u32, tz: Tz) -> Self {
        let content = ContentHash::of(&event);
        Self::with_hash(event, content, occurrence, tz)
    }

    /// [`EventRecord::new`] with the content hash already computed.
    pub(crate) fn with_hash(
        event: lastpass::Event,
        content: ContentHash,
        occurrence: u32,
        tz: Tz,
    ) -> Self {
        Self {
            id: EventId {
                content,
                occurrence,
            },
            time_utc: local_to_utc(event.time, tz),
            category: Category::of_action(&event.action),
            time: event.time,
            time_zone: tz,
            username: event.username,
            ip_address: event.ip_address,
            action: event.action,
            data: event.data,
            siem_id: event.id,
        }
    }
}

/// Serde for wall-clock times in LastPass's wire format.
pub mod wire_time {
    use chrono::NaiveDateTime;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::WIRE_FORMAT;

    pub fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.format(WIRE_FORMAT))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        NaiveDateTime::parse_from_str(&s, WIRE_FORMAT).map_err(serde::de::Error::custom)
    }
}

/// Assigns occurrence numbers over the pages of **one walk** of one window (newest first).
///
/// It keeps counts only for the second at the current page boundary (which may continue on the
/// next page) and, while the walk is inside a DST fold, for the folded seconds (their two passes
/// are an hour apart in the walk). Start a new `Sequencer` for every walk, including a walk
/// resumed after a restart.
#[derive(Debug, Default, Clone)]
pub struct Sequencer {
    counts: HashMap<ContentHash, (NaiveDateTime, u32)>,
}

impl Sequencer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The occurrence number of the next event with this content.
    pub fn next(&mut self, content: ContentHash, time: NaiveDateTime) -> u32 {
        let e = self.counts.entry(content).or_insert((time, 0));
        let n = e.1;
        e.1 = n.saturating_add(1);
        n
    }

    /// Records one page of a walk; returns its records, newest first as given.
    pub fn page(&mut self, events: Vec<lastpass::Event>, tz: Tz) -> Vec<EventRecord> {
        let oldest = events.iter().map(|e| e.time).min();
        let out = events
            .into_iter()
            .map(|e| {
                let h = ContentHash::of(&e);
                let n = self.next(h, e.time);
                EventRecord::with_hash(e, h, n, tz)
            })
            .collect();
        if let Some(oldest) = oldest {
            self.end_page(oldest, tz);
        }
        out
    }

    /// Forgets the seconds a newest-first walk is done with, once a page whose oldest second is
    /// `oldest` has been counted: every second newer than `oldest`, unless `oldest` is folded
    /// (then the fold's other pass is still to come, and nothing is forgotten).
    pub fn end_page(&mut self, oldest: NaiveDateTime, tz: Tz) {
        if !is_ambiguous(oldest, tz) {
            self.counts.retain(|_, (t, _)| *t <= oldest);
        }
    }

    /// Number of groups held (for memory tests).
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(time: &str, user: &str, action: &str) -> lastpass::Event {
        lastpass::Event {
            time: NaiveDateTime::parse_from_str(time, WIRE_FORMAT).expect("test time"),
            username: user.into(),
            ip_address: "10.0.0.1".into(),
            action: action.into(),
            data: String::new(),
            id: None,
        }
    }

    #[test]
    fn hash_is_stable_and_field_separated() {
        let a = ContentHash::of(&ev("2026-01-01 10:00:00", "a@x.io", "Log in"));
        // Pinned: changing the hash input silently re-keys every stored event.
        assert_eq!(
            a.to_hex(),
            ContentHash::of(&ev("2026-01-01 10:00:00", "a@x.io", "Log in")).to_hex()
        );
        assert_ne!(
            a,
            ContentHash::of(&ev("2026-01-01 10:00:01", "a@x.io", "Log in"))
        );
        assert_ne!(
            a,
            ContentHash::of(&ev("2026-01-01 10:00:00", "a@x.io", "Log In"))
        );
        let x = ContentHash::of_fields(NaiveDateTime::default(), "ab", "c", "", "");
        let y = ContentHash::of_fields(NaiveDateTime::default(), "a", "bc", "", "");
        assert_ne!(x, y);
        assert_eq!(ContentHash::from_hex(&a.to_hex()), Some(a));
    }

    #[test]
    fn pinned_id_value() {
        let h = ContentHash::of(&ev(
            "2015-07-17 09:51:51",
            "j.user@example.com",
            "Failed Login Attempt",
        ));
        assert_eq!(h.to_hex(), PINNED);
    }
    // Recomputed independently: sha256(tag ‖ (u64 LE len ‖ bytes) per field)[..16].
    const PINNED: &str = "7912568c7e123c61142586e6e1ddc9c0";

    #[test]
    fn id_text_round_trips_and_is_canonical() {
        let h = ContentHash([0xab; 16]);
        let id = EventId {
            content: h,
            occurrence: 7,
        };
        let s = id.to_string();
        assert_eq!(s, format!("{}-7", "ab".repeat(16)));
        assert_eq!(s.parse::<EventId>().ok(), Some(id));
        assert_eq!(serde_json::to_string(&id).ok(), Some(format!("\"{s}\"")));
        for bad in [
            "",
            "abc-1",
            &format!("{}-", "ab".repeat(16)),
            &format!("{}-07", "ab".repeat(16)),
            &format!("{}-1", "AB".repeat(16)),
            &format!("{}-x", "ab".repeat(16)),
            &format!("{}1", "ab".repeat(16)),
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn identical_events_get_consecutive_occurrences_across_pages() {
        let tz = Tz::UTC;
        let mut s = Sequencer::new();
        let p1 = s.page(
            vec![
                ev("2026-01-01 10:00:02", "a", "Log in"),
                ev("2026-01-01 10:00:01", "a", "Log in"),
                ev("2026-01-01 10:00:01", "a", "Log in"),
            ],
            tz,
        );
        let p2 = s.page(
            vec![
                ev("2026-01-01 10:00:01", "a", "Log in"),
                ev("2026-01-01 10:00:01", "b", "Log in"),
                ev("2026-01-01 10:00:00", "a", "Log in"),
            ],
            tz,
        );
        let occ: Vec<u32> = p1.iter().chain(&p2).map(|r| r.id.occurrence).collect();
        assert_eq!(occ, [0, 0, 1, 2, 0, 0]);
        // Only the boundary second is remembered.
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn record_serialises_original_and_derived_fields() {
        let mut e = ev("2026-01-15 09:00:00", "a@x.io", "Failed Login Attempt");
        e.id = Some("1768485600000000".into());
        let r = EventRecord::new(e, 0, chrono_tz::America::New_York);
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["time"], "2026-01-15 09:00:00");
        assert_eq!(v["time_utc"], "2026-01-15T14:00:00Z");
        assert_eq!(v["time_zone"], "America/New_York");
        assert_eq!(v["category"], "authentication");
        assert_eq!(v["siem_id"], "1768485600000000");
        assert!(v["id"].as_str().is_some_and(|s| s.ends_with("-0")));
        let back: EventRecord = serde_json::from_value(v).expect("back");
        assert_eq!(back, r);
    }
}
