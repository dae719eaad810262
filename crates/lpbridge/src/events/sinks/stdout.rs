//! The stdout sink: JSON Lines, one record per line, flushed per batch.
//!
//! A batch is written with one `write_all` under the writer's lock, so batches from concurrent
//! callers never interleave inside a line.

use std::io::Write;
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::{Sink, SinkError, blocking, json_lines};
use crate::events::EventRecord;

type Writer = Box<dyn Write + Send>;

pub struct StdoutSink {
    name: String,
    out: Arc<Mutex<Writer>>,
}

impl std::fmt::Debug for StdoutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutSink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl StdoutSink {
    /// Writes to the process's standard output.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_writer(name, std::io::stdout())
    }

    /// Writes to `out` instead (tests, or a pipe the caller owns).
    pub fn with_writer(name: impl Into<String>, out: impl Write + Send + 'static) -> Self {
        Self {
            name: name.into(),
            out: Arc::new(Mutex::new(Box::new(out))),
        }
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, batch: &'a [EventRecord]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(());
            }
            let bytes = json_lines(batch)?.concat();
            let out = Arc::clone(&self.out);
            blocking(move || {
                let mut w = out.lock();
                w.write_all(&bytes)
                    .and_then(|()| w.flush())
                    .map_err(|e| SinkError::io("writing events to stdout", e))
            })
            .await
        })
    }
}
