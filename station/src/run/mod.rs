//! `station run`: sweep → check the audit log → pull → identify → lock the train → replay check
//! → policy → base layers → pre-run → `started` → disk → container → post-run → push →
//! decision. On any failure nothing is pushed, the pulled train is left as it was in its
//! registry, the container, its volume and its disk are removed, and the private work directory
//! (the only place decrypted bytes ever are, outside the container) is deleted.
//!
//! A run is a job with its own id and cancellation token: its containers and volume carry the
//! id, and a cancelled job stops at its next step (an engine call in flight is waited for),
//! cleans up and records `interrupted`.

mod job;
mod outcome;
mod policy;

pub use crate::engine::DiskUse;
pub use job::{run_job, Job};
pub use outcome::{Decision, Failure, Refusal, Summary, Timings};
pub use policy::{Launch, UNSIGNED_NEEDS_POLICY};

use crate::audit::{self, AuditLog, TrainLock};
use crate::config::StationConfig;
use crate::engine::{self as eng, TrainEngine};
use crate::events::Events;
use crate::output::escape;
use crate::sweep;
use crate::workdir::WorkDir;
use outcome::{image, io, protocol, rejected, INTERRUPTED};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use train_image::{self as img, ImageRef, Registry, RegistryOptions};
use train_lib::keys::{PrivateKey, TrustStore};
use train_lib::{Station, TrainDir};

/// What a run needs: one job of a station.
pub struct RunRequest {
    /// The train image.
    pub reference: ImageRef,
    /// This station's id.
    pub station: String,
    /// Its private key.
    pub key: Arc<PrivateKey>,
    /// Where to push (default: the next stop's tag).
    pub push: Option<ImageRef>,
    /// Local data for the train.
    pub data: Vec<PathBuf>,
    /// Policy, limits, registries, audit log.
    pub config: StationConfig,
    /// Where its messages, the train's output and transfer progress go.
    pub events: Arc<dyn Events>,
    /// Where its private work directory is made (`$TMPDIR` for the binary).
    pub tmp: PathBuf,
    /// Credentials per registry (`host:port`); others come from the environment or Docker's
    /// configuration.
    pub credentials: Vec<(String, train_image::Credentials)>,
}

/// A fresh run id: 16 random hex digits.
pub fn new_run_id() -> String {
    hex::encode(train_lib::keys::random_bytes::<8>())
}

/// Everything a run's steps share.
struct Ctx<'a, E> {
    engine: &'a E,
    req: &'a RunRequest,
    run_id: &'a str,
    work: &'a WorkDir,
    audit: Option<&'a AuditLog>,
    cancel: &'a CancellationToken,
}

/// Runs the whole station step; the summary is filled in as far as it got, also on failure,
/// and the decision is appended to the audit log (when there is one).
pub async fn run<E: TrainEngine>(
    engine: &E,
    req: &RunRequest,
    cancel: &CancellationToken,
    summary: &mut Summary,
) -> Result<(), Failure> {
    let t0 = Instant::now();
    let run_id = new_run_id();
    summary.station = req.station.clone();
    summary.run_id = run_id.clone();
    let audit = req.config.audit.log.as_deref().map(AuditLog::new);
    let tmp = &req.tmp;
    let ev = &req.events;
    // What dead runs left is removed first; a failure here does not stop this run.
    match sweep::sweep(engine, &req.station, tmp, audit.as_ref().map(|l| (l, &*req.key))).await {
        Ok(s) if s.any() => ev.step(
            &run_id,
            &format!(
                "removed what earlier runs that did not finish left: {} container(s), {} volume(s), {} loop device(s), {} work director(ies); {} recorded as interrupted",
                s.containers, s.volumes, s.loop_devices, s.workdirs, s.interrupted
            ),
        ),
        Ok(_) => {}
        Err(e) => ev.warn(&run_id, &e.to_string()),
    }
    match &audit {
        Some(log) => {
            log.check_before_run(req.key.public())?;
        }
        None => ev.warn(
            &run_id,
            "no audit log ([audit] log): this station cannot refuse a train it has already run",
        ),
    }
    let work = WorkDir::create(tmp, &run_id);
    let mut lock = None;
    let out = match &work {
        Ok(work) => {
            let ctx = Ctx {
                engine,
                req,
                run_id: &run_id,
                work,
                audit: audit.as_ref(),
                cancel,
            };
            steps(&ctx, &mut lock, summary).await
        }
        Err(e) => Err(Failure::Io {
            what: "creating the run's work directory".into(),
            source: std::io::Error::new(e.kind(), e.to_string()),
        }),
    };
    summary.seconds.total = t0.elapsed().as_secs_f64();
    let decision = out
        .as_ref()
        .err()
        .map_or(Decision::Pushed, Failure::decision);
    summary.decision = decision;
    summary.reason = out.as_ref().err().map(|e| escape(&e.to_string()));
    // Appended while the work directory is still locked, so no sweep takes this run for a dead
    // one in between.
    if let Some(log) = &audit {
        let mut r = audit::record(&req.station, decision.into());
        r.run_id = Some(run_id.clone());
        r.train_id = summary.train_id.clone();
        r.identity = summary.identity.clone();
        r.digest_in = summary.digest_in.clone();
        r.digest_out = summary.digest_out.clone();
        r.pushed_to = summary.pushed_to.clone();
        r.exit_code = summary.exit_code;
        r.result_digest = summary.push.as_ref().and_then(|p| p.layer.clone());
        r.reason = summary.reason.clone();
        log.append(&req.key, r)?;
    }
    drop(work);
    drop(lock);
    out
}

async fn steps<E: TrainEngine>(
    ctx: &Ctx<'_, E>,
    lock: &mut Option<TrainLock>,
    summary: &mut Summary,
) -> Result<(), Failure> {
    let req = ctx.req;
    let cfg = &req.config;
    let say = |m: String| req.events.step(ctx.run_id, &escape(&m));
    let trust = Arc::new(match &cfg.policy.trust {
        Some(p) => TrustStore::from_file(p)?,
        None => TrustStore::default(),
    });
    let reg = Registry::new(RegistryOptions {
        insecure: cfg.registry.insecure.clone(),
        credentials: req.credentials.clone(),
        token_realms: cfg.registry.token_realms.clone(),
        ca_certs: cfg.tls.certs.clone(),
        ..Default::default()
    });
    let opts = img::PullOptions {
        reporter: req.events.transfers(),
        limits: cfg.limits.read_limits(),
        cancel: ctx.cancel,
    };

    let t = Instant::now();
    say(format!("pulling {}", req.reference));
    let pulled = img::pull_train(&reg, &req.reference, ctx.work.path(), opts)
        .await
        .map_err(image)?;
    summary.seconds.pull = t.elapsed().as_secs_f64();
    summary.digest_in = Some(pulled.pinned.digest.clone());
    say(format!("pinned {}", pulled.pinned.reference));
    req.events.stage(ctx.run_id, crate::events::Stage::Pulled);

    let train = TrainDir::open(&pulled.dir).map_err(protocol)?;
    summary.format = Some(train.format().to_string());
    let report = train.verify(&TrustStore::default()).map_err(protocol)?;
    if report.identity.is_empty() {
        let failed: Vec<String> = report
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.detail.clone())
            .collect();
        return Err(rejected(failed.join("; ")));
    }
    summary.train_id = Some(report.train_id.clone());
    summary.identity = Some(report.identity.clone());

    if let Some(log) = ctx.audit {
        // Held from the replay check until the decision is appended: of two runs of one
        // train, one gets past here; runs of other trains are not held up.
        *lock = Some(log.lock_train(&report.identity)?.ok_or_else(|| {
            rejected("another run of this train is in progress at this station; a train runs once per station")
        })?);
        let records = log.verify(req.key.public())?;
        if let Some(prev) = audit::pushed_before(&records, &report.identity, &pulled.pinned.digest)
        {
            return Err(rejected(format!(
                "this station already ran this exact train state ({}) at {} (audit record {}, pushed to {}); a replayed state is not run twice, whatever its image encoding",
                report.identity,
                prev.time,
                prev.seq,
                prev.pushed_to.as_deref().unwrap_or("?")
            )));
        }
    }
    // The image checks, as `train verify` runs them: the signed master against the label,
    // lineage, and the base layers not proven to be the master's (PHT-meDIC's `:base` adds one).
    let master = policy::master(&reg, cfg, &pulled, &train, ctx.work.path(), opts).await?;
    policy::creator(cfg, &report)?;

    let t = Instant::now();
    let pre = protocol_step(Step::Pre, &pulled.dir, req, &trust).await?;
    summary.seconds.pre_run = t.elapsed().as_secs_f64();
    say(format!(
        "pre-run: {} train {} verified and decrypted for stop {} ({} files)",
        pre.format,
        pre.train_id,
        pre.index,
        pre.train_files + pre.result_files
    ));
    if ctx.cancel.is_cancelled() {
        return Err(Failure::Interrupted(INTERRUPTED.into()));
    }
    let launch = policy::launch(&pulled, &train, &master)?;
    req.events.stage(ctx.run_id, crate::events::Stage::Running);

    let t = Instant::now();
    let exit = run_train(ctx, &pulled, &launch, summary).await;
    summary.seconds.run = t.elapsed().as_secs_f64();
    summary.exit_code = Some(exit?);

    let t = Instant::now();
    protocol_step(Step::Post, &pulled.dir, req, &trust).await?;
    summary.seconds.post_run = t.elapsed().as_secs_f64();
    say("post-run: results hashed, signed and re-encrypted for every participant".into());

    let target = match &req.push {
        Some(p) => p.clone(),
        None => req
            .reference
            .with_tag(&img::next_stop_tag(&report.route, pre.index)),
    };
    let t = Instant::now();
    say(format!("pushing {target}"));
    let rep = img::push_next(
        &reg,
        &pulled,
        &pulled.dir,
        &target,
        &[(img::LABEL_TRAIN_ID, &report.train_id)],
        req.events.transfers(),
        ctx.cancel,
    )
    .await
    .map_err(image)?;
    summary.seconds.push = t.elapsed().as_secs_f64();
    summary.digest_out = Some(rep.digest.clone());
    summary.pushed_to = Some(format!("{target}@{}", rep.digest));
    summary.push = Some(rep);
    Ok(())
}

/// Records `started` and runs the train on the engine (which removes what it made, its disk
/// included); a train that filled its disk failed.
async fn run_train<E: TrainEngine>(
    ctx: &Ctx<'_, E>,
    pulled: &img::PulledTrain,
    launch: &Launch,
    summary: &mut Summary,
) -> Result<i64, Failure> {
    let (req, limits) = (ctx.req, &ctx.req.config.limits);
    let workdir = ctx.work.path().display().to_string();
    if let Some(log) = ctx.audit {
        let mut r = audit::record(&req.station, audit::RecordKind::Started);
        r.run_id = Some(ctx.run_id.to_string());
        r.train_id = summary.train_id.clone();
        r.identity = summary.identity.clone();
        r.digest_in = summary.digest_in.clone();
        r.workdir = Some(workdir.clone());
        log.append(&req.key, r)?;
    }
    let labels = vec![
        (eng::LABEL_RUN.to_string(), ctx.run_id.to_string()),
        (eng::LABEL_STATION.to_string(), req.station.clone()),
        (eng::LABEL_HOST.to_string(), crate::sweep::host()),
        (eng::LABEL_WORKDIR.to_string(), workdir),
        (
            eng::LABEL_TRAIN.to_string(),
            pulled.pinned.reference.to_string(),
        ),
    ];
    let job = Job {
        limits,
        station: &req.station,
        data: &req.data,
        train_dir: &pulled.dir,
        launch,
        labels,
        run_id: ctx.run_id,
        events: req.events.clone(),
    };
    let code = run_job(
        ctx.engine,
        &job,
        ctx.work.path(),
        ctx.cancel,
        &mut summary.disk,
    )
    .await?;
    if summary.disk.as_ref().is_some_and(|d| d.full) {
        return Err(Failure::TrainFailed(format!(
            "it filled its disk (limits.disk_mib = {} MiB): writes past it failed, so its results may be cut short",
            limits.disk_mib
        )));
    }
    Ok(code)
}

#[derive(Clone, Copy)]
enum Step {
    Pre,
    Post,
}

/// Pre-run or post-run of the train directory `dir` for this station, on a blocking thread
/// that is always waited for.
async fn protocol_step(
    step: Step,
    dir: &Path,
    req: &RunRequest,
    trust: &Arc<TrustStore>,
) -> Result<train_lib::StepReport, Failure> {
    let (dir, station, key, trust) = (
        dir.to_path_buf(),
        req.station.clone(),
        req.key.clone(),
        trust.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let st = Station {
            id: &station,
            key: &key,
            trust: &trust,
        };
        let train = TrainDir::open(&dir)?;
        match step {
            Step::Pre => train.pre_run(&st),
            Step::Post => train.post_run(&st),
        }
    })
    .await
    .map_err(|e| io("the protocol step")(std::io::Error::other(e)))?
    .map_err(protocol)
}
