//! lpbridge application library: the `lpbridge` CLI and the `lpbridge serve` service.
//!
//! Interfaces (thin: parse, authorise, format):
//! - [`cli`]: clap definitions and formatting; [`http`]: the service's routes, API-key
//!   authentication, connection selection, error bodies, OpenAPI and metrics; [`serve`]: the
//!   service's configuration and life cycle.
//!
//! Behaviour:
//! - [`unified`]: the StackOne-shaped unified IAM API over one connection.
//! - [`actions`]: every connector action with its input schema, and the passthrough.
//! - [`admin`]: bulk changes (plans, CSV import, group apply, per-user bulk ops).
//! - [`msp`]: the MSP import of PSA companies and contacts into LastPass managed companies.
//! - [`scim`]: the SCIM 2.0 service provider (`/scim/v2`) and its protocol core.
//! - [`events`]: audit-log collection exactly once: the watcher, the outbox, sinks, webhooks,
//!   dispatch and `GET /events`.
//!
//! Below them:
//! - [`snapshot`]: the per-connection directory cache.
//! - [`store`], [`crypto`]: SQLite or PostgreSQL, sealed secrets, API keys, claims, leases.
//! - [`connections`]: which credentials a CLI run uses.
//! - [`output`], [`records`]: table / json / jsonl / csv writers and their rows.
//! - [`error`]: the one application error, its exit codes (0 ok, 1 error, 2 usage, 3 partial
//!   failure) and, in [`http::error`], its HTTP mapping.

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
pub mod console;
pub mod crypto;
pub mod error;
pub mod events;
pub mod http;
pub mod msp;
pub mod output;
pub mod records;
pub mod scim;
pub mod serve;
pub mod snapshot;
pub mod store;
pub mod unified;

pub use error::{Error, Result};
