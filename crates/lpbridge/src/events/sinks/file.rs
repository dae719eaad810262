//! The file sink: JSON Lines appended to `path`, rotated by size, synced per batch.
//!
//! - **Durability**: a batch is `Ok` only after `sync_data`, so a delivered batch survives a
//!   crash. Rotation syncs the old file before renaming it and the directory after.
//! - **Rotation**: before a line would make the active file larger than `max_bytes`, the file
//!   becomes `<path>.1`, `<path>.1` becomes `<path>.2` and so on, `<path>.<keep>` is deleted,
//!   and a new active file is started. Rotation happens between lines only, so every file holds
//!   whole lines; a record larger than `max_bytes` gets a file of its own.
//! - **No partial lines**: a batch's lines go out in one `write_all` per file; if it fails the
//!   file is truncated back to where the batch started. An interrupted write that a crash left
//!   behind (a last line without `\n`) is cut off when the file is next opened: that batch was
//!   never acknowledged, so it will be delivered again.
//! - **Duplicates**: a batch that fails after part of it was written (at rotation) leaves those
//!   whole lines behind; redelivery writes them again. Readers de-duplicate on `id`.
//!
//! The sink owns its file: another writer appending to it, or moving it away, is not supported.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::config::FileConfig;
use super::{Sink, SinkConfig, SinkError, blocking, json_lines};
use crate::events::EventRecord;

pub struct FileSink {
    name: String,
    path: PathBuf,
    state: Arc<Mutex<FileState>>,
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

struct FileState {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    /// `None` until opened, and again after an error (the next batch reopens and repairs).
    file: Option<File>,
    /// The active file's length, as far as this sink wrote it.
    len: u64,
}

impl FileSink {
    /// Validates `config`, then opens (creating it and its directory if needed) the active file.
    pub fn open(name: impl Into<String>, config: &FileConfig) -> Result<Self, SinkError> {
        SinkConfig::File(config.clone()).validate()?;
        let mut state = FileState {
            path: config.path.clone(),
            max_bytes: config.max_bytes,
            keep: config.keep,
            file: None,
            len: 0,
        };
        state
            .file()
            .map_err(|e| SinkError::io(format!("opening {}", config.path.display()), e))?;
        Ok(Self {
            name: name.into(),
            path: config.path.clone(),
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// The active file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn last_delivered(&self) -> BoxFuture<'_, Result<Option<EventRecord>, SinkError>> {
        Box::pin(async move {
            let state = Arc::clone(&self.state);
            let path = self.path.clone();
            blocking(move || {
                let st = state.lock();
                last_record(&st.path, st.keep)
                    .map_err(|e| SinkError::io(format!("reading the end of {}", path.display()), e))
            })
            .await
        })
    }

    fn deliver<'a>(&'a self, batch: &'a [EventRecord]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(());
            }
            let lines = json_lines(batch)?;
            let state = Arc::clone(&self.state);
            let path = self.path.clone();
            blocking(move || {
                state.lock().append(&lines).map_err(|e| {
                    SinkError::io(format!("appending events to {}", path.display()), e)
                })
            })
            .await
        })
    }
}

impl FileState {
    /// The open active file, opening (and repairing) it first if needed.
    fn file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(dir) = parent(&self.path) {
                fs::create_dir_all(dir)?;
            }
            let mut f = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&self.path)?;
            self.len = cut_partial_line(&mut f, &self.path)?;
            // A newly created file's directory entry must be durable too.
            sync_dir(&self.path)?;
            self.file = Some(f);
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("file sink: the file was not opened"))
    }

    fn append(&mut self, lines: &[Vec<u8>]) -> io::Result<()> {
        self.file()?;
        let mut chunk = Vec::new();
        for line in lines {
            let pending = self.len + chunk.len() as u64;
            if pending > 0 && pending + line.len() as u64 > self.max_bytes {
                self.write(&chunk)?;
                chunk.clear();
                self.rotate()?;
            }
            chunk.extend_from_slice(line);
        }
        self.write(&chunk)?;
        let synced = self.file()?.sync_data();
        if synced.is_err() {
            // After a failed fsync the page cache's state is unknown: reopen next time.
            self.file = None;
        }
        synced
    }

    /// Appends whole lines; on failure truncates back so no partial line remains.
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let before = self.len;
        let file = self.file()?;
        match file.write_all(chunk) {
            Ok(()) => {
                self.len = before + chunk.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = file.set_len(before);
                self.file = None;
                Err(e)
            }
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            // The rotated file's lines are delivered: they must be on disk before the rename.
            f.sync_data()?;
        }
        if self.keep == 0 {
            remove_if_exists(&self.path)?;
        } else {
            remove_if_exists(&rotated(&self.path, self.keep))?;
            for i in (1..self.keep).rev() {
                rename_if_exists(&rotated(&self.path, i), &rotated(&self.path, i + 1))?;
            }
            fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        sync_dir(&self.path)?;
        self.len = 0;
        self.file()?;
        Ok(())
    }
}

/// The record on the last whole line of the active file, or of `<path>.1` when the active file
/// is empty (a crash right after a rotation). An unreadable last line answers `None`.
fn last_record(path: &Path, keep: u32) -> io::Result<Option<EventRecord>> {
    let mut candidates = vec![path.to_path_buf()];
    if keep > 0 {
        candidates.push(rotated(path, 1));
    }
    for p in candidates {
        let mut f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if let Some(line) = last_line(&mut f)? {
            return Ok(serde_json::from_slice::<EventRecord>(&line).ok());
        }
    }
    Ok(None)
}

/// The last line ending in `\n` (without it), reading backwards in blocks.
fn last_line(f: &mut File) -> io::Result<Option<Vec<u8>>> {
    let len = f.metadata()?.len();
    let mut end = len;
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    let mut seen_newline = false;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = usize::try_from(end - start).map_err(io::Error::other)?;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        let mut chunk = buf[..n].to_vec();
        chunk.extend_from_slice(&tail);
        tail = chunk;
        // Skip the text after the last `\n` (a partial line), then find the line's start.
        if !seen_newline {
            match tail.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    tail.truncate(i);
                    seen_newline = true;
                }
                None => {
                    end = start;
                    continue;
                }
            }
        }
        if let Some(i) = tail.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(tail[i + 1..].to_vec()));
        }
        end = start;
    }
    Ok(seen_newline.then_some(tail))
}

/// `<path>.<i>`.
pub fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}

/// Cuts a last line without `\n` (left by an interrupted write) and returns the length kept.
fn cut_partial_line(f: &mut File, path: &Path) -> io::Result<u64> {
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))?;
    f.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(len);
    }
    let mut buf = vec![0u8; 8192];
    let mut end = len;
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(buf.len() as u64);
        let n = usize::try_from(end - start).map_err(io::Error::other)?;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            break start + i as u64 + 1;
        }
        end = start;
    };
    tracing::warn!(
        path = %path.display(),
        dropped_bytes = len - keep,
        "event file sink: cutting a partial last line left by an interrupted write"
    );
    f.set_len(keep)?;
    f.sync_data()?;
    Ok(keep)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Makes renames and creations in `path`'s directory durable.
#[cfg(unix)]
fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(parent(path).unwrap_or(Path::new(".")))?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}
