//! Where connections live ([`StoreLocation`]: the data directory and the database) and the
//! choice of credentials for a CLI run ([`resolve_credentials`]: flags, environment, stored
//! connections).
//!
//! Connections are rows of the [`Store`](crate::store::Store): SQLite at
//! `<data dir>/lpbridge.db` by default, or PostgreSQL with `--database-url`. Their provisioning
//! hashes are sealed with the master key ([`crate::crypto`]).
//!
//! - data dir: `--data-dir` / `LPBRIDGE_DATA_DIR`, else `LPBRIDGE_HOME` (the older name, still
//!   honoured), else the platform data dir (`~/.local/share/lpbridge` on Linux).
//! - key: `LPBRIDGE_MASTER_KEY` (32 bytes, base64 or 64 hex digits) when set, else the key file
//!   `<data dir>/master.key`, generated on first write with mode 0600.

use std::path::PathBuf;

use lastpass::{Credentials, DEFAULT_ENDPOINT};
use lp_types::ConnectionId;

use crate::error::{Error, Result};
use crate::store::{Connection, DatabaseUrl, Store, StoreConfig};

/// The file the profile store of lpbridge 0.1 used (its connections are not read any more).
const LEGACY_PROFILE_FILE: &str = "connections.enc";

/// Where the store is: the data directory and the database URL as given (flags or
/// environment); resolved and opened only when a command needs it.
#[derive(Debug, Clone, Default)]
pub struct StoreLocation {
    /// `--data-dir` / `LPBRIDGE_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url` / `LPBRIDGE_DATABASE_URL`.
    pub database_url: Option<DatabaseUrl>,
}

impl StoreLocation {
    /// The data directory: the flag or `LPBRIDGE_DATA_DIR`, else `LPBRIDGE_HOME`, else the
    /// platform data dir.
    pub fn data_dir(&self) -> Result<PathBuf> {
        if let Some(d) = self.data_dir.as_ref().filter(|d| !d.as_os_str().is_empty()) {
            return Ok(d.clone());
        }
        if let Some(d) = std::env::var_os("LPBRIDGE_HOME").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(d));
        }
        directories::ProjectDirs::from("", "", "lpbridge")
            .map(|p| p.data_dir().to_path_buf())
            .ok_or_else(|| {
                Error::config(
                    "cannot find a data directory; pass --data-dir or set LPBRIDGE_DATA_DIR",
                )
            })
    }

    /// The store's configuration (the key from `LPBRIDGE_MASTER_KEY` or the data dir's key file).
    pub fn config(&self) -> Result<StoreConfig> {
        Ok(StoreConfig::new(
            self.database_url.clone(),
            self.data_dir()?,
        )?)
    }

    /// Opens the store, creating it when missing.
    pub async fn open(&self) -> Result<Store> {
        Ok(Store::open_with(self.config()?).await?)
    }

    /// Opens the store if it exists (a SQLite file that does not exist is not created).
    pub async fn open_existing(&self) -> Result<Option<Store>> {
        Ok(Store::open_existing(self.config()?).await?)
    }

    /// A note for someone upgrading from the file-based profile store, when its file is there.
    pub fn legacy_profiles_note(&self) -> Option<String> {
        let path = self.data_dir().ok()?.join(LEGACY_PROFILE_FILE);
        path.exists().then(|| {
            format!(
                "note: {} holds connection profiles of an older lpbridge, which are no longer \
                 read; add them again with `lpbridge connection add NAME --cid N --provhash-stdin`",
                path.display()
            )
        })
    }
}

/// The refusal to replace a stored connection without `--overwrite`.
pub(crate) fn already_exists(name: &ConnectionId) -> Error {
    Error::usage(format!(
        "connection {:?} already exists (pass --overwrite to replace it)",
        name.as_str()
    ))
}

/// Credentials, endpoint and where they came from (the connection's name, or `(environment)`),
/// first match wins:
///
/// 1. `connection`: that stored connection;
/// 2. `LPBRIDGE_CID` and `LPBRIDGE_PROVHASH` (endpoint from `LPBRIDGE_ENDPOINT`, else LastPass's);
/// 3. `LPBRIDGE_CONNECTION`: that stored connection;
/// 4. the stored connection named `default`, or the only one.
///
/// `endpoint` overrides the chosen credentials' endpoint. The store is opened only for 1, 3 and
/// 4, and never created (a missing SQLite file means "no stored connections").
pub async fn resolve_credentials(
    location: &StoreLocation,
    connection: Option<&ConnectionId>,
    endpoint: Option<&url::Url>,
) -> Result<(Credentials, url::Url, String)> {
    if let Some(name) = connection {
        return named(location, name, endpoint).await;
    }
    if let Some(creds) = Credentials::from_env()? {
        let endpoint = match endpoint {
            Some(e) => e.clone(),
            None => endpoint_from_env()?,
        };
        return Ok((creds, endpoint, "(environment)".to_owned()));
    }
    if let Some(name) = env_var("LPBRIDGE_CONNECTION")? {
        return named(location, &ConnectionId::new(name)?, endpoint).await;
    }
    let Some(store) = location.open_existing().await? else {
        return Err(no_credentials());
    };
    let chosen = default_connection(&store, endpoint).await;
    store.close().await;
    chosen
}

/// A named connection: one read of the store (never created).
async fn named(
    location: &StoreLocation,
    name: &ConnectionId,
    endpoint: Option<&url::Url>,
) -> Result<(Credentials, url::Url, String)> {
    let Some(store) = location.open_existing().await? else {
        return Err(no_such(name));
    };
    let found = store.get_connection(name).await;
    store.close().await;
    found?
        .map(|c| from_stored(c, endpoint))
        .ok_or_else(|| no_such(name))
}

/// The connection named `default`, else the only one.
async fn default_connection(
    store: &Store,
    endpoint: Option<&url::Url>,
) -> Result<(Credentials, url::Url, String)> {
    let list = store.list_connections().await?;
    let id = match list.iter().find(|c| c.id.as_str() == "default") {
        Some(c) => c.id.clone(),
        None if list.len() == 1 => list[0].id.clone(),
        None if list.is_empty() => return Err(no_credentials()),
        None => {
            return Err(Error::config(format!(
                "several connections are stored ({}); choose one with --connection NAME",
                list.iter()
                    .map(|c| c.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    store
        .get_connection(&id)
        .await?
        .map(|c| from_stored(c, endpoint))
        .ok_or_else(|| no_such(&id))
}

fn from_stored(c: Connection, endpoint: Option<&url::Url>) -> (Credentials, url::Url, String) {
    let endpoint = endpoint.cloned().unwrap_or(c.endpoint);
    let creds = Credentials {
        cid: c.cid,
        provhash: c.provhash,
    };
    (creds, endpoint, c.id.into_inner())
}

fn no_such(name: &ConnectionId) -> Error {
    Error::config(format!(
        "no connection named {:?} (see `lpbridge connection list`)",
        name.as_str()
    ))
}

fn no_credentials() -> Error {
    Error::config(
        "no LastPass credentials: set LPBRIDGE_CID and LPBRIDGE_PROVHASH, or add a \
         connection with `lpbridge connection add NAME --cid N --provhash-stdin`",
    )
}

/// The endpoint when no connection gives one: `LPBRIDGE_ENDPOINT`, else LastPass's.
pub fn endpoint_from_env() -> Result<url::Url> {
    match env_var("LPBRIDGE_ENDPOINT")? {
        Some(e) if !e.trim().is_empty() => {
            parse_endpoint(e.trim()).map_err(|e| Error::config(format!("LPBRIDGE_ENDPOINT: {e}")))
        }
        _ => parse_endpoint(DEFAULT_ENDPOINT),
    }
}

/// A set, non-empty environment variable. One that is not UTF-8 is an error, not "unset": falling
/// back would silently pick another key, connection or endpoint.
fn env_var(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(Some(v)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::config(format!(
            "{name} is set but is not valid UTF-8"
        ))),
    }
}

/// Parses an endpoint URL; the error names the value.
fn parse_endpoint(s: &str) -> Result<url::Url> {
    url::Url::parse(s).map_err(|e| Error::config(format!("invalid endpoint URL {s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_dir_flag_wins() {
        let loc = StoreLocation {
            data_dir: Some("/srv/lpbridge".into()),
            database_url: None,
        };
        assert_eq!(loc.data_dir().unwrap(), PathBuf::from("/srv/lpbridge"));
    }

    #[tokio::test]
    async fn resolving_from_an_absent_store_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let loc = StoreLocation {
            data_dir: Some(data.clone()),
            database_url: None,
        };
        let name = ConnectionId::new("prod").unwrap();
        let e = resolve_credentials(&loc, Some(&name), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("no connection named \"prod\""), "{e}");
        assert!(!data.exists());
    }

    #[tokio::test]
    async fn a_named_connection_comes_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let loc = StoreLocation {
            data_dir: Some(dir.path().to_path_buf()),
            database_url: None,
        };
        let store = loc.open().await.unwrap();
        store
            .create_connection(
                crate::store::NewConnection {
                    id: ConnectionId::new("prod").unwrap(),
                    cid: lp_types::Cid(77),
                    endpoint: "http://127.0.0.1:1/enterpriseapi.php".parse().unwrap(),
                    provhash: lp_types::Secret::new("h"),
                    time_zone: None,
                },
                false,
            )
            .await
            .unwrap();
        store.close().await;
        let name = ConnectionId::new("prod").unwrap();
        let (creds, endpoint, source) = resolve_credentials(&loc, Some(&name), None).await.unwrap();
        assert_eq!(creds.cid, lp_types::Cid(77));
        assert_eq!(creds.provhash.expose(), "h");
        assert_eq!(endpoint.port(), Some(1));
        assert_eq!(source, "prod");
        let over: url::Url = "http://127.0.0.1:2/x".parse().unwrap();
        let (_, endpoint, _) = resolve_credentials(&loc, Some(&name), Some(&over))
            .await
            .unwrap();
        assert_eq!(endpoint, over, "--endpoint overrides the stored endpoint");
    }
}
