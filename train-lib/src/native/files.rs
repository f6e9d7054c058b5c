//! One native file through STREAM with its path-bound key, its plaintext hashed on the way.

use crate::crypto::{hasher::SplitHasher, stream};
use crate::error::Result;
use crate::files::{through, Way};
use crate::keys::SymKey;
use aws_lc_rs::digest::SHA256;
use std::fs::File;
use std::path::Path;

/// Decrypts or encrypts (`way`) `src`, a file of role `role` at manifest path `path`, into
/// `sink` under its path-bound key; returns (size, SHA-256 of the plaintext).
pub(super) fn stream_one(
    way: Way,
    key: &SymKey,
    src: &Path,
    (role, path): (&str, &str),
    size_hint: u64,
    sink: File,
    shown: &str,
) -> Result<(u64, [u8; 32])> {
    let fkey = stream::file_key(key, role, path);
    let mut h = SplitHasher::new(&SHA256, size_hint);
    let n = through(
        way,
        src,
        sink,
        shown,
        Some(size_hint),
        |i, o, hint| match way {
            Way::Decrypt => stream::decrypt(&fkey, i, o, &mut h, hint),
            Way::Encrypt => stream::encrypt(&fkey, i, o, &mut h, hint),
        },
    )?;
    let digest = h.finish().as_ref().try_into().expect("SHA-256 is 32 bytes");
    Ok((n, digest))
}
