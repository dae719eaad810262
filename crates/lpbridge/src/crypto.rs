//! The master key and the sealing of one secret at a time (the provisioning hashes in the store).
//!
//! - **Key**: `LPBRIDGE_MASTER_KEY` (32 bytes, as base64 or 64 hex digits) when set, else the key
//!   file `<data dir>/master.key`, generated on first *write* with mode 0600 and never replaced
//!   (another process that created it first wins, and its key is used). Reads never create a key.
//!   Several `serve` replicas on one PostgreSQL must share the key: set `LPBRIDGE_MASTER_KEY`
//!   (or copy one key file); the store refuses a second key with a clear error (see
//!   [`crate::store`]'s key check).
//! - **Cipher**: ChaCha20-Poly1305 with a random 96-bit nonce per seal and caller-chosen
//!   associated data. The store binds each ciphertext to its row (the connection id), so a
//!   ciphertext copied into another row fails authentication instead of decrypting as that
//!   row's secret.
//!
//! A wrong key fails authentication; nothing is ever decrypted partially. Errors name where the
//! key came from (never the key).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "master.key";
/// The environment variable holding the master key.
pub const KEY_ENV: &str = "LPBRIDGE_MASTER_KEY";
/// Nonce length of ChaCha20-Poly1305.
pub const NONCE_LEN: usize = 12;

/// What can go wrong with the key or a ciphertext. Never carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// `LPBRIDGE_MASTER_KEY` or the key file does not hold 32 bytes.
    #[error(
        "{origin} must hold a 32-byte key, as base64 or 64 hex digits (e.g. `openssl rand -base64 32`)"
    )]
    MalformedKey { origin: String },
    /// `LPBRIDGE_MASTER_KEY` is set but not UTF-8.
    #[error("{KEY_ENV} is set but is not valid UTF-8")]
    KeyNotUtf8,
    /// Nothing to decrypt with: no environment key and no key file yet.
    #[error("no master key: {KEY_ENV} is not set and {} does not exist", path.display())]
    NoKey { path: PathBuf },
    /// The key file could not be read or written.
    #[error("cannot {action} the master key {}: {source}", path.display())]
    KeyFile {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Authentication failed: the key differs from the one that sealed `what`.
    #[error("cannot decrypt {what}: wrong master key ({origin})")]
    WrongKey { what: String, origin: String },
    /// Authentication failed although the key is right: the ciphertext was altered or moved
    /// from another row.
    #[error("cannot decrypt {what}: the stored ciphertext was altered or belongs to another row")]
    Tampered { what: String },
    /// A stored nonce of the wrong length.
    #[error("cannot decrypt {what}: corrupt nonce")]
    CorruptNonce { what: String },
    /// The cipher refused to encrypt (cannot happen with valid inputs).
    #[error("encryption failed")]
    Seal,
}

/// Where the master key comes from.
#[derive(Clone)]
pub enum KeySource {
    /// The value of `LPBRIDGE_MASTER_KEY`.
    Env(String),
    /// A key file, generated when missing (on the first write).
    File(PathBuf),
}

// Hand-written so that `{:?}` never prints the key.
impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env(_) => f.write_str("Env(***)"),
            KeySource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

impl KeySource {
    /// `LPBRIDGE_MASTER_KEY` when set (and non-empty), else `<data_dir>/master.key`.
    pub fn from_env(data_dir: &Path) -> Result<Self, CryptoError> {
        match std::env::var(KEY_ENV) {
            Ok(v) if !v.is_empty() => Ok(KeySource::Env(v)),
            Ok(_) | Err(std::env::VarError::NotPresent) => {
                Ok(KeySource::File(data_dir.join(KEY_FILE)))
            }
            Err(std::env::VarError::NotUnicode(_)) => Err(CryptoError::KeyNotUtf8),
        }
    }

    /// Names the origin in messages: `LPBRIDGE_MASTER_KEY` or the key file's path.
    pub fn origin(&self) -> String {
        match self {
            KeySource::Env(_) => format!("the key in {KEY_ENV}"),
            KeySource::File(p) => format!("the key file {}; {KEY_ENV} is not set", p.display()),
        }
    }
}

/// A master key, read (or generated) at most once. `Debug` never prints it.
pub struct MasterKey {
    source: KeySource,
    cached: OnceLock<Key>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// One sealed secret: the nonce and the ciphertext (tag included).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.ciphertext.len())
    }
}

impl MasterKey {
    pub fn new(source: KeySource) -> Self {
        Self {
            source,
            cached: OnceLock::new(),
        }
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// Encrypts `plaintext` bound to `aad` under a fresh nonce; generates the key file when
    /// there is none yet.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let cipher = ChaCha20Poly1305::new(&self.key(true)?);
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts what [`seal`](Self::seal) produced with the same `aad`. `what` names the value
    /// in errors (e.g. `the provisioning hash of connection "prod"`). An authentication failure
    /// is reported as [`CryptoError::WrongKey`]; the store refines it to
    /// [`CryptoError::Tampered`] when its key check passes.
    pub fn open(&self, what: &str, aad: &[u8], sealed: &Sealed) -> Result<Vec<u8>, CryptoError> {
        if sealed.nonce.len() != NONCE_LEN {
            return Err(CryptoError::CorruptNonce { what: what.into() });
        }
        let cipher = ChaCha20Poly1305::new(&self.key(false)?);
        cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::WrongKey {
                what: what.into(),
                origin: self.source.origin(),
            })
    }

    /// The 32-byte key; with `create`, a missing key file is generated. Read once, then cached.
    fn key(&self, create: bool) -> Result<Key, CryptoError> {
        if let Some(k) = self.cached.get() {
            return Ok(*k);
        }
        let key = self.read_key(create)?;
        Ok(*self.cached.get_or_init(|| key))
    }

    fn read_key(&self, create: bool) -> Result<Key, CryptoError> {
        match &self.source {
            KeySource::Env(s) => parse_key(s).ok_or_else(|| CryptoError::MalformedKey {
                origin: KEY_ENV.into(),
            }),
            KeySource::File(path) => match std::fs::read_to_string(path) {
                Ok(s) => {
                    warn_if_exposed(path);
                    parse_key(s.trim()).ok_or_else(|| CryptoError::MalformedKey {
                        origin: format!("the key file {}", path.display()),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                    self.create_key_file(path)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(CryptoError::NoKey { path: path.clone() })
                }
                Err(source) => Err(CryptoError::KeyFile {
                    action: "read",
                    path: path.clone(),
                    source,
                }),
            },
        }
    }

    /// Generates the key file without ever replacing one: when another process created it
    /// meanwhile, its key is used (else secrets it already sealed would become unreadable).
    fn create_key_file(&self, path: &Path) -> Result<Key, CryptoError> {
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        let io_err = |source| CryptoError::KeyFile {
            action: "write",
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            create_private_dir(parent).map_err(io_err)?;
        }
        let tmp = write_temp(path, format!("{}\n", B64.encode(key)).as_bytes()).map_err(io_err)?;
        // `hard_link` fails on an existing target, unlike `rename`.
        let result = match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.read_key(false),
            // File systems without hard links: fall back to an exclusive create.
            Err(_) => match std::fs::read(&tmp) {
                Ok(body) => match write_new(path, &body) {
                    Ok(()) => Ok(key),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.read_key(false),
                    Err(e) => Err(io_err(e)),
                },
                Err(e) => Err(io_err(e)),
            },
        };
        let _ = std::fs::remove_file(&tmp);
        result
    }
}

/// Compares two byte strings in time independent of their contents (lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A 32-byte key from base64 or 64 hex digits.
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

/// Creates `dir` (mode 0700 when lpbridge creates it; an existing directory is left as is).
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Opens (creating when missing, never truncating) a file with mode 0600 on creation.
pub(crate) fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Writes `body` to a new 0600 file; fails when `path` exists.
fn write_new(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(body)?;
    f.sync_all()
}

/// Writes `body`, synced, to a new 0600 file next to `path` and returns its path. The name is
/// unique per write (no two writers share it) and the file is created fresh, so a stale temp
/// file with wider permissions is never reused.
fn write_temp(path: &Path, body: &[u8]) -> std::io::Result<PathBuf> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let tmp = path.with_file_name(name);
    if let Err(e) = write_new(&tmp, body) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"f3c9b1e0a4d54c7e9b2a6d8e1f0c3b5a7d9e2f4a6c8b0d1e3f5a7c9b1d3e5f7a";

    #[test]
    fn seal_open_roundtrip_with_fresh_nonces() {
        let key = MasterKey::new(KeySource::Env("ab".repeat(32)));
        let a = key.seal(b"row-1", SECRET).unwrap();
        let b = key.seal(b"row-1", SECRET).unwrap();
        assert_ne!(a.nonce, b.nonce, "a fresh nonce per seal");
        assert!(!a.ciphertext.windows(SECRET.len()).any(|w| w == SECRET));
        assert_eq!(key.open("x", b"row-1", &a).unwrap(), SECRET);
    }

    #[test]
    fn associated_data_binds_a_ciphertext_to_its_row() {
        let key = MasterKey::new(KeySource::Env(B64.encode([3u8; 32])));
        let sealed = key.seal(b"prod", SECRET).unwrap();
        let e = key.open("the hash of \"staging\"", b"staging", &sealed);
        assert!(matches!(e, Err(CryptoError::WrongKey { .. })), "{e:?}");
    }

    #[test]
    fn wrong_and_malformed_keys_fail_cleanly_naming_the_origin() {
        let k1 = MasterKey::new(KeySource::Env(B64.encode([7u8; 32])));
        let k2 = MasterKey::new(KeySource::Env(B64.encode([8u8; 32])));
        let sealed = k1.seal(b"a", SECRET).unwrap();
        let e = k2
            .open("the secret", b"a", &sealed)
            .unwrap_err()
            .to_string();
        assert!(e.contains("wrong master key"), "{e}");
        assert!(e.contains(KEY_ENV), "{e}");
        let bad = MasterKey::new(KeySource::Env("short".into()));
        let e = bad.seal(b"a", SECRET).unwrap_err().to_string();
        assert!(e.contains("32-byte") && e.contains(KEY_ENV), "{e}");
        let mut short = sealed.clone();
        short.nonce.truncate(4);
        assert!(matches!(
            k1.open("x", b"a", &short),
            Err(CryptoError::CorruptNonce { .. })
        ));
    }

    #[test]
    fn hex_and_base64_keys_are_the_same_key() {
        let hex = MasterKey::new(KeySource::Env("07".repeat(32)));
        let b64 = MasterKey::new(KeySource::Env(B64.encode([7u8; 32])));
        let sealed = hex.seal(b"a", SECRET).unwrap();
        assert_eq!(b64.open("x", b"a", &sealed).unwrap(), SECRET);
    }

    #[test]
    fn reading_never_creates_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(KEY_FILE);
        let key = MasterKey::new(KeySource::File(path.clone()));
        let sealed = Sealed {
            nonce: vec![0; NONCE_LEN],
            ciphertext: vec![0; 40],
        };
        let e = key.open("x", b"a", &sealed).unwrap_err();
        assert!(matches!(e, CryptoError::NoKey { .. }), "{e:?}");
        assert!(e.to_string().contains(KEY_ENV), "{e}");
        assert!(!path.exists());
        key.seal(b"a", SECRET).unwrap();
        assert!(path.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let k = B64.encode([9u8; 32]);
        let key = MasterKey::new(KeySource::Env(k.clone()));
        key.seal(b"a", SECRET).unwrap();
        let dbg = format!("{key:?}");
        assert!(!dbg.contains(&k), "{dbg}");
        let sealed = key.seal(b"a", SECRET).unwrap();
        assert_eq!(
            format!("{sealed:?}"),
            format!("Sealed({} bytes)", SECRET.len() + 16)
        );
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_never_replaced_and_leave_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let key = MasterKey::new(KeySource::File(path.clone()));
        let sealed = key.seal(b"a", SECRET).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        // Generating a key when one appeared meanwhile keeps the existing one.
        let other = MasterKey::new(KeySource::File(path.clone()));
        let k = other.create_key_file(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        assert_eq!(Some(k), parse_key(&before));
        assert_eq!(other.open("x", b"a", &sealed).unwrap(), SECRET);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn concurrent_first_use_agrees_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let sealed: Vec<Sealed> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    s.spawn(move || {
                        MasterKey::new(KeySource::File(path))
                            .seal(b"a", SECRET)
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let key = MasterKey::new(KeySource::File(path));
        for s in &sealed {
            assert_eq!(key.open("x", b"a", s).unwrap(), SECRET);
        }
    }

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
