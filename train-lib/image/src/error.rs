use std::path::PathBuf;

/// What went wrong reading, writing or moving a train image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The image reference could not be parsed.
    #[error("bad image reference `{reference}`: {reason}")]
    Reference {
        /// The text given.
        reference: String,
        /// Why.
        reason: String,
    },
    /// A registry refused or failed a request.
    #[error("registry {registry}: {what} failed: {reason}")]
    Registry {
        /// host[:port]
        registry: String,
        /// The operation.
        what: String,
        /// The registry's or transport's answer.
        reason: String,
    },
    /// Content did not match the digest it was fetched by.
    #[error("{what}: digest mismatch (expected {expected}, got {actual}): the registry served altered content")]
    Digest {
        /// Which blob or manifest.
        what: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The manifest or image configuration is not one this project handles.
    #[error("{reference}: unsupported image: {reason}")]
    Unsupported {
        /// The image.
        reference: String,
        /// Why.
        reason: String,
    },
    /// A layer holds something that could smuggle content past the train's hashes.
    #[error("layer {layer}: refused entry `{path}`: {reason}")]
    Smuggling {
        /// Layer digest.
        layer: String,
        /// The path in the layer.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// Something read from a registry is larger than its descriptor says or than a cap allows
    /// (a manifest or configuration that never ends, a layer that unpacks to more than the
    /// signed configuration or the station's limits allow).
    #[error("{what}: {detail}")]
    Limit {
        /// What was being read.
        what: String,
        /// Which cap it passed, and how to raise it when that is legitimate.
        detail: String,
    },
    /// The work was cancelled (a signal, or the caller's token) before it finished.
    #[error("cancelled before it finished")]
    Cancelled,
    /// The train image does not descend from its master image.
    #[error("lineage: {0}")]
    Lineage(String),
    /// Credentials could not be read.
    #[error("credentials for {registry}: {reason}")]
    Credentials {
        /// host[:port]
        registry: String,
        /// Why.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (in the message, so not also a `source`: chains would print it twice).
        cause: std::io::Error,
    },
}

impl ImageError {
    /// Whether the registry answered that the image (or a blob of it) is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ImageError::Registry { reason, .. }
            if reason.contains("MANIFEST_UNKNOWN")
                || reason.contains("NAME_UNKNOWN")
                || reason.contains("BLOB_UNKNOWN")
                // The status, not any "404" inside a digest in the body.
                || reason.starts_with("404")
                || reason.contains("404 Not Found"))
    }

    /// Whether the error means the image is refused (tampered with, hostile or outside the
    /// limits: exit 3), rather than that something could not be reached or used (exit 1). The
    /// one place this is decided, for `train verify` and `station run` alike.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            ImageError::Smuggling { .. }
                | ImageError::Lineage(_)
                | ImageError::Digest { .. }
                | ImageError::Limit { .. }
        )
    }
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |cause| ImageError::Io {
        path: path.to_path_buf(),
        cause,
    }
}
