//! Standard output for the binaries' answers (lists, keys, statuses).
//!
//! `println!` panics once the reader has gone: `station queue | head -1` ended in
//! "failed printing to stdout: Broken pipe" and exit code 101. A reader that stops early
//! wants no more, so the rest is dropped and the command ends as it would have. Any other
//! write error (a full disk under `> file`) is said once on stderr and turns a successful
//! exit into 1 ([`failed`]): the answer is incomplete and a script must not take it. Tested
//! on the three binaries in `tests/tests/cli_output.rs` (libtest writes to the same stdout).

use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static GONE: AtomicBool = AtomicBool::new(false);
static FAILED: AtomicBool = AtomicBool::new(false);

/// Writes `args` (and a newline when `newline`) to standard output; see the module.
pub fn write(args: fmt::Arguments<'_>, newline: bool) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let done = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(e) = done {
        GONE.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe {
            FAILED.store(true, Ordering::Relaxed);
            eprintln!("error: writing to standard output: {e}; what follows was not written");
        }
    }
}

/// Whether a write to standard output failed for another reason than a reader that went away.
pub fn failed() -> bool {
    FAILED.load(Ordering::Relaxed)
}

/// `println!` that a closed pipe does not turn into a panic (see [`out`](crate::out)).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), true)
    };
}

/// `print!` that a closed pipe does not turn into a panic (see [`out`](crate::out)).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), false)
    };
}
