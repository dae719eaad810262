//! ConnectWise Manage (PSA) REST API emulator, mounted under `/cw` (the "site"): discovery at
//! `/cw/login/companyinfo/{companyId}`, the API at `/cw/{codebase}apis/3.0/`.
//!
//! Contract with `server.rs` (keep these signatures): [`ConnectWiseConfig`] (`Default`,
//! `Clone`, `Debug`), [`ConnectWise::new`], [`ConnectWise::services_json`], [`router`] and
//! [`control_router`].

use axum::Router;
use serde_json::{Value, json};

/// Seed and credentials of the emulated ConnectWise tenant.
#[derive(Debug, Clone, Default)]
pub struct ConnectWiseConfig {}

/// The emulator's shared state (cheap to clone).
#[derive(Debug, Clone)]
pub struct ConnectWise {}

impl ConnectWise {
    pub fn new(_config: ConnectWiseConfig) -> Self {
        Self {}
    }

    /// What the sandbox's first stdout line says about this service; `site` is
    /// `http://127.0.0.1:PORT/cw`.
    pub fn services_json(&self, site: &str) -> Value {
        json!({ "site": site })
    }
}

/// The API and discovery routes (nested under `/cw`).
pub fn router(_cw: ConnectWise) -> Router {
    Router::new()
}

/// Control routes (nested under `/_sandbox/connectwise`): add, rename, remove companies and
/// contacts; faults.
pub fn control_router(_cw: ConnectWise) -> Router {
    Router::new()
}
