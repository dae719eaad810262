//! Event triggers (issue 7), the pure core: what the watcher, the sinks and `GET /events` build
//! on. No I/O here.
//!
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

pub mod category;
pub mod dedup;
pub mod normalize;
pub mod sinks;
pub mod time;

pub use category::Category;
pub use dedup::{DedupError, DedupState, Observed, Window};
pub use normalize::{ContentHash, EventId, EventRecord, Sequencer};
pub use time::{Edge, parse_bound, parse_time_zone};
