//! Interoperability with the Python reference, pht-train-container-library 2.0.5, in both
//! directions and mixed along one route. `PHT_REFERENCE_PYTHON` names a Python with the
//! reference installed (`scripts/reference-venv.sh` makes one; `.ci/run` sets it). Without it the
//! test fails under CI and is skipped, loudly, elsewhere.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;
use train_lib::keys::{PrivateKey, TrustStore};
use train_lib::{CreateSpec, Format, Station, TrainDir};

fn python() -> Option<PathBuf> {
    match std::env::var_os("PHT_REFERENCE_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("CI").is_some() => {
            panic!("PHT_REFERENCE_PYTHON is not set under CI")
        }
        None => {
            eprintln!("SKIPPED: set PHT_REFERENCE_PYTHON (see scripts/reference-venv.sh) to run the interop test");
            None
        }
    }
}

fn driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/reference_driver.py")
}

fn reference(py: &Path, args: &[&str]) {
    let out = Command::new(py).arg(driver()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "reference {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn key_path(name: &str) -> PathBuf {
    vectors().join(format!("phtmedic-g3/keys/{name}.key.pem"))
}

#[derive(Clone, Copy, Debug)]
enum Impl {
    Rust,
    Python,
}

/// Runs one stop with the chosen implementation, adding a result file and appending to a shared one.
fn run_stop(py: &Path, dir: &Path, station: &str, who: Impl, n: usize) {
    let key = key_path(station);
    let d = dir.to_str().unwrap();
    match who {
        Impl::Rust => {
            let k = PrivateKey::from_file(&key, None).unwrap();
            let trust = TrustStore::default();
            TrainDir::open(dir)
                .unwrap()
                .pre_run(&Station {
                    id: station,
                    key: &k,
                    trust: &trust,
                })
                .unwrap();
        }
        Impl::Python => reference(py, &["prerun", d, station, key.to_str().unwrap()]),
    }
    let results = dir.join("pht_results");
    fs::create_dir_all(results.join("nested")).unwrap();
    let mut log = fs::read(results.join("log.csv")).unwrap_or_default();
    log.extend(format!("{station},{n}\n").as_bytes());
    fs::write(results.join("log.csv"), log).unwrap();
    fs::write(
        results.join(format!("nested/{station}.bin")),
        bytes(1000 * n + 7, n as u8),
    )
    .unwrap();
    match who {
        Impl::Rust => {
            let k = PrivateKey::from_file(&key, None).unwrap();
            let trust = TrustStore::default();
            TrainDir::open(dir)
                .unwrap()
                .post_run(&Station {
                    id: station,
                    key: &k,
                    trust: &trust,
                })
                .unwrap();
        }
        Impl::Python => reference(py, &["postrun", d, station, key.to_str().unwrap()]),
    }
}

fn expected_results(stations: &[&str]) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = String::new();
    fs::create_dir_all(tmp.path().join("nested")).unwrap();
    for (n, s) in stations.iter().enumerate() {
        log.push_str(&format!("{s},{}\n", n + 1));
        fs::write(
            tmp.path().join(format!("nested/{s}.bin")),
            bytes(1000 * (n + 1) + 7, (n + 1) as u8),
        )
        .unwrap();
    }
    fs::write(tmp.path().join("log.csv"), log).unwrap();
    snapshot(tmp.path())
}

fn both_creators_read(py: &Path, dir: &Path, stations: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("ours");
    TrainDir::open(dir)
        .unwrap()
        .results(&g3_key("user"), &TrustStore::default(), &ours)
        .unwrap();
    assert_eq!(snapshot(&ours), expected_results(stations));
    let theirs = tmp.path().join("theirs");
    reference(
        py,
        &[
            "results",
            dir.to_str().unwrap(),
            key_path("user").to_str().unwrap(),
            theirs.to_str().unwrap(),
        ],
    );
    // The reference writes only files; compare file contents.
    let files = |m: std::collections::BTreeMap<String, Option<Vec<u8>>>| {
        m.into_iter()
            .filter(|(_, v)| v.is_some())
            .collect::<Vec<_>>()
    };
    assert_eq!(files(snapshot(&theirs)), files(expected_results(stations)));
}

const ROUTE: [&str; 3] = ["station_1", "station_2", "station_3"];

#[test]
fn reference_built_train_along_mixed_routes() {
    let Some(py) = python() else { return };
    for order in [
        [Impl::Rust, Impl::Python, Impl::Rust],
        [Impl::Python, Impl::Rust, Impl::Python],
        [Impl::Rust, Impl::Rust, Impl::Python],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t");
        copy_tree(&vectors().join("phtmedic-g3/00-built"), &dir);
        fs::create_dir_all(dir.join("pht_results")).unwrap();
        for (n, (station, who)) in ROUTE.iter().zip(order).enumerate() {
            run_stop(&py, &dir, station, who, n + 1);
        }
        both_creators_read(&py, &dir, &ROUTE);
    }
}

#[test]
fn train_created_by_us_runs_on_the_reference() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_files(
        &src,
        &[
            ("entrypoint.py", b"print(1)\n".to_vec()),
            ("lib/model.bin", bytes(70_000, 5)),
        ],
    );
    fs::write(src.join("query.json"), br#"{"resourceType":"Patient"}"#).unwrap();
    let user = g3_key("user");
    let builder = g3_key("builder");
    let spec = CreateSpec {
        files: &src,
        entrypoint: "entrypoint.py",
        creator_id: "42",
        creator_key: &user,
        stations: ROUTE
            .iter()
            .map(|s| (s.to_string(), g3_key(s).public().clone()))
            .collect(),
        query: None,
        builder_key: Some(&builder),
        train_id: None,
        proposal_id: None,
        master_image: None,
    };
    let dir = tmp.path().join("t");
    train_lib::create(&spec, Format::Legacy, &dir).unwrap();
    for (n, station) in ROUTE.iter().enumerate() {
        let who = if n % 2 == 0 { Impl::Python } else { Impl::Rust };
        run_stop(&py, &dir, station, who, n + 1);
    }
    both_creators_read(&py, &dir, &ROUTE);
}

#[test]
fn the_reference_rejects_what_we_reject_it_for() {
    // A tampered train file fails the reference's own hash check too: our tamper tests and the
    // reference agree on what a broken legacy train is.
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    copy_tree(&vectors().join("phtmedic-g3/00-built"), &dir);
    let p = dir.join("pht_train/entrypoint.py");
    let mut b = fs::read(&p).unwrap();
    b[0] ^= 1;
    fs::write(&p, b).unwrap();
    let out = Command::new(&py)
        .arg(driver())
        .args([
            "prerun",
            dir.to_str().unwrap(),
            "station_1",
            key_path("station_1").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
