//! Faithful, stateful emulators of the services lpbridge talks to, with deterministic seed data,
//! simulated user activity, fault injection and a control API. The LastPass Enterprise API
//! emulator lives in [`lastpass`]; later issues add the LastPass REST API, ConnectWise Manage and
//! Datto Autotask beside it.
//!
//! Everything is reached over HTTP, like the real services: [`server::spawn`] binds a port and
//! returns a [`server::SandboxHandle`] with each service's base URL and credentials.

pub mod activity;
pub mod clock;
pub mod control;
pub mod faults;
pub mod lastpass;
pub mod server;

pub use clock::Clock;
pub use server::{SandboxConfig, SandboxHandle, spawn};
