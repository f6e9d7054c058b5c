//! Symmetric primitives over streams: legacy AES-256-CBC, the native AES-256-GCM STREAM
//! construction, and hashing that runs on a second core beside encryption.

pub mod blocks;
pub mod cbc;
pub mod cbc_in_place;
pub mod hasher;
pub mod stream;
pub mod stream_in_place;

/// Size of the buffers read from and written to files. Large enough that syscalls and channel
/// hand-offs are noise next to the cipher and hash; small enough that memory stays flat.
pub const IO_BUF: usize = 1 << 20;

/// Errors from symmetric encryption and decryption.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CipherError {
    /// Reading or writing the stream failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The ciphertext is too short or not a multiple of the block size.
    #[error("ciphertext is malformed: {0}")]
    Malformed(&'static str),
    /// Authentication or padding failed: wrong key, or the bytes were changed.
    #[error("decryption failed (wrong key, or the file was altered)")]
    Decrypt,
    /// The stream ended before its final chunk: it was truncated.
    #[error("ciphertext is truncated (its final chunk is missing)")]
    Truncated,
    /// A stop was requested ([`crate::cancel`]) before the work was done.
    #[error("stopped on request")]
    Cancelled,
}
