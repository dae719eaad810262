//! `lpbridge events list`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use clap::Subcommand;
use lastpass::{EventQuery, MAX_EVENTS_PER_CALL};

use super::Ctx;
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum EventsCmd {
    /// Events in a time window, newest first, streamed through `next` pages (reporting).
    /// Times are in the account's time zone, as LastPass uses them.
    #[command(
        after_help = "Dates: 'YYYY-MM-DD HH:MM:SS', 'YYYY-MM-DDTHH:MM:SS' or 'YYYY-MM-DD' (--from: 00:00:00,\n\
        --to: 23:59:59 of that day). Without --to, the window ends now.\n\nExample:\n  \
        lpbridge events list --from 2026-11-01 --to 2026-11-23 --search Login --format jsonl\n  \
        lpbridge events list --from '2026-01-01 00:00:00' --limit 20"
    )]
    List {
        /// Start of the window (account time zone).
        #[arg(long, value_parser = parse_from)]
        from: NaiveDateTime,
        /// End of the window (account time zone) [default: now, in every time zone].
        #[arg(long, value_parser = parse_to)]
        to: Option<NaiveDateTime>,
        /// Only events whose fields match this text.
        #[arg(long)]
        search: Option<String>,
        /// Only this user's events (default: all users).
        #[arg(long)]
        user: Option<lastpass::Email>,
        /// Only admin events.
        #[arg(long)]
        admin_only: bool,
        /// At most this many events.
        #[arg(long)]
        limit: Option<u64>,
    },
}

fn parse_dt(s: &str, end_of_day: bool) -> std::result::Result<NaiveDateTime, String> {
    let s = s.trim();
    for fmt in [
        lastpass::DATETIME_FORMAT,
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(d);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end_of_day {
            NaiveTime::from_hms_opt(23, 59, 59)
        } else {
            NaiveTime::from_hms_opt(0, 0, 0)
        };
        if let Some(t) = t {
            return Ok(d.and_time(t));
        }
    }
    Err(format!(
        "invalid date {s:?}: expected YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"
    ))
}

fn parse_from(s: &str) -> std::result::Result<NaiveDateTime, String> {
    parse_dt(s, false)
}

fn parse_to(s: &str) -> std::result::Result<NaiveDateTime, String> {
    parse_dt(s, true)
}

pub async fn run(ctx: &Ctx, cmd: EventsCmd) -> Result<()> {
    let EventsCmd::List {
        from,
        to,
        search,
        user,
        admin_only,
        limit,
    } = cmd;
    // LastPass reads the window in the account's time zone, which the client does not know:
    // "now" is taken in the easternmost zone (UTC+14), so no event written so far is left out.
    let now = || {
        let t = (chrono::Utc::now() + chrono::Duration::hours(14)).naive_utc();
        t.with_nanosecond(0).unwrap_or(t)
    };
    let to = match to {
        Some(to) if from > to => {
            return Err(Error::usage(format!(
                "--from ({from}) is after --to ({to})"
            )));
        }
        Some(to) => to,
        None => {
            let to = now();
            if from > to {
                return Err(Error::usage(format!("--from ({from}) is in the future")));
            }
            to
        }
    };
    let client = ctx.client()?;
    let query = EventQuery {
        from,
        to,
        search,
        user: user.map(|u| u.to_string()),
        admin_only,
    };
    tracing::debug!(max_per_call = MAX_EVENTS_PER_CALL, "streaming events");
    super::emit_stream(ctx, client.events(query), limit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_with_day_bounds() {
        assert_eq!(
            parse_from("2026-11-01").unwrap().to_string(),
            "2026-11-01 00:00:00"
        );
        assert_eq!(
            parse_to("2026-11-01").unwrap().to_string(),
            "2026-11-01 23:59:59"
        );
        assert_eq!(
            parse_from("2026-11-01 10:20:30").unwrap().to_string(),
            "2026-11-01 10:20:30"
        );
        assert!(
            parse_from("yesterday")
                .unwrap_err()
                .contains("\"yesterday\"")
        );
    }
}
