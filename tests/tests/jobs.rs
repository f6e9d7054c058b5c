//! The station as a library, with many jobs in one process (what `station watch` will do): two
//! runs at once on the real engine and registries, one cancelled while the other goes on. Each
//! keeps to its own run id (containers, volumes, audit records, events), both clean up, and the
//! audit log they share stays one chain.

use e2e::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Events kept per run id, to check that each job's output is its own.
#[derive(Default)]
struct Captured(Mutex<Vec<(String, String)>>);

impl station::events::Events for Captured {
    fn step(&self, run: &str, m: &str) {
        self.0
            .lock()
            .unwrap()
            .push((run.into(), format!("step: {m}")));
    }
    fn warn(&self, run: &str, m: &str) {
        self.0
            .lock()
            .unwrap()
            .push((run.into(), format!("warn: {m}")));
    }
    fn train_output(&self, run: &str, line: &str) {
        self.0
            .lock()
            .unwrap()
            .push((run.into(), format!("train: {line}")));
    }
    fn transfers(&self) -> &dyn train_image::Reporter {
        &train_image::Silent
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_jobs_in_one_process_one_cancelled_the_other_pushed() {
    let s = Scene::new(&["st-1", "st-2"]);
    let a = registry('A');
    let cfg_path = s.config("st-1.toml", "");
    let config = station::config::StationConfig::load(&cfg_path).unwrap();
    let key = Arc::new(train_lib::keys::PrivateKey::from_file(&s.key("st-1"), None).unwrap());
    let events = Arc::new(Captured::default());
    let tmp = s.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let data = s.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("rows.csv"), "1\n2\n").unwrap();
    let mut reqs = Vec::new();
    for (name, script) in [
        (
            "kept",
            "#!/bin/sh\necho output of kept\nsleep 5\necho kept > /opt/pht_results/r\n",
        ),
        (
            "cancelled",
            "#!/bin/sh\necho output of cancelled\nsleep 120\n",
        ),
    ] {
        std::fs::remove_dir_all(s.path("train")).ok();
        let train = s.create("native", script);
        let repo = repo(&format!("jobs-{name}"));
        let img = format!("{a}/{repo}:st-1");
        s.build(&train, &img);
        reqs.push((
            repo,
            station::run::RunRequest {
                reference: img.parse().unwrap(),
                station: "st-1".into(),
                key: key.clone(),
                push: None,
                data: vec![data.clone()],
                config: config.clone(),
                events: events.clone(),
                tmp: tmp.clone(),
                credentials: Vec::new(),
            },
        ));
    }
    let engine = station::engine::docker::Docker::connect().unwrap();
    let (kept_token, cancel_token) = (CancellationToken::new(), CancellationToken::new());
    let mut kept_summary = station::run::Summary::default();
    let mut cancelled_summary = station::run::Summary::default();
    let cancelled_repo = reqs[1].0.clone();
    let canceller = {
        let (t, seen) = (cancel_token.clone(), events.clone());
        tokio::task::spawn_blocking(move || {
            // Once both trains run (each has printed its first line), cancel one.
            let t0 = std::time::Instant::now();
            let printed = |what: &str| {
                let line = format!("train: output of {what}");
                seen.0.lock().unwrap().iter().any(|(_, l)| *l == line)
            };
            while !(printed("kept") && printed("cancelled")) {
                assert!(
                    t0.elapsed() < Duration::from_secs(90),
                    "both jobs never ran at once"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            t.cancel();
        })
    };
    let (kept, cancelled) = tokio::join!(
        station::run::run(&engine, &reqs[0].1, &kept_token, &mut kept_summary),
        station::run::run(&engine, &reqs[1].1, &cancel_token, &mut cancelled_summary),
    );
    canceller.await.unwrap();
    kept.unwrap();
    let e = cancelled.unwrap_err();
    assert_eq!(e.decision(), station::run::Decision::Interrupted, "{e}");
    assert_eq!(kept_summary.decision, station::run::Decision::Pushed);
    assert!(exists(&a, &reqs[0].0, "st-2"));
    assert!(!exists(&a, &cancelled_repo, "st-2"));
    // Both cleaned up: no container, no volume, no work directory.
    for (repo, _) in &reqs {
        assert_eq!(leftover_containers(repo), 0, "{repo}");
    }
    for run in [&kept_summary.run_id, &cancelled_summary.run_id] {
        let vols = ok(std::process::Command::new("docker").args([
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=org.pht.station.run={run}"),
        ]));
        assert!(vols.trim().is_empty(), "{run}: {vols}");
    }
    assert_eq!(s.tmp_leftovers(), Vec::<String>::new());
    // Both decisions in the one log, each under its run id, after its `started`.
    let records = s.audit_records("st-1.toml");
    for (run, decision) in [
        (&kept_summary.run_id, "pushed"),
        (&cancelled_summary.run_id, "interrupted"),
    ] {
        let mine: Vec<&str> = records
            .iter()
            .filter(|r| r["run_id"] == run.as_str())
            .map(|r| r["decision"].as_str().unwrap())
            .collect();
        assert_eq!(mine, ["started", decision], "{run}");
    }
    let log = s.audit_log("st-1.toml");
    let public = key.public();
    station::audit::AuditLog::new(&log).verify(public).unwrap();
    // Each job's train output came tagged with its own run id.
    let events = events.0.lock().unwrap();
    for (run, line) in [
        (&kept_summary.run_id, "train: output of kept"),
        (&cancelled_summary.run_id, "train: output of cancelled"),
    ] {
        assert!(
            events.iter().any(|(r, l)| r == run && l == line),
            "{run}: {events:#?}"
        );
        assert!(
            !events.iter().any(|(r, l)| r != run && l == line),
            "a line of {run} was tagged with another run"
        );
    }
}
