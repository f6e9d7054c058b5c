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

mod approval;
mod feed;
mod inspect;
mod keycheck;
pub mod state;

pub use crate::config::{ApiKeyError, WatchSection};
pub use approval::auto_approval;
pub use feed::Backoff;
pub use keycheck::{check_key, next_key_path, KeyCheckError, KeyState, StationKey};
pub use state::{Inspection, State, StateError, Status};

use crate::audit::{AuditError, AuditLog};
use crate::config::StationConfig;
use crate::engine::ContainerEngine;
use crate::events::{Events, Stage, Tracing};
use crate::run::{self, Decision, Failure, Summary};
use futures_util::stream::{FuturesUnordered, StreamExt};
use route_wire::client::{Client, ClientError};
use route_wire::{HopState, InboxItem, ReportStatus};
use secrecy::SecretString;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use train_image::{Credentials, Registry, RegistryOptions};
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

/// What the watcher needs.
pub struct WatchRequest {
    /// This station's id.
    pub station: String,
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
    pub client: Client,
    /// Where private work directories are made.
    pub tmp: PathBuf,
}

type RunEnd = (String, InboxItem, Summary, Result<(), Failure>);
type Running<'a> = FuturesUnordered<Pin<Box<dyn Future<Output = RunEnd> + 'a>>>;
type Inspecting<'a> =
    FuturesUnordered<Pin<Box<dyn Future<Output = (String, Result<Inspection, String>)> + 'a>>>;

/// A run in hand.
struct Job {
    cancel: CancellationToken,
    /// The train left the inbox (cancelled, failed elsewhere): nothing is reported.
    dropped: bool,
}

/// Run events go to `tracing`; milestones go to the loop, which reports them.
struct JobEvents {
    key: String,
    milestones: mpsc::UnboundedSender<(String, Stage)>,
}

impl Events for JobEvents {
    fn stage(&self, _: &str, stage: Stage) {
        let _ = self.milestones.send((self.key.clone(), stage));
    }
    fn step(&self, run_id: &str, message: &str) {
        Tracing.step(run_id, message)
    }
    fn warn(&self, run_id: &str, message: &str) {
        Tracing.warn(run_id, message)
    }
    fn train_output(&self, run_id: &str, line: &str) {
        Tracing.train_output(run_id, line)
    }
    fn transfers(&self) -> &dyn train_image::Reporter {
        &train_image::Silent
    }
}

/// The watcher's loop state.
struct Watcher {
    req: WatchRequest,
    key: Arc<PrivateKey>,
    audit: AuditLog,
    state: State,
    jobs: HashMap<String, Job>,
    inspecting: Vec<String>,
    milestones: mpsc::UnboundedSender<(String, Stage)>,
    stopping: bool,
}

/// Watches until `stop` is cancelled, then ends the runs in hand and returns.
pub async fn watch<E: ContainerEngine>(
    engine: &E,
    req: WatchRequest,
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
    match crate::sweep::sweep(engine, &req.station, &req.tmp, Some((&audit, &key))).await {
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
    let feed = tokio::spawn(feed::follow(
        req.client.clone(),
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
    let mut runs: Running<'_> = FuturesUnordered::new();
    let mut inspections: Inspecting<'_> = FuturesUnordered::new();
    let resync = Duration::from_secs(me.req.config.watch.resync_secs.max(1));
    let mut next = Instant::now();
    let mut backoff = Backoff::default();
    loop {
        if !me.stopping && Instant::now() >= next {
            next = match me.resync(engine, &mut runs, &mut inspections).await {
                Ok(()) => {
                    backoff.reset();
                    Instant::now() + resync
                }
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
            Some((key, stage)) = milestones.recv() => me.milestone(&key, stage).await,
            Some(end) = runs.next(), if !runs.is_empty() => me.finish(end).await?,
            Some((train, out)) = inspections.next(), if !inspections.is_empty() => me.inspected(train, out)?,
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
async fn start_key(req: &WatchRequest, audit: &AuditLog) -> Result<Arc<PrivateKey>, WatchError> {
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
async fn key_in_use(
    req: &WatchRequest,
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

mod loop_steps;
