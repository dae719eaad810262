//! The NATS sink: each record is one JetStream message on `subject`, and a batch is delivered
//! once JetStream has acknowledged every message.
//!
//! Each message carries `Nats-Msg-Id: <event id>`, so JetStream stores a redelivered event only
//! once, as long as the redelivery falls inside the stream's duplicate window (2 minutes by
//! default; raise `duplicate_window` on the stream if the dispatcher may retry later than that,
//! and de-duplicate on `id` downstream otherwise). Headers: `Nats-Msg-Id`, `Lpbridge-Event-Id`
//! (the same id, for consumers) and `Content-Type: application/json`; the payload is the record's
//! JSON.
//!
//! Publishes are pipelined in windows of [`ACK_WINDOW`] messages (each window's acks are awaited
//! before the next is sent), which bounds the acks in flight.

use std::time::Duration;

use async_nats::jetstream;
use futures::future::BoxFuture;

use super::config::{NatsConfig, validate_nats};
use super::{Sink, SinkError};
use crate::events::EventRecord;

/// Messages published before their acks are awaited.
pub const ACK_WINDOW: usize = 256;
/// Connecting, and each publish's acknowledgement.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct NatsSink {
    name: String,
    subject: String,
    stream: Option<String>,
    js: jetstream::Context,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("name", &self.name)
            .field("subject", &self.subject)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

fn nats_error(context: impl Into<String>, e: impl std::fmt::Display) -> SinkError {
    SinkError::Nats {
        context: context.into(),
        message: e.to_string(),
    }
}

impl NatsSink {
    /// Validates `config`, connects, and creates `stream` (capturing `subject`) if it is set and
    /// absent. An existing stream is used as it is.
    pub async fn connect(name: impl Into<String>, config: &NatsConfig) -> Result<Self, SinkError> {
        let servers = validate_nats(config)?;
        let client = async_nats::ConnectOptions::new()
            .name("lpbridge")
            .connection_timeout(TIMEOUT)
            .connect(servers)
            .await
            .map_err(|e| nats_error("connect", e))?;
        let mut js = jetstream::new(client);
        js.set_timeout(TIMEOUT);
        if let Some(stream) = &config.stream {
            js.get_or_create_stream(jetstream::stream::Config {
                name: stream.clone(),
                subjects: vec![config.subject.clone()],
                ..Default::default()
            })
            .await
            .map_err(|e| nats_error(format!("creating stream {stream:?}"), e))?;
        }
        Ok(Self {
            name: name.into(),
            subject: config.subject.clone(),
            stream: config.stream.clone(),
            js,
        })
    }

    /// The JetStream context (tests inspect the stream through it).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }
}

impl Sink for NatsSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, batch: &'a [EventRecord]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            for window in batch.chunks(ACK_WINDOW) {
                let mut acks = Vec::with_capacity(window.len());
                for r in window {
                    let payload = serde_json::to_vec(r).map_err(|e| SinkError::Encode {
                        id: r.id.to_string(),
                        message: e.to_string(),
                    })?;
                    let id = r.id.to_string();
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("Nats-Msg-Id", id.as_str());
                    headers.insert("Lpbridge-Event-Id", id.as_str());
                    headers.insert("Content-Type", "application/json");
                    let ack = self
                        .js
                        .publish_with_headers(self.subject.clone(), headers, payload.into())
                        .await
                        .map_err(|e| nats_error(format!("publishing event {id}"), e))?;
                    acks.push((id, ack));
                }
                for (id, ack) in acks {
                    ack.await.map_err(|e| {
                        nats_error(format!("awaiting the acknowledgement of event {id}"), e)
                    })?;
                }
            }
            Ok(())
        })
    }
}
