//! The MSP import (issue 9): PSA companies (ConnectWise Manage, Datto Autotask) become LastPass
//! managed companies and chosen contacts become their users, incrementally, following
//! `lastpass-psa-import.txt` step by step.
//!
//! This module owns the import's behaviour; the CLI (`lpbridge msp`) and the service
//! (`/msp/…`, [`http`]) only parse, authorise and format, and both call the same functions:
//!
//! - [`state`]: one read of everything an import depends on: the PSA's companies matching the
//!   filter and their contacts (batched), the managed companies, and the stored mappings.
//! - [`plan`]: the two lists ("Companies in <PSA>" and "Companies not in <PSA>") with each
//!   row's import status (**Mapped**, **Unmapped**, **Unmapped – potential duplicate**), PSA
//!   type and status, last import date and contacts; the default choices; the editable
//!   choices; the HMAC that makes a plan file tamper-evident; validation of the choices; and
//!   the staleness check that says what changed since a plan was made.
//! - [`apply`]: **Import and Map**: journaled, idempotent and crash-safe; the result counts
//!   and every error with the product's exact message.
//! - [`lock`]: one admin at a time per PSA integration (a lease with an owner, an expiry,
//!   renewal, and recovery from a dead holder).
//! - [`wizard`]: the service wizard step by step (credentials, integrations, fetch, choices,
//!   users, apply, result, searches of managed companies and their users), for an [`wizard::Actor`];
//!   the JSON endpoints and the web console both call it.
//! - [`http`]: the wizard's JSON endpoints.
//!
//! Below it: [`crate::store::msp`] (settings, mappings, runs, journal, wizards) and the two
//! clients, `psa` and `lastpass::rest`.

pub mod apply;
pub mod http;
pub mod lock;
pub mod plan;
pub mod state;
pub mod wizard;

use lastpass::rest::{Credentials, PollPolicy, RestClient, RestConfig, RetryPolicy};
use lp_types::{ConnectionId, InvalidValue, Secret};
use psa::PsaDirectory;

use crate::store::{PsaIntegration, PsaTuning, Store, StoreError};

/// The import's error messages, word for word (`lastpass-psa-import.txt`, step 9). The four
/// PSA ones come from [`psa::ErrorKind::user_message`].
pub mod messages {
    /// Empty credentials form submitted.
    pub const CREDENTIALS_REQUIRED: &str = "Credentials are required";
    /// The PSA integration is locked by another admin.
    pub const LOCKED: &str = "Another admin is already working with this integration";
    /// The MSP company has no more licenses to distribute.
    pub const NOT_ENOUGH_LICENSES: &str = "You don't seem to have enough available licenses";
    /// Anything else.
    pub const SOMETHING_WENT_WRONG: &str = "Something went wrong";
}

/// Everything the import reports as a whole failure. Per-item failures of a run are
/// [`apply::Issue`]s in its result instead. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum MspError {
    /// No (or an empty) LastPass REST API key, or empty PSA credentials.
    #[error("{msg}\n  detail: {0}", msg = messages::CREDENTIALS_REQUIRED)]
    CredentialsRequired(String),
    /// Another admin holds the integration's import lock.
    #[error("{msg}\n  detail: {holder} holds the lock until {until}", msg = messages::LOCKED)]
    Locked { holder: String, until: String },
    /// The PSA failed (the product's wording for its category, then the detail).
    #[error("{}\n  detail: {}", .0.kind.user_message(), .0)]
    Psa(psa::Error),
    /// The LastPass REST API failed as a whole (listing managed companies, a wrong key).
    #[error("{}\n  detail: LastPass REST API: {source}", lastpass_message(.source))]
    LastPass { source: lastpass::rest::Error },
    /// Choices that cannot be applied; every problem names its field and value.
    #[error("the plan's choices are invalid; nothing was changed:\n{}", join_invalid(.0))]
    Invalid(Vec<InvalidValue>),
    /// The plan file's integrity tag does not match its content.
    #[error(
        "the plan file was altered after it was made ({0}); nothing was changed: make a new plan"
    )]
    Tampered(String),
    /// A plan made for another integration, or by another lpbridge store.
    #[error("{0}; nothing was changed")]
    Foreign(String),
    /// The PSA or LastPass changed since the plan was made.
    #[error(
        "the plan is stale: the PSA or LastPass changed since it was made; nothing was changed. \
         Make a new plan. What changed:\n{}",
        join_lines(.0)
    )]
    Stale(Vec<String>),
    /// The run lost the import lock (it expired, or another admin took it over after it
    /// expired): it stopped; what it did is journaled, and apply may be run again.
    #[error("the import lock was lost ({0}); the run stopped and can be resumed with apply")]
    LockLost(String),
    /// An unknown integration, wizard or run.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MspError {
    /// The CLI exit code (see [`crate::error`]): bad input and missing credentials are usage
    /// errors (2), refused before any change; everything else is an error (1).
    pub fn exit_code(&self) -> u8 {
        use crate::error::{EXIT_ERROR, EXIT_USAGE};
        match self {
            MspError::CredentialsRequired(_)
            | MspError::Invalid(_)
            | MspError::Tampered(_)
            | MspError::Foreign(_)
            | MspError::Store(StoreError::Invalid(_)) => EXIT_USAGE,
            MspError::LastPass {
                source: lastpass::rest::Error::InvalidInput(_),
            } => EXIT_USAGE,
            _ => EXIT_ERROR,
        }
    }

    /// The product message this error is shown with (the first line of its `Display`).
    pub fn user_message(&self) -> &str {
        match self {
            MspError::CredentialsRequired(_) => messages::CREDENTIALS_REQUIRED,
            MspError::Locked { .. } => messages::LOCKED,
            MspError::Psa(e) => e.kind.user_message(),
            MspError::LastPass { source } => lastpass_message(source),
            _ => messages::SOMETHING_WENT_WRONG,
        }
    }
}

impl From<psa::Error> for MspError {
    fn from(e: psa::Error) -> Self {
        if e.kind == psa::ErrorKind::CredentialsMissing {
            return MspError::CredentialsRequired(e.detail);
        }
        MspError::Psa(e)
    }
}

impl From<lastpass::rest::Error> for MspError {
    fn from(source: lastpass::rest::Error) -> Self {
        MspError::LastPass { source }
    }
}

impl From<crate::crypto::CryptoError> for MspError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        MspError::Store(e.into())
    }
}

/// The product message for a LastPass REST API failure.
pub fn lastpass_message(e: &lastpass::rest::Error) -> &'static str {
    match e {
        lastpass::rest::Error::NotEnoughLicenses { .. } => messages::NOT_ENOUGH_LICENSES,
        _ => messages::SOMETHING_WENT_WRONG,
    }
}

fn join_invalid(v: &[InvalidValue]) -> String {
    v.iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn join_lines(v: &[String]) -> String {
    const MAX: usize = 20;
    let mut out: Vec<String> = v.iter().take(MAX).map(|l| format!("  - {l}")).collect();
    if v.len() > MAX {
        out.push(format!("  … and {} more", v.len() - MAX));
    }
    out.join("\n")
}

/// The REST client for the stored MSP settings: "Credentials are required" when there are
/// none or the key is empty.
pub async fn rest_client(store: &Store) -> Result<RestClient, MspError> {
    let settings = store.msp_settings().await?.ok_or_else(|| {
        MspError::CredentialsRequired(
            "no LastPass REST API key is stored for the MSP account: run `lpbridge msp connect \
             --api-key-stdin` (or PUT /msp/credentials)"
                .into(),
        )
    })?;
    build_rest_client(settings.base_url, settings.api_key)
}

/// A REST client for `base_url` and `api_key` (no call is made).
pub fn build_rest_client(base_url: url::Url, api_key: Secret) -> Result<RestClient, MspError> {
    if api_key.expose().trim().is_empty() {
        return Err(MspError::CredentialsRequired(
            "the LastPass REST API key is empty".into(),
        ));
    }
    let creds =
        Credentials::new(api_key).map_err(|e| MspError::CredentialsRequired(e.to_string()))?;
    let config = RestConfig::new(creds)
        .with_base_url(base_url)
        .with_retry(RetryPolicy::default())
        .with_poll(PollPolicy::default());
    RestClient::new(config).map_err(MspError::from)
}

/// Checks a key with the cheapest authenticated call (one page of one managed company).
pub async fn check_rest(client: &RestClient) -> Result<(), MspError> {
    let q = lastpass::rest::CompanyQuery {
        page_size: Some(1),
        ..Default::default()
    };
    client.companies_page(&q, None).await?;
    Ok(())
}

/// What an import works with: the store, the integration, and both clients.
pub struct ImportContext {
    pub store: Store,
    pub integration: PsaIntegration,
    pub psa: Box<dyn PsaDirectory>,
    pub rest: RestClient,
}

impl std::fmt::Debug for ImportContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportContext")
            .field("integration", &self.integration.id)
            .field("rest", &self.rest)
            .finish_non_exhaustive()
    }
}

impl ImportContext {
    /// Loads the integration and the MSP settings and builds both clients (no call is made).
    pub async fn open(
        store: &Store,
        integration: &ConnectionId,
        tuning: &PsaTuning,
    ) -> Result<Self, MspError> {
        let integration = store
            .get_psa_integration(integration)
            .await?
            .ok_or_else(|| no_integration(integration.as_str()))?;
        let psa = crate::store::psa_directory(&integration.settings, &integration.secrets, tuning)?;
        let rest = rest_client(store).await?;
        Ok(Self {
            store: store.clone(),
            integration,
            psa,
            rest,
        })
    }

    pub fn integration_id(&self) -> &str {
        self.integration.id.as_str()
    }
}

/// "no PSA integration named …".
pub fn no_integration(id: &str) -> MspError {
    MspError::NotFound(format!(
        "no PSA integration named {:?} (see `lpbridge psa list`)",
        lp_types::shown(id)
    ))
}

/// The PSA's name as the product shows it in "Import from <PSA name>" and the tab titles.
pub fn psa_display_name(kind: psa::PsaKind) -> &'static str {
    match kind {
        psa::PsaKind::ConnectWise => "ConnectWise Manage",
        psa::PsaKind::Autotask => "Datto Autotask",
    }
}

/// Random lower-case hex (ids of plans, runs and wizards).
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Stores the embedded sandbox's LastPass REST API as the MSP settings when none are stored
/// (`lpbridge serve` with the built-in sandbox), and its ConnectWise and Autotask emulators as
/// the PSA integrations `sandbox-connectwise` and `sandbox-autotask` when absent, so the import
/// wizard works out of the box. Real settings are never replaced.
#[cfg(feature = "sandbox")]
pub async fn register_sandbox(store: &Store, sb: &sandbox::SandboxHandle) -> crate::Result<()> {
    use crate::store::{
        AutotaskSettings, ConnectWiseSettings, NewPsaIntegration, PsaSecrets, PsaSettings,
    };
    let fresh_url = lastpass::rest::parse_base_url(&sb.msp_base_url())?;
    match store.msp_settings_summary().await? {
        // Re-pointed at every start: the sandbox's port changes, its key does not.
        Some(s) if url::Url::parse(&s.base_url).is_ok_and(|u| !is_loopback(&u)) => {}
        _ => {
            let key = Secret::new(sb.msp.credentials().api_key);
            store.set_msp_settings(&fresh_url, &key).await?;
        }
    }
    let cw = sb.connectwise.credentials();
    let at = sb.autotask.credentials();
    let integrations = [
        NewPsaIntegration {
            id: ConnectionId::new("sandbox-connectwise")?,
            settings: PsaSettings::ConnectWise(ConnectWiseSettings {
                site: sb.connectwise_site(),
                company_id: cw.company_id,
                public_key: cw.public_key,
                client_id: cw.client_id,
            }),
            secrets: PsaSecrets::ConnectWise {
                private_key: Secret::new(cw.private_key),
            },
        },
        NewPsaIntegration {
            id: ConnectionId::new("sandbox-autotask")?,
            settings: PsaSettings::Autotask(AutotaskSettings {
                username: at.username.clone(),
                discovery_url: Some(format!("{}/atservicesrest", sb.autotask_base())),
            }),
            secrets: PsaSecrets::Autotask {
                secret: Secret::new(at.secret),
                integration_code: Secret::new(at.integration_code),
            },
        },
    ];
    for new in integrations {
        let keep = match store.psa_integration_summary(&new.id).await? {
            None => false,
            // Re-pointed at every start (the port changes), unless it points elsewhere.
            Some(s) => match &s.settings {
                crate::store::PsaSettings::ConnectWise(c) => !c.site.contains("127.0.0.1"),
                crate::store::PsaSettings::Autotask(a) => a
                    .discovery_url
                    .as_deref()
                    .is_some_and(|u| !u.contains("127.0.0.1")),
            },
        };
        if !keep {
            store.create_psa_integration(new, true).await?;
        }
    }
    tracing::info!(
        base_url = %fresh_url,
        "MSP import: the embedded sandbox's LastPass REST API and PSA emulators are connected \
         (PSA integrations sandbox-connectwise and sandbox-autotask)"
    );
    Ok(())
}

#[cfg(feature = "sandbox")]
fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_products() {
        assert_eq!(
            messages::NOT_ENOUGH_LICENSES,
            "You don't seem to have enough available licenses"
        );
        let e = MspError::Locked {
            holder: "ann".into(),
            until: "soon".into(),
        };
        assert!(e.to_string().starts_with(messages::LOCKED));
        let e = MspError::from(psa::Error::credentials_missing("secret"));
        assert!(e.to_string().starts_with("Credentials are required"), "{e}");
        let e = MspError::from(psa::Error::new(psa::ErrorKind::Forbidden, "HTTP 403"));
        assert_eq!(
            e.user_message(),
            "We received a Forbidden error from your PSA provider"
        );
    }
}
