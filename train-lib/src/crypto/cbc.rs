//! PHT-meDIC file encryption: AES-256-CBC with PKCS#7 padding, written as `IV(16) ‖ ciphertext`,
//! no MAC. Kept only for legacy trains; integrity comes from the signed hashes, checked after
//! decryption.

use super::blocks::Blocks;
use super::hasher::{block_size, SplitHasher};
use super::{CipherError, IO_BUF};
use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, StreamingDecryptingKey, StreamingEncryptingKey,
    UnboundCipherKey, AES_256,
};
use std::io::{Read, Write};
use std::sync::Arc;

/// AES block and IV length.
pub const BLOCK: usize = 16;

/// Encrypts `input` to `output` under `key` and a fresh random IV. When `hasher` is given it is
/// fed the plaintext. Returns the plaintext length.
pub fn encrypt<R: Read, W: Write>(
    key: &[u8; 32],
    input: R,
    mut output: W,
    mut hasher: Option<&mut SplitHasher>,
    size_hint: u64,
) -> Result<u64, CipherError> {
    let iv: [u8; BLOCK] = crate::keys::random_bytes();
    let ukey = UnboundCipherKey::new(&AES_256, key).map_err(|_| CipherError::Decrypt)?;
    let mut enc =
        StreamingEncryptingKey::less_safe_cbc_pkcs7(ukey, EncryptionContext::Iv128(iv.into()))
            .map_err(|_| CipherError::Malformed("cipher init"))?;
    output.write_all(&iv)?;
    let mut plain_len = 0u64;
    let mut out = vec![0u8; IO_BUF + BLOCK];
    let mut blocks = Blocks::new(input, block_size(size_hint, 4096, IO_BUF));
    loop {
        let (buf, last) = blocks.next_block()?;
        let buf = Arc::new(buf);
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&buf);
        }
        plain_len += buf.len() as u64;
        let upd = enc
            .update(&buf, &mut out)
            .map_err(|_| CipherError::Malformed("update"))?;
        output.write_all(upd.written())?;
        blocks.pool().lend(&buf);
        if last {
            break;
        }
    }
    let (_, upd) = enc
        .finish(&mut out)
        .map_err(|_| CipherError::Malformed("finish"))?;
    output.write_all(upd.written())?;
    Ok(plain_len)
}

/// Decrypts `IV ‖ ciphertext` from `input` into `output`, feeding plaintext to `hasher`.
/// Returns the plaintext length. A bad key or altered bytes usually fail the padding check, but
/// CBC has no MAC: the caller must compare the plaintext hash.
pub fn decrypt<R: Read, W: Write>(
    key: &[u8; 32],
    mut input: R,
    mut output: W,
    hasher: &mut SplitHasher,
    size_hint: u64,
) -> Result<u64, CipherError> {
    let mut iv = [0u8; BLOCK];
    input
        .read_exact(&mut iv)
        .map_err(|_| CipherError::Malformed("shorter than its IV"))?;
    let ukey = UnboundCipherKey::new(&AES_256, key).map_err(|_| CipherError::Decrypt)?;
    let mut dec = StreamingDecryptingKey::cbc_pkcs7(ukey, DecryptionContext::Iv128(iv.into()))
        .map_err(|_| CipherError::Malformed("cipher init"))?;
    let mut blocks = Blocks::new(input, block_size(size_hint, 4096, IO_BUF));
    let mut total_ct = 0u64;
    let mut plain_len = 0u64;
    loop {
        let (buf, last) = blocks.next_block()?;
        total_ct += buf.len() as u64;
        let mut out = blocks.pool().take(IO_BUF + 2 * BLOCK);
        out.resize(buf.len() + 2 * BLOCK, 0);
        let mut n = dec
            .update(&buf, &mut out)
            .map_err(|_| CipherError::Decrypt)?
            .written()
            .len();
        blocks.pool().give(buf);
        if last {
            if total_ct == 0 || !total_ct.is_multiple_of(BLOCK as u64) {
                return Err(CipherError::Malformed(
                    "ciphertext is not a whole number of AES blocks",
                ));
            }
            let mut tail = [0u8; 2 * BLOCK];
            let upd = dec.finish(&mut tail).map_err(|_| CipherError::Decrypt)?;
            let t = upd.written().len();
            out[n..n + t].copy_from_slice(&tail[..t]);
            n += t;
            // `finish` consumed `dec`; the loop ends below.
            out.truncate(n);
            let out = Arc::new(out);
            hasher.update(&out);
            output.write_all(&out)?;
            return Ok(plain_len + n as u64);
        }
        out.truncate(n);
        let out = Arc::new(out);
        hasher.update(&out);
        output.write_all(&out)?;
        plain_len += n as u64;
        blocks.pool().lend(&out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::digest::SHA512;

    #[test]
    fn known_answer_from_the_reference() {
        // Vector from the PHT-meDIC protocol reference (key, IV, plaintext → IV ‖ ciphertext).
        let key: [u8; 32] =
            hex::decode("981dc2734ed1e484ff8a855d3015b1ba2c8fe55c69cfb47d7808b19b8d06692c")
                .unwrap()
                .try_into()
                .unwrap();
        let ct = hex::decode(
            "f3103e7266558e9a053a0442637a11bcbc42aaa78281f85923bc1b3f7e28ae2dd58935edc99fc225177d9dff10503615",
        )
        .unwrap();
        let mut out = Vec::new();
        let mut h = SplitHasher::new(&SHA512, 0);
        decrypt(&key, &ct[..], &mut out, &mut h, 48).unwrap();
        assert_eq!(out, b"longer test string over 32");
    }

    #[test]
    fn round_trip_and_rejections() {
        let key = [7u8; 32];
        for len in [0usize, 1, 15, 16, 17, IO_BUF - 1, IO_BUF, IO_BUF + 5] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut ct = Vec::new();
            encrypt(&key, &data[..], &mut ct, None, len as u64).unwrap();
            assert_eq!(ct.len(), BLOCK + (len / BLOCK + 1) * BLOCK);
            let mut out = Vec::new();
            decrypt(
                &key,
                &ct[..],
                &mut out,
                &mut SplitHasher::new(&SHA512, 0),
                ct.len() as u64,
            )
            .unwrap();
            assert_eq!(out, data);
        }
        let mut ct = Vec::new();
        encrypt(&key, &b"hello"[..], &mut ct, None, 5).unwrap();
        let r = decrypt(
            &key,
            &ct[..ct.len() - 1],
            &mut Vec::new(),
            &mut SplitHasher::new(&SHA512, 0),
            32,
        );
        assert!(matches!(r, Err(CipherError::Malformed(_))), "{r:?}");
        let r = decrypt(
            &key,
            &ct[..10],
            &mut Vec::new(),
            &mut SplitHasher::new(&SHA512, 0),
            32,
        );
        assert!(matches!(r, Err(CipherError::Malformed(_))), "{r:?}");
        // No MAC: a wrong key fails the padding check or yields other bytes (1 in ~256 pads
        // correctly), never the plaintext.
        let mut out = Vec::new();
        let r = decrypt(
            &[8u8; 32],
            &ct[..],
            &mut out,
            &mut SplitHasher::new(&SHA512, 0),
            32,
        );
        assert!(
            matches!(r, Err(CipherError::Decrypt)) || out != b"hello",
            "{r:?}"
        );
    }
}
