//! The container's life on Docker's API, with a fake of the API: every path out removes the
//! container exactly once; out-of-memory is told apart from an exit code; the container is
//! hardened.

use super::fake::Fake;
use super::*;
use crate::config::Limits;
use std::path::Path;

struct Setup {
    work: tempfile::TempDir,
    limits: Limits,
    cmd: Vec<String>,
    entrypoint: Vec<String>,
}

fn setup() -> Setup {
    Setup {
        work: tempfile::tempdir().unwrap(),
        limits: Limits::default(),
        cmd: vec!["/opt/pht_train/run.sh".into()],
        entrypoint: vec!["/bin/sh".into()],
    }
}

fn job<'a>(s: &'a Setup, results: &'a Path) -> TrainJob<'a> {
    TrainJob {
        run_id: "run",
        image: "r/master@sha256:00",
        registry: "r",
        entrypoint: Some(&s.entrypoint),
        cmd: &s.cmd,
        env: vec![("STATION_ID".into(), "st-1".into())],
        data: vec![],
        limits: &s.limits,
        work: s.work.path(),
        results,
        labels: vec![("org.pht.station.run".into(), "run".into())],
    }
}

async fn go_with(
    s: &Setup,
    fake: &Fake,
    cancel: &CancellationToken,
) -> Result<(End, Option<u64>), EngineError> {
    let results = s.work.path().join("results.tar");
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(bytes::Bytes::from_static(b"tar")).await.unwrap();
    drop(tx);
    let out: OutputSink = std::sync::Arc::new(|_: &[u8]| {});
    in_volume(fake, &job(s, &results), "pht-run", rx, out, cancel).await
}

async fn go(s: &Setup, fake: &Fake) -> Result<(End, Option<u64>), EngineError> {
    go_with(s, fake, &CancellationToken::new()).await
}

#[tokio::test]
async fn a_clean_exit_takes_the_results_out_and_removes_the_container() {
    let s = setup();
    let fake = Fake::new(Exit::Code(0), b"results".to_vec());
    assert_eq!(go(&s, &fake).await.unwrap(), (End::Exited(0), Some(7)));
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
    assert_eq!(*fake.uploaded.lock().unwrap(), b"tar");
    assert_eq!(
        std::fs::read(s.work.path().join("results.tar")).unwrap(),
        b"results"
    );
    let spec = fake.spec.lock().unwrap().clone().unwrap();
    assert_eq!(spec.cmd, ["/opt/pht_train/run.sh"]);
    assert_eq!(spec.env, ["STATION_ID=st-1"]);
    assert_eq!(spec.volume, "pht-run");
    assert_eq!(spec.user, "65534:65534");
}

#[tokio::test]
async fn every_other_end_removes_the_container_once_and_takes_nothing_out() {
    for (exit, oom, end) in [
        (Exit::Code(3), false, End::Exited(3)),
        (Exit::Code(137), false, End::Exited(137)),
        (Exit::Code(137), true, End::OutOfMemory),
        (Exit::TimedOut, false, End::TimedOut),
    ] {
        let s = setup();
        let mut fake = Fake::new(exit, b"results".to_vec());
        fake.oom = oom;
        assert_eq!(
            go(&s, &fake).await.unwrap(),
            (end, None),
            "{exit:?} oom {oom}"
        );
        assert_eq!(fake.calls().last(), Some(&"remove"));
        assert_eq!(fake.calls().iter().filter(|c| **c == "remove").count(), 1);
        assert!(!fake.calls().contains(&"download"));
    }
}

#[tokio::test]
async fn results_over_the_limit_are_the_trains_failure_and_the_container_goes() {
    let mut s = setup();
    s.limits.results_bytes = 3;
    let fake = Fake::new(Exit::Code(0), b"results".to_vec());
    let e = go(&s, &fake).await.unwrap_err();
    assert!(matches!(e, EngineError::Results(_)), "{e:#}");
    assert!(e.to_string().contains("results limit"), "{e}");
    assert_eq!(fake.calls().last(), Some(&"remove"));
}

#[tokio::test]
async fn a_cancelled_run_kills_and_removes_its_container() {
    let s = setup();
    let fake = std::sync::Arc::new(Fake::new(Exit::Cancelled, vec![]));
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        c2.cancel();
    });
    let (end, _) = go_with(&s, &fake, &cancel).await.unwrap();
    assert_eq!(end, End::Cancelled);
    assert_eq!(fake.calls().last(), Some(&"remove"));
    assert!(!fake.calls().contains(&"download"));
    // Cancelled before it starts: nothing is created.
    let fake = Fake::new(Exit::Code(0), vec![]);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (end, _) = go_with(&s, &fake, &cancel).await.unwrap();
    assert_eq!(end, End::Cancelled);
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[tokio::test]
async fn a_stream_that_ends_with_the_stop_set_is_never_started() {
    // The pipeline cancels before it closes a failed /opt stream: created, never started.
    let s = setup();
    let fake = Fake::new(Exit::Code(0), vec![]);
    let cancel = CancellationToken::new();
    let results = s.work.path().join("results.tar");
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(1);
    let c2 = cancel.clone();
    tokio::spawn(async move {
        c2.cancel();
        drop(tx);
    });
    let out: OutputSink = std::sync::Arc::new(|_: &[u8]| {});
    let r = in_volume(&fake, &job(&s, &results), "pht-run", rx, out, &cancel).await;
    assert_eq!(r.unwrap().0, End::Cancelled);
    assert!(!fake.calls().contains(&"start"), "{:?}", fake.calls());
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
