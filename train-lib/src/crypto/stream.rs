//! The native file encryption: AES-256-GCM in the STREAM construction (Hoang, Reyhanitabar,
//! Rogaway, Vizár), as age uses it, with 64 KiB plaintext chunks.
//!
//! Each file gets its own key, derived with HKDF-SHA-256 from the pass's file key, the file's
//! role (`train` or `results`) and its relative path. A file renamed, moved between roles or
//! swapped with another therefore fails to authenticate. The nonce is an 11-byte big-endian chunk
//! counter and a final-chunk flag, so reordered, dropped or appended chunks and truncation fail.
//!
//! Layout: `"PHTNSTR1"` ‖ chunk₀ ‖ … ‖ chunkₙ, each chunk `ciphertext ‖ tag(16)`; every chunk but
//! the last holds exactly 64 KiB of plaintext; the last holds 1..=64 KiB, or 0 only when the
//! whole file is empty.

use super::blocks::Blocks;
use super::hasher::block_size;
use super::hasher::SplitHasher;
use super::{CipherError, IO_BUF};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf;
use std::collections::VecDeque;
use std::io::{IoSlice, Read, Write};
use std::sync::Arc;

/// Magic at the start of every native encrypted file.
pub const MAGIC: &[u8; 8] = b"PHTNSTR1";
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// GCM tag length.
pub const TAG: usize = 16;

/// Length of the encrypted form of a `plain_len`-byte file; `None` when it would not fit in a
/// `u64` (sizes come from manifests and may be absurd).
pub fn ciphertext_len(plain_len: u64) -> Option<u64> {
    let chunks = plain_len.div_ceil(CHUNK as u64).max(1);
    chunks
        .checked_mul(TAG as u64)?
        .checked_add(plain_len)?
        .checked_add(MAGIC.len() as u64)
}

/// Derives the per-file key. `role` and `path` are length-framed so no two (role, path) pairs
/// give the same HKDF info.
pub fn file_key(pass_key: &[u8; 32], role: &str, path: &str) -> LessSafeKey {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"pht-native/1 file key");
    let prk = salt.extract(pass_key);
    let role_len = (role.len() as u64).to_be_bytes();
    let path_len = (path.len() as u64).to_be_bytes();
    let info: [&[u8]; 4] = [&role_len, role.as_bytes(), &path_len, path.as_bytes()];
    let okm = prk
        .expand(&info, &AES_256_GCM)
        .expect("HKDF output of one AES key");
    LessSafeKey::new(UnboundKey::from(okm))
}

/// The nonce of chunk `counter`: an 11-byte big-endian counter and the final-chunk flag.
pub(crate) fn nonce(counter: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// Encrypts `input` into `output`, feeding the plaintext to `hasher`. Returns the plaintext length.
/// `size_hint` (the expected plaintext length) only sizes the buffers.
pub fn encrypt<R: Read, W: Write>(
    key: &LessSafeKey,
    input: R,
    mut output: W,
    hasher: &mut SplitHasher,
    size_hint: u64,
) -> Result<u64, CipherError> {
    output.write_all(MAGIC)?;
    // Blocks are whole chunks, so only the last block is ragged.
    let mut blocks = Blocks::new(input, block_size(size_hint, CHUNK, IO_BUF));
    let mut counter = 0u64;
    let mut total = 0u64;
    let mut lasts = VecDeque::new();
    loop {
        let (buf, last) = blocks.next_block()?;
        total += buf.len() as u64;
        lasts.push_back(last);
        // Hashed first, then sealed in place: the plaintext is never copied.
        let mut ready: Vec<Vec<u8>> = hasher.push(buf).into_iter().collect();
        if last {
            ready.extend(hasher.drain());
        }
        for mut b in ready {
            let is_last = lasts.pop_front().expect("one flag per block");
            seal_and_write(key, &mut counter, &mut b, is_last, &mut output)?;
            blocks.pool().give(b);
        }
        if last {
            return Ok(total);
        }
    }
}

fn seal_and_write<W: Write>(
    key: &LessSafeKey,
    counter: &mut u64,
    buf: &mut [u8],
    last_block: bool,
    output: &mut W,
) -> Result<(), CipherError> {
    // An empty file is one empty, final chunk.
    let n = buf.len().div_ceil(CHUNK).max(1);
    let ranges: Vec<_> = (0..n)
        .map(|i| (i * CHUNK).min(buf.len())..((i + 1) * CHUNK).min(buf.len()))
        .collect();
    let mut tags = Vec::with_capacity(n);
    for (i, range) in ranges.iter().enumerate() {
        let tag = key
            .seal_in_place_separate_tag(
                nonce(*counter, last_block && i + 1 == n),
                Aad::empty(),
                &mut buf[range.clone()],
            )
            .map_err(|_| CipherError::Malformed("seal"))?;
        tags.push(tag);
        *counter += 1;
    }
    let mut slices = Vec::with_capacity(2 * n);
    for (range, tag) in ranges.into_iter().zip(&tags) {
        slices.push(IoSlice::new(&buf[range]));
        slices.push(IoSlice::new(tag.as_ref()));
    }
    write_all_vectored(output, &mut slices)?;
    Ok(())
}

fn write_all_vectored<W: Write>(w: &mut W, mut slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match w.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Decrypts a native encrypted file, feeding plaintext to `hasher` and writing it to `output`.
/// Returns the plaintext length. Every chunk is authenticated before its plaintext is written.
pub fn decrypt<R: Read, W: Write>(
    key: &LessSafeKey,
    mut input: R,
    mut output: W,
    hasher: &mut SplitHasher,
    size_hint: u64,
) -> Result<u64, CipherError> {
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .map_err(|_| CipherError::Malformed("shorter than its header"))?;
    if &magic != MAGIC {
        return Err(CipherError::Malformed(
            "not a native encrypted file (bad magic)",
        ));
    }
    const SEALED: usize = CHUNK + TAG;
    let mut blocks = Blocks::new(input, block_size(size_hint, CHUNK, IO_BUF) / CHUNK * SEALED);
    let mut counter = 0u64;
    let mut total = 0u64;
    loop {
        let (mut buf, last_block) = blocks.next_block()?;
        if buf.is_empty() {
            return Err(CipherError::Truncated);
        }
        let n_chunks = buf.len().div_ceil(SEALED);
        let mut plain_len = 0;
        for i in 0..n_chunks {
            let start = i * SEALED;
            let end = (start + SEALED).min(buf.len());
            if end - start < TAG {
                return Err(CipherError::Malformed("chunk shorter than its tag"));
            }
            let last = last_block && i + 1 == n_chunks;
            let p = key
                .open_in_place(nonce(counter, last), Aad::empty(), &mut buf[start..end])
                .map_err(|_| CipherError::Decrypt)?
                .len();
            if p == 0 && counter != 0 {
                return Err(CipherError::Malformed(
                    "empty final chunk in a non-empty file",
                ));
            }
            // Close the gaps the tags leave, in place.
            buf.copy_within(start..start + p, plain_len);
            plain_len += p;
            counter += 1;
        }
        buf.truncate(plain_len);
        let buf = Arc::new(buf);
        hasher.update(&buf);
        output.write_all(&buf)?;
        total += buf.len() as u64;
        blocks.pool().lend(&buf);
        if last_block {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::digest::SHA256;

    fn enc(key: &[u8; 32], role: &str, path: &str, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let k = file_key(key, role, path);
        encrypt(
            &k,
            data,
            &mut out,
            &mut SplitHasher::new(&SHA256, 0),
            data.len() as u64,
        )
        .unwrap();
        out
    }

    fn dec(key: &[u8; 32], role: &str, path: &str, ct: &[u8]) -> Result<Vec<u8>, CipherError> {
        let mut out = Vec::new();
        let k = file_key(key, role, path);
        decrypt(
            &k,
            ct,
            &mut out,
            &mut SplitHasher::new(&SHA256, 0),
            ct.len() as u64,
        )?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_chunk_boundaries() {
        let key = [1u8; 32];
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK,
            IO_BUF,
            IO_BUF + CHUNK + 3,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let ct = enc(&key, "results", "a/b.csv", &data);
            assert_eq!(
                Some(ct.len() as u64),
                ciphertext_len(len as u64),
                "len {len}"
            );
            assert_eq!(
                dec(&key, "results", "a/b.csv", &ct).unwrap(),
                data,
                "len {len}"
            );
        }
    }

    #[test]
    fn size_hints_change_buffers_not_bytes() {
        let key = [4u8; 32];
        let data: Vec<u8> = (0..3 * CHUNK + 77).map(|i| (i % 11) as u8).collect();
        let k = file_key(&key, "results", "f");
        let mut a = Vec::new();
        encrypt(&k, &data[..], &mut a, &mut SplitHasher::new(&SHA256, 0), 0).unwrap();
        let mut b = Vec::new();
        encrypt(
            &k,
            &data[..],
            &mut b,
            &mut SplitHasher::new(&SHA256, 1 << 30),
            1 << 30,
        )
        .unwrap();
        assert_eq!(a, b);
        for hint in [0, 1, CHUNK as u64, 1 << 30] {
            let mut out = Vec::new();
            decrypt(
                &k,
                &a[..],
                &mut out,
                &mut SplitHasher::new(&SHA256, hint),
                hint,
            )
            .unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn rejects_rename_role_swap_truncation_reorder_and_appends() {
        let key = [2u8; 32];
        let data: Vec<u8> = (0..3 * CHUNK + 100).map(|i| (i % 7) as u8).collect();
        let ct = enc(&key, "results", "x.bin", &data);
        assert!(matches!(
            dec(&key, "results", "y.bin", &ct),
            Err(CipherError::Decrypt)
        ));
        assert!(matches!(
            dec(&key, "train", "x.bin", &ct),
            Err(CipherError::Decrypt)
        ));
        assert!(matches!(
            dec(&[3u8; 32], "results", "x.bin", &ct),
            Err(CipherError::Decrypt)
        ));
        // Truncation at a chunk boundary: the new last chunk was sealed as non-final.
        let cut = MAGIC.len() + 2 * (CHUNK + TAG);
        assert!(matches!(
            dec(&key, "results", "x.bin", &ct[..cut]),
            Err(CipherError::Decrypt)
        ));
        // Truncation to the header alone.
        assert!(matches!(
            dec(&key, "results", "x.bin", &ct[..8]),
            Err(CipherError::Truncated)
        ));
        // Reordering two chunks.
        let mut swapped = ct.clone();
        let (a, b) = (MAGIC.len(), MAGIC.len() + CHUNK + TAG);
        let first = ct[a..b].to_vec();
        swapped[a..b].copy_from_slice(&ct[b..b + CHUNK + TAG]);
        swapped[b..b + CHUNK + TAG].copy_from_slice(&first);
        assert!(matches!(
            dec(&key, "results", "x.bin", &swapped),
            Err(CipherError::Decrypt)
        ));
        // Appending bytes after the final chunk.
        let mut longer = ct.clone();
        longer.extend_from_slice(&[0u8; 40]);
        assert!(dec(&key, "results", "x.bin", &longer).is_err());
        // One flipped bit anywhere.
        let mut flipped = ct.clone();
        flipped[MAGIC.len() + 5] ^= 1;
        assert!(matches!(
            dec(&key, "results", "x.bin", &flipped),
            Err(CipherError::Decrypt)
        ));
        let mut bad_magic = ct;
        bad_magic[0] ^= 1;
        assert!(matches!(
            dec(&key, "results", "x.bin", &bad_magic),
            Err(CipherError::Malformed(_))
        ));
    }
}
