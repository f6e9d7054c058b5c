//! The train directory on disk: walking it in Docker's archive order, refusing anything but
//! regular files and directories, and staging every change in a private directory that is
//! committed only when all checks have passed.

pub mod private;
pub mod rewrite;
mod staging;
mod walk;

pub use staging::{open_regular, OutputDir, Staging};
pub use walk::{check_rel_path, walk, Entry, EntryKind, UnsafePath};

/// Errors from reading or writing the train directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// An I/O operation on `path` failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause (in the message, so not also a `source`: chains would print it twice).
        cause: std::io::Error,
    },
    /// An entry is a symlink, device, FIFO or socket: it could smuggle content past the hashes.
    #[error("{path} is a {kind}; only regular files and directories are allowed")]
    NotRegular {
        /// The entry.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// An entry's name is not UTF-8 or contains characters the protocol cannot name.
    #[error("{0}: file names must be UTF-8 without control characters")]
    BadName(String),
}

/// Maps an I/O error to a [`TreeError`] naming `path`.
pub fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TreeError + '_ {
    move |cause| TreeError::Io {
        path: path.display().to_string(),
        cause,
    }
}
