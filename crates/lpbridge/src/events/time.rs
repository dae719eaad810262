//! Times between LastPass's account-zone wall clock and UTC.
//!
//! Owns three things:
//! - the one rule for turning an account-zone wall-clock second into an instant
//!   ([`local_to_utc`]), used for event timestamps and user input alike;
//! - DST fold detection ([`is_ambiguous`], [`fold_safe_from`], [`fold_safe_to`]): the window
//!   bounds the watcher sends are always unambiguous seconds, so LastPass's own reading of an
//!   ambiguous bound never matters;
//! - parsing `--from` / `--to` ([`parse_bound`]).
//!
//! **DST rule.** LastPass sends `YYYY-MM-DD HH:MM:SS` without an offset.
//! - *Overlap* (clocks go back; the wall-clock hour happens twice): the **earlier** instant.
//!   The text alone cannot tell the two apart; the sandbox reads ambiguous `from`/`to` the same
//!   way. Event ids and de-duplication never depend on this choice (they key on the text).
//! - *Gap* (clocks go forward; the wall-clock time never happened): read with the offset in
//!   effect **before** the gap, i.e. shifted forward by the gap's length (`02:30` on a US
//!   spring-forward day is `03:30` EDT). LastPass never sends such a time; only user input can
//!   hold one.

use std::borrow::Cow;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use lp_types::InvalidValue;

/// The wire format of `Time` and of the `from`/`to` request fields.
pub const WIRE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The instant of an account-zone wall-clock time (see the module docs for the DST rule).
pub fn local_to_utc(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // A day earlier (as if UTC) is before the gap: no zone offset exceeds 14 h and no
            // gap exceeds 24 h (Samoa 2011), and zones never change offset twice in two days.
            let before = tz.offset_from_utc_datetime(&(local - Duration::days(1)));
            let offset = chrono::Offset::fix(&before);
            (local - Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc()
        }
    }
}

/// The account-zone wall-clock second of an instant (sub-second part dropped).
pub fn utc_to_local(t: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    let local = t.with_timezone(&tz).naive_local();
    truncate(local)
}

/// Whether this wall-clock time happens twice in `tz` (a DST fold).
pub fn is_ambiguous(local: NaiveDateTime, tz: Tz) -> bool {
    matches!(tz.from_local_datetime(&local), LocalResult::Ambiguous(..))
}

/// The last unambiguous wall-clock second before the fold that contains `local`, or `local`
/// itself when it is not in a fold.
///
/// Bounds of a window are moved here so that a window holds both passes of a folded hour or
/// neither, and so that every bound LastPass reads is unambiguous.
pub fn before_fold(local: NaiveDateTime, tz: Tz) -> NaiveDateTime {
    let mut cur = truncate(local);
    // Folds can abut another transition only in pathological zone data; the loop is bounded.
    for _ in 0..4 {
        let LocalResult::Ambiguous(a, b) = tz.from_local_datetime(&cur) else {
            return cur;
        };
        let (early, late) = (a.min(b), a.max(b));
        let off_late = *late.offset();
        // Binary search the transition instant: the first second with the later offset.
        let (mut lo, mut hi) = (early.timestamp(), late.timestamp());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let Some(m) = DateTime::from_timestamp(mid, 0) else {
                break;
            };
            if tz.offset_from_utc_datetime(&m.naive_utc()) == off_late {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        // The fold starts at the transition read with the later offset; one second earlier is
        // the last wall-clock second that happens once.
        let Some(transition) = DateTime::from_timestamp(hi, 0) else {
            return cur;
        };
        let fold_start = transition.with_timezone(&tz).naive_local();
        cur = fold_start - Duration::seconds(1);
    }
    cur
}

/// The `from` bound to send for a window meant to start at `t`: `t`'s wall-clock second, moved
/// before a fold it falls in (so the fold's first pass is read whole).
pub fn fold_safe_from(t: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    before_fold(utc_to_local(t, tz), tz)
}

/// The `to` bound to send for a window meant to end at `t`: `t`'s wall-clock second, moved
/// before a fold it falls in (the fold is then read once both passes are over).
pub fn fold_safe_to(t: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    before_fold(utc_to_local(t, tz), tz)
}

/// Which end of a window a user-given time is: decides how a bare date is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// `--from`: a date means its first second (`00:00:00`).
    Start,
    /// `--to`: a date means its last second (`23:59:59`); `to` is inclusive.
    End,
}

/// Parses a `--from` / `--to` value into an instant.
///
/// Accepted: RFC 3339 with an offset or `Z` (`2026-03-01T12:00:00Z`); `YYYY-MM-DD HH:MM:SS`,
/// `YYYY-MM-DDTHH:MM:SS` or `YYYY-MM-DD HH:MM` in the account zone `tz`; `YYYY-MM-DD` (see
/// [`Edge`]). Sub-seconds are dropped (LastPass works in whole seconds). Errors name `field`
/// and the value.
pub fn parse_bound(
    field: impl Into<Cow<'static, str>>,
    value: &str,
    tz: Tz,
    edge: Edge,
) -> Result<DateTime<Utc>, InvalidValue> {
    let s = value.trim();
    if s.is_empty() {
        return Err(InvalidValue::new(field, value, "is empty"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(truncate_utc(t.with_timezone(&Utc)));
    }
    for fmt in [WIRE_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(local) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(local_to_utc(local, tz));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = match edge {
            Edge::Start => NaiveTime::MIN,
            // 23:59:59 always exists; the constant avoids an Option.
            Edge::End => {
                NaiveTime::from_num_seconds_from_midnight_opt(86_399, 0).unwrap_or(NaiveTime::MIN)
            }
        };
        return Ok(local_to_utc(d.and_time(t), tz));
    }
    Err(InvalidValue::new(
        field,
        value,
        format!(
            "expected RFC 3339 (2026-03-01T12:00:00Z), 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD' \
             in the account time zone ({})",
            tz.name()
        ),
    ))
}

/// Parses an account time-zone name (`US/Eastern`, `Europe/Berlin`), naming `field` on error.
pub fn parse_time_zone(
    field: impl Into<Cow<'static, str>>,
    value: &str,
) -> Result<Tz, InvalidValue> {
    value.trim().parse::<Tz>().map_err(|_| {
        InvalidValue::new(
            field,
            value,
            "unknown time zone: expected an IANA name such as US/Eastern or Europe/Berlin",
        )
    })
}

fn truncate(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike;
    t.with_nanosecond(0).unwrap_or(t)
}

fn truncate_utc(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Timelike;
    t.with_nanosecond(0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, WIRE_FORMAT).expect("test time")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .with_timezone(&Utc)
    }

    const NY: Tz = chrono_tz::America::New_York;

    #[test]
    fn plain_times_convert_with_the_zone_offset() {
        assert_eq!(
            local_to_utc(dt("2026-01-15 09:00:00"), NY),
            utc("2026-01-15T14:00:00Z")
        );
        assert_eq!(
            local_to_utc(dt("2026-07-15 09:00:00"), NY),
            utc("2026-07-15T13:00:00Z")
        );
        assert_eq!(
            local_to_utc(dt("2026-07-15 09:00:00"), Tz::UTC),
            utc("2026-07-15T09:00:00Z")
        );
    }

    #[test]
    fn overlap_takes_the_earlier_instant() {
        // 2025-11-02 01:30 happens at 05:30Z (EDT) and 06:30Z (EST).
        assert!(is_ambiguous(dt("2025-11-02 01:30:00"), NY));
        assert_eq!(
            local_to_utc(dt("2025-11-02 01:30:00"), NY),
            utc("2025-11-02T05:30:00Z")
        );
    }

    #[test]
    fn gap_shifts_forward_by_the_gap() {
        // 2025-03-09 02:30 does not exist in New York; read with EST (-5) → 07:30Z = 03:30 EDT.
        assert_eq!(
            local_to_utc(dt("2025-03-09 02:30:00"), NY),
            utc("2025-03-09T07:30:00Z")
        );
        // Lord Howe's 30-minute gap (02:00 → 02:30 on 2025-10-05), offset +10:30 before it.
        let lh = chrono_tz::Australia::Lord_Howe;
        assert_eq!(
            local_to_utc(dt("2025-10-05 02:15:00"), lh),
            utc("2025-10-04T15:45:00Z")
        );
        // Samoa skipped 2011-12-30 entirely (offset -10 before).
        let apia = chrono_tz::Pacific::Apia;
        assert_eq!(
            local_to_utc(dt("2011-12-30 12:00:00"), apia),
            utc("2011-12-30T22:00:00Z")
        );
    }

    #[test]
    fn before_fold_finds_the_last_single_second() {
        assert_eq!(
            before_fold(dt("2025-11-02 01:30:00"), NY),
            dt("2025-11-02 00:59:59")
        );
        assert_eq!(
            before_fold(dt("2025-11-02 01:00:00"), NY),
            dt("2025-11-02 00:59:59")
        );
        assert_eq!(
            before_fold(dt("2025-11-02 01:59:59"), NY),
            dt("2025-11-02 00:59:59")
        );
        assert_eq!(
            before_fold(dt("2025-11-02 02:00:00"), NY),
            dt("2025-11-02 02:00:00")
        );
        assert_eq!(
            before_fold(dt("2025-11-02 00:59:59"), NY),
            dt("2025-11-02 00:59:59")
        );
        let lh = chrono_tz::Australia::Lord_Howe; // folds 01:30–02:00 on 2025-04-06
        assert_eq!(
            before_fold(dt("2025-04-06 01:45:00"), lh),
            dt("2025-04-06 01:29:59")
        );
        // Both passes of the fold map to the same safe bound.
        assert_eq!(
            fold_safe_to(utc("2025-11-02T05:30:00Z"), NY),
            dt("2025-11-02 00:59:59")
        );
        assert_eq!(
            fold_safe_to(utc("2025-11-02T06:30:00Z"), NY),
            dt("2025-11-02 00:59:59")
        );
        assert_eq!(
            fold_safe_from(utc("2025-11-02T07:00:00Z"), NY),
            dt("2025-11-02 02:00:00")
        );
    }

    #[test]
    fn parse_bound_accepts_the_documented_forms() {
        let p = |v: &str, e| parse_bound("--from", v, NY, e);
        assert_eq!(
            p("2026-03-01T12:00:00Z", Edge::Start),
            Ok(utc("2026-03-01T12:00:00Z"))
        );
        assert_eq!(
            p("2026-03-01T12:00:00.9+01:00", Edge::Start),
            Ok(utc("2026-03-01T11:00:00Z"))
        );
        assert_eq!(
            p("2026-01-15 09:00:00", Edge::Start),
            Ok(utc("2026-01-15T14:00:00Z"))
        );
        assert_eq!(
            p("2026-01-15T09:00:00", Edge::Start),
            Ok(utc("2026-01-15T14:00:00Z"))
        );
        assert_eq!(
            p("2026-01-15 09:00", Edge::Start),
            Ok(utc("2026-01-15T14:00:00Z"))
        );
        assert_eq!(
            p(" 2026-01-15 ", Edge::Start),
            Ok(utc("2026-01-15T05:00:00Z"))
        );
        assert_eq!(p("2026-01-15", Edge::End), Ok(utc("2026-01-16T04:59:59Z")));
    }

    #[test]
    fn parse_bound_errors_name_field_and_value() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30 10:00:00",
            "15/01/2026",
        ] {
            let e = parse_bound("--to", bad, NY, Edge::End).expect_err(bad);
            assert_eq!(e.field, "--to");
            assert_eq!(e.value, bad);
            assert!(e.to_string().contains("--to"), "{e}");
        }
        let field = String::from("from");
        let e = parse_bound(field, "x", NY, Edge::Start).expect_err("x");
        assert!(e.reason.contains("America/New_York"), "{}", e.reason);
    }

    #[test]
    fn time_zone_names() {
        assert_eq!(
            parse_time_zone("time_zone", "US/Eastern"),
            Ok(chrono_tz::US::Eastern)
        );
        let e = parse_time_zone("time_zone", "Mars/Olympus").expect_err("bad zone");
        assert_eq!(
            (e.field.as_ref(), e.value.as_str()),
            ("time_zone", "Mars/Olympus")
        );
    }
}
