//! The engines' one error type: what failed, in words, with no engine's client types in it
//! (the pipeline and the watcher decide on [`EngineError::is_unreachable`] and the kind alone).

use crate::disk::DiskError;

/// What went wrong running a train on an engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The engine could not be reached (a stopped daemon, an API server down or restarting).
    #[error("cannot reach the {engine}: {detail}; {hint}")]
    Unreachable {
        /// Which engine ("Docker engine", "Kubernetes API server").
        engine: &'static str,
        /// The client's error.
        detail: String,
        /// What to do.
        hint: &'static str,
    },
    /// A call to the engine failed.
    #[error("{what}: {detail}")]
    Call {
        /// What was asked.
        what: String,
        /// The engine's answer.
        detail: String,
    },
    /// The engine refused the station's request for lack of rights (RBAC): a deployment's
    /// problem, not the train's.
    #[error("{what}: the station is not allowed to ({detail}); apply the rights `station k8s manifests` prints")]
    Forbidden {
        /// What was asked.
        what: String,
        /// The engine's answer.
        detail: String,
    },
    /// A local file could not be written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The train's results could not be taken out (none, too large, unreadable): the train
    /// failed, not the station.
    #[error("{0}")]
    Results(String),
    /// The run's fixed-size disk (Docker engine).
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// The registry credentials for the engine's pull could not be read.
    #[error(transparent)]
    Credentials(#[from] train_image::ImageError),
}

impl EngineError {
    /// Whether the engine could not be reached at all (stopped, restarting, its socket gone):
    /// the station's trouble, not the run's. A watcher does not count such a run among the
    /// train's attempts: a Docker restart of 20 s once used up all three of a train's and
    /// failed it.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, EngineError::Unreachable { .. })
    }

    /// The results were over `cap` bytes.
    pub fn results_limit(cap: u64) -> Self {
        EngineError::Results(format!(
            "the train wrote more than the results limit ({cap} bytes, limits.results_bytes)"
        ))
    }
}
