//! The reconciliation pass. Registries deliver notifications at least once but drop queued ones
//! when they restart, so every `reconcile_secs` the outbox of every hop in flight is read and a
//! push no notification announced is taken as if one had. The same pass expires hops past
//! their deadline.

use super::{Mover, PushSource};
use crate::db::Pushed;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Mover {
    pub(super) async fn reconcile_loop(&self, stop: CancellationToken) {
        let every = Duration::from_secs(self.cfg.reconcile_secs.max(1));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.reconcile_once().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!("reconciliation found {n} push(es) no notification announced")
                }
                Err(e) => tracing::warn!(error = %e, "reconciliation pass failed"),
            }
        }
    }

    /// One pass; returns the pushes it took.
    pub async fn reconcile_once(&self) -> Result<usize, super::MoveError> {
        let expired = self.db.expire_hops().await?;
        if expired > 0 {
            tracing::warn!("{expired} hop(s) expired");
        }
        let mut found = 0;
        for (train, station) in self.db.awaiting_push().await? {
            let Some(row) = self.db.station(&station).await? else {
                continue;
            };
            match self
                .check_outbox(&train, &row, None, PushSource::Reconciliation)
                .await
            {
                Ok(Some(Ok(Pushed::New))) => {
                    metrics::counter!(crate::metrics::RECONCILED_PUSHES).increment(1);
                    found += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%train, %station, error = %e, "reconciliation: outbox not readable")
                }
            }
        }
        Ok(found)
    }
}
