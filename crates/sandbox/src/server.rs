//! Binds the sandbox's services on one port and hands back their URLs and credentials.
pub struct SandboxConfig;
pub struct SandboxHandle;
pub async fn spawn(_config: SandboxConfig) -> Result<SandboxHandle, crate::lastpass::SandboxError> {
    todo!()
}
