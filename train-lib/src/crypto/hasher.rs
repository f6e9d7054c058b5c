//! A digest computed on a helper thread, fed the same buffers the caller encrypts or writes,
//! so that hashing and the cipher each get a core.

use aws_lc_rs::digest::{Algorithm, Context, Digest};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Below this a file is hashed inline: a thread costs more than it saves.
const THREAD_MIN: u64 = 4 << 20;

/// Feeds buffers to a digest, on a helper thread for large inputs.
pub enum SplitHasher {
    /// Small input: hashed on the caller's thread.
    Inline(Context),
    /// Large input: hashed on a helper thread; at most a few buffers are in flight.
    Thread {
        /// Sends buffers to the helper.
        tx: SyncSender<Arc<Vec<u8>>>,
        /// The helper, returning the digest.
        handle: JoinHandle<Digest>,
    },
}

impl SplitHasher {
    /// Starts a digest for an input of about `size_hint` bytes.
    pub fn new(alg: &'static Algorithm, size_hint: u64) -> Self {
        if size_hint < THREAD_MIN {
            return SplitHasher::Inline(Context::new(alg));
        }
        // Bounded: memory stays at a few buffers whatever the file size.
        let (tx, rx) = sync_channel::<Arc<Vec<u8>>>(3);
        let handle = std::thread::spawn(move || {
            let mut ctx = Context::new(alg);
            for buf in rx {
                ctx.update(&buf);
            }
            ctx.finish()
        });
        SplitHasher::Thread { tx, handle }
    }

    /// Hashes `buf` (on the helper, when there is one).
    pub fn update(&mut self, buf: &Arc<Vec<u8>>) {
        match self {
            SplitHasher::Inline(ctx) => ctx.update(buf),
            SplitHasher::Thread { tx, .. } => {
                // The helper only ends when `tx` drops, so sending cannot fail.
                let _ = tx.send(Arc::clone(buf));
            }
        }
    }

    /// The digest of everything fed in.
    pub fn finish(self) -> Digest {
        match self {
            SplitHasher::Inline(ctx) => ctx.finish(),
            SplitHasher::Thread { tx, handle } => {
                drop(tx);
                handle.join().expect("hash thread panicked")
            }
        }
    }
}
