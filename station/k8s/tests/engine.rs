//! The Kubernetes engine against a mocked API server (`mock/`), in scenarios written from the
//! API reference: a clean run (with a watch answered 410 Gone and relisted), out of memory,
//! the deadline, an exit code, a full disk, ImagePullBackOff, 409 on a retried create, 403 from
//! RBAC, 422, cancellation, the sweep's leftovers, and the preflight (rights, egress canary).
//! After every run, whatever its end, none of the run's objects is left.

mod mock;

use mock::Script;
use serde_json::{json, Value};
use station::config::{KubernetesSection, Limits};
use station::engine::{End, EngineError, LeftoverKind, OutputSink, TrainEngine, TrainJob};
use station_k8s::preflight::{self, PreflightError};
use station_k8s::KubeEngine;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

fn section() -> KubernetesSection {
    KubernetesSection {
        namespace: "pht-st-1".into(),
        helper_image: format!("registry.example/pht/helper@sha256:{}", "b".repeat(64)),
        storage_class: None,
        data: [("cohort".to_string(), "cohort-2026".to_string())].into(),
        canary_target: "192.0.2.1:443".into(),
        context: None,
        image_pull_secret: None,
        ephemeral_mib: 256,
    }
}

fn pod_status(phase: &str, state: Value) -> Value {
    json!({"phase": phase, "containerStatuses": [{"name": "train", "ready": false,
        "restartCount": 0, "image": "x", "imageID": "", "state": state}]})
}

fn results_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    b.append_data(&mut h, "pht_results/out.csv", &b"1,2"[..])
        .unwrap();
    b.into_inner().unwrap()
}

fn clean_script() -> Script {
    Script {
        train: vec![
            json!({"phase": "Pending"}),
            json!({"phase": "Running"}),
            pod_status(
                "Succeeded",
                json!({"terminated": {"exitCode": 0, "reason": "Completed"}}),
            ),
        ],
        gone_first: true,
        results: results_tar(),
        df_avail: 1_000_000,
        log: "hello from the train\n".into(),
        canary: "Failed",
        ..Script::default()
    }
}

struct Out {
    ran: Result<station::engine::Ran, EngineError>,
    output: String,
    results: Vec<u8>,
}

async fn run_with(
    m: &mock::Mock,
    data: Vec<(String, std::path::PathBuf)>,
    cancel: &CancellationToken,
) -> Out {
    let engine = KubeEngine::new(m.client(), section());
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("results.tar");
    let limits = Limits::default();
    let cmd = vec!["/opt/pht_train/run.sh".to_string()];
    let job = TrainJob {
        run_id: "0123456789abcdef",
        image: &format!("registry.example/st-1/inbox@sha256:{}", "a".repeat(64)),
        registry: "registry.example",
        entrypoint: None,
        cmd: &cmd,
        env: vec![("STATION_ID".into(), "st-1".into())],
        data,
        limits: &limits,
        work: work.path(),
        results: &results,
        labels: vec![
            ("org.pht.station.id".into(), "st-1".into()),
            (
                "org.pht.station.workdir".into(),
                work.path().display().to_string(),
            ),
        ],
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(bytes::Bytes::from_static(b"the decrypted /opt as tar"))
        .await
        .unwrap();
    drop(tx);
    let printed = Arc::new(Mutex::new(Vec::new()));
    let p = printed.clone();
    let output: OutputSink = Arc::new(move |b: &[u8]| p.lock().unwrap().extend_from_slice(b));
    let ran = engine.run(&job, rx, output, cancel).await;
    let output = String::from_utf8(printed.lock().unwrap().clone()).unwrap();
    Out {
        ran,
        output,
        results: std::fs::read(&results).unwrap_or_default(),
    }
}

async fn run(m: &mock::Mock) -> Out {
    run_with(m, vec![], &CancellationToken::new()).await
}

#[tokio::test]
async fn a_clean_run_fills_opt_runs_the_job_brings_the_results_back_and_leaves_nothing() {
    let m = mock::start(clean_script()).await;
    let out = run(&m).await;
    let ran = out.ran.unwrap();
    assert_eq!(ran.end, End::Exited(0));
    assert_eq!(ran.results_bytes, Some(results_tar().len() as u64));
    assert!(!ran.disk.unwrap().full);
    assert_eq!(out.results, results_tar());
    assert_eq!(out.output, "hello from the train\n");
    let seen = m.seen.lock().unwrap();
    assert_eq!(seen.uploaded, b"the decrypted /opt as tar");
    assert_eq!(seen.execs[0], ["tar", "-x", "-f", "-", "-C", "/opt"]);
    drop(seen);
    let calls = m.calls();
    let order: Vec<&str> = calls
        .iter()
        .filter(|c| c.starts_with("POST") || c.starts_with("EXEC"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        order,
        [
            "POST persistentvolumeclaims/pht-work-0123456789abcdef",
            "POST pods/pht-loader-0123456789abcdef",
            "EXEC pods/pht-loader-0123456789abcdef tar -x -f - -C /opt",
            "POST jobs/pht-run-0123456789abcdef",
            "POST pods/pht-collector-0123456789abcdef",
            "EXEC pods/pht-collector-0123456789abcdef df -P -k /opt",
            "EXEC pods/pht-collector-0123456789abcdef tar -c -f - -C /opt pht_results",
        ]
    );
    // A watch answered 410 Gone was followed by a fresh list, not an error.
    let w = calls
        .iter()
        .position(|c| c == "WATCH pods/pht-loader-0123456789abcdef")
        .unwrap();
    assert_eq!(calls[w + 1], "LIST pods", "{calls:?}");
    assert_eq!(
        m.objects(),
        Vec::<String>::new(),
        "everything of the run deleted"
    );
}

#[tokio::test]
async fn out_of_memory_the_deadline_an_exit_code_and_a_full_disk_are_told_apart() {
    let failed = |state| vec![json!({"phase": "Running"}), pod_status("Failed", state)];
    let deadline = json!({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
        "message": "Job was active longer than specified deadline"}]});
    for (script, want, full) in [
        (
            Script {
                train: failed(json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}})),
                ..clean_script()
            },
            End::OutOfMemory,
            None,
        ),
        (
            Script {
                train: failed(json!({"terminated": {"exitCode": 3, "reason": "Error"}})),
                ..clean_script()
            },
            End::Exited(3),
            None,
        ),
        (
            Script {
                train: failed(json!({"terminated": {"exitCode": 137, "reason": "Error"}})),
                job_status: Some(deadline.clone()),
                ..clean_script()
            },
            End::TimedOut,
            None,
        ),
        (
            Script {
                train: vec![
                    json!({"phase": "Running"}),
                    json!({"phase": "Failed", "reason": "DeadlineExceeded"}),
                ],
                job_status: Some(deadline),
                ..clean_script()
            },
            End::TimedOut,
            None,
        ),
        (
            Script {
                df_avail: 0,
                ..clean_script()
            },
            End::Exited(0),
            Some(true),
        ),
    ] {
        let m = mock::start(script).await;
        let ran = run(&m).await.ran.unwrap();
        assert_eq!(ran.end, want);
        assert_eq!(ran.disk.map(|d| d.full), full);
        if want != End::Exited(0) {
            assert!(
                !m.calls().iter().any(|c| c.contains("collector")),
                "no results taken after {want:?}"
            );
        }
        assert_eq!(m.objects(), Vec::<String>::new(), "{want:?}");
    }
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_is_an_error_that_says_so_and_leaves_nothing() {
    let back_off = json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"registry.example/st-1/inbox@sha256:aaaa\""}});
    let m = mock::start(Script {
        train: vec![pod_status("Pending", back_off)],
        ..clean_script()
    })
    .await;
    let e = run(&m).await.ran.unwrap_err();
    assert!(matches!(e, EngineError::Call { .. }), "{e}");
    assert!(e.to_string().contains("ImagePullBackOff"), "{e}");
    assert_eq!(m.objects(), Vec::<String>::new());
    // The helper's own image: the same.
    let m = mock::start(Script {
        helper_waiting: Some("ErrImagePull"),
        ..clean_script()
    })
    .await;
    let e = run(&m).await.ran.unwrap_err();
    assert!(e.to_string().contains("ErrImagePull"), "{e}");
    assert!(
        !m.calls().iter().any(|c| c.starts_with("POST jobs")),
        "no train without /opt"
    );
    assert_eq!(m.objects(), Vec::<String>::new());
}

#[tokio::test]
async fn a_retried_create_is_adopted_and_someone_elses_object_is_refused() {
    let m = mock::start(Script {
        claim_exists: Some(true),
        ..clean_script()
    })
    .await;
    assert_eq!(run(&m).await.ran.unwrap().end, End::Exited(0));
    let m = mock::start(Script {
        claim_exists: Some(false),
        ..clean_script()
    })
    .await;
    let e = run(&m).await.ran.unwrap_err();
    assert!(e.to_string().contains("is not this run's"), "{e}");
    assert!(
        !m.calls().iter().any(|c| c.starts_with("POST pods")),
        "nothing mounts their claim"
    );
}

#[tokio::test]
async fn rbac_and_validation_refusals_say_what_to_do_and_leave_nothing() {
    let m = mock::start(Script {
        forbid: Some("jobs"),
        ..clean_script()
    })
    .await;
    let e = run(&m).await.ran.unwrap_err();
    assert!(matches!(e, EngineError::Forbidden { .. }), "{e}");
    assert!(e.to_string().contains("station k8s manifests"), "{e}");
    assert!(!e.is_unreachable(), "a refusal is not an outage");
    assert_eq!(m.objects(), Vec::<String>::new());
    let m = mock::start(Script {
        invalid_job: Some("Job.batch \"pht-run-x\" is invalid: spec.template.spec.containers[0].resources.limits: Invalid value"),
        ..clean_script()
    })
    .await;
    let e = run(&m).await.ran.unwrap_err();
    assert!(
        e.to_string().contains("is invalid") && e.to_string().contains("422"),
        "{e}"
    );
    assert_eq!(m.objects(), Vec::<String>::new());
}

#[tokio::test]
async fn a_cancelled_run_stops_and_leaves_nothing() {
    let m = mock::start(Script {
        train: vec![json!({"phase": "Running"})],
        ..clean_script()
    })
    .await;
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        c.cancel();
    });
    let ran = run_with(&m, vec![], &cancel).await.ran.unwrap();
    assert_eq!(ran.end, End::Cancelled);
    assert_eq!(m.objects(), Vec::<String>::new());
}

#[tokio::test]
async fn host_data_paths_are_refused_unless_a_claim_is_named_for_them() {
    let m = mock::start(clean_script()).await;
    let out = run_with(
        &m,
        vec![("genomes".into(), "/srv/genomes".into())],
        &CancellationToken::new(),
    )
    .await;
    let e = out.ran.unwrap_err();
    assert!(e.to_string().contains("[engine.kubernetes] data"), "{e}");
    assert!(
        m.calls().iter().all(|c| !c.starts_with("POST")),
        "nothing created"
    );
    // A named one is mounted read-only in the train's pod.
    let m = mock::start(clean_script()).await;
    run_with(
        &m,
        vec![("cohort".into(), "/srv/cohort".into())],
        &CancellationToken::new(),
    )
    .await
    .ran
    .unwrap();
}

#[tokio::test]
async fn the_sweep_finds_a_dead_runs_objects_by_label_and_removes_them() {
    let m = mock::start(Script {
        train: vec![json!({"phase": "Running"})],
        ..clean_script()
    })
    .await;
    {
        // What a station killed mid-run leaves: a claim, a Job and its pod.
        let mut seen = m.seen.lock().unwrap();
        for (key, kind, api) in [
            (
                "persistentvolumeclaims/pht-work-dead",
                "PersistentVolumeClaim",
                "v1",
            ),
            ("jobs/pht-run-dead", "Job", "batch/v1"),
            ("pods/pht-run-dead-x", "Pod", "v1"),
        ] {
            seen.objects.insert(
                key.into(),
                json!({"kind": kind, "apiVersion": api, "metadata": {
                "name": key.split('/').nth(1).unwrap(), "namespace": "pht-st-1",
                "labels": {"pht.station/id": "st-1", "pht.station/run": "dead"},
                "annotations": {"pht.station/workdir": "/var/tmp/pht-station-dead"}}}),
            );
        }
        seen.objects.insert("pods/not-ours".into(), json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "not-ours", "labels": {"app": "x"}}}));
    }
    let engine = KubeEngine::new(m.client(), section());
    let left = engine.leftovers("st-1", "any-host").await.unwrap();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left
        .iter()
        .all(|l| l.workdir.as_deref() == Some("/var/tmp/pht-station-dead")));
    assert_eq!(
        left.iter()
            .filter(|l| l.kind == LeftoverKind::Storage)
            .count(),
        1
    );
    for l in &left {
        engine.remove_leftover(l).await.unwrap();
        // Twice: already gone is fine.
        engine.remove_leftover(l).await.unwrap();
    }
    assert_eq!(m.objects(), ["pods/not-ours"]);
}

#[tokio::test]
async fn preflight_refuses_missing_rights_and_a_network_that_lets_the_canary_out() {
    let m = mock::start(clean_script()).await;
    let n = preflight::rights(&m.client(), "pht-st-1").await.unwrap();
    let want: usize = station_k8s::manifests::RULES
        .iter()
        .map(|(_, _, v)| v.len())
        .sum();
    assert_eq!(n, want);
    let m = mock::start(Script {
        deny: Some("create pods/exec"),
        ..clean_script()
    })
    .await;
    let e = preflight::rights(&m.client(), "pht-st-1")
        .await
        .unwrap_err();
    assert!(matches!(e, PreflightError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("may not create pods/exec"), "{e}");

    let engine = KubeEngine::new(m.client(), section());
    let limits = Limits::default();
    let work = tempfile::tempdir().unwrap();
    let results = work.path().join("r");
    let cmd = vec![];
    let job = TrainJob {
        run_id: "canary0",
        image: &section().helper_image,
        registry: "",
        entrypoint: None,
        cmd: &cmd,
        env: vec![],
        data: vec![],
        limits: &limits,
        work: work.path(),
        results: &results,
        labels: vec![],
    };
    let spec = engine.spec(&job).unwrap();
    let m = mock::start(Script {
        canary: "Failed",
        ..clean_script()
    })
    .await;
    preflight::egress(&m.client(), &spec, "192.0.2.1:443")
        .await
        .unwrap();
    assert_eq!(m.objects(), Vec::<String>::new());
    let m = mock::start(Script {
        canary: "Succeeded",
        ..clean_script()
    })
    .await;
    let e = preflight::egress(&m.client(), &spec, "192.0.2.1:443")
        .await
        .unwrap_err();
    assert!(matches!(e, PreflightError::Egress { .. }), "{e}");
    assert!(
        e.to_string().contains("does not enforce NetworkPolicies"),
        "{e}"
    );
    assert_eq!(m.objects(), Vec::<String>::new(), "the canary is deleted");
}

#[tokio::test]
async fn an_api_server_that_cannot_be_reached_is_the_stations_trouble_not_the_trains() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let m = mock::Mock {
        url,
        seen: Default::default(),
    };
    let e = run(&m).await.ran.unwrap_err();
    assert!(e.is_unreachable(), "{e:?}");
    assert!(e.to_string().contains("Kubernetes API server"), "{e}");
}
