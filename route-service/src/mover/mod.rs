//! The movers: workers that claim due moves under a lease, copy the pinned image into the
//! next inbox (same registry: blobs mounted, only the manifest sent; across registries:
//! streamed, layers in parallel), and record delivery only if they still hold the lease, so a
//! move is recorded once however many replicas race or crash. Plus the push handling shared by
//! notifications, reports and [`reconcile`].

mod pushes;
mod reconcile;
mod signed;

pub use pushes::{PushOutcome, PushSource};

use crate::config::MoverConfig;
use crate::db::{Claimed, Db, DbError};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use train_image::{copy_image, ImageError, Registry, Silent};

/// Errors of a mover.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MoveError {
    /// The state store failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A registry operation failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A stored reference does not parse.
    #[error("stored reference `{0}` does not parse")]
    Reference(String),
}

/// Set in tests only: hold a finished copy this long before recording it, so a test can kill
/// the service between copying and delivering.
pub const FAULT_HOLD_ENV: &str = "ROUTE_SERVICE_FAULT_HOLD_MS";

/// The movers of one replica.
pub struct Mover {
    pub(crate) db: Db,
    pub(crate) reg: Registry,
    cfg: MoverConfig,
    owner: String,
    hold: Option<Duration>,
    /// Registries that authenticate with the service's tokens: their notifications carry a
    /// verified actor.
    token_registries: Vec<String>,
    /// Source clean-ups in flight, at most one per worker. A clean-up (two manifest deletes,
    /// each with its token) took 250–420 ms of a 1.1 s move when the worker waited for it
    /// (route-bench, 100 stations, 300 trains): a third of the movers' time went to a courtesy.
    /// It now runs beside the next move; a worker waits only when every slot is taken.
    cleanups: Arc<tokio::sync::Semaphore>,
}

impl Mover {
    /// Movers over `db` and `reg`; `owner` names this replica in leases.
    pub fn new(
        db: Db,
        reg: Registry,
        cfg: MoverConfig,
        owner: String,
        token_registries: Vec<String>,
    ) -> Arc<Self> {
        let hold = std::env::var(FAULT_HOLD_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis);
        let cleanups = Arc::new(tokio::sync::Semaphore::new(cfg.workers.max(1)));
        Arc::new(Self {
            db,
            reg,
            cfg,
            owner,
            hold,
            token_registries,
            cleanups,
        })
    }

    fn lease_ms(&self) -> i64 {
        self.cfg.lease_secs as i64 * 1000
    }

    /// Runs the workers and the reconciliation pass until `stop`; a move in hand when `stop`
    /// comes is finished within the grace period or released for another replica.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.cfg.workers {
            let (me, stop) = (self.clone(), stop.clone());
            tasks.spawn(async move { me.worker(stop).await });
        }
        let (me, s) = (self.clone(), stop.clone());
        tasks.spawn(async move { me.reconcile_loop(s).await });
        while tasks.join_next().await.is_some() {}
    }

    async fn worker(self: Arc<Self>, stop: CancellationToken) {
        while !stop.is_cancelled() {
            // Registered before the claim, so a wake between an empty claim and the wait is
            // not lost (it cost up to a second per move before).
            let changed = self.db.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.move_one(&stop).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "mover: claiming a move failed"),
            }
            // Idle: woken by this replica's own events at once, by other replicas' within 1 s.
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Claims and makes one due move; false when none was due.
    pub async fn move_one(self: &Arc<Self>, stop: &CancellationToken) -> Result<bool, MoveError> {
        let Some(c) = self.db.claim_move(&self.owner, self.lease_ms()).await? else {
            return Ok(false);
        };
        let started = std::time::Instant::now();
        tracing::info!(train = %c.train, hop = c.idx, from = %c.source, to = %c.target, attempt = c.attempts, "moving");
        let work = self.copy_with_lease(&c);
        // On shutdown a copy gets 20 s to finish (a manifest put or a few blobs); after that
        // the lease is given back so another replica (or the restart) takes it over at once.
        let outcome = tokio::select! {
            r = work => Some(r),
            _ = async { stop.cancelled().await; tokio::time::sleep(Duration::from_secs(20)).await } => None,
        };
        match outcome {
            None => match self.db.release_move(&c, &self.owner).await? {
                Ok(()) => tracing::info!(train = %c.train, hop = c.idx, "shutdown: move released"),
                Err(why) => {
                    tracing::info!(train = %c.train, hop = c.idx, "shutdown: the move was not ours to release: {why}")
                }
            },
            Some(Ok(detail)) => {
                if let Some(h) = self.hold {
                    tokio::time::sleep(h).await;
                }
                let approval = match &c.station {
                    Some(s) => self.db.station(s).await?.map(|s| s.approval),
                    None => None,
                };
                let recorded = self
                    .db
                    .complete_move(&c, &self.owner, approval, &detail)
                    .await?;
                if recorded.is_ok() {
                    metrics::histogram!(crate::metrics::MOVE_SECONDS)
                        .record(started.elapsed().as_secs_f64());
                    tracing::info!(train = %c.train, hop = c.idx, "delivered: {detail}");
                    if let Ok(slot) = self.cleanups.clone().acquire_owned().await {
                        let me = self.clone();
                        tokio::spawn(async move {
                            me.clean_sources(&c).await;
                            drop(slot);
                        });
                    }
                } else if let Err(why) = recorded {
                    tracing::warn!(train = %c.train, hop = c.idx, "lease lost before recording; another mover recorded it ({why})");
                }
            }
            Some(Err(e)) => {
                metrics::counter!(crate::metrics::MOVE_FAILURES).increment(1);
                tracing::warn!(train = %c.train, hop = c.idx, error = %e, "move failed");
                if let Err(why) = self
                    .db
                    .fail_move(&c, &self.owner, &e.to_string(), self.cfg.max_attempts)
                    .await?
                {
                    tracing::warn!(train = %c.train, hop = c.idx, "the failure was not recorded: {why}");
                }
            }
        }
        Ok(true)
    }

    /// The copy, with the lease renewed every third of its length while it runs.
    async fn copy_with_lease(&self, c: &Claimed) -> Result<String, MoveError> {
        let copy = self.copy(c);
        tokio::pin!(copy);
        let every = Duration::from_millis((self.lease_ms() / 3).max(100) as u64);
        loop {
            tokio::select! {
                r = &mut copy => return r,
                _ = tokio::time::sleep(every) => {
                    if !self.db.renew_lease(c, &self.owner, self.lease_ms()).await? {
                        tracing::warn!(train = %c.train, hop = c.idx, "lease lost during the copy");
                    }
                }
            }
        }
    }

    async fn copy(&self, c: &Claimed) -> Result<String, MoveError> {
        let started = std::time::Instant::now();
        let pinned = self.reg.resolve(&c.source).await?;
        let rep = copy_image(&self.reg, &pinned, &c.target, &Silent).await?;
        let registry_ms = started.elapsed().as_millis();
        metrics::counter!(crate::metrics::MOVE_BYTES_SENT).increment(rep.bytes_sent);
        metrics::counter!(crate::metrics::MOVE_BLOBS_MOUNTED).increment(rep.mounted as u64);
        Ok(format!(
            "{} → {}: {} blobs mounted, {} present, {} sent ({} bytes) in {registry_ms} ms",
            pinned.digest, c.target, rep.mounted, rep.skipped, rep.sent, rep.bytes_sent
        ))
    }

    /// Removes what the move made stale, where the registry allows deletes: the source (an
    /// outbox or the submission) and the previous station's inbox copy. Failures only log.
    async fn clean_sources(&self, c: &Claimed) {
        let mut stale = vec![c.source.clone()];
        if c.idx > 0 {
            match self.db.delivered_copy(&c.train, c.idx - 1).await {
                Ok(Some(copy)) => stale.push(copy),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "reading the previous hop"),
            }
        }
        for r in stale {
            let s = r.to_string();
            match self.reg.delete_manifest(&r).await {
                Ok(true) => tracing::debug!(image = %s, "removed"),
                Ok(false) => {
                    tracing::debug!(image = %s, "not removed: the registry does not allow deletes")
                }
                Err(e) => tracing::info!(image = %s, error = %e, "could not remove"),
            }
        }
    }
}
