//! What runs a job for the watcher, as a trait at the level of a job: the run pipeline on the
//! container engine in production, a fake in the unit tests of the watcher's supervision. And
//! the sweep that cleans up after a run that died (a panic) and closes its audit record.

use crate::audit::AuditLog;
use crate::engine::TrainEngine;
use crate::run::{self, Failure, RunRequest, Summary};
use std::future::Future;
use std::path::Path;
use tokio_util::sync::CancellationToken;
use train_lib::keys::PrivateKey;

/// Runs jobs.
pub trait Runner {
    /// Runs one train (pull, verify, run, push; its decision is appended to the audit log).
    fn run<'a>(
        &'a self,
        req: &'a RunRequest,
        cancel: &'a CancellationToken,
        summary: &'a mut Summary,
    ) -> impl Future<Output = Result<(), Failure>> + 'a;

    /// Removes what dead runs of this work area left and records them `interrupted`.
    fn sweep<'a>(
        &'a self,
        station: &'a str,
        tmp: &'a Path,
        audit: &'a AuditLog,
        key: &'a PrivateKey,
    ) -> impl Future<Output = Result<crate::sweep::Swept, String>> + 'a;
}

/// The run pipeline on a container engine.
pub struct Pipeline<'e, E>(pub &'e E);

impl<E: TrainEngine> Runner for Pipeline<'_, E> {
    async fn run(
        &self,
        req: &RunRequest,
        cancel: &CancellationToken,
        summary: &mut Summary,
    ) -> Result<(), Failure> {
        run::run(self.0, req, cancel, summary).await
    }

    async fn sweep(
        &self,
        station: &str,
        tmp: &Path,
        audit: &AuditLog,
        key: &PrivateKey,
    ) -> Result<crate::sweep::Swept, String> {
        crate::sweep::sweep(self.0, station, tmp, Some((audit, key)))
            .await
            .map_err(|e| e.to_string())
    }
}
