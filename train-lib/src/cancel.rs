//! Cooperative cancellation for the one piece of work that must not simply be killed: pre-run
//! rewriting a train directory's files in place. Killed half-way, it would leave the
//! directory partly decrypted; asked to stop, it seals every touched file back first.
//!
//! A binary's signal handler calls [`request`]; when it returns `true` no such work is running
//! and the process may exit at once. Otherwise the running step notices between blocks, undoes
//! its writes and returns [`crate::ProtocolError::Cancelled`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static CRITICAL: AtomicUsize = AtomicUsize::new(0);

/// Asks running in-place work to stop and undo. Returns `true` when none is running, so the
/// caller may exit at once: work that starts afterwards sees the request before writing.
pub fn request() -> bool {
    REQUESTED.store(true, SeqCst);
    CRITICAL.load(SeqCst) == 0
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(SeqCst)
}

/// Marks work that must be undone rather than killed, for as long as it is held. Entering first
/// and checking [`requested`] after closes the race with [`request`]: either the requester sees
/// this guard, or this work sees the request before its first write.
pub(crate) struct Critical(());

impl Critical {
    pub(crate) fn enter() -> Self {
        CRITICAL.fetch_add(1, SeqCst);
        Critical(())
    }
}

impl Drop for Critical {
    fn drop(&mut self) {
        CRITICAL.fetch_sub(1, SeqCst);
    }
}
