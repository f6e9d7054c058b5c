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

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |cause| ImageError::Io {
        path: path.to_path_buf(),
        cause,
    }
}
