//! The train step, on whatever engine the station runs: the decrypted train goes in as a tar
//! stream (the engine puts it in `/opt`), the train runs isolated on the verified master image,
//! and what it leaves in `/opt/pht_results` comes back through the hardened reader. The
//! engine removes what it made on every path out, also when the job is cancelled.

use super::outcome::{io, Failure, INTERRUPTED};
use super::policy::Launch;
use crate::config::Limits;
use crate::engine::{DiskUse, End, EngineError, OutputSink, TrainEngine, TrainJob};
use crate::events::Events;
use crate::output::TrainOutput;
use crate::results;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use train_lib::layout::{MOUNT, RESULTS_DIR};

/// One train run: everything [`run_job`] needs.
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
    /// The labels of what the engine makes (run, station, host, work directory, train).
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

/// The tar of the train directory (without its results' plaintext owner: the run's user
/// owns `pht_results`), streamed chunk by chunk. If making it fails, `stop` is cancelled
/// before the stream ends, so an engine never starts a train on a partial `/opt`.
fn opt_stream(
    job: &Job<'_>,
    stop: CancellationToken,
) -> (
    crate::engine::OptStream,
    tokio::task::JoinHandle<Result<(), train_image::ImageError>>,
) {
    let (sink, mut rx) = train_image::ChunkSender::channel(1 << 20, 8);
    let dir = job.train_dir.to_path_buf();
    let owner = train_image::Owner {
        uid: job.limits.user.uid.into(),
        gid: job.limits.user.gid.into(),
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
    let (tx, opt) = tokio::sync::mpsc::channel(2);
    let forward = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if tx.send(b).await.is_err() {
                break;
            }
        }
        // The producer ends once nothing reads; it is always waited for.
        drop(rx);
        let produced = producer.await.expect("tar producer does not panic");
        if produced.is_err() {
            stop.cancel();
        }
        drop(tx);
        produced
    });
    (opt, forward)
}

/// Runs the train on `engine` and replaces `pht_results` in the train directory with what it
/// left there; returns its exit code (0). Its disk's use goes to `disk` however it ended.
pub async fn run_job<E: TrainEngine>(
    engine: &E,
    job: &Job<'_>,
    work: &Path,
    cancel: &CancellationToken,
    disk: &mut Option<DiskUse>,
) -> Result<i64, Failure> {
    let limits = job.limits;
    let data = data_mounts(job.data)?;
    if cancel.is_cancelled() {
        return Err(Failure::Interrupted(INTERRUPTED.into()));
    }
    let results_dir = job.train_dir.join(RESULTS_DIR);
    train_lib::tree::private::create_dir_all(&results_dir)
        .map_err(io(format!("creating {}", results_dir.display())))?;
    let tar_path = work.join("results.tar");
    let spec = TrainJob {
        run_id: job.run_id,
        image: &job.launch.image,
        registry: &job.launch.registry,
        entrypoint: job.launch.entrypoint.as_deref(),
        cmd: &job.launch.cmd,
        env: vec![
            ("TRAIN_DATA_PATH".into(), format!("{MOUNT}/train_data")),
            ("STATION_ID".into(), job.station.to_string()),
        ],
        data,
        limits,
        work,
        results: &tar_path,
        labels: job.labels.clone(),
    };
    let stop = cancel.child_token();
    let (opt, produced) = opt_stream(job, stop.clone());
    job.events.step(
        job.run_id,
        &format!(
            "running (no network, read-only root, user {}, limit {} s, disk {} MiB)",
            limits.user, limits.timeout_secs, limits.disk_mib
        ),
    );
    let (output, finish) = output_sink(job);
    let ran = engine.run(&spec, opt, output, &stop).await;
    finish();
    let produced = produced.await.expect("the forwarder does not panic");
    let ran = match ran {
        Err(EngineError::Results(m)) => return Err(Failure::TrainFailed(m)),
        Err(e) => return Err(Failure::Engine(e)),
        Ok(r) => r,
    };
    disk.clone_from(&ran.disk);
    produced.map_err(Failure::Image)?;
    match ran.end {
        End::TimedOut => {
            return Err(Failure::TrainFailed(format!(
                "no exit within the wall-clock limit of {} s (limits.timeout_secs); it was killed",
                limits.timeout_secs
            )))
        }
        End::OutOfMemory => {
            return Err(Failure::TrainFailed(format!(
                "it went over its memory limit of {} MiB (limits.memory_mib) and was killed",
                limits.memory_mib
            )))
        }
        End::Cancelled => return Err(Failure::Interrupted(INTERRUPTED.into())),
        End::Exited(0) => {}
        End::Exited(c) => return Err(Failure::TrainFailed(format!("it exited with code {c}"))),
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
    use crate::engine::fake::FakeEngine as Fake;

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
            labels: vec![("org.pht.station.run".into(), "run".into())],
            run_id: "run",
            events: Arc::new(crate::events::Tracing),
        };
        run_job(fake, &job, s.work.path(), cancel, &mut None).await
    }

    fn old_results_kept(s: &Setup) {
        assert_eq!(
            std::fs::read(s.dir.path().join("pht_results/old.csv")).unwrap(),
            b"old"
        );
    }

    #[tokio::test]
    async fn a_clean_exit_replaces_the_results() {
        let s = setup();
        let fake = Fake::new(End::Exited(0), results_tar(None));
        assert_eq!(go(&s, &fake).await.unwrap(), 0);
        assert!(fake.started());
        assert!(!s.dir.path().join("pht_results/old.csv").exists());
        assert_eq!(
            std::fs::read(s.dir.path().join("pht_results/new.csv")).unwrap(),
            b"1,2"
        );
        assert!(
            !s.work.path().join("results.tar").exists(),
            "the archive is removed"
        );
        // What went in: the train root-owned, the results directory owned by the run's user.
        let up = fake.opt.lock().unwrap().clone();
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
        let asked = fake.asked.lock().unwrap().clone().unwrap();
        assert_eq!(asked.cmd, ["/opt/pht_train/run.sh"]);
        assert_eq!(asked.image, "r/master@sha256:00");
        assert_eq!(asked.labels, [("org.pht.station.run".into(), "run".into())]);
        assert!(asked
            .env
            .contains(&("STATION_ID".to_string(), "st-1".to_string())));
    }

    #[tokio::test]
    async fn every_other_end_fails_the_train_and_keeps_the_results_untouched() {
        for (end, tar, why) in [
            (End::Exited(3), results_tar(None), "exited with code 3"),
            (End::TimedOut, results_tar(None), "wall-clock limit"),
            (
                End::OutOfMemory,
                results_tar(None),
                "over its memory limit of",
            ),
            (
                End::Exited(0),
                results_tar(Some((tar::EntryType::Symlink, "pht_results/leak"))),
                "only files and directories",
            ),
            (
                End::Exited(0),
                results_tar(Some((tar::EntryType::Link, "pht_results/hard"))),
                "only files and directories",
            ),
        ] {
            let s = setup();
            let fake = Fake::new(end, tar);
            let e = go(&s, &fake).await.unwrap_err();
            assert!(matches!(e, Failure::TrainFailed(_)), "{e:#}");
            assert!(format!("{e:#}").contains(why), "{e:#}");
            old_results_kept(&s);
        }
    }

    #[tokio::test]
    async fn results_over_the_limit_fail_the_train() {
        let mut s = setup();
        s.limits.results_bytes = 100;
        let fake = Fake::new(End::Exited(0), results_tar(None));
        let e = go(&s, &fake).await.unwrap_err();
        assert!(matches!(e, Failure::TrainFailed(_)), "{e:#}");
        assert!(format!("{e:#}").contains("results limit"), "{e:#}");
        old_results_kept(&s);
    }

    #[tokio::test]
    async fn a_train_directory_that_cannot_be_archived_never_starts() {
        // A FIFO in the decrypted tree: the archive refuses it half-way. The engine must see
        // the stop before the stream ends, or it would start the train on a partial /opt.
        let s = setup();
        let fifo = s.dir.path().join("pht_train/zz-fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(ok.success());
        let fake = Fake::new(End::Exited(0), results_tar(None));
        let e = go(&s, &fake).await.unwrap_err();
        assert!(matches!(e, Failure::Image(_)), "{e:#}");
        assert!(!fake.started(), "started on a partial /opt");
        old_results_kept(&s);
    }

    #[tokio::test]
    async fn a_cancelled_run_is_interrupted_and_keeps_the_results() {
        let s = setup();
        let fake = Fake::new(End::Cancelled, results_tar(None));
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            c2.cancel();
        });
        let e = go_with(&s, &fake, &cancel).await.unwrap_err();
        assert!(matches!(e, Failure::Interrupted(_)), "{e:#}");
        old_results_kept(&s);
        // Cancelled before it starts: the engine is not asked.
        let fake = Fake::new(End::Exited(0), results_tar(None));
        let cancel = CancellationToken::new();
        cancel.cancel();
        let e = go_with(&s, &fake, &cancel).await.unwrap_err();
        assert!(matches!(e, Failure::Interrupted(_)), "{e:#}");
        assert!(fake.asked.lock().unwrap().is_none());
    }
}
