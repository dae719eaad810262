//! lpbridge application library: the `lpbridge` CLI now; the unified IAM, SCIM, events and MSP
//! service later.
//!
//! - [`cli`]: clap definitions and formatting only.
//! - [`admin`]: the behaviour of bulk changes (plans, CSV import, group apply, per-user bulk ops).
//! - [`connections`]: encrypted connection profiles.
//! - [`output`]: table / json / jsonl / csv writers.
//! - [`error`]: the one application error and its exit codes (0 ok, 1 error, 2 usage,
//!   3 partial failure).

/// `eprintln!` for status lines that must never panic: a broken pipe on stderr is ignored (the
/// command's work and its exit code matter more than a progress note).
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod actions;
pub mod admin;
pub mod cli;
pub mod connections;
pub mod crypto;
pub mod error;
pub mod events;
pub mod http;
pub mod output;
pub mod records;
pub mod scim;
pub mod serve;
pub mod snapshot;
pub mod store;
pub mod unified;

pub use error::{Error, Result};
