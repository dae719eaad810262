//! `lpbridge events list|watch|replay`: parsing and printing; the watcher, the dispatchers and
//! replay live in [`crate::events`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use clap::Subcommand;
use lastpass::{EventQuery, MAX_EVENTS_PER_CALL};
use lp_types::{ConnectionId, InvalidValue, Secret};
use tokio::sync::watch;

use super::Ctx;
use crate::error::{Error, Result};
use crate::events::dispatch::{self, DispatchOptions, DispatchStats, Dispatcher, SinkTarget};
use crate::events::sinks::{self, FileConfig, NatsConfig, SinkConfig, WebhookConfig};
use crate::events::watcher::{self, Filters, WatchEnd, WatchOptions, WatchStats, Watcher};
use crate::events::{Edge, lease, parse_bound, parse_time_zone};
use crate::output::{Emitter, Record};
use crate::store::DeadLetterQuery;

/// The environment variable holding the secret of `--sink webhook:URL`.
pub const WEBHOOK_SECRET_ENV: &str = "LPBRIDGE_WEBHOOK_SECRET";
/// The environment variable naming the NATS server(s) of `--sink nats:SUBJECT`.
pub const NATS_URL_ENV: &str = "LPBRIDGE_NATS_URL";

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
    /// Collect the event log exactly once into the store and deliver it to sinks: polls
    /// `reporting`, de-duplicates overlapping windows and identical events, and commits each
    /// page with its cursor (a crash or kill resumes without loss or duplicates).
    #[command(after_help = WATCH_HELP)]
    Watch(WatchArgs),
    /// Deliver dead letters (batches a webhook gave up on) again.
    #[command(
        after_help = "Dead letters of a webhook subscription (`/webhooks`) are re-sent with its stored URL and\n\
        secret; those of a --sink webhook:URL need that --sink again (and LPBRIDGE_WEBHOOK_SECRET).\n\
        A delivered dead letter is marked replayed; a failed one stays, with the new error.\n\n\
        Example:\n  LPBRIDGE_WEBHOOK_SECRET=… lpbridge events replay --connection prod --sink webhook:https://siem.example.com/in\n  \
        lpbridge events replay --id 42"
    )]
    Replay {
        /// Only this sink's dead letters: its name (as `lpbridge events watch` logs it) or its
        /// --sink spec (repeatable).
        #[arg(long = "sink", value_name = "NAME|SPEC")]
        sinks: Vec<String>,
        /// Only this dead letter.
        #[arg(long, value_name = "N")]
        id: Option<i64>,
        /// A TOML file with `[[sinks]]` tables (as for `events watch`).
        #[arg(long, env = "LPBRIDGE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

const WATCH_HELP: &str = "\
SINKS (--sink, repeatable; default: stdout):
  stdout                JSON Lines on standard output
  file:PATH             JSON Lines appended to PATH, rotated at 100 MiB (5 files kept)
  webhook:URL           signed POSTs of {\"events\":[…]}; the HMAC secret comes from
                        LPBRIDGE_WEBHOOK_SECRET; retried, then stored as a dead letter
  nats:SUBJECT[@STREAM] JetStream publishes (server: LPBRIDGE_NATS_URL, default 127.0.0.1:4222);
                        with @STREAM, the stream capturing SUBJECT is created when absent
  or [[sinks]] tables in --config FILE (type = stdout|file|webhook|nats, with every option).

CURSORS: without --from, the `live` cursor follows the present (first run: from one hour ago);
with --from [--to], a backfill cursor of that range and filters: running the same command again
resumes it (after a crash or kill), and does nothing once it is done. Events are stored once
per connection whatever the cursor, and each sink keeps its own position.

TIME ZONE: LastPass writes times in the account's zone (Admin Console: Account Settings). It is
the connection's (`connection add --time-zone`) or --time-zone, else US/Eastern. A wrong zone
shifts `time_utc` by the offset: compare an event's `time` with the Admin Console's report.

TIMING: polls every --interval seconds (default 30; `events_poll_secs` in --config); each window
re-reads the last 2 minutes of the previous one, and ends 5 s before now.

Example:
  lpbridge events watch --connection prod --sink file:/var/log/lastpass.jsonl
  lpbridge events watch --from 2026-01-01 --to 2026-01-31 --sink file:jan.jsonl --once
  LPBRIDGE_WEBHOOK_SECRET=s3cret lpbridge events watch --sink webhook:https://siem.example.com/in";

/// `lpbridge events watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Backfill from this time: RFC 3339, or 'YYYY-MM-DD[ HH:MM:SS]' in the account zone.
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// Backfill to this time, inclusive (needs --from) [default: follow the present].
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// Only events whose fields contain this text.
    #[arg(long)]
    search: Option<String>,
    /// Only this user's events.
    #[arg(long, value_name = "EMAIL")]
    user: Option<lastpass::Email>,
    /// Only admin events.
    #[arg(long)]
    admin_only: bool,
    /// At most this many events per poll (rounded up to a whole page of up to 10,000); the
    /// rest follows on the next polls.
    #[arg(long, value_name = "N")]
    limit_per_cycle: Option<u64>,
    /// Seconds between polls [default: 30, or `events_poll_secs` from --config].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    interval: Option<u64>,
    /// The account's time zone (IANA name), instead of the connection's.
    #[arg(long, value_name = "TZ")]
    time_zone: Option<String>,
    /// Where events go (repeatable): stdout, file:PATH, webhook:URL, nats:SUBJECT.
    #[arg(long = "sink", value_name = "SPEC")]
    sinks: Vec<String>,
    /// A TOML file with `[[sinks]]` tables and `events_poll_secs` (the `serve` config file).
    #[arg(long, env = "LPBRIDGE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Stop once the backfill is done (or, without --to, everything up to now is read) and
    /// every sink has it.
    #[arg(long)]
    once: bool,
    /// Events per delivery batch [default: 1000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch_size: Option<u64>,
    /// Seconds each window re-reads of the previous one (late events) [default: 120].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    overlap: Option<u64>,
    /// Seconds before a dead watcher's lease lets another process take over [default: 30].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_ttl: Option<u64>,
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
    match cmd {
        EventsCmd::List {
            from,
            to,
            search,
            user,
            admin_only,
            limit,
        } => list(ctx, from, to, search, user, admin_only, limit).await,
        EventsCmd::Watch(args) => watch(ctx, args).await,
        EventsCmd::Replay { sinks, id, config } => replay(ctx, sinks, id, config).await,
    }
}

async fn list(
    ctx: &Ctx,
    from: NaiveDateTime,
    to: Option<NaiveDateTime>,
    search: Option<String>,
    user: Option<lastpass::Email>,
    admin_only: bool,
    limit: Option<u64>,
) -> Result<()> {
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

/// A `--sink` spec as a sink configuration. `secret` and `nats_url` are the values of
/// [`WEBHOOK_SECRET_ENV`] and [`NATS_URL_ENV`].
pub fn parse_sink_spec(
    spec: &str,
    secret: Option<Secret>,
    nats_url: Option<String>,
) -> Result<SinkConfig, InvalidValue> {
    let spec = spec.trim();
    let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
    let needs = |what: &str| {
        InvalidValue::new(
            "--sink",
            spec,
            format!("{kind} needs {what}, e.g. {kind}:{}", example(kind)),
        )
    };
    fn example(kind: &str) -> &'static str {
        match kind {
            "file" => "/var/log/lastpass.jsonl",
            "webhook" => "https://siem.example.com/lastpass",
            _ => "lastpass.events",
        }
    }
    let config = match kind {
        "stdout" if rest.is_empty() => SinkConfig::Stdout(Default::default()),
        "stdout" => {
            return Err(InvalidValue::new(
                "--sink",
                spec,
                "stdout takes no argument",
            ));
        }
        "file" if rest.is_empty() => return Err(needs("a path")),
        "file" => SinkConfig::File(FileConfig::new(rest)),
        "webhook" if rest.is_empty() => return Err(needs("a URL")),
        "webhook" => {
            let secret = secret.filter(|s| !s.is_empty()).ok_or_else(|| {
                InvalidValue::new(
                    "--sink",
                    spec,
                    format!("needs the webhook's HMAC secret in {WEBHOOK_SECRET_ENV}"),
                )
            })?;
            SinkConfig::Webhook(WebhookConfig::new(rest, secret))
        }
        "nats" if rest.is_empty() => return Err(needs("a subject")),
        "nats" => {
            // `SUBJECT@STREAM`: also create the stream capturing it when absent.
            let (subject, stream) = match rest.split_once('@') {
                Some((subj, stream)) => (subj, Some(stream.to_owned())),
                None => (rest, None),
            };
            let mut c = NatsConfig::new(subject);
            c.stream = stream;
            if let Some(u) = nats_url.filter(|u| !u.trim().is_empty()) {
                c.url = u;
            }
            SinkConfig::Nats(c)
        }
        _ => {
            return Err(InvalidValue::new(
                "--sink",
                spec,
                format!(
                    "unknown sink type {kind:?}: expected stdout, file:PATH, webhook:URL or \
                     nats:SUBJECT"
                ),
            ));
        }
    };
    config.validate().map_err(|e| match e {
        sinks::SinkConfigError::Invalid(v) => v,
        other => InvalidValue::new("--sink", spec, other.to_string()),
    })?;
    Ok(config)
}

fn env_secret() -> Option<Secret> {
    std::env::var(WEBHOOK_SECRET_ENV).ok().map(Secret::new)
}

/// The sinks of `--sink` flags and of the config file's `[[sinks]]`, validated (names unique).
fn sink_configs(specs: &[String], file: &crate::serve::FileConfig) -> Result<Vec<SinkConfig>> {
    let nats_url = std::env::var(NATS_URL_ENV).ok();
    let mut out = Vec::new();
    for spec in specs {
        out.push(parse_sink_spec(spec, env_secret(), nats_url.clone())?);
    }
    out.extend(file.sinks.iter().flatten().cloned());
    SinkConfig::validate_all(&out).map_err(|e| match e {
        sinks::SinkConfigError::Invalid(v) => Error::Invalid(v),
        other => Error::usage(other.to_string()),
    })?;
    Ok(out)
}

fn load_config(path: Option<&std::path::Path>) -> Result<crate::serve::FileConfig> {
    match path {
        Some(p) => crate::serve::FileConfig::load(p).map_err(|e| Error::usage(e.to_string())),
        None => Ok(crate::serve::FileConfig::default()),
    }
}

/// The stored connection id the watch runs for, and its time zone: a stored connection, or
/// `cid-<cid>` for credentials from the environment.
async fn watched_connection(
    ctx: &Ctx,
    store: &crate::store::Store,
) -> Result<(ConnectionId, Option<chrono_tz::Tz>)> {
    let built = ctx.built()?;
    if built.source == "(environment)" {
        return Ok((
            ConnectionId::new(format!("cid-{}", built.client.cid()))?,
            None,
        ));
    }
    let id = ConnectionId::new(built.source.clone())?;
    let tz = store
        .connection_summary(&id)
        .await?
        .and_then(|c| c.time_zone);
    Ok((id, tz))
}

async fn watch(ctx: &Ctx, a: WatchArgs) -> Result<()> {
    // Everything the flags say is checked before the store or LastPass is touched.
    let file = load_config(a.config.as_deref())?;
    let configs = sink_configs(&a.sinks, &file)?;
    let tz_flag = a
        .time_zone
        .as_deref()
        .map(|t| parse_time_zone("--time-zone", t))
        .transpose()?;
    // The syntax of --from/--to now; their instants once the account's zone is known.
    let mut early = [None, None];
    for (i, (flag, value, edge)) in [("--from", &a.from, Edge::Start), ("--to", &a.to, Edge::End)]
        .into_iter()
        .enumerate()
    {
        if let Some(v) = value {
            early[i] = Some(parse_bound(flag, v, chrono_tz::UTC, edge).map_err(|_| {
                InvalidValue::new(
                    flag,
                    v.as_str(),
                    "expected RFC 3339 (2026-03-01T12:00:00Z), or 'YYYY-MM-DD HH:MM:SS' or \
                     'YYYY-MM-DD' in the account's time zone",
                )
            })?);
        }
    }
    match early {
        [None, Some(_)] => {
            return Err(Error::usage(
                "--to needs --from: a backfill reads from --from to --to",
            ));
        }
        [Some(f), Some(t)] if f > t => {
            return Err(InvalidValue::new(
                "--from",
                a.from.clone().unwrap_or_default(),
                format!("is after --to ({})", a.to.clone().unwrap_or_default()),
            )
            .into());
        }
        _ => {}
    }
    let interval = a
        .interval
        .or(file.events_poll_secs)
        .map_or(watcher::DEFAULT_INTERVAL, Duration::from_secs);
    let store = ctx.store().await?.clone();
    let (conn, stored_tz) = watched_connection(ctx, &store).await?;
    let tz = match tz_flag.or(stored_tz) {
        Some(tz) => tz,
        None => {
            crate::note!(
                "lpbridge: connection {} has no time zone; reading LastPass times as US/Eastern \
                 (set one with --time-zone or `lpbridge connection update --time-zone`)",
                conn.as_str()
            );
            chrono_tz::US::Eastern
        }
    };
    let bound = |flag: &'static str, v: &Option<String>, edge| {
        v.as_deref()
            .map(|v| parse_bound(flag, v, tz, edge))
            .transpose()
    };
    let opts = WatchOptions {
        filters: Filters {
            search: a.search.filter(|s| !s.is_empty()),
            user: a.user.map(|u| u.to_string()),
            admin_only: a.admin_only,
        },
        from: bound("--from", &a.from, Edge::Start)?,
        to: bound("--to", &a.to, Edge::End)?,
        limit_per_cycle: a.limit_per_cycle,
        interval,
        overlap: a
            .overlap
            .map_or(watcher::DEFAULT_OVERLAP, Duration::from_secs),
        settle: watcher::DEFAULT_SETTLE,
        time_zone: tz,
        lease_ttl: a
            .lease_ttl
            .map_or(watcher::DEFAULT_LEASE_TTL, Duration::from_secs),
        once: a.once,
        clock: Default::default(),
    };
    opts.validate()?;
    let configs = if configs.is_empty() {
        vec![SinkConfig::Stdout(Default::default())]
    } else {
        configs
    };
    let owner = lease::owner_id();
    let client = ctx.client()?.clone();
    let w = Watcher::new(
        store.clone(),
        client,
        conn.clone(),
        opts.clone(),
        owner.clone(),
    )
    .map_err(watch_error)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (drain_tx, drain_rx) = watch::channel(None::<i64>);
    let mut dopts = DispatchOptions::new(owner);
    dopts.lease_ttl = opts.lease_ttl;
    if let Some(n) = a.batch_size {
        dopts.batch_size = usize::try_from(n).unwrap_or(dispatch::DEFAULT_BATCH_SIZE);
    }
    let mut tasks = Vec::new();
    let mut stats = Vec::new();
    for config in &configs {
        let sink = sinks::build(config)
            .await
            .map_err(|e| Error::config(format!("sink {}: {e}", config.name())))?;
        let d = Dispatcher::new(
            store.clone(),
            conn.clone(),
            SinkTarget::new(Arc::from(sink)),
            dopts.clone(),
            w.notify(),
        );
        stats.push((d.sink_name().to_owned(), d.stats()));
        let (stop, drain) = (stop_rx.clone(), drain_rx.clone());
        tasks.push(tokio::spawn(async move { d.run(stop, drain).await }));
    }
    tracing::info!(connection = %conn, cursor = %w.cursor(), sinks = configs.len(), "watching events");
    let signal_stop = stop_tx.clone();
    let signals = tokio::spawn(async move {
        crate::serve::wait_for_signal().await;
        let _ = signal_stop.send(true);
    });
    let end = w.run(stop_rx.clone()).await;
    match &end {
        Ok(WatchEnd::Done | WatchEnd::CaughtUp) => {
            // Every sink gets everything committed so far, then the dispatchers end.
            let last = store.max_event_seq(&conn).await?;
            let _ = drain_tx.send(Some(last));
        }
        Ok(WatchEnd::Stopped) | Err(_) => {
            let _ = stop_tx.send(true);
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    signals.abort();
    let ws = w.stats();
    let delivered: Vec<String> = stats
        .iter()
        .map(|(name, s)| {
            format!(
                "{name}={} (dead letters {})",
                DispatchStats::get(&s.delivered),
                DispatchStats::get(&s.dead_letters)
            )
        })
        .collect();
    crate::note!(
        "lpbridge: events of {}: {} new, {} read again, {} reporting pages; delivered: {}",
        conn.as_str(),
        WatchStats::get(&ws.events_new),
        WatchStats::get(&ws.duplicates),
        WatchStats::get(&ws.pages),
        delivered.join(", ")
    );
    end.map(|_| ()).map_err(watch_error)
}

fn watch_error(e: watcher::WatchError) -> Error {
    match e {
        watcher::WatchError::Invalid(v) => Error::Invalid(v),
        watcher::WatchError::Store(s) => Error::Store(s),
        watcher::WatchError::LastPass(l) => Error::LastPass(l),
        other => Error::config(other.to_string()),
    }
}

/// One line of `events replay`'s report.
#[derive(serde::Serialize)]
struct ReplayRow {
    id: i64,
    connection: String,
    sink: String,
    events: usize,
    status: &'static str,
    error: Option<String>,
}

impl Record for ReplayRow {
    fn headers() -> &'static [&'static str] {
        &["id", "connection", "sink", "events", "status", "error"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.connection.clone(),
            self.sink.clone(),
            self.events.to_string(),
            self.status.to_owned(),
            self.error.clone().unwrap_or_default(),
        ]
    }
}

async fn replay(
    ctx: &Ctx,
    sink_args: Vec<String>,
    id: Option<i64>,
    config: Option<PathBuf>,
) -> Result<()> {
    let file = load_config(config.as_deref())?;
    let nats_url = std::env::var(NATS_URL_ENV).ok();
    // Each --sink is a name, or a spec whose derived name is the dead letters' sink.
    let mut configs: Vec<SinkConfig> = file.sinks.clone().unwrap_or_default();
    let mut names = Vec::new();
    for s in &sink_args {
        names.push(s.clone());
        if let Ok(c) = parse_sink_spec(s, env_secret(), nats_url.clone()) {
            names.push(c.name());
            configs.push(c);
        }
    }
    let Some(store) = ctx.existing_store().await? else {
        return Err(Error::NotFound(
            "no dead letters: the store does not exist".into(),
        ));
    };
    let connection = match &ctx.global.connection {
        Some(c) => Some(c.clone()),
        None => std::env::var("LPBRIDGE_CONNECTION")
            .ok()
            .filter(|s| !s.is_empty())
            .map(ConnectionId::new)
            .transpose()?,
    };
    let mut resolver = dispatch::SinkResolver::new(store.clone(), configs);
    let mut outcomes = Vec::new();
    let queries: Vec<DeadLetterQuery> = if names.is_empty() {
        vec![DeadLetterQuery {
            connection: connection.clone(),
            id,
            ..Default::default()
        }]
    } else {
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        unique
            .into_iter()
            .map(|n| DeadLetterQuery {
                connection: connection.clone(),
                sink: Some(n),
                id,
                ..Default::default()
            })
            .collect()
    };
    for q in &queries {
        outcomes.extend(dispatch::replay(store, q, &mut resolver).await?);
    }
    if outcomes.is_empty() && id.is_some() {
        return Err(Error::NotFound(format!(
            "no dead letter {} waiting for replay{}",
            id.unwrap_or_default(),
            if names.is_empty() {
                ""
            } else {
                " for that sink"
            }
        )));
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let total = outcomes.len();
    let mut e = Emitter::new::<ReplayRow>(ctx.format, ctx.stdout());
    for o in outcomes {
        e.emit(&ReplayRow {
            id: o.id,
            connection: o.connection_id,
            sink: o.sink,
            events: o.events,
            status: if o.error.is_none() {
                "delivered"
            } else {
                "failed"
            },
            error: o.error,
        })?;
    }
    e.finish()?;
    crate::note!(
        "lpbridge: replayed {} of {total} dead letter(s)",
        total - failed
    );
    if failed > 0 {
        return Err(Error::Partial { failed, total });
    }
    Ok(())
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
