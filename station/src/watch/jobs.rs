//! Jobs: runs and inspections, each a future of its own that the loop polls. A panic inside
//! one is caught where it runs (a panic is a bug, never the train's fault): the job ends as
//! `Failure::Panicked`, its leftovers are swept and its audit record closed, and the train is
//! tried again up to `max_attempts` like any station trouble. The other jobs and the loop go on.

use super::live::{LineKind, LiveRuns};
use super::plan::{Item, Stop};
use super::{Inspection, Job, RouteService, Runner, Status, WatchError, Watcher};
use crate::events::{Events, Stage, Tracing};
use crate::run::{Decision, Failure, Refusal, RunRequest, Summary};
use futures_util::stream::FuturesUnordered;
use futures_util::FutureExt;
use route_wire::{ReportStatus, TrainId};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use train_lib::Rejection;

/// How a run ended.
pub(super) type RunEnd = (Stop, Item, Summary, Result<(), Failure>);
/// The runs in hand.
pub(super) type Running<'a> = FuturesUnordered<Pin<Box<dyn Future<Output = RunEnd> + 'a>>>;
/// How an inspection ended.
pub(super) type Inspected = (TrainId, Result<Inspection, String>);
/// An inspection in hand.
pub(super) type InspectionJob<'a> = Pin<Box<dyn Future<Output = Inspected> + 'a>>;
/// The inspections in hand.
pub(super) type Inspecting<'a> = FuturesUnordered<InspectionJob<'a>>;

/// The text of a panic's payload.
fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// An inspection that cannot take the watcher down with it.
pub(super) fn supervised_inspection<'a>(
    train: TrainId,
    f: impl Future<Output = Result<Inspection, String>> + 'a,
) -> InspectionJob<'a> {
    Box::pin(async move {
        let out = AssertUnwindSafe(f)
            .catch_unwind()
            .await
            .unwrap_or_else(|p| Err(format!("the inspection panicked: {}", panic_text(p))));
        (train, out)
    })
}

/// Run events go to `tracing` and to the dashboard's live view; milestones go to the loop,
/// which reports them.
struct JobEvents {
    stop: Stop,
    milestones: mpsc::UnboundedSender<(Stop, Stage)>,
    live: Arc<LiveRuns>,
}

impl Events for JobEvents {
    fn stage(&self, _: &str, stage: Stage) {
        self.live.stage(
            &self.stop,
            match stage {
                Stage::Pulled => "pulled and pinned",
                Stage::Running => "running",
            },
        );
        let _ = self.milestones.send((self.stop.clone(), stage));
    }
    fn step(&self, run_id: &str, message: &str) {
        self.live.line(&self.stop, LineKind::Step, message);
        Tracing.step(run_id, message)
    }
    fn warn(&self, run_id: &str, message: &str) {
        self.live.line(&self.stop, LineKind::Warn, message);
        Tracing.warn(run_id, message)
    }
    fn train_output(&self, run_id: &str, line: &str) {
        self.live.line(&self.stop, LineKind::Train, line);
        Tracing.train_output(run_id, line)
    }
    fn transfers(&self) -> &dyn train_image::Reporter {
        &train_image::Silent
    }
}

impl<S: RouteService> Watcher<S> {
    /// Starts a run of `item` on `runner`.
    pub(super) fn start<'a, R: Runner>(
        &mut self,
        runner: &'a R,
        item: Item,
    ) -> Pin<Box<dyn Future<Output = RunEnd> + 'a>> {
        let cancel = CancellationToken::new();
        let stop = item.stop();
        self.jobs.insert(
            stop.clone(),
            Job {
                cancel: cancel.clone(),
                dropped: false,
            },
        );
        tracing::info!(%stop, image = %item.image, "running");
        self.req.live.started(&stop, &item.image.to_string());
        let w = &self.req.config.watch;
        let req = RunRequest {
            reference: item.image.clone(),
            station: self.req.station.to_string(),
            key: self.key.clone(),
            push: Some(item.push_to.clone()),
            data: w.data.clone(),
            config: self.req.config.clone(),
            events: Arc::new(JobEvents {
                stop: stop.clone(),
                milestones: self.milestones.clone(),
                live: self.req.live.clone(),
            }),
            tmp: self.req.tmp.clone(),
            credentials: self.credentials(&item),
        };
        Box::pin(async move {
            let mut summary = Summary::default();
            let run = AssertUnwindSafe(runner.run(&req, &cancel, &mut summary)).catch_unwind();
            let out = match run.await {
                Ok(out) => out,
                Err(p) => Err(Failure::Panicked(panic_text(p))),
            };
            (stop, item, summary, out)
        })
    }

    /// Reports a run's milestone (best effort: the end is what counts).
    pub(super) async fn milestone(&mut self, stop: &Stop, stage: Stage) {
        let status = match stage {
            Stage::Pulled => ReportStatus::Pulled,
            Stage::Running => ReportStatus::Running,
        };
        if let Err(e) = self
            .req
            .client
            .report(&stop.train, status, None, None)
            .await
        {
            tracing::warn!(error = %e, %stop, "reporting {status:?}");
        }
    }

    /// A run ended: record it, then report it.
    pub(super) async fn finish<R: Runner>(
        &mut self,
        runner: &R,
        (stop, item, summary, out): RunEnd,
    ) -> Result<(), WatchError> {
        let job = self.jobs.remove(&stop);
        let dropped = job.is_some_and(|j| j.dropped);
        match (&out, &summary.digest_out) {
            (Ok(()), Some(d)) => self.req.live.ended(&stop, true, &format!("pushed {d}")),
            (Ok(()), None) => self
                .req
                .live
                .ended(&stop, false, "pushed, but named no digest"),
            (Err(f), _) => {
                self.req
                    .live
                    .ended(&stop, false, &format!("{}: {f}", f.decision().as_str()))
            }
        }
        match out {
            Ok(()) => {
                let Some(d) = summary
                    .digest_out
                    .as_deref()
                    .and_then(|d| route_wire::Digest::parse(d).ok())
                else {
                    return self
                        .fail(
                            &stop,
                            &item.digest,
                            "the run pushed but named no digest of what it pushed".into(),
                        )
                        .await;
                };
                tracing::info!(%stop, pushed = %d, seconds = summary.seconds.total, "pushed");
                self.state
                    .set(&stop, &item.digest, Status::Pushed { digest: d.clone() })?;
                self.report(&stop, ReportStatus::Done, None, Some(d)).await
            }
            Err(f) if dropped => {
                tracing::info!(%stop, "stopped: {f}");
                self.state.set(
                    &stop,
                    &item.digest,
                    Status::Failed {
                        reason: f.to_string(),
                    },
                )?;
                self.state.reported(&stop)?;
                Ok(())
            }
            Err(f) => match f.decision() {
                Decision::Interrupted => {
                    tracing::warn!(%stop, "interrupted: {f}");
                    self.state.set(&stop, &item.digest, Status::Interrupted)?;
                    self.report(&stop, ReportStatus::Interrupted, None, None)
                        .await
                }
                Decision::Error => {
                    if let Failure::Panicked(p) = &f {
                        tracing::error!(%stop, panic = %p, "the run panicked (a station bug); what it left is swept, the watcher goes on");
                        match runner
                            .sweep(&self.req.station, &self.req.tmp, &self.audit, &self.key)
                            .await
                        {
                            Ok(s) => tracing::warn!(
                                containers = s.containers,
                                volumes = s.volumes,
                                workdirs = s.workdirs,
                                interrupted = s.interrupted,
                                "swept after the panic"
                            ),
                            Err(e) => tracing::warn!(error = %e, "sweeping after the panic"),
                        }
                    } else {
                        tracing::warn!(%stop, "run failed, will try again: {f}");
                    }
                    // Registry or engine trouble, or a bug: run again at the next resync, up
                    // to max_attempts (counted in the state), then failed with this reason.
                    self.state.set_with(
                        &stop,
                        &item.digest,
                        Status::Interrupted,
                        Some(f.to_string()),
                    )?;
                    // An engine that cannot be reached at all is not the train's trouble: the
                    // run is tried again at every resync until the engine answers, without
                    // using up the train's attempts.
                    if matches!(&f, Failure::Engine(e) if e.is_unreachable()) {
                        tracing::warn!(%stop, "the Docker engine cannot be reached; this run is tried again when it answers and is not counted among the train's attempts");
                        self.state.not_an_attempt(&stop)?;
                    }
                    Ok(())
                }
                _ => {
                    let reason = self.explain(&f);
                    tracing::warn!(%stop, decision = ?f.decision(), "{reason}");
                    self.fail(&stop, &item.digest, reason).await
                }
            },
        }
    }

    /// A train built for this station's key from before a rotation fails pre-run with the
    /// protocol's `WrongStationKey`; the creator is told why and what to do.
    fn explain(&self, f: &Failure) -> String {
        let mut prev = self.req.key_path.as_os_str().to_owned();
        prev.push(".previous");
        match f {
            Failure::Rejected(Refusal::Protocol(Rejection::WrongStationKey(_)))
                if std::path::PathBuf::from(prev).exists() =>
            {
                format!(
                    "{f}: {} rotated its key (now {}); this train was built for the key before. Rebuild it with the station's new key (`train create --route-service …` fetches it) and submit it again",
                    self.req.station,
                    self.key.public().fingerprint()
                )
            }
            _ => f.to_string(),
        }
    }

    /// An inspection for the queue ended.
    pub(super) fn inspected(
        &mut self,
        train: TrainId,
        out: Result<Inspection, String>,
    ) -> Result<(), WatchError> {
        self.inspecting.retain(|t| *t != train);
        match out {
            Ok(i) => self.state.inspected(&train, i)?,
            Err(e) => tracing::warn!(%train, error = %e, "reading the waiting train for review"),
        }
        Ok(())
    }
}
