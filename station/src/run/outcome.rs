//! How a run ends: one typed outcome that gives the audit record's decision, the JSON summary
//! and the exit code.

use crate::audit::AuditError;
use crate::disk::DiskError;
use crate::engine::{DiskUse, EngineError};
use serde::{Deserialize, Serialize};
use std::fmt::Display;
use train_image::{ImageError, PushReport};
use train_lib::keys::TrustError;
use train_lib::{ProtocolError, Rejection};

/// What the station decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// The train ran and its next image was pushed.
    Pushed,
    /// A policy, protocol or image check failed; nothing ran or was pushed.
    Rejected,
    /// The train ran and failed (exit code, time limit, its results or its disk).
    TrainFailed,
    /// Registry, engine, file or key trouble (also a run that ended before deciding).
    #[default]
    Error,
    /// Stopped by a signal or the caller; cleaned up, nothing pushed.
    Interrupted,
}

impl Decision {
    /// The name in audit records and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Pushed => "pushed",
            Decision::Rejected => "rejected",
            Decision::TrainFailed => "train-failed",
            Decision::Error => "error",
            Decision::Interrupted => "interrupted",
        }
    }

    /// `station run`'s exit code (README).
    pub fn exit_code(self) -> u8 {
        match self {
            Decision::Pushed => 0,
            Decision::Error | Decision::Interrupted => 1,
            Decision::Rejected => 3,
            Decision::TrainFailed => 4,
        }
    }
}

impl From<Decision> for crate::audit::RecordKind {
    fn from(d: Decision) -> Self {
        use crate::audit::RecordKind;
        match d {
            Decision::Pushed => RecordKind::Pushed,
            Decision::Rejected => RecordKind::Rejected,
            Decision::TrainFailed => RecordKind::TrainFailed,
            Decision::Error => RecordKind::Error,
            Decision::Interrupted => RecordKind::Interrupted,
        }
    }
}

/// Why a train was refused, as the check that refused it said: the value, not its text, so
/// that callers (the watcher) can tell one refusal from another.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A protocol check failed.
    #[error(transparent)]
    Protocol(Rejection),
    /// An image check failed (layers, lineage, digests, limits).
    #[error(transparent)]
    Image(ImageError),
    /// The station's policy, or a check of its own (a replay, a run in progress).
    #[error("{0}")]
    Station(String),
}

/// Why a run did not push. The first three are decisions about the train; the rest are the
/// station's trouble (decision `error`, exit 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The train was refused: a policy, protocol or image check failed.
    #[error("rejected: {0}")]
    Rejected(Refusal),
    /// The train ran and failed.
    #[error("the train failed: {0}")]
    TrainFailed(String),
    /// The run was stopped; what it had made was removed.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// The station failed while running the train (a bug, caught where the run ran).
    #[error("the station failed while running this train (a bug; its log has the details): {0}")]
    Panicked(String),
    /// An argument or setting cannot be used (a `--data` path, …).
    #[error("{0}")]
    Input(String),
    /// The audit log.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The container engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The train's disk.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// A registry or a local file, not the train's fault.
    #[error(transparent)]
    Image(ImageError),
    /// The protocol step, not the train's fault (a key, a file).
    #[error(transparent)]
    Protocol(ProtocolError),
    /// The trust file.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A local file or directory of the run.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Failure {
    /// The decision this failure is.
    pub fn decision(&self) -> Decision {
        match self {
            Failure::Rejected(_) => Decision::Rejected,
            Failure::TrainFailed(_) => Decision::TrainFailed,
            Failure::Interrupted(_) => Decision::Interrupted,
            _ => Decision::Error,
        }
    }
}

/// An I/O failure of the run, saying what was being done.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Failure {
    let what = what.into();
    move |source| Failure::Io { what, source }
}

/// A rejection by the station's own policy or checks, with this reason.
pub fn rejected(e: impl Display) -> Failure {
    Failure::Rejected(Refusal::Station(e.to_string()))
}

/// The interruption message.
pub const INTERRUPTED: &str =
    "stopped on request; the container, its volume and the decrypted train were removed, nothing was pushed";

/// A protocol error: the train's fault (a rejection) or the station's.
pub fn protocol(e: ProtocolError) -> Failure {
    match e {
        ProtocolError::Cancelled => Failure::Interrupted(INTERRUPTED.into()),
        ProtocolError::Rejected(r) => Failure::Rejected(Refusal::Protocol(r)),
        e => Failure::Protocol(e),
    }
}

/// An image error: rejections as decided by [`ImageError::is_rejection`], cancellation as an
/// interruption, the rest errors.
pub fn image(e: ImageError) -> Failure {
    match e {
        ImageError::Cancelled => Failure::Interrupted(INTERRUPTED.into()),
        e if e.is_rejection() => Failure::Rejected(Refusal::Image(e)),
        e => Failure::Image(e),
    }
}

/// The `--json` summary.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// The station.
    pub station: String,
    /// This run's id (labels, audit records).
    pub run_id: String,
    /// The train's id.
    pub train_id: Option<String>,
    /// The train's signed identity.
    pub identity: Option<String>,
    /// `native` or `legacy`.
    pub format: Option<String>,
    /// The image pulled, by digest.
    pub digest_in: Option<String>,
    /// The image pushed, by digest.
    pub digest_out: Option<String>,
    /// Where it was pushed.
    pub pushed_to: Option<String>,
    /// The train's exit code.
    pub exit_code: Option<i64>,
    /// `pushed`, `rejected`, `train-failed`, `error` or `interrupted`.
    pub decision: Decision,
    /// Why, unless pushed.
    pub reason: Option<String>,
    /// Seconds per step.
    pub seconds: Timings,
    /// What the push did.
    pub push: Option<PushReport>,
    /// The train's disk, once it ran.
    pub disk: Option<DiskUse>,
}

/// Seconds per step.
#[derive(Debug, Default, Serialize)]
pub struct Timings {
    /// Pulling and unpacking.
    pub pull: f64,
    /// Verifying and decrypting.
    pub pre_run: f64,
    /// The container, from creation to removal.
    pub run: f64,
    /// Hashing, signing, re-encrypting.
    pub post_run: f64,
    /// Pushing the next image.
    pub push: f64,
    /// Everything.
    pub total: f64,
}
