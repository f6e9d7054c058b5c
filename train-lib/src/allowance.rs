//! What a train's image layers may unpack to, decided from its configuration before anything
//! else is unpacked (a leaf type: the native format computes it, the station and the image
//! reader apply it).

/// What a train's image layers may unpack to: bytes of file content and entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Bytes of file content.
    pub bytes: u64,
    /// Files and directories.
    pub entries: u64,
}
