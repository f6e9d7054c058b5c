//! Against a real cluster: ignored, as no API server can run where CI runs. Anyone with a
//! kubeconfig runs them:
//!
//! ```text
//! station k8s manifests --namespace pht-test | kubectl apply -f -
//! PHT_K8S_NAMESPACE=pht-test \
//! PHT_K8S_HELPER_IMAGE=registry.example/busybox@sha256:… \
//!   cargo test -p station-k8s --test real_cluster -- --ignored --test-threads 1
//! ```
//!
//! The helper image doubles as the train's image (busybox: `sh`, `tar`, `df`, `nc`).

use station::config::{KubernetesSection, Limits};
use station::engine::{End, OutputSink, TrainEngine, TrainJob};
use station_k8s::KubeEngine;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

fn section() -> KubernetesSection {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set (see this file's header)"))
    };
    KubernetesSection {
        namespace: var("PHT_K8S_NAMESPACE"),
        helper_image: var("PHT_K8S_HELPER_IMAGE"),
        storage_class: std::env::var("PHT_K8S_STORAGE_CLASS").ok(),
        data: Default::default(),
        canary_target: std::env::var("PHT_K8S_CANARY").unwrap_or_else(|_| "1.1.1.1:443".into()),
        context: std::env::var("PHT_K8S_CONTEXT").ok(),
        image_pull_secret: std::env::var("PHT_K8S_PULL_SECRET").ok(),
        ephemeral_mib: 256,
    }
}

fn opt_tar(script: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, body, mode) in [
        ("pht_train/run.sh", script.as_bytes(), 0o755),
        ("pht_results/.keep", &b""[..], 0o644),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(mode);
        b.append_data(&mut h, path, body).unwrap();
    }
    b.into_inner().unwrap()
}

async fn run(script: &str, limits: Limits) -> (station::engine::Ran, String, Vec<u8>) {
    let cfg = section();
    let engine = KubeEngine::connect(cfg.clone()).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("results.tar");
    let run_id = format!("t{:x}", std::process::id());
    let (sh, cmd) = (
        vec!["/bin/sh".to_string()],
        vec!["/opt/pht_train/run.sh".to_string()],
    );
    let job = TrainJob {
        run_id: &run_id,
        image: &cfg.helper_image,
        registry: "",
        entrypoint: Some(&sh),
        cmd: &cmd,
        env: vec![("STATION_ID".into(), "real".into())],
        data: vec![],
        limits: &limits,
        work: work.path(),
        results: &results,
        labels: vec![("org.pht.station.id".into(), "real".into())],
    };
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(opt_tar(script).into()).await.unwrap();
    drop(tx);
    let printed = Arc::new(Mutex::new(Vec::new()));
    let p = printed.clone();
    let out: OutputSink = Arc::new(move |b: &[u8]| p.lock().unwrap().extend_from_slice(b));
    let ran = engine
        .run(&job, rx, out, &CancellationToken::new())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&printed.lock().unwrap()).into_owned();
    (ran, text, std::fs::read(&results).unwrap_or_default())
}

#[tokio::test]
#[ignore = "needs a cluster (kubeconfig); see the file's header"]
async fn preflight_passes_on_a_cluster_that_enforces_policies() {
    let engine = KubeEngine::connect(section()).await.unwrap();
    station_k8s::preflight::check(&engine).await.unwrap();
}

#[tokio::test]
#[ignore = "needs a cluster (kubeconfig); see the file's header"]
async fn a_train_runs_and_its_results_come_back() {
    let (ran, out, results) = run(
        "echo hello from $STATION_ID\necho 1,2 > /opt/pht_results/out.csv\n",
        Limits {
            memory_mib: 64,
            ..Limits::default()
        },
    )
    .await;
    assert_eq!(ran.end, End::Exited(0));
    assert!(out.contains("hello from real"), "{out}");
    let mut a = tar::Archive::new(&results[..]);
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("out.csv")), "{names:?}");
}

#[tokio::test]
#[ignore = "needs a cluster (kubeconfig); see the file's header"]
async fn out_of_memory_and_the_deadline_are_told_apart() {
    let (ran, _, _) = run(
        "x=a\nwhile true; do x=\"$x$x\"; done\n",
        Limits {
            memory_mib: 32,
            ..Limits::default()
        },
    )
    .await;
    assert_eq!(ran.end, End::OutOfMemory);
    let (ran, _, _) = run(
        "sleep 600\n",
        Limits {
            timeout_secs: 5,
            ..Limits::default()
        },
    )
    .await;
    assert_eq!(ran.end, End::TimedOut);
    let (ran, _, _) = run("exit 3\n", Limits::default()).await;
    assert_eq!(ran.end, End::Exited(3));
}
