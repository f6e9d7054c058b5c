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

use super::hasher::SplitHasher;
use super::{CipherError, IO_BUF};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;

/// Magic at the start of every native encrypted file.
pub const MAGIC: &[u8; 8] = b"PHTNSTR1";
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// GCM tag length.
pub const TAG: usize = 16;

/// Length of the encrypted form of a `plain_len`-byte file.
pub fn ciphertext_len(plain_len: u64) -> u64 {
    let chunks = plain_len.div_ceil(CHUNK as u64).max(1);
    MAGIC.len() as u64 + plain_len + chunks * TAG as u64
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

fn nonce(counter: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// Encrypts `input` into `output`, feeding the plaintext to `hasher`. Returns the plaintext length.
pub fn encrypt<R: Read, W: Write>(
    key: &LessSafeKey,
    input: R,
    mut output: W,
    hasher: &mut SplitHasher,
) -> Result<u64, CipherError> {
    output.write_all(MAGIC)?;
    let mut input = BufReader::with_capacity(IO_BUF, input);
    let mut counter = 0u64;
    let mut total = 0u64;
    let mut out = Vec::with_capacity(IO_BUF + (IO_BUF / CHUNK + 1) * TAG);
    loop {
        // IO_BUF is a whole number of chunks, so only the batch that reaches EOF is ragged.
        let buf = Arc::new(super::cbc::read_up_to(&mut input, IO_BUF)?);
        let at_eof = input.fill_buf()?.is_empty();
        hasher.update(&buf);
        total += buf.len() as u64;
        let chunks: Vec<&[u8]> = if buf.is_empty() {
            vec![&[]] // an empty file is one empty, final chunk
        } else {
            buf.chunks(CHUNK).collect()
        };
        let n = chunks.len();
        out.clear();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let start = out.len();
            out.extend_from_slice(chunk);
            let tag = key
                .seal_in_place_separate_tag(
                    nonce(counter, at_eof && i + 1 == n),
                    Aad::empty(),
                    &mut out[start..],
                )
                .map_err(|_| CipherError::Malformed("seal"))?;
            out.extend_from_slice(tag.as_ref());
            counter += 1;
        }
        output.write_all(&out)?;
        if at_eof {
            return Ok(total);
        }
    }
}

/// Decrypts a native encrypted file, feeding plaintext to `hasher` and writing it to `output`.
/// Returns the plaintext length. Every chunk is authenticated before its plaintext is written.
pub fn decrypt<R: Read, W: Write>(
    key: &LessSafeKey,
    input: R,
    mut output: W,
    hasher: &mut SplitHasher,
) -> Result<u64, CipherError> {
    let mut input = BufReader::with_capacity(IO_BUF + TAG * 32, input);
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .map_err(|_| CipherError::Malformed("shorter than its header"))?;
    if &magic != MAGIC {
        return Err(CipherError::Malformed(
            "not a native encrypted file (bad magic)",
        ));
    }
    let mut counter = 0u64;
    let mut total = 0u64;
    loop {
        // Whole chunks are gathered into one buffer so the hasher gets large pieces.
        let mut batch = Vec::with_capacity(IO_BUF);
        let mut finished = false;
        while batch.len() < IO_BUF && !finished {
            let mut chunk = super::cbc::read_up_to(&mut input, CHUNK + TAG)?;
            finished = input.fill_buf()?.is_empty();
            if chunk.is_empty() {
                return Err(CipherError::Truncated);
            }
            let plain = key
                .open_in_place(nonce(counter, finished), Aad::empty(), &mut chunk)
                .map_err(|_| CipherError::Decrypt)?;
            if plain.is_empty() && counter != 0 {
                return Err(CipherError::Malformed(
                    "empty final chunk in a non-empty file",
                ));
            }
            batch.extend_from_slice(plain);
            counter += 1;
        }
        let batch = Arc::new(batch);
        hasher.update(&batch);
        output.write_all(&batch)?;
        total += batch.len() as u64;
        if finished {
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
        encrypt(&k, data, &mut out, &mut SplitHasher::new(&SHA256, 0)).unwrap();
        out
    }

    fn dec(key: &[u8; 32], role: &str, path: &str, ct: &[u8]) -> Result<Vec<u8>, CipherError> {
        let mut out = Vec::new();
        let k = file_key(key, role, path);
        decrypt(&k, ct, &mut out, &mut SplitHasher::new(&SHA256, 0))?;
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
            assert_eq!(ct.len() as u64, ciphertext_len(len as u64), "len {len}");
            assert_eq!(
                dec(&key, "results", "a/b.csv", &ct).unwrap(),
                data,
                "len {len}"
            );
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
