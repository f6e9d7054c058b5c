//! Pre-run's decryption over the train directory's own files, undone on any failure.
//!
//! The directory must still end up exactly as it was when a check fails, so every file touched
//! is remembered and sealed back ([`crate::crypto::in_place::restore`]) before the error is
//! returned. While files are being rewritten a marker ([`MARKER`]) sits in the directory: a
//! process killed half-way leaves it behind, and every later step refuses the directory with
//! [`Rejection::Interrupted`] instead of tripping over half-decrypted files.
//!
//! A stop requested through [`crate::cancel`] (the `train` binary's SIGINT/SIGTERM handler) is
//! honoured between blocks the same way: every file is put back, then the step returns
//! [`ProtocolError::Cancelled`].
//!
//! Files shared with another directory (hard links) or not writable are not rewritten; the
//! caller then decrypts into a staging copy instead.

use super::{ROLE_RESULTS, ROLE_TRAIN};
use crate::cancel;
use crate::common::{RESULTS_DIR, TRAIN_DIR};
use crate::crypto::{hasher::SplitHasher, in_place, stream};
use crate::error::{decrypt_error, ProtocolError, Rejection, Result};
use crate::keys::SymKey;
use crate::par;
use crate::tree::{self, TreeError};
use aws_lc_rs::digest::SHA256;
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Present in a train directory only while pre-run rewrites its files.
pub const MARKER: &str = ".pht-pre-run-in-progress";

/// One file to decrypt and check: its role, its path in the manifest, and the manifest's size
/// and SHA-256 (hex).
pub type Job<'a> = (&'a str, &'a str, u64, &'a str);

/// A file as found before anything was written, to put back on failure.
struct Original {
    path: PathBuf,
    rel: String,
    mode: u32,
    times: FileTimes,
}

/// Decrypts and checks every job over its own file. `Ok(None)`: some file cannot be rewritten
/// in place (nothing was touched; use a staging copy). On a rejection every file is restored.
pub fn decrypt_all(dir: &Path, key: &SymKey, jobs: &[Job<'_>]) -> Result<Option<Vec<u64>>> {
    let mut originals = Vec::with_capacity(jobs.len());
    for (role, path, _, _) in jobs {
        let rel = format!("{}/{path}", top(role));
        let p = dir.join(&rel);
        let Ok(meta) = fs::symlink_metadata(&p) else {
            return Ok(None);
        };
        let writable = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)
            .is_ok();
        if !meta.is_file() || meta.nlink() != 1 || !writable {
            return Ok(None);
        }
        let times = FileTimes::new()
            .set_accessed(meta.accessed().map_err(tree::io_err(&p))?)
            .set_modified(meta.modified().map_err(tree::io_err(&p))?);
        originals.push(Original {
            path: p,
            rel,
            mode: meta.mode() & 0o7777,
            times,
        });
    }

    let _critical = cancel::Critical::enter();
    if cancel::requested() {
        return Err(ProtocolError::Cancelled);
    }
    let marker = dir.join(MARKER);
    File::create_new(&marker).map_err(tree::io_err(&marker))?;
    let done: Vec<AtomicU64> = jobs.iter().map(|_| AtomicU64::new(0)).collect();
    let started: Vec<AtomicBool> = jobs.iter().map(|_| AtomicBool::new(false)).collect();
    let indices: Vec<usize> = (0..jobs.len()).collect();
    let outcome = par::try_map(&indices, |&i| {
        let (role, path, size, sha256) = jobs[i];
        let o = &originals[i];
        let file = open_rw(&o.path)?;
        started[i].store(true, Ordering::Release);
        // Plaintext is private from its first byte, as staged files are.
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(tree::io_err(&o.path))?;
        let fkey = stream::file_key(key, role, path);
        let mut h = SplitHasher::new(&SHA256, size);
        in_place::decrypt(&fkey, &file, size, &mut h, &done[i])
            .map_err(|e| decrypt_error(&o.rel, e))?;
        if hex::encode(h.finish()) != sha256 {
            return Err(ProtocolError::from(if role == ROLE_TRAIN {
                Rejection::TrainFile(o.rel.clone())
            } else {
                Rejection::ResultFile(o.rel.clone())
            }));
        }
        Ok(size)
    });
    match outcome {
        Ok(sizes) => {
            fs::remove_file(&marker).map_err(tree::io_err(&marker))?;
            Ok(Some(sizes))
        }
        Err(err) => {
            let undone = par::try_map(&indices, |&i| {
                if !started[i].load(Ordering::Acquire) {
                    return Ok(());
                }
                let (role, path, size, _) = jobs[i];
                let o = &originals[i];
                let file = open_rw(&o.path)?;
                let fkey = stream::file_key(key, role, path);
                in_place::restore(&fkey, &file, size, done[i].load(Ordering::Acquire))
                    .and_then(|()| file.set_permissions(Permissions::from_mode(o.mode)))
                    .and_then(|()| file.set_times(o.times))
                    .map_err(tree::io_err(&o.path))
            });
            match undone {
                Ok(_) => {
                    fs::remove_file(&marker).map_err(tree::io_err(&marker))?;
                    Err(err)
                }
                // The marker stays: the directory is damaged and says so.
                Err(TreeError::Io { path, cause }) => Err(TreeError::Io {
                    path,
                    cause: std::io::Error::new(
                        cause.kind(),
                        format!("{cause}, while putting the directory back after: {err}"),
                    ),
                }
                .into()),
                Err(e) => Err(e.into()),
            }
        }
    }
}

fn top(role: &str) -> &'static str {
    if role == ROLE_RESULTS {
        RESULTS_DIR
    } else {
        TRAIN_DIR
    }
}

fn open_rw(p: &Path) -> std::result::Result<File, TreeError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
        .map_err(tree::io_err(p))
}
