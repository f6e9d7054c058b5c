//! Decrypting a legacy file (`IV ‖ AES-256-CBC ciphertext`, PKCS#7) over itself, and undoing it.
//!
//! Plaintext byte *k* lies 16 bytes before ciphertext byte *k*, so a forward pass only overwrites
//! bytes it has already read. Undoing is encryption again under the same key and IV, which gives
//! back exactly the ciphertext whatever it held: with Pⱼ = D(Cⱼ) ⊕ Cⱼ₋₁, re-encryption computes
//! E(Pⱼ ⊕ Cⱼ₋₁) = Cⱼ block by block. CBC has no MAC, so a changed file is usually caught only by
//! the hash after the whole train was decrypted; this is what lets that rejection leave every
//! file as it was.

use super::blocks::Pool;
use super::cbc::BLOCK;
use super::hasher::SplitHasher;
use super::{CipherError, IO_BUF};
use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, StreamingDecryptingKey, StreamingEncryptingKey,
    UnboundCipherKey, AES_256,
};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// What [`decrypt`] changed in one file, for [`restore`].
#[derive(Default)]
pub struct Undo {
    iv: [u8; BLOCK],
    len: u64,
    /// Raw plaintext bytes (whole blocks, padding not yet removed) written from offset 0.
    written: u64,
    /// Set once the file was cut to its unpadded plaintext.
    unpadded: Option<u64>,
    /// Plaintext whose write failed part-way: written again first when undoing.
    pending: Option<(u64, Vec<u8>)>,
}

fn write_or_keep(file: &File, data: &[u8], at: u64, undo: &mut Undo) -> io::Result<()> {
    file.write_all_at(data, at).inspect_err(|_| {
        undo.pending = Some((at, data.to_vec()));
    })
}

/// Decrypts `file` over itself, feeding the plaintext to `hasher`; returns its length. `undo`
/// records every write as it happens, so that any failure here or later can be undone.
pub fn decrypt(
    key: &[u8; 32],
    file: &File,
    hasher: &mut SplitHasher,
    undo: &mut Undo,
) -> Result<u64, CipherError> {
    let len = file.metadata()?.len();
    let mut iv = [0u8; BLOCK];
    if len < BLOCK as u64 {
        return Err(CipherError::Malformed("shorter than its IV"));
    }
    file.read_exact_at(&mut iv, 0)?;
    let ct_len = len - BLOCK as u64;
    if ct_len == 0 || !ct_len.is_multiple_of(BLOCK as u64) {
        return Err(CipherError::Malformed(
            "ciphertext is not a whole number of AES blocks",
        ));
    }
    *undo = Undo {
        iv,
        len,
        ..Undo::default()
    };
    let ukey = UnboundCipherKey::new(&AES_256, key).map_err(|_| CipherError::Decrypt)?;
    let mut dec = StreamingDecryptingKey::cbc_pkcs7(ukey, DecryptionContext::Iv128(iv.into()))
        .map_err(|_| CipherError::Malformed("cipher init"))?;
    let mut pool = Pool::default();
    let mut buf = vec![0u8; IO_BUF];
    let mut consumed = 0u64;
    while consumed < ct_len {
        if crate::cancel::requested() {
            return Err(CipherError::Cancelled);
        }
        let n = (ct_len - consumed).min(IO_BUF as u64) as usize;
        file.read_exact_at(&mut buf[..n], BLOCK as u64 + consumed)?;
        consumed += n as u64;
        let mut out = pool.take(n + 2 * BLOCK);
        out.resize(n + 2 * BLOCK, 0);
        let k = dec
            .update(&buf[..n], &mut out)
            .map_err(|_| CipherError::Decrypt)?
            .written()
            .len();
        out.truncate(k);
        let out = Arc::new(out);
        hasher.update(&out);
        // Counted before the write: a failed write is kept in `pending` and redone on undo.
        let at = undo.written;
        undo.written += k as u64;
        write_or_keep(file, &out, at, undo)?;
        pool.lend(&out);
    }
    let mut tail = [0u8; 2 * BLOCK];
    let t = dec
        .finish(&mut tail)
        .map_err(|_| CipherError::Decrypt)?
        .written()
        .len();
    let tail = Arc::new(tail[..t].to_vec());
    hasher.update(&tail);
    let at = undo.written;
    write_or_keep(file, &tail, at, undo)?;
    let plain = at + t as u64;
    file.set_len(plain)?;
    undo.unpadded = Some(plain);
    Ok(plain)
}

/// Undoes [`decrypt`]: the file is again exactly the bytes it held before.
pub fn restore(key: &[u8; 32], file: &File, undo: &Undo) -> io::Result<()> {
    if undo.len == 0 {
        // Refused before anything was written.
        return Ok(());
    }
    if let Some((at, data)) = &undo.pending {
        file.write_all_at(data, *at)?;
    }
    let plain_len = undo.unpadded.unwrap_or(undo.written);
    let ukey = UnboundCipherKey::new(&AES_256, key).map_err(|_| io::Error::other("AES key"))?;
    let mut enc =
        StreamingEncryptingKey::less_safe_cbc_pkcs7(ukey, EncryptionContext::Iv128(undo.iv.into()))
            .map_err(|_| io::Error::other("cipher init"))?;
    let read = |at: u64| -> io::Result<Vec<u8>> {
        let mut v = vec![0u8; (plain_len - at).min(IO_BUF as u64) as usize];
        file.read_exact_at(&mut v, at)?;
        Ok(v)
    };
    let mut out = vec![0u8; IO_BUF + 2 * BLOCK];
    let mut pos = 0u64;
    let mut ct_at = BLOCK as u64;
    let mut cur = read(0)?;
    while !cur.is_empty() {
        // The next piece is read before this one's ciphertext, 16 bytes further on, lands on it.
        let next_at = pos + cur.len() as u64;
        let next = read(next_at)?;
        let upd = enc
            .update(&cur, &mut out)
            .map_err(|_| io::Error::other("CBC encrypt"))?;
        let c = upd.written();
        file.write_all_at(c, ct_at)?;
        ct_at += c.len() as u64;
        pos = next_at;
        cur = next;
    }
    if undo.unpadded.is_some() {
        let (_, c) = enc
            .finish(&mut out)
            .map_err(|_| io::Error::other("CBC encrypt"))?;
        file.write_all_at(c.written(), ct_at)?;
    }
    // Last: the IV lies over the first plaintext block, which had to be read first.
    file.write_all_at(&undo.iv, 0)?;
    file.set_len(undo.len)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::cbc;
    use aws_lc_rs::digest::{digest, SHA512};
    use std::io::{Read, Seek, SeekFrom, Write};

    const KEY: [u8; 32] = [7u8; 32];

    fn file_with(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn contents(mut f: &File) -> Vec<u8> {
        let mut v = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    }

    fn sealed(data: &[u8]) -> Vec<u8> {
        let mut ct = Vec::new();
        cbc::encrypt(&KEY, data, &mut ct, None, data.len() as u64).unwrap();
        ct
    }

    #[test]
    fn decrypts_over_itself_and_restores_exactly() {
        for len in [
            0,
            1,
            15,
            16,
            17,
            IO_BUF - 1,
            IO_BUF,
            IO_BUF + 16,
            2 * IO_BUF + 33,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 29 % 253) as u8).collect();
            let ct = sealed(&data);
            let f = file_with(&ct);
            let mut undo = Undo::default();
            let mut h = SplitHasher::new(&SHA512, len as u64);
            assert_eq!(decrypt(&KEY, &f, &mut h, &mut undo).unwrap(), len as u64);
            assert_eq!(contents(&f), data, "len {len}");
            assert_eq!(h.finish().as_ref(), digest(&SHA512, &data).as_ref());
            restore(&KEY, &f, &undo).unwrap();
            assert_eq!(contents(&f), ct, "len {len}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Whatever the file holds (one byte changed anywhere, or cut short), a refused or
        /// completed pass followed by `restore` gives back exactly the bytes that were there.
        #[test]
        fn restore_always_gives_back_the_original_bytes(
            len in 0usize..(2 * IO_BUF + 100),
            flip in proptest::option::of((0usize..usize::MAX, 1u8..=255)),
            cut in proptest::option::of(0usize..usize::MAX),
        ) {
            let data: Vec<u8> = (0..len).map(|i| (i * 17 % 251) as u8).collect();
            let mut ct = sealed(&data);
            if let Some((at, x)) = flip {
                let at = at % ct.len();
                ct[at] ^= x;
            }
            if let Some(c) = cut {
                ct.truncate(c % (ct.len() + 1));
            }
            let f = file_with(&ct);
            let mut undo = Undo::default();
            let r = decrypt(&KEY, &f, &mut SplitHasher::new(&SHA512, 0), &mut undo);
            if flip.is_none() && cut.is_none() {
                proptest::prop_assert!(r.is_ok());
            }
            restore(&KEY, &f, &undo).unwrap();
            proptest::prop_assert_eq!(contents(&f), ct);
        }
    }

    #[test]
    fn bad_padding_is_refused_and_undone() {
        let data = vec![3u8; 3 * IO_BUF / 2];
        let mut ct = sealed(&data);
        let n = ct.len();
        // The second-to-last block steers the last block's plaintext, padding included.
        ct[n - 17] ^= 0x55;
        let f = file_with(&ct);
        let mut undo = Undo::default();
        let err = decrypt(&KEY, &f, &mut SplitHasher::new(&SHA512, 0), &mut undo).unwrap_err();
        assert!(matches!(err, CipherError::Decrypt), "{err}");
        restore(&KEY, &f, &undo).unwrap();
        assert_eq!(contents(&f), ct);
    }
}
