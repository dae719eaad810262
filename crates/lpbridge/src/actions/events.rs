//! `lastpass_list_events`: audit events in a window (reporting, walking `next`), also what the
//! integrator's "watch new reports" trigger reads.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use futures::{StreamExt, TryStreamExt};
use lastpass::{Client, EventQuery, InvalidValue};
use serde_json::json;

use super::types::{DEFAULT_EVENT_LIMIT, ListEventsInput};
use super::{ActionError, ActionOutput, to_data};

/// A window bound in the account's time zone. A bare date is the day's first (`from`) or last
/// (`to`) second. ([`crate::events::time::parse_bound`] also takes RFC 3339 and converts with a
/// known time zone; this action keeps naive account-zone times, so it does not use it.)
fn parse_bound(
    field: &'static str,
    s: &str,
    end_of_day: bool,
) -> Result<NaiveDateTime, InvalidValue> {
    let t = s.trim();
    for fmt in [
        lastpass::DATETIME_FORMAT,
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(d);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let time = if end_of_day {
            NaiveTime::from_hms_opt(23, 59, 59)
        } else {
            NaiveTime::from_hms_opt(0, 0, 0)
        };
        if let Some(time) = time {
            return Ok(d.and_time(time));
        }
    }
    Err(InvalidValue::new(
        field,
        s,
        "expected YYYY-MM-DD, YYYY-MM-DD HH:MM or YYYY-MM-DD HH:MM:SS (account time zone)",
    ))
}

/// "Now" in the easternmost time zone (UTC+14): LastPass reads the window in the account's
/// zone, which lpbridge does not know, and no event written so far may be left out.
fn now_bound() -> NaiveDateTime {
    let t = (chrono::Utc::now() + chrono::Duration::hours(14)).naive_utc();
    t.with_nanosecond(0).unwrap_or(t)
}

pub(super) async fn list(client: &Client, i: ListEventsInput) -> Result<ActionOutput, ActionError> {
    let from = parse_bound("from", &i.from, false)?;
    let to = match &i.to {
        Some(t) => parse_bound("to", t, true)?,
        None => now_bound(),
    };
    if from > to {
        return Err(InvalidValue::new("from", &i.from, format!("is after to ({to})")).into());
    }
    let query = EventQuery {
        from,
        to,
        search: i.search.filter(|s| !s.is_empty()),
        user: i.user.map(|u| u.0.to_string()),
        admin_only: i.admin_only,
    };
    let limit = i.limit.unwrap_or(DEFAULT_EVENT_LIMIT) as usize;
    // One more than asked, to tell whether the answer was cut.
    let mut events: Vec<lastpass::Event> =
        client.events(query).take(limit + 1).try_collect().await?;
    let truncated = events.len() > limit;
    events.truncate(limit);
    Ok(ActionOutput::read(json!({
        "from": from.format(lastpass::DATETIME_FORMAT).to_string(),
        "to": to.format(lastpass::DATETIME_FORMAT).to_string(),
        "events": to_data(&events),
        "count": events.len(),
        "truncated": truncated,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_parse_with_day_edges_and_name_the_field() {
        assert_eq!(
            parse_bound("from", "2026-01-05", false)
                .unwrap()
                .to_string(),
            "2026-01-05 00:00:00"
        );
        assert_eq!(
            parse_bound("to", "2026-01-05", true).unwrap().to_string(),
            "2026-01-05 23:59:59"
        );
        assert_eq!(
            parse_bound("from", "2026-01-05T10:20:30", false)
                .unwrap()
                .to_string(),
            "2026-01-05 10:20:30"
        );
        let e = parse_bound("to", "yesterday", true).unwrap_err();
        assert_eq!((e.field.as_ref(), e.value.as_str()), ("to", "yesterday"));
    }
}
