//! The container step: the train runs isolated on the verified master image, with the
//! decrypted train copied into its `/opt` volume through the engine's API, and what it leaves in
//! `/opt/pht_results` taken out through the hardened reader. The container is removed on every
//! path out, also when the job is cancelled (the engine call in flight is waited for first).

use super::outcome::{io, Failure, INTERRUPTED};
use super::policy::Launch;
use crate::config::Limits;
use crate::engine::{ContainerEngine, ContainerSpec, Exit, OutputSink};
use crate::events::Events;
use crate::output::TrainOutput;
use crate::results;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use train_lib::layout::{self, MOUNT, RESULTS_DIR};

/// One container run: everything [`run_container`] needs.
pub struct Job<'a> {
    /// The limits it runs within.
    pub limits: &'a Limits,
    /// The station id (`STATION_ID` in the container).
    pub station: &'a str,
    /// Local data, mounted read-only.
    pub data: &'a [PathBuf],
    /// The decrypted train directory.
    pub train_dir: &'a Path,
    /// What runs.
    pub launch: &'a Launch,
    /// The run's `/opt` volume.
    pub volume: &'a str,
    /// The labels of the container (run, station, host, work directory, train).
    pub labels: Vec<(String, String)>,
    /// The run's id.
    pub run_id: &'a str,
    /// Where its messages and the train's output go.
    pub events: Arc<dyn Events>,
}

/// `--data` paths as (name, absolute path); names must be unique.
fn data_mounts(data: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, Failure> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for p in data {
        let abs = p.canonicalize().map_err(|e| {
            Failure::Input(format!(
                "--data {}: no such file or directory ({e})",
                p.display()
            ))
        })?;
        let name = abs
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                Failure::Input(format!("--data {}: needs a UTF-8 file name", p.display()))
            })?
            .to_string();
        if out.iter().any(|(n, _)| *n == name) {
            return Err(Failure::Input(format!(
                "--data: two paths named `{name}`; each is mounted at /opt/train_data/<name>"
            )));
        }
        out.push((name, abs));
    }
    Ok(out)
}

/// The train's output, escaped and capped, handed to `events` line by line.
fn output_sink(job: &Job<'_>) -> (OutputSink, impl FnOnce()) {
    let (events, run_id) = (job.events.clone(), job.run_id.to_string());
    let out = Arc::new(Mutex::new(TrainOutput::new(
        job.limits.log_bytes,
        move |line: &str| events.train_output(&run_id, line),
    )));
    let o = out.clone();
    let sink: OutputSink = Arc::new(move |b: &[u8]| o.lock().expect("not poisoned").push(b));
    (sink, move || out.lock().expect("not poisoned").finish())
}

/// Runs the container and replaces `pht_results` in the train directory with what it left
/// there; returns its exit code (0). The container is removed on every path out.
pub async fn run_container<E: ContainerEngine>(
    engine: &E,
    job: &Job<'_>,
    work: &Path,
    cancel: &CancellationToken,
) -> Result<i64, Failure> {
    let (limits, launch) = (job.limits, job.launch);
    let data = data_mounts(job.data)?;
    tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(Failure::Interrupted(INTERRUPTED.into())),
        r = engine.ensure_image(&launch.image, &launch.registry) => r?,
    }
    let spec = ContainerSpec {
        image: launch.image.clone(),
        user: limits.user.to_string(),
        entrypoint: launch.entrypoint.clone(),
        cmd: launch.cmd.clone(),
        memory_bytes: (limits.memory_mib * 1024 * 1024) as i64,
        nano_cpus: (limits.cpus * 1e9) as i64,
        pids: limits.pids,
        env: vec![
            format!("TRAIN_DATA_PATH={MOUNT}/train_data"),
            format!("STATION_ID={}", job.station),
        ],
        data,
        volume: job.volume.to_string(),
        labels: job.labels.clone(),
    };
    // Created whatever the token says meanwhile (a create in flight would otherwise leave a
    // container behind), then removed below on every path.
    let id = engine.create(&spec).await?;
    let outcome = in_container(engine, job, &id, work, cancel).await;
    if let Err(e) = engine.remove(&id).await {
        job.events.warn(job.run_id, &format!("{e}"));
    }
    outcome
}

/// Upload, start, wait, take the results out: everything that happens to a created container.
async fn in_container<E: ContainerEngine>(
    engine: &E,
    job: &Job<'_>,
    id: &str,
    work: &Path,
    cancel: &CancellationToken,
) -> Result<i64, Failure> {
    let limits = job.limits;
    if cancel.is_cancelled() {
        return Err(Failure::Interrupted(INTERRUPTED.into()));
    }
    let results_dir = job.train_dir.join(RESULTS_DIR);
    train_lib::tree::private::create_dir_all(&results_dir)
        .map_err(io(format!("creating {}", results_dir.display())))?;
    let (sink, rx) = train_image::ChunkSender::channel(1 << 20, 8);
    let dir = job.train_dir.to_path_buf();
    let owner = train_image::Owner {
        uid: limits.user.uid.into(),
        gid: limits.user.gid.into(),
    };
    let producer = tokio::task::spawn_blocking(move || -> Result<(), train_image::ImageError> {
        let mut b = tar::Builder::new(sink);
        train_image::append_tree(&mut b, &dir, ".", &[RESULTS_DIR], owner)?;
        let mut w = b
            .into_inner()
            .map_err(|cause| train_image::ImageError::Io {
                path: dir.clone(),
                cause,
            })?;
        w.flush()
            .map_err(|cause| train_image::ImageError::Io { path: dir, cause })
    });
    let up = tokio::select! {
        r = engine.upload(id, MOUNT, rx) => r.map(|()| true),
        () = cancel.cancelled() => Ok(false),
    };
    // The producer ends once the upload stops reading; it is always waited for.
    let produced = producer.await.expect("tar producer does not panic");
    if !up? {
        return Err(Failure::Interrupted(INTERRUPTED.into()));
    }
    produced.map_err(Failure::Image)?;
    engine.start(id).await?;
    job.events.step(
        job.run_id,
        &format!(
            "running (network none, read-only root, user {}, limit {} s, disk {} MiB)",
            limits.user, limits.timeout_secs, limits.disk_mib
        ),
    );
    let (output, finish) = output_sink(job);
    let exit = engine
        .wait(id, Duration::from_secs(limits.timeout_secs), output, cancel)
        .await;
    finish();
    match exit? {
        Exit::TimedOut => {
            return Err(Failure::TrainFailed(format!(
                "no exit within the wall-clock limit of {} s (limits.timeout_secs); it was killed",
                limits.timeout_secs
            )))
        }
        Exit::Cancelled => return Err(Failure::Interrupted(INTERRUPTED.into())),
        Exit::Code(0) => {}
        Exit::Code(c) => return Err(Failure::TrainFailed(format!("it exited with code {c}"))),
    }
    let tar_path = work.join("results.tar");
    let results_path = layout::results_in_container();
    tokio::select! {
        r = engine.download(id, &results_path, &tar_path, limits.results_bytes) => {
            r.map_err(|e| Failure::TrainFailed(e.to_string()))?;
        }
        () = cancel.cancelled() => return Err(Failure::Interrupted(INTERRUPTED.into())),
    }
    let fresh = work.join("results.new");
    let f = std::fs::File::open(&tar_path).map_err(io("reading the results archive"))?;
    let caps = train_image::ReadLimits {
        bytes: limits.results_bytes,
        entries: limits.train_entries,
    };
    results::extract(std::io::BufReader::new(f), &fresh, caps)
        .map_err(|e| Failure::TrainFailed(e.to_string()))?;
    std::fs::remove_file(&tar_path).map_err(io("removing the results archive"))?;
    std::fs::remove_dir_all(&results_dir).map_err(io("replacing the results"))?;
    std::fs::rename(&fresh, &results_dir).map_err(io("replacing the results"))?;
    Ok(0)
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

    async fn go(s: &Setup, fake: &Fake) -> Result<i64, Failure> {
        go_with(s, fake, &CancellationToken::new()).await
    }

    async fn go_with(s: &Setup, fake: &Fake, cancel: &CancellationToken) -> Result<i64, Failure> {
        let job = Job {
            limits: &s.limits,
            station: "st-1",
            data: &[],
            train_dir: s.dir.path(),
            launch: &s.launch,
            volume: "pht-run",
            labels: vec![("org.pht.station.run".into(), "run".into())],
            run_id: "run",
            events: Arc::new(crate::events::Tracing),
        };
        run_container(fake, &job, s.work.path(), cancel).await
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
            assert!(matches!(e, Failure::TrainFailed(_)), "{e:#}");
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
            user: "65534:65534".into(),
            entrypoint: Some(vec!["/bin/sh".into()]),
            cmd: vec!["/opt/pht_train/run.sh".into()],
            memory_bytes: 1 << 30,
            nano_cpus: 1_000_000_000,
            pids: 64,
            data: vec![("cohort".into(), "/srv/cohort".into())],
            env: vec![],
            volume: "pht-run".into(),
            labels: vec![("org.pht.station.run".into(), "run".into())],
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
        assert_eq!(
            opt.source.as_deref(),
            Some("pht-run"),
            "the run's own fixed-size volume"
        );
        let data = mounts
            .iter()
            .find(|m| m.target.as_deref() == Some("/opt/train_data/cohort"))
            .unwrap();
        assert_eq!(data.read_only, Some(true));
        assert!(h.tmpfs.unwrap()["/tmp"].contains("noexec"));
    }

    #[tokio::test]
    async fn a_cancelled_run_kills_and_removes_its_container_and_keeps_the_results() {
        let s = setup();
        let fake = std::sync::Arc::new(Fake::new(Exit::Cancelled, results_tar(None)));
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c2.cancel();
        });
        let e = go_with(&s, &fake, &cancel).await.unwrap_err();
        assert!(matches!(e, Failure::Interrupted(_)), "{e:#}");
        assert_eq!(fake.calls().last(), Some(&"remove"));
        assert!(!fake.calls().contains(&"download"));
        assert_eq!(
            std::fs::read(s.dir.path().join("pht_results/old.csv")).unwrap(),
            b"old"
        );
        // Cancelled before it starts: nothing is created.
        let fake = Fake::new(Exit::Code(0), results_tar(None));
        let cancel = CancellationToken::new();
        cancel.cancel();
        let e = go_with(&s, &fake, &cancel).await.unwrap_err();
        assert!(matches!(e, Failure::Interrupted(_)), "{e:#}");
        assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    }
}
