//! The protocol's errors. A [`Rejection`] names the check a train failed; everything else is an
//! environment problem (I/O, a key that will not load).

use crate::crypto::CipherError;
use crate::keys::{KeyError, TrustError};
use crate::tree::TreeError;

/// A check the train failed. Each variant is one check; its message names the file or stop.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// `train_config.json` does not parse or has an invalid value.
    #[error("train_config.json is invalid: {0}")]
    ConfigSchema(String),
    /// A native configuration is not in its canonical form (bytes were added or changed).
    #[error("train_config.json is not in canonical form: its bytes were changed after signing")]
    NonCanonicalConfig,
    /// The station running the protocol is not on the route.
    #[error("station `{0}` is not on this train's route")]
    StationNotInRoute(String),
    /// The same station id appears twice on the route.
    #[error("station `{0}` appears more than once on the route")]
    DuplicateStation(String),
    /// An id (train, creator or station) is outside the id grammar of `docs/protocol.md`.
    #[error("{field} {id} is not a valid id: {reason} (ids are 1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit, without `..`)")]
    BadId {
        /// Where the id is.
        field: String,
        /// The id, quoted and escaped.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two route stations share one public key: whoever holds it could act as both.
    #[error("stations `{first}` and `{second}` have the same public key; each station on a route needs its own")]
    SharedStationKey {
        /// The first station with the key.
        first: String,
        /// The later one.
        second: String,
    },
    /// The route's indices are not 0, 1, 2, … in order.
    #[error("route indices are not 0..n in order")]
    RouteIndices,
    /// The station's private key is not the key the route names for it.
    #[error("the private key given does not match the route's public key for station `{0}`")]
    WrongStationKey(String),
    /// The private key given is not the creator's.
    #[error("the private key given is not the creator's key named in the configuration")]
    WrongCreatorKey,
    /// It is not this station's turn: an earlier stop has not run, or this one already has.
    #[error("not the turn of station `{station}` (stop {index}): {detail}")]
    NotYourTurn {
        /// The station.
        station: String,
        /// Its stop index.
        index: usize,
        /// What the route's state shows.
        detail: String,
    },
    /// Every stop has run: the train is finished and may not run again.
    #[error("the train has finished its route; it may not run again")]
    TrainFinished,
    /// A stop's signature is missing.
    #[error("stop {index} (station `{station}`) has no signature")]
    MissingStopSignature {
        /// Stop index.
        index: usize,
        /// Station id.
        station: String,
    },
    /// A stop's recorded chain digest is not what it recomputes to.
    #[error("stop {index} (station `{station}`): chain digest does not recompute")]
    ChainDigest {
        /// Stop index.
        index: usize,
        /// Station id.
        station: String,
    },
    /// A stop's signature does not verify with the station's key.
    #[error("stop {index} (station `{station}`): signature does not verify")]
    ChainSignature {
        /// Stop index.
        index: usize,
        /// Station id.
        station: String,
    },
    /// The key wraps are not the ones the last signer wrote.
    #[error("the wrapped file keys were changed after the last signature (stop or dispatch)")]
    KeyWraps,
    /// No wrapped file key for this key.
    #[error("no wrapped file key for {0}")]
    MissingKeyWrap(String),
    /// The wrapped key does not unwrap with this private key.
    #[error("the wrapped file key for {0} does not unwrap with the key given")]
    KeyUnwrap(String),
    /// The creator's signature does not verify.
    #[error("the creator's signature does not verify")]
    CreatorSignature,
    /// The builder's signature does not verify, or is required and missing.
    #[error("the builder's signature {0}")]
    BuilderSignature(&'static str),
    /// The creator's dispatch signature over the initial key wraps does not verify.
    #[error("the creator's dispatch signature (over the initial key wraps) does not verify")]
    DispatchSignature,
    /// A key is not pinned in the station's trust file.
    #[error("the {role} key for `{id}` ({fingerprint}) is not pinned in the trust file")]
    UntrustedKey {
        /// Creator, builder or station.
        role: String,
        /// The id it claims.
        id: String,
        /// Its fingerprint.
        fingerprint: String,
    },
    /// The hash over the train files is not the signed one.
    #[error("train files do not match the signed hash")]
    TrainHash,
    /// A train file's content does not match the signed manifest.
    #[error("train file `{0}` does not match the signed manifest")]
    TrainFile(String),
    /// The train files changed while the train ran (or the directory was never pre-run).
    #[error("train files changed since pre-run ({0}); was the directory pre-run, and did the train write to pht_train?")]
    TrainModified(String),
    /// The results do not match the signed result hash.
    #[error("results do not match the signed result hash")]
    ResultHash,
    /// A results file does not match the signed manifest.
    #[error("results file `{0}` does not match the signed manifest")]
    ResultFile(String),
    /// The result signature does not verify with the previous station's key.
    #[error("the result signature of station `{0}` does not verify")]
    ResultSignature(String),
    /// A stop that has not run yet carries results.
    #[error("the first stop must start with no results, but {0}")]
    UnexpectedResults(String),
    /// A file is present that the signed lists do not name.
    #[error("`{0}` is not listed in the signed configuration")]
    UnlistedFile(String),
    /// A file the signed lists name is missing.
    #[error("`{0}` is listed in the signed configuration but missing")]
    MissingFile(String),
    /// A file did not decrypt: wrong key, altered, truncated, renamed or swapped.
    #[error("`{path}` does not decrypt: {cause}")]
    Decrypt {
        /// The file.
        path: String,
        /// The cipher's error.
        cause: String,
    },
    /// A path in the configuration could escape the train directory.
    #[error("unsafe path `{0}` in the configuration")]
    UnsafePath(String),
    /// The directory holds something other than regular files and directories, or an unknown entry.
    #[error("{0}")]
    BadEntry(String),
    /// The directory is in a state this operation cannot work on.
    #[error("{0}")]
    WrongState(String),
    /// A pre-run that decrypted the directory over itself was killed half-way: its files are
    /// partly decrypted and it cannot be used again.
    #[error("an earlier pre-run of this directory was interrupted while decrypting its files in place (marker `{0}`): the files are partly decrypted and the directory cannot be used; fetch the train again (its image in the registry is unchanged) and delete this directory")]
    Interrupted(String),
}

/// Errors from the pre-run, post-run, create, verify and results operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The train failed a check and was left unchanged.
    #[error("rejected: {0}")]
    Rejected(Rejection),
    /// A stop was requested (a signal): the step undid its writes and the directory is as it was.
    #[error("stopped on request; the directory was left as it was")]
    Cancelled,
    /// A key could not be loaded or used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The trust file could not be used.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// Reading or writing the train directory failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The caller's input is unusable (a missing entrypoint, a duplicate station, …).
    #[error("{0}")]
    Input(String),
    /// A file could not be encrypted (decryption failures are rejections).
    #[error("encrypting `{path}`: {source}")]
    Encrypt {
        /// The file.
        path: String,
        /// The cause.
        source: CipherError,
    },
}

// By hand rather than `#[from]`, which would also make the rejection the error's source and
// print it twice in a chain.
impl From<crate::tree::UnsafePath> for Rejection {
    fn from(e: crate::tree::UnsafePath) -> Self {
        Rejection::UnsafePath(e.0)
    }
}

impl From<Rejection> for ProtocolError {
    fn from(r: Rejection) -> Self {
        ProtocolError::Rejected(r)
    }
}

impl ProtocolError {
    /// The rejection, when the train failed a check.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            ProtocolError::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

/// Shorthand for the protocol's results.
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;

pub(crate) fn decrypt_error(path: &str, e: CipherError) -> ProtocolError {
    match e {
        CipherError::Io(io) => ProtocolError::Tree(TreeError::Io {
            path: path.to_string(),
            cause: io,
        }),
        CipherError::Cancelled => ProtocolError::Cancelled,
        other => Rejection::Decrypt {
            path: path.to_string(),
            cause: other.to_string(),
        }
        .into(),
    }
}
