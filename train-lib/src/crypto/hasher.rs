//! A digest computed on a helper thread, so that hashing and the cipher each get a core.
//!
//! SHA-512 over whole trains (the legacy protocol's hashes) is computed with OpenSSL's code,
//! which keeps an AVX2 path that aws-lc dropped: 1.1–1.4× aws-lc's speed on this project's
//! machine, and the legacy steps are bound by exactly this hash. Every other digest is aws-lc's.
//!
//! Two ways to feed it: [`SplitHasher::update`] shares a buffer the caller keeps using (the
//! decrypting side: hash the plaintext while writing it); [`SplitHasher::push`] hands a buffer
//! over and gets it back once hashed (the encrypting side: hash first, then seal in place, so the
//! plaintext is never copied).

use aws_lc_rs::digest::{Algorithm, Context, SHA512};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Below this a file is hashed inline: a thread costs more than it saves.
const THREAD_MIN: u64 = 4 << 20;
/// Buffers handed over before the first comes back.
const DEPTH: usize = 2;

/// A finished digest.
#[derive(Clone, Copy)]
pub struct Hash {
    bytes: [u8; 64],
    len: usize,
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// One digest in progress, from whichever library computes that algorithm fastest.
enum Ctx {
    AwsLc(Context),
    OpenSsl(openssl::sha::Sha512),
}

impl Ctx {
    fn new(alg: &'static Algorithm) -> Self {
        if alg == &SHA512 {
            Ctx::OpenSsl(openssl::sha::Sha512::new())
        } else {
            Ctx::AwsLc(Context::new(alg))
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Ctx::AwsLc(c) => c.update(data),
            Ctx::OpenSsl(c) => c.update(data),
        }
    }

    fn finish(self) -> Hash {
        let mut bytes = [0u8; 64];
        let len = match self {
            Ctx::AwsLc(c) => {
                let d = c.finish();
                bytes[..d.as_ref().len()].copy_from_slice(d.as_ref());
                d.as_ref().len()
            }
            Ctx::OpenSsl(c) => {
                bytes = c.finish();
                64
            }
        };
        Hash { bytes, len }
    }
}

enum Msg {
    Shared(Arc<Vec<u8>>),
    Owned(Vec<u8>),
}

/// Feeds buffers to a digest, on a helper thread for large inputs.
pub struct SplitHasher(Mode);

enum Mode {
    Inline(Ctx),
    Thread {
        tx: SyncSender<Msg>,
        back: Receiver<Vec<u8>>,
        in_flight: usize,
        handle: JoinHandle<Hash>,
    },
}

impl SplitHasher {
    /// Starts a digest for an input of about `size_hint` bytes.
    pub fn new(alg: &'static Algorithm, size_hint: u64) -> Self {
        if size_hint < THREAD_MIN {
            return SplitHasher(Mode::Inline(Ctx::new(alg)));
        }
        // Bounded: memory stays at a few buffers whatever the input size.
        let (tx, rx) = sync_channel::<Msg>(3);
        let (back_tx, back) = channel();
        let handle = std::thread::spawn(move || {
            let mut ctx = Ctx::new(alg);
            for msg in rx {
                match msg {
                    Msg::Shared(b) => ctx.update(&b),
                    Msg::Owned(b) => {
                        ctx.update(&b);
                        let _ = back_tx.send(b);
                    }
                }
            }
            ctx.finish()
        });
        SplitHasher(Mode::Thread {
            tx,
            back,
            in_flight: 0,
            handle,
        })
    }

    /// Hashes `buf`, which the caller goes on reading.
    pub fn update(&mut self, buf: &Arc<Vec<u8>>) {
        match &mut self.0 {
            Mode::Inline(ctx) => ctx.update(buf),
            // The helper only ends when `tx` drops, so sending cannot fail.
            Mode::Thread { tx, .. } => drop(tx.send(Msg::Shared(Arc::clone(buf)))),
        }
    }

    /// Hands `buf` over for hashing; returns the oldest buffer already hashed, if any is due.
    /// Buffers come back in the order they were pushed.
    pub fn push(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        match &mut self.0 {
            Mode::Inline(ctx) => {
                ctx.update(&buf);
                Some(buf)
            }
            Mode::Thread {
                tx,
                back,
                in_flight,
                ..
            } => {
                drop(tx.send(Msg::Owned(buf)));
                *in_flight += 1;
                if *in_flight > DEPTH {
                    *in_flight -= 1;
                    Some(back.recv().expect("hash thread alive"))
                } else {
                    None
                }
            }
        }
    }

    /// Every buffer still being hashed, in order, once hashed.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        match &mut self.0 {
            Mode::Inline(_) => Vec::new(),
            Mode::Thread {
                back, in_flight, ..
            } => {
                let n = std::mem::take(in_flight);
                (0..n)
                    .map(|_| back.recv().expect("hash thread alive"))
                    .collect()
            }
        }
    }

    /// The digest of everything fed in.
    pub fn finish(self) -> Hash {
        match self.0 {
            Mode::Inline(ctx) => ctx.finish(),
            Mode::Thread { tx, handle, .. } => {
                drop(tx);
                handle.join().expect("hash thread panicked")
            }
        }
    }
}

/// A block size for a stream of about `size_hint` bytes: whole `unit`s, at most `max` bytes, so
/// that small files do not touch large buffers.
pub fn block_size(size_hint: u64, unit: usize, max: usize) -> usize {
    let units = usize::try_from(size_hint.div_ceil(unit as u64)).unwrap_or(usize::MAX);
    units.clamp(1, (max / unit).max(1)) * unit
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::digest::{digest, SHA256};
    use std::sync::Arc;

    #[test]
    fn every_path_gives_the_reference_digest() {
        for alg in [&SHA256, &SHA512] {
            // Inline and on the helper thread, shared and handed-over buffers.
            for (len, hint) in [(0usize, 0u64), (1000, 0), (5 << 20, 5 << 20)] {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
                let want = digest(alg, &data);
                let mut shared = SplitHasher::new(alg, hint);
                for c in data.chunks(1 << 20) {
                    shared.update(&Arc::new(c.to_vec()));
                }
                assert_eq!(shared.finish().as_ref(), want.as_ref(), "shared {len}");
                let mut owned = SplitHasher::new(alg, hint);
                for c in data.chunks(1 << 20) {
                    let _ = owned.push(c.to_vec());
                }
                owned.drain();
                assert_eq!(owned.finish().as_ref(), want.as_ref(), "owned {len}");
            }
        }
    }
}
