//! Typed async client for the LastPass Enterprise API (`enterpriseapi.php`).
//!
//! - [`model`]: typed requests and responses for every command, decoded leniently (every variant
//!   the reference lists: flags as `"0"`/`0`/`false`, `Users` as `{}` or `[]`, `null`/`""` counters…).
//! - [`decode`]: the decoders themselves, usable on bytes already held.
//! - [`Client`]: transport, envelope normalisation into one [`Error`], retries with backoff,
//!   rate limiting, a concurrency cap, paged reads as streams.
//! - [`rest`]: a separate client for the LastPass REST API (`api.lastpass.com/business/v1`,
//!   `api-key` header), managed-companies part: companies, their users, asynchronous
//!   requests, with its own [`rest::Error`].
//!
//! The client never knows whether it talks to the real service or to the sandbox.

pub mod client;
pub mod decode;
mod envelope;
pub mod error;
mod lenient;
mod limiter;
pub mod model;
pub mod rest;

pub use client::{
    CallStats, Client, ClientConfig, CommandClass, Credentials, DEFAULT_ENDPOINT, RawCall,
    RawResponse, RetryPolicy, Tap, parse_endpoint,
};
pub use error::Error;
pub use lp_types::{Cid, Email, FolderId, GroupName, InvalidValue, Secret, UserId};
pub use model::*;

/// The largest `getuserdata` page size lpbridge asks for. The true maximum is undocumented;
/// 2000 is what Elastic and Splunk use and what one client enforces (reference §3.1).
pub const MAX_USER_PAGE_SIZE: u32 = 2000;
/// `reporting` returns at most this many events per call (reference §3.16).
pub const MAX_EVENTS_PER_CALL: usize = 10_000;
/// `expiredmasterpwlist` `limit` maximum (reference §3.17).
pub const MAX_EXPIRED_LIMIT: u32 = 500;
/// Documented `updateemail` limit: 10 per second per IP and per old e-mail (reference §3.12).
pub const UPDATE_EMAIL_PER_SEC: u32 = 10;
