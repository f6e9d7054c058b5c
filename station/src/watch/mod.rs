//! `station watch`: the station as a daemon that polls outbound only. It follows its event
//! feed and reads its inbox (on every event and every `resync_secs`), approves what its rules
//! allow, runs approved trains through the run pipeline (`crate::run`), and reports `pulled`,
//! `running`, `done` with the pushed digest, `failed` with the reason, or `interrupted`.
//!
//! Restart-safe: its state file says what it owes the service, the audit log what ran. Before
//! a run starts, the audit log is asked whether this exact image was already pushed here (a
//! crash between push and report): then `done` is reported again and nothing runs. At start,
//! what dead runs left (containers, volumes, disks, decrypted work directories) is removed and
//! their trains run again. SIGTERM stops taking work, cancels the runs in hand (nothing is
//! pushed for an unfinished run) and reports them `interrupted`.
//!
//! Supervised: a job that fails or panics costs that job only. A panic is caught where the job
//! runs, what it left is swept and its audit record closed, and the train runs again up to
//! `max_attempts`; a bookkeeping error of one job is logged. Only configuration, key and
//! audit-log errors stop the daemon ([`WatchError::is_fatal`]), with what to do.
//!
//! Layout: [`plan`] decides what to do with an inbox item, `act` does it against the
//! [`RouteService`] trait, `jobs` starts, supervises and settles runs on a [`Runner`].

mod act;
mod approval;
mod feed;
mod inspect;
mod item;
mod jobs;
mod keycheck;
pub mod live;
pub mod plan;
mod runner;
mod service;
pub mod state;
#[cfg(test)]
mod tests;

pub use crate::config::{ApiKeyError, WatchSection};
pub use approval::auto_approval;
pub use feed::Backoff;
pub use keycheck::{check_key, next_key_path, KeyCheckError, KeyState, StationKey};
pub use runner::{Pipeline, Runner};
pub use service::RouteService;
pub use state::{Inspection, State, StateError, Status};

use crate::audit::{AuditError, AuditLog};
use crate::config::StationConfig;
use crate::engine::TrainEngine;
use crate::events::Stage;
use futures_util::stream::{FuturesUnordered, StreamExt};
use plan::Stop;
use route_wire::client::ClientError;
use route_wire::StationId;
use secrecy::SecretString;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use train_lib::keys::PrivateKey;

/// Why the watcher stopped or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The configuration cannot be used.
    #[error("{0}")]
    Config(String),
    /// Its state directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// The station key does not match the service's copy.
    #[error(transparent)]
    Key(#[from] KeyCheckError),
    /// The service refused a call the watcher cannot do without.
    #[error(transparent)]
    Service(#[from] ClientError),
    /// The audit log.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl WatchError {
    /// Whether the daemon must stop: its configuration or key cannot be used, or its audit
    /// log fails its check (appending would fork it). Anything else costs one job.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            WatchError::Config(_)
                | WatchError::Key(_)
                | WatchError::Audit(AuditError::StopsRuns { .. })
        )
    }
}

/// What the watcher needs.
pub struct WatchRequest<S> {
    /// This station's id.
    pub station: StationId,
    /// Its private key's file (a rotated key is taken into use from `FILE.next`).
    pub key_path: PathBuf,
    /// The variable holding the key's password.
    pub key_password_env: Option<String>,
    /// Its private key.
    pub key: Arc<PrivateKey>,
    /// Its API key (also its registry password under the service's token auth).
    pub api_key: SecretString,
    /// Policy, limits, registries, audit log, `[watch]`.
    pub config: StationConfig,
    /// The route service.
    pub client: S,
    /// Where private work directories are made.
    pub tmp: PathBuf,
    /// Runs in hand and recently ended, with their output, for the dashboard.
    pub live: Arc<live::LiveRuns>,
}

/// A run in hand.
struct Job {
    cancel: CancellationToken,
    /// The train left the inbox (cancelled, failed elsewhere): nothing is reported.
    dropped: bool,
}

/// The watcher's loop state.
struct Watcher<S> {
    req: WatchRequest<S>,
    key: Arc<PrivateKey>,
    audit: AuditLog,
    state: State,
    jobs: HashMap<Stop, Job>,
    inspecting: Vec<route_wire::TrainId>,
    milestones: mpsc::UnboundedSender<(Stop, Stage)>,
    stopping: bool,
}

impl<S> Watcher<S> {
    /// Logs an error of one job and goes on, unless it must stop the daemon.
    fn settle(&self, r: Result<(), WatchError>) -> Result<(), WatchError> {
        match r {
            Err(e) if e.is_fatal() => Err(e),
            Err(e) => {
                tracing::error!(error = %e, "a job's bookkeeping failed; the watcher goes on (that job is tried again at the next inbox read)");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }
}

/// Watches until `stop` is cancelled, then ends the runs in hand and returns.
pub async fn watch<E: TrainEngine, S: RouteService>(
    engine: &E,
    req: WatchRequest<S>,
    stop: CancellationToken,
) -> Result<(), WatchError> {
    supervise(&Pipeline(engine), req, stop).await
}

/// [`watch`] with its jobs on `runner`.
pub async fn supervise<R: Runner, S: RouteService>(
    runner: &R,
    req: WatchRequest<S>,
    stop: CancellationToken,
) -> Result<(), WatchError> {
    let w = &req.config.watch;
    let audit = AuditLog::new(req.config.audit.log.as_deref().ok_or_else(|| {
        WatchError::Config(
            "station watch needs [audit] log: without it a restarted station cannot know what it already ran".into(),
        )
    })?);
    if w.concurrency == 0 {
        return Err(WatchError::Config(
            "[watch] concurrency must be at least 1".into(),
        ));
    }
    let state = State::open(&w.state_dir)?;
    let key = start_key(&req, &audit).await?;
    req.client.set_approval(&req.station, w.approval).await?;
    match runner.sweep(&req.station, &req.tmp, &audit, &key).await {
        Ok(s) if s.any() => tracing::warn!(
            containers = s.containers,
            volumes = s.volumes,
            workdirs = s.workdirs,
            interrupted = s.interrupted,
            "removed what runs of an earlier watcher left; their trains run again"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "sweeping what earlier runs left"),
    }
    for (k, e) in state.entries() {
        if e.status == Status::Running {
            tracing::warn!(stop = %k, "a run died with the previous watcher; it runs again");
        }
    }
    let wake = Arc::new(Notify::new());
    let feed_stop = stop.child_token();
    let feed = tokio::spawn(req.client.follow(
        req.station.clone(),
        wake.clone(),
        feed_stop.clone(),
    ));
    let (tx, mut milestones) = mpsc::unbounded_channel();
    let mut me = Watcher {
        key,
        audit,
        state,
        jobs: HashMap::new(),
        inspecting: Vec::new(),
        milestones: tx,
        stopping: false,
        req,
    };
    tracing::info!(station = %me.req.station, service = %me.req.client.base(),
        approval = %me.req.config.watch.approval, concurrency = me.req.config.watch.concurrency, "watching");
    let mut runs: jobs::Running<'_> = FuturesUnordered::new();
    let mut inspections: jobs::Inspecting<'_> = FuturesUnordered::new();
    let resync = Duration::from_secs(me.req.config.watch.resync_secs.max(1));
    let mut next = Instant::now();
    let mut backoff = Backoff::default();
    loop {
        if !me.stopping && Instant::now() >= next {
            next = match me.resync(runner, &mut runs, &mut inspections).await {
                Ok(()) => {
                    backoff.reset();
                    Instant::now() + resync
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    let pause = backoff.pause().min(resync);
                    tracing::warn!(error = %e, retry_in_secs = pause.as_secs(), "reading the inbox");
                    Instant::now() + pause
                }
            };
        }
        tokio::select! {
            _ = stop.cancelled(), if !me.stopping => {
                me.stopping = true;
                tracing::info!(runs = me.jobs.len(), "stopping: no new work; runs in hand end now, nothing is pushed for them");
                for j in me.jobs.values() {
                    j.cancel.cancel();
                }
            }
            _ = wake.notified(), if !me.stopping => next = Instant::now(),
            _ = tokio::time::sleep_until(next), if !me.stopping => {}
            Some((stop, stage)) = milestones.recv() => me.milestone(&stop, stage).await,
            Some(end) = runs.next(), if !runs.is_empty() => {
                let r = me.finish(runner, end).await;
                me.settle(r)?;
            }
            Some((train, out)) = inspections.next(), if !inspections.is_empty() => {
                let r = me.inspected(train, out);
                me.settle(r)?;
            }
        }
        if me.stopping && runs.is_empty() {
            break;
        }
    }
    feed_stop.cancel();
    let _ = feed.await;
    Ok(())
}

/// The key check at start: the service must hold this station's key (or the next one, which
/// is then taken into use).
async fn start_key<S: RouteService>(
    req: &WatchRequest<S>,
    audit: &AuditLog,
) -> Result<Arc<PrivateKey>, WatchError> {
    match key_in_use(req, &req.key, audit).await {
        Ok((key, pending)) => {
            if let Some(fp) = pending {
                tracing::info!(pending = %fp, "a new key waits for an admin (`route-service station accept-key`); the current key is used until then");
            }
            Ok(key)
        }
        Err(KeyCheckError::Service(e)) if e.status() == Some(401) => Err(WatchError::Config(format!(
            "the route service at {} does not accept station {}'s API key ({e}); check [watch] api_key_file / STATION_API_KEY_FILE, or ask an admin for a new one (`route-service station rotate-key {}`)",
            req.client.base(), req.station, req.station
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The key to use now: `key`, or the next key once the service holds it (promoted, with the
/// audit log handed over); and the fingerprint of a proposal still waiting for an admin.
async fn key_in_use<S: RouteService>(
    req: &WatchRequest<S>,
    key: &Arc<PrivateKey>,
    audit: &AuditLog,
) -> Result<(Arc<PrivateKey>, Option<String>), KeyCheckError> {
    let k = StationKey {
        station: &req.station,
        path: &req.key_path,
        password_env: req.key_password_env.as_deref(),
        key,
        audit: Some(audit),
    };
    Ok(match check_key(&req.client, &k).await? {
        KeyState::Promoted(next) => {
            tracing::warn!(fingerprint = %next.public().fingerprint(), "the service accepted this station's new key; it is used from now on (the old one is kept as KEY.previous)");
            (Arc::new(next), None)
        }
        KeyState::Pending(fp) => (key.clone(), Some(fp)),
        KeyState::Current => (key.clone(), None),
    })
}
