//! Event triggers (issue 7): collecting the LastPass audit log exactly once into the store's
//! outbox and delivering it to sinks.
//!
//! The pure core (no I/O):
//! - [`category`]: the normalised [`Category`] of a LastPass `Action` (reference §4).
//! - [`time`]: account-zone wall clock ↔ UTC, the DST rule, fold-safe window bounds and
//!   `--from`/`--to` parsing.
//! - [`normalize`]: [`EventRecord`] (original fields + UTC time, category, id), the
//!   [`EventId`] scheme and the per-walk occurrence [`Sequencer`].
//! - [`dedup`]: [`DedupState`], the persisted cursor + de-duplication state that makes delivery
//!   exactly once across overlapping windows, repeated identical events and restarts (its
//!   module docs state the invariants the watcher must keep).
//! - [`sinks`]: where records are delivered (stdout, rotating file, signed webhook, NATS
//!   JetStream), their configuration and the [`sinks::Sink`] trait the dispatcher calls.
//!
//! Around it:
//! - [`watcher`]: polls `reporting` per connection and commits new events with the cursor in
//!   one transaction (the outbox), under a lease ([`lease`]).
//! - [`dispatch`]: one task per (connection, sink) feeding the sink from the outbox, dead
//!   letters, replay.
//! - [`service`]: the watchers and dispatchers `lpbridge serve` runs; [`http`]: `GET /events`,
//!   `/webhooks`, `/events/watcher`.

pub mod category;
pub mod dedup;
pub mod dispatch;
pub mod http;
pub mod lease;
pub mod normalize;
pub mod service;
pub mod sinks;
pub mod time;
pub mod watcher;

pub use category::Category;
pub use dedup::{DedupError, DedupState, Observed, Window};
pub use normalize::{ContentHash, EventId, EventRecord, Sequencer};
pub use time::{Edge, parse_bound, parse_time_zone};
