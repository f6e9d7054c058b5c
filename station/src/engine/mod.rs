//! The seam between a station and whatever runs its trains, at the level of a job: "run this
//! image (pinned by digest) as this user with this `/opt`, these data mounts and limits; give
//! back the results archive and how it ended". The run pipeline (`crate::run`) decrypts, checks
//! and re-encrypts; an engine only runs. [`docker::Docker`] is the default engine (a host's
//! Docker: a loop-mounted ext4 disk as `/opt`, a container with no network); the Kubernetes
//! engine (crate `station-k8s`, a cargo feature of the binary) runs the same job as a Job in a
//! locked-down namespace. A fake serves the pipeline's unit tests ([`fake`]).
//!
//! Every engine owns what it makes for a run and removes it on every path out of
//! [`TrainEngine::run`], cancellation included; what a killed station left behind is found by
//! its labels ([`TrainEngine::leftovers`]) and removed by the next start's sweep.

pub mod docker;
mod error;
#[cfg(test)]
pub(crate) mod fake;
mod results_file;

pub use error::EngineError;
pub use results_file::ResultsFile;

use crate::config::Limits;
use bytes::Bytes;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Label on everything a run makes: the run's id (also in the audit log's records).
pub const LABEL_RUN: &str = "org.pht.station.run";

/// Label on every train container: the train image it runs (pinned).
pub const LABEL_TRAIN: &str = "org.pht.station.train";

/// Label on everything a run makes: the station id.
pub const LABEL_STATION: &str = "org.pht.station.id";

/// Label on everything a run makes: the host the station runs on.
pub const LABEL_HOST: &str = "org.pht.station.host";

/// Label on everything a run makes: the run's work directory (locked while it runs).
pub const LABEL_WORKDIR: &str = "org.pht.station.workdir";

/// One train run, as every engine gets it.
#[derive(Debug, Clone)]
pub struct TrainJob<'a> {
    /// The run's id (names and labels what the engine makes).
    pub run_id: &'a str,
    /// `registry/repo@sha256:…` of the image to run (the master's when known).
    pub image: &'a str,
    /// The registry it is pulled from (`host:port`), for the engine's credentials.
    pub registry: &'a str,
    /// Replaces the image's entrypoint when set.
    pub entrypoint: Option<&'a [String]>,
    /// The command (the train's entrypoint file).
    pub cmd: &'a [String],
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Local data: mounted read-only at `/opt/train_data/<name>`.
    pub data: Vec<(String, PathBuf)>,
    /// User, memory, CPUs, processes, disk, wall clock and results caps.
    pub limits: &'a Limits,
    /// The run's private work directory: an engine may keep its own scratch there (the Docker
    /// engine's disk image); it is removed with the run.
    pub work: &'a Path,
    /// Where the tar of `/opt/pht_results` goes after a clean exit.
    pub results: &'a Path,
    /// Labels of everything the run makes (run, station, host, work directory, train).
    pub labels: Vec<(String, String)>,
}

/// How a train's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It exited with this code.
    Exited(i64),
    /// It ran past the wall-clock limit and was killed.
    TimedOut,
    /// It went over its memory limit and was killed.
    OutOfMemory,
    /// The job was cancelled while it ran; it was stopped.
    Cancelled,
}

/// What a run gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// How it ended.
    pub end: End,
    /// Bytes of the results archive written to [`TrainJob::results`] (after a clean exit).
    pub results_bytes: Option<u64>,
    /// Its `/opt` disk.
    pub disk: Option<DiskUse>,
}

/// The train's disk.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DiskUse {
    /// Its size (`limits.disk_mib`).
    pub quota_bytes: u64,
    /// What it took of the host's disk when the run ended (0 where the engine cannot tell).
    pub host_bytes: u64,
    /// Whether the train filled it.
    pub full: bool,
}

/// Where a train's output goes, chunk by chunk (raw bytes: the run escapes and caps them).
pub type OutputSink = std::sync::Arc<dyn Fn(&[u8]) + Send + Sync>;

/// The tar stream of the decrypted `/opt`, chunk by chunk; its producer ends when the engine
/// stops reading.
pub type OptStream = tokio::sync::mpsc::Receiver<Bytes>;

/// Something a run made, found by its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// What it is.
    pub kind: LeftoverKind,
    /// Its id or name in the engine.
    pub id: String,
    /// The run's work directory, from its label.
    pub workdir: Option<String>,
}

/// What kind of thing a run left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeftoverKind {
    /// What ran the train: a container, a Job or a pod. Removed first (storage in use cannot
    /// be removed).
    Runner,
    /// Its `/opt`: a volume or a claim.
    Storage,
}

/// What the station needs of an engine.
#[allow(async_fn_in_trait)]
pub trait TrainEngine {
    /// Runs `job`: `/opt` gets the archive `opt` before the train starts, the train's output
    /// goes to `output` as it comes, and after a clean exit the tar of `/opt/pht_results` is
    /// written to `job.results`, at most `limits.results_bytes` ([`EngineError::Results`]
    /// otherwise). Everything the engine made for the run is removed before this returns, on
    /// every path; `cancel` stops the train ([`End::Cancelled`]).
    async fn run(
        &self,
        job: &TrainJob<'_>,
        opt: OptStream,
        output: OutputSink,
        cancel: &CancellationToken,
    ) -> Result<Ran, EngineError>;

    /// What runs of `station` on `host` left behind (any run: the sweep decides which are
    /// dead by their work directories).
    async fn leftovers(&self, station: &str, host: &str) -> Result<Vec<Leftover>, EngineError>;

    /// Removes one leftover (a runner is stopped first).
    async fn remove_leftover(&self, leftover: &Leftover) -> Result<(), EngineError>;
}
