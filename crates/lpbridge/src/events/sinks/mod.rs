//! Event sinks (issue 7): where collected [`EventRecord`]s go. Owns the sink configuration, the
//! [`Sink`] trait the dispatcher calls and its four implementations; not the outbox, the
//! per-sink positions or dead-letter storage (the dispatcher's).
//!
//! # Contract
//!
//! The dispatcher hands a sink one batch at a time with [`Sink::deliver`]. `Ok(())` means the
//! whole batch is durably delivered (written and synced, acknowledged by the receiver or by
//! JetStream), so the dispatcher may advance that sink's position. Any error means it must not:
//! the same records will be delivered again, so delivery is **at least once**, and every record
//! carries its stable [`EventId`](super::EventId) (`id`) for receivers to de-duplicate on. An
//! empty batch is `Ok(())` without I/O.
//!
//! [`SinkError::DeadLetter`] is the one error after which the dispatcher should stop retrying
//! the batch (store it as a dead letter and advance): the webhook sink gave up, its attempts
//! spent or the receiver refusing the batch outright. Every other error is transient from the
//! dispatcher's point of view: retry later.
//!
//! Sinks are independent: [`deliver_all`] runs them concurrently, so an unreachable webhook
//! prevents no other sink's delivery (it returns when the slowest sink is done; a dispatcher
//! that must not wait on a retrying webhook gives each sink its own task and position).
//!
//! # Sinks
//!
//! - [`stdout`]: JSON Lines on standard output, flushed per batch.
//! - [`file`](mod@file): JSON Lines appended to a size-rotated file, `sync_data` per batch; never a
//!   partial line.
//! - [`webhook`]: one signed `POST {"events":[…]}` per batch, retried with backoff;
//!   [`signature`] documents the signature and how receivers verify it.
//! - [`nats`]: one JetStream message per record with `Nats-Msg-Id: <event id>`, so JetStream
//!   drops redeliveries within its duplicate window.
//!
//! Each line, body entry or message is the record's JSON as [`EventRecord`] serialises it.
//! [`config`] describes the configuration format.

pub mod config;
pub mod file;
pub mod nats;
pub mod signature;
pub mod stdout;
pub mod webhook;

use futures::future::BoxFuture;

use super::EventRecord;

pub use config::{
    FileConfig, NatsConfig, SinkConfig, SinkConfigError, StdoutConfig, WebhookConfig,
};
pub use file::FileSink;
pub use nats::NatsSink;
pub use signature::{SignatureError, sign, verify_signature, verify_signature_at};
pub use stdout::StdoutSink;
pub use webhook::WebhookSink;

/// A delivery target. Implementations are cheap to share (`&self`) and safe to call
/// concurrently, though the dispatcher delivers one batch at a time per sink.
pub trait Sink: Send + Sync {
    /// The key the dispatcher stores this sink's position under ([`SinkConfig::name`]).
    fn name(&self) -> &str;

    /// Delivers `batch` as a whole, at least once (see the module docs).
    fn deliver<'a>(&'a self, batch: &'a [EventRecord]) -> BoxFuture<'a, Result<(), SinkError>>;

    /// The last record this sink durably holds, when it can tell (the file sink reads its last
    /// line; others cannot and answer `None`). The dispatcher uses it after a crash to skip what
    /// was delivered but not yet recorded as delivered, which makes such a sink exactly once
    /// rather than at least once.
    fn last_delivered(&self) -> BoxFuture<'_, Result<Option<EventRecord>, SinkError>> {
        Box::pin(async { Ok(None) })
    }
}

/// A failed delivery (or sink construction). Never contains the webhook secret.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] SinkConfigError),
    /// Writing to stdout or the file failed; retry later.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A record could not be encoded (not expected: records are plain data).
    #[error("event {id} could not be encoded as JSON: {message}")]
    Encode { id: String, message: String },
    /// The webhook gave up on this batch: `attempts` spent (transport errors, 408, 429, 5xx) or
    /// refused without retry (other 4xx, redirects). Store the batch as a dead letter.
    #[error("delivery failed after {attempts} attempt(s): {last_error}")]
    DeadLetter { attempts: u32, last_error: String },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
    /// Connecting, creating the stream, publishing or awaiting an acknowledgement failed;
    /// retry later (JetStream drops the duplicates of what did arrive).
    #[error("NATS {context}: {message}")]
    Nats { context: String, message: String },
    /// The blocking writer task died (a panic in the writer).
    #[error("sink task failed: {0}")]
    Task(String),
}

impl SinkError {
    /// Whether the dispatcher should dead-letter the batch rather than retry it.
    pub fn is_dead_letter(&self) -> bool {
        matches!(self, Self::DeadLetter { .. })
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// Builds the sink `config` describes, after [`SinkConfig::validate`]. The file sink opens (or
/// creates) its file; the NATS sink connects and, when `stream` is set, creates the stream.
pub async fn build(config: &SinkConfig) -> Result<Box<dyn Sink>, SinkError> {
    config.validate()?;
    Ok(match config {
        SinkConfig::Stdout(_) => Box::new(StdoutSink::new(config.name())),
        SinkConfig::File(c) => Box::new(FileSink::open(config.name(), c)?),
        SinkConfig::Webhook(c) => Box::new(WebhookSink::new(config.name(), c)?),
        SinkConfig::Nats(c) => Box::new(NatsSink::connect(config.name(), c).await?),
    })
}

/// Delivers `batch` to every sink concurrently; result `i` is sink `i`'s. One sink's failure
/// or slowness affects no other's result.
pub async fn deliver_all<S>(sinks: &[S], batch: &[EventRecord]) -> Vec<Result<(), SinkError>>
where
    S: AsRef<dyn Sink>,
{
    futures::future::join_all(sinks.iter().map(|s| s.as_ref().deliver(batch))).await
}

/// `batch` as JSON Lines: each record's JSON, then `\n`. One `Vec` per line, so the file sink
/// can rotate between lines.
pub(crate) fn json_lines(batch: &[EventRecord]) -> Result<Vec<Vec<u8>>, SinkError> {
    batch
        .iter()
        .map(|r| {
            let mut line = serde_json::to_vec(r).map_err(|e| SinkError::Encode {
                id: r.id.to_string(),
                message: e.to_string(),
            })?;
            line.push(b'\n');
            Ok(line)
        })
        .collect()
}

/// Runs blocking I/O off the async workers, so a slow disk or a blocked stdout pipe stalls no
/// other sink.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, SinkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SinkError::Task(e.to_string()))?
}
