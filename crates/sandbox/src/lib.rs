//! Faithful, stateful emulators of the services lpbridge talks to, with deterministic seed data,
//! simulated user activity, fault injection and a control API. The LastPass Enterprise API
//! emulator lives in [`lastpass`], ConnectWise Manage in [`connectwise`], Datto Autotask in
//! [`autotask`], and the managed-companies part of the LastPass REST API in [`msp`].
//!
//! Everything is reached over HTTP, like the real services: [`server::spawn`] binds a port and
//! returns a [`server::SandboxHandle`] with each service's base URL and credentials. Around the
//! emulators: [`faults`] (fault injection, the per-account rate limit, request counters),
//! [`control`] (the `/_sandbox` control API, documented in `CONTROL.md`), [`activity`] (background
//! audit events) and [`cli`] (`lpbridge sandbox`: [`cli::SandboxArgs`] and [`cli::run`]).

pub mod activity;
pub mod autotask;
pub mod cli;
pub mod clock;
pub mod connectwise;
pub mod control;
pub mod faults;
pub mod lastpass;
pub mod msp;
pub mod server;

pub use clock::Clock;
pub use server::{SandboxConfig, SandboxHandle, spawn};
