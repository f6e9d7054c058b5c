//! Native format test vectors in `tests/vectors/native-v1/` (committed, like age's testkit):
//! fixed keys, a train at every stop of a three-station route, the plaintexts expected, `fail_*`
//! states that must be rejected with the named check, and STREAM known answers.
//!
//! Regenerate (only when the format changes on purpose):
//! `cargo test -p train-lib --test native_vectors -- --ignored regenerate`

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use support::*;
use train_lib::crypto::{hasher::SplitHasher, stream};
use train_lib::keys::{PrivateKey, TrustStore};
use train_lib::{CreateSpec, Format, Station, TrainDir};

const STATIONS: [&str; 3] = ["station-a", "station-b", "station-c"];
const STATES: [&str; 4] = [
    "00-created",
    "01-after-station-a",
    "02-after-station-b",
    "03-after-station-c",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/native-v1")
}

fn key(name: &str) -> PrivateKey {
    PrivateKey::from_file(&root().join(format!("keys/{name}.key.pem")), None).unwrap()
}

fn results_of(i: usize) -> Vec<(String, Vec<u8>)> {
    let s = STATIONS[i];
    let mut counts = String::new();
    for st in &STATIONS[..=i] {
        counts.push_str(&format!("{st},{}\n", st.len() * 7));
    }
    vec![
        ("counts.csv".into(), counts.into_bytes()),
        (format!("plots/{s}.bin"), bytes(3000 + i * 70_000, i as u8)),
    ]
}

/// A state copied to a scratch directory (git keeps no empty `pht_results`).
fn scratch(state: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    copy_tree(state, &dir);
    fs::create_dir_all(dir.join("pht_results")).unwrap();
    (tmp, dir)
}

fn run(
    dir: &Path,
    station: &str,
    pre: bool,
) -> Result<train_lib::StepReport, train_lib::ProtocolError> {
    let k = key(station);
    let trust = TrustStore::default();
    let st = Station {
        id: station,
        key: &k,
        trust: &trust,
    };
    let t = TrainDir::open(dir)?;
    if pre {
        t.pre_run(&st)
    } else {
        t.post_run(&st)
    }
}

#[test]
fn every_state_pre_runs_and_the_creator_reads_the_expected_results() {
    let r = root();
    for (i, state) in STATES[..3].iter().enumerate() {
        let (_tmp, dir) = scratch(&r.join(state));
        run(&dir, STATIONS[i], true).unwrap_or_else(|e| panic!("{state}: {e}"));
        assert_eq!(
            snapshot(&dir.join("pht_train")),
            snapshot(&r.join("expected-train-files")),
            "{state}"
        );
    }
    let (tmp, dir) = scratch(&r.join(STATES[3]));
    let out = tmp.path().join("out");
    TrainDir::open(&dir)
        .unwrap()
        .results(&key("creator"), &TrustStore::default(), &out)
        .unwrap();
    assert_eq!(snapshot(&out), snapshot(&r.join("expected-results")));
}

#[test]
fn every_fail_case_is_rejected_with_its_named_check() {
    let mut n = 0;
    for e in fs::read_dir(root()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("fail_") {
            continue;
        }
        let expect = fs::read_to_string(e.path().join("expected.txt")).unwrap();
        let (station, want) = expect.trim().split_once(' ').unwrap();
        let (_tmp, dir) = scratch(&e.path().join("train"));
        let before = snapshot(&dir);
        let err = run(&dir, station, true).expect_err(&name);
        let got = err
            .rejection()
            .map(|r| format!("{r:?}"))
            .unwrap_or_else(|| format!("{err:?}"));
        assert!(got.starts_with(want), "{name}: expected {want}, got {got}");
        assert_eq!(before, snapshot(&dir), "{name}: directory changed");
        n += 1;
    }
    assert!(n >= 8, "only {n} fail cases found");
}

/// STREAM encryption of `plain` under the file key's per-file key for (role, path).
fn seal(file_key: &[u8; 32], role: &str, path: &str, plain: &[u8]) -> Vec<u8> {
    let fk = stream::file_key(file_key, role, path);
    let mut ct = Vec::new();
    let mut h = SplitHasher::new(&aws_lc_rs::digest::SHA256, 0);
    stream::encrypt(&fk, plain, &mut ct, &mut h, 0).unwrap();
    ct
}

#[test]
fn stream_known_answers() {
    let kat: serde_json::Value =
        serde_json::from_slice(&fs::read(root().join("stream-kat.json")).unwrap()).unwrap();
    let cases = kat.as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        let k: [u8; 32] = hex::decode(c["file_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let plain = hex::decode(c["plaintext"].as_str().unwrap()).unwrap();
        let ct = seal(
            &k,
            c["role"].as_str().unwrap(),
            c["path"].as_str().unwrap(),
            &plain,
        );
        let want = c["ciphertext_sha256"].as_str().unwrap();
        assert_eq!(
            hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &ct)),
            want,
            "{}",
            c["path"]
        );
        assert_eq!(ct.len() as u64, c["ciphertext_len"].as_u64().unwrap());
        if let Some(prefix) = c["ciphertext_prefix"].as_str() {
            assert_eq!(hex::encode(&ct[..prefix.len() / 2]), prefix);
        }
    }
}

// --- generator -----------------------------------------------------------------------------

fn edit_config(dir: &Path, edit: impl FnOnce(&mut train_lib::native::NativeConfig)) {
    let p = dir.join("train_config.json");
    let mut c = train_lib::native::NativeConfig::parse(&fs::read(&p).unwrap()).unwrap();
    edit(&mut c);
    fs::write(p, c.to_json()).unwrap();
}

fn fail_case(
    r: &Path,
    name: &str,
    from: &str,
    station: &str,
    want: &str,
    attack: impl FnOnce(&Path),
) {
    let d = r.join(format!("fail_{name}"));
    copy_tree(&r.join(from), &d.join("train"));
    attack(&d.join("train"));
    fs::write(d.join("expected.txt"), format!("{station} {want}\n")).unwrap();
}

#[test]
#[ignore = "writes the committed vectors; run on purpose"]
fn regenerate() {
    let r = root();
    let _ = fs::remove_dir_all(&r);
    fs::create_dir_all(r.join("keys")).unwrap();
    for who in ["creator", "builder"].iter().chain(STATIONS.iter()) {
        let k = PrivateKey::generate(2048).unwrap();
        fs::write(
            r.join(format!("keys/{who}.key.pem")),
            k.to_pkcs8_pem().unwrap().as_bytes(),
        )
        .unwrap();
        fs::write(r.join(format!("keys/{who}.pub.pem")), k.public().to_pem()).unwrap();
    }
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "main.py",
            b"import os\nprint(sum(1 for _ in open(os.environ['TRAIN_DATA_PATH'])))\n".to_vec(),
        ),
        ("model/weights.bin", bytes(70_000, 42)),
        (
            "query.json",
            br#"{"resourceType":"Patient","_count":100}"#.to_vec(),
        ),
    ];
    write_files(&r.join("expected-train-files"), &files);
    let creator = key("creator");
    let builder = key("builder");
    let spec = CreateSpec {
        files: &r.join("expected-train-files"),
        entrypoint: "main.py",
        creator_id: "creator",
        creator_key: &creator,
        stations: STATIONS
            .iter()
            .map(|s| (s.to_string(), key(s).public().clone()))
            .collect(),
        query: None,
        builder_key: Some(&builder),
        train_id: Some("train-native-v1".into()),
        proposal_id: Some("proposal-1".into()),
        master_image: Some("sha256:".to_string() + &"ab".repeat(32)),
    };
    let work = tempfile::tempdir().unwrap();
    let t = work.path().join("t");
    train_lib::create(&spec, Format::Native, &t).unwrap();
    copy_tree(&t, &r.join(STATES[0]));
    for (i, st) in STATIONS.iter().enumerate() {
        run(&t, st, true).unwrap();
        for (p, b) in results_of(i) {
            let full = t.join("pht_results").join(p);
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(full, b).unwrap();
        }
        run(&t, st, false).unwrap();
        copy_tree(&t, &r.join(STATES[i + 1]));
    }
    let mut expected = Vec::new();
    for i in 0..3 {
        for (p, b) in results_of(i) {
            expected.retain(|(q, _): &(String, Vec<u8>)| *q != p);
            expected.push((p, b));
        }
    }
    let refs: Vec<(&str, Vec<u8>)> = expected
        .iter()
        .map(|(p, b)| (p.as_str(), b.clone()))
        .collect();
    write_files(&r.join("expected-results"), &refs);

    let b = "station-b";
    let s1 = STATES[1];
    fail_case(&r, "flipped_result_byte", s1, b, "Decrypt", |d| {
        let p = d.join("pht_results/counts.csv");
        let mut v = fs::read(&p).unwrap();
        v[10] ^= 0x80;
        fs::write(p, v).unwrap();
    });
    fail_case(&r, "truncated_train_file", s1, b, "Decrypt", |d| {
        let p = d.join("pht_train/model/weights.bin");
        let v = fs::read(&p).unwrap();
        fs::write(&p, &v[..8 + 65536 + 16]).unwrap();
    });
    fail_case(&r, "result_renamed", s1, b, "Decrypt", |d| {
        // Renamed within the manifest's names: swap the two result files' contents.
        let a = d.join("pht_results/counts.csv");
        let p = d.join("pht_results/plots/station-a.bin");
        let (x, y) = (fs::read(&a).unwrap(), fs::read(&p).unwrap());
        fs::write(&a, y).unwrap();
        fs::write(&p, x).unwrap();
    });
    fail_case(&r, "extra_train_file", s1, b, "UnlistedFile", |d| {
        fs::write(d.join("pht_train/extra.py"), b"x").unwrap()
    });
    fail_case(
        &r,
        "noncanonical_config",
        s1,
        b,
        "NonCanonicalConfig",
        |d| {
            let p = d.join("train_config.json");
            let v = fs::read_to_string(&p).unwrap();
            fs::write(p, v.replacen("\n  ", "\n   ", 1)).unwrap();
        },
    );
    fail_case(&r, "entrypoint_changed", s1, b, "CreatorSignature", |d| {
        edit_config(d, |c| c.train.entrypoint = "model/weights.bin".into())
    });
    fail_case(&r, "session_id_changed", s1, b, "ChainDigest", |d| {
        edit_config(d, |c| {
            c.stops[0].session_id = train_lib::native::config::Hex([0; 32])
        })
    });
    fail_case(&r, "key_wraps_swapped", s1, b, "KeyWraps", |d| {
        edit_config(d, |c| {
            let w = c.keys[1].wrapped.clone();
            c.keys[1].wrapped = c.keys[2].wrapped.clone();
            c.keys[2].wrapped = w;
        })
    });
    fail_case(
        &r,
        "station_skipped",
        s1,
        "station-c",
        "NotYourTurn",
        |_| {},
    );
    fail_case(
        &r,
        "replayed_to_same_station",
        s1,
        "station-a",
        "NotYourTurn",
        |_| {},
    );
    fail_case(
        &r,
        "finished",
        STATES[3],
        "station-a",
        "TrainFinished",
        |_| {},
    );

    let mut kat = Vec::new();
    let file_key: [u8; 32] = core::array::from_fn(|i| i as u8);
    for (role, path, len) in [
        ("results", "a/b.csv", 6usize),
        ("train", "main.py", 0),
        ("results", "big.bin", 65_537),
    ] {
        let plain = bytes(len, 7);
        let ct = seal(&file_key, role, path, &plain);
        kat.push(serde_json::json!({
            "file_key": hex::encode(file_key), "role": role, "path": path,
            "plaintext": hex::encode(&plain),
            "ciphertext_len": ct.len(),
            "ciphertext_prefix": hex::encode(&ct[..ct.len().min(48)]),
            "ciphertext_sha256": hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &ct)),
        }));
    }
    fs::write(
        r.join("stream-kat.json"),
        serde_json::to_vec_pretty(&kat).unwrap(),
    )
    .unwrap();
}
