//! One admin at a time per PSA integration: the import lock is a lease
//! (`msp-import:<integration>`, [`crate::store::Store::try_acquire_lease`]) with an owner and an
//! expiry on the database clock, renewed while work runs.
//!
//! - A second admin (another owner) gets [`MspError::Locked`], "Another admin is already
//!   working with this integration", naming the holder and the expiry.
//! - **Stale locks**: an expired lease is free (any replica may take it). A holder that died
//!   without releasing (a killed `lpbridge`) is recognised sooner when it ran on this host:
//!   its pid no longer exists (`/proc/<pid>`), so the lease is taken over at once with one
//!   conditional update ([`crate::store::Store::take_over_lease`]).
//! - Every journal and mapping write of a run is fenced by the lease, so a holder that lost it
//!   commits nothing more.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::MspError;
use crate::store::Store;

/// How long the lease of a running plan or apply lives between renewals (every 20 s): a run
/// whose process died frees the lock within this time (at once on its own host).
pub const RUN_TTL: Duration = Duration::from_secs(60);
/// How long a service wizard holds the lock between two of its requests.
pub const WIZARD_TTL: Duration = Duration::from_secs(15 * 60);

/// The lease name of an integration's import lock.
pub fn lease_name(integration: &str) -> String {
    format!("msp-import:{integration}")
}

/// Who holds a lock: stored as JSON in the lease's `owner`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The admin: an OS user for the CLI, an API key for the service.
    pub admin: String,
    pub host: String,
    pub pid: u32,
    /// Unique per run or wizard: two runs of one admin are two owners.
    pub token: String,
}

impl Owner {
    /// An owner for this process, as `admin`.
    pub fn new(admin: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            admin: admin.into(),
            host: host_name(),
            pid: std::process::id(),
            token: token.into(),
        }
    }

    /// The CLI's owner: `LPBRIDGE_ADMIN`, else the OS user, with a fresh token.
    pub fn cli() -> Self {
        let admin = ["LPBRIDGE_ADMIN", "USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
            .unwrap_or_else(|| "cli".to_owned());
        Self::new(admin, super::random_hex(6))
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a stored owner; a lease written by something else is shown as it is.
    pub fn decode(raw: &str) -> Option<Self> {
        serde_json::from_str(raw).ok()
    }

    /// `alice on host-1 (pid 4242)`.
    pub fn describe(raw: &str) -> String {
        match Self::decode(raw) {
            Some(o) if o.pid == 0 => format!("{} on {}", o.admin, o.host),
            Some(o) => format!("{} on {} (pid {})", o.admin, o.host, o.pid),
            None => lp_types::shown(raw).into_owned(),
        }
    }

    /// Whether this owner is a process on this host that no longer runs.
    fn is_dead_here(&self) -> bool {
        self.host == host_name()
            && self.pid != std::process::id()
            && std::path::Path::new("/proc/self").exists()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The lock's state, for `lpbridge msp status` and `GET /msp/integrations/{id}/lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockStatus {
    pub integration: String,
    pub locked: bool,
    /// The holder, e.g. `alice on host-1 (pid 4242)`.
    pub holder: Option<String>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The lock's current holder (an expired lease counts as free).
pub async fn status(store: &Store, integration: &str) -> Result<LockStatus, MspError> {
    let lease = store.lease(&lease_name(integration)).await?;
    Ok(LockStatus {
        integration: integration.to_owned(),
        locked: lease.is_some(),
        holder: lease.as_ref().map(|l| Owner::describe(&l.owner)),
        expires_at: lease.map(|l| l.expires_at),
    })
}

/// Takes the lock for `owner` (or extends it when `owner` holds it), recovering it from a dead
/// holder on this host. [`MspError::Locked`] while another live owner holds it.
pub async fn acquire(
    store: &Store,
    integration: &str,
    owner: &Owner,
    ttl: Duration,
) -> Result<(), MspError> {
    let name = lease_name(integration);
    let me = owner.encode();
    if store.try_acquire_lease(&name, &me, ttl).await? {
        return Ok(());
    }
    if let Some((holder, until, live)) = store.lease_row(&name).await? {
        let dead = Owner::decode(&holder).is_some_and(|o| o.is_dead_here());
        if (dead || !live) && store.take_over_lease(&name, &holder, &me, ttl).await? {
            tracing::warn!(
                integration,
                holder = %Owner::describe(&holder),
                "took over the MSP import lock of a process that is gone"
            );
            return Ok(());
        }
        // Raced: another owner may have just taken it.
        if store.try_acquire_lease(&name, &me, ttl).await? {
            return Ok(());
        }
        let (holder, until) = match store.lease(&name).await? {
            Some(l) => (l.owner, l.expires_at),
            None => (holder, until),
        };
        return Err(MspError::Locked {
            holder: Owner::describe(&holder),
            until: until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
    }
    // The row vanished between the two statements: one more try.
    if store.try_acquire_lease(&name, &me, ttl).await? {
        return Ok(());
    }
    Err(MspError::Locked {
        holder: "another admin".into(),
        until: "unknown".into(),
    })
}

/// Gives the lock up (nothing happens when `owner` no longer holds it).
pub async fn release(store: &Store, integration: &str, owner: &Owner) -> Result<(), MspError> {
    store
        .release_lease(&lease_name(integration), &owner.encode())
        .await?;
    Ok(())
}

/// Breaks the lock whoever holds it (`lpbridge msp unlock`); `true` when there was one.
pub async fn force_release(store: &Store, integration: &str) -> Result<bool, MspError> {
    let name = lease_name(integration);
    match store.lease_row(&name).await? {
        Some((holder, _, _)) => Ok(store.release_lease(&name, &holder).await?),
        None => Ok(false),
    }
}

/// A held lock renewed in the background every `ttl / 3` until dropped. [`Held::lost`] turns
/// true when a renewal finds the lease gone.
pub struct Held {
    pub integration: String,
    pub owner: Owner,
    pub lease: String,
    pub owner_raw: String,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Held {
    /// Acquires (see [`acquire`]) and starts renewing.
    pub async fn take(
        store: &Store,
        integration: &str,
        owner: Owner,
        ttl: Duration,
    ) -> Result<Held, MspError> {
        acquire(store, integration, &owner, ttl).await?;
        let lease = lease_name(integration);
        let owner_raw = owner.encode();
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (store, lease, owner_raw, lost) = (
                store.clone(),
                lease.clone(),
                owner_raw.clone(),
                lost.clone(),
            );
            tokio::spawn(async move {
                let every = (ttl / 3).max(Duration::from_millis(100));
                loop {
                    tokio::time::sleep(every).await;
                    match store.renew_lease(&lease, &owner_raw, ttl).await {
                        Ok(true) => {}
                        Ok(false) => {
                            lost.store(true, Ordering::SeqCst);
                            tracing::error!(lease, "lost the MSP import lock");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(lease, error = %e, "could not renew the MSP import lock")
                        }
                    }
                }
            })
        };
        Ok(Held {
            integration: integration.to_owned(),
            owner,
            lease,
            owner_raw,
            lost,
            renewer,
        })
    }

    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The fence for the store's writes.
    pub fn fence(&self) -> crate::store::msp::LockFence<'_> {
        crate::store::msp::LockFence {
            lease: &self.lease,
            owner: &self.owner_raw,
        }
    }

    /// Stops renewing and releases the lock.
    pub async fn release(self, store: &Store) -> Result<(), MspError> {
        self.renewer.abort();
        store.release_lease(&self.lease, &self.owner_raw).await?;
        Ok(())
    }

    /// Stops renewing and keeps the lease as it is (a wizard keeps its lock until it ends).
    pub fn keep(self) {
        self.renewer.abort();
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}
