//! Datto Autotask PSA REST API emulator, mounted under `/autotask`: discovery at
//! `/autotask/atservicesrest/versioninformation` and `.../v1.0/zoneInformation`, the zone at
//! `/autotask/ATServicesRest/V1.0/`.
//!
//! Contract with `server.rs` (keep these signatures): [`AutotaskConfig`] (`Default`,
//! `Clone`, `Debug`), [`Autotask::new`], [`Autotask::services_json`], [`router`] and
//! [`control_router`].

use axum::Router;
use serde_json::{Value, json};

/// Seed and credentials of the emulated Autotask database.
#[derive(Debug, Clone, Default)]
pub struct AutotaskConfig {}

/// The emulator's shared state (cheap to clone).
#[derive(Debug, Clone)]
pub struct Autotask {}

impl Autotask {
    pub fn new(_config: AutotaskConfig) -> Self {
        Self {}
    }

    /// What the sandbox's first stdout line says about this service; `site` is
    /// `http://127.0.0.1:PORT/autotask`.
    pub fn services_json(&self, site: &str) -> Value {
        json!({ "base_url": site })
    }
}

/// The API and discovery routes (nested under `/autotask`).
pub fn router(_cw: Autotask) -> Router {
    Router::new()
}

/// Control routes (nested under `/_sandbox/autotask`): add, rename, remove companies and
/// contacts; faults.
pub fn control_router(_cw: Autotask) -> Router {
    Router::new()
}
