//! Saving and loading the whole emulator state (config + every account) as one JSON file,
//! written atomically (temporary file in the same directory, fsync, rename).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::state::Account;
use super::{LastPass, LastPassConfig, SandboxError};

const VERSION: u32 = 1;

#[derive(Serialize)]
struct SaveRef<'a> {
    format: &'static str,
    version: u32,
    config: LastPassConfig,
    accounts: Vec<&'a Account>,
}

#[derive(Deserialize)]
struct SaveOwned {
    version: u32,
    config: LastPassConfig,
    accounts: Vec<Account>,
}

fn err(path: &Path, message: impl ToString) -> SandboxError {
    SandboxError::StateFile {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

pub(crate) fn save(lp: &LastPass, path: &Path) -> Result<(), SandboxError> {
    let config = lp.config();
    let refs: Vec<_> = lp.inner.accounts.read().values().cloned().collect();
    let guards: Vec<_> = refs.iter().map(|a| a.read()).collect();
    let state = SaveRef {
        format: "lpbridge-sandbox-lastpass",
        version: VERSION,
        config,
        accounts: guards.iter().map(|g| &**g).collect(),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| err(path, "not a file path"))?
        .to_string_lossy()
        .into_owned();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        // The state holds every account's provisioning hash: owner-only, like a key file.
        let f = create_private(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        serde_json::to_writer(&mut w, &state)?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    drop(guards);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(path, e));
    }
    Ok(())
}

pub(crate) fn load(path: &Path) -> Result<(LastPassConfig, Vec<Account>), SandboxError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e))?;
    let state: SaveOwned = serde_json::from_slice(&bytes).map_err(|e| err(path, e))?;
    if state.version != VERSION {
        return Err(err(path, format!("unsupported version {}", state.version)));
    }
    let mut accounts = state.accounts;
    for a in &mut accounts {
        a.reindex()?;
    }
    Ok((state.config, accounts))
}

/// Creates (truncating) a file readable and writable by its owner only.
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}
