//! Native pre-run's decryption over the train directory's own files, undone on any failure.
//!
//! The directory must still end up exactly as it was when a check fails, so every file touched
//! is sealed back ([`crate::crypto::stream_in_place::restore`]) before the error is returned;
//! a stop requested through [`crate::cancel`] is honoured between blocks the same way. The
//! marker and the fallback for files that cannot be rewritten are [`crate::tree::rewrite`]'s.

use super::{ROLE_RESULTS, ROLE_TRAIN};
use crate::crypto::{hasher::SplitHasher, stream, stream_in_place};
use crate::error::{decrypt_error, ProtocolError, Rejection, Result};
use crate::keys::SymKey;
use crate::layout::{RESULTS_DIR, TRAIN_DIR};
use crate::par;
use crate::tree::rewrite::{NotStarted, Rewrite};
use aws_lc_rs::digest::SHA256;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One file to decrypt and check: its role, its path in the manifest, and the manifest's size
/// and SHA-256.
pub type Job<'a> = (&'a str, &'a str, u64, [u8; 32]);

/// Decrypts and checks every job over its own file. `Ok(None)`: some file cannot be rewritten
/// in place (nothing was touched; use a staging copy). On a rejection every file is restored.
pub fn decrypt_all(
    dir: &std::path::Path,
    key: &SymKey,
    jobs: &[Job<'_>],
) -> Result<Option<Vec<u64>>> {
    let rels: Vec<String> = jobs
        .iter()
        .map(|(role, path, _, _)| format!("{}/{path}", top(role)))
        .collect();
    let rw = match Rewrite::begin(dir, &rels)? {
        Ok(rw) => rw,
        Err(NotStarted::Ineligible) => return Ok(None),
        Err(NotStarted::Cancelled) => return Err(ProtocolError::Cancelled),
    };
    let done: Vec<AtomicU64> = jobs.iter().map(|_| AtomicU64::new(0)).collect();
    let started: Vec<AtomicBool> = jobs.iter().map(|_| AtomicBool::new(false)).collect();
    let indices: Vec<usize> = (0..jobs.len()).collect();
    let outcome = par::try_map(&indices, |&i| {
        let (role, path, size, sha256) = jobs[i];
        let file = rw.open(i)?;
        started[i].store(true, Ordering::Release);
        let fkey = stream::file_key(key, role, path);
        let mut h = SplitHasher::new(&SHA256, size);
        stream_in_place::decrypt(&fkey, &file, size, &mut h, &done[i])
            .map_err(|e| decrypt_error(&rels[i], e))?;
        if h.finish().as_ref() != sha256 {
            return Err(ProtocolError::from(if role == ROLE_TRAIN {
                Rejection::TrainFile(rels[i].clone())
            } else {
                Rejection::ResultFile(rels[i].clone())
            }));
        }
        Ok(size)
    });
    match outcome {
        Ok(sizes) => {
            rw.finish()?;
            Ok(Some(sizes))
        }
        Err(err) => {
            // Every file is tried even when one cannot be put back: the fewer left damaged the
            // better. The closure never fails, so that `try_map` does not stop early.
            let undone = par::try_map(&indices, |&i| {
                if !started[i].load(Ordering::Acquire) {
                    return Ok::<_, std::convert::Infallible>(Ok(()));
                }
                let (role, path, size, _) = jobs[i];
                let fkey = stream::file_key(key, role, path);
                let n = done[i].load(Ordering::Acquire);
                Ok(rw.put_back(i, |f| stream_in_place::restore(&fkey, f, size, n)))
            });
            let first_failure = undone.into_iter().flatten().find_map(Result::err);
            match first_failure {
                None => {
                    rw.finish()?;
                    Err(err)
                }
                // The marker stays: the directory is damaged and says so.
                Some(e) => Err(Rewrite::damaged(e, &err).into()),
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
