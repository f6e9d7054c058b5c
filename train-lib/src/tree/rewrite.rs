//! Rewriting a train directory's files over themselves, with everything needed to put them back.
//!
//! Pre-run decrypts files in place (no second copy on disk, no old blocks to free); the cipher
//! modules know how to undo their own writes. This module keeps the rest: which files may be
//! rewritten at all (not hard-linked elsewhere, writable), their modes and times, and the marker
//! that exists only while files are being rewritten. A process killed half-way leaves the marker
//! behind, and every later step refuses the directory instead of tripping over half-decrypted
//! files. Work inside a [`Rewrite`] is covered by [`crate::cancel`]: a signal asks it to undo
//! rather than kill it.

use super::{io_err, TreeError};
use crate::cancel;
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Present in a train directory only while pre-run rewrites its files.
pub const MARKER: &str = ".pht-pre-run-in-progress";

/// A file as found before anything was written, to put back on failure.
struct Original {
    path: PathBuf,
    mode: u32,
    times: FileTimes,
}

/// A set of files about to be rewritten in place.
pub struct Rewrite {
    marker: PathBuf,
    originals: Vec<Original>,
    _critical: cancel::Critical,
}

/// Why a rewrite did not start.
pub enum NotStarted {
    /// Some file is shared with another name or not writable: decrypt into a staging copy.
    Ineligible,
    /// A stop was requested before anything was written.
    Cancelled,
}

impl Rewrite {
    /// Checks that every file of `rels` (relative to `dir`) can be rewritten, records its mode
    /// and times, and puts the marker down. Nothing is written before this returns `Ok`.
    pub fn begin(dir: &Path, rels: &[String]) -> Result<Result<Self, NotStarted>, TreeError> {
        let mut originals = Vec::with_capacity(rels.len());
        for rel in rels {
            let path = dir.join(rel);
            let Ok(meta) = fs::symlink_metadata(&path) else {
                return Ok(Err(NotStarted::Ineligible));
            };
            if !meta.is_file() || meta.nlink() != 1 || open_rw(&path).is_err() {
                return Ok(Err(NotStarted::Ineligible));
            }
            let times = FileTimes::new()
                .set_accessed(meta.accessed().map_err(io_err(&path))?)
                .set_modified(meta.modified().map_err(io_err(&path))?);
            originals.push(Original {
                path,
                mode: meta.mode() & 0o7777,
                times,
            });
        }
        // Entered before the request is checked, so that a signal either sees this work or is
        // seen by it before the first write.
        let critical = cancel::Critical::enter();
        if cancel::requested() {
            return Ok(Err(NotStarted::Cancelled));
        }
        let marker = dir.join(MARKER);
        File::create_new(&marker).map_err(io_err(&marker))?;
        Ok(Ok(Self {
            marker,
            originals,
            _critical: critical,
        }))
    }

    /// Opens file `i` of the list for rewriting; its plaintext will be private from the first
    /// byte, as staged files are.
    pub fn open(&self, i: usize) -> Result<File, TreeError> {
        let p = &self.originals[i].path;
        let f = open_rw(p)?;
        f.set_permissions(Permissions::from_mode(0o600))
            .map_err(io_err(p))?;
        Ok(f)
    }

    /// Puts file `i` back: `undo` restores its bytes, then its mode and times are restored.
    pub fn put_back(
        &self,
        i: usize,
        undo: impl FnOnce(&File) -> std::io::Result<()>,
    ) -> Result<(), TreeError> {
        let o = &self.originals[i];
        let f = open_rw(&o.path)?;
        undo(&f)
            .and_then(|()| f.set_permissions(Permissions::from_mode(o.mode)))
            .and_then(|()| f.set_times(o.times))
            .map_err(io_err(&o.path))
    }

    /// Every file is in its final state (rewritten, or put back): the marker goes.
    pub fn finish(self) -> Result<(), TreeError> {
        fs::remove_file(&self.marker).map_err(io_err(&self.marker))
    }

    /// Putting files back failed: the marker stays, so the directory says it is damaged. The
    /// error names the failure and the rejection that started the undo.
    pub fn damaged(e: TreeError, after: &dyn std::fmt::Display) -> TreeError {
        match e {
            TreeError::Io { path, cause } => TreeError::Io {
                path,
                cause: std::io::Error::new(
                    cause.kind(),
                    format!("{cause}, while putting the directory back after: {after}"),
                ),
            },
            other => other,
        }
    }
}

fn open_rw(p: &Path) -> Result<File, TreeError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
        .map_err(io_err(p))
}
