//! `lpbridge sandbox …`: runs the LastPass emulator from `crates/sandbox` (its arguments are
//! `sandbox::cli::SandboxArgs`; the first stdout line is a JSON object with the endpoint and
//! credentials).

use clap::Args;

use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct SandboxCmd {
    #[cfg(feature = "sandbox")]
    #[command(flatten)]
    args: sandbox::cli::SandboxArgs,
}

#[cfg(feature = "sandbox")]
pub async fn run(cmd: SandboxCmd) -> Result<()> {
    sandbox::cli::run(cmd.args)
        .await
        .map_err(|e| Error::config(format!("sandbox: {e}")))
}

#[cfg(not(feature = "sandbox"))]
pub async fn run(_cmd: SandboxCmd) -> Result<()> {
    Err(Error::config(
        "this lpbridge was built without the `sandbox` feature",
    ))
}
