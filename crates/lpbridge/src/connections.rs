//! Connection profiles, encrypted at rest, and the choice of credentials for a run
//! ([`resolve_credentials`]: flags, environment, profiles).
//!
//! The profiles live in one file, `<config dir>/connections.enc`: a JSON envelope holding a random
//! 96-bit nonce and the ChaCha20-Poly1305 ciphertext of the whole profile list (names, account
//! numbers, endpoints and provisioning hashes). A new nonce is drawn on every write.
//!
//! - config dir: `LPBRIDGE_HOME` when set, else the platform config dir (`~/.config/lpbridge`).
//! - key: `LPBRIDGE_MASTER_KEY` (32 bytes, base64 or 64 hex digits) when set, else the key file
//!   `<config dir>/master.key`, generated on first use with mode 0600.
//!
//! A wrong key fails authentication of the ciphertext and is reported as such; nothing is
//! decrypted partially.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use lastpass::{Credentials, DEFAULT_ENDPOINT};
use lp_types::{Cid, ConnectionId, Secret};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const STORE_FILE: &str = "connections.enc";
const KEY_FILE: &str = "master.key";
const STORE_VERSION: u32 = 1;
/// The envelope's `alg`: the only cipher this version writes or reads.
const ALG: &str = "chacha20poly1305";
/// Associated data bound to the ciphertext (format and version).
const AAD: &[u8] = b"lpbridge-connections-v1";

/// One stored connection.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: ConnectionId,
    pub cid: Cid,
    pub endpoint: String,
    pub provhash: Secret,
}

/// The plaintext inside the envelope (only ever in memory).
#[derive(Serialize, Deserialize, Default)]
struct Plain {
    connections: BTreeMap<String, PlainProfile>,
}

#[derive(Serialize, Deserialize)]
struct PlainProfile {
    cid: Cid,
    endpoint: String,
    provhash: String,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    version: u32,
    alg: String,
    nonce: String,
    ciphertext: String,
}

/// Where the key comes from.
#[derive(Clone)]
pub enum KeySource {
    /// `LPBRIDGE_MASTER_KEY`.
    Env(String),
    /// A key file, generated when missing.
    File(PathBuf),
}

// Hand-written so that `{:?}` of a store never prints the master key.
impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env(_) => f.write_str("Env(***)"),
            KeySource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// The encrypted profile store.
#[derive(Debug, Clone)]
pub struct ProfileStore {
    dir: PathBuf,
    key: KeySource,
    /// The key once read or generated: a command reads the key file at most once.
    cached_key: KeyCache,
}

/// A key held after its first use; `Debug` never prints it.
#[derive(Clone, Default)]
struct KeyCache(std::sync::OnceLock<Key>);

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache(***)")
    }
}

impl ProfileStore {
    /// The store for this environment (`LPBRIDGE_HOME`, `LPBRIDGE_MASTER_KEY`).
    pub fn from_env() -> Result<Self> {
        let dir = match std::env::var_os("LPBRIDGE_HOME") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => directories::ProjectDirs::from("", "", "lpbridge")
                .map(|p| p.config_dir().to_path_buf())
                .ok_or_else(|| {
                    Error::config("cannot find a config directory; set LPBRIDGE_HOME")
                })?,
        };
        let key = match env_var("LPBRIDGE_MASTER_KEY")? {
            Some(k) => KeySource::Env(k),
            None => KeySource::File(dir.join(KEY_FILE)),
        };
        Ok(Self::new(dir, key))
    }

    pub fn new(dir: impl Into<PathBuf>, key: KeySource) -> Self {
        Self {
            dir: dir.into(),
            key,
            cached_key: KeyCache::default(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(STORE_FILE)
    }

    /// Every profile, by name.
    pub fn list(&self) -> Result<Vec<Profile>> {
        let plain = self.load()?;
        plain
            .connections
            .into_iter()
            .map(|(name, p)| {
                Ok(Profile {
                    name: ConnectionId::new(name)?,
                    cid: p.cid,
                    endpoint: p.endpoint,
                    provhash: Secret::new(p.provhash),
                })
            })
            .collect()
    }

    pub fn get(&self, name: &ConnectionId) -> Result<Option<Profile>> {
        Ok(self
            .list()?
            .into_iter()
            .find(|p| p.name.as_str() == name.as_str()))
    }

    /// Adds or (with `overwrite`) replaces a profile.
    pub fn add(&self, profile: &Profile, overwrite: bool) -> Result<()> {
        let _lock = self.lock()?;
        let mut plain = self.load()?;
        if !overwrite && plain.connections.contains_key(profile.name.as_str()) {
            return Err(already_exists(&profile.name));
        }
        plain.connections.insert(
            profile.name.as_str().to_owned(),
            PlainProfile {
                cid: profile.cid,
                endpoint: profile.endpoint.clone(),
                provhash: profile.provhash.expose().to_owned(),
            },
        );
        self.save(&plain)
    }

    /// Removes a profile; `false` when it did not exist.
    pub fn remove(&self, name: &ConnectionId) -> Result<bool> {
        let _lock = self.lock()?;
        let mut plain = self.load()?;
        let existed = plain.connections.remove(name.as_str()).is_some();
        if existed {
            self.save(&plain)?;
        }
        Ok(existed)
    }

    /// An exclusive lock on the store for a read-modify-write, so two runs at once cannot lose
    /// one's update. Released when the returned file is dropped.
    fn lock(&self) -> Result<std::fs::File> {
        create_private_dir(&self.dir)?;
        let path = self.dir.join("connections.lock");
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(&path)
            .map_err(|e| Error::config(format!("cannot open {}: {e}", path.display())))?;
        file.lock()
            .map_err(|e| Error::config(format!("cannot lock {}: {e}", path.display())))?;
        Ok(file)
    }

    fn load(&self) -> Result<Plain> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Plain::default()),
            Err(e) => {
                return Err(Error::config(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        let env: Envelope = serde_json::from_slice(&bytes).map_err(|e| {
            Error::config(format!("{} is not a connection store: {e}", path.display()))
        })?;
        if env.version != STORE_VERSION {
            let hint = if env.version > STORE_VERSION {
                "written by a newer lpbridge; upgrade lpbridge"
            } else {
                "not a format this lpbridge reads"
            };
            return Err(Error::config(format!(
                "{}: unsupported store version {} ({hint})",
                path.display(),
                env.version
            )));
        }
        if env.alg != ALG {
            return Err(Error::config(format!(
                "{}: unsupported cipher {:?} (this lpbridge reads {ALG})",
                path.display(),
                env.alg
            )));
        }
        // Only read (never create) the key when there is something to decrypt.
        let cipher = ChaCha20Poly1305::new(&self.key(false)?);
        let nonce = B64
            .decode(&env.nonce)
            .ok()
            .filter(|n| n.len() == 12)
            .ok_or_else(|| Error::config(format!("{}: corrupt nonce", path.display())))?;
        let ct = B64
            .decode(&env.ciphertext)
            .map_err(|_| Error::config(format!("{}: corrupt ciphertext", path.display())))?;
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                chacha20poly1305::aead::Payload { msg: &ct, aad: AAD },
            )
            .map_err(|_| {
                Error::config(format!(
                    "cannot decrypt {}: wrong master key (LPBRIDGE_MASTER_KEY or {}) or a \
                     corrupted file",
                    path.display(),
                    self.dir.join(KEY_FILE).display()
                ))
            })?;
        // Only the position: serde's message can quote plaintext values (provisioning hashes).
        serde_json::from_slice(&plain).map_err(|e| {
            Error::config(format!(
                "{}: corrupt profile data (line {}, column {})",
                path.display(),
                e.line(),
                e.column()
            ))
        })
    }

    fn save(&self, plain: &Plain) -> Result<()> {
        create_private_dir(&self.dir)?;
        let cipher = ChaCha20Poly1305::new(&self.key(true)?);
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let msg = serde_json::to_vec(plain)
            .map_err(|e| Error::config(format!("cannot encode profiles: {e}")))?;
        let ct = cipher
            .encrypt(
                &nonce,
                chacha20poly1305::aead::Payload {
                    msg: &msg,
                    aad: AAD,
                },
            )
            .map_err(|_| Error::config("encryption failed"))?;
        let env = Envelope {
            version: STORE_VERSION,
            alg: ALG.into(),
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ct),
        };
        let body = serde_json::to_vec_pretty(&env)
            .map_err(|e| Error::config(format!("cannot encode store: {e}")))?;
        write_private(&self.path(), &body)
    }

    /// The 32-byte key; with `create`, a missing key file is generated. Read once, then cached.
    fn key(&self, create: bool) -> Result<Key> {
        if let Some(k) = self.cached_key.0.get() {
            return Ok(*k);
        }
        let key = self.read_key(create)?;
        Ok(*self.cached_key.0.get_or_init(|| key))
    }

    fn read_key(&self, create: bool) -> Result<Key> {
        match &self.key {
            KeySource::Env(s) => parse_key(s).ok_or_else(|| {
                Error::config(
                    "LPBRIDGE_MASTER_KEY must be 32 bytes, as base64 or 64 hex digits \
                     (e.g. `openssl rand -base64 32`)",
                )
            }),
            KeySource::File(path) => match std::fs::read_to_string(path) {
                Ok(s) => {
                    warn_if_exposed(path);
                    parse_key(s.trim()).ok_or_else(|| {
                        Error::config(format!("{} does not hold a 32-byte key", path.display()))
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                    self.create_key_file(path)
                }
                Err(e) => Err(Error::config(format!(
                    "cannot read the master key {}: {e}",
                    path.display()
                ))),
            },
        }
    }

    /// Generates the key file without ever replacing one: when another process created it
    /// meanwhile, its key is used (else profiles it already wrote would become unreadable).
    fn create_key_file(&self, path: &Path) -> Result<Key> {
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        let tmp = write_temp(path, format!("{}\n", B64.encode(key)).as_bytes())?;
        // `hard_link` fails on an existing target, unlike `rename`.
        let linked = std::fs::hard_link(&tmp, path);
        let result = match linked {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.key(false),
            // File systems without hard links: fall back to the atomic rename.
            Err(_) => std::fs::rename(&tmp, path)
                .map(|()| key)
                .map_err(|e| Error::config(format!("cannot write {}: {e}", path.display()))),
        };
        let _ = std::fs::remove_file(&tmp);
        result
    }
}

/// The refusal to replace a stored profile without `--overwrite`.
pub(crate) fn already_exists(name: &ConnectionId) -> Error {
    Error::usage(format!(
        "connection {:?} already exists (pass --overwrite to replace it)",
        name.as_str()
    ))
}

/// Warns when a key file can be read by other users (it is created 0600).
fn warn_if_exposed(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "{} is readable by other users (mode {:o}); run `chmod 600` on it",
                path.display(),
                m.permissions().mode() & 0o777
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Credentials, endpoint and where they came from (the profile name, or `(environment)`), first
/// match wins:
///
/// 1. `connection`: that stored profile;
/// 2. `LPBRIDGE_CID` and `LPBRIDGE_PROVHASH` (endpoint from `LPBRIDGE_ENDPOINT`, else LastPass's);
/// 3. `LPBRIDGE_CONNECTION`: that stored profile;
/// 4. the profile named `default`, or the only profile.
///
/// `endpoint` overrides the chosen credentials' endpoint.
pub fn resolve_credentials(
    connection: Option<&ConnectionId>,
    endpoint: Option<&url::Url>,
) -> Result<(Credentials, url::Url, String)> {
    let from_profile = |p: Profile| -> Result<(Credentials, url::Url, String)> {
        let endpoint = match endpoint {
            Some(e) => e.clone(),
            None => parse_endpoint(&p.endpoint)
                .map_err(|e| Error::config(format!("connection {:?}: {e}", p.name.as_str())))?,
        };
        let creds = Credentials {
            cid: p.cid,
            provhash: p.provhash,
        };
        Ok((creds, endpoint, p.name.into_inner()))
    };
    // A named profile: one read of the store.
    let named = |name: &ConnectionId| -> Result<(Credentials, url::Url, String)> {
        let p = ProfileStore::from_env()?.get(name)?.ok_or_else(|| {
            Error::config(format!(
                "no connection named {:?} (see `lpbridge connection list`)",
                name.as_str()
            ))
        })?;
        from_profile(p)
    };
    if let Some(name) = connection {
        return named(name);
    }
    if let Some(creds) = Credentials::from_env()? {
        let endpoint = match endpoint {
            Some(e) => e.clone(),
            None => endpoint_from_env()?,
        };
        return Ok((creds, endpoint, "(environment)".to_owned()));
    }
    if let Some(name) = env_var("LPBRIDGE_CONNECTION")? {
        return named(&ConnectionId::new(name)?);
    }
    let mut profiles = ProfileStore::from_env()?.list()?;
    // The profile named `default`, else the only one: taken from this one read of the store.
    let chosen = profiles
        .iter()
        .position(|p| p.name.as_str() == "default")
        .or(if profiles.len() == 1 { Some(0) } else { None });
    match chosen {
        Some(i) => from_profile(profiles.swap_remove(i)),
        None if profiles.is_empty() => Err(Error::config(
            "no LastPass credentials: set LPBRIDGE_CID and LPBRIDGE_PROVHASH, or add a \
             profile with `lpbridge connection add NAME --cid N`",
        )),
        None => Err(Error::config(format!(
            "several connection profiles exist ({}); choose one with --connection NAME",
            profiles
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The endpoint when no profile gives one: `LPBRIDGE_ENDPOINT`, else LastPass's.
pub fn endpoint_from_env() -> Result<url::Url> {
    match env_var("LPBRIDGE_ENDPOINT")? {
        Some(e) if !e.trim().is_empty() => {
            parse_endpoint(e.trim()).map_err(|e| Error::config(format!("LPBRIDGE_ENDPOINT: {e}")))
        }
        _ => parse_endpoint(DEFAULT_ENDPOINT),
    }
}

/// A set, non-empty environment variable. One that is not UTF-8 is an error, not "unset": falling
/// back would silently pick another key, profile or endpoint.
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

/// A 32-byte key from base64 or hex.
fn parse_key(s: &str) -> Option<Key> {
    let s = s.trim();
    let bytes = if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        B64.decode(s).ok()?
    };
    (bytes.len() == 32).then(|| *Key::from_slice(&bytes))
}

/// Creates `dir` (mode 0700 when lpbridge creates it; an existing directory is left as is).
fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::config(format!("cannot create {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// Writes `body` to `path` atomically (temp file + rename) with mode 0600.
fn write_private(path: &Path, body: &[u8]) -> Result<()> {
    let tmp = write_temp(path, body)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::config(format!("cannot write {}: {e}", path.display()))
    })
}

/// Writes `body`, synced, to a new 0600 file next to `path` and returns its path. The name is
/// unique per write (no two writers share it) and the file is created fresh, so a stale temp
/// file with wider permissions is never reused.
fn write_temp(path: &Path, body: &[u8]) -> Result<PathBuf> {
    use std::io::Write;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let tmp = path.with_file_name(name);
    let err = |e: std::io::Error| Error::config(format!("cannot write {}: {e}", path.display()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(err)?;
    let written = f.write_all(body).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVHASH: &str = "f3c9b1e0a4d54c7e9b2a6d8e1f0c3b5a7d9e2f4a6c8b0d1e3f5a7c9b1d3e5f7a";

    fn profile(name: &str) -> Profile {
        Profile {
            name: ConnectionId::new(name).unwrap(),
            cid: Cid(8771312),
            endpoint: "http://127.0.0.1:1/enterpriseapi.php".into(),
            provhash: Secret::new(PROVHASH),
        }
    }

    #[test]
    fn roundtrip_and_ciphertext_hides_the_provhash() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::new(dir.path(), KeySource::File(dir.path().join(KEY_FILE)));
        store.add(&profile("prod"), false).unwrap();
        let raw = std::fs::read_to_string(store.path()).unwrap();
        assert!(!raw.contains(PROVHASH));
        assert!(!raw.contains(&B64.encode(PROVHASH)));
        assert!(!raw.contains("8771312"), "cid is encrypted too");
        assert!(!raw.contains("prod"), "names are encrypted too");
        let got = store
            .get(&ConnectionId::new("prod").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(got.provhash.expose(), PROVHASH);
        assert_eq!(got.cid, Cid(8771312));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join(KEY_FILE)), 0o600);
            assert_eq!(mode(&store.path()), 0o600);
        }
    }

    #[test]
    fn wrong_key_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = B64.encode([7u8; 32]);
        let k2 = B64.encode([8u8; 32]);
        let store = ProfileStore::new(dir.path(), KeySource::Env(k1));
        store.add(&profile("prod"), false).unwrap();
        let wrong = ProfileStore::new(dir.path(), KeySource::Env(k2));
        let err = wrong.list().unwrap_err();
        assert!(err.to_string().contains("wrong master key"), "{err}");
        assert!(!err.to_string().contains(PROVHASH));
        // A malformed key is refused with a message, not a panic.
        let bad = ProfileStore::new(dir.path(), KeySource::Env("short".into()));
        assert!(bad.list().unwrap_err().to_string().contains("32 bytes"));
    }

    #[test]
    fn hex_key_accepted_and_fresh_nonce_each_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::new(dir.path(), KeySource::Env("ab".repeat(32)));
        store.add(&profile("a"), false).unwrap();
        let first = std::fs::read_to_string(store.path()).unwrap();
        store.add(&profile("a"), true).unwrap();
        let second = std::fs::read_to_string(store.path()).unwrap();
        assert_ne!(first, second, "a new nonce on every write");
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn add_refuses_duplicates_and_remove_reports() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::new(dir.path(), KeySource::File(dir.path().join(KEY_FILE)));
        assert!(store.list().unwrap().is_empty());
        assert!(
            !dir.path().join(KEY_FILE).exists(),
            "listing creates no key"
        );
        store.add(&profile("a"), false).unwrap();
        assert!(store.add(&profile("a"), false).is_err());
        assert!(store.remove(&ConnectionId::new("a").unwrap()).unwrap());
        assert!(!store.remove(&ConnectionId::new("a").unwrap()).unwrap());
    }

    #[test]
    fn concurrent_adds_lose_no_profile() {
        let dir = tempfile::tempdir().unwrap();
        // One key up front: the race under test is the store's read-modify-write.
        ProfileStore::new(dir.path(), KeySource::File(dir.path().join(KEY_FILE)))
            .add(&profile("seed"), false)
            .unwrap();
        std::thread::scope(|scope| {
            for i in 0..8 {
                let path = dir.path();
                scope.spawn(move || {
                    let store = ProfileStore::new(path, KeySource::File(path.join(KEY_FILE)));
                    for j in 0..5 {
                        store.add(&profile(&format!("p{i}-{j}")), false).unwrap();
                    }
                });
            }
        });
        let store = ProfileStore::new(dir.path(), KeySource::File(dir.path().join(KEY_FILE)));
        assert_eq!(store.list().unwrap().len(), 1 + 8 * 5);
    }

    #[test]
    fn debug_output_hides_the_master_key_and_provhash() {
        let key = B64.encode([9u8; 32]);
        let store = ProfileStore::new("/nonexistent", KeySource::Env(key.clone()));
        let dbg = format!("{store:?}");
        assert!(!dbg.contains(&key), "{dbg}");
        let dbg = format!("{:?}", profile("prod"));
        assert!(!dbg.contains(PROVHASH), "{dbg}");
    }

    #[test]
    fn corrupt_truncated_and_future_stores_are_refused_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::new(dir.path(), KeySource::Env("cd".repeat(32)));
        store.add(&profile("prod"), false).unwrap();
        let good = std::fs::read(store.path()).unwrap();

        std::fs::write(store.path(), &good[..good.len() / 2]).unwrap();
        let e = store.list().unwrap_err().to_string();
        assert!(e.contains("is not a connection store"), "{e}");

        std::fs::write(store.path(), b"").unwrap();
        assert!(store.list().is_err());

        let mut env: serde_json::Value = serde_json::from_slice(&good).unwrap();
        env["version"] = 2.into();
        std::fs::write(store.path(), env.to_string()).unwrap();
        let e = store.list().unwrap_err().to_string();
        assert!(
            e.contains("version 2") && e.contains("newer lpbridge"),
            "{e}"
        );

        // A flipped ciphertext byte fails the AEAD tag: nothing is decrypted.
        let mut env: serde_json::Value = serde_json::from_slice(&good).unwrap();
        let mut ct = B64.decode(env["ciphertext"].as_str().unwrap()).unwrap();
        ct[0] ^= 1;
        env["ciphertext"] = B64.encode(ct).into();
        std::fs::write(store.path(), env.to_string()).unwrap();
        let e = store.list().unwrap_err().to_string();
        assert!(e.contains("cannot decrypt"), "{e}");

        let mut env: serde_json::Value = serde_json::from_slice(&good).unwrap();
        env["nonce"] = "AAAA".into();
        std::fs::write(store.path(), env.to_string()).unwrap();
        let e = store.list().unwrap_err().to_string();
        assert!(e.contains("corrupt nonce"), "{e}");

        let mut env: serde_json::Value = serde_json::from_slice(&good).unwrap();
        env["alg"] = "aes-256-gcm".into();
        std::fs::write(store.path(), env.to_string()).unwrap();
        let e = store.list().unwrap_err().to_string();
        assert!(e.contains("unsupported cipher \"aes-256-gcm\""), "{e}");
    }

    #[test]
    fn decrypted_garbage_is_reported_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = "ef".repeat(32);
        let store = ProfileStore::new(dir.path(), KeySource::Env(key.clone()));
        // A well-encrypted plaintext of the wrong shape, quoting the provhash.
        let cipher = ChaCha20Poly1305::new(&parse_key(&key).unwrap());
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let msg = format!(r#"{{"connections":{{"p":{{"cid":"{PROVHASH}"}}}}}}"#);
        let ct = cipher
            .encrypt(
                &nonce,
                chacha20poly1305::aead::Payload {
                    msg: msg.as_bytes(),
                    aad: AAD,
                },
            )
            .unwrap();
        let env = serde_json::json!({
            "version": STORE_VERSION, "alg": "chacha20poly1305",
            "nonce": B64.encode(nonce), "ciphertext": B64.encode(ct),
        });
        std::fs::write(store.path(), env.to_string()).unwrap();
        let e = store.list().unwrap_err().to_string();
        assert!(e.contains("corrupt profile data"), "{e}");
        assert!(!e.contains(PROVHASH), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn writes_never_reuse_a_stale_temp_file_or_replace_a_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join(KEY_FILE);
        let store = ProfileStore::new(dir.path(), KeySource::File(key_path.clone()));
        // A world-readable leftover at the old fixed temp name is not picked up.
        let stale = dir.path().join("connections.tmp");
        std::fs::write(&stale, b"stale").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
        store.add(&profile("a"), false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&store.path()), 0o600);
        assert_eq!(mode(&key_path), 0o600);
        // No temp files are left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") && n != "connections.tmp")
            .collect();
        assert!(names.is_empty(), "{names:?}");
        // Generating a key when one appeared meanwhile keeps the existing one.
        let before = std::fs::read_to_string(&key_path).unwrap();
        let k = store.create_key_file(&key_path).unwrap();
        assert_eq!(std::fs::read_to_string(&key_path).unwrap(), before);
        assert_eq!(Some(k), parse_key(&before));
        assert_eq!(store.list().unwrap().len(), 1);
    }
}
