//! `station run`: pull → policy → pre-run → isolated run → results out → post-run → push.
//! On any failure nothing is pushed, the pulled train is left as it was in its registry, the
//! container and its volume are removed and the private working directory (the only place
//! decrypted bytes ever are, outside the container) is deleted.

use crate::audit;
use crate::config::Limits;
use crate::config::StationConfig;
use crate::engine::{ContainerEngine, ContainerSpec, Engine, Exit};
use crate::results;
use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use train_lib::image::{self, ImageRef, Registry, RegistryOptions};
use train_lib::keys::{PrivateKey, TrustStore};
use train_lib::{Station, TrainDir};

/// The train was refused: a policy, protocol or image check failed (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("rejected: {0}")]
pub struct Rejected(pub String);

/// The train ran and failed: non-zero exit, timeout, or unusable results (exit code 4).
#[derive(Debug, thiserror::Error)]
#[error("the train failed: {0}")]
pub struct TrainFailed(pub String);

/// What `station run` needs.
pub struct RunRequest {
    pub reference: ImageRef,
    pub station: String,
    pub key: std::sync::Arc<PrivateKey>,
    pub push: Option<ImageRef>,
    pub data: Vec<PathBuf>,
    pub config: StationConfig,
    pub quiet: bool,
}

/// The `--json` summary.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub station: String,
    pub train_id: Option<String>,
    pub format: Option<String>,
    pub digest_in: Option<String>,
    pub digest_out: Option<String>,
    pub pushed_to: Option<String>,
    pub exit_code: Option<i64>,
    pub decision: String,
    pub reason: Option<String>,
    pub seconds: Timings,
    pub push: Option<image::PushReport>,
}

#[derive(Debug, Default, Serialize)]
pub struct Timings {
    pub pull: f64,
    pub pre_run: f64,
    pub run: f64,
    pub post_run: f64,
    pub push: f64,
    pub total: f64,
}

fn rejected(e: impl std::fmt::Display) -> anyhow::Error {
    Rejected(e.to_string()).into()
}

fn protocol(e: train_lib::ProtocolError) -> anyhow::Error {
    if e.rejection().is_some() {
        rejected(e)
    } else {
        e.into()
    }
}

fn image_err(e: image::ImageError) -> anyhow::Error {
    match e {
        image::ImageError::Smuggling { .. }
        | image::ImageError::Lineage(_)
        | image::ImageError::Digest { .. } => rejected(e),
        e => e.into(),
    }
}

fn say(quiet: bool, msg: std::fmt::Arguments<'_>) {
    if !quiet {
        let _ = writeln!(std::io::stderr(), "{msg}");
    }
}

/// Runs the whole station step; the summary is filled in as far as it got, also on failure.
pub async fn run(req: RunRequest, summary: &mut Summary) -> Result<()> {
    let t0 = Instant::now();
    summary.station = req.station.clone();
    let out = run_inner(&req, summary).await;
    summary.seconds.total = t0.elapsed().as_secs_f64();
    let (decision, reason) = match &out {
        Ok(()) => ("pushed", None),
        Err(e) if e.downcast_ref::<Rejected>().is_some() => ("rejected", Some(format!("{e:#}"))),
        Err(e) if e.downcast_ref::<TrainFailed>().is_some() => {
            ("train-failed", Some(format!("{e:#}")))
        }
        Err(e) => ("error", Some(format!("{e:#}"))),
    };
    summary.decision = decision.into();
    summary.reason = reason.clone();
    if let Some(log) = &req.config.audit.log {
        let mut r = audit::record(&req.station);
        r.train_id = summary.train_id.clone();
        r.digest_in = summary.digest_in.clone();
        r.digest_out = summary.digest_out.clone();
        r.pushed_to = summary.pushed_to.clone();
        r.decision = decision.into();
        r.exit_code = summary.exit_code;
        r.result_digest = summary.push.as_ref().and_then(|p| p.layer.clone());
        r.reason = reason;
        audit::append(log, &req.key, r)
            .with_context(|| format!("appending to the audit log {}", log.display()))?;
    }
    out
}

async fn run_inner(req: &RunRequest, summary: &mut Summary) -> Result<()> {
    let q = req.quiet;
    let cfg = &req.config;
    let trust = std::sync::Arc::new(match &cfg.policy.trust {
        Some(p) => TrustStore::from_file(p)?,
        None => TrustStore::default(),
    });
    let reg = Registry::new(RegistryOptions {
        insecure: cfg.registry.insecure.clone(),
    });
    // Private working directory (0700): the decrypted train exists only here and in the
    // container's volume; dropping it deletes everything.
    let work = tempfile::Builder::new()
        .prefix("pht-station-")
        .tempdir()
        .context("creating the private working directory")?;
    let bars: Box<dyn image::Reporter> = if q {
        Box::new(image::Silent)
    } else {
        Box::new(image::Bars::default())
    };

    let t = Instant::now();
    say(q, format_args!("pulling {}", req.reference));
    let pulled = image::pull_train(&reg, &req.reference, work.path(), bars.as_ref())
        .await
        .map_err(image_err)?;
    summary.seconds.pull = t.elapsed().as_secs_f64();
    summary.digest_in = Some(pulled.pinned.digest.clone());
    say(q, format_args!("pinned {}", pulled.pinned.reference));

    if let Some(log) = &cfg.audit.log {
        if let Some(prev) = audit::read_chain(log)?.into_iter().find(|r| {
            r.decision == "pushed" && r.digest_in.as_deref() == Some(pulled.pinned.digest.as_str())
        }) {
            return Err(rejected(format!(
                "this station already ran this exact train state ({}) at {} (audit record {}); a replayed state is not run twice",
                pulled.pinned.digest, prev.time, prev.seq
            )));
        }
    }

    let train = TrainDir::open(&pulled.dir).map_err(protocol)?;
    summary.format = Some(train.format().to_string());
    let before = train.verify(&TrustStore::default()).map_err(protocol)?;
    summary.train_id = Some(before.train_id.clone());
    let master = check_policy(&reg, cfg, &pulled, &train).await?;
    // Base layers not proven to be the master's (PHT-meDIC's `:base` adds one; an unlabelled
    // image has no known master) are read too: none may hold content under the train paths.
    let proven = master.as_ref().map_or(0, |(m, _)| m.manifest.layers.len());
    image::scan_base_layers(&reg, &pulled, proven, work.path(), bars.as_ref())
        .await
        .map_err(image_err)?;

    let t = Instant::now();
    let pre = protocol_step(Step::Pre, &pulled.dir, req, &trust).await?;
    summary.seconds.pre_run = t.elapsed().as_secs_f64();
    say(
        q,
        format_args!(
            "pre-run: {} train {} verified and decrypted for stop {} ({} files)",
            pre.format,
            pre.train_id,
            pre.index,
            pre.train_files + pre.result_files
        ),
    );

    let launch = launch(&pulled, &train, master)?;
    let t = Instant::now();
    let engine = Engine::connect()?;
    let job = Job {
        limits: &cfg.limits,
        station: &req.station,
        data: &req.data,
        quiet: q,
        train_dir: &pulled.dir,
        train_ref: pulled.pinned.reference.to_string(),
        launch: &launch,
    };
    let exit = run_container(&engine, &job, work.path()).await;
    summary.seconds.run = t.elapsed().as_secs_f64();
    let exit = exit?;
    summary.exit_code = Some(exit);

    let t = Instant::now();
    let post = protocol_step(Step::Post, &pulled.dir, req, &trust).await?;
    summary.seconds.post_run = t.elapsed().as_secs_f64();
    say(
        q,
        format_args!("post-run: results hashed, signed and re-encrypted for every participant"),
    );

    let target = match &req.push {
        Some(p) => p.clone(),
        None => {
            let tag = before
                .route
                .get(post.index + 1)
                .map_or_else(|| "done".to_string(), |s| tag_for(s));
            req.reference.with_tag(&tag)
        }
    };
    let t = Instant::now();
    say(q, format_args!("pushing {target}"));
    let rep = image::push_next(
        &reg,
        &pulled,
        &pulled.dir,
        &target,
        &[(image::LABEL_TRAIN_ID, &before.train_id)],
        bars.as_ref(),
    )
    .await?;
    summary.seconds.push = t.elapsed().as_secs_f64();
    summary.digest_out = Some(rep.digest.clone());
    summary.pushed_to = Some(format!("{target}@{}", rep.digest));
    summary.push = Some(rep);
    Ok(())
}

#[derive(Clone, Copy)]
enum Step {
    Pre,
    Post,
}

/// Pre-run or post-run of the train directory `dir` for this station, on a blocking thread.
async fn protocol_step(
    step: Step,
    dir: &Path,
    req: &RunRequest,
    trust: &std::sync::Arc<TrustStore>,
) -> Result<train_lib::StepReport> {
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
    .expect("protocol step does not panic")
    .map_err(protocol)
}

/// A tag from a station id: Docker tags allow `[A-Za-z0-9_.-]`, at most 128 characters.
fn tag_for(station: &str) -> String {
    let t: String = station
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    if t.starts_with(['.', '-']) {
        format!("s{t}")
    } else {
        t
    }
}

/// What the container runs.
struct Launch {
    image: String,
    registry: String,
    entrypoint: Option<Vec<String>>,
    cmd: Vec<String>,
}

/// The image's configuration (entrypoint, command, environment, user) is outside every
/// signature, so when the master is known the container runs the master image itself, with its
/// interpreter and the train's entrypoint file: the one the creator signed (native), or the
/// image's CMD checked to name one of the train's files (legacy).
fn launch(
    pulled: &image::PulledTrain,
    train: &TrainDir,
    master: Option<(image::Pinned, image::ImageConfig)>,
) -> Result<Launch> {
    let file = if train.format() == train_lib::Format::Native {
        train_lib::native::steps::entrypoint(train.path()).map_err(protocol)?
    } else {
        let cmd = pulled.config.cmd();
        match cmd.as_slice() {
            [one] => one
                .strip_prefix("/opt/pht_train/")
                .map(String::from)
                .ok_or_else(|| {
                    rejected(format!(
                        "the image's CMD `{one}` is not a file under /opt/pht_train"
                    ))
                })?,
            _ => {
                return Err(rejected(format!(
                    "the image's CMD {cmd:?} must be exactly one train file under /opt/pht_train"
                )))
            }
        }
    };
    train_lib::tree::check_rel_path(&file).map_err(|e| rejected(format!("entrypoint: {e}")))?;
    if !train.path().join("pht_train").join(&file).is_file() {
        return Err(rejected(format!(
            "the entrypoint pht_train/{file} is not one of the train's files"
        )));
    }
    let cmd = vec![format!("/opt/pht_train/{file}")];
    Ok(match master {
        Some((pinned, mcfg)) => Launch {
            image: pinned.reference.to_string(),
            registry: pinned.reference.registry().to_string(),
            entrypoint: Some(mcfg.entrypoint()),
            cmd,
        },
        None => Launch {
            image: pulled.pinned.reference.to_string(),
            registry: pulled.pinned.reference.registry().to_string(),
            entrypoint: None,
            cmd,
        },
    })
}

async fn check_policy(
    reg: &Registry,
    cfg: &StationConfig,
    pulled: &image::PulledTrain,
    train: &TrainDir,
) -> Result<Option<(image::Pinned, image::ImageConfig)>> {
    let label = pulled.config.label(image::LABEL_MASTER).map(String::from);
    let repo = pulled
        .config
        .label(image::LABEL_MASTER_REPO)
        .map(String::from);
    if train.format() == train_lib::Format::Native {
        let signed = train_lib::native::steps::master_image(train.path()).map_err(protocol)?;
        if signed.is_some() && signed != label {
            return Err(rejected(format!(
                "the image is labelled as built on {label:?} but its creator signed master image {signed:?}"
            )));
        }
    }
    let master = match (label, repo) {
        (Some(digest), Some(repo)) => {
            if !cfg.master_allowed(&repo, &digest) {
                return Err(rejected(format!(
                    "master image {repo}@{digest} is not allowed by this station's policy (policy.allowed_masters)"
                )));
            }
            let master: ImageRef = format!("{repo}@{digest}").parse().map_err(image_err)?;
            let pinned = reg.resolve(&master).await.map_err(image_err)?;
            let mcfg = reg.config(&pinned).await.map_err(image_err)?;
            image::lineage(pulled, &pinned, &mcfg).map_err(image_err)?;
            Some((pinned, mcfg))
        }
        _ if !cfg.policy.allowed_masters.is_empty() => {
            return Err(rejected(
                "the image does not say which master image it is built on (labels org.pht.master.digest and org.pht.master.repository), and this station allows only listed masters",
            ));
        }
        _ => None,
    };
    if !cfg.policy.allowed_creators.is_empty() {
        let creator = creator_id(train.path())?;
        if !cfg.policy.allowed_creators.contains(&creator) {
            return Err(rejected(format!(
                "creator `{creator}` is not allowed by this station's policy (policy.allowed_creators)"
            )));
        }
    }
    Ok(master)
}

fn creator_id(dir: &Path) -> Result<String> {
    let raw = std::fs::read(dir.join("train_config.json"))?;
    let v: serde_json::Value = serde_json::from_slice(&raw)?;
    let id = v
        .pointer("/train/creator/id")
        .or_else(|| v.pointer("/creator/id"))
        .ok_or_else(|| anyhow!("the configuration names no creator"))?;
    Ok(match id {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// One container run: everything [`run_container`] needs.
struct Job<'a> {
    limits: &'a Limits,
    station: &'a str,
    data: &'a [PathBuf],
    quiet: bool,
    /// The decrypted train directory.
    train_dir: &'a Path,
    train_ref: String,
    launch: &'a Launch,
}

/// Runs the container and replaces `pht_results` in the train directory with what it left
/// there. The container is removed on every path out.
async fn run_container<E: ContainerEngine>(engine: &E, job: &Job<'_>, work: &Path) -> Result<i64> {
    let (limits, launch) = (job.limits, job.launch);
    let (uid, gid) = limits
        .user
        .split_once(':')
        .map(|(u, g)| {
            (
                u.parse::<u64>().unwrap_or(65534),
                g.parse::<u64>().unwrap_or(65534),
            )
        })
        .unwrap_or((65534, 65534));
    let mut data = Vec::new();
    for p in job.data {
        let abs = p
            .canonicalize()
            .with_context(|| format!("--data {}: no such file or directory", p.display()))?;
        let name = abs
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow!("--data {}: needs a UTF-8 file name", p.display()))?
            .to_string();
        if data.iter().any(|(n, _)| *n == name) {
            anyhow::bail!(
                "--data: two paths named `{name}`; each is mounted at /opt/train_data/<name>"
            );
        }
        data.push((name, abs));
    }
    engine.ensure_image(&launch.image, &launch.registry).await?;
    let spec = ContainerSpec {
        image: launch.image.clone(),
        train: job.train_ref.clone(),
        user: limits.user.clone(),
        entrypoint: launch.entrypoint.clone(),
        cmd: launch.cmd.clone(),
        memory_bytes: (limits.memory_mib * 1024 * 1024) as i64,
        nano_cpus: (limits.cpus * 1e9) as i64,
        pids: limits.pids,
        env: vec![
            "TRAIN_DATA_PATH=/opt/train_data".into(),
            format!("STATION_ID={}", job.station),
        ],
        data,
    };
    let id = engine.create(&spec).await?;
    let outcome = async {
        let results_dir = job.train_dir.join("pht_results");
        std::fs::create_dir_all(&results_dir)?;
        let (sink, rx) = image::ChunkSender::channel(1 << 20, 8);
        let dir = job.train_dir.to_path_buf();
        let producer = tokio::task::spawn_blocking(move || -> Result<()> {
            let mut b = tar::Builder::new(sink);
            image::append_tree(
                &mut b,
                &dir,
                ".",
                &["pht_results"],
                image::Owner { uid, gid },
            )?;
            b.into_inner()?.flush()?;
            Ok(())
        });
        let up = engine.upload(&id, "/opt", rx).await;
        producer.await.expect("tar producer does not panic")?;
        up?;
        engine.start(&id).await?;
        say(
            job.quiet,
            format_args!(
                "running (network none, read-only root, user {}, limit {} s)",
                limits.user, limits.timeout_secs
            ),
        );
        let exit = engine
            .wait(
                &id,
                Duration::from_secs(limits.timeout_secs),
                limits.log_bytes,
            )
            .await?;
        let code = match exit {
            Exit::TimedOut => {
                return Err(TrainFailed(format!(
                "no exit within the wall-clock limit of {} s (limits.timeout_secs); it was killed",
                limits.timeout_secs
            ))
                .into())
            }
            Exit::Code(0) => 0,
            Exit::Code(c) => return Err(TrainFailed(format!("it exited with code {c}")).into()),
        };
        let tar_path = work.join("results.tar");
        engine
            .download(&id, "/opt/pht_results", &tar_path, limits.results_bytes)
            .await
            .map_err(|e| TrainFailed(format!("{e:#}")))?;
        let fresh = work.join("results.new");
        let f = std::fs::File::open(&tar_path)?;
        results::extract(std::io::BufReader::new(f), &fresh)
            .map_err(|e| TrainFailed(format!("{e:#}")))?;
        std::fs::remove_file(&tar_path)?;
        std::fs::remove_dir_all(&results_dir)?;
        std::fs::rename(&fresh, &results_dir)?;
        Ok::<i64, anyhow::Error>(code)
    }
    .await;
    if let Err(e) = engine.remove(&id).await {
        say(job.quiet, format_args!("warning: {e:#}"));
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::container_body;
    use crate::fake::Fake;

    fn results_tar(extra: Option<(tar::EntryType, &str)>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        b.append_data(&mut h, "pht_results/", std::io::empty())
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        b.append_data(&mut h, "pht_results/new.csv", &b"1,2"[..])
            .unwrap();
        if let Some((kind, path)) = extra {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_link_name("/etc/shadow").unwrap();
            b.append_data(&mut h, path, std::io::empty()).unwrap();
        }
        b.into_inner().unwrap()
    }

    struct Setup {
        dir: tempfile::TempDir,
        work: tempfile::TempDir,
        limits: Limits,
        launch: Launch,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pht_train")).unwrap();
        std::fs::create_dir_all(dir.path().join("pht_results")).unwrap();
        std::fs::write(dir.path().join("pht_train/run.sh"), b"#!/bin/sh\n").unwrap();
        std::fs::write(dir.path().join("pht_results/old.csv"), b"old").unwrap();
        Setup {
            dir,
            work: tempfile::tempdir().unwrap(),
            limits: Limits::default(),
            launch: Launch {
                image: "r/master@sha256:00".into(),
                registry: "r".into(),
                entrypoint: Some(vec!["/bin/sh".into()]),
                cmd: vec!["/opt/pht_train/run.sh".into()],
            },
        }
    }

    async fn go(s: &Setup, fake: &Fake) -> Result<i64> {
        let job = Job {
            limits: &s.limits,
            station: "st-1",
            data: &[],
            quiet: true,
            train_dir: s.dir.path(),
            train_ref: "r/train@sha256:11".into(),
            launch: &s.launch,
        };
        run_container(fake, &job, s.work.path()).await
    }

    #[tokio::test]
    async fn a_clean_exit_replaces_the_results_and_removes_the_container() {
        let s = setup();
        let fake = Fake::new(Exit::Code(0), results_tar(None));
        assert_eq!(go(&s, &fake).await.unwrap(), 0);
        assert_eq!(
            fake.calls(),
            [
                "ensure_image",
                "create",
                "upload",
                "start",
                "wait",
                "download",
                "remove"
            ]
        );
        assert!(!s.dir.path().join("pht_results/old.csv").exists());
        assert_eq!(
            std::fs::read(s.dir.path().join("pht_results/new.csv")).unwrap(),
            b"1,2"
        );
        // What went in: the train root-owned, the results directory owned by the run's user.
        let up = fake.uploaded.lock().unwrap().clone();
        let mut a = tar::Archive::new(&up[..]);
        let mut owners = std::collections::BTreeMap::new();
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let key = raw
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            owners.insert(key, e.header().uid().unwrap());
        }
        assert_eq!(owners["pht_results"], 65534, "{owners:?}");
        assert_eq!(owners["pht_results/old.csv"], 65534);
        assert_eq!(owners["pht_train/run.sh"], 0);
        assert_eq!(owners["pht_train"], 0);
        let spec = fake.spec.lock().unwrap().clone().unwrap();
        assert_eq!(spec.cmd, ["/opt/pht_train/run.sh"]);
        assert_eq!(spec.image, "r/master@sha256:00");
    }

    #[tokio::test]
    async fn failures_remove_the_container_and_keep_the_results_untouched() {
        for (exit, tar, why) in [
            (Exit::Code(3), results_tar(None), "exited with code 3"),
            (Exit::TimedOut, results_tar(None), "wall-clock limit"),
            (
                Exit::Code(0),
                results_tar(Some((tar::EntryType::Symlink, "pht_results/leak"))),
                "only files and directories",
            ),
            (
                Exit::Code(0),
                results_tar(Some((tar::EntryType::Link, "pht_results/hard"))),
                "only files and directories",
            ),
        ] {
            let s = setup();
            let fake = Fake::new(exit, tar);
            let e = go(&s, &fake).await.unwrap_err();
            assert!(e.downcast_ref::<TrainFailed>().is_some(), "{e:#}");
            assert!(format!("{e:#}").contains(why), "{e:#}");
            assert_eq!(fake.calls().last(), Some(&"remove"));
            assert_eq!(fake.calls().iter().filter(|c| **c == "remove").count(), 1);
            assert_eq!(
                std::fs::read(s.dir.path().join("pht_results/old.csv")).unwrap(),
                b"old"
            );
        }
    }

    #[tokio::test]
    async fn results_over_the_limit_are_refused() {
        let mut s = setup();
        s.limits.results_bytes = 100;
        let fake = Fake::new(Exit::Code(0), results_tar(None));
        let e = go(&s, &fake).await.unwrap_err();
        assert!(format!("{e:#}").contains("results limit"), "{e:#}");
        assert_eq!(fake.calls().last(), Some(&"remove"));
    }

    #[test]
    fn the_container_is_hardened() {
        let spec = ContainerSpec {
            image: "r/m@sha256:00".into(),
            train: "r/t@sha256:11".into(),
            user: "65534:65534".into(),
            entrypoint: Some(vec!["/bin/sh".into()]),
            cmd: vec!["/opt/pht_train/run.sh".into()],
            memory_bytes: 1 << 30,
            nano_cpus: 1_000_000_000,
            pids: 64,
            data: vec![("cohort".into(), "/srv/cohort".into())],
            env: vec![],
        };
        let b = container_body(&spec);
        let h = b.host_config.clone().unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(b.network_disabled, Some(true));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(h.security_opt, Some(vec!["no-new-privileges".to_string()]));
        assert_eq!(b.user.as_deref(), Some("65534:65534"));
        assert_eq!(h.memory, Some(1 << 30));
        assert_eq!(
            h.memory_swap,
            Some(1 << 30),
            "no swap beyond the memory limit"
        );
        assert_eq!(h.pids_limit, Some(64));
        assert!(h.privileged.is_none() || h.privileged == Some(false));
        let mounts = h.mounts.unwrap();
        let opt = mounts
            .iter()
            .find(|m| m.target.as_deref() == Some("/opt"))
            .unwrap();
        assert_eq!(opt.volume_options.as_ref().unwrap().no_copy, Some(true));
        assert!(
            opt.source.is_none(),
            "an anonymous volume, removed with the container"
        );
        let data = mounts
            .iter()
            .find(|m| m.target.as_deref() == Some("/opt/train_data/cohort"))
            .unwrap();
        assert_eq!(data.read_only, Some(true));
        assert!(h.tmpfs.unwrap()["/tmp"].contains("noexec"));
    }

    #[test]
    fn tags_are_docker_safe() {
        assert_eq!(tag_for("hospital-a"), "hospital-a");
        assert_eq!(tag_for("2"), "2");
        assert_eq!(tag_for("a/b:c"), "a_b_c");
        assert_eq!(tag_for("-x"), "s-x");
    }
}
