//! The leases that let exactly one process watch a connection's cursor, or deliver to one
//! sink, at a time: [`Held`] wraps the store's lease rows (expiry on the database clock) with
//! an owner id naming this process, and takes over at once from a holder on the same host whose
//! process is gone (a `kill -9`ed `lpbridge events watch`), instead of waiting for its lease to
//! expire.
//!
//! **Takeover bound.** A holder renews before every page and every batch. When it dies, its
//! lease expires at most `ttl` after its last renewal, and the others try again every retry
//! interval, so another process takes over within `ttl + interval` (30 s + 30 s by default);
//! on the same host, when the holder's process is gone, at the next try.

use std::time::Duration;

use crate::store::{Fence, Result, Store};

/// A process-unique owner id: `<host>/<pid>/<random>`.
pub fn owner_id() -> String {
    format!(
        "{}/{}/{:08x}",
        hostname().unwrap_or_else(|| "unknown".into()),
        std::process::id(),
        rand::random::<u32>()
    )
}

/// This host's name (Linux: the kernel's), for owner ids.
fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && !s.contains('/'))
}

/// Whether `owner` names a process on this host that no longer runs (never true when that
/// cannot be told: another host, no `/proc`).
pub fn holder_is_gone(owner: &str) -> bool {
    let mut parts = owner.split('/');
    let (Some(host), Some(pid), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if hostname().as_deref() != Some(host) || pid == std::process::id() {
        return false;
    }
    if !std::path::Path::new("/proc/self/stat").exists() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command's closing parenthesis; a zombie (Z)
        // or dead (X) process holds nothing.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// One named lease this process wants to hold.
#[derive(Debug, Clone)]
pub struct Held {
    store: Store,
    name: String,
    owner: String,
    ttl: Duration,
}

impl Held {
    pub fn new(
        store: Store,
        name: impl Into<String>,
        owner: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            name: name.into(),
            owner: owner.into(),
            ttl,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// What writes under this lease are fenced with.
    pub fn fence(&self) -> Fence<'_> {
        Fence {
            lease: &self.name,
            owner: &self.owner,
        }
    }

    /// Takes or extends the lease; `false` while another live owner holds it.
    pub async fn ensure(&self) -> Result<bool> {
        if self
            .store
            .try_acquire_lease(&self.name, &self.owner, self.ttl)
            .await?
        {
            return Ok(true);
        }
        match self.store.lease_owner(&self.name).await? {
            Some(other) if holder_is_gone(&other) => {
                let taken = self
                    .store
                    .take_over_lease(&self.name, &other, &self.owner, self.ttl)
                    .await?;
                if taken {
                    tracing::info!(lease = %self.name, previous = %other, "took over a lease whose process is gone");
                }
                Ok(taken)
            }
            _ => Ok(false),
        }
    }

    /// Gives the lease up (best effort: it expires anyway).
    pub async fn release(&self) {
        if let Err(e) = self.store.release_lease(&self.name, &self.owner).await {
            tracing::debug!(lease = %self.name, error = %e, "could not release a lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_name_this_process_and_only_dead_local_ones_are_gone() {
        let me = owner_id();
        assert!(me.contains(&format!("/{}/", std::process::id())), "{me}");
        assert!(!holder_is_gone(&me));
        assert!(!holder_is_gone("otherhost/1/abcd"));
        assert!(!holder_is_gone("garbage"));
        if let Some(h) = hostname() {
            // pid 1 always runs; a pid above the kernel's maximum never does.
            assert!(!holder_is_gone(&format!("{h}/1/00000000")));
            if std::path::Path::new("/proc/self/stat").exists() {
                assert!(holder_is_gone(&format!("{h}/4294967295/00000000")));
            }
        }
    }
}
